// RateLimiter: fixed windows per key (see header).
#include "nydus/rate_limiter.h"

#include <fmt/format.h>

namespace nydus {

namespace {

constexpr std::string_view kOverflowKey{"\0overflow", 9};  // no caller's key starts with NUL

}  // namespace

RateLimiter::RateLimiter(Options options, Clock clock)
    : options_(options), clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {}

RateLimiter::Window& RateLimiter::window_for(std::string_view key, std::chrono::steady_clock::time_point now) {
  std::string k(key);
  if (auto it = windows_.find(k); it != windows_.end()) return it->second;
  if (windows_.size() >= options_.max_keys) {
    // Forget keys whose window is over and owes no suppressed count; if none, share the overflow key.
    std::erase_if(windows_, [&](const auto& kv) {
      return kv.second.suppressed == 0 && now - kv.second.start >= options_.interval;
    });
    if (windows_.size() >= options_.max_keys) k = kOverflowKey;
  }
  return windows_.try_emplace(std::move(k), Window{now, 0, 0}).first->second;
}

RateLimiter::Verdict RateLimiter::admit(std::string_view key) {
  auto now = clock_();
  std::lock_guard lock(mu_);
  Window& w = window_for(key, now);
  if (now - w.start >= options_.interval) {
    w.start = now;
    w.passed = 0;
  }
  if (w.passed < options_.budget) {
    ++w.passed;
    Verdict v{true, w.suppressed};
    w.suppressed = 0;
    return v;
  }
  ++w.suppressed;
  ++total_suppressed_;
  return {};
}

std::uint64_t RateLimiter::total_suppressed() const {
  std::lock_guard lock(mu_);
  return total_suppressed_;
}

std::string suppressed_suffix(std::uint64_t n) {
  return n == 0 ? std::string() : fmt::format(" ({} similar messages suppressed)", n);
}

}  // namespace nydus
