// File data (rafs-format.md 1.11-1.13).
//
// A chunk-based regular file has one chunk index per chunk after its inode
// and xattrs (8-byte aligned): u16 low CI index bits ("advise"), u16 device
// id (low byte) + CI index bits 16-23 (high byte), u32 blkaddr. RAFS images
// map file offsets with the superblock chunk size and resolve each chunk
// through its blob's CI array (compressed range in the blob, uncompressed
// size); plain EROFS images use the inode's chunk bits and read `blkaddr *
// bs` of the device uncompressed (4-byte block-map entries when the inode
// has no index flag). blkaddr 0xFFFFFFFF is a hole (zeros). Flat files
// (EROFS only) are read from the bootstrap's blocks.
//
// Chunk-info arrays are loaded once per blob: from `<blob_meta_dir>/<id>.blob.meta`
// when that file's header matches the blob table, else from the blob (CI
// array + 4 KiB header at ci_offset), then cached there. Compressed and
// validated chunks are decoded whole through the chunk cache (chunk_cache.h),
// so the several FUSE requests inside one chunk decompress (and validate) it
// once.
//
// Checks: index array inside the bootstrap; device id names a blob; CI index
// < chunk count; the requested range lies inside the chunk's uncompressed
// size; backend reads are not short; decompression yields exactly the
// uncompressed size; with digest_validate the chunk digest matches the
// chunk table.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "file_io.h"
#include "image_impl.h"
#include "ondisk.h"

namespace nydus::storage {

using namespace ondisk;

namespace {

Error corrupt(const std::string& what) { return Error(ErrorCode::kCorrupt, "bad image: " + what); }

// The cached CI array at `path` if it is a regular file of exactly
// `expected` bytes; checked before anything is read or allocated, so a huge
// (or sparse) file, a FIFO or a device in work_dir costs nothing.
std::optional<std::vector<std::uint8_t>> read_cache_file(const std::string& path, std::uint64_t expected) {
  struct stat st {};
  auto fd = open_regular_file(path, "chunk-info cache", &st);
  if (!fd || std::uint64_t(st.st_size) != expected) return std::nullopt;
  std::vector<std::uint8_t> bytes(expected);
  if (!pread_exact(fd->get(), bytes, 0, path)) return std::nullopt;
  return bytes;
}

// Writes via a temporary file of its own (two images sharing a blob may write
// the same cache file at once) and rename, so readers never see a partial file.
// Best effort: the cache only saves a download next time.
void write_cache_file(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::string tmp = path + ".XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return;
  const std::uint8_t* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= std::size_t(n);
  }
  bool ok = left == 0 && ::fchmod(fd, 0644) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
}

}  // namespace

Result<const std::vector<ChunkInfo>*> Image::Impl::chunk_infos(std::uint32_t blob_index) const {
  BlobState& st = *blob_states[blob_index];
  if (auto* m = st.meta.load(std::memory_order_acquire)) return m;
  std::lock_guard lock(st.mu);
  if (auto* m = st.meta.load(std::memory_order_acquire)) return m;
  const BlobInfo& blob = blobs[blob_index];
  if (blob.features & (kBlobFeatureBatch | kBlobFeatureZran | kBlobFeatureEncrypted | kBlobFeatureSeparate)) {
    return fail(ErrorCode::kUnsupported, "blob " + blob.blob_id + ": batch/zran/encrypted/separate blobs are not supported");
  }
  if (blob.ci_uncompressed_size > 24ull << 24 || blob.ci_compressed_size > 64ull << 20) {
    return tl::unexpected(corrupt("blob " + blob.blob_id + ": chunk-info array too large"));
  }
  std::vector<std::uint8_t> ci;
  const std::uint64_t padded = align_up(blob.ci_uncompressed_size, 4096);
  // The id is a file name: parse() refuses RAFS blob ids that are not.
  std::string cache_path = options.blob_meta_dir.empty() ? "" : options.blob_meta_dir + "/" + blob.blob_id + ".blob.meta";
  std::optional<std::vector<std::uint8_t>> file;
  if (!cache_path.empty()) file = read_cache_file(cache_path, padded + kBlobMetaHeaderSize);
  if (file && check_blob_meta_header(std::span(*file).subspan(padded), blob)) {
    ci.assign(file->begin(), file->begin() + std::ptrdiff_t(blob.ci_uncompressed_size));
  } else {
    if (!options.backend) return fail(ErrorCode::kNotFound, "blob " + blob.blob_id + ": no storage backend configured");
    // The blob must hold what the image claims before anything is allocated
    // for it: a hostile blob table must not cost 64 MiB per read attempt.
    auto blob_size = options.backend->blob_size(blob.blob_id);
    if (!blob_size) return tl::unexpected(blob_size.error().with_context("blob " + blob.blob_id));
    if (!in_bounds(blob.ci_offset, blob.ci_compressed_size + kBlobMetaHeaderSize, *blob_size)) {
      return tl::unexpected(corrupt("blob " + blob.blob_id + " is truncated (chunk-info array)"));
    }
    std::vector<std::uint8_t> buf(blob.ci_compressed_size + kBlobMetaHeaderSize);
    auto n = options.backend->read(blob.blob_id, blob.ci_offset, buf);
    if (!n) return tl::unexpected(n.error().with_context("blob " + blob.blob_id + ": reading chunk-info array"));
    if (*n != buf.size()) return tl::unexpected(corrupt("blob " + blob.blob_id + " is truncated (chunk-info array)"));
    auto h = check_blob_meta_header(std::span(buf).subspan(blob.ci_compressed_size), blob);
    if (!h) return tl::unexpected(h.error());
    ci.resize(blob.ci_uncompressed_size);
    auto d = decompress(blob.ci_compressor, std::span(buf).first(blob.ci_compressed_size), ci);
    if (!d) return tl::unexpected(d.error().with_context("blob " + blob.blob_id + ": chunk-info array"));
    if (!cache_path.empty()) {
      std::vector<std::uint8_t> out(ci);
      out.resize(padded);
      auto hdr = std::span(buf).subspan(blob.ci_compressed_size);
      out.insert(out.end(), hdr.begin(), hdr.end());
      write_cache_file(cache_path, out);
    }
  }
  auto decoded = decode_chunk_infos(ci, blob);
  if (!decoded) return tl::unexpected(decoded.error());
  st.owned = std::make_unique<const std::vector<ChunkInfo>>(std::move(*decoded));
  st.meta.store(st.owned.get(), std::memory_order_release);
  return st.owned.get();
}

