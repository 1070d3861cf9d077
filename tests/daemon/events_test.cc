#include "nydus/daemon/events.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace nydus::daemon {
namespace {

TEST(EventRingTest, EntriesCarryAnHttpDate) {
  EventRing ring;
  ring.push("read blob abc: Input/output error");
  auto s = ring.snapshot();
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.total_errors, 1u);
  EXPECT_EQ(s.max_errors, 500u);
  EXPECT_EQ(s.max_size, 51200u);
  EXPECT_EQ(s.total_size, s.errors[0].size());
  EXPECT_TRUE(s.errors[0].ends_with(" GMT - read blob abc: Input/output error")) << s.errors[0];
  EXPECT_EQ(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(imf_fixdate(1795624254), "Wed, 25 Nov 2026 16:30:54 GMT");
}

TEST(EventRingTest, DropsOldestByCount) {
  EventRing ring(3, 1 << 20);
  for (int i = 0; i < 5; ++i) {
    std::string event = "e";  // not `"e" + std::to_string(i)`: g++ 12's -Wrestrict false positive at -O3
    event += std::to_string(i);
    ring.push(event);
  }
  auto s = ring.snapshot();
  ASSERT_EQ(s.errors.size(), 3u);
  EXPECT_TRUE(s.errors[0].ends_with("e2"));
  EXPECT_TRUE(s.errors[2].ends_with("e4"));
}

TEST(EventRingTest, DropsOldestBySize) {
  const std::size_t entry = imf_fixdate(0).size() + 3 + 10;
  EventRing ring(500, entry * 2 + 5);
  for (int i = 0; i < 4; ++i) ring.push(std::string(9, 'a') + std::to_string(i));
  auto s = ring.snapshot();
  ASSERT_EQ(s.errors.size(), 2u);
  EXPECT_LE(s.total_size, entry * 2 + 5);
  EXPECT_TRUE(s.errors[1].ends_with("3"));
  // Reading does not clear.
  EXPECT_EQ(ring.snapshot().errors.size(), 2u);
}

TEST(EventRingTest, JsonShape) {
  EventRing ring;
  ring.push("x");
  auto j = nlohmann::json::parse(api::to_json(ring.snapshot()));
  for (const char* k : {"max_errors", "total_errors", "max_size", "total_size", "errors"}) EXPECT_TRUE(j.contains(k));
  EXPECT_EQ(api::to_json(EventRing().snapshot()),
            R"({"max_errors":500,"total_errors":0,"max_size":51200,"total_size":0,"errors":[]})");
}

// Issue #11 item 6: one instance failing in a loop must not evict every other
// instance's events.
TEST(EventRingTest, RateLimitedPerSourceWithASuppressedCount) {
  auto now = std::chrono::steady_clock::time_point{};
  EventRing ring(500, 1 << 20, [&now] { return now; });
  for (int i = 0; i < 10000; ++i) ring.push("/noisy: read inode 5: Input/output error");
  ring.push("/quiet: read inode 7: Input/output error");
  const std::size_t budget = RateLimiter::Options{}.budget;
  auto s = ring.snapshot();
  ASSERT_EQ(s.errors.size(), budget + 1);
  EXPECT_TRUE(s.errors.back().ends_with("/quiet: read inode 7: Input/output error")) << s.errors.back();

  now += RateLimiter::Options{}.interval;
  ring.push("/noisy: read inode 5: Input/output error");
  s = ring.snapshot();
  const std::string suppressed = std::to_string(10000 - budget);  // named: see pseudo_fs_test's -Wrestrict note
  EXPECT_TRUE(s.errors.back().ends_with("(" + suppressed + " similar messages suppressed)"))
      << s.errors.back();
}

}  // namespace
}  // namespace nydus::daemon
