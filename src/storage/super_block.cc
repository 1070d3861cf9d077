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

// The superblock fields every image has.
Result<void> parse_super(Image::Impl& im, const SuperRecord& s) {
  SuperBlock& sb = im.sb;
  if (s.magic.value() != kErofsMagic) return tl::unexpected(corrupt("no EROFS/RAFS v6 magic at offset 1024"));
  sb.feature_compat = s.feature_compat.value();
  std::uint8_t bits = s.blkszbits;
  if (bits < 9 || bits > 12) return tl::unexpected(corrupt("block size bits " + std::to_string(bits)));
  im.blkbits = bits;
  sb.block_size = 1u << bits;
  sb.root_nid = s.root_nid.value();
  sb.inodes = s.inos.value();
  sb.build_time = s.build_time.value();
  sb.build_time_nsec = s.build_time_nsec.value();
  sb.blocks = s.blocks.value();
  sb.meta_blkaddr = s.meta_blkaddr.value();
  sb.xattr_blkaddr = s.xattr_blkaddr.value();
  sb.feature_incompat = s.feature_incompat.value();
  sb.extra_devices = s.extra_devices.value();
  sb.devt_slotoff = s.devt_slotoff.value();
  sb.rafs = sb.feature_compat & kCompatRafsV6;
  return {};
}

// RAFS rules on the superblock, then the nydus extension's fields.
Result<void> parse_rafs_ext(Image::Impl& im, const SuperRecord& s) {
  SuperBlock& sb = im.sb;
  if (s.checksum.value() != 0) return tl::unexpected(corrupt("RAFS superblock checksum must be 0"));
  if (s.extslots != 0) return tl::unexpected(corrupt("extslots must be 0"));
  if (sb.feature_incompat != (kIncompatChunkedFile | kIncompatDeviceTable)) {
    return tl::unexpected(corrupt("RAFS feature_incompat must be 0xC, is " + std::to_string(sb.feature_incompat)));
  }
  if (s.u.value() != 0) return tl::unexpected(corrupt("superblock union field must be 0"));
  if (sb.devt_slotoff != kRafsDevtSlotoff) return tl::unexpected(corrupt("RAFS device slot offset must be 11"));
  if (sb.xattr_blkaddr != 0) return tl::unexpected(corrupt("RAFS images have no shared xattr area"));
  if (sb.inodes == 0) return tl::unexpected(corrupt("inode count is 0"));
  if (im.size < kExtOffset + kExtSize) return tl::unexpected(corrupt("file too small for the nydus extension"));
  const auto e = load<RafsExtRecord>(im.data + kExtOffset);
  sb.flags = e.flags.value();
  sb.blob_table_offset = e.blob_table_offset.value();
  sb.blob_table_size = e.blob_table_size.value();
  sb.chunk_size = e.chunk_size.value();
  sb.chunk_table_offset = e.chunk_table_offset.value();
  sb.chunk_table_size = e.chunk_table_size.value();
  sb.prefetch_table_offset = e.prefetch_table_offset.value();
  sb.prefetch_table_size = e.prefetch_table_size.value();
  if (sb.flags & ~kKnownFlags) return tl::unexpected(corrupt("unknown superblock flags"));
  int comp = __builtin_popcountll(sb.flags & (kFlagCompNone | kFlagCompLz4 | kFlagCompGzip | kFlagCompZstd));
  int hash = __builtin_popcountll(sb.flags & (kFlagHashBlake3 | kFlagHashSha256));
  if (comp != 1 || hash != 1) return tl::unexpected(corrupt("flags need exactly one compression and one hash bit"));
  if (sb.flags & kFlagTarfs) return fail(ErrorCode::kUnsupported, "TARFS images are not supported");
  if (!valid_chunk_size(sb.chunk_size)) {
    return tl::unexpected(corrupt("chunk size " + std::to_string(sb.chunk_size)));
  }
  return {};
}

// The device slots' byte offset, after checking that they lie in the file.
Result<std::uint64_t> device_table(const Image::Impl& im) {
  std::uint64_t devt = std::uint64_t(im.sb.devt_slotoff) * kDeviceSlotSize;
  if (!in_bounds(devt, std::uint64_t(im.sb.extra_devices) * kDeviceSlotSize, im.size)) {
    return tl::unexpected(corrupt("device table beyond the end of the file"));
  }
  return devt;
}

