// §4.9 super-block info (`GET /api/v1/daemon/backend`) as upstream's
// RafsSuperMeta serialises it for a v6 image: version 0x600, sb_size 128
// (the EROFS superblock), root_inode = root nid, prefetch entries = table
// bytes / 4, v5-only fields 0.
#include <nlohmann/json.hpp>

#include "image_impl.h"
#include "ondisk.h"

namespace nydus::storage {

std::string Image::super_block_info_json(std::uint64_t attr_timeout_secs, std::uint64_t entry_timeout_secs) const {
  const SuperBlock& sb = impl_->sb;
  nlohmann::ordered_json j;
  j["magic"] = ondisk::kErofsMagic;
  j["version"] = 0x600;
  j["sb_size"] = std::uint32_t(ondisk::kSuperSize);
  j["root_inode"] = std::uint64_t(sb.root_nid);
  j["chunk_size"] = sb.chunk_size;
  j["inodes_count"] = sb.inodes;
  j["flags"] = {{"bits", sb.flags}};
  j["inode_table_entries"] = 0;
  j["inode_table_offset"] = 0;
  j["blob_table_size"] = sb.blob_table_size;
  j["blob_table_offset"] = sb.blob_table_offset;
  j["extended_blob_table_offset"] = 0;
  j["extended_blob_table_entries"] = 0;
  j["prefetch_table_offset"] = sb.prefetch_table_offset;
  j["prefetch_table_entries"] = sb.prefetch_table_size / 4;
  j["attr_timeout"] = {{"secs", attr_timeout_secs}, {"nanos", 0}};
  j["entry_timeout"] = {{"secs", entry_timeout_secs}, {"nanos", 0}};
  j["is_chunk_dict"] = false;
  j["meta_blkaddr"] = sb.meta_blkaddr;
  j["root_nid"] = sb.root_nid;
  j["chunk_table_offset"] = sb.chunk_table_offset;
  j["chunk_table_size"] = sb.chunk_table_size;
  return j.dump();
}

}  // namespace nydus::storage
