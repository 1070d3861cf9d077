// A bounded, shared cache of chunks as read from a blob and decompressed
// (and digest-checked when validation is on), so that several FUSE requests
// inside one chunk (the kernel splits reads into 128 KiB requests; a 1 MiB
// chunk is 8 of them, often on different worker threads) fetch and
// decompress it once.
//
// get() returns the cached bytes of `key`, or runs `load` for it: exactly once
// for all callers asking for the same key at the same time (the others wait
// and share its result, success or error: a failing backend is asked once,
// not once per waiter). A failed load is not cached: the next caller after it
// tries again. A `load` that throws is a failed load (kInternal, or kIo for
// std::bad_alloc); the exception does not leave get().
// Least recently used chunks are dropped once the total exceeds the capacity;
// bytes still held by a reader stay valid (shared ownership).
//
// A loader that fetches several chunks at once (read amplification,
// prefetch) claim()s the extra keys first: callers of a claimed key wait for
// it as for any load, and get it from finish(). abandon() gives a claimed key
// up without a result: its waiters then load it themselves, so a failed batch
// fails only the read that started it.
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <vector>

#include "nydus/result.h"

namespace nydus::storage {

class ChunkCache {
 public:
  using Bytes = std::shared_ptr<const std::vector<std::uint8_t>>;
  struct Key {
    std::uint64_t image = 0;  // distinguishes images sharing the cache
    std::uint32_t blob = 0, index = 0;
    auto operator<=>(const Key&) const = default;
  };

  explicit ChunkCache(std::size_t capacity_bytes) : capacity_(capacity_bytes) {}
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;

  Result<Bytes> get(const Key& key, const std::function<Result<std::vector<std::uint8_t>>()>& load);

  // Marks `key` as being loaded by the caller, unless it is cached or being
  // loaded already (false). A true return obliges the caller to finish() or
  // abandon() the key, or its waiters wait forever.
  bool claim(const Key& key);
  // Caches the bytes of a claimed key and hands them to its waiters.
  void finish(const Key& key, std::vector<std::uint8_t> data);
  // Drops a claimed key: its waiters retry (and one of them loads it).
  void abandon(const Key& key);

  std::uint64_t hits() const;   // answered without running a load (cached or shared)
  std::uint64_t loads() const;  // loads run
  std::size_t bytes() const;    // cached now
  std::size_t waiting() const;  // callers waiting for another caller's load now

 private:
  // One load in progress; its waiters hold it until they have the result.
  struct Flight {
    std::optional<Result<Bytes>> result;  // guarded by mu_; set when the load is done
    bool abandoned = false;               // guarded by mu_; given up without a result
  };
  struct Entry {
    Bytes data;                      // null while loading
    std::shared_ptr<Flight> flight;  // set while loading
    std::list<Key>::iterator lru;    // position in lru_ once loaded
  };
  void evict_locked();
  // Publishes a loaded key's bytes (mu_ held): cached, flight answered.
  Bytes insert_locked(std::map<Key, Entry>::iterator it, std::vector<std::uint8_t> data);

  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable loaded_;
  std::map<Key, Entry> entries_;  // guarded by mu_
  std::list<Key> lru_;            // guarded by mu_; front = most recent; loaded entries only
  std::size_t bytes_ = 0;         // guarded by mu_
  std::uint64_t hits_ = 0, loads_ = 0;  // guarded by mu_
  std::size_t waiting_ = 0;             // guarded by mu_
};

}  // namespace nydus::storage
