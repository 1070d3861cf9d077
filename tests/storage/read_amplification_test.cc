// Read amplification through the blob cache (docs/blobcache.md): a miss
// fetches the adjacent missing chunks after it in the same backend request;
// a reader of a chunk in such a batch waits for it instead of fetching it
// again; a failed batch fails only the read that started it; fetch_chunks
// (the prefetch primitive) fills a range in merged requests.
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "nydus/storage/blob_backend.h"
#include "nydus/storage/builder.h"
#include "nydus/storage/image.h"
#include "util/raw_client.h"
#include "util/wait.h"

namespace nydus::storage {
namespace {

namespace stdfs = std::filesystem;

constexpr std::uint64_t kMiB = 1 << 20;

// Counts data reads; the read after arm() blocks until release(), then fails
// if asked to.
class GateBackend final : public BlobBackend {
 public:
  explicit GateBackend(std::shared_ptr<BlobBackend> inner) : inner_(std::move(inner)) {}

  void arm() {
    std::lock_guard lock(mu_);
    armed_ = true;
  }
  bool wait_blocked() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, testutil::kHangGuard, [&] { return blocked_; });
  }
  void release(bool fail) {
    std::lock_guard lock(mu_);
    blocked_ = false;
    released_ = true;
    fail_ = fail;
    cv_.notify_all();
  }
  std::uint64_t reads() const { return reads_.load(); }
  // [begin, end) of every read so far.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges() {
    std::lock_guard lock(mu_);
    return ranges_;
  }

  Result<std::size_t> read(const std::string& blob_id, std::uint64_t offset, std::span<std::uint8_t> out) override {
    bool fail_this = false;
    {
      std::unique_lock lock(mu_);
      if (armed_) {
        armed_ = false;
        blocked_ = true;
        cv_.notify_all();
        cv_.wait_for(lock, testutil::kHangGuard, [&] { return released_; });
        fail_this = fail_;
      }
    }
    ++reads_;
    {
      std::lock_guard lock(mu_);
      ranges_.emplace_back(offset, offset + out.size());
    }
    if (fail_this) return fail(ErrorCode::kIo, "injected backend failure");
    return inner_->read(blob_id, offset, out);
  }
  Result<std::uint64_t> blob_size(const std::string& blob_id) override { return inner_->blob_size(blob_id); }
  const BackendMetrics& metrics() const override { return inner_->metrics(); }

 private:
  std::shared_ptr<BlobBackend> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false, blocked_ = false, released_ = false, fail_ = false;  // guarded by mu_
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges_;             // guarded by mu_
  std::atomic<std::uint64_t> reads_{0};
};

class ReadAmplificationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.file("src");
    blobs_ = dir_.file("blobs");
    meta_ = dir_.file("meta");
    for (const auto& d : {src_, blobs_, meta_}) stdfs::create_directories(d);
    // Text from a small vocabulary: zstd packs a 1 MiB chunk into well under half of it.
    std::mt19937 rng(16);
    std::vector<std::string> words;
    for (int i = 0; i < 400; ++i) {
      std::string w(3 + rng() % 8, 'a');
      for (char& ch : w) ch = char('a' + rng() % 26);
      words.push_back(w);
    }
    while (text_.size() < 8 * kMiB + 12345) text_ += words[rng() % words.size()] + (rng() % 12 ? " " : "\n");
    std::ofstream(src_ + "/text.txt", std::ios::binary) << text_;
    BuildOptions bo;
    bo.chunk_size = kMiB;
    bo.compressor = Compressor::kZstd;
    boot_ = dir_.file("img.boot");
    auto built = build_image_files(src_, bo, boot_, blobs_);
    ASSERT_TRUE(built) << built.error().message();
    chunks_ = built->chunks;
    blob_id_ = built->blob_id;
    ASSERT_EQ(chunks_, 9u);
    ASSERT_LT(built->blob.size(), 9 * kMiB / 2) << "test data compresses too little to merge chunks";
    // Chunk-info array cached in meta_ once, so that the counts below are data requests only.
    auto warm = open_image("warm", 0);
    ASSERT_TRUE(warm);
    ASSERT_TRUE(warm->read(ino(*warm), 0, 1));
  }

  // An image over a fresh gate, with a blob cache in `work` (none when empty).
  std::unique_ptr<Image> open_image(const std::string& work, std::uint64_t amplify_io,
                                    std::size_t chunk_cache_bytes = 64 * kMiB) {
    config::LocalFsConfig c;
    c.dir = blobs_;
    auto local = LocalFsBackend::create(c);
    EXPECT_TRUE(local);
    gate_ = std::make_shared<GateBackend>(std::shared_ptr<BlobBackend>(std::move(*local)));
    chunk_cache_ = std::make_shared<ChunkCache>(chunk_cache_bytes);
    ImageOptions o;
    o.backend = gate_;
    o.chunk_cache = chunk_cache_;
    o.blob_meta_dir = meta_;
    o.amplify_io = amplify_io;
    if (!work.empty()) {
      o.blob_cache_dir = dir_.file(work);
      stdfs::create_directories(o.blob_cache_dir);
    }
    auto im = Image::open(boot_, o);
    EXPECT_TRUE(im) << im.error().message();
    return im ? std::move(*im) : nullptr;
  }

  std::uint64_t ino(const Image& im) {
    auto a = im.lookup(im.root_ino(), "text.txt");
    EXPECT_TRUE(a);
    return a ? a->ino : 0;
  }

  // Reads the file in 128 KiB pieces (the kernel's request size), compares,
  // returns the backend requests made.
  std::uint64_t read_sequentially(const Image& im) {
    const std::uint64_t before = gate_->reads();
    std::string got;
    for (std::uint64_t off = 0; off < text_.size(); off += 128 << 10) {
      auto part = im.read(ino(im), off, 128 << 10);
      EXPECT_TRUE(part) << "at " << off << ": " << part.error().message();
      if (!part) break;
      got += *part;
    }
    EXPECT_TRUE(got == text_) << "file content differs";
    return gate_->reads() - before;
  }

  std::vector<std::uint8_t> chunk_map(const std::string& work) const {
    std::ifstream in(dir_.file(work) + "/" + blob_id_ + ".blob.data.chunk_map", std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  static bool bit(const std::vector<std::uint8_t>& map, std::uint64_t i) { return map[4096 + i / 8] >> (7 - i % 8) & 1; }

  testutil::TempDir dir_;
  std::string src_, blobs_, meta_, boot_, blob_id_, text_;
  std::uint64_t chunks_ = 0;
  std::shared_ptr<GateBackend> gate_;        // of the last open_image()
  std::shared_ptr<ChunkCache> chunk_cache_;  // of the last open_image()
};

// The acceptance point, locally: a sequential read of a zstd image
// with 1 MiB chunks makes at most half the backend requests of the
// unamplified path (amplify_io 0, or no blob cache).
TEST_F(ReadAmplificationTest, SequentialReadMakesAtMostHalfTheRequests) {
  auto plain = open_image("", kMiB);  // dummycache: the direct path, one chunk per request
  const std::uint64_t direct = read_sequentially(*plain);
  auto off = open_image("off", 0);
  const std::uint64_t unamplified = read_sequentially(*off);
  auto on = open_image("on", kMiB);
  const std::uint64_t amplified = read_sequentially(*on);
  EXPECT_EQ(direct, chunks_);
  EXPECT_EQ(unamplified, chunks_);
  EXPECT_LE(amplified * 2, unamplified) << amplified << " requests with amplification";
  auto map = chunk_map("on");
  for (std::uint64_t i = 0; i < chunks_; ++i) EXPECT_TRUE(bit(map, i)) << "chunk " << i;
  EXPECT_EQ(read_sequentially(*on), 0u);  // everything fetched was cached
}

TEST_F(ReadAmplificationTest, ReaderOfAChunkBeingFetchedWaitsForIt) {
  auto im = open_image("work", kMiB);
  gate_->arm();
  Result<std::string> first = fail(ErrorCode::kInternal, "not run");
  std::thread a([&] { first = im->read(ino(*im), 0, 4096); });  // chunk 0, batch with chunk 1
  ASSERT_TRUE(gate_->wait_blocked());
  Result<std::string> second = fail(ErrorCode::kInternal, "not run");
  std::thread b([&] { second = im->read(ino(*im), kMiB, 4096); });  // chunk 1: in the batch
  ASSERT_TRUE(testutil::eventually([&] { return chunk_cache_->waiting() == 1; })) << "b did not wait for the batch";
  gate_->release(false);
  a.join();
  b.join();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(*first, text_.substr(0, 4096));
  EXPECT_EQ(*second, text_.substr(kMiB, 4096));
  EXPECT_EQ(gate_->reads(), 1u) << "chunk 1 was fetched twice";
}

// A batch stops at the first chunk already cached: reading chunk 2, then
// chunk 0, fetches no byte twice. (A one-byte chunk cache, and a read in
// between: only the ready bit, not a decoded copy in memory, says chunk 2
// is there.)
TEST_F(ReadAmplificationTest, BatchStopsAtACachedChunk) {
  auto im = open_image("work", kMiB, 1);
  for (std::uint64_t chunk : {2, 8, 0}) {  // chunk 8 pushes chunk 2 out of the chunk cache
    auto got = im->read(ino(*im), chunk * kMiB, 4096);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(*got, text_.substr(chunk * kMiB, 4096));
  }
  auto r = gate_->ranges();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_LE(r[2].second, r[0].first) << "the last batch ran into chunks the first had cached";
  auto map = chunk_map("work");
  EXPECT_TRUE(bit(map, 0) && bit(map, 1) && bit(map, 2));
}

// The batch's request fails: its caller gets the error, a reader waiting
// for one of its extra chunks fetches that chunk itself, and no chunk of the
// failed batch is marked ready.
TEST_F(ReadAmplificationTest, FailedBatchFailsOnlyItsCaller) {
  auto im = open_image("work", kMiB);
  gate_->arm();
  Result<std::string> first = fail(ErrorCode::kInternal, "not run");
  std::thread a([&] { first = im->read(ino(*im), 0, 4096); });
  ASSERT_TRUE(gate_->wait_blocked());
  Result<std::string> second = fail(ErrorCode::kInternal, "not run");
  std::thread b([&] { second = im->read(ino(*im), kMiB, 4096); });
  ASSERT_TRUE(testutil::eventually([&] { return chunk_cache_->waiting() == 1; })) << "b did not wait for the batch";
  gate_->release(true);
  a.join();
  b.join();
  EXPECT_FALSE(first);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(*second, text_.substr(kMiB, 4096));
  EXPECT_EQ(gate_->reads(), 2u);
  EXPECT_FALSE(bit(chunk_map("work"), 0)) << "a chunk of the failed batch is marked ready";
  auto again = im->read(ino(*im), 0, 4096);  // the failure was not cached
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, text_.substr(0, 4096));
}

// The prefetch primitive: a range of chunks fetched in merged requests,
// every one written and marked ready; reads then need no backend.
TEST_F(ReadAmplificationTest, FetchChunksFillsARangeInMergedRequests) {
  auto im = open_image("work", 0);  // user reads unamplified: the merging is fetch_chunks' own
  auto n = im->fetch_chunks(0, 0, std::uint32_t(chunks_), kMiB);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, chunks_);
  EXPECT_LE(gate_->reads() * 2, chunks_);
  auto map = chunk_map("work");
  for (std::uint64_t i = 0; i < chunks_; ++i) EXPECT_TRUE(bit(map, i)) << "chunk " << i;
  EXPECT_EQ(read_sequentially(*im), 0u);
  auto again = im->fetch_chunks(0, 0, std::uint32_t(chunks_), kMiB);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);  // all ready: nothing fetched
  EXPECT_FALSE(im->fetch_chunks(0, 1, std::uint32_t(chunks_), kMiB)) << "a range beyond the blob";
  auto plain = open_image("", kMiB);
  auto none = plain->fetch_chunks(0, 0, 1, kMiB);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, 0u);  // no blob cache: nothing to fill
}

}  // namespace
}  // namespace nydus::storage
