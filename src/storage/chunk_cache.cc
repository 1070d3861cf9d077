// ChunkCache: LRU of decoded chunks with single-flight loading (see header).
#include "nydus/storage/chunk_cache.h"

namespace nydus::storage {

Result<ChunkCache::Bytes> ChunkCache::get(const Key& key,
                                          const std::function<Result<std::vector<std::uint8_t>>()>& load) {
  std::unique_lock lock(mu_);
  for (;;) {
    auto it = entries_.find(key);
    if (it == entries_.end()) break;
    if (it->second.data) {
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return it->second.data;
    }
    loaded_.wait(lock);  // another caller is loading this key
  }
  entries_.emplace(key, Entry{});  // marks the key as loading
  ++loads_;
  lock.unlock();
  auto r = load();
  lock.lock();
  auto it = entries_.find(key);
  if (!r) {
    entries_.erase(it);
    loaded_.notify_all();
    return tl::unexpected(r.error());
  }
  auto data = std::make_shared<const std::vector<std::uint8_t>>(std::move(*r));
  it->second.data = data;
  lru_.push_front(key);
  it->second.lru = lru_.begin();
  bytes_ += data->size();
  evict_locked();
  loaded_.notify_all();
  return data;
}

void ChunkCache::evict_locked() {
  // Keep at least the newest chunk, whatever its size.
  while (bytes_ > capacity_ && lru_.size() > 1) {
    auto it = entries_.find(lru_.back());
    bytes_ -= it->second.data->size();
    entries_.erase(it);
    lru_.pop_back();
  }
}

std::uint64_t ChunkCache::hits() const {
  std::lock_guard lock(mu_);
  return hits_;
}

std::uint64_t ChunkCache::loads() const {
  std::lock_guard lock(mu_);
  return loads_;
}

std::size_t ChunkCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace nydus::storage
