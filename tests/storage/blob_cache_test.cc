// The on-disk blob cache through Image (docs/blobcache.md): an image read
// once is served again from work_dir with the backend gone; the cache files
// are upstream's (chunk_map decoded by byte arithmetic here, .blob.data equal
// to the builder's uncompressed cache image); two images share one entry; a
// truncated or overwritten .blob.data never yields wrong bytes.
#include "nydus/storage/blob_cache.h"

#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <csignal>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "nydus/storage/builder.h"
#include "nydus/storage/image.h"
#include "nydus/storage/walk.h"
#include "util/raw_client.h"

namespace nydus::storage {
namespace {

namespace stdfs = std::filesystem;

std::vector<std::uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

class BlobCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.file("src");
    blobs_ = dir_.file("blobs");
    work_ = dir_.file("work");
    for (const auto& d : {src_, blobs_, work_}) stdfs::create_directories(d);
    std::mt19937 rng(7);
    std::string random(300000, '\0');
    for (char& ch : random) ch = char(rng());
    files_["/text.txt"] = std::string(200000, 'x') + "end";
    files_["/random.bin"] = random;
    files_["/small"] = "small file\n";
    for (const auto& [name, body] : files_) std::ofstream(src_ + name, std::ios::binary) << body;
    BuildOptions bo;
    bo.chunk_size = 64 << 10;  // several chunks per file
    bo.cache_image = true;
    boot_ = dir_.file("img.boot");
    auto built = build_image_files(src_, bo, boot_, blobs_);
    ASSERT_TRUE(built) << built.error().message();
    blob_id_ = built->blob_id;
    chunks_ = built->chunks;
    cache_image_ = built->cache_image;
  }

  std::shared_ptr<BlobBackend> localfs() {
    config::LocalFsConfig c;
    c.dir = blobs_;
    auto b = LocalFsBackend::create(c);
    EXPECT_TRUE(b);
    return std::shared_ptr<BlobBackend>(std::move(*b));
  }

  std::unique_ptr<Image> open_image(std::shared_ptr<BlobCacheRegistry> registry = nullptr, bool validate = false,
                                    std::shared_ptr<ChunkCache> chunks = nullptr) {
    ImageOptions o;
    o.chunk_cache = std::move(chunks);
    o.backend = backend_ = localfs();
    o.blob_meta_dir = work_;
    o.blob_cache_dir = work_;
    o.blob_caches = std::move(registry);
    o.digest_validate = validate;
    o.blob_cache_compressed = compressed_;
    o.amplify_io = amplify_;
    auto im = Image::open(boot_, o);
    EXPECT_TRUE(im) << im.error().message();
    return im ? std::move(*im) : nullptr;
  }

  // Reads every file in 4 KiB pieces (many reads inside one chunk) and
  // compares; `backwards` reads each file from its end, so a chunk far into
  // the blob is fetched before the ones below it.
  void expect_all_files(const Image& im, bool backwards = false) {
    for (const auto& [name, body] : files_) {
      auto a = im.lookup(im.root_ino(), name.substr(1));
      ASSERT_TRUE(a) << name;
      std::string got(body.size(), '\0');
      const std::uint64_t pieces = (body.size() + 4095) / 4096;
      for (std::uint64_t k = 0; k < pieces; ++k) {
        std::uint64_t off = 4096 * (backwards ? pieces - 1 - k : k);
        auto part = im.read(a->ino, off, 4096);
        ASSERT_TRUE(part) << name << " at " << off << ": " << part.error().message();
        got.replace(off, part->size(), *part);
      }
      EXPECT_TRUE(got == body) << name << " differs";
    }
  }

  std::string data_path() const { return work_ + "/" + blob_id_ + ".blob.data"; }
  std::string map_path() const { return data_path() + ".chunk_map"; }
  std::string raw_path() const { return work_ + "/" + blob_id_ + ".blob.raw"; }