// One blob-table entry with its device slot; `ids` collects the ids seen so far.
Result<BlobInfo> parse_blob(const Image::Impl& im, std::uint64_t i, const BlobRecord& b, const DeviceSlot& d,
                            std::set<std::string>& ids) {
  BlobInfo bi;
  bi.blob_id = std::string(tag_view(b.blob_id));
  bi.index = b.blob_index.value();
  bi.chunk_size = b.chunk_size.value();
  bi.chunk_count = b.chunk_count.value();
  std::uint32_t comp_algo = b.compressor.value(), digest_algo = b.digester.value();
  bi.features = b.features.value();
  bi.compressed_size = b.compressed_size.value();
  bi.uncompressed_size = b.uncompressed_size.value();
  bi.toc_size = b.toc_size.value();
  std::uint32_t ci_comp = b.ci_compressor.value();
  bi.ci_offset = b.ci_offset.value();
  bi.ci_compressed_size = b.ci_compressed_size.value();
  bi.ci_uncompressed_size = b.ci_uncompressed_size.value();
  bi.device_blocks = d.blocks.value();
  bi.mapped_blkaddr = d.mapped_blkaddr.value();
  std::string where = "blob " + std::to_string(i) + " (" + bi.blob_id + "): ";
  if (bi.blob_id.size() != sizeof(b.blob_id)) return tl::unexpected(corrupt(where + "blob id must be 64 characters"));
  if (!is_safe_blob_id(bi.blob_id)) return tl::unexpected(corrupt(where + "blob id is not a file name"));
  if (tag_view(d.tag) != bi.blob_id) return tl::unexpected(corrupt(where + "device slot tag differs"));
  if (!ids.insert(bi.blob_id).second) return tl::unexpected(corrupt(where + "duplicate blob id"));
  if (bi.index != i) return tl::unexpected(corrupt(where + "blob_index differs from its position"));
  if (bi.chunk_size != im.sb.chunk_size) return tl::unexpected(corrupt(where + "chunk size differs from superblock"));
  if (bi.chunk_count > (1u << 24)) return tl::unexpected(corrupt(where + "too many chunks"));
  if (comp_algo > 3 || ci_comp > 3) return tl::unexpected(corrupt(where + "unknown compressor"));
  if (digest_algo > 1) return tl::unexpected(corrupt(where + "unknown digest algorithm"));
  if ((bi.features & 0xFFFF) & ~0x0FFFu) return tl::unexpected(corrupt(where + "unknown blob features"));
  if (bi.features & 0x8000'0000u) return tl::unexpected(corrupt(where + "invalid blob feature bit 31"));
  if (bi.device_blocks == 0) return tl::unexpected(corrupt(where + "device has 0 blocks"));
  bi.compressor = Compressor(comp_algo);
  bi.digester = DigestAlgo(digest_algo);
  bi.ci_compressor = Compressor(ci_comp);
  std::uint64_t esz = ci_entry_size(bi.features & kBlobFeatureChunkInfoV2);
  if (bi.ci_uncompressed_size != std::uint64_t(bi.chunk_count) * esz &&
      !(bi.features & (kBlobFeatureBatch | kBlobFeatureZran | kBlobFeatureEncrypted))) {
    return tl::unexpected(corrupt(where + "ci_uncompressed_size does not match chunk_count"));
  }
  return bi;
}

// Blob table: one entry per device slot, in device order, ids unique.
Result<void> parse_blob_table(Image::Impl& im) {
  const SuperBlock& sb = im.sb;
  auto devt = device_table(im);
  if (!devt) return tl::unexpected(devt.error());
  if (sb.blob_table_size % kBlobEntrySize != 0 || !in_bounds(sb.blob_table_offset, sb.blob_table_size, im.size) ||
      (sb.blob_table_size && sb.blob_table_offset < *devt + std::uint64_t(sb.extra_devices) * kDeviceSlotSize)) {
    return tl::unexpected(corrupt("blob table offset/size"));
  }
  std::uint64_t nblobs = sb.blob_table_size / kBlobEntrySize;
  if (nblobs != sb.extra_devices) {
    return tl::unexpected(corrupt("blob table has " + std::to_string(nblobs) + " entries but " +
                                  std::to_string(sb.extra_devices) + " devices"));
  }
  std::set<std::string> ids;
  for (std::uint64_t i = 0; i < nblobs; ++i) {
    auto bi = parse_blob(im, i, load<BlobRecord>(im.data + sb.blob_table_offset + i * kBlobEntrySize),
                         load<DeviceSlot>(im.data + *devt + i * kDeviceSlotSize), ids);
    if (!bi) return tl::unexpected(bi.error());
    im.blobs.push_back(std::move(*bi));
  }
  return {};
}

// Chunk table: digests by (blob, CI index), used for validation.
Result<void> parse_chunk_table(Image::Impl& im) {
  const SuperBlock& sb = im.sb;
  if (sb.chunk_table_size % kChunkTableEntrySize != 0 || !in_bounds(sb.chunk_table_offset, sb.chunk_table_size, im.size)) {
    return tl::unexpected(corrupt("chunk table offset/size"));
  }
  for (const auto& b : im.blobs) {
    auto st = std::make_unique<BlobState>();
    st->digests.resize(b.chunk_count);
    st->has_digest.resize(b.chunk_count);
    im.blob_states.push_back(std::move(st));
  }
  for (std::uint64_t off = 0; off < sb.chunk_table_size; off += kChunkTableEntrySize) {
    const auto c = load<ChunkTableRecord>(im.data + sb.chunk_table_offset + off);
    std::uint32_t bidx = c.blob_index.value(), index = c.index.value();
    if (bidx >= im.blobs.size() || index >= im.blobs[bidx].chunk_count) {
      return tl::unexpected(corrupt("chunk table entry " + std::to_string(off / kChunkTableEntrySize) +
                                    " names a missing blob or chunk"));
    }
    static_assert(sizeof(c.digest) == std::tuple_size_v<Digest>);
    std::copy(std::begin(c.digest), std::end(c.digest), im.blob_states[bidx]->digests[index].begin());
    im.blob_states[bidx]->has_digest[index] = true;
  }
  return {};
}

// Prefetch table: u32 nids, a 0 ends it.
Result<void> parse_prefetch_table(Image::Impl& im) {
  const SuperBlock& sb = im.sb;
  if (sb.prefetch_table_size == 0) return {};
  if (sb.prefetch_table_size % kPrefetchEntrySize != 0 ||
      !in_bounds(sb.prefetch_table_offset, sb.prefetch_table_size, im.size)) {
    return tl::unexpected(corrupt("prefetch table offset/size"));
  }
  for (std::uint32_t i = 0; i < sb.prefetch_table_size; i += kPrefetchEntrySize) {
    std::uint32_t nid = load<Le32>(im.data + sb.prefetch_table_offset + i).value();
    if (nid == 0) break;
    im.prefetch.push_back(nid);
  }
  return {};
}

// Plain EROFS (mkfs.erofs): uncompressed layouts only; devices are raw blobs.
Result<void> parse_erofs_devices(Image::Impl& im) {
  const SuperBlock& sb = im.sb;
  if (sb.feature_incompat & ~0xFu) {
    return fail(ErrorCode::kUnsupported, "EROFS incompatible features " + std::to_string(sb.feature_incompat) +
                                             " are not supported (compressed or newer layouts)");
  }
  if (sb.extra_devices == 0) return {};
  if (!(sb.feature_incompat & kIncompatDeviceTable)) return tl::unexpected(corrupt("devices without a device table"));
  auto devt = device_table(im);
  if (!devt) return tl::unexpected(devt.error());
  for (std::uint32_t i = 0; i < sb.extra_devices; ++i) {
    const auto d = load<DeviceSlot>(im.data + *devt + i * kDeviceSlotSize);
    BlobInfo bi;
    bi.blob_id = std::string(tag_view(d.tag));
    bi.index = i;
    bi.device_blocks = d.blocks.value();
    bi.mapped_blkaddr = d.mapped_blkaddr.value();
    bi.raw_device = true;
    im.blobs.push_back(std::move(bi));
    im.blob_states.push_back(std::make_unique<BlobState>());
  }
  return {};
}

}  // namespace

Result<void> Image::Impl::parse() {
  if (size < kSuperOffset + kSuperSize) return tl::unexpected(corrupt("file too small for a superblock"));
  const auto s = load<SuperRecord>(data + kSuperOffset);
  if (auto r = parse_super(*this, s); !r) return r;
  if (sb.rafs) {
    if (auto r = parse_rafs_ext(*this, s); !r) return r;
    if (auto r = parse_blob_table(*this); !r) return r;
    if (auto r = parse_chunk_table(*this); !r) return r;
    if (auto r = parse_prefetch_table(*this); !r) return r;
  } else if (auto r = parse_erofs_devices(*this); !r) {
    return r;
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
  if (!impl->options.blob_cache_dir.empty() && !impl->options.blob_caches) {
    impl->options.blob_caches = std::make_shared<BlobCacheRegistry>();
  }
  impl->serial = g_serial.fetch_add(1);
  // One report a minute: every read of a full work_dir fails its cache write.
  impl->cache_report_limit = std::make_unique<RateLimiter>(
      RateLimiter::Options{.budget = 1, .interval = std::chrono::minutes(1)}, impl->options.cache_report_clock);
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
