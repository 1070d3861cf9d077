// rafs_bench: 4 KiB reads of a 256 MiB file from a generated RAFS image
// through our FUSE mount (PseudoFs + RafsFs + FuseServer, in-process, blobs
// from a localfs backend) against the kernel's EROFS mount of the same
// uncompressed image (bootstrap + cache image as `device=`), measured in the
// same run. Needs root, /dev/fuse, EROFS and loop devices.
//
//   rafs_bench [workdir] [fuse-threads] [rounds]
//
// Images: uncompressed and zstd, 1 MiB chunks, built by the project's
// generator from one 256 MiB file (text-like bytes, ~3x compressible by zstd).
// Measurements, each with the page cache dropped before the pass (so every
// side fetches from its storage: the blob file for ours, the loop device for
// the kernel), median over `rounds`:
//   seq:  read() of the whole file in 4 KiB calls;
//   rand: 8192 pread()s of 4 KiB at random 4 KiB-aligned offsets (same
//         sequence for every side).
// Prints MiB/s per side and the ratios ours/kernel (throughput).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "nydus/fs/fuse_server.h"
#include "nydus/fs/pseudo_fs.h"
#include "nydus/fs/rafs_fs.h"
#include "nydus/storage/builder.h"

namespace {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr std::uint64_t kFileSize = 256ull << 20;
constexpr std::size_t kIo = 4096;
constexpr int kRandomReads = 8192;

int sh(const std::string& cmd) { return std::system(cmd.c_str()); }

std::string sh_out(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void drop_caches() {
  ::sync();
  std::ofstream("/proc/sys/vm/drop_caches") << "3\n";
}

// Words from a small vocabulary with random separators: compressible like text, never repeating.
void make_source(const std::string& path) {
  if (stdfs::exists(path) && stdfs::file_size(path) == kFileSize) return;
  static const char* kWords[] = {"nydus", "image", "chunk", "blob", "lazy", "fuse", "erofs", "layer",
                                 "container", "snapshot", "registry", "bootstrap", "inode", "digest", "zstd", "read"};
  std::mt19937_64 rng(42);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  std::string buf;
  std::uint64_t written = 0;
  while (written < kFileSize) {
    buf.clear();
    while (buf.size() < (1 << 20)) {
      std::uint64_t r = rng();
      buf += kWords[r & 15];
      buf += " \n,.;:"[(r >> 4) % 6];
      buf += std::to_string((r >> 8) & 0xfff);
    }
    std::size_t n = std::size_t(std::min<std::uint64_t>(buf.size(), kFileSize - written));
    f.write(buf.data(), std::streamsize(n));
    written += n;
  }
}

double seq_read(const std::string& path) {
  drop_caches();
  std::vector<char> buf(kIo);
  auto t = Clock::now();
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return -1;
  std::uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    total += std::uint64_t(n);
  }
  ::close(fd);
  double s = std::chrono::duration<double>(Clock::now() - t).count();
  return total == kFileSize ? s : -1;
}

double random_read(const std::string& path, const std::vector<off_t>& offsets) {
  drop_caches();
  std::vector<char> buf(kIo);
  auto t = Clock::now();
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return -1;
  for (off_t off : offsets) {
    if (::pread(fd, buf.data(), buf.size(), off) != ssize_t(kIo)) {
      ::close(fd);
      return -1;
    }
  }
  ::close(fd);
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Image {
  std::string name, boot, blobs, cache;
};

bool build(const std::string& src, const std::string& work, nydus::storage::Compressor c, Image& out) {
  nydus::storage::BuildOptions o;
  o.compressor = c;
  o.cache_image = true;
  out.boot = work + "/" + out.name + ".boot";
  out.blobs = work + "/blobs";
  out.cache = work + "/" + out.name + ".cache";
  stdfs::create_directories(out.blobs);
  auto r = nydus::storage::build_image_files(src, o, out.boot, out.blobs);
  if (!r) {
    std::fprintf(stderr, "build %s: %s\n", out.name.c_str(), r.error().to_string().c_str());
    return false;
  }
  std::ofstream f(out.cache, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(r->cache_image.data()), std::streamsize(r->cache_image.size()));
  std::printf("# image %s: bootstrap %zu B, blob %zu B (%.2fx smaller than the data)\n", out.name.c_str(),
              r->bootstrap.size(), r->blob.size(), double(kFileSize) / double(r->blob.size()));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string work = argc > 1 ? argv[1] : "/tmp/nydus-rafs-bench";
  unsigned threads = argc > 2 ? unsigned(std::stoi(argv[2])) : 4;
  int rounds = argc > 3 ? std::stoi(argv[3]) : 3;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "rafs_bench needs root (FUSE, loop devices, drop_caches)\n");
    return 2;
  }
  const std::string src = work + "/src", mnt = work + "/mnt", kmnt = work + "/kernel";
  stdfs::create_directories(src);
  stdfs::create_directories(mnt);
  stdfs::create_directories(kmnt);
  make_source(src + "/big");

