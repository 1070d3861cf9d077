// Load for live-upgrade tests and the pause benchmark: reader threads that
// open, read whole and compare files through a FUSE mount until stopped, and
// record the longest stretch in which no read completed (the pause a
// reader sees while a daemon hands its connection over).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace nydus::testutil {

class VerifyingReaders {
 public:
  using Clock = std::chrono::steady_clock;
  // The longest stretch without a completed read: from the read (or the
  // call of take_longest_pause) before it to the read that ended it.
  struct Pause {
    Clock::time_point begin, end;
    std::chrono::microseconds length() const { return std::chrono::duration_cast<std::chrono::microseconds>(end - begin); }
  };

  // `files`: {path, expected content}. `unstick` runs when a reader is still
  // in a read after the hang guard (it should abort the connection, so the
  // read returns and the caller can end).
  VerifyingReaders(std::vector<std::pair<std::string, std::string>> files, unsigned n, std::function<void()> unstick);
  ~VerifyingReaders() { stop(); }
  VerifyingReaders(const VerifyingReaders&) = delete;
  VerifyingReaders& operator=(const VerifyingReaders&) = delete;

  // Waits until every reader completed `n` more verified reads (on average)
  // or a read failed; false on the hang guard.
  bool progress(std::uint64_t n);
  // Stops and joins; false when a reader is stuck in a read (a hung read).
  bool stop();
  std::uint64_t reads() const { return reads_.load(); }
  std::uint64_t failures() const { return failures_.load(); }
  std::string first_failure() const;
  // The longest pause since the last call (or since construction); the next
  // one is measured from now.
  Pause take_longest_pause();
  std::chrono::microseconds take_longest_gap() { return take_longest_pause().length(); }

 private:
  void run(unsigned id);
  void completed();

  const std::vector<std::pair<std::string, std::string>> files_;
  const std::function<void()> unstick_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> reads_{0}, failures_{0};
  mutable std::mutex mu_;
  std::string first_failure_;   // guarded by mu_
  Clock::time_point last_;      // guarded by mu_: the last completed read
  Pause longest_{};             // guarded by mu_
  std::vector<std::future<void>> done_;
};

}  // namespace nydus::testutil