BlobCacheFile* Image::Impl::blob_cache(std::uint32_t blob_index, const std::vector<ChunkInfo>& infos) const {
  if (options.blob_cache_dir.empty() || !options.blob_caches) return nullptr;
  BlobState& st = *blob_states[blob_index];
  BlobCacheFile* f = st.cache_ptr.load(std::memory_order_acquire);
  if (!f) {
    if (st.cache_failed.load(std::memory_order_acquire)) return nullptr;
    // Not under st.mu: the registry makes openers of one blob wait for each other, nobody else.
    const BlobInfo& blob = blobs[blob_index];
    const CacheLayout layout = options.blob_cache_compressed ? CacheLayout::kRaw : CacheLayout::kData;
    auto opened = options.blob_caches->get(options.blob_cache_dir, blob.blob_id, infos,
                                           BlobSizes{blob.uncompressed_size, compressed_data_size(blob)}, layout);
    if (!opened) {
      if (!st.cache_failed.exchange(true, std::memory_order_acq_rel)) report_cache_error(blob_index, opened.error());
      return nullptr;
    }
    std::lock_guard lock(st.mu);
    if (!st.cache) {
      st.cache = std::move(*opened);
      st.cache_ptr.store(st.cache.get(), std::memory_order_release);
    }
    f = st.cache.get();
  }
  return f->usable() ? f : nullptr;
}

