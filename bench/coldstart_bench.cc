// coldstart_bench: the real nydusd, an empty blob cache and a distant
// registry; how long from the mount request until a container-like workload
// (Python importing a dozen stdlib packages from the image) has exited.
// Needs root, /dev/fuse, python3 (for tests/registry/fake_registry.py),
// /usr/bin/python3.11 with /usr/lib/python3.11, and curl.
//
//   coldstart_bench [workdir] [rounds]   cold start (docs/benchmarks.md)
//   coldstart_bench --rss [workdir]      nydusd's VmRSS while prefetching 1 GiB
//
// Cold start: an image (zstd, 1 MiB chunks, extended inodes so the .pyc
// files stay valid against their sources' mtimes) of /usr/lib/python3.11 plus
// 256 MiB of text-like filler nothing reads, served by fake_registry.py with
// 20 ms per request and 12 MB/s per connection. Every pass starts a fresh
// nydusd with an empty work_dir after dropping the page cache; the clock runs
// from POST /api/v1/mount to the workload's exit. The hinted prefetch list is
// what the workload's modules were loaded from, as Python itself reports it
// (module __cached__ / __file__) in an untimed run against the host's stdlib.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "nydus/api/client.h"
#include "nydus/storage/builder.h"

namespace {

namespace stdfs = std::filesystem;
using nydus::bench::drop_caches;
using nydus::bench::sh;
using nydus::bench::sh_out;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
const char* kRepo = "bench/python";
const char* kPython = "/usr/bin/python3.11";
const char* kStdlib = "/usr/lib/python3.11";
const char* kImports =
    "import json, email, http.client, asyncio, xml.etree.ElementTree, unittest, decimal, logging, argparse, "
    "sqlite3, csv, zipfile";

double secs(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// fork + exec with stdout/stderr to `log`; envs are added to the environment.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log, const std::vector<std::string>& envs = {}) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  ::dup2(fd, 1);
  ::dup2(fd, 2);
  for (const auto& e : envs) ::putenv(const_cast<char*>(e.c_str()));
  std::vector<char*> a;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  ::execv(a[0], a.data());
  ::_exit(127);
}

int wait_exit(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

bool wait_for(const std::string& path) {
  for (int i = 0; i < 1000 && !stdfs::exists(path); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return stdfs::exists(path);  // 10 s hang guard
}

struct Nydusd {
  pid_t pid = -1;
  std::string mnt;
  std::unique_ptr<nydus::api::ApiClient> api;
  ~Nydusd() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      wait_exit(pid);
    }
    sh("fusermount3 -u -z '" + mnt + "' 2>/dev/null");
  }
};

std::unique_ptr<Nydusd> start_nydusd(const std::string& bin, const std::string& work) {
  auto d = std::make_unique<Nydusd>();
  d->mnt = work + "/mnt";
  const std::string sock = work + "/api.sock";
  stdfs::remove(sock);
  stdfs::create_directories(d->mnt);
  d->pid = spawn({bin, "--apisock", sock, "--mountpoint", d->mnt, "--log-level", "warn"}, work + "/nydusd.log");
  if (!wait_for(sock)) return nullptr;
  d->api = std::make_unique<nydus::api::ApiClient>(sock);
  return d;
}

// The snapshotter's legacy document (registry-and-cache.md §1) with a blob cache.
std::string fs_config(const Json& backend, const std::string& work_dir, bool prefetch, bool all, int amplify) {
  return Json{{"device",
               {{"backend", backend}, {"cache", {{"type", "blobcache"}, {"config", {{"work_dir", work_dir}}}}}}},
              {"mode", "direct"},
              {"digest_validate", false},
              {"enable_xattr", true},
              {"amplify_io", amplify},
              {"fs_prefetch",
               {{"enable", prefetch},
                {"prefetch_all", all},
                {"threads_count", 8},
                {"merging_size", 1 << 20},
                {"bandwidth_rate", 0}}}}
      .dump();
}

std::uint64_t field(const nydus::api::ClientResult<Json>& j, const char* key) {
  return j && j->contains(key) && (*j)[key].is_number() ? (*j)[key].get<std::uint64_t>() : 0;
}

struct Pass {
  double s = 0;
  std::uint64_t reads = 0, bytes = 0;
  bool ok = false;
};

struct Bench {
  std::string work, nydusd, blob_id, base;
  std::vector<std::string> hinted;
  std::vector<double> result[6];
  std::uint64_t reads[6] = {}, bytes[6] = {};

