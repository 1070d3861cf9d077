// The on-disk blob cache (`cache.type` `blobcache` / `filecache`), in
// upstream's files (registry-and-cache.md section 3, docs/blobcache.md): per
// blob, `<work_dir>/<blob_id>.blob.data` holds every cached chunk
// uncompressed at its uncompressed offset (a sparse file of the blob's
// uncompressed size) and `<blob_id>.blob.data.chunk_map` says which are there.
//
// A chunk is stored by writing its data, then setting its bit; a ready chunk
// is read back with pread. A short read (the file was truncated under the
// mount) marks the whole cache file broken: from then on it is bypassed
// (reads go to the backend), because a later write past the cut could extend
// the file with zeros under bits that are still set.
//
// Thread-safety: every method may be called concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "nydus/result.h"
#include "nydus/storage/blob_meta.h"
#include "nydus/storage/chunk_map.h"

namespace nydus::storage {

class BlobCacheFile {
 public:
  // Opens (creating) the cache files of `blob_id` in `work_dir` for a blob
  // whose chunks are `chunks`. A `.blob.data` of another size than the
  // blob's is emptied, and its chunk_map with it.
  static Result<std::shared_ptr<BlobCacheFile>> open(const std::string& work_dir, const std::string& blob_id,
                                                     const std::vector<ChunkInfo>& chunks,
                                                     std::uint64_t uncompressed_size);
  ~BlobCacheFile();
  BlobCacheFile(const BlobCacheFile&) = delete;
  BlobCacheFile& operator=(const BlobCacheFile&) = delete;

  bool usable() const { return !broken_.load(std::memory_order_acquire); }
  bool is_ready(std::uint32_t index) const { return usable() && map_->is_ready(index); }
  // Copies out.size() bytes at `in_chunk` of ready chunk `c` into `out`.
  // False when the chunk is not ready or the file is short (it is then
  // marked broken); the caller fetches from the backend instead.
  bool read(std::uint32_t index, const ChunkInfo& c, std::uint64_t in_chunk, std::span<std::uint8_t> out);
  // Writes the whole decoded chunk `index`, then marks it ready. An error
  // (ENOSPC, EIO, …) leaves the chunk not ready; the caller still has the bytes.
  Result<void> store(std::uint32_t index, const ChunkInfo& c, std::span<const std::uint8_t> data);

  const ChunkMap& map() const { return *map_; }
  std::uint64_t data_size() const { return size_; }

 private:
  BlobCacheFile(int fd, std::unique_ptr<ChunkMap> map, std::uint64_t size)
      : fd_(fd), map_(std::move(map)), size_(size) {}

  int fd_;
  std::unique_ptr<ChunkMap> map_;
  std::uint64_t size_;
  std::atomic<bool> broken_{false};
};

// The daemon's open cache files, keyed by work_dir and blob id, so that two
// mounts of the same blob share one entry (one chunk_map, one set of bits).
// An entry lives as long as an image holds it. Opening one key is
// single-flight: a second opener waits for the first instead of opening (and
// possibly resetting) the same files at the same time.
class BlobCacheRegistry {
 public:
  Result<std::shared_ptr<BlobCacheFile>> get(const std::string& work_dir, const std::string& blob_id,
                                             const std::vector<ChunkInfo>& chunks, std::uint64_t uncompressed_size);

 private:
  struct Slot {
    std::once_flag once;
    std::atomic<bool> done{false};      // set (release) when `once` has run
    std::weak_ptr<BlobCacheFile> file;  // written inside `once`, before `done`
    std::optional<Error> error;         // written inside `once`, before `done`
    // Finished, and its file closed by every holder or never opened: replace it.
    bool stale() const { return done.load(std::memory_order_acquire) && file.expired(); }
  };
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Slot>> slots_;  // guarded by mu_
};

}  // namespace nydus::storage
