// registry_bench: cold reads of a 256 MiB file from a zstd RAFS image whose
// blob lives in a local docker-registry (htpasswd auth, plain HTTP), through
// our FUSE stack in-process (PseudoFs + RafsFs + FuseServer, RegistryBackend),
// against `curl` downloading the same blob from the same registry in the same
// run (the transport's ceiling). Needs root, /dev/fuse, docker-registry,
// htpasswd and curl.
//
//   registry_bench [workdir] [fuse-threads] [rounds] [auth|noauth] [text|random] [prefetch-run-KiB]
//
// `random` serves a file of incompressible bytes instead of text-like ones:
// the blob is then as big as the file, so the mount moves curl's bytes
// through FUSE without decoding (the text's 2.8x is work curl never does).
// `prefetch-run-KiB` (default 1024, the snapshotter's merging_size) sizes
// the stock side's prefetch runs.
// `noauth` runs the registry without htpasswd: docker-registry checks a
// bcrypt hash on every authenticated request, which costs more than moving
// a chunk on this machine.
// Every pass mounts a fresh instance (new backend, new 16 MiB chunk cache,
// and for the blob cache rows an empty work_dir) and drops the page cache,
// so every byte comes from the registry. Each pass runs three times: without
// a blob cache (one chunk per request), with a blob cache and amplify_io 1 MiB
// (adjacent chunks merged into one request), and (seq only) with the
// snapshotter's stock settings: that plus prefetch_all (8 workers, 1 MiB runs)
// started at mount time, as nydusd does.
//   seq:  read() of the whole file in 128 KiB calls; throughput is counted
//         in blob bytes fetched per second so it compares with curl's;
//   rand: 1024 pread()s of 4 KiB at random aligned offsets, each timed
//         (p50 / p99 per read).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "nydus/daemon/metrics_json.h"
#include "nydus/fs/fuse_server.h"
#include "nydus/fs/pseudo_fs.h"
#include "nydus/fs/rafs_fs.h"
#include "nydus/storage/builder.h"
#include "nydus/storage/prefetch.h"
#include "nydus/storage/registry_backend.h"

namespace {

namespace stdfs = std::filesystem;
using nydus::bench::drop_caches;
using nydus::bench::sh;
using nydus::bench::sh_out;
using Clock = std::chrono::steady_clock;
constexpr std::uint64_t kFileSize = 256ull << 20;
constexpr int kRandomReads = 1024;
const char* kUser = "bench";
const char* kPass = "bench-pass";
const char* kAuth = "YmVuY2g6YmVuY2gtcGFzcw==";  // base64 bench:bench-pass
const char* kRepo = "bench/image";


// CPU seconds (user + system) used so far by `who` (RUSAGE_SELF: the FUSE
// stack, backend and prefetch, all in-process; RUSAGE_CHILDREN: curl).
double cpu_secs(int who) {
  rusage u{};
  ::getrusage(who, &u);
  auto s = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// CPU seconds (user + system) process `pid` has used (/proc/<pid>/stat).
double proc_cpu_secs(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::istringstream in(all.substr(all.rfind(')') + 2));  // fields from 3 (state) on
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);  // utime, stime
  }
  return ticks / double(::sysconf(_SC_CLK_TCK));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, std::size_t(p * double(v.size())))];
}

