// Prefetch into the blob cache (prefetch.h, docs/blobcache.md "Prefetch"):
// prefetch_all fills every chunk with no user read; a file list or the
// bootstrap's prefetch table limits it to those files; stop() interrupts a
// bandwidth wait and leaves no thread; a failing backend is reported once
// per blob and later reads still work.
#include "nydus/storage/prefetch.h"

#include <dirent.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "nydus/storage/blob_cache.h"
#include "nydus/storage/builder.h"
#include "util/raw_client.h"
#include "util/wait.h"

namespace nydus::storage {
namespace {

namespace stdfs = std::filesystem;
using testutil::eventually;

std::size_t thread_count() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

// localfs whose chunk reads (not the chunk-info array) can be held at a
// gate and made to fail.
class TestBackend final : public BlobBackend {
 public:
  TestBackend(std::shared_ptr<BlobBackend> inner, std::uint64_t data_end) : inner_(std::move(inner)), data_end_(data_end) {}
  // Chunk reads wait at the gate (open unless closed), then fail if `fail` is set.
  Result<std::size_t> read(const std::string& id, std::uint64_t off, std::span<std::uint8_t> out) override {
    if (off < data_end_) {
      std::unique_lock lock(mu_);
      ++data_reads_;
      offsets_.push_back(off);
      ++blocked_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      --blocked_;
      if (fail) return fail_with(ErrorCode::kIo, "injected backend failure");
    }
    return inner_->read(id, off, out);
  }
  Result<std::uint64_t> blob_size(const std::string& id) override { return inner_->blob_size(id); }
  const BackendMetrics& metrics() const override { return inner_->metrics(); }

  std::uint64_t data_reads() const {
    std::lock_guard lock(mu_);
    return data_reads_;
  }
  std::vector<std::uint64_t> offsets() const {
    std::lock_guard lock(mu_);
    return offsets_;
  }
  void close_gate() {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void open_gate() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait_blocked(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, testutil::kHangGuard, [&] { return blocked_ >= n; });
  }
  std::atomic<bool> fail{false};

 private:
  static tl::unexpected<Error> fail_with(ErrorCode c, const char* what) { return tl::unexpected(Error(c, what)); }
  const std::shared_ptr<BlobBackend> inner_;
  const std::uint64_t data_end_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  std::size_t blocked_ = 0;
  std::uint64_t data_reads_ = 0;  // chunk reads (below data_end_), guarded by mu_
  std::vector<std::uint64_t> offsets_;  // of those reads, in order; guarded by mu_
};

class PrefetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.file("src");
    blobs_ = dir_.file("blobs");
    work_ = dir_.file("work");
    for (const auto& d : {src_ + "/a", src_ + "/b", blobs_, work_}) stdfs::create_directories(d);
    std::mt19937 rng(11);
    auto random = [&](std::size_t n) {
      std::string s(n, '\0');
      for (char& ch : s) ch = char(rng());
      return s;
    };
    files_["/a/one"] = random(150000);
    files_["/a/two"] = random(70000);
    files_["/b/three"] = random(200000);
    files_["/top"] = std::string(100000, 't');
    for (const auto& [name, body] : files_) std::ofstream(src_ + name, std::ios::binary) << body;
  }

  void build(std::vector<std::string> table = {}) {
    BuildOptions bo;
    bo.chunk_size = 64 << 10;
    bo.prefetch_paths = std::move(table);
    auto built = build_image_files(src_, bo, dir_.file("img.boot"), blobs_);
    ASSERT_TRUE(built) << built.error().message();
    blob_id_ = built->blob_id;
    chunks_ = built->chunks;
  }