  // One pass: fresh nydusd and work_dir, page cache dropped, then timed
  // mount + workload. Kind "download": curl the whole blob, mount localfs.
  Pass run(const std::string& cfg_backend_kind, bool prefetch, bool all, int amplify, bool hints) {
    const std::string cache = work + "/cache", local = work + "/local";
    for (const auto& d : {cache, local}) {
      stdfs::remove_all(d);
      stdfs::create_directories(d);
    }
    auto d = start_nydusd(nydusd, work);
    if (!d) return {};
    drop_caches();
    Pass p;
    const bool download = cfg_backend_kind == "download";
    Json backend = download ? Json{{"type", "localfs"}, {"config", {{"dir", local}}}}
                            : Json{{"type", "registry"},
                                   {"config",
                                    {{"scheme", "http"},
                                     {"host", base.substr(7)},
                                     {"repo", kRepo},
                                     {"timeout", 30},
                                     {"connect_timeout", 5},
                                     {"retry_limit", 2}}}};
    nydus::api::ApiMountCmd cmd{work + "/img.boot", "rafs", fs_config(backend, cache, prefetch, all, amplify), {}};
    if (hints) cmd.prefetch_files = hinted;
    auto t = Clock::now();
    if (download &&
        sh("curl -s -f -o '" + local + "/" + blob_id + "' '" + base + "/v2/" + kRepo + "/blobs/sha256:" + blob_id + "'"))
      return p;
    if (!d->api->mount("/img", cmd)) return p;
    pid_t py = spawn({kPython, "-S", "-c", kImports}, work + "/workload.log", {"PYTHONHOME=" + d->mnt + "/img/usr"});
    p.ok = wait_exit(py) == 0;
    p.s = secs(t);
    auto m = d->api->backend_metrics("/img");
    p.reads = field(m, "read_count");
    p.bytes = field(m, "read_amount_total");
    return p;
  }
};

// What the workload loads, from the host's stdlib: the same paths in the image.
std::vector<std::string> hinted_files() {
  std::string out = sh_out(std::string(kPython) + " -S -c '" + kImports +
                           "\nimport sys\nfor m in list(sys.modules.values()):\n"
                           "  f = getattr(m, \"__cached__\", None) or getattr(m, \"__file__\", None)\n"
                           "  if f: print(f)'");
  std::vector<std::string> files;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(kStdlib, 0) == 0 && stdfs::is_regular_file(line)) files.push_back(line);
  }
  return files;
}

bool build_image(const std::string& work, std::string& blob_id, std::size_t& blob_size) {
  const std::string src = work + "/src";
  if (!stdfs::exists(src + kStdlib)) {
    stdfs::create_directories(src + "/usr/lib");
    if (sh(std::string("cp -a ") + kStdlib + " '" + src + "/usr/lib/'")) return false;
  }
  // One file: make_text_file repeats itself across files, which chunk dedup would fold.
  stdfs::create_directories(src + "/filler");
  nydus::bench::make_text_file(src + "/filler/data", 256ull << 20);
  nydus::storage::BuildOptions bo;
  bo.compressor = nydus::storage::Compressor::kZstd;
  bo.force_extended = true;
  stdfs::remove_all(work + "/blobs");
  stdfs::create_directories(work + "/blobs");
  auto built = nydus::storage::build_image_files(src, bo, work + "/img.boot", work + "/blobs");
  if (!built) {
    std::fprintf(stderr, "build: %s\n", built.error().to_string().c_str());
    return false;
  }
  blob_id = built->blob_id;
  blob_size = built->blob.size();
  return true;
}

