// nydusctl: query and control a running nydusd through its API socket.
//
// Readable tables by default, the daemon's JSON with --raw. Any error the
// daemon answers, or an unreachable daemon, prints a clear message and exits
// non-zero (1 for an API error, 2 for a transport error).
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "nydus/api/client.h"

namespace {

using nydus::api::ApiClient;
using nydus::api::ClientError;
using Json = nlohmann::json;

int report(const ClientError& e) {
  if (e.status == 0) {
    std::cerr << "nydusctl: " << e.to_string() << "\n";
    return 2;
  }
  std::cerr << "nydusctl: request failed: " << e.to_string() << "\n";
  return 1;
}

std::string json_quoted(const std::string& s) { return Json(s).dump(); }

constexpr const char* kFopNames[] = {"Getattr", "Readlink", "Open",    "Release",  "Read",
                                     "Statfs",  "Getxattr", "Listxattr", "Opendir", "Lookup",
                                     "Readdir", "Readdirplus", "Access", "Forget",  "BatchForget"};
constexpr const char* kSizeBuckets[] = {"<1K", "1K-4K", "4K-16K", "16K-64K", "64K-128K", "128K-512K", "512K-1M", ">=1M"};
constexpr const char* kLatencyBuckets[] = {"<=200us", "<=1ms", "<=20ms", "<=50ms", "<=500ms", "<=1s", "<=2s", ">2s"};

void print_array_row(const char* label, const Json& arr, const char* const* names, std::size_t n) {
  std::cout << label << "\n";
  for (std::size_t i = 0; i < n && arr.is_array() && i < arr.size(); ++i) {
    std::cout << fmt::format("  {:<12} {}\n", names[i], arr[i].dump());
  }
}

void print_fsstats(const Json& m) {
  std::cout << fmt::format("{:<24} {}\n", "Id:", m.value("id", ""));
  std::cout << fmt::format("{:<24} {}\n", "Data read (bytes):", m.value("data_read", 0ull));
  std::cout << fmt::format("{:<24} {}\n", "Open files:", m.value("nr_opens", 0ull));
  const Json hits = m.value("fop_hits", Json::array());
  const Json errors = m.value("fop_errors", Json::array());
  const Json lat = m.value("fop_cumulative_latency_total", Json::array());
  std::cout << fmt::format("{:<12} {:>12} {:>12} {:>16}\n", "FOP", "HITS", "ERRORS", "LATENCY(us)");
  for (std::size_t i = 0; i < 15; ++i) {
    auto at = [i](const Json& a) { return a.is_array() && i < a.size() ? a[i].dump() : std::string("0"); };
    std::cout << fmt::format("{:<12} {:>12} {:>12} {:>16}\n", kFopNames[i], at(hits), at(errors), at(lat));
  }
  print_array_row("Read sizes:", m.value("block_count_read", Json::array()), kSizeBuckets, 8);
  print_array_row("Read latency:", m.value("read_latency_dist", Json::array()), kLatencyBuckets, 8);
}

void print_generic(const Json& j) {
  if (!j.is_object()) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::cout << fmt::format("{:<32} {}\n", it.key() + ":", it.value().is_string() ? it.value().get<std::string>()
                                                                                   : it.value().dump());
  }
}

int cmd_info(ApiClient& c, bool raw) {
  auto r = c.request("GET", "/api/v1/daemon");
  if (!r) return report(r.error());
  if (r->status != 200) return report(ClientError{r->status, "", r->body});
  if (raw) {
    std::cout << r->body << "\n";
    return 0;
  }
  auto info = c.daemon_info();
  if (!info) return report(info.error());
  std::cout << fmt::format("{:<12} {}\n", "Version:", json_quoted(info->version.package_ver));
  std::cout << fmt::format("{:<12} {}\n", "Status:", json_quoted(info->state));
  std::cout << fmt::format("{:<12} {}\n", "Profile:", json_quoted(info->version.profile));
  std::cout << fmt::format("{:<12} {}\n", "Commit:", json_quoted(info->version.git_commit));
  std::cout << fmt::format("{:<12} {}\n", "Build time:", json_quoted(info->version.build_time));
  if (info->id) std::cout << fmt::format("{:<12} {}\n", "Id:", json_quoted(*info->id));
  if (info->supervisor) std::cout << fmt::format("{:<12} {}\n", "Supervisor:", json_quoted(*info->supervisor));
  if (info->backend_collection && !info->backend_collection->empty()) {
    std::cout << fmt::format("\n{:<24} {:<14} {}\n", "MOUNTPOINT", "TYPE", "MOUNTED TIME");
    for (auto it = info->backend_collection->begin(); it != info->backend_collection->end(); ++it) {
      const auto& d = it.value();
      std::cout << fmt::format("{:<24} {:<14} {}\n", it.key(), d.value("backend_type", "?"), d.value("mounted_time", "?"));
    }
  }
  return 0;
}

