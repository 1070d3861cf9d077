// Prefetch: fills an image's blob cache in the background (docs/blobcache.md
// "Prefetch"; registry-and-cache.md section 4).
//
// Work, in order: the hinted files' chunks — `files` when given (overrides
// the image's prefetch table), else the files and directories of the
// bootstrap's prefetch table — then, with `prefetch_all` (or a hint naming
// "/", or a table holding only the root), the chunks of every file of at
// most `small_file` bytes, then every other chunk of every blob. The
// unit of work is a run of adjacent chunks of one blob of at most
// `batch_size` compressed bytes (at least one chunk), one backend request, made ready by
// Image::cache_chunks; chunks already ready are skipped there.
//
// Threads: one planner that becomes a worker and starts `threads - 1` more
// once the plan is built (planning loads chunk-info arrays, so it never runs
// on the caller's thread); all exit when the work is done.
// User reads first: before each run a worker waits while the image has
// reads in progress, up to `max_yield`, then goes on (a steady read load
// slows prefetch down but cannot starve it).
// `bandwidth_limit`: a token bucket in backend bytes/s (burst one second),
// charged after each run with what it fetched; a worker waits for the bucket
// to be non-negative on a condition variable that stop() interrupts.
// stop() (and the destructor) returns once every worker has finished the run
// it is in (at most one backend fetch each), never after a full wait.
// Failures: the first failure of a blob is reported through `on_error` and
// the blob's remaining runs are dropped; the mount and user reads are never
// affected.
//
// Thread-safety: stats() and stop() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "nydus/storage/image.h"

namespace nydus::storage {

struct PrefetchOptions {
  std::uint32_t threads = 8;             // workers, at least 1
  std::uint64_t batch_size = 1u << 20;   // compressed (backend) bytes per run
  std::uint64_t bandwidth_limit = 0;     // backend bytes/s; 0 = unlimited
  bool prefetch_all = false;             // every chunk of every blob, after the hinted files
  std::uint64_t small_file = 1u << 20;   // with prefetch_all: files up to this size before the rest
  std::vector<std::string> files{};      // absolute paths; replaces the prefetch table when non-empty
  std::chrono::milliseconds max_yield{50};  // longest wait for user reads before a run
  std::function<void(std::string)> on_error{};  // failures, once per blob
};

// Counters behind the §4.7 prefetch fields. Times are epoch milliseconds.
struct PrefetchStats {
  std::uint64_t data_amount = 0;      // backend bytes fetched
  std::uint64_t requests = 0;         // backend requests made
  std::uint64_t unmerged_chunks = 0;  // chunks fetched one request each
  std::uint64_t workers = 0;          // worker threads alive now
  std::uint64_t cumulative_millis = 0;  // time spent in runs, summed over workers
  std::uint64_t begin_millis = 0;
  std::uint64_t end_millis = 0;       // 0 until every worker has finished
  std::uint64_t failures = 0;         // runs that failed
};

class Prefetcher {
 public:
  // Starts prefetching `image`, which must have been opened with a blob cache.
  static std::unique_ptr<Prefetcher> start(std::shared_ptr<const Image> image, PrefetchOptions options);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Stops and joins every worker (bounded by the runs in progress).
  void stop();
  PrefetchStats stats() const;
  bool finished() const { return end_millis_.load(std::memory_order_acquire) != 0; }
  bool stopping() const;  // stop() has been called

  struct Run {
    std::uint32_t blob = 0, first = 0, count = 0;
  };

 private:
  Prefetcher(std::shared_ptr<const Image> image, PrefetchOptions options);
  void main();
  void work();
  // Waits while user reads are in flight (at most max_yield); false once stopped.
  bool yield_to_readers();
  // Waits until the token bucket allows a run; false once stopped.
  bool throttle();
  void charge(std::uint64_t bytes);
  // A failure: once per blob (then its runs are dropped), or a planning problem.
  void report(std::optional<std::uint32_t> blob, const std::string& what);

  const std::shared_ptr<const Image> image_;
  const PrefetchOptions options_;
  std::vector<Run> runs_;  // written by the planner before any other worker starts
  std::unique_ptr<std::atomic<bool>[]> blob_failed_;
  std::atomic<std::size_t> next_{0};
  mutable std::mutex mu_;
  std::condition_variable wake_;  // stop() and yields
  bool stop_ = false;             // guarded by mu_
  double tokens_ = 0;             // guarded by mu_; may go negative (debt)
  std::chrono::steady_clock::time_point refilled_;  // guarded by mu_
  std::atomic<std::uint64_t> data_amount_{0}, requests_{0}, unmerged_{0}, workers_{0}, cumulative_micros_{0},
      begin_millis_{0}, end_millis_{0}, failures_{0};
  std::mutex join_mu_;  // stop() may be called from two threads
  std::thread main_;
};

}  // namespace nydus::storage