Result<void> Image::Impl::read_rafs_chunk(std::uint32_t blob_index, std::uint32_t ci_index, std::uint64_t in_chunk,
                                          std::span<std::uint8_t> out, bool& hit) const {
  if (blob_index >= blobs.size()) return tl::unexpected(corrupt("chunk names device " + std::to_string(blob_index + 1)));
  const BlobInfo& blob = blobs[blob_index];
  auto infos = chunk_infos(blob_index);
  if (!infos) return tl::unexpected(infos.error());
  if (ci_index >= (*infos)->size()) {
    return tl::unexpected(corrupt("blob " + blob.blob_id + ": chunk index " + std::to_string(ci_index) + " out of range"));
  }
  const ChunkInfo& c = (**infos)[ci_index];
  if (!in_bounds(in_chunk, out.size(), c.uncompressed_size)) {
    return tl::unexpected(corrupt("blob " + blob.blob_id + ": chunk " + std::to_string(ci_index) +
                                  " is shorter than the file needs"));
  }
  const std::string where = "blob " + blob.blob_id + " chunk " + std::to_string(ci_index);
  const bool validate = options.digest_validate;
  BlobCacheFile* cache = blob_cache(blob_index, **infos);
  hit = cache && cache->is_ready(ci_index);
  // A ready chunk without validation: straight from `.blob.data`, no decoding;
  // from `.blob.raw` too when the chunk is stored uncompressed.
  const bool stored_plain = !cache || !cache->raw() || (!c.compressed && c.compressed_size == c.uncompressed_size);
  if (cache && stored_plain && !validate && cache->read(ci_index, c, in_chunk, out)) return {};
  if (!options.backend && !cache) return fail(ErrorCode::kNotFound, where + ": no storage backend configured");
  if (!cache && !c.compressed && !validate) {
    auto n = options.backend->read(blob.blob_id, c.compressed_offset + in_chunk, out);
    if (!n) return tl::unexpected(n.error());
    if (*n != out.size()) return tl::unexpected(corrupt(where + ": blob is truncated"));
    return {};
  }
  // Misses, compressed or validated chunks are decoded whole, once, through
  // the chunk cache; with a blob cache they are written through to it.
  auto load = [&]() -> Result<std::vector<std::uint8_t>> {
    // Ready by now (another load stored it), or validating a ready chunk: a
    // cached chunk failing its digest is fetched again and overwritten.
    if (cache && cache->is_ready(ci_index)) {
      if (auto data = cached_chunk(blob_index, ci_index, c, *cache)) return std::move(*data);
    }
    return fetch_missing(blob_index, **infos, cache, ci_index);
  };
  auto chunk = options.chunk_cache->get(ChunkCache::Key{serial, blob_index, ci_index}, load);
  if (!chunk) return tl::unexpected(chunk.error());
  std::memcpy(out.data(), (*chunk)->data() + in_chunk, out.size());
  return {};
}

