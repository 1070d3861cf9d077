// The on-disk records (src/storage/ondisk.h) against rafs-format.md 1.2-1.12:
// every field's offset as the format tables give it, and the upstream sample
// bootstrap decoded through the records to the values its README documents.
#include "storage/ondisk.h"

#include <cstddef>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace nydus::storage::ondisk {
namespace {

TEST(OnDisk, SuperblockFieldOffsets) {
  EXPECT_EQ(sizeof(SuperRecord), 128u);
  EXPECT_EQ(offsetof(SuperRecord, magic), 0u);
  EXPECT_EQ(offsetof(SuperRecord, checksum), 4u);
  EXPECT_EQ(offsetof(SuperRecord, feature_compat), 8u);
  EXPECT_EQ(offsetof(SuperRecord, blkszbits), 12u);
  EXPECT_EQ(offsetof(SuperRecord, extslots), 13u);
  EXPECT_EQ(offsetof(SuperRecord, root_nid), 14u);
  EXPECT_EQ(offsetof(SuperRecord, inos), 16u);
  EXPECT_EQ(offsetof(SuperRecord, build_time), 24u);
  EXPECT_EQ(offsetof(SuperRecord, build_time_nsec), 32u);
  EXPECT_EQ(offsetof(SuperRecord, blocks), 36u);
  EXPECT_EQ(offsetof(SuperRecord, meta_blkaddr), 40u);
  EXPECT_EQ(offsetof(SuperRecord, xattr_blkaddr), 44u);
  EXPECT_EQ(offsetof(SuperRecord, uuid), 48u);
  EXPECT_EQ(offsetof(SuperRecord, volume_name), 64u);
  EXPECT_EQ(offsetof(SuperRecord, feature_incompat), 80u);
  EXPECT_EQ(offsetof(SuperRecord, u), 84u);
  EXPECT_EQ(offsetof(SuperRecord, extra_devices), 86u);
  EXPECT_EQ(offsetof(SuperRecord, devt_slotoff), 88u);
  EXPECT_EQ(offsetof(SuperRecord, reserved), 90u);
}

TEST(OnDisk, ExtensionAndTableOffsets) {
  EXPECT_EQ(kExtOffset, 1152u);
  EXPECT_EQ(sizeof(RafsExtRecord), 256u);
  EXPECT_EQ(offsetof(RafsExtRecord, blob_table_offset), 8u);
  EXPECT_EQ(offsetof(RafsExtRecord, blob_table_size), 16u);
  EXPECT_EQ(offsetof(RafsExtRecord, chunk_size), 20u);
  EXPECT_EQ(offsetof(RafsExtRecord, chunk_table_offset), 24u);
  EXPECT_EQ(offsetof(RafsExtRecord, chunk_table_size), 32u);
  EXPECT_EQ(offsetof(RafsExtRecord, prefetch_table_offset), 40u);
  EXPECT_EQ(offsetof(RafsExtRecord, prefetch_table_size), 48u);
  EXPECT_EQ(offsetof(RafsExtRecord, reserved), 56u);

  EXPECT_EQ(sizeof(DeviceSlot), 128u);
  EXPECT_EQ(kRafsDevtSlotoff * kDeviceSlotSize, 1408u);
  EXPECT_EQ(offsetof(DeviceSlot, blocks), 64u);
  EXPECT_EQ(offsetof(DeviceSlot, mapped_blkaddr), 68u);

  EXPECT_EQ(sizeof(BlobRecord), 256u);
  EXPECT_EQ(offsetof(BlobRecord, blob_index), 64u);
  EXPECT_EQ(offsetof(BlobRecord, chunk_size), 68u);
  EXPECT_EQ(offsetof(BlobRecord, chunk_count), 72u);
  EXPECT_EQ(offsetof(BlobRecord, compressor), 76u);
  EXPECT_EQ(offsetof(BlobRecord, digester), 80u);
  EXPECT_EQ(offsetof(BlobRecord, features), 84u);
  EXPECT_EQ(offsetof(BlobRecord, compressed_size), 88u);
  EXPECT_EQ(offsetof(BlobRecord, uncompressed_size), 96u);
  EXPECT_EQ(offsetof(BlobRecord, toc_size), 104u);
  EXPECT_EQ(offsetof(BlobRecord, ci_compressor), 108u);
  EXPECT_EQ(offsetof(BlobRecord, ci_offset), 112u);
  EXPECT_EQ(offsetof(BlobRecord, ci_compressed_size), 120u);
  EXPECT_EQ(offsetof(BlobRecord, ci_uncompressed_size), 128u);
  EXPECT_EQ(offsetof(BlobRecord, toc_digest), 136u);
  EXPECT_EQ(offsetof(BlobRecord, meta_digest), 168u);
  EXPECT_EQ(offsetof(BlobRecord, meta_size), 200u);
  EXPECT_EQ(offsetof(BlobRecord, cipher_iv), 208u);
  EXPECT_EQ(offsetof(BlobRecord, cipher_algo), 216u);
  EXPECT_EQ(offsetof(BlobRecord, reserved), 220u);

  EXPECT_EQ(sizeof(ChunkTableRecord), 80u);
  EXPECT_EQ(offsetof(ChunkTableRecord, blob_index), 32u);
  EXPECT_EQ(offsetof(ChunkTableRecord, flags), 36u);
  EXPECT_EQ(offsetof(ChunkTableRecord, compressed_size), 40u);
  EXPECT_EQ(offsetof(ChunkTableRecord, uncompressed_size), 44u);
  EXPECT_EQ(offsetof(ChunkTableRecord, compressed_offset), 48u);
  EXPECT_EQ(offsetof(ChunkTableRecord, uncompressed_offset), 56u);
  EXPECT_EQ(offsetof(ChunkTableRecord, file_offset), 64u);
  EXPECT_EQ(offsetof(ChunkTableRecord, index), 72u);
  EXPECT_EQ(offsetof(ChunkTableRecord, crc32), 76u);
}

TEST(OnDisk, InodeDirentAndIndexOffsets) {
  EXPECT_EQ(sizeof(CompactInode), 32u);
  EXPECT_EQ(offsetof(CompactInode, xattr_icount), 2u);
  EXPECT_EQ(offsetof(CompactInode, mode), 4u);
  EXPECT_EQ(offsetof(CompactInode, nlink), 6u);
  EXPECT_EQ(offsetof(CompactInode, size), 8u);
  EXPECT_EQ(offsetof(CompactInode, mtime_delta), 12u);
  EXPECT_EQ(offsetof(CompactInode, u), 16u);
  EXPECT_EQ(offsetof(CompactInode, ino), 20u);
  EXPECT_EQ(offsetof(CompactInode, uid), 24u);
  EXPECT_EQ(offsetof(CompactInode, gid), 26u);

  EXPECT_EQ(sizeof(ExtendedInode), 64u);
  EXPECT_EQ(offsetof(ExtendedInode, mode), 4u);
  EXPECT_EQ(offsetof(ExtendedInode, size), 8u);
  EXPECT_EQ(offsetof(ExtendedInode, u), 16u);
  EXPECT_EQ(offsetof(ExtendedInode, ino), 20u);
  EXPECT_EQ(offsetof(ExtendedInode, uid), 24u);
  EXPECT_EQ(offsetof(ExtendedInode, gid), 28u);
  EXPECT_EQ(offsetof(ExtendedInode, mtime), 32u);
  EXPECT_EQ(offsetof(ExtendedInode, mtime_nsec), 40u);
  EXPECT_EQ(offsetof(ExtendedInode, nlink), 44u);

  EXPECT_EQ(sizeof(XattrBodyHeader), 12u);
  EXPECT_EQ(offsetof(XattrBodyHeader, shared_count), 4u);
  EXPECT_EQ(sizeof(XattrEntryHeader), 4u);
  EXPECT_EQ(offsetof(XattrEntryHeader, value_size), 2u);
  EXPECT_EQ(xattr_body_size(0), 0u);
  EXPECT_EQ(xattr_body_size(1), 12u);
  EXPECT_EQ(xattr_body_size(3), 20u);
  EXPECT_EQ(xattr_icount(20), 3u);

  EXPECT_EQ(sizeof(Dirent), 12u);
  EXPECT_EQ(offsetof(Dirent, nameoff), 8u);
  EXPECT_EQ(offsetof(Dirent, file_type), 10u);

  EXPECT_EQ(sizeof(ChunkIndex), 8u);
  EXPECT_EQ(offsetof(ChunkIndex, device), 2u);
  EXPECT_EQ(offsetof(ChunkIndex, blkaddr), 4u);

  EXPECT_EQ(ci_entry_size(false), 16u);
  EXPECT_EQ(ci_entry_size(true), 24u);
  EXPECT_EQ(sizeof(BlobMetaRecord), 4096u);
  EXPECT_EQ(offsetof(BlobMetaRecord, ci_entries), 12u);
  EXPECT_EQ(offsetof(BlobMetaRecord, ci_offset), 16u);
  EXPECT_EQ(offsetof(BlobMetaRecord, ci_uncompressed_size), 32u);
  EXPECT_EQ(offsetof(BlobMetaRecord, context_count), 56u);
  EXPECT_EQ(offsetof(BlobMetaRecord, magic2), 4092u);
}

TEST(OnDisk, RecordsAreLittleEndian) {
  auto d = zeroed<Dirent>();
  d.nid = 0x0102030405060708ull;
  d.nameoff = 0x0A0B;
  d.file_type = kFtDir;
  std::uint8_t raw[sizeof(Dirent)];
  store(raw, d);
  const std::uint8_t want[] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x0B, 0x0A, kFtDir, 0};
  EXPECT_EQ(std::vector<std::uint8_t>(raw, raw + sizeof(raw)), std::vector<std::uint8_t>(want, want + sizeof(want)));
  EXPECT_EQ(load<Dirent>(raw).nid.value(), 0x0102030405060708ull);
}

