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
                                                           const std::vector<ChunkInfo>& chunks,
                                                           std::uint64_t uncompressed_size) {
  if (!is_safe_blob_id(blob_id)) return fail(ErrorCode::kInvalidArgument, "blob id is not a file name");
  if (chunks.size() > UINT32_MAX) return fail(ErrorCode::kInvalidArgument, "too many chunks for a chunk_map");
  std::uint64_t size = uncompressed_size;
  for (const ChunkInfo& c : chunks) size = std::max(size, c.uncompressed_offset + c.uncompressed_size);
  const std::string data_path = work_dir + "/" + blob_id + ".blob.data";
  const std::string map_path = data_path + ".chunk_map";
  // O_NONBLOCK: a FIFO planted in work_dir must not hang the read; it is then refused as not regular.
  FileFd fd(::open(data_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0644));
  if (fd.get() < 0) return tl::unexpected(os_error("open blob cache " + data_path, errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return tl::unexpected(os_error("stat blob cache " + data_path, errno));
  if (!S_ISREG(st.st_mode)) return fail(ErrorCode::kInvalidArgument, "blob cache " + data_path + " is not a regular file");
  if (std::uint64_t(st.st_size) != size) {
    // Not this blob's data (or cut short): its bits cannot be trusted either.
    if (::unlink(map_path.c_str()) != 0 && errno != ENOENT) {
      return tl::unexpected(os_error("remove stale chunk_map " + map_path, errno));
    }
    if (::ftruncate(fd.get(), 0) != 0 || ::ftruncate(fd.get(), off_t(size)) != 0) {
      return tl::unexpected(os_error("size blob cache " + data_path, errno));
    }
  }
  auto map = ChunkMap::open(map_path, std::uint32_t(chunks.size()));
  if (!map) return tl::unexpected(map.error());
  return std::shared_ptr<BlobCacheFile>(new BlobCacheFile(fd.release(), std::move(*map), size));
}

BlobCacheFile::~BlobCacheFile() {
  if (fd_ >= 0) ::close(fd_);
}

bool BlobCacheFile::read(std::uint32_t index, const ChunkInfo& c, std::uint64_t in_chunk, std::span<std::uint8_t> out) {
  if (!is_ready(index)) return false;
  if (!pread_exact(fd_, out, c.uncompressed_offset + in_chunk, "blob cache")) {
    broken_.store(true, std::memory_order_release);
    return false;
  }
  return true;
}

Result<void> BlobCacheFile::store(std::uint32_t index, const ChunkInfo& c, std::span<const std::uint8_t> data) {
  if (!usable()) return fail(ErrorCode::kIo, "blob cache is bypassed after its file was cut short");
  if (c.uncompressed_offset + data.size() > size_) return fail(ErrorCode::kCorrupt, "chunk beyond the blob cache file");
  if (auto r = pwrite_exact(fd_, data, c.uncompressed_offset, "blob cache"); !r) return r;
  return map_->set_ready(index);  // only now: never a bit before its data
}

Result<std::shared_ptr<BlobCacheFile>> BlobCacheRegistry::get(const std::string& work_dir, const std::string& blob_id,
                                                              const std::vector<ChunkInfo>& chunks,
                                                              std::uint64_t uncompressed_size) {
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
      auto r = BlobCacheFile::open(work_dir, blob_id, chunks, uncompressed_size);
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
