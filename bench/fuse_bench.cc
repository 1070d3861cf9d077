// fuse_bench: sequential read and stat throughput through a passthrough FUSE
// mount (PseudoFs + PassthroughFs + FuseServer, in-process) versus directly
// on the source directory. Needs root and /dev/fuse.
//
//   fuse_bench [workdir] [threads]
//
// Prints one line per measurement and the ratio mount/direct.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "nydus/daemon/metrics_json.h"
#include "nydus/fs/fuse_server.h"
#include "nydus/fs/passthrough_fs.h"
#include "nydus/fs/pseudo_fs.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kFileSize = 256u << 20;
constexpr std::size_t kChunk = 1u << 20;
constexpr int kFiles = 10000;

double seconds(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

double read_file(const std::string& path) {
  std::vector<char> buf(kChunk);
  auto t = Clock::now();
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return -1;
  std::size_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    total += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (total != kFileSize) return -1;
  return seconds(t);
}

double stat_files(const std::string& dir) {
  auto t = Clock::now();
  struct stat st {};
  for (int i = 0; i < kFiles; ++i) {
    std::string p = dir + "/f" + std::to_string(i);
    if (::lstat(p.c_str(), &st) != 0) return -1;
  }
  return seconds(t);
}

template <class F>
double best_of(int n, F f) {
  double best = 1e9;
  for (int i = 0; i < n; ++i) best = std::min(best, f());
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string work = argc > 1 ? argv[1] : "/tmp/nydus-fuse-bench";
  unsigned threads = argc > 2 ? static_cast<unsigned>(std::stoi(argv[2])) : 4;
  namespace stdfs = std::filesystem;
  std::string src = work + "/src", mnt = work + "/mnt";
  stdfs::create_directories(src + "/many");
  stdfs::create_directories(mnt);
  if (!stdfs::exists(src + "/big") || stdfs::file_size(src + "/big") != kFileSize) {
    std::vector<char> chunk(kChunk, 'x');
    FILE* f = std::fopen((src + "/big").c_str(), "wb");
    for (std::size_t i = 0; i < kFileSize / kChunk; ++i) std::fwrite(chunk.data(), 1, chunk.size(), f);
    std::fclose(f);
    for (int i = 0; i < kFiles; ++i) std::fclose(std::fopen((src + "/many/f" + std::to_string(i)).c_str(), "wb"));
  }
  nydus::fs::PseudoFs pseudo;
  auto fs = nydus::fs::PassthroughFs::create({src, {}});
  if (!fs) return 1;
  auto metrics = std::make_shared<nydus::fs::FsMetrics>("/", nydus::fs::FsMetricsOptions{});
  (void)pseudo.attach("/", *fs, metrics);
  nydus::fs::FuseServerOptions o;
  o.threads = threads;
  auto server = nydus::fs::FuseServer::start(pseudo, mnt, o);
  if (!server) {
    std::fprintf(stderr, "%s\n", server.error().to_string().c_str());
    return 1;
  }
  read_file(src + "/big");  // source in the page cache for both sides
  double rd = best_of(3, [&] { return read_file(src + "/big"); });
  double rm = best_of(3, [&] { return read_file(mnt + "/big"); });  // keep_cache=0: every open reads through the daemon
  std::printf("seq read 256 MiB, 1 MiB reads: direct %.3f s (%.0f MiB/s), fuse %.3f s (%.0f MiB/s), ratio fuse/direct time %.2f\n",
              rd, 256 / rd, rm, 256 / rm, rm / rd);
  std::printf("read metrics: %s\n", nydus::daemon::global_metrics_json(metrics->snapshot()).c_str());  // request sizes the kernel sent
  double sd = best_of(3, [&] { return stat_files(src + "/many"); });
  // Cold: fresh instance so every name needs a FUSE lookup.
  auto fs2 = nydus::fs::PassthroughFs::create({src, {}});
  (void)pseudo.swap("/", *fs2, std::make_shared<nydus::fs::FsMetrics>("/", nydus::fs::FsMetricsOptions{}));
  double sc = stat_files(mnt + "/many");
  double sw = stat_files(mnt + "/many");  // within the 1 s entry/attr timeout: kernel cache
  std::printf("stat 10000 files: direct %.4f s, fuse cold %.4f s (ratio %.1f), fuse warm %.4f s (ratio %.2f)\n", sd, sc,
              sc / sd, sw, sw / sd);
  (*server)->stop();
  return 0;
}