  std::shared_ptr<const Image> open_image() {
    config::LocalFsConfig c;
    c.dir = blobs_;
    auto local = LocalFsBackend::create(c);
    EXPECT_TRUE(local);
    ImageOptions o;
    o.blob_meta_dir = work_;
    o.blob_cache_dir = work_;
    o.blob_caches = registry_;
    // The chunk-info array is cached in work_ first, so only chunk reads reach the backend.
    o.backend = std::shared_ptr<BlobBackend>(std::move(*local));
    auto probe = Image::open(dir_.file("img.boot"), o);
    EXPECT_TRUE(probe) << probe.error().message();
    if (!probe) return nullptr;
    EXPECT_TRUE((*probe)->blob_chunks(0));
    backend_ = std::make_shared<TestBackend>(o.backend, (*probe)->blobs()[0].ci_offset);
    o.backend = backend_;
    auto im = Image::open(dir_.file("img.boot"), o);
    EXPECT_TRUE(im) << im.error().message();
    return im ? std::shared_ptr<const Image>(std::move(*im)) : nullptr;
  }

  // Which chunks of blob 0 are ready in the (shared) cache entry.
  std::set<std::uint32_t> ready(const Image& im) {
    auto infos = im.blob_chunks(0);
    EXPECT_TRUE(infos);
    auto f = registry_->get(work_, blob_id_, **infos, BlobSizes{im.blobs()[0].uncompressed_size, 0});
    EXPECT_TRUE(f);
    std::set<std::uint32_t> out;
    for (std::uint32_t i = 0; i < (*infos)->size(); ++i) {
      if ((*f)->is_ready(i)) out.insert(i);
    }
    return out;
  }

  std::set<std::uint32_t> chunks_of(const Image& im, const std::vector<std::string>& names) {
    std::vector<ChunkRef> refs;
    for (const auto& name : names) {
      std::uint64_t ino = im.root_ino();
      for (auto part : stdfs::path(name.substr(1))) {
        auto a = im.lookup(ino, part.string());
        EXPECT_TRUE(a) << name;
        ino = a->ino;
      }
      EXPECT_TRUE(im.file_chunks(ino, refs));
    }
    std::set<std::uint32_t> out;
    for (const ChunkRef& r : refs) out.insert(r.index);
    return out;
  }

  void expect_all_files(const Image& im) {
    for (const auto& [name, body] : files_) {
      std::uint64_t ino = im.root_ino();
      for (auto part : stdfs::path(name.substr(1))) ino = im.lookup(ino, part.string())->ino;
      auto got = im.read(ino, 0, body.size());
      ASSERT_TRUE(got) << name << ": " << got.error().message();
      EXPECT_TRUE(*got == body) << name << " differs";
    }
  }

  std::unique_ptr<Prefetcher> run(std::shared_ptr<const Image> im, PrefetchOptions o) {
    auto p = Prefetcher::start(std::move(im), std::move(o));
    EXPECT_TRUE(eventually([&] { return p->finished(); }));
    return p;
  }

  testutil::TempDir dir_;
  std::string src_, blobs_, work_, blob_id_;
  std::uint64_t chunks_ = 0;
  std::map<std::string, std::string> files_;
  std::shared_ptr<BlobCacheRegistry> registry_ = std::make_shared<BlobCacheRegistry>();
  std::shared_ptr<TestBackend> backend_;
};

TEST_F(PrefetchTest, PrefetchAllFillsEveryChunkWithoutAUserRead) {
  build();
  auto im = open_image();
  ASSERT_TRUE(im);
  const std::size_t threads_before = thread_count();
  auto p = run(im, PrefetchOptions{.threads = 4, .batch_size = 128 << 10, .prefetch_all = true});
  EXPECT_TRUE(eventually([&] { return thread_count() == threads_before; })) << "workers exit when done";
  const BlobCacheStats s = im->blob_cache_stats();
  EXPECT_TRUE(s.data_all_ready);
  EXPECT_EQ(s.total, 0u) << "no user read";
  EXPECT_EQ(ready(*im).size(), chunks_);
  const PrefetchStats st = p->stats();
  std::uint64_t bytes = 0;
  for (const ChunkInfo& c : **im->blob_chunks(0)) bytes += c.compressed_size;
  EXPECT_EQ(st.data_amount, bytes);
  // Each run (two 64 KiB chunks within 128 KiB) is one merged backend request.
  EXPECT_EQ(st.requests, backend_->data_reads());
  EXPECT_GT(st.requests, 0u);
  EXPECT_LE(st.requests, (chunks_ + 1) / 2);
  EXPECT_EQ(st.unmerged_chunks, chunks_);
  EXPECT_EQ(st.workers, 0u);
  EXPECT_EQ(st.failures, 0u);
  EXPECT_GT(st.begin_millis, 0u);
  EXPECT_GE(st.end_millis, st.begin_millis);

  // Everything is served from the cache with the blob gone.
  stdfs::remove_all(blobs_);
  ImageOptions o;  // no backend at all
  o.blob_meta_dir = o.blob_cache_dir = work_;
  auto again = Image::open(dir_.file("img.boot"), o);
  ASSERT_TRUE(again);
  expect_all_files(**again);
  EXPECT_TRUE((*again)->blob_cache_stats().data_all_ready);
}

