// ChunkCache: LRU of decoded chunks with single-flight loading (see header).
#include "nydus/storage/chunk_cache.h"

#include <exception>
#include <new>

namespace nydus::storage {
namespace {

// Runs a loader; an exception becomes an error so that the loading mark is
// always cleared and its waiters woken.
Result<std::vector<std::uint8_t>> run_load(const std::function<Result<std::vector<std::uint8_t>>()>& load) {
  try {
    return load();
  } catch (const std::bad_alloc&) {
    return fail(ErrorCode::kIo, "out of memory decoding a chunk");
  } catch (const std::exception& e) {
    return fail(ErrorCode::kInternal, std::string("chunk load failed: ") + e.what());
  } catch (...) {
    return fail(ErrorCode::kInternal, "chunk load failed");
  }
}

}  // namespace

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
    // Another caller is loading this key: share its result, whatever happens
    // to the entry meanwhile (evicted, or erased after a failure).
    std::shared_ptr<Flight> flight = it->second.flight;
    ++waiting_;
    loaded_.wait(lock, [&] { return flight->result.has_value() || flight->abandoned; });
    --waiting_;
    if (flight->abandoned) continue;  // its batch gave it up: look again, maybe load it here
    if (*flight->result) ++hits_;
    return *flight->result;
  }
  auto flight = std::make_shared<Flight>();
  entries_.emplace(key, Entry{nullptr, flight, {}});  // marks the key as loading
  ++loads_;
  lock.unlock();
  auto r = run_load(load);
  lock.lock();
  // Still there: entries being loaded are neither evicted nor erased by others.
  auto it = entries_.find(key);
  if (!r) {
    entries_.erase(it);
    flight->result = tl::unexpected(r.error());
    loaded_.notify_all();
    return *flight->result;
  }
  return insert_locked(it, std::move(*r));
}

ChunkCache::Bytes ChunkCache::insert_locked(std::map<Key, Entry>::iterator it, std::vector<std::uint8_t> data) {
  auto bytes = std::make_shared<const std::vector<std::uint8_t>>(std::move(data));
  std::shared_ptr<Flight> flight = std::move(it->second.flight);
  it->second.data = bytes;
  lru_.push_front(it->first);
  it->second.lru = lru_.begin();
  bytes_ += bytes->size();
  evict_locked();
  flight->result = bytes;
  loaded_.notify_all();
  return bytes;
}

bool ChunkCache::claim(const Key& key) {
  std::lock_guard lock(mu_);
  if (entries_.count(key)) return false;
  entries_.emplace(key, Entry{nullptr, std::make_shared<Flight>(), {}});
  ++loads_;
  return true;
}

void ChunkCache::finish(const Key& key, std::vector<std::uint8_t> data) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.data) return;  // not claimed: nothing to answer
  insert_locked(it, std::move(data));
}

void ChunkCache::abandon(const Key& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.data) return;
  it->second.flight->abandoned = true;
  entries_.erase(it);
  loaded_.notify_all();
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

std::size_t ChunkCache::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_;
}

std::size_t ChunkCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace nydus::storage
