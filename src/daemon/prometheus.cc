#include "nydus/daemon/prometheus.h"

#include <dirent.h>
#include <unistd.h>

#include <array>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace nydus::daemon {
namespace {

using Json = nlohmann::json;

// Contract §4.3: fop index order of fop_hits / fop_errors.
constexpr std::array<std::string_view, 15> kFops = {
    "getattr", "readlink", "open",  "release", "read",    "statfs",      "getxattr",   "listxattr",
    "opendir", "lookup",   "readdir", "readdirplus", "access", "forget", "batch_forget"};

// Upper bounds of the §4.3 size buckets as inclusive byte counts (`s < 1 KiB` is `s <= 1023`).
constexpr std::array<double, 7> kSizeBounds = {1023, 4095, 16383, 65535, 131071, 524287, 1048575};
// §4.3 read latency buckets, microseconds -> seconds (inclusive upper bounds).
constexpr std::array<double, 7> kFuseLatencyBounds = {0.0002, 0.001, 0.02, 0.05, 0.5, 1, 2};
// §4.6 backend latency buckets, milliseconds -> seconds.
constexpr std::array<double, 7> kBackendLatencyBounds = {0.001, 0.02, 0.05, 0.1, 0.5, 1, 2};

struct Family {
  std::string name;
  std::string_view type;
  std::string_view help;
  std::vector<std::string> samples;
};

// Families in first-use order; every sample of a family is printed under its one HELP/TYPE.
class Exposition {
 public:
  void add(std::string_view name, std::string_view type, std::string_view help, std::string_view labels,
           std::string_view suffix, double value) {
    Family& f = family(name, type, help);
    std::string line = f.name;
    line += suffix;
    if (!labels.empty()) line += fmt::format("{{{}}}", labels);
    line += ' ';
    line += fmt::format("{}", value);
    f.samples.push_back(std::move(line));
  }

  // A cumulative histogram from per-bucket counts (the last bucket is +Inf).
  template <std::size_t N>
  void histogram(std::string_view name, std::string_view help, const std::string& labels,
                 const std::array<double, N>& bounds, const std::vector<std::uint64_t>& counts, double sum) {
    if (counts.size() != N + 1) return;
    std::uint64_t total = 0;
    std::string sep = labels.empty() ? "" : ",";
    for (std::size_t i = 0; i <= N; ++i) {
      total += counts[i];
      std::string le = i < N ? fmt::format("{}", bounds[i]) : "+Inf";
      add(name, "histogram", help, fmt::format("{}{}le=\"{}\"", labels, sep, le), "_bucket",
          static_cast<double>(total));
    }
    add(name, "histogram", help, labels, "_sum", sum);
    add(name, "histogram", help, labels, "_count", static_cast<double>(total));
  }

  std::string text() const {
    std::string out;
    for (const Family& f : families_) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
      for (const std::string& s : f.samples) {
        out += s;
        out += '\n';
      }
    }
    return out;
  }

 private:
  Family& family(std::string_view name, std::string_view type, std::string_view help) {
    for (Family& f : families_) {
      if (f.name == name) return f;
    }
    families_.push_back(Family{std::string(name), type, help, {}});
    return families_.back();
  }
  std::vector<Family> families_;
};

std::optional<Json> parse(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  Json j = Json::parse(*text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::optional<double> number(const Json& j, std::string_view key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
  return static_cast<double>(it->get<std::uint64_t>());
}

// A u64 array of exactly `n` elements, or empty.
std::vector<std::uint64_t> counts(const Json& j, std::string_view key, std::size_t n) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() != n) return {};
  std::vector<std::uint64_t> out;
  for (const Json& v : *it) {
    if (!v.is_number_unsigned()) return {};
    out.push_back(v.get<std::uint64_t>());
  }
  return out;
}

std::string id_label(const std::string& id) { return fmt::format("id=\"{}\"", prometheus_label_value(id)); }

