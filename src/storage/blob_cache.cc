// See nydus/storage/blob_cache.h and docs/blobcache.md.
#include "nydus/storage/blob_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "file_io.h"
#include "nydus/storage/blob_backend.h"

namespace nydus::storage {
namespace {

Result<void> pwrite_exact(int fd, std::span<const std::uint8_t> data, std::uint64_t off, const std::string& what) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, off_t(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return tl::unexpected(os_error("write " + what, errno));
    done += std::size_t(n);
  }
  return {};
}

}  // namespace

Result<std::shared_ptr<BlobCacheFile>> BlobCacheFile::open(const std::string& work_dir, const std::string& blob_id,
                                                           const std::vector<ChunkInfo>& chunks, BlobSizes sizes,
                                                           CacheLayout layout) {
  if (!is_safe_blob_id(blob_id)) return fail(ErrorCode::kInvalidArgument, "blob id is not a file name");
  if (chunks.size() > UINT32_MAX) return fail(ErrorCode::kInvalidArgument, "too many chunks for a chunk_map");
  const bool raw = layout == CacheLayout::kRaw;
  // The layout's size, or the end of its last chunk if the blob table says less.
  std::uint64_t size = raw ? sizes.compressed : sizes.uncompressed;
  for (const ChunkInfo& c : chunks) {
    size = std::max(size, raw ? c.compressed_offset + c.compressed_size : c.uncompressed_offset + c.uncompressed_size);
  }
  const std::string base = work_dir + "/" + blob_id;
  const std::string path = base + cache_file_suffix(layout);
  const std::string other_path = base + cache_file_suffix(raw ? CacheLayout::kData : CacheLayout::kRaw);
  const std::string map_path = base + ".blob.data.chunk_map";  // upstream's name for both layouts
  // O_NONBLOCK: a FIFO planted in work_dir must not hang the read; it is then refused as not regular.
  FileFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0644));
  if (fd.get() < 0) return tl::unexpected(os_error("open blob cache " + path, errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return tl::unexpected(os_error("stat blob cache " + path, errno));
  if (!S_ISREG(st.st_mode)) return fail(ErrorCode::kInvalidArgument, "blob cache " + path + " is not a regular file");
  // The other layout's file means `cache.compressed` changed: the chunk_map
  // may describe either file, so neither is trusted.
  struct stat other {};
  const bool switched = ::lstat(other_path.c_str(), &other) == 0;
  if (std::uint64_t(st.st_size) != size || switched) {
    // Not this blob's data (or cut short): its bits cannot be trusted either.
    if (::unlink(map_path.c_str()) != 0 && errno != ENOENT) {
      return tl::unexpected(os_error("remove stale chunk_map " + map_path, errno));
    }
    if (switched && ::unlink(other_path.c_str()) != 0 && errno != ENOENT) {
      return tl::unexpected(os_error("remove other blob cache " + other_path, errno));
    }
    if (::ftruncate(fd.get(), 0) != 0 || ::ftruncate(fd.get(), off_t(size)) != 0) {
      return tl::unexpected(os_error("size blob cache " + path, errno));
    }
  }
  auto map = ChunkMap::open(map_path, std::uint32_t(chunks.size()));
  if (!map) return tl::unexpected(map.error());
  return std::shared_ptr<BlobCacheFile>(new BlobCacheFile(fd.release(), std::move(*map), size, layout));
}

BlobCacheFile::~BlobCacheFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::uint64_t BlobCacheFile::offset_of(const ChunkInfo& c) const {
  return raw() ? c.compressed_offset : c.uncompressed_offset;
}

std::uint64_t BlobCacheFile::size_of(const ChunkInfo& c) const {
  return raw() ? c.compressed_size : c.uncompressed_size;
}

bool BlobCacheFile::read(std::uint32_t index, const ChunkInfo& c, std::uint64_t in_chunk, std::span<std::uint8_t> out) {
  if (!is_ready(index) || in_chunk + out.size() > size_of(c)) return false;
  if (!pread_exact(fd_, out, offset_of(c) + in_chunk, "blob cache")) {
    broken_.store(true, std::memory_order_release);
    return false;
  }
  return true;
}

Result<void> BlobCacheFile::write_at(std::uint64_t off, std::span<const std::uint8_t> bytes) {
  if (!usable()) return fail(ErrorCode::kIo, "blob cache is bypassed after its file was cut short");
  if (off > size_ || bytes.size() > size_ - off) return fail(ErrorCode::kCorrupt, "chunk beyond the blob cache file");
  return pwrite_exact(fd_, bytes, off, "blob cache");
}

Result<void> BlobCacheFile::store(std::uint32_t index, const ChunkInfo& c, std::span<const std::uint8_t> data) {
  if (raw()) return fail(ErrorCode::kInvalidArgument, "a raw blob cache stores compressed ranges");
  if (auto r = write_at(c.uncompressed_offset, data); !r) return r;
  return map_->set_ready(index);  // only now: never a bit before its data
}

Result<void> BlobCacheFile::store_range(std::uint64_t blob_offset, std::span<const std::uint8_t> packed) {
  if (!raw()) return fail(ErrorCode::kInvalidArgument, "a data blob cache stores decoded chunks");
  return write_at(blob_offset, packed);
}

Result<std::shared_ptr<BlobCacheFile>> BlobCacheRegistry::get(const std::string& work_dir, const std::string& blob_id,
                                                              const std::vector<ChunkInfo>& chunks, BlobSizes sizes,
                                                              CacheLayout layout) {
  const std::string key = work_dir + "/" + blob_id;
  for (;;) {
    std::shared_ptr<Slot> slot;
    {
      std::lock_guard lock(mu_);
      std::erase_if(slots_, [](const auto& kv) { return kv.second.use_count() == 1 && kv.second->stale(); });
      auto& s = slots_[key];
      if (!s || s->stale()) s = std::make_shared<Slot>();
      slot = s;
    }
    // Outside mu_: only openers of this key wait for the open.
    std::shared_ptr<BlobCacheFile> mine;
    std::call_once(slot->once, [&] {
      auto r = BlobCacheFile::open(work_dir, blob_id, chunks, sizes, layout);
      if (r) {
        mine = *r;
        slot->file = mine;
      } else {
        slot->error = r.error();
      }
      slot->done.store(true, std::memory_order_release);
    });
    if (mine) return mine;
    if (auto f = slot->file.lock()) return f;
    if (slot->error) return tl::unexpected(*slot->error);
    // Opened, then released by every holder before we got it: open again.
  }
}

}  // namespace nydus::storage
