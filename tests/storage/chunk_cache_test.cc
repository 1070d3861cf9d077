// ChunkCache: single-flight loads, failures not cached, LRU eviction by bytes.
#include "nydus/storage/chunk_cache.h"

#include <atomic>
#include <chrono>
#include <new>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "util/wait.h"

namespace nydus::storage {
namespace {

using Bytes = std::vector<std::uint8_t>;

// Blocks a loader until `n` other callers wait for it (or the hang guard passes: the test then fails on counts).
void await_waiters(const ChunkCache& cache, std::size_t n) {
  testutil::eventually([&] { return cache.waiting() >= n; });
}

TEST(ChunkCache, ConcurrentCallersLoadOnce) {
  ChunkCache cache(1 << 20);
  std::atomic<int> loads{0};
  auto load = [&]() -> Result<Bytes> {
    ++loads;
    await_waiters(cache, 7);
    return Bytes(1000, 7);
  };
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = cache.get({1, 0, 5}, load);
      if (r && (*r)->size() == 1000 && (**r)[999] == 7) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 8);
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(cache.loads(), 1u);
  EXPECT_EQ(cache.hits(), 7u);
  EXPECT_EQ(cache.waiting(), 0u);
}

TEST(ChunkCache, WaitersShareAFailureInsteadOfRetryingOneByOne) {
  ChunkCache cache(1 << 20);
  std::atomic<int> loads{0};
  auto failing = [&]() -> Result<Bytes> {
    ++loads;
    await_waiters(cache, 3);
    return fail(ErrorCode::kIo, "backend timed out");
  };
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto r = cache.get({1, 0, 5}, failing);
      if (!r && r.error().message() == "backend timed out") ++failed;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed, 4);
  EXPECT_EQ(loads, 1) << "one slow failing backend read, not one per waiter";
  EXPECT_EQ(cache.hits(), 0u);
  // Not cached: the next caller loads again.
  EXPECT_TRUE(cache.get({1, 0, 5}, [] { return Result<Bytes>(Bytes(2, 2)); }));
  EXPECT_EQ(cache.loads(), 2u);
}

TEST(ChunkCache, ThrowingLoaderIsAnErrorAndLeavesNoMark) {
  ChunkCache cache(1 << 20);
  auto r = cache.get({1, 0, 0}, []() -> Result<Bytes> { throw std::runtime_error("boom"); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInternal);
  EXPECT_NE(r.error().message().find("boom"), std::string::npos);
  auto oom = cache.get({1, 0, 0}, []() -> Result<Bytes> { throw std::bad_alloc(); });
  ASSERT_FALSE(oom);
  EXPECT_EQ(oom.error().code(), ErrorCode::kIo);
  // The key is not left "loading": a later caller neither hangs nor sees the old error.
  auto ok = cache.get({1, 0, 0}, [] { return Result<Bytes>(Bytes(5, 5)); });
  ASSERT_TRUE(ok);
  EXPECT_EQ((*ok)->size(), 5u);
}

TEST(ChunkCache, FailuresAreNotCached) {
  ChunkCache cache(1 << 20);
  int calls = 0;
  auto failing = [&]() -> Result<Bytes> {
    ++calls;
    return fail(ErrorCode::kCorrupt, "digest mismatch");
  };
  EXPECT_EQ(cache.get({1, 0, 0}, failing).error().message(), "digest mismatch");
  EXPECT_EQ(cache.get({1, 0, 0}, failing).error().code(), ErrorCode::kCorrupt);
  EXPECT_EQ(calls, 2);
  auto ok = cache.get({1, 0, 0}, [] { return Result<Bytes>(Bytes(3, 1)); });
  ASSERT_TRUE(ok);
  EXPECT_EQ((*ok)->size(), 3u);
}

TEST(ChunkCache, ClaimedKeyIsWaitedForAndFinishedByItsClaimer) {
  ChunkCache cache(1 << 20);
  ASSERT_TRUE(cache.claim({1, 0, 3}));
  EXPECT_FALSE(cache.claim({1, 0, 3}));  // being loaded: not claimed twice
  std::atomic<int> loads{0};
  Result<ChunkCache::Bytes> got = fail(ErrorCode::kInternal, "not run");
  std::thread reader([&] {
    got = cache.get({1, 0, 3}, [&]() -> Result<Bytes> {
      ++loads;
      return Bytes(10, 1);
    });
  });
  await_waiters(cache, 1);
  cache.finish({1, 0, 3}, Bytes(10, 9));
  reader.join();
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ((**got)[0], 9);  // the claimer's bytes, not a load of its own
  EXPECT_EQ(loads.load(), 0);
  EXPECT_FALSE(cache.claim({1, 0, 3}));  // cached now
}

TEST(ChunkCache, AbandonedKeyIsLoadedByItsWaiter) {
  ChunkCache cache(1 << 20);
  ASSERT_TRUE(cache.claim({1, 0, 4}));
  Result<ChunkCache::Bytes> got = fail(ErrorCode::kInternal, "not run");
  std::thread reader([&] { got = cache.get({1, 0, 4}, []() -> Result<Bytes> { return Bytes(10, 5); }); });
  await_waiters(cache, 1);
  cache.abandon({1, 0, 4});  // the batch that claimed it failed: not the reader's failure
  reader.join();
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ((**got)[0], 5);
  EXPECT_EQ(cache.loads(), 2u);  // the claim, then the waiter's own load
}

TEST(ChunkCache, EvictsLeastRecentlyUsedBeyondCapacity) {
  ChunkCache cache(3000);
  int loads = 0;
  auto make = [&](std::uint8_t v) {
    return [&loads, v]() -> Result<Bytes> {
      ++loads;
      return Bytes(1000, v);
    };
  };
  for (std::uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(cache.get({1, 0, i}, make(std::uint8_t(i))));
  EXPECT_EQ(cache.bytes(), 3000u);
  ASSERT_TRUE(cache.get({1, 0, 0}, make(0)));  // hit: 0 becomes the most recent
  auto held = cache.get({1, 0, 1}, make(1));  // hit; kept alive by `held` even after eviction
  ASSERT_TRUE(cache.get({1, 0, 3}, make(3)));  // evicts 2, the least recent
  EXPECT_EQ(loads, 4);
  EXPECT_EQ(cache.bytes(), 3000u);
  ASSERT_TRUE(cache.get({1, 0, 2}, make(2)));  // reloaded
  EXPECT_EQ(loads, 5);
  ASSERT_TRUE(cache.get({2, 0, 0}, make(9)));  // another image's chunk 0 is a different key
  EXPECT_EQ(loads, 6);
  EXPECT_EQ((**held)[0], 1);
  // A chunk larger than the capacity is still served (and kept alone).
  ChunkCache tiny(10);
  auto big = tiny.get({1, 0, 0}, make(4));
  ASSERT_TRUE(big);
  EXPECT_EQ((*big)->size(), 1000u);
}

}  // namespace
}  // namespace nydus::storage
