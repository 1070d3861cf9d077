// Metrics in the Prometheus text exposition format, version 0.0.4.
//
// The renderer takes the JSON texts the metrics routes serve (contract
// §4.3–§4.8) and re-expresses them, so the two views can never disagree: a
// counter in Prometheus is the same number as its JSON field at the same
// moment. Metric names and labels are listed in docs/api.md.
//
// Thread-safety: pure functions, except read_process_stats (reads /proc/self).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nydus::daemon {

struct PrometheusInstance {
  std::string id;                         // registry key (the mountpoint); the `id` label
  std::string global;                     // §4.3 JSON
  std::optional<std::string> backend;     // §4.6 JSON; nullopt when the instance has none
  std::optional<std::string> blobcache;   // §4.7 JSON; nullopt when there is no blob cache
  std::optional<std::string> files;       // §4.4 JSON; only when asked for (per-file output is off by default)
};

struct ProcessStats {
  std::uint64_t resident_bytes = 0;
  std::uint64_t open_fds = 0;
};

struct PrometheusInput {
  std::vector<PrometheusInstance> instances;
  std::optional<std::string> inflight;  // §4.8 JSON; nullopt when no request is in flight
  std::uint64_t now_secs = 0;           // for the age of the oldest in-flight request
  std::optional<ProcessStats> process;
};

// The exposition text. JSON that does not parse, or a field of another type
// than §4 says, is left out rather than reported as a made-up 0.
std::string render_prometheus(const PrometheusInput& in);

// A label value escaped as the text format requires: \ -> \\, " -> \", newline -> \n.
std::string prometheus_label_value(std::string_view v);

// RSS (from /proc/self/statm) and open descriptors (/proc/self/fd); nullopt
// when /proc is not readable.
std::optional<ProcessStats> read_process_stats();

}  // namespace nydus::daemon
