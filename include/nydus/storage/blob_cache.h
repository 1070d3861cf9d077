// The on-disk blob cache (`cache.type` `blobcache` / `filecache`), in
// upstream's files (registry-and-cache.md section 3, docs/blobcache.md): per
// blob, `<work_dir>/<blob_id>.blob.data` holds every cached chunk
// uncompressed at its uncompressed offset (a sparse file of the blob's
// uncompressed size) and `<blob_id>.blob.data.chunk_map` says which are there.
// With `cache.compressed` (CacheLayout::kRaw) `<blob_id>.blob.raw` holds the
// chunks as stored in the blob, at their compressed offsets (a sparse file of
// the blob's compressed size); the chunk_map keeps upstream's name
// `.blob.data.chunk_map` either way.
//
// A chunk is stored by writing its data, then setting its bit; a ready chunk
// is read back with pread (and, raw, decoded by the caller). A short read (the file was truncated under the
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

// Where a chunk lives in the cache file: kData decoded at its uncompressed
// offset (`.blob.data`), kRaw as stored at its compressed offset (`.blob.raw`).
enum class CacheLayout { kData, kRaw };
// The cache file's name after the blob id: upstream's, which operators and the snapshotter rely on.
inline const char* cache_file_suffix(CacheLayout l) { return l == CacheLayout::kRaw ? ".blob.raw" : ".blob.data"; }

// The blob's sizes, as the blob table gives them (0: unknown).
struct BlobSizes {
  std::uint64_t uncompressed = 0;
  std::uint64_t compressed = 0;
};

class BlobCacheFile {
 public:
  // Opens (creating) the cache files of `blob_id` in `work_dir` for a blob
  // whose chunks are `chunks`. A cache file of another size than the
  // layout's is emptied, and its chunk_map with it; so is one found next to
  // the other layout's file, because the shared chunk_map may describe that one.
  static Result<std::shared_ptr<BlobCacheFile>> open(const std::string& work_dir, const std::string& blob_id,
                                                     const std::vector<ChunkInfo>& chunks, BlobSizes sizes,
                                                     CacheLayout layout = CacheLayout::kData);
  ~BlobCacheFile();
  BlobCacheFile(const BlobCacheFile&) = delete;
  BlobCacheFile& operator=(const BlobCacheFile&) = delete;

  bool usable() const { return !broken_.load(std::memory_order_acquire); }
  bool is_ready(std::uint32_t index) const { return usable() && map_->is_ready(index); }
  CacheLayout layout() const { return layout_; }
  bool raw() const { return layout_ == CacheLayout::kRaw; }
  // The bytes of chunk `c` in this layout's file: where, and how many.
  std::uint64_t offset_of(const ChunkInfo& c) const;
  std::uint64_t size_of(const ChunkInfo& c) const;
  // Copies out.size() bytes at `in_chunk` of ready chunk `c`'s stored bytes
  // (decoded with kData, compressed with kRaw) into `out`. False when the
  // chunk is not ready or the file is short (it is then marked broken); the
  // caller fetches from the backend instead.
  bool read(std::uint32_t index, const ChunkInfo& c, std::uint64_t in_chunk, std::span<std::uint8_t> out);
  // kData: writes the whole decoded chunk `index`, then marks it ready. An
  // error (ENOSPC, EIO, …) leaves the chunk not ready; the caller still has the bytes.
  Result<void> store(std::uint32_t index, const ChunkInfo& c, std::span<const std::uint8_t> data);
  // kRaw: writes `packed`, the blob's bytes from `blob_offset` (a merged
  // request), with one pwrite; its chunks are then marked with mark_ready().
  Result<void> store_range(std::uint64_t blob_offset, std::span<const std::uint8_t> packed);
  // Marks a chunk whose bytes store_range() wrote.
  Result<void> mark_ready(std::uint32_t index) { return map_->set_ready(index); }

  const ChunkMap& map() const { return *map_; }
  std::uint64_t data_size() const { return size_; }

 private:
  BlobCacheFile(int fd, std::unique_ptr<ChunkMap> map, std::uint64_t size, CacheLayout layout)
      : fd_(fd), map_(std::move(map)), size_(size), layout_(layout) {}
  Result<void> write_at(std::uint64_t off, std::span<const std::uint8_t> bytes);

  int fd_;
  std::unique_ptr<ChunkMap> map_;
  std::uint64_t size_;
  CacheLayout layout_;
  std::atomic<bool> broken_{false};
};

// The daemon's open cache files, keyed by work_dir and blob id, so that two
// mounts of the same blob share one entry (one chunk_map, one set of bits).
// An entry lives as long as an image holds it. Opening one key is
// single-flight: a second opener waits for the first instead of opening (and
// possibly resetting) the same files at the same time. The entry keeps the
// layout of its first opener while it is open (callers check layout()): the
// two layouts share one chunk_map file, so they cannot be open side by side.
class BlobCacheRegistry {
 public:
  Result<std::shared_ptr<BlobCacheFile>> get(const std::string& work_dir, const std::string& blob_id,
                                             const std::vector<ChunkInfo>& chunks, BlobSizes sizes,
                                             CacheLayout layout = CacheLayout::kData);

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