void add_if(Exposition& e, std::string_view name, std::string_view type, std::string_view help,
            const std::string& labels, const Json& j, std::string_view key, double scale = 1) {
  if (auto v = number(j, key)) e.add(name, type, help, labels, "", *v * scale);
}

void render_global(Exposition& e, const std::string& labels, const Json& g) {
  if (auto it = g.find("files_account_enabled"); it != g.end() && it->is_boolean()) {
    e.add("nydusd_fuse_files_account_enabled", "gauge", "1 when per-file metrics are collected", labels, "",
          it->get<bool>() ? 1 : 0);
  }
  add_if(e, "nydusd_fuse_open_files", "gauge", "Files currently open", labels, g, "nr_opens");
  add_if(e, "nydusd_fuse_read_bytes_total", "counter", "Bytes returned by successful reads", labels, g, "data_read");
  auto hits = counts(g, "fop_hits", kFops.size());
  auto errors = counts(g, "fop_errors", kFops.size());
  for (std::size_t i = 0; i < hits.size(); ++i) {
    e.add("nydusd_fuse_operations_total", "counter", "Successful FUSE operations",
          fmt::format("{},op=\"{}\"", labels, kFops[i]), "", static_cast<double>(hits[i]));
  }
  for (std::size_t i = 0; i < errors.size(); ++i) {
    e.add("nydusd_fuse_operation_errors_total", "counter", "Failed FUSE operations",
          fmt::format("{},op=\"{}\"", labels, kFops[i]), "", static_cast<double>(errors[i]));
  }
  auto data_read = number(g, "data_read");
  e.histogram("nydusd_fuse_read_request_size_bytes",
              "Read requests by requested size (failed ones included); _sum is the bytes returned", labels,
              kSizeBounds, counts(g, "block_count_read", 8), data_read.value_or(0));
  auto latency = counts(g, "fop_cumulative_latency_total", kFops.size());
  e.histogram("nydusd_fuse_read_latency_seconds", "Latency of FUSE reads", labels, kFuseLatencyBounds,
              counts(g, "read_latency_dist", 8), latency.empty() ? 0 : static_cast<double>(latency[4]) / 1e6);
}

void render_backend(Exposition& e, const std::string& id, const Json& b) {
  std::string type = b.contains("backend_type") && b["backend_type"].is_string() ? b["backend_type"].get<std::string>() : "";
  std::string labels = fmt::format("{},backend_type=\"{}\"", id_label(id), prometheus_label_value(type));
  add_if(e, "nydusd_backend_read_requests_total", "counter", "Backend reads", labels, b, "read_count");
  add_if(e, "nydusd_backend_read_errors_total", "counter", "Backend reads that failed after all retries", labels, b,
         "read_errors");
  auto amount = number(b, "read_amount_total");
  e.histogram("nydusd_backend_read_request_size_bytes", "Backend reads by requested size; _sum is bytes requested",
              labels, kSizeBounds, counts(b, "read_count_block_size_dist", 8), amount.value_or(0));
  // read_latency_sizes_dist: [size bucket][latency bucket]; summed over sizes.
  std::vector<std::uint64_t> by_latency;
  if (auto it = b.find("read_latency_sizes_dist"); it != b.end() && it->is_array() && it->size() == 8) {
    by_latency.assign(8, 0);
    for (const Json& row : *it) {
      if (!row.is_array() || row.size() != 8) return;
      for (std::size_t i = 0; i < 8; ++i) by_latency[i] += row[i].is_number_unsigned() ? row[i].get<std::uint64_t>() : 0;
    }
  }
  auto millis = number(b, "read_cumulative_latency_millis_total");
  e.histogram("nydusd_backend_read_latency_seconds", "Latency of backend reads (millisecond resolution)", labels,
              kBackendLatencyBounds, by_latency, millis.value_or(0) / 1000);
}