  testutil::TempDir dir_;
  std::string src_, blobs_, work_, boot_, blob_id_;
  std::uint64_t chunks_ = 0;
  std::vector<std::uint8_t> cache_image_;
  std::map<std::string, std::string> files_;
  std::shared_ptr<BlobBackend> backend_;  // of the last open_image()
  bool compressed_ = false;               // cache.compressed: `.blob.raw`
  std::uint64_t amplify_ = 0;
};

TEST_F(BlobCacheTest, ReadOnceThenServedWithTheBackendGone) {
  {
    auto im = open_image();
    ASSERT_TRUE(im);
    expect_all_files(*im);
    EXPECT_GT(backend_->metrics().read_count(), 0u);
  }
  // Upstream's files: the chunk_map's header says all ready, every bit set.
  auto map = slurp(map_path());
  ASSERT_EQ(map.size(), 4096 + (chunks_ + 7) / 8);
  EXPECT_EQ(map[0] | map[1] << 8 | map[2] << 16 | std::uint32_t(map[3]) << 24, 0x424D4150u);
  EXPECT_EQ(map[12] | map[13] << 8 | map[14] << 16 | std::uint32_t(map[15]) << 24, 0x4D4D4150u);
  for (std::uint64_t i = 0; i < chunks_; ++i) EXPECT_TRUE(map[4096 + i / 8] & (1u << (7 - i % 8))) << "chunk " << i;
  // .blob.data holds each chunk uncompressed at its uncompressed offset: the builder's cache image.
  auto data = slurp(data_path());
  ASSERT_GE(data.size(), 1u);
  ASSERT_LE(data.size(), cache_image_.size());
  EXPECT_TRUE(std::equal(data.begin(), data.end(), cache_image_.begin()));

  stdfs::remove_all(blobs_);
  stdfs::create_directories(blobs_);
  auto again = open_image();
  ASSERT_TRUE(again);
  expect_all_files(*again);
  EXPECT_EQ(backend_->metrics().read_count(), 0u);
}

TEST_F(BlobCacheTest, TwoImagesShareOneCacheEntry) {
  auto registry = std::make_shared<BlobCacheRegistry>();
  auto a = open_image(registry);
  auto b = open_image(registry);
  auto b_backend = backend_;
  ASSERT_TRUE(a && b);
  expect_all_files(*a);
  expect_all_files(*b);
  EXPECT_EQ(b_backend->metrics().read_count(), 0u) << "the second image fetched chunks the first had cached";
}

TEST_F(BlobCacheTest, TruncatedDataFileIsNeverServed) {
  // A one-byte chunk cache: every miss really goes to the blob cache file.
  auto im = open_image(nullptr, false, std::make_shared<ChunkCache>(1));
  ASSERT_TRUE(im);
  expect_all_files(*im);
  ASSERT_EQ(::truncate(data_path().c_str(), 4096), 0);  // cut under the mount, bits still set
  // The short read is detected and the file bypassed. Were the far chunk
  // fetched and written back, the file would grow again with zeros under set bits.
  expect_all_files(*im, /*backwards=*/true);
  expect_all_files(*im);
}

TEST_F(BlobCacheTest, ValidationRefetchesAnOverwrittenChunk) {
  { expect_all_files(*open_image()); }
  {
    std::fstream f(data_path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f << std::string(8192, '\x5a');  // corrupt cached data, keep its bits
  }
  auto im = open_image(nullptr, /*validate=*/true);
  ASSERT_TRUE(im);
  expect_all_files(*im);
  EXPECT_GT(backend_->metrics().read_count(), 0u);
  auto data = slurp(data_path());
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 8192, cache_image_.begin())) << "the bad chunk was not rewritten";
}

TEST_F(BlobCacheTest, UnusableWorkDirFallsBackToTheBackend) {
  ImageOptions o;
  o.backend = localfs();
  o.blob_cache_dir = dir_.file("absent-dir");
  auto im = Image::open(boot_, o);
  ASSERT_TRUE(im);
  expect_all_files(**im);
}

