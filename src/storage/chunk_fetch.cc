// Fetching chunks that miss: one chunk per backend request without a blob
// cache; with one, read amplification (docs/blobcache.md "Amplification"):
// the chunks after a missing one that are adjacent in the blob, not ready
// and not being loaded are fetched in the same request, up to `amplify_io`
// compressed bytes. Image::fetch_chunks() runs the same merged fetch over a
// range of chunks for prefetch.
//
// Order per chunk: decode, check the digest if asked, write to `.blob.data`,
// set its bit (BlobCacheFile::store), then hand it to the readers waiting
// for it (ChunkCache::finish). A `.blob.raw` cache gets the whole request's
// bytes in one write first, and a chunk's bit once it decoded (and verified).
// Extra chunks are claimed in the chunk cache before the request, so a
// reader of one waits for this fetch instead of fetching it again; a chunk
// that cannot be decoded or checked, or the whole run when the request
// fails, is abandoned: its readers fetch it themselves.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "image_impl.h"
#include "nydus/rate_limiter.h"
#include "nydus/storage/compression.h"
#include "nydus/storage/digest.h"
#include "ondisk.h"

namespace nydus::storage {

using ondisk::in_bounds;

namespace {

// A run decodes at most this many times its compressed limit: 1 MiB of
// well-compressed chunks must not make one read decode gigabytes.
constexpr std::uint64_t kMaxExpansion = 4;

Error corrupt(const std::string& what) { return Error(ErrorCode::kCorrupt, "bad image: " + what); }

// Chunks [first, end) of one blob claimed in the chunk cache by this loader,
// answered in order; the destructor abandons those not answered, so no
// reader is left waiting whatever path (error, exception) leaves the fetch.
class ClaimedRun {
 public:
  ClaimedRun(ChunkCache& cache, std::uint64_t image, std::uint32_t blob, std::uint32_t first)
      : cache_(cache), image_(image), blob_(blob), next_(first), end_(first) {}
  ~ClaimedRun() {
    for (; next_ < end_; ++next_) cache_.abandon(key(next_));
  }
  ClaimedRun(const ClaimedRun&) = delete;
  ClaimedRun& operator=(const ClaimedRun&) = delete;

  std::uint32_t end() const { return end_; }
  // Claims chunk end(); false when it is cached or being loaded already.
  bool claim() {
    if (!cache_.claim(key(end_))) return false;
    ++end_;
    return true;
  }
  void give_back_last() { cache_.abandon(key(--end_)); }
  // Answers the next claimed chunk with its bytes, or abandons it (nullopt).
  void answer(std::optional<std::vector<std::uint8_t>> data) {
    if (data) {
      cache_.finish(key(next_), std::move(*data));
    } else {
      cache_.abandon(key(next_));
    }
    ++next_;
  }