void render_blobcache(Exposition& e, const std::string& labels, const Json& c) {
  add_if(e, "nydusd_blobcache_reads_total", "counter", "Reads through the blob cache", labels, c, "total");
  add_if(e, "nydusd_blobcache_whole_hits_total", "counter", "Reads fully served from the cache", labels, c, "whole_hits");
  add_if(e, "nydusd_blobcache_partial_hits_total", "counter", "Reads partly served from the cache", labels, c,
         "partial_hits");
  add_if(e, "nydusd_blobcache_entries", "gauge", "Cache entries", labels, c, "entries_count");
  add_if(e, "nydusd_blobcache_prefetch_bytes_total", "counter", "Bytes prefetched", labels, c, "prefetch_data_amount");
  add_if(e, "nydusd_blobcache_prefetch_requests_total", "counter", "Prefetch requests", labels, c,
         "prefetch_requests_count");
  add_if(e, "nydusd_blobcache_buffered_backend_bytes", "gauge", "Bytes read from the backend awaiting persistence",
         labels, c, "buffered_backend_size");
}

void render_files(Exposition& e, const std::string& labels, const Json& files) {
  if (!files.is_object()) return;
  for (const auto& [ino, f] : files.items()) {
    std::string l = fmt::format("{},ino=\"{}\"", labels, prometheus_label_value(ino));
    add_if(e, "nydusd_file_read_bytes_total", "counter", "Bytes read from one file", l, f, "data_read");
    add_if(e, "nydusd_file_operations_total", "counter", "Operations counted for one file", l, f, "total_fops");
  }
}

void render_inflight(Exposition& e, const std::optional<std::string>& text, std::uint64_t now) {
  std::uint64_t n = 0;
  std::optional<std::uint64_t> oldest;
  if (auto j = parse(text); j && j->is_array()) {
    for (const Json& r : *j) {
      if (!r.is_object()) continue;  // upstream can emit null for a request that just finished
      ++n;
      // Read as u64, not through number(): a double loses seconds above 2^53
      // and 2^64 - 1 does not convert back.
      if (auto t = r.find("timestamp_secs"); t != r.end() && t->is_number_unsigned()) {
        auto secs = t->get<std::uint64_t>();
        oldest = oldest ? std::min(*oldest, secs) : secs;
      }
    }
  }
  e.add("nydusd_fuse_inflight_requests", "gauge", "FUSE requests being handled now", "", "", static_cast<double>(n));
  double age = oldest && now > *oldest ? static_cast<double>(now - *oldest) : 0;
  e.add("nydusd_fuse_inflight_oldest_age_seconds", "gauge", "Age of the oldest FUSE request in flight (0 when none)",
        "", "", age);
}

}  // namespace

std::string prometheus_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_prometheus(const PrometheusInput& in) {
  Exposition e;
  for (const PrometheusInstance& inst : in.instances) {
    std::string labels = id_label(inst.id);
    if (auto g = parse(inst.global); g && g->is_object()) render_global(e, labels, *g);
    if (auto b = parse(inst.backend); b && b->is_object()) render_backend(e, inst.id, *b);
    if (auto c = parse(inst.blobcache); c && c->is_object()) render_blobcache(e, labels, *c);
    if (auto f = parse(inst.files)) render_files(e, labels, *f);
  }
  render_inflight(e, in.inflight, in.now_secs);
  if (in.process) {
    e.add("nydusd_process_resident_memory_bytes", "gauge", "Resident set size", "", "",
          static_cast<double>(in.process->resident_bytes));
    e.add("nydusd_process_open_fds", "gauge", "Open file descriptors", "", "",
          static_cast<double>(in.process->open_fds));
  }
  return e.text();
}

std::optional<ProcessStats> read_process_stats() {
  ProcessStats s;
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0;
  std::uint64_t resident = 0;
  if (!(statm >> size >> resident)) return std::nullopt;
  s.resident_bytes = resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  while (const dirent* d = readdir(dir)) {
    if (d->d_name[0] != '.') ++s.open_fds;
  }
  closedir(dir);
  if (s.open_fds > 0) --s.open_fds;  // the descriptor opendir itself holds
  return s;
}

}  // namespace nydus::daemon
