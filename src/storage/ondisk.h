// Internal: little-endian field access and on-disk constants of RAFS v6 /
// EROFS (rafs-format.md sections 1.2-1.12). Everything that reads image bytes
// goes through `in_bounds` first.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

namespace nydus::storage::ondisk {

inline std::uint16_t le16(const std::uint8_t* p) { return std::uint16_t(p[0] | p[1] << 8); }
inline std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}
inline std::uint64_t le64(const std::uint8_t* p) { return le32(p) | std::uint64_t(le32(p + 4)) << 32; }

// Byte-wise little-endian stores through memcpy: g++ 12 at -O2 misreads the
// plain byte loop as an overflow (-Wstringop-overflow) in the image builder.
inline void put16(std::uint8_t* p, std::uint16_t v) {
  const std::uint8_t b[2] = {std::uint8_t(v), std::uint8_t(v >> 8)};
  std::memcpy(p, b, sizeof(b));
}
inline void put32(std::uint8_t* p, std::uint32_t v) {
  const std::uint8_t b[4] = {std::uint8_t(v), std::uint8_t(v >> 8), std::uint8_t(v >> 16), std::uint8_t(v >> 24)};
  std::memcpy(p, b, sizeof(b));
}
inline void put64(std::uint8_t* p, std::uint64_t v) {
  put32(p, std::uint32_t(v));
  put32(p + 4, std::uint32_t(v >> 32));
}

// True if [off, off + len) lies within a buffer of `size` bytes (no overflow).
inline bool in_bounds(std::uint64_t off, std::uint64_t len, std::uint64_t size) {
  return off <= size && len <= size - off;
}

inline constexpr std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

constexpr std::uint32_t kErofsMagic = 0xE0F5E1E2;
constexpr std::uint64_t kSuperOffset = 1024;
constexpr std::uint64_t kSuperSize = 128;
constexpr std::uint64_t kExtOffset = 1152;
constexpr std::uint64_t kExtSize = 256;
constexpr std::uint64_t kDeviceSlotSize = 128;
constexpr std::uint32_t kRafsDevtSlotoff = 11;
constexpr std::uint64_t kBlobEntrySize = 256;
constexpr std::uint64_t kChunkTableEntrySize = 80;

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

constexpr std::uint32_t kCompactInodeSize = 32, kExtendedInodeSize = 64;
constexpr std::uint32_t kDirentSize = 12;

// EROFS file types in dirents.
constexpr std::uint8_t kFtUnknown = 0, kFtReg = 1, kFtDir = 2, kFtChr = 3, kFtBlk = 4, kFtFifo = 5, kFtSock = 6,
                       kFtSymlink = 7;

// Xattr name prefix indexes.
constexpr std::uint8_t kXattrUser = 1, kXattrAclAccess = 2, kXattrAclDefault = 3, kXattrTrusted = 4,
                       kXattrSecurity = 6;

}  // namespace nydus::storage::ondisk
