// A RAFS v6 (nydus) or plain EROFS image, read from its bootstrap ("meta
// blob"), with file data fetched from data blobs through a BlobBackend.
//
// Inode numbers are EROFS nids (what nydusd and the kernel's EROFS driver
// report as st_ino); root_ino() is the superblock's root nid. No inode is
// cached: every call decodes the on-disk inode again, checking every offset,
// size and count against the bootstrap's bounds. Malformed images give
// kCorrupt (never a crash), missing blobs kNotFound, features this reader
// does not implement kUnsupported, a chunk whose digest does not match (with
// `digest_validate`) kCorrupt.
//
// Format support and checks: docs/rafs.md. Layout reference:
// the RAFS format notes (rafs-format.md).
//
// Thread-safety: an Image is immutable after open() except for lazily loaded
// blob chunk-info arrays (loaded once under a per-blob mutex) and its chunk
// cache (thread-safe); every const method may be called from many threads at
// once. Views (string_views in DirEntry) point into the bootstrap's copy and
// stay valid while the Image lives.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nydus/result.h"
#include "nydus/storage/blob_backend.h"
#include "nydus/storage/blob_cache.h"
#include "nydus/storage/blob_meta.h"
#include "nydus/storage/chunk_cache.h"

namespace nydus::storage {

// Superblock fields (EROFS superblock + nydus extension), for inspection and
// super_block_info_json().
struct SuperBlock {
  bool rafs = false;  // nydus extension present (feature_compat 0x4000_0000)
  std::uint32_t feature_compat = 0, feature_incompat = 0;
  std::uint32_t block_size = 4096;
  std::uint16_t root_nid = 0;
  std::uint64_t inodes = 0;
  std::uint64_t build_time = 0;
  std::uint32_t build_time_nsec = 0;
  std::uint32_t blocks = 0;
  std::uint32_t meta_blkaddr = 0, xattr_blkaddr = 0;
  std::uint16_t extra_devices = 0, devt_slotoff = 0;
  // Nydus extension (zero for plain EROFS).
  std::uint64_t flags = 0;
  std::uint64_t blob_table_offset = 0;
  std::uint32_t blob_table_size = 0;
  std::uint32_t chunk_size = 0;
  std::uint64_t chunk_table_offset = 0, chunk_table_size = 0;
  std::uint64_t prefetch_table_offset = 0;
  std::uint32_t prefetch_table_size = 0;

