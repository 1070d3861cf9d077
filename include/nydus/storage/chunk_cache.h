// A bounded, shared cache of chunks as read from a blob and decompressed
// (and digest-checked when validation is on), so that several FUSE requests
// inside one chunk (the kernel splits reads into 128 KiB requests; a 1 MiB
// chunk is 8 of them, often on different worker threads) fetch and
// decompress it once.
//
// get() returns the cached bytes of `key`, or runs `load` for it: exactly once
// for all callers asking for the same key at the same time (the others wait
// for its result). A failed load is not cached: the next caller tries again.
// Least recently used chunks are dropped once the total exceeds the capacity;
// bytes still held by a reader stay valid (shared ownership).
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

  std::uint64_t hits() const;
  std::uint64_t loads() const;
  std::size_t bytes() const;  // cached now

 private:
  struct Entry {
    Bytes data;                      // null while loading
    std::list<Key>::iterator lru;    // position in lru_ once loaded
  };
  void evict_locked();

  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable loaded_;
  std::map<Key, Entry> entries_;  // guarded by mu_
  std::list<Key> lru_;            // guarded by mu_; front = most recent; loaded entries only
  std::size_t bytes_ = 0;         // guarded by mu_
  std::uint64_t hits_ = 0, loads_ = 0;  // guarded by mu_
};

}  // namespace nydus::storage