 private:
  ChunkCache::Key key(std::uint32_t index) const { return ChunkCache::Key{image_, blob_, index}; }
  ChunkCache& cache_;
  const std::uint64_t image_;
  const std::uint32_t blob_;
  std::uint32_t next_, end_;
};

// Claims into `run` the chunks from run.end() on (below `limit`) that one
// request starting at chunk `first` should also fetch: each starts at or
// after the previous one's end with a gap of at most max_bytes/128 (skipped
// bytes of the blob), the request stays within max_bytes and the decoded run
// within kMaxExpansion times that, and the chunk is neither ready in `cache`
// nor being loaded. Stops at the first chunk that fails any of these.
void extend_run(ClaimedRun& run, const std::vector<ChunkInfo>& infos, const BlobCacheFile& cache, std::uint32_t first,
                std::uint32_t limit, std::uint64_t max_bytes) {
  const ChunkInfo& head = infos[first];
  const std::uint64_t begin = head.compressed_offset, max_gap = max_bytes / 128;
  std::uint64_t prev_end = begin + head.compressed_size, decoded = head.uncompressed_size;
  for (std::uint32_t j = run.end(); j < limit; j = run.end()) {
    const ChunkInfo& c = infos[j];
    const std::uint64_t c_end = c.compressed_offset + c.compressed_size;
    if (c.compressed_offset < prev_end || c.compressed_offset - prev_end > max_gap) return;
    if (c_end - begin > max_bytes || decoded + c.uncompressed_size > kMaxExpansion * max_bytes) return;
    if (cache.is_ready(j) || !run.claim()) return;
    // Became ready between the check and the claim: nothing to fetch.
    if (cache.is_ready(j)) return run.give_back_last();
    prev_end = c_end;
    decoded += c.uncompressed_size;
  }
}

// Fetches chunks [first, run.end()) of the blob with one backend request and
// stores each in `cache` (may be null). With `keep_first` chunk `first` is
// the caller's own load (not in `run`): its bytes are returned, and its
// failure fails the call; every other chunk is answered through `run`.
Result<std::vector<std::uint8_t>> fetch_run(const Image::Impl& m, ClaimedRun& run, std::uint32_t blob_index,
                                            const std::vector<ChunkInfo>& infos, BlobCacheFile* cache,
                                            std::uint32_t first, bool keep_first) {
  const BlobInfo& blob = m.blobs[blob_index];
  const std::uint32_t end_index = std::max(run.end(), first + 1);
  const std::uint64_t begin = infos[first].compressed_offset;
  const std::uint64_t end = infos[end_index - 1].compressed_offset + infos[end_index - 1].compressed_size;
  const std::string where = "blob " + blob.blob_id + " chunk " + std::to_string(first);
  if (!m.options.backend) return fail(ErrorCode::kNotFound, where + ": no storage backend configured");
  if (end < begin || (blob.compressed_size && end > blob.compressed_size)) {
    return tl::unexpected(corrupt(where + ": chunks beyond the blob"));
  }
  std::vector<std::uint8_t> packed(end - begin);
  auto n = m.options.backend->read(blob.blob_id, begin, packed);
  if (!n) return tl::unexpected(n.error());
  if (*n != packed.size()) return tl::unexpected(corrupt(where + ": blob is truncated"));
  // Raw: the request as fetched, at its blob offset, before any bit is set.
  bool raw_stored = false;
  if (cache && cache->raw()) {
    auto s = cache->store_range(begin, packed);
    if (!s) m.report_cache_error(blob_index, s.error());
    raw_stored = bool(s);
  }
  std::vector<std::uint8_t> mine;
  for (std::uint32_t index = first; index < end_index; ++index) {
    const ChunkInfo& c = infos[index];
    const bool own = keep_first && index == first;
    Result<std::vector<std::uint8_t>> data =
        c.compressed_offset >= begin && in_bounds(c.compressed_offset - begin, c.compressed_size, packed.size())
            ? m.decode_chunk(blob_index, index, c, std::span(packed).subspan(c.compressed_offset - begin, c.compressed_size))
            : tl::unexpected(corrupt(where + ": chunk " + std::to_string(index) + " outside the merged request"));
    if (!data) {
      if (own) return tl::unexpected(data.error());
      run.answer(std::nullopt);
      continue;
    }
    // Best effort: a chunk that cannot be cached (ENOSPC, EIO) is still served.
    if (cache && (!cache->raw() || raw_stored)) {
      auto s = cache->raw() ? cache->mark_ready(index) : cache->store(index, c, *data);
      if (!s) m.report_cache_error(blob_index, s.error());
    }
    if (own) {
      mine = std::move(*data);
    } else {
      run.answer(std::move(*data));
    }
  }
  return mine;
}

}  // namespace

Result<void> Image::Impl::check_digest(std::uint32_t blob_index, std::uint32_t index,
                                       std::span<const std::uint8_t> data) const {
  const BlobInfo& blob = blobs[blob_index];
  const BlobState& st = *blob_states[blob_index];
  const std::string where = "blob " + blob.blob_id + " chunk " + std::to_string(index);
  if (!st.has_digest[index]) return tl::unexpected(corrupt(where + ": no digest in the chunk table"));
  auto digest = compute_digest(blob.digester, data);
  if (!digest) return tl::unexpected(digest.error().with_context(where));
  if (*digest != st.digests[index]) return tl::unexpected(corrupt(where + ": digest mismatch"));
  return {};
}

Result<std::vector<std::uint8_t>> Image::Impl::decode_chunk(std::uint32_t blob_index, std::uint32_t index,
                                                            const ChunkInfo& c,
                                                            std::span<const std::uint8_t> packed) const {
  const BlobInfo& blob = blobs[blob_index];
  const std::string where = "blob " + blob.blob_id + " chunk " + std::to_string(index);
  std::vector<std::uint8_t> data(c.uncompressed_size);
  if (c.compressed) {
    if (blob.compressor == Compressor::kNone) return tl::unexpected(corrupt(where + ": compressed in an uncompressed blob"));
    if (auto d = decompress(blob.compressor, packed, data); !d) return tl::unexpected(d.error().with_context(where));
  } else {
    if (packed.size() != data.size()) return tl::unexpected(corrupt(where + ": stored size differs from its size"));
    std::memcpy(data.data(), packed.data(), data.size());
  }
  if (options.digest_validate) {
    if (auto v = check_digest(blob_index, index, data); !v) return tl::unexpected(v.error());
  }
  return data;
}

std::optional<std::vector<std::uint8_t>> Image::Impl::cached_chunk(std::uint32_t blob_index, std::uint32_t index,
                                                                   const ChunkInfo& c, BlobCacheFile& cache) const {
  std::vector<std::uint8_t> stored(cache.size_of(c));
  if (!cache.read(index, c, 0, stored)) return std::nullopt;
  if (cache.raw()) {
    auto data = decode_chunk(blob_index, index, c, stored);  // checks the digest when validating
    if (!data) return std::nullopt;
    return std::move(*data);
  }
  if (options.digest_validate && !check_digest(blob_index, index, stored)) return std::nullopt;
  return stored;
}

Result<std::vector<std::uint8_t>> Image::Impl::fetch_missing(std::uint32_t blob_index, const std::vector<ChunkInfo>& infos,
                                                             BlobCacheFile* cache, std::uint32_t index) const {
  ClaimedRun run(*options.chunk_cache, serial, blob_index, index + 1);
  if (cache && options.amplify_io > 0) {
    extend_run(run, infos, *cache, index, std::uint32_t(infos.size()), options.amplify_io);
  }
  return fetch_run(*this, run, blob_index, infos, cache, index, true);
}

Result<std::uint32_t> Image::fetch_chunks(std::uint32_t blob_index, std::uint32_t first, std::uint32_t count,
                                          std::uint64_t max_request_bytes, std::uint32_t* requests) const {
  const Impl& m = *impl_;
  if (blob_index >= m.blobs.size()) return fail(ErrorCode::kInvalidArgument, "no blob " + std::to_string(blob_index));
  auto infos = m.chunk_infos(blob_index);
  if (!infos) return tl::unexpected(infos.error());
  if (!in_bounds(first, count, (*infos)->size())) {
    return fail(ErrorCode::kInvalidArgument, "chunks beyond blob " + m.blobs[blob_index].blob_id);
  }
  BlobCacheFile* cache = m.blob_cache(blob_index, **infos);
  if (!cache) return 0u;
  std::uint32_t fetched = 0;
  for (std::uint32_t i = first; i < first + count;) {
    ClaimedRun run(*m.options.chunk_cache, m.serial, blob_index, i);
    if (cache->is_ready(i) || !run.claim()) {
      ++i;
      continue;
    }
    if (cache->is_ready(i)) {
      run.give_back_last();
      ++i;
      continue;
    }
    if (max_request_bytes > 0) extend_run(run, **infos, *cache, i, first + count, max_request_bytes);
    const std::uint32_t end = run.end();
    if (auto r = fetch_run(m, run, blob_index, **infos, cache, i, false); !r) return tl::unexpected(r.error());
    if (requests) ++*requests;
    fetched += end - i;
    i = end;
  }
  return fetched;
}

void Image::Impl::report_cache_error(std::uint32_t blob_index, const Error& e) const {
  if (!options.on_cache_error) return;
  auto verdict = cache_report_limit->admit("blob cache");
  if (!verdict.pass) return;
  options.on_cache_error(fmt::format("blob cache of blob {}: {}; reads go to the backend{}", blobs[blob_index].blob_id,
                                     e.message(), suppressed_suffix(verdict.suppressed)));
}

}  // namespace nydus::storage