  // Inode owners are meaningful (RAFS flag EXPLICIT_UID_GID 0x10; always for
  // plain EROFS). Without it nydusd shows its own uid/gid.
  bool explicit_uid_gid() const { return !rafs || (flags & 0x10) != 0; }
  // The builder saw at least one xattr (RAFS flag HAS_XATTR 0x20). Unknown
  // (false) for plain EROFS, which has no such flag.
  bool has_xattr() const { return rafs && (flags & 0x20) != 0; }
};

struct InodeAttr {
  std::uint64_t ino = 0;  // nid
  std::uint32_t mode = 0;  // type and permission bits
  std::uint32_t uid = 0, gid = 0;
  std::uint64_t size = 0;
  std::uint32_t nlink = 0;
  std::uint64_t mtime = 0;  // seconds; 0 for nydus compact inodes
  std::uint32_t mtime_nsec = 0;
  std::uint64_t rdev = 0;    // glibc dev_t encoding (makedev), char/block devices only
  std::uint64_t blocks = 0;  // 512-byte units, ceil(size / 512)
};

struct DirEntry {
  std::uint64_t ino = 0;
  std::uint8_t type = 0;      // DT_* (DT_REG, DT_DIR, …); DT_UNKNOWN if the image says 0
  std::string_view name;      // into the bootstrap mapping
  std::uint64_t next_offset;  // cookie that resumes after this entry
};

struct ImageOptions {
  // Source of blob bytes; may be null for images without data blobs (reads
  // of chunk data then fail with kNotFound).
  std::shared_ptr<BlobBackend> backend;
  // Verify each chunk's digest after fetching it (config `rafs.validate` /
  // `cache.validate`); needs the bootstrap chunk table.
  bool digest_validate = false;
  // When set, CI arrays are cached as `<dir>/<blob_id>.blob.meta` (CI array
  // padded to 4 KiB, then the 4 KiB header) and reused if the header matches.
  std::string blob_meta_dir;
  // Decoded chunks (compressed or validated ones; plain reads go straight to
  // the backend), shared between images when the caller passes one in;
  // otherwise the image gets its own of kDefaultChunkCacheBytes.
  std::shared_ptr<ChunkCache> chunk_cache;
  // When set, chunks are kept in upstream's blob cache files in this
  // directory (blob_cache.h): ready chunks are read from there, misses are
  // fetched whole and written through. Empty: reads go to the backend.
  std::string blob_cache_dir;
  // `cache.compressed`: keep chunks as stored, in `<blob_id>.blob.raw`
  // (CacheLayout::kRaw), decoded on every hit; less disk, more CPU.
  bool blob_cache_compressed = false;
  // Open cache files shared between images (two mounts of one blob share one
  // entry); otherwise the image gets its own.
  std::shared_ptr<BlobCacheRegistry> blob_caches;
  // Read amplification (config `rafs.batch_size`, legacy `amplify_io`): with a
  // blob cache, a miss also fetches the adjacent missing chunks after it in
  // the same backend request, up to this many compressed bytes. 0: one chunk
  // per request.
  std::uint64_t amplify_io = 0;
  // Told (at most once a minute, with a count of what it left out) when the
  // blob cache cannot be opened or written (ENOSPC, EROFS, EACCES, …): reads
  // are then served from the backend. May be empty.
  std::function<void(std::string)> on_cache_error;
  // Clock of that limit (tests); empty = steady_clock.
  std::function<std::chrono::steady_clock::time_point()> cache_report_clock;
};

// Blob cache counters of one image (contract §4.7's fields that exist
// without prefetch). A read counts once: whole hit when every chunk it
// touched was ready in the cache, partial when some were.
struct BlobCacheStats {
  bool enabled = false;  // the image was opened with a blob cache
  std::string store_path;
  std::vector<std::string> underlying_files;  // `.blob.data` / `.blob.raw` files opened so far
  std::uint64_t total = 0, whole_hits = 0, partial_hits = 0, entries_count = 0;
  bool data_all_ready = false;  // every blob's cache open and all its chunks ready
};

// A chunk of a data blob: blob table index and chunk (CI) index.
struct ChunkRef {
  std::uint32_t blob = 0, index = 0;
  auto operator<=>(const ChunkRef&) const = default;
};

// What Image::cache_chunks did: chunks it made ready and the backend bytes
// (compressed sizes) they cost; chunks already ready are not counted.
struct CachedRun {
  std::uint32_t fetched = 0;   // chunks made ready by this run
  std::uint32_t requests = 0;  // backend requests it took
  std::uint64_t bytes = 0;     // their compressed bytes
};

inline constexpr std::size_t kDefaultChunkCacheBytes = 4u << 20;
// Upstream's RAFS_MAX_METADATA_SIZE: a larger bootstrap is refused.
inline constexpr std::uint64_t kMaxBootstrapSize = 0x8000'0000;

class Image {
 public:
  // Reads the bootstrap at `path` into memory (a private copy: a later change
  // of the file does not reach this Image) and validates it (superblock,
  // extension, device table, blob table, chunk table, prefetch table, root
  // inode). The file is opened without blocking; kInvalidArgument when it is
  // not a regular file or exceeds kMaxBootstrapSize, kNotFound / kIo for the
  // file, kCorrupt / kUnsupported for its content.
  static Result<std::unique_ptr<Image>> open(const std::string& path, ImageOptions options);
  // The same over bytes in memory (tests, fuzzing); the Image keeps them.
  static Result<std::unique_ptr<Image>> from_bytes(std::vector<std::uint8_t> bytes, ImageOptions options);

  ~Image();
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;

  const SuperBlock& super_block() const;
  const std::vector<BlobInfo>& blobs() const;
  std::uint64_t root_ino() const;
  // Prefetch table nids (nydus images; empty otherwise).
  const std::vector<std::uint64_t>& prefetch_nids() const;

