// §4.9 super-block summary of a v6 image, in upstream's RafsSuperMeta terms
// (see SuperBlockInfo in image.h).
#include "image_impl.h"
#include "ondisk.h"

namespace nydus::storage {

SuperBlockInfo Image::super_block_info() const {
  const SuperBlock& sb = impl_->sb;
  return {.magic = ondisk::kErofsMagic,
          .version = 0x600,
          .sb_size = std::uint32_t(ondisk::kSuperSize),
          .root_inode = sb.root_nid,
          .chunk_size = sb.chunk_size,
          .inodes_count = sb.inodes,
          .flags = sb.flags,
          .blob_table_size = sb.blob_table_size,
          .blob_table_offset = sb.blob_table_offset,
          .prefetch_table_offset = sb.prefetch_table_offset,
          .prefetch_table_entries = sb.prefetch_table_size / 4,
          .meta_blkaddr = sb.meta_blkaddr,
          .root_nid = sb.root_nid,
          .chunk_table_offset = sb.chunk_table_offset,
          .chunk_table_size = sb.chunk_table_size};
}

}  // namespace nydus::storage
