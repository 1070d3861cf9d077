// Image methods that prefetch (prefetch.h) builds on: a file's chunk list and
// "make these chunks ready in the blob cache". Fetching goes through
// read_rafs_chunk, the path user reads take, so a chunk a user read is
// loading is waited for and shared (ChunkCache single flight), never fetched
// twice, and a fetched chunk is written through to `.blob.data` as for a read.
#include <sys/stat.h>

#include <algorithm>
#include <limits>

#include "image_impl.h"
#include "ondisk.h"

namespace nydus::storage {

using namespace ondisk;

Result<void> Image::file_chunks(std::uint64_t ino, std::vector<ChunkRef>& out) const {
  auto r = impl_->load_inode(ino);
  if (!r) return tl::unexpected(r.error());
  if (!S_ISREG(r->mode)) return fail(ErrorCode::kInvalidArgument, "inode " + std::to_string(ino) + " is not a regular file");
  // Only RAFS files have blob chunks; their index layout is read_file's.
  if (!impl_->sb.rafs || r->layout != kLayoutChunkBased || r->size == 0) return {};
  const std::uint64_t chunk_size = impl_->sb.chunk_size;
  const std::uint64_t nchunks = r->size / chunk_size + (r->size % chunk_size != 0);
  const std::uint64_t base = align_up(r->pos + r->isize + r->xattr_size, kChunkIndexSize);
  if (!in_bounds(base, nchunks * kChunkIndexSize, impl_->size)) {
    return fail(ErrorCode::kCorrupt, "bad image: inode " + std::to_string(ino) + ": chunk indexes beyond the end of the image");
  }
  for (std::uint64_t i = 0; i < nchunks; ++i) {
    const auto ci = load<ChunkIndex>(impl_->data + base + i * kChunkIndexSize);
    if (ci.blkaddr.value() == kNullAddr) continue;
    const std::uint16_t dev = ci.device.value();
    const std::uint32_t device = dev & 0xFF;
    if (device == 0 || device > impl_->blobs.size()) {
      return fail(ErrorCode::kCorrupt, "bad image: inode " + std::to_string(ino) + ": chunk on an unknown device");
    }
    out.push_back(ChunkRef{device - 1, ci.advise.value() | std::uint32_t(dev >> 8) << 16});
  }
  return {};
}

Result<const std::vector<ChunkInfo>*> Image::blob_chunks(std::uint32_t blob) const {
  if (blob >= impl_->blobs.size()) return fail(ErrorCode::kInvalidArgument, "no blob " + std::to_string(blob));
  return impl_->chunk_infos(blob);
}

Result<CachedRun> Image::cache_chunks(std::uint32_t blob, std::uint32_t first, std::uint32_t count) const {
  auto infos = blob_chunks(blob);
  if (!infos) return tl::unexpected(infos.error());
  const std::vector<ChunkInfo>& chunks = **infos;
  if (first > chunks.size() || count > chunks.size() - first) {
    return fail(ErrorCode::kInvalidArgument, "chunk run beyond blob " + impl_->blobs[blob].blob_id);
  }
  BlobCacheFile* cache = impl_->blob_cache(blob, chunks);
  if (!cache) return fail(ErrorCode::kNotReady, "blob " + impl_->blobs[blob].blob_id + " has no usable blob cache");
  std::vector<bool> missing(count);
  for (std::uint32_t i = 0; i < count; ++i) missing[i] = !cache->is_ready(first + i);
  CachedRun run;
  // The planner already cut the run to batch_size: one request for all of it.
  std::uint64_t span = 1;
  if (count > 0) {
    std::uint64_t begin = std::numeric_limits<std::uint64_t>::max(), end = 0;
    for (std::uint32_t i = first; i < first + count; ++i) {
      begin = std::min(begin, chunks[i].compressed_offset);
      end = std::max(end, chunks[i].compressed_offset + chunks[i].compressed_size);
    }
    span = std::max<std::uint64_t>(end - std::min(begin, end), 1);
  }
  if (auto r = fetch_chunks(blob, first, count, span, &run.requests); !r) {
    return tl::unexpected(r.error());
  }
  for (std::uint32_t i = first; i < first + count; ++i) {
    if (!missing[i - first]) continue;
    // Asked per chunk: a cache found cut short meanwhile is bypassed from then on.
    cache = impl_->blob_cache(blob, chunks);
    if (!cache) return fail(ErrorCode::kNotReady, "blob " + impl_->blobs[blob].blob_id + " has no usable blob cache");
    if (!cache->is_ready(i)) {
      // Skipped above because a user read was loading it: wait for that load
      // through the read path (one byte asked; the miss path stores the chunk).
      std::uint8_t byte = 0;
      bool hit = false;
      auto out = std::span(&byte, std::min<std::size_t>(1, chunks[i].uncompressed_size));
      if (auto r = impl_->read_rafs_chunk(blob, i, 0, out, hit); !r) return tl::unexpected(r.error());
    }
    // A chunk served without being stored (ENOSPC) is not prefetched.
    if (!cache->is_ready(i)) {
      return fail(ErrorCode::kNotReady, "blob " + impl_->blobs[blob].blob_id + " chunk " + std::to_string(i) +
                                            " could not be written to the blob cache");
    }
    ++run.fetched;
    run.bytes += chunks[i].compressed_size;
  }
  return run;
}

std::uint64_t Image::reads_in_flight() const { return impl_->reads_in_flight.load(std::memory_order_relaxed); }

}  // namespace nydus::storage
