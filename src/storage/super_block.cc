// Opening an image: the superblock and the tables around it.
//
// Layout read (rafs-format.md 1.1-1.6): bytes 0-1023 unused; the EROFS
// superblock at 1024 (magic 0xE0F5E1E2, blkszbits, root nid, inode count,
// meta/xattr block addresses, feature bits, device count and slot offset);
// for RAFS images (feature_compat 0x4000_0000) the nydus extension at 1152
// (flags, blob/chunk/prefetch table offsets and sizes, chunk size), the
// device table at 1408, the blob table (256-byte entries), the 80-byte
// chunk table and the prefetch table (u32 nids).
//
// Checks: file holds the superblock; magic; block size 512..4096; RAFS:
// checksum 0, extslots 0, incompat exactly CHUNKED|DEVICE_TABLE, slot offset
// 11, no shared xattr area, known flags with exactly one compression and one
// hash bit, chunk size a power of two in 4 KiB..16 MiB, every table inside
// the file and of a whole number of entries, blob count = device count,
// blob index = position, blob chunk size = superblock chunk size, known
// compressor/digest/features, no duplicate blob ids; chunk-table entries name
// existing blobs and CI indexes. Plain EROFS: only uncompressed features
// (incompat bits 0x1|0x2|0x4|0x8), the device table inside the file. Both:
// the root inode decodes and is a directory.
#include <sys/stat.h>

#include <atomic>
#include <set>

#include "file_io.h"
#include "image_impl.h"
#include "ondisk.h"