TEST_F(BlobCacheTest, WrongSizedDataFileIsEmptiedWithItsMap) {
  { expect_all_files(*open_image()); }
  ASSERT_EQ(::truncate(data_path().c_str(), 100), 0);
  auto im = open_image();
  ASSERT_TRUE(im);
  expect_all_files(*im);
  EXPECT_GT(backend_->metrics().read_count(), 0u);
}

TEST_F(BlobCacheTest, StatsCountReadsHitsAndAllReady) {
  auto im = open_image();
  ASSERT_TRUE(im);
  auto s = im->blob_cache_stats();
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.store_path, work_);
  EXPECT_EQ(s.total, 0u);
  EXPECT_FALSE(s.data_all_ready);
  auto rnd = im->lookup(im->root_ino(), "random.bin");
  ASSERT_TRUE(rnd);
  ASSERT_TRUE(im->read(rnd->ino, 0, 4096));                   // chunk 0: miss
  ASSERT_TRUE(im->read(rnd->ino, 4096, 4096));                // chunk 0: whole hit
  ASSERT_TRUE(im->read(rnd->ino, (64 << 10) - 4096, 8192));   // chunk 0 hit + chunk 1 miss: partial
  s = im->blob_cache_stats();
  EXPECT_EQ(s.total, 3u);
  EXPECT_EQ(s.whole_hits, 1u);
  EXPECT_EQ(s.partial_hits, 1u);
  EXPECT_EQ(s.entries_count, 1u);
  EXPECT_EQ(s.underlying_files, std::vector<std::string>{data_path()});
  EXPECT_FALSE(s.data_all_ready);
  expect_all_files(*im);
  s = im->blob_cache_stats();
  EXPECT_TRUE(s.data_all_ready);
  const auto before = s;
  expect_all_files(*im);  // everything cached now: every read a whole hit
  s = im->blob_cache_stats();
  EXPECT_GT(s.total, before.total);
  EXPECT_EQ(s.whole_hits - before.whole_hits, s.total - before.total);
  EXPECT_EQ(s.partial_hits, before.partial_hits);

  ImageOptions plain;
  plain.backend = localfs();
  auto direct = Image::open(boot_, plain);
  ASSERT_TRUE(direct);
  EXPECT_FALSE((*direct)->blob_cache_stats().enabled);
}

// A cache write that fails (here EFBIG past RLIMIT_FSIZE, as ENOSPC would)
// leaves its chunk not ready: the read is still served from the backend and
// no bit is ever set over data that was not written.
TEST_F(BlobCacheTest, FailedCacheWritesServeReadsAndMarkNothing) {
  auto im = open_image(nullptr, false, std::make_shared<ChunkCache>(1));
  ASSERT_TRUE(im);
  auto small = im->lookup(im->root_ino(), "small");
  ASSERT_TRUE(small);
  ASSERT_TRUE(im->read(small->ino, 0, 4096));  // opens the cache files at full size
  ASSERT_GT(cache_image_.size(), 128u << 10);
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of a signal
  struct rlimit low = old;
  low.rlim_cur = 64 << 10;  // the chunk_map (about 4 KiB) stays writable, most of .blob.data not
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &low), 0);
  expect_all_files(*im);
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);

  auto map = slurp(map_path());
  auto data = slurp(data_path());
  ASSERT_EQ(map.size(), 4096 + (chunks_ + 7) / 8);
  ASSERT_EQ(data.size(), cache_image_.size());
  std::uint64_t ready = 0;
  // Chunks are 64 KiB and 4 KiB aligned in the cache image: chunk i of the
  // blob is not necessarily at i * 64 KiB, so check every ready chunk's bytes
  // through a fresh image that reads only from the cache.
  for (std::uint64_t i = 0; i < chunks_; ++i) ready += (map[4096 + i / 8] >> (7 - i % 8)) & 1;
  EXPECT_LT(ready, chunks_) << "writes past the limit cannot have succeeded";
  stdfs::remove_all(blobs_);
  stdfs::create_directories(blobs_);
  auto cached_only = open_image();
  ASSERT_TRUE(cached_only);
  for (const auto& [name, body] : files_) {
    auto a = cached_only->lookup(cached_only->root_ino(), name.substr(1));
    ASSERT_TRUE(a);
    for (std::uint64_t off = 0; off < body.size(); off += 4096) {
      auto part = cached_only->read(a->ino, off, 4096);
      // A chunk not ready now needs the (removed) backend: an error, never other bytes.
      if (part) {
        EXPECT_TRUE(*part == body.substr(off, 4096)) << name << " at " << off;
      }
    }
  }
}