Result<std::size_t> Image::Impl::read_file(const InodeRec& r, std::uint64_t offset, std::span<std::uint8_t> out) const {
  if (offset >= r.size || out.empty()) return std::size_t(0);
  const std::size_t n = std::size_t(std::min<std::uint64_t>(out.size(), r.size - offset));
  const std::uint64_t bs = sb.block_size;
  if (r.layout == kLayoutFlatPlain || r.layout == kLayoutFlatInline) {
    for (std::size_t done = 0; done < n;) {
      std::uint64_t cur = offset + done;
      auto blk = flat_block(r, cur / bs);
      if (!blk) return tl::unexpected(blk.error());
      std::size_t in = std::size_t(cur % bs), len = std::min<std::size_t>(n - done, blk->size() - in);
      std::memcpy(out.data() + done, blk->data() + in, len);
      done += len;
    }
    return n;
  }
  if (r.layout != kLayoutChunkBased) {
    return fail(ErrorCode::kUnsupported, "inode " + std::to_string(r.nid) + ": compressed EROFS files are not supported");
  }
  std::uint64_t chunk_size;
  if (sb.rafs) {
    chunk_size = sb.chunk_size;
  } else {
    std::uint32_t bits = blkbits + (r.u & kChunkFormatBlkbitsMask);
    if (bits > 40) return tl::unexpected(corrupt("inode " + std::to_string(r.nid) + ": chunk size bits"));
    chunk_size = 1ull << bits;
  }
  const bool indexes = sb.rafs || (r.u & kChunkFormatIndexes);
  const std::uint64_t unit = indexes ? kChunkIndexSize : kBlockMapEntrySize;
  // load_inode() keeps r.size < 2^63, so offsets below it index chunks < nchunks.
  const std::uint64_t nchunks = r.size / chunk_size + (r.size % chunk_size != 0);
  const std::uint64_t base = align_up(r.pos + r.isize + r.xattr_size, unit);
  if (!in_bounds(base, nchunks * unit, size)) {
    return tl::unexpected(corrupt("inode " + std::to_string(r.nid) + ": chunk indexes beyond the end of the image"));
  }
  std::uint32_t dev_mask = 0;
  if (!sb.rafs) {
    std::uint32_t v = 1;
    while (v < std::uint32_t(sb.extra_devices) + 1) v <<= 1;
    dev_mask = v - 1;
  }
  std::uint64_t rafs_chunks = 0, cache_hits = 0;
  for (std::size_t done = 0; done < n;) {
    std::uint64_t cur = offset + done;
    std::uint64_t idx = cur / chunk_size, in = cur % chunk_size;
    std::size_t len = std::size_t(std::min<std::uint64_t>(n - done, chunk_size - in));
    auto dst = out.subspan(done, len);
    const std::uint8_t* e = data + base + idx * unit;
    const ChunkIndex ci = indexes ? load<ChunkIndex>(e) : ChunkIndex{{}, {}, load<Le32>(e)};
    std::uint32_t blkaddr = ci.blkaddr.value();
    std::uint16_t dev = ci.device.value();
    if (blkaddr == kNullAddr) {
      std::memset(dst.data(), 0, len);
    } else if (sb.rafs) {
      std::uint32_t device = dev & 0xFF, ci_index = ci.advise.value() | std::uint32_t(dev >> 8) << 16;
      if (device == 0) return tl::unexpected(corrupt("inode " + std::to_string(r.nid) + ": chunk on device 0"));
      bool hit = false;
      if (auto rc = read_rafs_chunk(device - 1, ci_index, in, dst, hit); !rc) return tl::unexpected(rc.error());
      ++rafs_chunks;
      cache_hits += hit;
    } else {
      std::uint32_t device = dev & dev_mask;
      std::uint64_t addr = std::uint64_t(blkaddr) * bs + in;
      if (device == 0) {
        if (!in_bounds(addr, len, size)) return tl::unexpected(corrupt("inode " + std::to_string(r.nid) + ": data beyond the image"));
        std::memcpy(dst.data(), data + addr, len);
      } else {
        if (device > blobs.size()) return tl::unexpected(corrupt("inode " + std::to_string(r.nid) + ": unknown device"));
        if (!options.backend) return fail(ErrorCode::kNotFound, "no storage backend configured for device " + std::to_string(device));
        auto got = options.backend->read(blobs[device - 1].blob_id, addr, dst);
        if (!got) return tl::unexpected(got.error());
        if (*got != len) return tl::unexpected(corrupt("device " + std::to_string(device) + " is truncated"));
      }
    }
    done += len;
  }
  if (rafs_chunks > 0 && !options.blob_cache_dir.empty()) {
    cache_total.fetch_add(1, std::memory_order_relaxed);
    if (cache_hits == rafs_chunks) {
      cache_whole_hits.fetch_add(1, std::memory_order_relaxed);
    } else if (cache_hits > 0) {
      cache_partial_hits.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return n;
}

BlobCacheStats Image::blob_cache_stats() const {
  BlobCacheStats s;
  s.enabled = !impl_->options.blob_cache_dir.empty();
  if (!s.enabled) return s;
  s.store_path = impl_->options.blob_cache_dir;
  s.total = impl_->cache_total.load(std::memory_order_relaxed);
  s.whole_hits = impl_->cache_whole_hits.load(std::memory_order_relaxed);
  s.partial_hits = impl_->cache_partial_hits.load(std::memory_order_relaxed);
  s.data_all_ready = true;
  for (std::size_t i = 0; i < impl_->blobs.size(); ++i) {
    const BlobCacheFile* f = impl_->blob_states[i]->cache_ptr.load(std::memory_order_acquire);
    if (!f) {
      s.data_all_ready = false;
      continue;
    }
    ++s.entries_count;
    s.underlying_files.push_back(s.store_path + "/" + impl_->blobs[i].blob_id + cache_file_suffix(f->layout()));
    s.data_all_ready = s.data_all_ready && f->usable() && f->map().all_ready();
  }
  return s;
}

bool Image::blob_cached(std::uint32_t blob_index) const {
  // No blob cache: answered without loading the chunk-info array (a backend request).
  if (blob_index >= impl_->blobs.size() || impl_->options.blob_cache_dir.empty()) return false;
  auto infos = impl_->chunk_infos(blob_index);
  if (!infos) return false;
  const BlobCacheFile* f = impl_->blob_cache(blob_index, **infos);
  return f && f->map().all_ready();
}

Result<std::size_t> Image::read(std::uint64_t ino, std::uint64_t offset, std::span<std::uint8_t> out) const {
  impl_->reads_in_flight.fetch_add(1, std::memory_order_relaxed);
  struct Done {
    std::atomic<std::uint64_t>& n;
    ~Done() { n.fetch_sub(1, std::memory_order_relaxed); }
  } done{impl_->reads_in_flight};
  auto r = impl_->load_inode(ino);
  if (!r) return tl::unexpected(r.error());
  if (!S_ISREG(r->mode)) return fail(ErrorCode::kInvalidArgument, "inode " + std::to_string(ino) + " is not a regular file");
  return impl_->read_file(*r, offset, out);
}

Result<std::string> Image::read(std::uint64_t ino, std::uint64_t offset, std::size_t size) const {
  auto r = impl_->load_inode(ino);
  if (!r) return tl::unexpected(r.error());
  if (offset >= r->size) return std::string();
  std::string s(std::size_t(std::min<std::uint64_t>(size, r->size - offset)), '\0');
  auto n = read(ino, offset, std::span(reinterpret_cast<std::uint8_t*>(s.data()), s.size()));
  if (!n) return tl::unexpected(n.error());
  s.resize(*n);
  return s;
}

}  // namespace nydus::storage
