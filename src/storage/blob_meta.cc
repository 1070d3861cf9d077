// Chunk-info arrays and their header (rafs-format.md 1.12).
//
// v1 entry, two u64: word 0 = uncompressed info (offset bits 12-43, 4 KiB
// aligned; size-1 bits 0-19 in 44-63 and bits 20-23 in 8-11), word 1 =
// compressed info (offset bits 0-39; size-1 bits 0-19 in 44-63, 20-23 in
// 40-43); "compressed" iff the two sizes differ. v2 entry, three u64: word 0
// = uncompressed offset/4096 (0-31), size-1 (32-55), flags (56-63); word 1 =
// compressed offset (0-39) and size (40-63); word 2 = zran/batch/crc data.
// Checks: every entry is inside the blob, non-empty, no bigger than the
// chunk size; v2 flags for zran/batch/encryption are refused (unsupported).
#include "nydus/storage/blob_meta.h"

#include "ondisk.h"

namespace nydus::storage {

using namespace ondisk;

Result<std::vector<ChunkInfo>> decode_chunk_infos(std::span<const std::uint8_t> bytes, const BlobInfo& blob) {
  const bool v2 = blob.features & kBlobFeatureChunkInfoV2;
  const std::size_t esz = ci_entry_size(v2);
  if (std::uint64_t(blob.chunk_count) * esz > bytes.size()) {
    return fail(ErrorCode::kCorrupt, "blob " + blob.blob_id + ": chunk-info array of " + std::to_string(bytes.size()) +
                                         " bytes is too short for " + std::to_string(blob.chunk_count) + " chunks");
  }
  std::vector<ChunkInfo> out;
  out.reserve(blob.chunk_count);
  for (std::uint32_t i = 0; i < blob.chunk_count; ++i) {
    const std::uint8_t* p = bytes.data() + std::size_t(i) * esz;
    const auto rec = load<ChunkInfoV1Record>(p);  // v2 begins alike; its third word is unused here
    std::uint64_t w0 = rec.uncompressed.value(), w1 = rec.compressed.value();
    ChunkInfo ci;
    if (v2) {
      std::uint8_t flags = std::uint8_t(w0 >> 56);
      if (flags & ~0x11u) {
        return fail(ErrorCode::kUnsupported, "blob " + blob.blob_id + ": chunk " + std::to_string(i) +
                                                 " uses zran/batch/encryption (flags " + std::to_string(flags) + ")");
      }
      ci.uncompressed_offset = (w0 & 0xFFFF'FFFFull) << 12;
      ci.uncompressed_size = std::uint32_t(((w0 >> 32) & 0xFF'FFFF) + 1);
      ci.compressed_offset = w1 & 0xFF'FFFF'FFFFull;
      ci.compressed_size = std::uint32_t(w1 >> 40);
      ci.compressed = flags & 0x1;
    } else {
      ci.uncompressed_offset = w0 & 0xFFF'FFFF'F000ull;
      ci.uncompressed_size = std::uint32_t(((w0 >> 44) | (((w0 >> 8) & 0xF) << 20)) + 1);
      ci.compressed_offset = w1 & 0xFF'FFFF'FFFFull;
      ci.compressed_size = std::uint32_t(((w1 >> 44) | (((w1 >> 40) & 0xF) << 20)) + 1);
      ci.compressed = ci.compressed_size != ci.uncompressed_size;
    }
    auto bad = [&](const std::string& what) {
      return fail(ErrorCode::kCorrupt, "blob " + blob.blob_id + ": chunk info " + std::to_string(i) + ": " + what);
    };
    if (ci.compressed_size == 0) return bad("zero compressed size");
    if (blob.chunk_size && ci.uncompressed_size > blob.chunk_size) return bad("bigger than the chunk size");
    if (!ci.compressed && ci.compressed_size != ci.uncompressed_size) return bad("uncompressed chunk with two sizes");
    if (blob.compressed_size && !in_bounds(ci.compressed_offset, ci.compressed_size, blob.compressed_size)) {
      return bad("compressed range beyond the blob's compressed size");
    }
    if (blob.uncompressed_size && !in_bounds(ci.uncompressed_offset, ci.uncompressed_size, blob.uncompressed_size)) {
      return bad("uncompressed range beyond the blob's uncompressed size");
    }
    out.push_back(ci);
  }
  return out;
}

Result<void> check_blob_meta_header(std::span<const std::uint8_t> h, const BlobInfo& blob) {
  auto bad = [&](const char* field) {
    return fail(ErrorCode::kCorrupt, "blob " + blob.blob_id + ": chunk-info header mismatch: " + field);
  };
  if (h.size() < kBlobMetaHeaderSize) return bad("short header");
  static_assert(sizeof(BlobMetaRecord) == kBlobMetaHeaderSize);
  const auto r = load<BlobMetaRecord>(h.data());
  if (r.magic.value() != kBlobMetaMagic || r.magic2.value() != kBlobMetaMagic) return bad("magic");
  if (r.ci_compressor.value() != std::uint32_t(blob.ci_compressor)) return bad("ci_compressor");
  if (r.ci_entries.value() != blob.chunk_count) return bad("ci_entries");
  if (r.ci_offset.value() != blob.ci_offset) return bad("ci_offset");
  if (r.ci_compressed_size.value() != blob.ci_compressed_size) return bad("ci_compressed_size");
  if (r.ci_uncompressed_size.value() != blob.ci_uncompressed_size) return bad("ci_uncompressed_size");
  return {};
}

void encode_chunk_info(const ChunkInfo& ci, bool v2, std::vector<std::uint8_t>& out) {
  std::uint64_t w0, w1;
  if (v2) {
    w0 = (ci.uncompressed_offset >> 12) | (std::uint64_t(ci.uncompressed_size - 1) & 0xFF'FFFF) << 32 |
         std::uint64_t(ci.compressed ? 1 : 0) << 56;
    w1 = (ci.compressed_offset & 0xFF'FFFF'FFFFull) | std::uint64_t(ci.compressed_size) << 40;
  } else {
    std::uint64_t us = ci.uncompressed_size - 1, cs = ci.compressed_size - 1;
    w0 = (ci.uncompressed_offset & 0xFFF'FFFF'F000ull) | (us & 0xFFFFF) << 44 | ((us >> 20) & 0xF) << 8;
    w1 = (ci.compressed_offset & 0xFF'FFFF'FFFFull) | (cs & 0xFFFFF) << 44 | ((cs >> 20) & 0xF) << 40;
  }
  const ChunkInfoV2Record rec{Le64(w0), Le64(w1), Le64(0)};
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(&rec);
  out.insert(out.end(), bytes, bytes + ci_entry_size(v2));  // v1 is v2's first two words
}

std::vector<std::uint8_t> make_blob_meta_header(const BlobInfo& blob) {
  auto r = zeroed<BlobMetaRecord>();
  r.magic = kBlobMetaMagic;
  r.features = blob.features;
  r.ci_compressor = std::uint32_t(blob.ci_compressor);
  r.ci_entries = blob.chunk_count;
  r.ci_offset = blob.ci_offset;
  r.ci_compressed_size = blob.ci_compressed_size;
  r.ci_uncompressed_size = blob.ci_uncompressed_size;
  r.magic2 = kBlobMetaMagic;
  std::vector<std::uint8_t> h(sizeof(r));
  store(h.data(), r);
  return h;
}

std::uint64_t compressed_data_size(const BlobInfo& blob) {
  // A separate blob (zran) is an OCI layer: all of it is data. So is a blob older than 2.2's.
  if ((blob.features & kBlobFeatureSeparate) || !(blob.features & kBlobFeatureCapTarToc)) return blob.compressed_size;
  const std::uint64_t tar_header = (blob.features & kBlobFeatureHasTarHeader) ? 512 : 0;
  const bool has_ci = blob.ci_compressed_size != 0 && blob.ci_uncompressed_size != 0;
  const std::uint64_t end = has_ci ? blob.ci_offset : blob.compressed_size;
  return end >= tar_header ? end - tar_header : 0;
}

}  // namespace nydus::storage