// A tmpfs of `size` (read-only when `ro`) mounted for one test, detached after it.
class SmallFs {
 public:
  SmallFs(const std::string& dir, const char* size, bool ro) : dir_(dir) {
    stdfs::create_directories(dir);
    std::string opts = std::string("size=") + size;
    if (::mount("tmpfs", dir.c_str(), "tmpfs", ro ? MS_RDONLY : 0, opts.c_str()) != 0) {
      error_ = std::string("cannot mount a tmpfs: ") + std::strerror(errno);
    }
  }
  ~SmallFs() {
    if (error_.empty()) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  const std::string& error() const { return error_; }

 private:
  std::string dir_, error_;
};

// Opens the image with its blob cache in `work`, its events in `events`,
// and the event limit's clock at `*now`.
std::unique_ptr<Image> open_reporting(const std::string& boot, std::shared_ptr<BlobBackend> backend,
                                      const std::string& work, std::vector<std::string>& events,
                                      std::chrono::steady_clock::time_point* now) {
  ImageOptions o;
  o.backend = std::move(backend);
  o.blob_cache_dir = work;
  o.chunk_cache = std::make_shared<ChunkCache>(1);  // every read a miss until cached
  o.on_cache_error = [&events](std::string text) { events.push_back(std::move(text)); };  // reads run on this thread
  o.cache_report_clock = [now] { return *now; };
  auto im = Image::open(boot, o);
  EXPECT_TRUE(im) << im.error().message();
  return im ? std::move(*im) : nullptr;
}

// work_dir full: every read is still served (from the backend), no chunk is
// marked ready over data that was not written, and the daemon hears of it
// once a minute, the next report counting what was left out.
TEST_F(BlobCacheTest, FullWorkDirIsOneEventAndReadsStillServed) {
  SmallFs fs(dir_.file("tiny"), "64k", false);
  if (!fs.error().empty()) GTEST_SKIP() << fs.error();
  ASSERT_GT(cache_image_.size(), 256u << 10) << "the image must not fit in the tmpfs";
  std::vector<std::string> events;
  auto now = std::chrono::steady_clock::now();
  {
    auto im = open_reporting(boot_, localfs(), dir_.file("tiny"), events, &now);
    ASSERT_TRUE(im);
    expect_all_files(*im);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_NE(events[0].find(std::strerror(ENOSPC)), std::string::npos) << events[0];
    EXPECT_NE(events[0].find("reads go to the backend"), std::string::npos) << events[0];
    now += std::chrono::seconds(61);
    expect_all_files(*im);  // the chunks that did not fit are fetched (and fail to be cached) again
    ASSERT_EQ(events.size(), 2u);
    EXPECT_NE(events[1].find("suppressed"), std::string::npos) << events[1];
  }
  // Whatever is marked ready holds its bytes: with the backend gone, a read
  // is the file's bytes or an error, never other bytes.
  stdfs::remove_all(blobs_);
  stdfs::create_directories(blobs_);
  auto cached_only = open_reporting(boot_, localfs(), dir_.file("tiny"), events, &now);
  ASSERT_TRUE(cached_only);
  for (const auto& [name, body] : files_) {
    auto a = cached_only->lookup(cached_only->root_ino(), name.substr(1));
    ASSERT_TRUE(a);
    for (std::uint64_t off = 0; off < body.size(); off += 4096) {
      auto part = cached_only->read(a->ino, off, 4096);
      if (part) {
        EXPECT_TRUE(*part == body.substr(off, 4096)) << name << " at " << off;
      }
    }
  }
}

// A read-only work_dir: the cache cannot even be opened; reads are served
// from the backend and that is one event.
TEST_F(BlobCacheTest, ReadOnlyWorkDirIsOneEventAndReadsStillServed) {
  SmallFs fs(dir_.file("ro"), "64k", true);
  if (!fs.error().empty()) GTEST_SKIP() << fs.error();
  std::vector<std::string> events;
  auto now = std::chrono::steady_clock::now();
  auto im = open_reporting(boot_, localfs(), dir_.file("ro"), events, &now);
  ASSERT_TRUE(im);
  expect_all_files(*im);
  expect_all_files(*im);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].find(std::strerror(EROFS)), std::string::npos) << events[0];
}