namespace nydus::storage {

using namespace ondisk;

namespace {

std::atomic<std::uint64_t> g_serial{1};

Error corrupt(const std::string& what) { return Error(ErrorCode::kCorrupt, "bad image: " + what); }

std::string tag_string(const std::uint8_t* p, std::size_t n) {
  std::size_t len = 0;
  while (len < n && p[len] != 0) ++len;
  return std::string(reinterpret_cast<const char*>(p), len);
}

}  // namespace

Result<void> Image::Impl::parse() {
  if (size < kSuperOffset + kSuperSize) return tl::unexpected(corrupt("file too small for a superblock"));
  const std::uint8_t* s = data + kSuperOffset;
  if (le32(s) != kErofsMagic) return tl::unexpected(corrupt("no EROFS/RAFS v6 magic at offset 1024"));
  sb.feature_compat = le32(s + 8);
  std::uint8_t bits = s[12];
  if (bits < 9 || bits > 12) return tl::unexpected(corrupt("block size bits " + std::to_string(bits)));
  blkbits = bits;
  sb.block_size = 1u << bits;
  sb.root_nid = le16(s + 14);
  sb.inodes = le64(s + 16);
  sb.build_time = le64(s + 24);
  sb.build_time_nsec = le32(s + 32);
  sb.blocks = le32(s + 36);
  sb.meta_blkaddr = le32(s + 40);
  sb.xattr_blkaddr = le32(s + 44);
  sb.feature_incompat = le32(s + 80);
  sb.extra_devices = le16(s + 86);
  sb.devt_slotoff = le16(s + 88);
  sb.rafs = sb.feature_compat & kCompatRafsV6;

  if (sb.rafs) {
    if (le32(s + 4) != 0) return tl::unexpected(corrupt("RAFS superblock checksum must be 0"));
    if (s[13] != 0) return tl::unexpected(corrupt("extslots must be 0"));
    if (sb.feature_incompat != (kIncompatChunkedFile | kIncompatDeviceTable)) {
      return tl::unexpected(corrupt("RAFS feature_incompat must be 0xC, is " + std::to_string(sb.feature_incompat)));
    }
    if (le16(s + 84) != 0) return tl::unexpected(corrupt("superblock union field must be 0"));
    if (sb.devt_slotoff != kRafsDevtSlotoff) return tl::unexpected(corrupt("RAFS device slot offset must be 11"));
    if (sb.xattr_blkaddr != 0) return tl::unexpected(corrupt("RAFS images have no shared xattr area"));
    if (sb.inodes == 0) return tl::unexpected(corrupt("inode count is 0"));
    if (size < kExtOffset + kExtSize) return tl::unexpected(corrupt("file too small for the nydus extension"));
    const std::uint8_t* e = data + kExtOffset;
    sb.flags = le64(e);
    sb.blob_table_offset = le64(e + 8);
    sb.blob_table_size = le32(e + 16);
    sb.chunk_size = le32(e + 20);
    sb.chunk_table_offset = le64(e + 24);
    sb.chunk_table_size = le64(e + 32);
    sb.prefetch_table_offset = le64(e + 40);
    sb.prefetch_table_size = le32(e + 48);
    if (sb.flags & ~kKnownFlags) return tl::unexpected(corrupt("unknown superblock flags"));
    int comp = __builtin_popcountll(sb.flags & (kFlagCompNone | kFlagCompLz4 | kFlagCompGzip | kFlagCompZstd));
    int hash = __builtin_popcountll(sb.flags & (kFlagHashBlake3 | kFlagHashSha256));
    if (comp != 1 || hash != 1) return tl::unexpected(corrupt("flags need exactly one compression and one hash bit"));
    if (sb.flags & kFlagTarfs) return fail(ErrorCode::kUnsupported, "TARFS images are not supported");
    if (sb.chunk_size < 4096 || sb.chunk_size > (16u << 20) || (sb.chunk_size & (sb.chunk_size - 1))) {
      return tl::unexpected(corrupt("chunk size " + std::to_string(sb.chunk_size)));
    }
    // Device table and blob table.
    std::uint64_t devt = std::uint64_t(sb.devt_slotoff) * kDeviceSlotSize;
    if (!in_bounds(devt, std::uint64_t(sb.extra_devices) * kDeviceSlotSize, size)) {
      return tl::unexpected(corrupt("device table beyond the end of the file"));
    }
    if (sb.blob_table_size % kBlobEntrySize != 0 || !in_bounds(sb.blob_table_offset, sb.blob_table_size, size) ||
        (sb.blob_table_size && sb.blob_table_offset < devt + std::uint64_t(sb.extra_devices) * kDeviceSlotSize)) {
      return tl::unexpected(corrupt("blob table offset/size"));
    }
    std::uint64_t nblobs = sb.blob_table_size / kBlobEntrySize;
    if (nblobs != sb.extra_devices) {
      return tl::unexpected(corrupt("blob table has " + std::to_string(nblobs) + " entries but " +
                                    std::to_string(sb.extra_devices) + " devices"));
    }
    std::set<std::string> ids;
    for (std::uint64_t i = 0; i < nblobs; ++i) {
      const std::uint8_t* b = data + sb.blob_table_offset + i * kBlobEntrySize;
      const std::uint8_t* d = data + devt + i * kDeviceSlotSize;
      BlobInfo bi;
      bi.blob_id = tag_string(b, 64);
      bi.index = le32(b + 64);
      bi.chunk_size = le32(b + 68);
      bi.chunk_count = le32(b + 72);
      std::uint32_t comp_algo = le32(b + 76), digest_algo = le32(b + 80);
      bi.features = le32(b + 84);
      bi.compressed_size = le64(b + 88);
      bi.uncompressed_size = le64(b + 96);
      bi.toc_size = le32(b + 104);
      std::uint32_t ci_comp = le32(b + 108);
      bi.ci_offset = le64(b + 112);
      bi.ci_compressed_size = le64(b + 120);
      bi.ci_uncompressed_size = le64(b + 128);
      bi.device_blocks = le32(d + 64);
      bi.mapped_blkaddr = le32(d + 68);
      std::string where = "blob " + std::to_string(i) + " (" + bi.blob_id + "): ";
      if (bi.blob_id.size() != 64) return tl::unexpected(corrupt(where + "blob id must be 64 characters"));
      if (!is_safe_blob_id(bi.blob_id)) return tl::unexpected(corrupt(where + "blob id is not a file name"));
      if (tag_string(d, 64) != bi.blob_id) return tl::unexpected(corrupt(where + "device slot tag differs"));
      if (!ids.insert(bi.blob_id).second) return tl::unexpected(corrupt(where + "duplicate blob id"));
      if (bi.index != i) return tl::unexpected(corrupt(where + "blob_index differs from its position"));
      if (bi.chunk_size != sb.chunk_size) return tl::unexpected(corrupt(where + "chunk size differs from superblock"));
      if (bi.chunk_count > (1u << 24)) return tl::unexpected(corrupt(where + "too many chunks"));
      if (comp_algo > 3 || ci_comp > 3) return tl::unexpected(corrupt(where + "unknown compressor"));
      if (digest_algo > 1) return tl::unexpected(corrupt(where + "unknown digest algorithm"));
      if ((bi.features & 0xFFFF) & ~0x0FFFu) return tl::unexpected(corrupt(where + "unknown blob features"));
      if (bi.features & 0x8000'0000u) return tl::unexpected(corrupt(where + "invalid blob feature bit 31"));
      if (bi.device_blocks == 0) return tl::unexpected(corrupt(where + "device has 0 blocks"));
      bi.compressor = Compressor(comp_algo);
      bi.digester = DigestAlgo(digest_algo);
      bi.ci_compressor = Compressor(ci_comp);
      std::uint64_t esz = (bi.features & kBlobFeatureChunkInfoV2) ? 24 : 16;
      if (bi.ci_uncompressed_size != std::uint64_t(bi.chunk_count) * esz &&
          !(bi.features & (kBlobFeatureBatch | kBlobFeatureZran | kBlobFeatureEncrypted))) {
        return tl::unexpected(corrupt(where + "ci_uncompressed_size does not match chunk_count"));
      }
      blobs.push_back(std::move(bi));
    }
    // Chunk table: digests by (blob, CI index), used for validation.
    if (sb.chunk_table_size % kChunkTableEntrySize != 0 || !in_bounds(sb.chunk_table_offset, sb.chunk_table_size, size)) {
      return tl::unexpected(corrupt("chunk table offset/size"));
    }
    for (const auto& b : blobs) {
      auto st = std::make_unique<BlobState>();
      st->digests.resize(b.chunk_count);
      st->has_digest.resize(b.chunk_count);
      blob_states.push_back(std::move(st));
    }
    for (std::uint64_t off = 0; off < sb.chunk_table_size; off += kChunkTableEntrySize) {
      const std::uint8_t* c = data + sb.chunk_table_offset + off;
      std::uint32_t bidx = le32(c + 32), index = le32(c + 72);
      if (bidx >= blobs.size() || index >= blobs[bidx].chunk_count) {
        return tl::unexpected(corrupt("chunk table entry " + std::to_string(off / kChunkTableEntrySize) +
                                      " names a missing blob or chunk"));
      }
      std::copy(c, c + 32, blob_states[bidx]->digests[index].begin());
      blob_states[bidx]->has_digest[index] = true;
    }
    // Prefetch table: u32 nids, a 0 ends it.
    if (sb.prefetch_table_size) {
      if (sb.prefetch_table_size % 4 != 0 || !in_bounds(sb.prefetch_table_offset, sb.prefetch_table_size, size)) {
        return tl::unexpected(corrupt("prefetch table offset/size"));
      }
      for (std::uint32_t i = 0; i < sb.prefetch_table_size; i += 4) {
        std::uint32_t nid = le32(data + sb.prefetch_table_offset + i);
        if (nid == 0) break;
        prefetch.push_back(nid);
      }
    }
  } else {
    // Plain EROFS (mkfs.erofs): uncompressed layouts only.
    if (sb.feature_incompat & ~0xFu) {
      return fail(ErrorCode::kUnsupported, "EROFS incompatible features " + std::to_string(sb.feature_incompat) +
                                               " are not supported (compressed or newer layouts)");
    }
    if (sb.extra_devices) {
      if (!(sb.feature_incompat & kIncompatDeviceTable)) return tl::unexpected(corrupt("devices without a device table"));
      std::uint64_t devt = std::uint64_t(sb.devt_slotoff) * kDeviceSlotSize;
      if (!in_bounds(devt, std::uint64_t(sb.extra_devices) * kDeviceSlotSize, size)) {
        return tl::unexpected(corrupt("device table beyond the end of the file"));
      }
      for (std::uint32_t i = 0; i < sb.extra_devices; ++i) {
        const std::uint8_t* d = data + devt + i * kDeviceSlotSize;
        BlobInfo bi;
        bi.blob_id = tag_string(d, 64);
        bi.index = i;
        bi.device_blocks = le32(d + 64);
        bi.mapped_blkaddr = le32(d + 68);
        bi.raw_device = true;
        blobs.push_back(std::move(bi));
        blob_states.push_back(std::make_unique<BlobState>());
      }
    }
  }
  auto root = load_inode(sb.root_nid);
  if (!root) return tl::unexpected(root.error().with_context("root inode"));
  if (!S_ISDIR(root->mode)) return tl::unexpected(corrupt("root inode is not a directory"));
  return {};
}

// The bootstrap is copied into memory, never mapped: a mapped file that is
// truncated or rewritten under a live mount turns the next access into SIGBUS
// for the whole daemon (docs/decisions.md). Opened without blocking, regular
// files only, size checked before anything is allocated.
Result<std::unique_ptr<Image>> Image::open(const std::string& path, ImageOptions options) {
  auto bytes = read_regular_file(path, "bootstrap", kMaxBootstrapSize);
  if (!bytes) return tl::unexpected(bytes.error());
  auto image = from_bytes(std::move(*bytes), std::move(options));
  if (!image) return tl::unexpected(image.error().with_context(path));
  return image;
}

Result<std::unique_ptr<Image>> Image::from_bytes(std::vector<std::uint8_t> bytes, ImageOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->owned = std::move(bytes);
  impl->data = impl->owned.data();
  impl->size = impl->owned.size();
  impl->options = std::move(options);
  if (!impl->options.chunk_cache) impl->options.chunk_cache = std::make_shared<ChunkCache>(kDefaultChunkCacheBytes);
  impl->serial = g_serial.fetch_add(1);
  if (auto r = impl->parse(); !r) return tl::unexpected(r.error());
  return std::unique_ptr<Image>(new Image(std::move(impl)));
}

Image::Image(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Image::~Image() = default;

const SuperBlock& Image::super_block() const { return impl_->sb; }
const std::vector<BlobInfo>& Image::blobs() const { return impl_->blobs; }
std::uint64_t Image::root_ino() const { return impl_->sb.root_nid; }
const std::vector<std::uint64_t>& Image::prefetch_nids() const { return impl_->prefetch; }

}  // namespace nydus::storage