// docker-registry on 127.0.0.1:port with htpasswd auth; its pid, or -1.
pid_t start_registry(const std::string& work, int port, bool auth) {
  sh("htpasswd -Bbn " + std::string(kUser) + " " + kPass + " > '" + work + "/htpasswd'");
  std::ofstream(work + "/registry.yml") << "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                                        << "storage:\n  filesystem:\n    rootdirectory: " << work << "/storage\n"
                                        << "http:\n  addr: 127.0.0.1:" << port << "\n"
                                        << (auth ? "auth:\n  htpasswd:\n    realm: bench\n    path: " + work + "/htpasswd\n" : "");
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open((work + "/registry.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl("/usr/bin/docker-registry", "docker-registry", "serve", (work + "/registry.yml").c_str(), nullptr);
    ::_exit(127);
  }
  const std::string probe = "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:" + std::to_string(port) + "/v2/";
  for (int i = 0; i < 200; ++i) {  // 10 s hang guard
    std::string code = sh_out(probe);
    if (code == "401" || code == "200") return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return -1;
}

bool push(const std::string& base, const std::string& blob_path, const std::string& digest) {
  const std::string auth = std::string(" -u ") + kUser + ":" + kPass;
  std::string loc = sh_out("curl -s -i -X POST" + auth + " '" + base + "/v2/" + kRepo +
                           "/blobs/uploads/' | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p'");
  if (loc.empty()) return false;
  if (loc[0] == '/') loc = base + loc;
  loc += (loc.find('?') == std::string::npos ? "?" : "&") + std::string("digest=sha256:") + digest;
  return sh_out("curl -s -o /dev/null -w '%{http_code}' -X PUT" + auth +
                " -H 'Content-Type: application/octet-stream' --data-binary @'" + blob_path + "' '" + loc + "'") ==
         "201";
}

}  // namespace

int main(int argc, char** argv) {
  std::string work = argc > 1 ? argv[1] : "/tmp/nydus-registry-bench";
  unsigned threads = argc > 2 ? unsigned(std::stoi(argv[2])) : 4;
  int rounds = argc > 3 ? std::stoi(argv[3]) : 3;
  bool auth = !(argc > 4 && std::string(argv[4]) == "noauth");
  bool random = argc > 5 && std::string(argv[5]) == "random";
  const std::uint64_t prefetch_run = (argc > 6 ? std::stoull(argv[6]) : 1024) << 10;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "registry_bench needs root (FUSE, drop_caches)\n");
    return 2;
  }
  const std::string src = work + (random ? "/src-random" : "/src"), mnt = work + "/mnt", blobs = work + "/blobs";
  stdfs::remove_all(work + "/storage");
  for (const auto& d : {src, mnt, blobs}) stdfs::create_directories(d);
  if (random) {
    nydus::bench::make_random_file(src + "/big", kFileSize);
  } else {
    nydus::bench::make_text_file(src + "/big", kFileSize);
  }
  nydus::storage::BuildOptions bo;
  bo.compressor = nydus::storage::Compressor::kZstd;
  auto built = nydus::storage::build_image_files(src, bo, work + "/img.boot", blobs);
  if (!built) {
    std::fprintf(stderr, "build: %s\n", built.error().to_string().c_str());
    return 1;
  }
  const double blob_mib = double(built->blob.size()) / (1 << 20);
  std::printf("# image zstd, 1 MiB chunks, %s content: blob %zu B (%.2fx smaller than the data)\n",
              random ? "incompressible" : "text-like", built->blob.size(), double(kFileSize) / double(built->blob.size()));

  const int port = 20000 + int(::getpid() % 20000);
  pid_t reg = start_registry(work, port, auth);
  if (reg < 0) {
    std::fprintf(stderr, "docker-registry did not start (see %s/registry.log)\n", work.c_str());
    return 1;
  }
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  if (!push(base, blobs + "/" + built->blob_id, built->blob_id)) {
    std::fprintf(stderr, "push failed\n");
    ::kill(reg, SIGKILL);
    return 1;
  }

  nydus::fs::PseudoFs pseudo;
  nydus::fs::FuseServerOptions fo;
  fo.threads = threads;
  auto server = nydus::fs::FuseServer::start(pseudo, mnt, fo);
  if (!server) {
    std::fprintf(stderr, "FUSE: %s\n", server.error().to_string().c_str());
    ::kill(reg, SIGKILL);
    return 1;
  }
  int instance = 0;
  std::shared_ptr<nydus::storage::BlobBackend> last_backend;
  std::unique_ptr<nydus::storage::Prefetcher> prefetch;  // the stock side's, for one pass
  // A fresh instance: new backend (no connections, no cached state), new chunk cache.
  // side 0: no blob cache; 1: blob cache + amplify_io; 2: that + prefetch_all.
  auto attach = [&](int side) -> std::string {
    const bool blob_cache = side > 0;
    nydus::config::RegistryConfig rc;
    rc.scheme = "http";
    rc.host = "127.0.0.1:" + std::to_string(port);
    rc.repo = kRepo;
    if (auth) rc.auth = kAuth;
    rc.retry_limit = 2;
    auto be = nydus::storage::RegistryBackend::create(rc);
    nydus::fs::RafsOptions o;
    o.bootstrap = work + "/img.boot";
    o.image.backend = last_backend = std::shared_ptr<nydus::storage::BlobBackend>(std::move(*be));
    o.image.chunk_cache = std::make_shared<nydus::storage::ChunkCache>(16u << 20);
    if (blob_cache) {
      // Emptied for every pass (an earlier instance keeps its unlinked files open).
      o.image.blob_cache_dir = work + "/cache";
      std::filesystem::remove_all(o.image.blob_cache_dir);
      std::filesystem::create_directories(o.image.blob_cache_dir);
      o.image.amplify_io = 1 << 20;
    }
    auto fs = nydus::fs::RafsFs::open(std::move(o));
    if (!fs) return "";
    if (side == 2) {
      nydus::storage::PrefetchOptions po;
      po.prefetch_all = true;
      po.batch_size = prefetch_run;
      prefetch = nydus::storage::Prefetcher::start(std::shared_ptr<const nydus::storage::Image>(*fs, &(*fs)->image()), po);
    }
    std::string name = "/i" + std::to_string(instance++);
    (void)pseudo.attach(name, *fs, std::make_shared<nydus::fs::FsMetrics>(name, nydus::fs::FsMetricsOptions{}));
    return mnt + name + "/big";
  };

  std::mt19937_64 rng(7);
  std::vector<off_t> offsets(kRandomReads);
  for (auto& o : offsets) o = off_t((rng() % (kFileSize / 4096)) * 4096);
  std::vector<double> curl_s, seq_s[3], lat_ms[2];  // indexed by attach()'s side
  std::vector<double> curl_cpu, seq_cpu[3], reg_cpu[4];  // reg_cpu: the registry's, [3] during curl
  bool failed = false;
  for (int r = 0; r < rounds; ++r) {
    drop_caches();
    auto t = Clock::now();
    double cpu0 = cpu_secs(RUSAGE_CHILDREN), reg0 = proc_cpu_secs(reg);
    std::string got = sh_out("curl -s -o /dev/null -w '%{size_download}' -u " + std::string(kUser) + ":" + kPass +
                             " '" + base + "/v2/" + kRepo + "/blobs/sha256:" + built->blob_id + "'");
    curl_s.push_back(std::chrono::duration<double>(Clock::now() - t).count());
    curl_cpu.push_back(cpu_secs(RUSAGE_CHILDREN) - cpu0);
    reg_cpu[3].push_back(proc_cpu_secs(reg) - reg0);
    failed |= got != std::to_string(built->blob.size());

    for (int cached = 0; cached < 3; ++cached) {
      drop_caches();
      std::string path = attach(cached);
      std::vector<char> buf(128 << 10);
      t = Clock::now();
      cpu0 = cpu_secs(RUSAGE_SELF);
      reg0 = proc_cpu_secs(reg);
      int fd = ::open(path.c_str(), O_RDONLY);
      std::uint64_t total = 0;
      for (ssize_t n; fd >= 0 && (n = ::read(fd, buf.data(), buf.size())) > 0;) total += std::uint64_t(n);
      if (fd >= 0) ::close(fd);
      seq_s[cached].push_back(std::chrono::duration<double>(Clock::now() - t).count());
      if (cached == 2) {  // the prefetch may still be busy: its CPU belongs to the pass too
        prefetch.reset();
      }
      seq_cpu[cached].push_back(cpu_secs(RUSAGE_SELF) - cpu0);
      reg_cpu[cached].push_back(proc_cpu_secs(reg) - reg0);
      std::printf("# seq pass backend%s: %s\n", cached ? " (blob cache)" : "",
                  nydus::daemon::backend_metrics_json(last_backend->metrics().snapshot()).c_str());
      failed |= total != kFileSize;
      prefetch.reset();
      if (cached == 2) continue;

      path = attach(cached);
      drop_caches();
      fd = ::open(path.c_str(), O_RDONLY);
      for (off_t off : offsets) {
        auto t0 = Clock::now();
        failed |= ::pread(fd, buf.data(), 4096, off) != 4096;
        lat_ms[cached].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      if (fd >= 0) ::close(fd);
    }
  }
  double c = median(curl_s);
  std::printf("# %d rounds, median; page cache dropped and a fresh instance before every pass; %u FUSE threads; %s; "
              "load average %s\n",
              rounds, threads, auth ? "htpasswd auth" : "no auth", sh_out("cut -d' ' -f1-3 /proc/loadavg").c_str());
  std::printf("# prefetch runs of at most %llu KiB\n", (unsigned long long)(prefetch_run >> 10));
  std::printf("| side | cold sequential, blob MiB/s | file MiB/s | vs curl | CPU s per pass (client / registry) |\n"
              "|---|---|---|---|---|\n");
  std::printf("| curl, whole blob in one GET | %.0f | - | 1.00 | %.2f / %.2f |\n", blob_mib / c, median(curl_cpu),
              median(reg_cpu[3]));
  const char* names[3] = {"nydusd FUSE, no blob cache", "nydusd FUSE, blobcache + amplify_io 1 MiB",
                          "nydusd FUSE, stock: blobcache + amplify_io 1 MiB + prefetch_all"};
  for (int k = 0; k < 3; ++k) {
    double s = median(seq_s[k]);
    std::printf("| %s | %.0f | %.0f | %.2f | %.2f / %.2f |\n", names[k], blob_mib / s, 256 / s, c / s,
                median(seq_cpu[k]), median(reg_cpu[k]));
  }
  for (int k = 0; k < 2; ++k) {
    std::printf("\n%s: cold random 4 KiB reads (%zu): p50 %.2f ms, p99 %.2f ms", names[k], lat_ms[k].size(),
                percentile(lat_ms[k], 0.5), percentile(lat_ms[k], 0.99));
  }
  std::printf("\n");
  (*server)->stop();
  ::kill(reg, SIGKILL);
  ::waitpid(reg, nullptr, 0);
  if (failed) std::fprintf(stderr, "a pass failed (short read or download)\n");
  return failed ? 1 : 0;
}
