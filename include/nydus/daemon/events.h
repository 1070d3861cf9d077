// The ring of recent data-plane errors behind GET /api/v1/daemon/events (§4.2).
//
// Each entry is "<IMF-fixdate> - <text>". The oldest entries are dropped while
// the count would reach `max_errors` or the summed entry sizes would exceed
// `max_size`. Reading never clears it. Thread-safe.
//
// Pushes are rate-limited per source, the text before its first ": " (the
// mountpoint, for data-plane errors): a client that makes one instance fail
// in a loop cannot evict every other instance's entries. The next entry of a
// source that passes says how many of its entries were suppressed.
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <string>

#include "nydus/api/payloads.h"
#include "nydus/rate_limiter.h"

namespace nydus::daemon {

class EventRing {
 public:
  explicit EventRing(std::size_t max_errors = 500, std::size_t max_size = 51200, RateLimiter::Clock clock = {})
      : max_errors_(max_errors), max_size_(max_size), limit_({}, std::move(clock)) {}

  void push(std::string_view text);
  api::EventsInfo snapshot() const;

 private:
  const std::size_t max_errors_;
  const std::size_t max_size_;
  RateLimiter limit_;
  mutable std::mutex mu_;
  std::deque<std::string> entries_;  // guarded by mu_
  std::size_t total_size_ = 0;       // guarded by mu_
};

// An HTTP date (IMF-fixdate) for the given time, e.g. "Wed, 25 Nov 2026 16:30:54 GMT".
std::string imf_fixdate(std::time_t t);

}  // namespace nydus::daemon
