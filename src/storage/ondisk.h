// Internal: the on-disk records of RAFS v6 / EROFS (rafs-format.md sections
// 1.2-1.12), declared once and used by both the reader (super_block.cc,
// inode.cc, image_read.cc, blob_meta.cc) and the builder. Each record is a
// struct of Boost.Endian little-endian byte buffers: alignment 1, no padding,
// so its size and field offsets are the format's (checked below and in
// ondisk_test). Readers copy a record out of the bootstrap with `load` after an
// `in_bounds` check; the builder fills one and copies it in with `store`.
#pragma once

#include <boost/endian/buffers.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>

namespace nydus::storage::ondisk {

// True if [off, off + len) lies within a buffer of `size` bytes (no overflow).
inline bool in_bounds(std::uint64_t off, std::uint64_t len, std::uint64_t size) {
  return off <= size && len <= size - off;
}

inline constexpr std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

constexpr std::uint32_t kErofsMagic = 0xE0F5E1E2;
constexpr std::uint64_t kSuperOffset = 1024;  // bytes 0-1023 are unused
constexpr std::uint32_t kRafsDevtSlotoff = 11;

constexpr std::uint32_t kCompatSbChksum = 0x1;
constexpr std::uint32_t kCompatMtime = 0x2;
constexpr std::uint32_t kCompatRafsV6 = 0x4000'0000;
constexpr std::uint32_t kIncompatZeroPadding = 0x1;
constexpr std::uint32_t kIncompatChunkedFile = 0x4;
constexpr std::uint32_t kIncompatDeviceTable = 0x8;

// Superblock flags (RafsSuperFlags).
constexpr std::uint64_t kFlagCompNone = 0x1, kFlagCompLz4 = 0x2, kFlagHashBlake3 = 0x4, kFlagHashSha256 = 0x8,
                        kFlagExplicitUidGid = 0x10, kFlagHasXattr = 0x20, kFlagCompGzip = 0x40,
                        kFlagCompZstd = 0x80, kFlagInlinedChunkDigest = 0x100, kFlagTarfs = 0x200;
constexpr std::uint64_t kKnownFlags = 0x3FF | 0xFF00'0000ull;

// i_format data layouts.
constexpr unsigned kLayoutFlatPlain = 0, kLayoutCompressedFull = 1, kLayoutFlatInline = 2,
                   kLayoutCompressedCompact = 3, kLayoutChunkBased = 4;
constexpr std::uint32_t kChunkFormatIndexes = 0x20;
constexpr std::uint32_t kChunkFormatBlkbitsMask = 0x1F;
constexpr std::uint32_t kNullAddr = 0xFFFF'FFFF;

// EROFS file types in dirents.
constexpr std::uint8_t kFtUnknown = 0, kFtReg = 1, kFtDir = 2, kFtChr = 3, kFtBlk = 4, kFtFifo = 5, kFtSock = 6,
                       kFtSymlink = 7;

// Xattr name prefix indexes.
constexpr std::uint8_t kXattrUser = 1, kXattrAclAccess = 2, kXattrAclDefault = 3, kXattrTrusted = 4,
                       kXattrSecurity = 6;

// ---- Records ------------------------------------------------------------

using Le16 = boost::endian::little_uint16_buf_t;
using Le32 = boost::endian::little_uint32_buf_t;
using Le64 = boost::endian::little_uint64_buf_t;

// EROFS superblock, at kSuperOffset (1.2).
struct SuperRecord {
  Le32 magic;
  Le32 checksum;
  Le32 feature_compat;
  std::uint8_t blkszbits;
  std::uint8_t extslots;
  Le16 root_nid;
  Le64 inos;
  Le64 build_time;
  Le32 build_time_nsec;
  Le32 blocks;
  Le32 meta_blkaddr;
  Le32 xattr_blkaddr;
  std::uint8_t uuid[16];
  std::uint8_t volume_name[16];
  Le32 feature_incompat;
  Le16 u;  // union: must be 0 in RAFS
  Le16 extra_devices;
  Le16 devt_slotoff;
  std::uint8_t reserved[38];
};

// Nydus extension ("RafsV6SuperBlockExt"), right after the superblock (1.3).
struct RafsExtRecord {
  Le64 flags;
  Le64 blob_table_offset;
  Le32 blob_table_size;
  Le32 chunk_size;
  Le64 chunk_table_offset;
  Le64 chunk_table_size;
  Le64 prefetch_table_offset;
  Le32 prefetch_table_size;
  Le32 padding;
  std::uint8_t reserved[200];
};

// EROFS device slot, at devt_slotoff * sizeof(DeviceSlot) (1.4).
struct DeviceSlot {
  std::uint8_t tag[64];  // blob id, not NUL-terminated when 64 long
  Le32 blocks;
  Le32 mapped_blkaddr;
  std::uint8_t reserved[56];
};

// Blob table entry ("RafsV6Blob", 1.5).
struct BlobRecord {
  std::uint8_t blob_id[64];
  Le32 blob_index;
  Le32 chunk_size;
  Le32 chunk_count;
  Le32 compressor;
  Le32 digester;
  Le32 features;
  Le64 compressed_size;
  Le64 uncompressed_size;
  Le32 toc_size;
  Le32 ci_compressor;
  Le64 ci_offset;
  Le64 ci_compressed_size;
  Le64 ci_uncompressed_size;
  std::uint8_t toc_digest[32];
  std::uint8_t meta_digest[32];
  Le64 meta_size;
  Le64 cipher_iv;
  Le32 cipher_algo;
  std::uint8_t reserved[36];
};

// Bootstrap chunk table entry ("RafsV5ChunkInfo", 1.6).
struct ChunkTableRecord {
  std::uint8_t digest[32];
  Le32 blob_index;
  Le32 flags;  // 0x1 compressed
  Le32 compressed_size;
  Le32 uncompressed_size;
  Le64 compressed_offset;
  Le64 uncompressed_offset;
  Le64 file_offset;
  Le32 index;  // position in the blob's CI array
  Le32 crc32;
};

// Compact (32-byte) inode (1.7). `mtime_delta` is reserved in RAFS; EROFS
// reads it as seconds after the superblock's build time.
struct CompactInode {
  Le16 format;
  Le16 xattr_icount;
  Le16 mode;
  Le16 nlink;
  Le32 size;
  Le32 mtime_delta;
  Le32 u;
  Le32 ino;
  Le16 uid;
  Le16 gid;
  Le32 reserved;
};

// Extended (64-byte) inode (1.7).
struct ExtendedInode {
  Le16 format;
  Le16 xattr_icount;
  Le16 mode;
  Le16 reserved;
  Le64 size;
  Le32 u;
  Le32 ino;
  Le32 uid;
  Le32 gid;
  Le64 mtime;
  Le32 mtime_nsec;
  Le32 nlink;
  std::uint8_t reserved2[16];
};

// Inline xattr body header and entry header (1.8); entries are padded to
// kXattrAlign, shared ids are u32 after the header.
struct XattrBodyHeader {
  Le32 name_filter;
  std::uint8_t shared_count;
  std::uint8_t reserved[7];
};
struct XattrEntryHeader {
  std::uint8_t name_len;
  std::uint8_t prefix;
  Le16 value_size;
};

// Directory entry (1.9); names follow the array within the block.
struct Dirent {
  Le64 nid;
  Le16 nameoff;
  std::uint8_t file_type;
  std::uint8_t reserved;
};

// Chunk index of a chunk-based inode (1.11): CI index bits 0-15 in `advise`,
// device id in the low byte of `device` and CI index bits 16-23 in its high
// byte, blkaddr in the blob's cache image. Plain EROFS without the indexes
// format uses 4-byte block-map entries (a bare Le32 blkaddr) instead.
struct ChunkIndex {
  Le16 advise;
  Le16 device;
  Le32 blkaddr;
};

// Chunk-info header at the end of a data blob ("BlobCompressionContextHeader", 1.12).
struct BlobMetaRecord {
  Le32 magic;
  Le32 features;
  Le32 ci_compressor;
  Le32 ci_entries;
  Le64 ci_offset;
  Le64 ci_compressed_size;
  Le64 ci_uncompressed_size;
  Le64 context_offset;
  Le64 context_size;
  Le32 context_count;
  std::uint8_t reserved[4032];
  Le32 magic2;
};

// Header of a blob cache's `<blob_id>.blob.data.chunk_map` (registry-and-cache.md
// section 3, upstream's persisted IndexedChunkMap): followed by a bitmap of one
// bit per chunk, most significant bit first.
struct ChunkMapHeader {
  Le32 magic;
  Le32 version;
  Le32 magic2;
  Le32 all_ready;  // kChunkMapAllReady once every chunk is cached, else 0
  std::uint8_t reserved[4080];
};
constexpr std::uint32_t kChunkMapMagic = 0x424D'4150, kChunkMapVersion = 1, kChunkMapMagic2 = 0x434D'4150,
                        kChunkMapAllReady = 0x4D4D'4150;

// Chunk-info entry of a blob's CI array (1.12): bit-packed little-endian
// words, decoded in blob_meta.cc. v2 adds a context word (zran/batch).
struct ChunkInfoV1Record {
  Le64 uncompressed;
  Le64 compressed;
};
struct ChunkInfoV2Record {
  Le64 uncompressed;
  Le64 compressed;
  Le64 data;
};

static_assert(sizeof(SuperRecord) == 128 && offsetof(SuperRecord, feature_incompat) == 80 &&
              offsetof(SuperRecord, devt_slotoff) == 88);
static_assert(sizeof(RafsExtRecord) == 256 && offsetof(RafsExtRecord, prefetch_table_size) == 48);
static_assert(sizeof(DeviceSlot) == 128 && offsetof(DeviceSlot, mapped_blkaddr) == 68);
static_assert(sizeof(BlobRecord) == 256 && offsetof(BlobRecord, ci_uncompressed_size) == 128 &&
              offsetof(BlobRecord, cipher_algo) == 216);
static_assert(sizeof(ChunkTableRecord) == 80 && offsetof(ChunkTableRecord, index) == 72);
static_assert(sizeof(CompactInode) == 32 && offsetof(CompactInode, uid) == 24);
static_assert(sizeof(ExtendedInode) == 64 && offsetof(ExtendedInode, nlink) == 44);
static_assert(sizeof(XattrBodyHeader) == 12 && sizeof(XattrEntryHeader) == 4);
static_assert(sizeof(Dirent) == 12 && offsetof(Dirent, file_type) == 10);
static_assert(sizeof(ChunkIndex) == 8 && offsetof(ChunkIndex, blkaddr) == 4);
static_assert(sizeof(ChunkInfoV1Record) == 16 && sizeof(ChunkInfoV2Record) == 24);
static_assert(sizeof(ChunkMapHeader) == 4096 && offsetof(ChunkMapHeader, all_ready) == 12);
static_assert(sizeof(BlobMetaRecord) == 4096 && offsetof(BlobMetaRecord, magic2) == 4092);

// Sizes and places derived from the records, so none is written twice.
constexpr std::uint64_t kSuperSize = sizeof(SuperRecord);
constexpr std::uint64_t kExtOffset = kSuperOffset + kSuperSize;
constexpr std::uint64_t kExtSize = sizeof(RafsExtRecord);
constexpr std::uint64_t kDeviceSlotSize = sizeof(DeviceSlot);
constexpr std::uint64_t kBlobEntrySize = sizeof(BlobRecord);
constexpr std::uint64_t kChunkTableEntrySize = sizeof(ChunkTableRecord);
constexpr std::uint32_t kCompactInodeSize = sizeof(CompactInode), kExtendedInodeSize = sizeof(ExtendedInode);
constexpr std::uint32_t kDirentSize = sizeof(Dirent);
constexpr std::uint32_t kChunkIndexSize = sizeof(ChunkIndex), kBlockMapEntrySize = sizeof(Le32);
constexpr std::uint32_t kXattrBodyHeaderSize = sizeof(XattrBodyHeader), kXattrEntryHeaderSize = sizeof(XattrEntryHeader);
constexpr std::uint32_t kXattrIdSize = 4, kXattrAlign = 4;  // shared xattr ids and entries: 4-byte units
constexpr std::uint32_t kInodeSlotSize = 32;                // nid unit: offset = meta_blkaddr * bs + nid * 32
constexpr std::uint32_t kPrefetchEntrySize = sizeof(Le32);  // prefetch table: u32 nids
inline constexpr std::uint64_t ci_entry_size(bool v2) {
  return v2 ? sizeof(ChunkInfoV2Record) : sizeof(ChunkInfoV1Record);
}
// Chunk sizes both the reader and the builder accept: powers of two in 4 KiB..16 MiB.
inline constexpr bool valid_chunk_size(std::uint64_t cs) {
  return cs >= 4096 && cs <= (16u << 20) && (cs & (cs - 1)) == 0;
}
static_assert(kExtOffset == 1152 && kRafsDevtSlotoff * kDeviceSlotSize == 1408);

// Bytes of an inline xattr body with `icount` (i_xattr_icount), and back.
inline constexpr std::uint32_t xattr_body_size(std::uint16_t icount) {
  return icount ? kXattrBodyHeaderSize + (std::uint32_t(icount) - 1) * kXattrIdSize : 0;
}
inline constexpr std::uint16_t xattr_icount(std::uint32_t body_size) {
  return std::uint16_t(body_size ? (body_size - kXattrBodyHeaderSize) / kXattrIdSize + 1 : 0);
}

// A record copied out of / into image bytes; the caller has checked bounds.
template <class T>
T load(const std::uint8_t* p) {
  static_assert(std::is_trivially_copyable_v<T> && alignof(T) == 1);
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
template <class T>
void store(std::uint8_t* p, const T& v) {
  static_assert(std::is_trivially_copyable_v<T> && alignof(T) == 1);
  std::memcpy(p, &v, sizeof(T));
}
// A zeroed record for the builder to fill.
template <class T>
T zeroed() {
  T v;
  std::memset(&v, 0, sizeof(T));
  return v;
}

// The first `n` bytes of a fixed tag field up to its first NUL.
template <std::size_t N>
std::string_view tag_view(const std::uint8_t (&tag)[N]) {
  std::size_t len = 0;
  while (len < N && tag[len] != 0) ++len;
  return std::string_view(reinterpret_cast<const char*>(tag), len);
}

}  // namespace nydus::storage::ondisk