// cache.compressed (CacheLayout::kRaw): `.blob.raw` holds each chunk as stored
// at its compressed offset, the chunk_map keeps upstream's `.blob.data.chunk_map`.
class RawBlobCacheTest : public BlobCacheTest {
 protected:
  void SetUp() override {
    BlobCacheTest::SetUp();
    compressed_ = true;
    blob_ = slurp(blobs_ + "/" + blob_id_);
  }

  // Every chunk's bytes in `.blob.raw` are the blob's at its compressed offset.
  void expect_raw_matches_blob(const Image& im) {
    auto chunks = im.blob_chunks(0);
    ASSERT_TRUE(chunks);
    auto raw = slurp(raw_path());
    ASSERT_EQ(raw.size(), compressed_data_size(im.blobs()[0]));
    for (std::size_t i = 0; i < (*chunks)->size(); ++i) {
      const ChunkInfo& c = (**chunks)[i];
      ASSERT_LE(c.compressed_offset + c.compressed_size, raw.size());
      EXPECT_TRUE(std::equal(raw.begin() + c.compressed_offset, raw.begin() + c.compressed_offset + c.compressed_size,
                             blob_.begin() + c.compressed_offset))
          << "chunk " << i;
    }
  }

  void remove_backend_blob() {
    stdfs::remove_all(blobs_);
    stdfs::create_directories(blobs_);
  }

  std::vector<std::uint8_t> blob_;
};

TEST_F(RawBlobCacheTest, ReadOnceThenServedWithTheBackendGone) {
  {
    auto im = open_image();
    ASSERT_TRUE(im);
    ASSERT_GT(im->blobs()[0].compressed_size, 0u);
    ASSERT_LT(im->blobs()[0].compressed_size, im->blobs()[0].uncompressed_size) << "the test wants a compressing image";
    expect_all_files(*im);
    EXPECT_GT(backend_->metrics().read_count(), 0u);
    expect_raw_matches_blob(*im);
    EXPECT_EQ(im->blob_cache_stats().underlying_files, std::vector<std::string>{raw_path()});
  }
  EXPECT_FALSE(stdfs::exists(data_path())) << "a compressed cache writes no .blob.data";
  // The chunk_map, decoded by byte arithmetic: upstream's name and layout.
  auto map = slurp(map_path());
  ASSERT_EQ(map.size(), 4096 + (chunks_ + 7) / 8);
  EXPECT_EQ(map[0] | map[1] << 8 | map[2] << 16 | std::uint32_t(map[3]) << 24, 0x424D4150u);
  EXPECT_EQ(map[4] | map[5] << 8 | map[6] << 16 | std::uint32_t(map[7]) << 24, 1u);
  EXPECT_EQ(map[8] | map[9] << 8 | map[10] << 16 | std::uint32_t(map[11]) << 24, 0x434D4150u);
  EXPECT_EQ(map[12] | map[13] << 8 | map[14] << 16 | std::uint32_t(map[15]) << 24, 0x4D4D4150u);
  for (std::uint64_t i = 0; i < chunks_; ++i) EXPECT_TRUE(map[4096 + i / 8] & (1u << (7 - i % 8))) << "chunk " << i;

  remove_backend_blob();
  auto again = open_image();
  ASSERT_TRUE(again);
  expect_all_files(*again);
  EXPECT_EQ(backend_->metrics().read_count(), 0u);
}