  // kNotFound (ENOENT) for an ino that is not an inode of this image is not
  // detectable in general: an ino pointing at garbage gives kCorrupt.
  Result<InodeAttr> getattr(std::uint64_t ino) const;
  // kNotFound if `parent` has no entry `name`; kInvalidArgument (ENOTDIR) if
  // parent is not a directory.
  Result<InodeAttr> lookup(std::uint64_t parent, std::string_view name) const;
  // Calls `emit` for each entry ("." and ".." included, sorted by name) from
  // cookie `offset` (0 = start) until it returns false or the directory ends.
  Result<void> readdir(std::uint64_t ino, std::uint64_t offset,
                       const std::function<bool(const DirEntry&)>& emit) const;
  // kInvalidArgument if not a symlink.
  Result<std::string> readlink(std::uint64_t ino) const;
  // Full names ("user.foo"), on-disk order, shared xattrs first.
  Result<std::vector<std::string>> listxattr(std::uint64_t ino) const;
  // kNotFound (ENODATA for the FUSE layer) if the inode has no such xattr.
  Result<std::string> getxattr(std::uint64_t ino, std::string_view name) const;

  // Reads up to out.size() bytes at `offset` of a regular file into `out`;
  // returns the count (0 at or past EOF). Blocks on backend reads.
  // kInvalidArgument if not a regular file.
  BlobCacheStats blob_cache_stats() const;
  // Every chunk of blob `blob_index` is ready in the blob cache (opening it,
  // and loading the chunk-info array, if not done yet): reads of it need no
  // backend. False without a blob cache or on any error.
  bool blob_cached(std::uint32_t blob_index) const;
  Result<std::size_t> read(std::uint64_t ino, std::uint64_t offset, std::span<std::uint8_t> out) const;
  // Convenience: the bytes as a new string.
  Result<std::string> read(std::uint64_t ino, std::uint64_t offset, std::size_t size) const;

  // Prefetch support (prefetch.h; image_prefetch.cc).
  // Appends the chunks of regular file `ino` of a RAFS image to `out`, in
  // file order (holes skipped); kInvalidArgument if not a regular file.
  Result<void> file_chunks(std::uint64_t ino, std::vector<ChunkRef>& out) const;
  // The chunk-info array of blob `blob` (loaded on first use).
  Result<const std::vector<ChunkInfo>*> blob_chunks(std::uint32_t blob) const;
  // Makes chunks [first, first + count) of `blob` ready in the blob cache,
  // skipping ready ones: one merged backend request for the run
  // (fetch_chunks), then the read path for any chunk a user read was loading
  // meanwhile (single-flight). kNotReady when the blob has no usable blob
  // cache, or a fetched chunk could not be written to it. The unit of
  // prefetch work.
  Result<CachedRun> cache_chunks(std::uint32_t blob, std::uint32_t first, std::uint32_t count) const;
  // read() calls in progress now: prefetch yields to them.
  std::uint64_t reads_in_flight() const;
  // Fetches into the blob cache the chunks [first, first + count) of blob
  // `blob_index` (blobs() order; chunk-info indexes) that are neither ready
  // nor being loaded, merging adjacent ones into backend requests of at most
  // `max_request_bytes` compressed bytes (0: one chunk per request). Each
  // chunk is written, then marked ready, then handed to the readers waiting
  // for it. Returns how many chunks it fetched; 0 without a usable blob
  // cache. Stops at the first failed request. Blocks on the backend; the
  // prefetch primitive (user reads use the same path on a miss). Counts its
  // backend requests into `*requests` when given.
  Result<std::uint32_t> fetch_chunks(std::uint32_t blob_index, std::uint32_t first, std::uint32_t count,
                                     std::uint64_t max_request_bytes, std::uint32_t* requests = nullptr) const;

  // §4.9 JSON of `GET /api/v1/daemon/backend`. Timeouts in seconds.
  std::string super_block_info_json(std::uint64_t attr_timeout_secs = 1ull << 32,
                                    std::uint64_t entry_timeout_secs = 1ull << 32) const;

  struct Impl;

 private:
  explicit Image(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nydus::storage