// prefetch_all fetches the small files before the big ones, whatever their
// order in the blob: the builder puts /a/one (150000 bytes) before /a/two
// (70000) and /b/three (200000) after both.
TEST_F(PrefetchTest, PrefetchAllFetchesSmallFilesFirst) {
  build();
  auto im = open_image();
  ASSERT_TRUE(im);
  // One worker, one chunk per request: the backend sees the plan's order.
  auto p = run(im, PrefetchOptions{.threads = 1, .batch_size = 1, .prefetch_all = true, .small_file = 100000});
  EXPECT_TRUE(im->blob_cache_stats().data_all_ready);
  const auto small = chunks_of(*im, {"/top", "/a/two"});
  const auto big = chunks_of(*im, {"/a/one", "/b/three"});
  ASSERT_LT(*big.begin(), *small.rbegin()) << "the blob puts a big file before a small one";
  std::map<std::uint64_t, std::uint32_t> by_offset;
  const auto& infos = **im->blob_chunks(0);
  for (std::uint32_t i = 0; i < infos.size(); ++i) by_offset[infos[i].compressed_offset] = i;
  std::vector<std::uint32_t> order;
  for (std::uint64_t off : backend_->offsets()) order.push_back(by_offset.at(off));
  ASSERT_EQ(order.size(), chunks_);
  std::set<std::uint32_t> first(order.begin(), order.begin() + std::ptrdiff_t(small.size()));
  EXPECT_EQ(first, small) << "the small files' chunks come first";
  EXPECT_TRUE(std::is_sorted(order.begin(), order.begin() + std::ptrdiff_t(small.size())));
  EXPECT_TRUE(std::is_sorted(order.begin() + std::ptrdiff_t(small.size()), order.end())) << "then blob order";
}

TEST_F(PrefetchTest, FileListPrefetchesOnlyThoseFiles) {
  build({"/top"});  // the list overrides the table
  auto im = open_image();
  ASSERT_TRUE(im);
  auto p = run(im, PrefetchOptions{.threads = 2, .files = {"/a", "/no/such/file"}});
  const auto want = chunks_of(*im, {"/a/one", "/a/two"});
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(ready(*im), want);
  EXPECT_GT(p->stats().requests, 0u);
  EXPECT_LE(p->stats().requests, want.size());
  EXPECT_EQ(p->stats().requests, backend_->data_reads());
  EXPECT_FALSE(im->blob_cache_stats().data_all_ready);
}

TEST_F(PrefetchTest, PrefetchTableUsedWithoutAList) {
  build({"/b/three"});
  auto im = open_image();
  ASSERT_TRUE(im);
  ASSERT_EQ(im->prefetch_nids().size(), 1u);
  run(im, PrefetchOptions{.threads = 1});
  EXPECT_EQ(ready(*im), chunks_of(*im, {"/b/three"}));
}

TEST_F(PrefetchTest, SlashInTheListMeansEverything) {
  build();
  auto im = open_image();
  ASSERT_TRUE(im);
  run(im, PrefetchOptions{.threads = 2, .files = {"/"}});
  EXPECT_TRUE(im->blob_cache_stats().data_all_ready);
}