int coldstart(const std::string& work, const std::string& nydusd, int rounds) {
  if (!stdfs::exists(kPython) || !stdfs::exists(kStdlib)) {
    std::printf("SKIP: %s or %s absent\n", kPython, kStdlib);
    return 0;
  }
  Bench b{work, nydusd, "", "", hinted_files(), {}, {}, {}};
  std::size_t blob_size = 0;
  if (!build_image(work, b.blob_id, blob_size)) return 1;
  std::printf("# image: %s + 256 MiB filler, zstd, 1 MiB chunks: blob %.1f MiB; hinted list %zu files\n", kStdlib,
              double(blob_size) / (1 << 20), b.hinted.size());
  std::string ports_file = work + "/ports";
  stdfs::remove(ports_file);
  pid_t reg = spawn({"/bin/sh", "-c",
                     std::string("exec python3 ") + NYDUS_SOURCE_DIR + "/tests/registry/fake_registry.py --blob-dir '" +
                         work + "/blobs' --repo " + kRepo + " --latency-ms 20 --rate-bytes 12000000 > '" + ports_file +
                         "'"},
                    work + "/registry.log");
  for (int i = 0; i < 1000 && sh_out("cat '" + ports_file + "' 2>/dev/null").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  int port = 0;
  std::sscanf(sh_out("cat '" + ports_file + "'").c_str(), "PORTS %d", &port);
  if (port == 0) {
    std::fprintf(stderr, "fake_registry did not start (%s/registry.log)\n", work.c_str());
    ::kill(reg, SIGKILL);
    return 1;
  }
  b.base = "http://127.0.0.1:" + std::to_string(port);
  struct Side {
    const char* name;
    const char* kind;
    bool prefetch, all;
    int amplify;
    bool hints;
  };
  const Side sides[6] = {
      {"no prefetch, amplify_io 1 MiB", "registry", false, false, 1 << 20, false},
      {"no prefetch, amplify_io 0", "registry", false, false, 0, false},
      {"prefetch_all (stock snapshotter config)", "registry", true, true, 1 << 20, false},
      {"hinted prefetch (--prefetch-files list), no prefetch_all", "registry", true, false, 1 << 20, true},
      {"hinted prefetch, amplify_io 0", "registry", true, false, 0, true},
      {"curl whole blob, then localfs mount", "download", false, false, 1 << 20, false},
  };
  bool failed = false;
  std::vector<double> host;  // the floor: the same workload on the host's stdlib, page cache dropped
  for (int r = 0; r < rounds; ++r) {
    drop_caches();
    auto t = Clock::now();
    failed |= wait_exit(spawn({kPython, "-S", "-c", kImports}, work + "/workload.log")) != 0;
    host.push_back(secs(t));
    for (int k = 0; k < 6; ++k) {
      int i = (k + r) % 6;  // rotate the order
      Pass p = b.run(sides[i].kind, sides[i].prefetch, sides[i].all, sides[i].amplify, sides[i].hints);
      failed |= !p.ok || (std::string(sides[i].kind) == "registry" && p.reads == 0);
      b.result[i].push_back(p.s);
      b.reads[i] = p.reads;
      b.bytes[i] = p.bytes;
      std::printf("# round %d %s: %.2f s, %lu backend reads, %.1f MiB%s\n", r, sides[i].name, p.s,
                  (unsigned long)p.reads, double(p.bytes) / (1 << 20), p.ok ? "" : " FAILED");
      std::fflush(stdout);
    }
  }
  ::kill(reg, SIGKILL);
  wait_exit(reg);
  std::printf("# %d rounds, median; load average %s\n", rounds, sh_out("cut -d' ' -f1-3 /proc/loadavg").c_str());
  std::printf("| side | mount + workload, s | backend requests | backend MiB |\n|---|---|---|---|\n");
  std::printf("| workload alone, host's stdlib (the floor) | %.2f | - | - |\n", median(host));
  for (int i = 0; i < 6; ++i)
    std::printf("| %s | %.2f | %lu | %.1f |\n", sides[i].name, median(b.result[i]), (unsigned long)b.reads[i],
                double(b.bytes[i]) / (1 << 20));
  if (failed) std::fprintf(stderr, "a pass failed (workload exit status, or no backend read)\n");
  return failed ? 1 : 0;
}

std::uint64_t status_kib(pid_t pid, const std::string& field = "VmRSS") {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1));
  return 0;
}

