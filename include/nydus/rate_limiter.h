// RateLimiter: a per-key budget of messages per interval, for log lines and
// events that an unprivileged client can trigger at will (a failed read of a
// file in an `allow_other` mount), so that one noisy source can neither fill
// the disk nor evict every other entry of the events ring.
//
// Each key has a window that opens at its first message and lasts `interval`;
// the first `budget` messages of a window pass, the rest are counted. The
// first message that passes in a later window carries the number suppressed
// since the previous one that passed, so the log says what it left out.
// Keys name a call site or a source (bounded by the code, not by clients);
// past `max_keys` distinct keys, expired windows are dropped and then new keys
// share one overflow key, so memory stays bounded whatever the keys are.
//
// The clock is injected so tests control time. Thread-safe: one mutex, held
// for a map lookup only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace nydus {

struct RateLimitOptions {
  std::size_t budget = 10;  // messages per key per interval
  std::chrono::nanoseconds interval = std::chrono::seconds(10);
  std::size_t max_keys = 1024;  // distinct keys tracked before they share one
};

class RateLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  using Options = RateLimitOptions;

  struct Verdict {
    bool pass = false;
    std::uint64_t suppressed = 0;  // when pass: messages of this key dropped since the last that passed
  };

  explicit RateLimiter(Options options = {}, Clock clock = {});

  // Whether a message of `key` may go out now; counts it either way.
  Verdict admit(std::string_view key);

  // Messages dropped so far (all keys), for metrics and tests.
  std::uint64_t total_suppressed() const;

 private:
  struct Window {
    std::chrono::steady_clock::time_point start;
    std::size_t passed = 0;
    std::uint64_t suppressed = 0;
  };
  Window& window_for(std::string_view key, std::chrono::steady_clock::time_point now);

  const Options options_;
  const Clock clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Window> windows_;  // guarded by mu_
  std::uint64_t total_suppressed_ = 0;               // guarded by mu_
};

// " (N similar messages suppressed)" when N > 0, else "": the suffix of the
// first line that passes after a suppression.
std::string suppressed_suffix(std::uint64_t n);

}  // namespace nydus
