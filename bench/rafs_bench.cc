// rafs_bench: 4 KiB reads of a 256 MiB file from a generated RAFS image
// through our FUSE mount (PseudoFs + RafsFs + FuseServer, in-process, blobs
// from a localfs backend) against the kernel's EROFS mount of the same
// uncompressed image (bootstrap + cache image as `device=`), measured in the
// same run. Needs root, /dev/fuse, EROFS and loop devices.
//
//   rafs_bench [workdir] [fuse-threads] [rounds] [fuse-readahead-kb]
//
// Images: uncompressed and zstd with 1 MiB chunks (the nydus default), and
// zstd with 64 KiB chunks (shows what the chunk size costs random reads),
// built by the project's generator from one 256 MiB file (text-like bytes,
// ~3x compressible by zstd). The zstd image is served twice: straight from
// the backend, and with a warm blob cache (cache.type blobcache: every chunk
// in `<work>/cache/<blob_id>.blob.data`, filled by one untimed read first).
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
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "nydus/fs/fuse_server.h"
#include "nydus/fs/pseudo_fs.h"
#include "nydus/fs/rafs_fs.h"
#include "nydus/storage/builder.h"

namespace {

namespace stdfs = std::filesystem;
using nydus::bench::drop_caches;
using nydus::bench::sh;
using nydus::bench::sh_out;
using Clock = std::chrono::steady_clock;
constexpr std::uint64_t kFileSize = 256ull << 20;
constexpr std::size_t kIo = 4096;
constexpr int kRandomReads = 8192;

void make_source(const std::string& path) { nydus::bench::make_text_file(path, kFileSize); }

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

// FUSE read counters of one instance (FsMetrics): requests, bytes, microseconds in the daemon.
struct Counters {
  double reads = 0, bytes = 0, us = 0;
  Counters operator-(const Counters& o) const { return {reads - o.reads, bytes - o.bytes, us - o.us}; }
  Counters& operator+=(const Counters& o) {
    reads += o.reads, bytes += o.bytes, us += o.us;
    return *this;
  }
};

Counters counters_of(const nydus::fs::FsMetrics* m) {
  if (!m) return {};
  auto j = nlohmann::json::parse(m->global_json());
  constexpr int kRead = 4;  // index of Read in the fop arrays
  return {j["fop_hits"][kRead].get<double>(), j["data_read"].get<double>(),
          j["fop_cumulative_latency_total"][kRead].get<double>()};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Image {
  std::string name, label;
  nydus::storage::Compressor compressor;
  std::uint32_t chunk_size;
  bool blob_cache = false;  // served through an on-disk blob cache in <work>/cache
  std::string boot = {}, blobs = {}, cache = {};
};

bool build(const std::string& src, const std::string& work, Image& out) {
  nydus::storage::BuildOptions o;
  o.compressor = out.compressor;
  o.chunk_size = out.chunk_size;
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
  unsigned ra_kb = argc > 4 ? unsigned(std::stoi(argv[4])) : nydus::fs::kDefaultReadaheadKb;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "rafs_bench needs root (FUSE, loop devices, drop_caches)\n");
    return 2;
  }
  const std::string src = work + "/src", mnt = work + "/mnt", kmnt = work + "/kernel";
  stdfs::create_directories(src);
  stdfs::create_directories(mnt);
  stdfs::create_directories(kmnt);
  make_source(src + "/big");

  using nydus::storage::Compressor;
  std::vector<Image> images = {
      {"none", "nydusd FUSE, uncompressed", Compressor::kNone, 1u << 20},
      {"zstd", "nydusd FUSE, zstd", Compressor::kZstd, 1u << 20},
      {"zstd64k", "nydusd FUSE, zstd, 64 KiB chunks", Compressor::kZstd, 64u << 10},
      {"zstdbc", "nydusd FUSE, zstd, warm blob cache", Compressor::kZstd, 1u << 20, true},
  };
  for (Image& im : images)
    if (!build(src, work, im)) return 1;
  const Image& none = images[0];