// nydusd's VmRSS every 50 ms from the mount request until data_all_ready:
// localfs + blob cache + prefetch_all over a 1 GiB file (zstd, 1 MiB chunks).
int rss(const std::string& work, const std::string& nydusd) {
  const std::string src = work + "/rss-src", blobs = work + "/rss-blobs";
  for (const auto& d : {src, blobs, work + "/cache"}) stdfs::create_directories(d);
  nydus::bench::make_text_file(src + "/big", 1ull << 30);
  stdfs::remove_all(blobs);
  stdfs::create_directories(blobs);
  nydus::storage::BuildOptions bo;
  auto built = nydus::storage::build_image_files(src, bo, work + "/rss.boot", blobs);
  if (!built) return 1;
  stdfs::remove_all(work + "/cache");
  stdfs::create_directories(work + "/cache");
  auto d = start_nydusd(nydusd, work);
  if (!d) return 1;
  drop_caches();
  const std::uint64_t idle = status_kib(d->pid);
  Json backend{{"type", "localfs"}, {"config", {{"dir", blobs}}}};
  nydus::api::ApiMountCmd cmd{work + "/rss.boot", "rafs", fs_config(backend, work + "/cache", true, true, 1 << 20), {}};
  auto t = Clock::now();
  if (!d->api->mount("/img", cmd)) return 1;
  std::uint64_t peak = 0, samples = 0;
  bool ready = false;
  while (!ready && secs(t) < 600) {  // hang guard
    peak = std::max(peak, status_kib(d->pid));
    ++samples;
    auto m = d->api->blobcache_metrics("/img");
    ready = m && m->value("data_all_ready", false);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const double s = secs(t);
  const std::uint64_t after = status_kib(d->pid);
  std::printf("# 1 GiB file, blob %.0f MiB, localfs + blobcache + prefetch_all (8 threads, 1 MiB runs); load %s\n",
              double(built->blob.size()) / (1 << 20), sh_out("cut -d' ' -f1-3 /proc/loadavg").c_str());
  std::printf("| nydusd VmRSS idle | peak, %lu samples | peak, VmHWM | after data_all_ready | prefetch time |\n",
              (unsigned long)samples);
  std::printf("|---|---|---|---|---|\n| %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f s%s |\n", idle / 1024.0,
              peak / 1024.0, status_kib(d->pid, "VmHWM") / 1024.0, after / 1024.0, s,
              ready ? "" : " (NOT ready: hang guard)");
  return ready ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const bool rss_mode = argc > 1 && std::string(argv[1]) == "--rss";
  const int a = rss_mode ? 2 : 1;
  std::string work = argc > a ? argv[a] : "/tmp/nydus-coldstart-bench";
  int rounds = !rss_mode && argc > 2 ? std::stoi(argv[2]) : 3;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "coldstart_bench needs root (FUSE, drop_caches)\n");
    return 2;
  }
  stdfs::create_directories(work);
  work = stdfs::canonical(work).string();
  const std::string nydusd = (stdfs::canonical("/proc/self/exe").parent_path() / "nydusd").string();
  return rss_mode ? rss(work, nydusd) : coldstart(work, nydusd, rounds);
}
