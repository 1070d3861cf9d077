// Blob descriptions and chunk-info ("CI") arrays.
//
// A RAFS v6 blob-table entry (BlobInfo) says how a data blob is compressed
// and where its CI array lies. The CI array (v1: 16 bytes per chunk, v2: 24)
// maps a chunk's index to its compressed range in the blob and its
// uncompressed range in the blob's "cache image". It is stored in the blob at
// `ci_offset`, compressed with `ci_compressor`, followed by a 4096-byte header
// (magic 0xB10BB10B at both ends) that must repeat the blob table's values.
// Layouts: the RAFS format notes (rafs-format.md) sections 1.5 and 1.12.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "nydus/result.h"
#include "nydus/storage/compression.h"
#include "nydus/storage/digest.h"

namespace nydus::storage {

inline constexpr std::uint32_t kBlobFeatureAligned = 0x1;
inline constexpr std::uint32_t kBlobFeatureInlinedFsMeta = 0x2;
inline constexpr std::uint32_t kBlobFeatureChunkInfoV2 = 0x4;
inline constexpr std::uint32_t kBlobFeatureZran = 0x8;
inline constexpr std::uint32_t kBlobFeatureSeparate = 0x10;
inline constexpr std::uint32_t kBlobFeatureInlinedChunkDigest = 0x20;
inline constexpr std::uint32_t kBlobFeatureTarfs = 0x40;
inline constexpr std::uint32_t kBlobFeatureBatch = 0x80;
inline constexpr std::uint32_t kBlobFeatureEncrypted = 0x100;
inline constexpr std::uint32_t kBlobFeatureHasTarHeader = 0x1000'0000;
inline constexpr std::uint32_t kBlobFeatureHasToc = 0x2000'0000;
inline constexpr std::uint32_t kBlobFeatureCapTarToc = 0x4000'0000;

inline constexpr std::uint32_t kBlobMetaMagic = 0xB10BB10B;
inline constexpr std::size_t kBlobMetaHeaderSize = 4096;

// One blob-table entry (plus its device slot). For plain EROFS images the
// devices carry only `blob_id` (the slot tag, possibly empty) and `device_blocks`;
// their data is stored uncompressed at `blkaddr * 4096`.
struct BlobInfo {
  std::string blob_id;
  std::uint32_t index = 0;
  std::uint32_t chunk_size = 0;
  std::uint32_t chunk_count = 0;
  Compressor compressor = Compressor::kNone;
  DigestAlgo digester = DigestAlgo::kBlake3;
  std::uint32_t features = 0;
  std::uint64_t compressed_size = 0;
  std::uint64_t uncompressed_size = 0;
  std::uint32_t toc_size = 0;
  Compressor ci_compressor = Compressor::kNone;
  std::uint64_t ci_offset = 0;
  std::uint64_t ci_compressed_size = 0;
  std::uint64_t ci_uncompressed_size = 0;
  std::uint32_t device_blocks = 0;   // device slot `blocks`
  std::uint32_t mapped_blkaddr = 0;  // device slot `mapped_blkaddr`
  bool raw_device = false;           // plain EROFS device: no CI array, uncompressed
};

// One decoded CI entry.
struct ChunkInfo {
  std::uint64_t compressed_offset = 0;
  std::uint32_t compressed_size = 0;
  std::uint64_t uncompressed_offset = 0;
  std::uint32_t uncompressed_size = 0;
  bool compressed = false;
};

// Decodes `count` entries of a CI array (v2 when `v2`, else v1) from its
// uncompressed bytes. kCorrupt if the bytes are too short or an entry has a
// zero size or lies outside the blob (`blob` bounds: compressed_size when
// non-zero, uncompressed_size when non-zero, chunk sizes <= blob.chunk_size).
Result<std::vector<ChunkInfo>> decode_chunk_infos(std::span<const std::uint8_t> bytes,
                                                  const BlobInfo& blob);

// Bytes of chunk data at the start of the blob, without the CI array, digests
// and ToC that nydus-image >= 2.2 appends (CAP_TAR_TOC): upstream's
// `compressed_data_size`, the size of a `.blob.raw` cache file.
std::uint64_t compressed_data_size(const BlobInfo& blob);

// Checks a 4096-byte CI header against the blob-table entry (magic at both
// ends, entry count, compressor, offset, sizes). kCorrupt naming the field.
Result<void> check_blob_meta_header(std::span<const std::uint8_t> header, const BlobInfo& blob);

// Encoders used by the builder. `v2` selects the 24-byte layout.
void encode_chunk_info(const ChunkInfo& ci, bool v2, std::vector<std::uint8_t>& out);
std::vector<std::uint8_t> make_blob_meta_header(const BlobInfo& blob);

}  // namespace nydus::storage