  nydus::fs::PseudoFs pseudo;
  // As nydusd's FuseService: one chunk cache of the default size for all instances.
  auto chunk_cache = std::make_shared<nydus::storage::ChunkCache>(16u << 20);
  auto blob_caches = std::make_shared<nydus::storage::BlobCacheRegistry>();
  const std::string cache_dir = work + "/cache";
  stdfs::remove_all(cache_dir);
  stdfs::create_directories(cache_dir);
  std::vector<std::shared_ptr<nydus::fs::FsMetrics>> metrics;  // per image: the daemon's side of every pass
  for (const Image& im : images) {
    nydus::config::LocalFsConfig lc;
    lc.dir = im.blobs;
    auto be = nydus::storage::LocalFsBackend::create(lc);
    nydus::fs::RafsOptions o;
    o.bootstrap = im.boot;
    o.image.backend = std::shared_ptr<nydus::storage::BlobBackend>(std::move(*be));
    o.image.chunk_cache = chunk_cache;
    if (im.blob_cache) {
      o.image.blob_cache_dir = cache_dir;
      o.image.blob_caches = blob_caches;
    }
    auto fs = nydus::fs::RafsFs::open(std::move(o));
    if (!fs) {
      std::fprintf(stderr, "open %s: %s\n", im.boot.c_str(), fs.error().to_string().c_str());
      return 1;
    }
    metrics.push_back(std::make_shared<nydus::fs::FsMetrics>("/" + im.name, nydus::fs::FsMetricsOptions{}));
    (void)pseudo.attach("/" + im.name, *fs, metrics.back());
  }
  nydus::fs::FuseServerOptions fo;
  fo.threads = threads;
  auto server = nydus::fs::FuseServer::start(pseudo, mnt, fo);
  if (!server) {
    std::fprintf(stderr, "FUSE: %s\n", server.error().to_string().c_str());
    return 1;
  }
  // As nydusd (FuseServiceOptions::readahead_kb) once INIT is answered.
  struct stat mst {};
  if (::stat(mnt.c_str(), &mst) != 0 || !nydus::fs::set_fuse_readahead(mst.st_dev, ra_kb)) {
    std::fprintf(stderr, "cannot set the FUSE readahead to %u KiB\n", ra_kb);
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

  std::vector<std::string> paths = {kmnt + "/big"}, labels = {"kernel EROFS (uncompressed)"};
  for (const Image& im : images) {
    paths.push_back(mnt + "/" + im.name + "/big");
    labels.push_back(im.label);
  }
  const std::size_t sides = paths.size();
  bool fill_failed = false;
  for (const Image& im : images)  // fill the blob caches: the warm side is measured warm
    if (im.blob_cache && seq_read(mnt + "/" + im.name + "/big") < 0) {
      std::fprintf(stderr, "filling the blob cache of %s failed\n", im.name.c_str());
      fill_failed = true;
    }
  std::vector<std::vector<double>> seq(sides), rnd(sides);
  std::vector<Counters> seq_reads(sides), rnd_reads(sides);
  for (int r = 0; r < rounds && !fill_failed; ++r) {
    for (std::size_t i = 0; i < sides; ++i) {
      std::size_t k = (i + std::size_t(r)) % sides;  // rotate the order from round to round
      Counters c0 = counters_of(k == 0 ? nullptr : metrics[k - 1].get());
      seq[k].push_back(seq_read(paths[k]));
      Counters c1 = counters_of(k == 0 ? nullptr : metrics[k - 1].get());
      rnd[k].push_back(random_read(paths[k], offsets));
      Counters c2 = counters_of(k == 0 ? nullptr : metrics[k - 1].get());
      seq_reads[k] += c1 - c0;
      rnd_reads[k] += c2 - c1;
    }
  }
  std::printf("# %d rounds, median; page cache dropped before every pass; %u FUSE threads, readahead %u KiB\n",
              rounds, threads, ra_kb);
  std::printf("| side | seq 4 KiB reads MiB/s | seq vs kernel | random 4 KiB reads/s | random vs kernel |\n");
  std::printf("|---|---|---|---|---|\n");
  const bool no_data = fill_failed || rounds < 1;
  bool failed = no_data;
  double ks = no_data ? 0 : median(seq[0]), kr = no_data ? 0 : median(rnd[0]);
  for (std::size_t i = 0; i < sides && !no_data; ++i) {
    double s = median(seq[i]), rr = median(rnd[i]);
    failed |= s < 0 || rr < 0;
    std::printf("| %s | %.0f | %.2f | %.0f | %.2f |\n", labels[i].c_str(), 256 / s, ks / s, kRandomReads / rr, kr / rr);
  }
  // Timing counters (FsMetrics), per kind of pass: FUSE requests per pass, their
  // size, and the time spent in the daemon per request and per pass (summed
  // over workers); the rest of a pass is the kernel (FUSE round trips, page
  // cache, readahead) and the reader.
  for (std::size_t i = 1; i < sides && !no_data; ++i) {
    for (const auto& [kind, c, times] :
         {std::tuple{"seq", &seq_reads[i], &seq[i]}, std::tuple{"random", &rnd_reads[i], &rnd[i]}}) {
      double passes = double(rounds), wall = 0;
      for (double t : *times) wall += t;
      std::printf("# %s, %s: %.0f FUSE reads of %.0f KiB per pass, %.0f us each in the daemon, "
                  "daemon time %.0f%% of the pass\n",
                  labels[i].c_str(), kind, c->reads / passes, c->bytes / std::max(c->reads, 1.0) / 1024,
                  c->us / std::max(c->reads, 1.0), 100 * c->us / 1e6 / wall);
    }
  }
  sh("umount '" + kmnt + "'");
  sh("losetup -d " + loop);
  (*server)->stop();
  if (failed) std::fprintf(stderr, "a pass failed (short read or open error)\n");
  return failed ? 1 : 0;
}