int print_json_result(const nydus::api::ClientResult<Json>& r, bool raw, void (*pretty)(const Json&)) {
  if (!r) return report(r.error());
  if (raw) {
    std::cout << r->dump() << "\n";
  } else {
    pretty(*r);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nydusctl: query and control nydusd through its API socket", "nydusctl"};
  std::string sock;
  bool raw = false;
  app.add_option("-S,--sock", sock, "nydusd API socket")->required();
  app.add_flag("-r,--raw", raw, "Print the daemon's JSON instead of a table");
  app.require_subcommand(1);

  auto* info = app.add_subcommand("info", "Daemon version, state and mounted instances");
  auto* events = app.add_subcommand("events", "Recent data-plane errors");

  auto* set = app.add_subcommand("set", "Change a daemon setting (log-level)");
  std::string set_key, set_value;
  set->add_option("key", set_key, "Setting name: log-level")->required()->check(CLI::IsMember({"log-level", "log_level"}));
  set->add_option("value", set_value, "New value: off|error|warn|info|debug|trace")->required();

  auto* metrics = app.add_subcommand("metrics", "Filesystem, backend, cache or in-flight metrics");
  std::string kind = "fsstats";
  std::string id;
  unsigned interval = 0;
  unsigned count = 0;
  metrics->add_option("kind", kind, "fsstats|files|pattern|backend|cache|inflight")
      ->check(CLI::IsMember({"fsstats", "files", "pattern", "backend", "cache", "blobcache", "inflight"}));
  metrics->add_option("--id", id, "Instance id (mountpoint); needed when several are mounted");
  metrics->add_option("-I,--interval", interval, "Repeat every N seconds");
  metrics->add_option("--count", count, "With --interval: stop after this many reports (0: forever)");
  bool prometheus = false;
  bool prometheus_files = false;
  metrics->add_flag("--prometheus", prometheus, "Print every metric in the Prometheus text format (ignores kind, --id)");
  metrics->add_flag("--files", prometheus_files, "With --prometheus: add per-file metrics of instances that collect them");

  auto* backend = app.add_subcommand("backend", "RAFS super-block summary of a mounted instance");
  std::string backend_mp = "/";
  backend->add_option("-m,--mountpoint", backend_mp, "Mountpoint inside the daemon");

  auto* mount = app.add_subcommand("mount", "Mount a filesystem instance");
  std::string source, config_file, mountpoint, fs_type = "rafs";
  mount->add_option("-s,--source", source, "Bootstrap file or directory")->required();
  mount->add_option("-c,--config", config_file, "Configuration file (JSON or TOML)")->required();
  mount->add_option("-m,--mountpoint", mountpoint, "Mountpoint inside the daemon")->required();
  mount->add_option("-t,--type", fs_type, "rafs|passthrough_fs");

  auto* umount = app.add_subcommand("umount", "Unmount a filesystem instance");
  std::string umount_mp;
  umount->add_option("-m,--mountpoint,mountpoint", umount_mp, "Mountpoint inside the daemon")->required();

  CLI11_PARSE(app, argc, argv);
  ApiClient client(sock);

  if (*info) return cmd_info(client, raw);
  if (*events) {
    auto e = client.events();
    if (!e) return report(e.error());
    if (raw) {
      std::cout << nydus::api::to_json(*e) << "\n";
      return 0;
    }
    std::cout << fmt::format("{} errors ({} bytes; keeps at most {} errors, {} bytes)\n", e->total_errors, e->total_size,
                             e->max_errors, e->max_size);
    for (const auto& line : e->errors) std::cout << "  " << line << "\n";
    return 0;
  }
  if (*set) {
    auto r = client.configure_daemon({set_value});
    return r ? 0 : report(r.error());
  }
  if (*backend) return print_json_result(client.fs_backend_info(backend_mp), raw, print_generic);
  if (*mount) {
    std::ifstream in(config_file);
    if (!in) {
      std::cerr << "nydusctl: cannot read " << config_file << "\n";
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto r = client.mount(mountpoint, {source, fs_type, ss.str(), std::nullopt});
    return r ? 0 : report(r.error());
  }
  if (*umount) {
    auto r = client.umount(umount_mp);
    return r ? 0 : report(r.error());
  }
  if (*metrics) {
    std::optional<std::string> opt_id = id.empty() ? std::nullopt : std::optional<std::string>(id);
    for (unsigned n = 1;; ++n) {
      int rc = 0;
      if (prometheus) {
        auto r = client.prometheus_metrics(prometheus_files);
        if (!r) return report(r.error());
        std::cout << *r;
      } else if (kind == "fsstats") {
        rc = print_json_result(client.global_metrics(opt_id), raw, print_fsstats);
      } else if (kind == "files") {
        rc = print_json_result(client.files_metrics(opt_id), raw, print_generic);
      } else if (kind == "pattern") {
        rc = print_json_result(client.access_patterns(opt_id), raw, print_generic);
      } else if (kind == "backend") {
        rc = print_json_result(client.backend_metrics(opt_id), raw, print_generic);
      } else if (kind == "cache" || kind == "blobcache") {
        rc = print_json_result(client.blobcache_metrics(opt_id), raw, print_generic);
      } else {
        auto r = client.inflight_metrics();
        if (!r) return report(r.error());
        std::cout << (*r ? (*r)->dump() : std::string(raw ? "[]" : "no request in flight")) << "\n";
      }
      if (rc != 0 || interval == 0 || (count != 0 && n >= count)) return rc;
      std::this_thread::sleep_for(std::chrono::seconds(interval));
    }
  }
  return 0;
}
