// Request-body decoders (contract §3): serde rules, errors as ParseBody.
//
// Each function parses a whole body text. On failure the json::Error carries
// serde's reason and position, e.g. `missing field `log_level`` at line 1,
// column 2; the router turns it into 400 ParseBody(Error("…", line: L, column: C)).
#pragma once

#include <string_view>

#include "nydus/api/types.h"
#include "nydus/json.h"

namespace nydus::api {

tl::expected<DaemonConf, json::Error> parse_daemon_conf(std::string_view body);
tl::expected<ApiMountCmd, json::Error> parse_mount_cmd(std::string_view body);
tl::expected<BlobCacheEntry, json::Error> parse_blob_cache_entry(std::string_view body);
tl::expected<ConfigMap, json::Error> parse_config_map(std::string_view body);

// Serialisers used by the client (compact JSON, field order as upstream).
std::string to_json(const DaemonConf& c);
std::string to_json(const ApiMountCmd& c);
std::string to_json(const BlobCacheEntry& e);
std::string to_json(const ConfigMap& m);

}  // namespace nydus::api
