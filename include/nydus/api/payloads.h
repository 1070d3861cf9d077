// Reply payloads with their exact wire shape (contract §4): field names and
// order as upstream emits them. The daemon serialises with to_json(); the
// client reads with the parse_* functions, which are strict about the fields
// it relies on and ignore the rest.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nydus/json.h"

namespace nydus::api {

struct BuildInfo {  // DaemonInfo.version
  std::string package_ver;
  std::string git_commit;
  std::string build_time;
  std::string profile;
  std::string rustc;  // upstream's name; holds our compiler's version line
  bool operator==(const BuildInfo&) const = default;
};

struct DaemonInfo {
  BuildInfo version;
  std::optional<std::string> id;
  std::optional<std::string> supervisor;
  std::string state;  // INIT, READY, RUNNING, STOPPED, UNKNOWN
  // v1: object keyed by mountpoint (FsBackendDescriptor values, §4.1); v2: null.
  std::optional<nlohmann::ordered_json> backend_collection;
};

std::string to_json(const DaemonInfo& info);
tl::expected<DaemonInfo, json::Error> parse_daemon_info(std::string_view text);

struct EventsInfo {  // GET /api/v1/daemon/events
  std::uint64_t max_errors = 0;
  std::uint64_t total_errors = 0;
  std::uint64_t max_size = 0;
  std::uint64_t total_size = 0;
  std::vector<std::string> errors;
};

std::string to_json(const EventsInfo& e);
tl::expected<EventsInfo, json::Error> parse_events(std::string_view text);

// Compact JSON text of any value, invalid UTF-8 replaced rather than thrown on.
std::string dump_compact(const nlohmann::ordered_json& j);

}  // namespace nydus::api