  Image none{"none", "", "", ""}, zstd{"zstd", "", "", ""};
  if (!build(src, work, nydus::storage::Compressor::kNone, none) ||
      !build(src, work, nydus::storage::Compressor::kZstd, zstd))
    return 1;

  nydus::fs::PseudoFs pseudo;
  // As nydusd's FuseService: one chunk cache of the default size for all instances.
  auto chunk_cache = std::make_shared<nydus::storage::ChunkCache>(16u << 20);
  for (const Image* im : {&none, &zstd}) {
    nydus::config::LocalFsConfig lc;
    lc.dir = im->blobs;
    auto be = nydus::storage::LocalFsBackend::create(lc);
    nydus::fs::RafsOptions o;
    o.bootstrap = im->boot;
    o.image.backend = std::shared_ptr<nydus::storage::BlobBackend>(std::move(*be));
    o.image.chunk_cache = chunk_cache;
    auto fs = nydus::fs::RafsFs::open(std::move(o));
    if (!fs) {
      std::fprintf(stderr, "open %s: %s\n", im->boot.c_str(), fs.error().to_string().c_str());
      return 1;
    }
    (void)pseudo.attach("/" + im->name, *fs, std::make_shared<nydus::fs::FsMetrics>("/" + im->name, nydus::fs::FsMetricsOptions{}));
  }
  nydus::fs::FuseServerOptions fo;
  fo.threads = threads;
  auto server = nydus::fs::FuseServer::start(pseudo, mnt, fo);
  if (!server) {
    std::fprintf(stderr, "FUSE: %s\n", server.error().to_string().c_str());
    return 1;
  }
  std::string loop = sh_out("losetup -f --show -r '" + none.cache + "'");
  if (loop.empty() || sh("mount -t erofs -o loop,ro,device=" + loop + " '" + none.boot + "' '" + kmnt + "'") != 0) {
    std::fprintf(stderr, "kernel EROFS mount failed\n");
    (*server)->stop();
    if (!loop.empty()) sh("losetup -d " + loop);
    return 1;
  }

  std::mt19937_64 rng(7);
  std::vector<off_t> offsets(kRandomReads);
  for (auto& o : offsets) o = off_t((rng() % (kFileSize / kIo)) * kIo);

  const std::string paths[3] = {kmnt + "/big", mnt + "/none/big", mnt + "/zstd/big"};
  const char* labels[3] = {"kernel EROFS (uncompressed)", "nydusd FUSE, uncompressed", "nydusd FUSE, zstd"};
  std::vector<double> seq[3], rnd[3];
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < 3; ++i) {
      int k = (i + r) % 3;  // rotate the order from round to round
      seq[k].push_back(seq_read(paths[k]));
      rnd[k].push_back(random_read(paths[k], offsets));
    }
  }
  std::printf("# %d rounds, median; page cache dropped before every pass; %u FUSE threads\n", rounds, threads);
  std::printf("| side | seq 4 KiB reads MiB/s | seq vs kernel | random 4 KiB reads/s | random vs kernel |\n");
  std::printf("|---|---|---|---|---|\n");
  double ks = median(seq[0]), kr = median(rnd[0]);
  bool failed = false;
  for (int i = 0; i < 3; ++i) {
    double s = median(seq[i]), rr = median(rnd[i]);
    failed |= s < 0 || rr < 0;
    std::printf("| %s | %.0f | %.2f | %.0f | %.2f |\n", labels[i], 256 / s, ks / s, kRandomReads / rr, kr / rr);
  }
  sh("umount '" + kmnt + "'");
  sh("losetup -d " + loop);
  (*server)->stop();
  if (failed) std::fprintf(stderr, "a pass failed (short read or open error)\n");
  return failed ? 1 : 0;
}