// The upstream 2.2 sample, decoded through the records (rafs-format.md 1.2-1.5
// and the fixture README).
TEST(OnDisk, UpstreamFixtureDecodes) {
  const std::string path = std::string(NYDUS_SOURCE_DIR) + "/../shared/fixtures/rafs-v6/rafs-v6-2.2.boot";
  std::ifstream f(path, std::ios::binary);
  if (!f) GTEST_SKIP() << "fixture missing: " << path;
  std::vector<std::uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GE(b.size(), kExtOffset + kExtSize);
  const auto s = load<SuperRecord>(b.data() + kSuperOffset);
  EXPECT_EQ(s.magic.value(), kErofsMagic);
  EXPECT_EQ(s.blkszbits, 12);
  EXPECT_EQ(s.root_nid.value(), 128);
  EXPECT_EQ(s.meta_blkaddr.value(), 2u);
  EXPECT_EQ(s.blocks.value(), 9u);
  EXPECT_EQ(s.feature_incompat.value(), kIncompatChunkedFile | kIncompatDeviceTable);
  EXPECT_EQ(s.extra_devices.value(), 1);
  EXPECT_EQ(s.devt_slotoff.value(), kRafsDevtSlotoff);
  const auto e = load<RafsExtRecord>(b.data() + kExtOffset);
  EXPECT_EQ(e.flags.value(), 0x194u);
  EXPECT_EQ(e.blob_table_size.value(), kBlobEntrySize);
  EXPECT_EQ(e.chunk_table_size.value() % kChunkTableEntrySize, 0u);
  const auto d = load<DeviceSlot>(b.data() + kRafsDevtSlotoff * kDeviceSlotSize);
  EXPECT_EQ(tag_view(d.tag), "be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef");
  EXPECT_EQ(d.mapped_blkaddr.value(), 512u);
  ASSERT_GE(b.size(), e.blob_table_offset.value() + kBlobEntrySize);
  const auto blob = load<BlobRecord>(b.data() + e.blob_table_offset.value());
  EXPECT_EQ(tag_view(blob.blob_id), tag_view(d.tag));
  EXPECT_EQ(blob.blob_index.value(), 0u);
  EXPECT_EQ(blob.compressed_size.value(), 14554u);
  EXPECT_EQ(blob.ci_offset.value(), 8314u);
  EXPECT_EQ(blob.ci_uncompressed_size.value(), 2 * ci_entry_size(false));
  // The root: a directory of 67 bytes whose first dirent is "." pointing at itself.
  const std::uint64_t root_at = std::uint64_t(s.meta_blkaddr.value()) * 4096 + 128 * kInodeSlotSize;
  ASSERT_GE(b.size(), root_at + kCompactInodeSize);
  const auto root = load<CompactInode>(b.data() + root_at);
  EXPECT_EQ(root.size.value(), 67u);
  EXPECT_EQ((root.format.value() >> 1) & 7, kLayoutFlatInline);
}

}  // namespace
}  // namespace nydus::storage::ondisk
