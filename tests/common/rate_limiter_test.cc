// RateLimiter: budgets per key and window, the suppressed count carried by the
// next line that passes, bounded keys. Time is an injected clock.
#include "nydus/rate_limiter.h"

#include <gtest/gtest.h>

namespace nydus {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
  RateLimiter::Clock fn() {
    return [this] { return now; };
  }
};

TEST(RateLimiterTest, PassesTheBudgetThenCountsWhatItDrops) {
  FakeClock clock;
  RateLimiter limiter({3, 10s, 16}, clock.fn());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.admit("read").pass);
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limiter.admit("read").pass);
  EXPECT_EQ(limiter.total_suppressed(), 1000u);

  clock.now += 9s;  // same window
  EXPECT_FALSE(limiter.admit("read").pass);
  clock.now += 1s;  // next window: the first line says how many were left out
  auto v = limiter.admit("read");
  EXPECT_TRUE(v.pass);
  EXPECT_EQ(v.suppressed, 1001u);
  EXPECT_EQ(limiter.admit("read").suppressed, 0u);
}

TEST(RateLimiterTest, KeysHaveTheirOwnBudget) {
  FakeClock clock;
  RateLimiter limiter({1, 10s, 16}, clock.fn());
  EXPECT_TRUE(limiter.admit("/a").pass);
  EXPECT_FALSE(limiter.admit("/a").pass);
  EXPECT_TRUE(limiter.admit("/b").pass);  // a noisy /a does not silence /b
}

TEST(RateLimiterTest, ManyKeysShareAnOverflowBudget) {
  FakeClock clock;
  RateLimiter limiter({1, 10s, 4}, clock.fn());
  int passed = 0;
  for (int i = 0; i < 10000; ++i) passed += limiter.admit("key" + std::to_string(i)).pass ? 1 : 0;
  EXPECT_EQ(passed, 4 + 1);  // four keys of their own, then one shared budget
  clock.now += 10s;          // expired windows make room for new keys again
  EXPECT_TRUE(limiter.admit("fresh").pass);
}

TEST(RateLimiterTest, SuffixNamesTheCount) {
  EXPECT_EQ(suppressed_suffix(0), "");
  EXPECT_EQ(suppressed_suffix(7), " (7 similar messages suppressed)");
}

}  // namespace
}  // namespace nydus
