// Internal state of an Image (image.h) shared by the units that implement it:
// super_block.cc (open and table checks), inode.cc (inodes, xattrs,
// directories, symlinks), image_read.cc (file data), super_block_info.cc.
//
// Constant after open(): bytes_, sb_, blobs_, digests_, prefetch_. The CI
// arrays are loaded on first use: each BlobState's `meta` is written once
// under its `mu` and published through an atomic pointer.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "nydus/rate_limiter.h"
#include "nydus/storage/image.h"

namespace nydus::storage {

// One decoded on-disk inode.
struct InodeRec {
  std::uint64_t nid = 0;
  std::uint64_t pos = 0;  // byte offset in the bootstrap
  unsigned layout = 0;
  std::uint32_t isize = 0;       // 32 or 64
  std::uint32_t xattr_size = 0;  // inline xattr body bytes
  std::uint16_t xattr_icount = 0;
  std::uint32_t mode = 0;
  std::uint64_t size = 0;
  std::uint32_t u = 0;
  std::uint32_t uid = 0, gid = 0;
  std::uint32_t nlink = 0;
  std::uint64_t mtime = 0;
  std::uint32_t mtime_nsec = 0;
};

struct BlobState {
  std::mutex mu;                                        // serialises the first load
  std::unique_ptr<const std::vector<ChunkInfo>> owned;  // guarded by mu, set once
  std::atomic<const std::vector<ChunkInfo>*> meta{nullptr};  // published after `owned`
  std::vector<Digest> digests;                         // by CI index, from the chunk table
  std::vector<bool> has_digest;
  // The blob's cache files, opened on first read when a blob cache is on.
  std::shared_ptr<BlobCacheFile> cache;    // guarded by mu, set once
  std::atomic<BlobCacheFile*> cache_ptr{nullptr};  // published after `cache`
  std::atomic<bool> cache_failed{false};   // opening failed: this image reads without it
};

struct Image::Impl {
  // Bootstrap bytes: a private copy (`owned`), never a mapping of the file.
  const std::uint8_t* data = nullptr;
  std::uint64_t size = 0;
  std::vector<std::uint8_t> owned;

  ImageOptions options;
  SuperBlock sb;
  std::vector<BlobInfo> blobs;
  std::vector<std::unique_ptr<BlobState>> blob_states;
  std::vector<std::uint64_t> prefetch;
  std::uint32_t blkbits = 12;
  std::uint64_t serial = 0;  // distinguishes images in a shared chunk cache
  // Blob cache read counters (BlobCacheStats), relaxed.
  mutable std::atomic<std::uint64_t> cache_total{0}, cache_whole_hits{0}, cache_partial_hits{0};
  mutable std::atomic<std::uint64_t> reads_in_flight{0};  // Image::read() calls now, for prefetch
  // Limits options.on_cache_error to one report a minute (set in from_bytes).
  std::unique_ptr<RateLimiter> cache_report_limit;

  // super_block.cc
  Result<void> parse();

  // inode.cc
  Result<InodeRec> load_inode(std::uint64_t nid) const;
  InodeAttr attr_of(const InodeRec& r) const;
  // Bytes of logical block `k` of a flat (plain/inline) inode: bs bytes, or
  // fewer for the last one. kCorrupt if out of the bootstrap.
  Result<std::span<const std::uint8_t>> flat_block(const InodeRec& r, std::uint64_t k) const;
  Result<std::optional<std::uint64_t>> find_entry(const InodeRec& dir, std::string_view name) const;

  // image_read.cc
  Result<std::size_t> read_file(const InodeRec& r, std::uint64_t offset, std::span<std::uint8_t> out) const;
  Result<const std::vector<ChunkInfo>*> chunk_infos(std::uint32_t blob_index) const;
  // The blob's cache file, or null when there is no blob cache or it cannot be used.
  BlobCacheFile* blob_cache(std::uint32_t blob_index, const std::vector<ChunkInfo>& infos) const;
  // `hit` is set when the chunk was ready in the blob cache.
  Result<void> read_rafs_chunk(std::uint32_t blob_index, std::uint32_t ci_index, std::uint64_t in_chunk,
                               std::span<std::uint8_t> out, bool& hit) const;

  // chunk_fetch.cc
  // Fetches chunk `index` (which the caller is loading through the chunk
  // cache) and returns its bytes; with a blob cache and amplify_io, the same
  // request fetches and stores the adjacent missing chunks after it.
  Result<std::vector<std::uint8_t>> fetch_missing(std::uint32_t blob_index, const std::vector<ChunkInfo>& infos,
                                                  BlobCacheFile* cache, std::uint32_t index) const;
  // Ready chunk `index` from the blob cache, decoded (kRaw) and digest checked
  // when validating; nullopt when it cannot be read, decoded or verified.
  std::optional<std::vector<std::uint8_t>> cached_chunk(std::uint32_t blob_index, std::uint32_t index,
                                                        const ChunkInfo& c, BlobCacheFile& cache) const;
  // Chunk `index` decoded from its stored bytes, digest checked when validating.
  Result<std::vector<std::uint8_t>> decode_chunk(std::uint32_t blob_index, std::uint32_t index, const ChunkInfo& c,
                                                 std::span<const std::uint8_t> packed) const;
  Result<void> check_digest(std::uint32_t blob_index, std::uint32_t index, std::span<const std::uint8_t> data) const;
  // A blob cache that cannot be opened or written: one event a minute to options.on_cache_error.
  void report_cache_error(std::uint32_t blob_index, const Error& e) const;
};

}  // namespace nydus::storage