TEST_F(RawBlobCacheTest, AmplifiedFetchesAreStoredWhole) {
  amplify_ = 1 << 20;
  {
    auto im = open_image();
    ASSERT_TRUE(im);
    expect_all_files(*im);
    EXPECT_LT(backend_->metrics().read_count(), chunks_) << "reads were not merged";
    expect_raw_matches_blob(*im);
  }
  remove_backend_blob();
  auto again = open_image();
  ASSERT_TRUE(again);
  expect_all_files(*again);
  EXPECT_EQ(backend_->metrics().read_count(), 0u);
}

TEST_F(RawBlobCacheTest, ValidationRefetchesAnOverwrittenChunk) {
  { expect_all_files(*open_image()); }
  {
    std::fstream f(raw_path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f << std::string(8192, '\x5a');  // corrupt stored chunks, keep their bits
  }
  auto im = open_image(nullptr, /*validate=*/true);
  ASSERT_TRUE(im);
  expect_all_files(*im);
  EXPECT_GT(backend_->metrics().read_count(), 0u);
  expect_raw_matches_blob(*im);
}

TEST_F(RawBlobCacheTest, WrongSizedRawFileIsDiscarded) {
  { expect_all_files(*open_image()); }
  ASSERT_EQ(::truncate(raw_path().c_str(), 100), 0);
  auto im = open_image();
  ASSERT_TRUE(im);
  expect_all_files(*im);
  EXPECT_GT(backend_->metrics().read_count(), 0u);
  expect_raw_matches_blob(*im);
}

TEST_F(RawBlobCacheTest, TruncatedRawFileIsNeverServed) {
  // A one-byte chunk cache: every read of a compressed chunk decodes from `.blob.raw`,
  // and incompressible chunks (random.bin) are read from it in place.
  auto im = open_image(nullptr, false, std::make_shared<ChunkCache>(1));
  ASSERT_TRUE(im);
  expect_all_files(*im);
  ASSERT_EQ(::truncate(raw_path().c_str(), 4096), 0);  // cut under the mount, bits still set
  expect_all_files(*im, /*backwards=*/true);
  expect_all_files(*im);
}

TEST_F(RawBlobCacheTest, SwitchingLayoutsNeverTrustsTheOtherFilesBits) {
  // Both layouts share one chunk_map file. A `.blob.data` holding one file,
  // then a `.blob.raw` holding all: the map's bits describe `.blob.raw` only.
  compressed_ = false;
  {
    auto im = open_image();
    ASSERT_TRUE(im);
    auto a = im->lookup(im->root_ino(), "small");
    ASSERT_TRUE(a);
    ASSERT_TRUE(im->read(a->ino, 0, 4096));
  }
  compressed_ = true;
  { expect_all_files(*open_image()); }
  EXPECT_FALSE(stdfs::exists(data_path())) << "the other layout's file was kept beside a map it does not match";
  compressed_ = false;
  auto im = open_image();
  ASSERT_TRUE(im);
  expect_all_files(*im);
  EXPECT_GT(backend_->metrics().read_count(), 0u);
}

}  // namespace
}  // namespace nydus::storage