TEST_F(PrefetchTest, StopInterruptsABandwidthWaitAndLeavesNoThread) {
  build();
  auto im = open_image();
  ASSERT_TRUE(im);
  const std::size_t threads_before = thread_count();
  // 1 byte/s: after its first run (an incompressible 64 KiB chunk of the
  // random files), every worker waits for most of a day of tokens.
  auto p = Prefetcher::start(im, PrefetchOptions{.threads = 3, .batch_size = 64 << 10, .bandwidth_limit = 1,
                                                 .files = {"/a", "/b"}});
  ASSERT_TRUE(eventually([&] { return p->stats().requests > 0 && p->stats().workers == 3; }));
  auto stopped = std::async(std::launch::async, [&] { p->stop(); });
  ASSERT_EQ(stopped.wait_for(testutil::kHangGuard), std::future_status::ready) << "stop() did not interrupt the wait";
  EXPECT_TRUE(p->finished());
  EXPECT_EQ(p->stats().workers, 0u);
  EXPECT_LT(ready(*im).size(), chunks_);
  EXPECT_TRUE(eventually([&] { return thread_count() == threads_before; }));
}

TEST_F(PrefetchTest, StopWaitsOnlyForTheRunInFlight) {
  build();
  auto im = open_image();
  ASSERT_TRUE(im);
  backend_->close_gate();
  // One chunk per run: the limit (compressed bytes) is below any chunk's size.
  auto p = Prefetcher::start(im, PrefetchOptions{.threads = 1, .batch_size = 1, .prefetch_all = true});
  ASSERT_TRUE(backend_->wait_blocked(1));
  auto stopped = std::async(std::launch::async, [&] { p->stop(); });
  ASSERT_TRUE(eventually([&] { return p->stopping(); }));
  backend_->open_gate();  // the fetch in flight completes; no further run starts
  ASSERT_EQ(stopped.wait_for(testutil::kHangGuard), std::future_status::ready);
  EXPECT_LE(p->stats().requests, 1u);
  EXPECT_FALSE(im->blob_cache_stats().data_all_ready);
}

TEST_F(PrefetchTest, BackendFailureIsReportedOnceAndReadsStillWork) {
  build();
  auto im = open_image();
  ASSERT_TRUE(im);
  backend_->fail = true;
  backend_->close_gate();
  std::vector<std::string> errors;
  std::mutex mu;
  auto p = Prefetcher::start(im, PrefetchOptions{.threads = 4, .batch_size = 64 << 10, .prefetch_all = true,
                                                 .on_error = [&](std::string e) {
                                                   std::lock_guard lock(mu);
                                                   errors.push_back(std::move(e));
                                                 }});
  // Four runs fail at once: still one report.
  ASSERT_TRUE(backend_->wait_blocked(4));
  backend_->open_gate();
  ASSERT_TRUE(eventually([&] { return p->finished(); }));
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(errors.size(), 1u) << "one report per blob";
    EXPECT_NE(errors[0].find(blob_id_), std::string::npos) << errors[0];
    EXPECT_NE(errors[0].find("injected backend failure"), std::string::npos) << errors[0];
  }
  EXPECT_GE(p->stats().failures, 1u);
  EXPECT_LE(p->stats().failures, 4u) << "the blob's remaining runs are dropped";
  EXPECT_TRUE(ready(*im).empty());
  backend_->fail = false;
  expect_all_files(*im);  // a failed prefetch leaves nothing behind that breaks reads
  EXPECT_TRUE(im->blob_cache_stats().data_all_ready);
}

TEST_F(PrefetchTest, ReadsInFlightAreCountedForPrefetchToYield) {
  build();
  auto im = open_image();
  ASSERT_TRUE(im);
  backend_->close_gate();
  auto a = im->lookup(im->root_ino(), "top");
  ASSERT_TRUE(a);
  auto reader = std::async(std::launch::async, [&] { return im->read(a->ino, 0, 4096); });
  ASSERT_TRUE(backend_->wait_blocked(1));
  EXPECT_EQ(im->reads_in_flight(), 1u);
  backend_->open_gate();
  ASSERT_EQ(reader.wait_for(testutil::kHangGuard), std::future_status::ready);
  EXPECT_TRUE(reader.get());
  EXPECT_EQ(im->reads_in_flight(), 0u);
}

}  // namespace
}  // namespace nydus::storage
