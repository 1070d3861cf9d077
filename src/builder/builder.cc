// The image builder (builder.h): directory tree -> RAFS v6 bootstrap + blob.
//
// Passes, in order:
//  1. scan: lstat every entry (no symlink following), read xattrs and link
//     targets, children sorted by byte order, hardlinks detected by (dev, ino)
//     so every later name points at the first node's inode;
//  2. chunk: regular files cut into chunk_size pieces; holes (SEEK_DATA) and
//     all-zero pieces are not hashed twice; chunks de-duplicated by digest;
//     each new chunk is compressed when that makes it smaller and appended
//     to the blob, its uncompressed copy placed 4 KiB aligned in the cache image;
//  3. layout: inodes in breadth-first order from block 2 (root nid 128 with
//     meta_blkaddr 1), each record 32-byte aligned, tail-packed data never
//     crossing a block; then full directory/symlink blocks; then the chunk table;
//  4. write: superblock, extension, device slot, blob table, prefetch table,
//     inodes, xattrs, dirents, chunk indexes, chunk table; blob CI array + header.
#include "nydus/storage/builder.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>

#include "nydus/storage/blob_meta.h"
#include "storage/ondisk.h"

namespace nydus::storage {

using namespace ondisk;

namespace {

constexpr unsigned kBlkBits = 12;  // 4 KiB blocks
constexpr std::uint64_t kBs = 1u << kBlkBits;
// The blob's place in a flat device starts on a 2 MiB boundary, as nydus-image's (rafs-format.md 1.4).
constexpr std::uint64_t kMappedAlignBlocks = 512;
constexpr std::uint32_t kMetaBlkaddr = 1;

struct Xattr {
  std::uint8_t index;
  std::string suffix, value;
};

struct Node {
  std::string name, path, image_path;
  struct stat st {};
  Node* parent = nullptr;
  std::vector<std::unique_ptr<Node>> children;
  Node* link_target = nullptr;  // hardlink to an earlier node
  std::uint32_t links = 1;      // names in the tree (for non-directories)
  std::vector<Xattr> xattrs;
  std::string symlink;
  // Layout.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> chunk_refs;  // (CI index, blkaddr)
  std::vector<std::pair<std::size_t, std::size_t>> dir_blocks;      // (first entry, count) per block
  std::vector<std::pair<std::string, Node*>> dir_entries;           // sorted, with "." and ".."
  std::uint64_t size = 0;
  bool extended = false, inline_tail = false;
  unsigned layout = kLayoutFlatPlain;
  std::uint32_t u = 0, nlink = 1, xattr_size = 0;
  std::uint64_t pos = 0, nid = 0;
};

Error io(const std::string& what) { return os_error(what, errno); }

Result<void> read_xattrs(Node& n) {
  ssize_t len = ::llistxattr(n.path.c_str(), nullptr, 0);
  if (len < 0) {
    if (errno == ENOTSUP) return {};
    return tl::unexpected(io("llistxattr " + n.path));
  }
  std::string names(std::size_t(len), '\0');
  len = ::llistxattr(n.path.c_str(), names.data(), names.size());
  if (len < 0) return tl::unexpected(io("llistxattr " + n.path));
  names.resize(std::size_t(len));
  static const std::pair<std::uint8_t, std::string_view> kPrefixes[] = {
      {kXattrAclAccess, "system.posix_acl_access"}, {kXattrAclDefault, "system.posix_acl_default"},
      {kXattrUser, "user."}, {kXattrTrusted, "trusted."}, {kXattrSecurity, "security."}};
  for (std::size_t p = 0; p < names.size();) {
    std::string name(names.c_str() + p);
    p += name.size() + 1;
    for (const auto& [idx, pre] : kPrefixes) {
      bool exact = idx == kXattrAclAccess || idx == kXattrAclDefault;
      if (exact ? name != pre : !name.starts_with(pre)) continue;
      ssize_t vlen = ::lgetxattr(n.path.c_str(), name.c_str(), nullptr, 0);
      if (vlen < 0) return tl::unexpected(io("lgetxattr " + n.path + " " + name));
      std::string value(std::size_t(vlen), '\0');
      vlen = ::lgetxattr(n.path.c_str(), name.c_str(), value.data(), value.size());
      if (vlen < 0) return tl::unexpected(io("lgetxattr " + n.path + " " + name));
      value.resize(std::size_t(vlen));
      std::string suffix = name.substr(pre.size());
      if (suffix.size() > 255 || value.size() > 65535) {
        return fail(ErrorCode::kUnsupported, "xattr too large: " + n.path + " " + name);
      }
      n.xattrs.push_back({idx, std::move(suffix), std::move(value)});
      break;
    }
  }
  std::sort(n.xattrs.begin(), n.xattrs.end(), [](const Xattr& a, const Xattr& b) {
    return std::tie(a.index, a.suffix) < std::tie(b.index, b.suffix);
  });
  return {};
}

// Builder-chosen places (rafs-format.md 1.2-1.5): the inode area starts at
// block 1 with the root at nid 128, so nid 0 is never an inode; the blob table
// sits at the second block, the prefetch table right after its one entry.
constexpr std::uint64_t kRootNid = 128;
constexpr std::uint64_t kBlobTableOffset = kBs;
constexpr std::uint64_t kPrefetchTableOffset = kBlobTableOffset + kBlobEntrySize;
constexpr std::size_t kMaxPrefetch = 900;  // what fits between the blob table and the inodes
static_assert(kPrefetchTableOffset + kMaxPrefetch * kPrefetchEntrySize <= kMetaBlkaddr * kBs + kRootNid * kInodeSlotSize);

class Builder {
 public:
  explicit Builder(const BuildOptions& o) : opt_(o) {}
  Result<BuildResult> run(const std::string& src);

 private:
  // 1. scan
  Result<std::unique_ptr<Node>> scan(const std::string& path, const std::string& name, Node* parent);
  // 2. chunk
  Result<void> chunk_file(Node& n);
  Result<std::uint32_t> add_chunk(std::span<const std::uint8_t> data, bool zero);
  // 3. layout
  Result<void> size_node(Node& n) const;
  void place_inodes();
  Result<BlobInfo> finish_blob();
  Result<std::vector<std::uint32_t>> prefetch_nids(const Node& root) const;
  // 4. write
  void write_super(std::vector<std::uint8_t>& img, const Node& root, const BlobInfo& bi,
                   const std::vector<std::uint32_t>& prefetch) const;
  void write_inode(std::vector<std::uint8_t>& img, const Node& n) const;
  void write_data(std::vector<std::uint8_t>& img, const Node& n) const;
  void write_chunk_table(std::vector<std::uint8_t>& img) const;

  BuildOptions opt_;
  std::map<std::pair<dev_t, ino_t>, Node*> inodes_by_id_;
  std::map<std::pair<std::uint64_t, Digest>, std::uint32_t> chunk_by_digest_;
  std::map<std::uint64_t, Digest> zero_digest_;
  std::vector<std::uint8_t> blob_;
  std::vector<std::uint8_t> cache_;  // uncompressed cache image (opt_.cache_image)
  std::vector<ChunkInfo> cis_;
  std::vector<Digest> digests_;
  std::uint64_t ucur_ = 0;
  bool any_xattr_ = false;
  // Layout results.
  std::vector<Node*> order_;  // inode owners, breadth-first (hardlink duplicates excluded)
  std::uint64_t chunk_table_offset_ = 0, chunk_table_size_ = 0, total_ = 0;
};

Result<std::unique_ptr<Node>> Builder::scan(const std::string& path, const std::string& name, Node* parent) {
  auto n = std::make_unique<Node>();
  n->name = name;
  n->path = path;
  n->parent = parent;
  n->image_path = parent == nullptr ? "/" : (parent->parent == nullptr ? "/" : parent->image_path + "/") + name;
  if (::lstat(path.c_str(), &n->st) != 0) return tl::unexpected(io("lstat " + path));
  if (name.size() > 255) return fail(ErrorCode::kUnsupported, "name longer than 255 bytes: " + path);
  if (!S_ISDIR(n->st.st_mode)) {
    auto key = std::make_pair(n->st.st_dev, n->st.st_ino);
    if (auto it = inodes_by_id_.find(key); it != inodes_by_id_.end()) {
      n->link_target = it->second;
      ++it->second->links;
      return n;
    }
    inodes_by_id_[key] = n.get();
  }
  if (auto r = read_xattrs(*n); !r) return tl::unexpected(r.error());
  if (!n->xattrs.empty()) any_xattr_ = true;
  if (S_ISLNK(n->st.st_mode)) {
    std::string t(4096, '\0');
    ssize_t len = ::readlink(path.c_str(), t.data(), t.size());
    if (len < 0) return tl::unexpected(io("readlink " + path));
    if (len == 0 || len >= 4096) return fail(ErrorCode::kUnsupported, "symlink target of 0 or >= 4096 bytes: " + path);
    t.resize(std::size_t(len));
    n->symlink = std::move(t);
  } else if (S_ISDIR(n->st.st_mode)) {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return tl::unexpected(io("opendir " + path));
    std::vector<std::string> names;
    while (auto* e = ::readdir(d)) {
      std::string nm = e->d_name;
      if (nm != "." && nm != "..") names.push_back(std::move(nm));
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& nm : names) {
      auto c = scan(path + "/" + nm, nm, n.get());
      if (!c) return tl::unexpected(c.error());
      n->children.push_back(std::move(*c));
    }
  } else if (!S_ISREG(n->st.st_mode) && !S_ISCHR(n->st.st_mode) && !S_ISBLK(n->st.st_mode) &&
             !S_ISFIFO(n->st.st_mode) && !S_ISSOCK(n->st.st_mode)) {
    return fail(ErrorCode::kUnsupported, "unsupported file type: " + path);
  }
  return n;
}

Result<std::uint32_t> Builder::add_chunk(std::span<const std::uint8_t> data, bool zero) {
  Digest d;
  auto it = zero ? zero_digest_.find(data.size()) : zero_digest_.end();
  if (it != zero_digest_.end()) {
    d = it->second;
  } else {
    auto computed = compute_digest(opt_.digester, data);
    if (!computed) return tl::unexpected(computed.error());
    d = *computed;
    if (zero) zero_digest_.emplace(data.size(), d);
  }
  auto key = std::make_pair(std::uint64_t(data.size()), d);
  if (auto it = chunk_by_digest_.find(key); it != chunk_by_digest_.end()) return it->second;
  if (cis_.size() >= (1u << 24)) return fail(ErrorCode::kUnsupported, "more than 2^24 chunks");
  ChunkInfo ci;
  ci.uncompressed_size = std::uint32_t(data.size());
  ci.uncompressed_offset = ucur_;
  ci.compressed_offset = blob_.size();
  std::vector<std::uint8_t> packed;
  if (opt_.compressor != Compressor::kNone) {
    auto c = compress(opt_.compressor, data);
    if (!c) return tl::unexpected(c.error());
    packed = std::move(*c);
  }
  if (!packed.empty() && packed.size() < data.size()) {
    ci.compressed = true;
    ci.compressed_size = std::uint32_t(packed.size());
    blob_.insert(blob_.end(), packed.begin(), packed.end());
  } else {
    ci.compressed_size = ci.uncompressed_size;
    blob_.insert(blob_.end(), data.begin(), data.end());
  }
  if (opt_.cache_image) {
    cache_.resize(ucur_ + align_up(data.size(), kBs));
    std::copy(data.begin(), data.end(), cache_.begin() + std::ptrdiff_t(ucur_));
  }
  ucur_ += align_up(data.size(), kBs);
  std::uint32_t index = std::uint32_t(cis_.size());
  cis_.push_back(ci);
  digests_.push_back(d);
  chunk_by_digest_[key] = index;
  return index;
}

Result<void> Builder::chunk_file(Node& n) {
  n.size = std::uint64_t(n.st.st_size);
  if (n.size == 0) return {};
  int fd = ::open(n.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(io("open " + n.path));
  std::vector<std::uint8_t> buf(opt_.chunk_size);
  Result<void> result;
  for (std::uint64_t off = 0; off < n.size; off += opt_.chunk_size) {
    std::size_t len = std::size_t(std::min<std::uint64_t>(opt_.chunk_size, n.size - off));
    std::span<std::uint8_t> chunk(buf.data(), len);
    off_t data_at = ::lseek(fd, off_t(off), SEEK_DATA);
    bool zero = (data_at < 0 && errno == ENXIO) || (data_at >= 0 && std::uint64_t(data_at) >= off + len);
    if (zero) {
      std::fill(chunk.begin(), chunk.end(), 0);
    } else {
      std::size_t got = 0;
      while (got < len) {
        ssize_t r = ::pread(fd, chunk.data() + got, len - got, off_t(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
          result = tl::unexpected(r < 0 ? io("read " + n.path) : Error(ErrorCode::kIo, "file shrank: " + n.path));
          break;
        }
        got += std::size_t(r);
      }
      if (!result) break;
      zero = std::all_of(chunk.begin(), chunk.end(), [](std::uint8_t b) { return b == 0; });
    }
    auto idx = add_chunk(chunk, zero);
    if (!idx) {
      result = tl::unexpected(idx.error());
      break;
    }
    n.chunk_refs.emplace_back(*idx, std::uint32_t(cis_[*idx].uncompressed_offset / kBs));
  }
  ::close(fd);
  return result;
}

std::uint8_t file_type(mode_t m) {
  switch (m & S_IFMT) {
    case S_IFREG: return kFtReg;
    case S_IFDIR: return kFtDir;
    case S_IFCHR: return kFtChr;
    case S_IFBLK: return kFtBlk;
    case S_IFIFO: return kFtFifo;
    case S_IFSOCK: return kFtSock;
    case S_IFLNK: return kFtSymlink;
  }
  return kFtUnknown;
}

// Record bytes of an inode: the inode, its xattr body and, for a regular
// file, the 8-aligned chunk indexes; a tail-packed block follows it instead.
std::uint64_t inode_core(const Node& n) {
  return (n.extended ? kExtendedInodeSize : kCompactInodeSize) + n.xattr_size;
}
// Bytes of the last (partial) block of a flat inode.
std::uint64_t tail_bytes(const Node& n) { return n.size - (n.size == 0 ? 0 : (n.size - 1) / kBs * kBs); }
std::uint64_t xattr_entry_size(const Xattr& x) {
  return align_up(kXattrEntryHeaderSize + x.suffix.size() + x.value.size(), kXattrAlign);
}

// Directory entries with "." and "..", sorted, cut into blocks.
void layout_dir(Node& n) {
  n.dir_entries.emplace_back(".", &n);
  n.dir_entries.emplace_back("..", n.parent ? n.parent : &n);
  for (auto& c : n.children) n.dir_entries.emplace_back(c->name, c->link_target ? c->link_target : c.get());
  std::sort(n.dir_entries.begin(), n.dir_entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::size_t used = 0, first = 0;
  for (std::size_t i = 0; i < n.dir_entries.size(); ++i) {
    std::size_t need = kDirentSize + n.dir_entries[i].first.size();
    if (used + need > kBs) {
      n.dir_blocks.emplace_back(first, i - first);
      first = i;
      used = 0;
    }
    used += need;
  }
  n.dir_blocks.emplace_back(first, n.dir_entries.size() - first);
  n.size = (n.dir_blocks.size() - 1) * kBs + used;
}

// Sizes, layouts, inline decisions of one inode.
Result<void> Builder::size_node(Node& n) const {
  mode_t m = n.st.st_mode;
  n.nlink = S_ISDIR(m) ? 2 : n.links;
  if (S_ISDIR(m)) {
    for (auto& c : n.children) n.nlink += S_ISDIR(c->st.st_mode) ? 1 : 0;
  }
  if (!n.xattrs.empty()) {
    std::uint64_t s = kXattrBodyHeaderSize;
    for (const auto& x : n.xattrs) s += xattr_entry_size(x);
    if (s > xattr_body_size(0xFFFF)) return fail(ErrorCode::kUnsupported, "too many xattrs: " + n.path);
    n.xattr_size = std::uint32_t(s);
  }
  if (S_ISDIR(m)) {
    layout_dir(n);
  } else if (S_ISLNK(m)) {
    n.size = n.symlink.size();
  } else if (S_ISCHR(m) || S_ISBLK(m)) {
    std::uint32_t ma = major(n.st.st_rdev), mi = minor(n.st.st_rdev);
    n.u = (mi & 0xFF) | (ma << 8) | ((mi & ~0xFFu) << 12);
  }
  n.extended = opt_.force_extended || n.st.st_uid > 0xFFFF || n.st.st_gid > 0xFFFF || n.nlink > 0xFFFF ||
               n.size > 0xFFFF'FFFFull || n.name.ends_with(".pyc");
  if (S_ISREG(m)) {
    n.layout = kLayoutChunkBased;
    n.u = kChunkFormatIndexes | std::uint32_t(__builtin_ctz(opt_.chunk_size) - kBlkBits);
  } else if (S_ISDIR(m) || S_ISLNK(m)) {
    n.inline_tail = inode_core(n) + tail_bytes(n) <= kBs;
    n.layout = n.inline_tail ? kLayoutFlatInline : kLayoutFlatPlain;
  }
  return {};
}

// Inode positions (a record never crosses a block when it carries a tail),
// then the full blocks of directories and symlinks, then the chunk table.
void Builder::place_inodes() {
  const std::uint64_t meta_base = std::uint64_t(kMetaBlkaddr) * kBs;
  std::uint64_t cur = meta_base + kRootNid * kInodeSlotSize;
  for (Node* n : order_) {
    std::uint64_t core = inode_core(*n);
    std::uint64_t need = core, record = core;
    if (n->inline_tail) {
      need = record = core + tail_bytes(*n);
    } else if (n->layout == kLayoutChunkBased) {
      record = align_up(core, kChunkIndexSize) + kChunkIndexSize * n->chunk_refs.size();
    }
    if (cur % kBs + need > kBs) cur = align_up(cur, kBs);
    n->pos = cur;
    n->nid = (cur - meta_base) / kInodeSlotSize;
    cur = align_up(cur + record, kInodeSlotSize);
  }
  cur = align_up(cur, kBs);
  for (Node* n : order_) {
    if (!(S_ISDIR(n->st.st_mode) || S_ISLNK(n->st.st_mode))) continue;
    std::uint64_t nblocks = (n->size + kBs - 1) / kBs;
    std::uint64_t plain = n->inline_tail ? nblocks - 1 : nblocks;
    if (plain == 0) continue;
    n->u = std::uint32_t(cur / kBs);
    cur += plain * kBs;
  }
  chunk_table_offset_ = cur;
  chunk_table_size_ = cis_.size() * kChunkTableEntrySize;
  total_ = align_up(chunk_table_offset_ + chunk_table_size_ + (chunk_table_size_ ? 0 : 1), kBs);
}

// Blob tail: the CI array (compressed when that helps), then its header; the
// blob's id is the sha256 of the whole blob. An empty BlobInfo if no chunks.
Result<BlobInfo> Builder::finish_blob() {
  BlobInfo bi;
  if (cis_.empty()) return bi;
  std::vector<std::uint8_t> ci_bytes;
  for (const auto& c : cis_) encode_chunk_info(c, opt_.chunk_info_v2, ci_bytes);
  std::vector<std::uint8_t> ci_packed = ci_bytes;
  Compressor ci_comp = Compressor::kNone;
  if (opt_.ci_compressor != Compressor::kNone) {
    auto c = compress(opt_.ci_compressor, ci_bytes);
    if (!c) return tl::unexpected(c.error());
    if (c->size() < ci_bytes.size()) {
      ci_packed = std::move(*c);
      ci_comp = opt_.ci_compressor;
    }
  }
  bi.chunk_size = opt_.chunk_size;
  bi.chunk_count = std::uint32_t(cis_.size());
  bi.compressor = opt_.compressor;
  bi.digester = opt_.digester;
  bi.features = kBlobFeatureAligned | (opt_.chunk_info_v2 ? kBlobFeatureChunkInfoV2 : 0);
  bi.uncompressed_size = ucur_;
  bi.ci_compressor = ci_comp;
  bi.ci_offset = blob_.size();
  bi.ci_compressed_size = ci_packed.size();
  bi.ci_uncompressed_size = ci_bytes.size();
  blob_.insert(blob_.end(), ci_packed.begin(), ci_packed.end());
  auto header = make_blob_meta_header(bi);
  blob_.insert(blob_.end(), header.begin(), header.end());
  bi.compressed_size = blob_.size();
  auto id = sha256(blob_);
  if (!id) return tl::unexpected(id.error().with_context("blob id"));
  bi.blob_id = to_hex(*id);
  return bi;
}

// The nids of the prefetch paths, in the order given.
Result<std::vector<std::uint32_t>> Builder::prefetch_nids(const Node& root) const {
  std::map<std::string, std::uint64_t> nid_by_path;
  std::function<void(const Node&)> index = [&](const Node& n) {
    nid_by_path[n.image_path] = n.link_target ? n.link_target->nid : n.nid;
    for (const auto& c : n.children) index(*c);
  };
  index(root);
  std::vector<std::uint32_t> prefetch;
  for (const auto& path : opt_.prefetch_paths) {
    auto it = nid_by_path.find(path);
    if (it == nid_by_path.end()) return fail(ErrorCode::kInvalidArgument, "prefetch path not in the tree: " + path);
    prefetch.push_back(std::uint32_t(it->second));
  }
  if (prefetch.size() > kMaxPrefetch) return fail(ErrorCode::kInvalidArgument, "too many prefetch paths");
  return prefetch;
}

// Superblock, nydus extension, device slot, blob table, prefetch table.
void Builder::write_super(std::vector<std::uint8_t>& img, const Node& root, const BlobInfo& bi,
                          const std::vector<std::uint32_t>& prefetch) const {
  const bool has_blob = !bi.blob_id.empty();
  auto s = zeroed<SuperRecord>();
  s.magic = kErofsMagic;
  s.feature_compat = kCompatRafsV6;
  s.blkszbits = kBlkBits;
  s.root_nid = std::uint16_t(root.nid);
  s.inos = order_.size();
  s.blocks = std::uint32_t(ucur_ / kBs);
  s.meta_blkaddr = kMetaBlkaddr;
  s.feature_incompat = kIncompatChunkedFile | kIncompatDeviceTable;
  s.extra_devices = has_blob ? 1 : 0;
  s.devt_slotoff = kRafsDevtSlotoff;
  store(img.data() + kSuperOffset, s);

  auto e = zeroed<RafsExtRecord>();
  std::uint64_t flags = kFlagExplicitUidGid | (any_xattr_ ? kFlagHasXattr : 0) |
                        (opt_.digester == DigestAlgo::kSha256 ? kFlagHashSha256 : kFlagHashBlake3);
  flags |= opt_.compressor == Compressor::kZstd ? kFlagCompZstd
           : opt_.compressor == Compressor::kLz4Block ? kFlagCompLz4 : kFlagCompNone;
  e.flags = flags;
  e.blob_table_offset = kBlobTableOffset;
  e.blob_table_size = has_blob ? std::uint32_t(kBlobEntrySize) : 0;
  e.chunk_size = opt_.chunk_size;
  e.chunk_table_offset = chunk_table_offset_;
  e.chunk_table_size = chunk_table_size_;
  if (!prefetch.empty()) {
    e.prefetch_table_offset = kPrefetchTableOffset;
    e.prefetch_table_size = std::uint32_t(prefetch.size() * kPrefetchEntrySize);
    for (std::size_t i = 0; i < prefetch.size(); ++i) {
      store(img.data() + kPrefetchTableOffset + i * kPrefetchEntrySize, Le32(prefetch[i]));
    }
  }
  store(img.data() + kExtOffset, e);
  if (!has_blob) return;

  auto d = zeroed<DeviceSlot>();
  std::copy(bi.blob_id.begin(), bi.blob_id.end(), d.tag);
  d.blocks = std::uint32_t(bi.uncompressed_size / kBs);
  d.mapped_blkaddr = std::uint32_t(align_up(total_ / kBs, kMappedAlignBlocks));
  store(img.data() + kRafsDevtSlotoff * kDeviceSlotSize, d);
  auto b = zeroed<BlobRecord>();
  std::copy(bi.blob_id.begin(), bi.blob_id.end(), b.blob_id);
  b.blob_index = 0;
  b.chunk_size = opt_.chunk_size;
  b.chunk_count = bi.chunk_count;
  b.compressor = std::uint32_t(bi.compressor);
  b.digester = std::uint32_t(bi.digester);
  b.features = bi.features;
  b.compressed_size = bi.compressed_size;
  b.uncompressed_size = bi.uncompressed_size;
  b.ci_compressor = std::uint32_t(bi.ci_compressor);
  b.ci_offset = bi.ci_offset;
  b.ci_compressed_size = bi.ci_compressed_size;
  b.ci_uncompressed_size = bi.ci_uncompressed_size;
  store(img.data() + kBlobTableOffset, b);
}

// The inode record, its inline xattrs and its chunk indexes.
void Builder::write_inode(std::vector<std::uint8_t>& img, const Node& n) const {
  const std::uint16_t format = std::uint16_t((n.extended ? 1 : 0) | n.layout << 1);
  if (n.extended) {
    auto x = zeroed<ExtendedInode>();
    x.format = format;
    x.xattr_icount = xattr_icount(n.xattr_size);
    x.mode = std::uint16_t(n.st.st_mode);
    x.size = n.size;
    x.u = n.u;
    x.ino = std::uint32_t(n.st.st_ino);
    x.uid = n.st.st_uid;
    x.gid = n.st.st_gid;
    x.mtime = std::uint64_t(n.st.st_mtim.tv_sec);
    x.mtime_nsec = std::uint32_t(n.st.st_mtim.tv_nsec);
    x.nlink = n.nlink;
    store(img.data() + n.pos, x);
  } else {
    auto c = zeroed<CompactInode>();
    c.format = format;
    c.xattr_icount = xattr_icount(n.xattr_size);
    c.mode = std::uint16_t(n.st.st_mode);
    c.nlink = std::uint16_t(n.nlink);
    c.size = std::uint32_t(n.size);
    c.u = n.u;
    c.ino = std::uint32_t(n.st.st_ino);
    c.uid = std::uint16_t(n.st.st_uid);
    c.gid = std::uint16_t(n.st.st_gid);
    store(img.data() + n.pos, c);
  }
  std::uint64_t q = n.pos + (n.extended ? kExtendedInodeSize : kCompactInodeSize);
  if (n.xattr_size) {
    q += kXattrBodyHeaderSize;  // zero: no name filter, no shared xattrs
    for (const auto& x : n.xattrs) {
      XattrEntryHeader h{std::uint8_t(x.suffix.size()), x.index, Le16(std::uint16_t(x.value.size()))};
      store(img.data() + q, h);
      auto name = img.begin() + std::ptrdiff_t(q + kXattrEntryHeaderSize);
      std::copy(x.value.begin(), x.value.end(), std::copy(x.suffix.begin(), x.suffix.end(), name));
      q += xattr_entry_size(x);
    }
  }
  const std::uint64_t base = align_up(q, kChunkIndexSize);
  for (std::size_t i = 0; i < n.chunk_refs.size(); ++i) {
    auto [ci, blkaddr] = n.chunk_refs[i];
    const std::uint16_t device = 1;  // blob 0
    ChunkIndex e{Le16(std::uint16_t(ci & 0xFFFF)), Le16(std::uint16_t(device | ((ci >> 16) & 0xFF) << 8)), Le32(blkaddr)};
    store(img.data() + base + i * kChunkIndexSize, e);
  }
}

// Symlink targets and directory blocks: tail-packed after the inode record or
// in the node's full blocks.
void Builder::write_data(std::vector<std::uint8_t>& img, const Node& n) const {
  const std::uint64_t tail_at = n.pos + inode_core(n);
  if (S_ISLNK(n.st.st_mode)) {
    std::uint64_t at = n.inline_tail ? tail_at : std::uint64_t(n.u) * kBs;
    std::copy(n.symlink.begin(), n.symlink.end(), img.begin() + std::ptrdiff_t(at));
    return;
  }
  for (std::size_t k = 0; k < n.dir_blocks.size(); ++k) {
    bool tail = n.inline_tail && k + 1 == n.dir_blocks.size();
    std::uint64_t at = tail ? tail_at : (std::uint64_t(n.u) + k) * kBs;
    auto [first, count] = n.dir_blocks[k];
    std::uint64_t nameoff = count * kDirentSize;
    for (std::size_t i = 0; i < count; ++i) {
      const auto& [name, target] = n.dir_entries[first + i];
      Dirent de{Le64(target->nid), Le16(std::uint16_t(nameoff)), file_type(target->st.st_mode), 0};
      store(img.data() + at + i * kDirentSize, de);
      std::copy(name.begin(), name.end(), img.begin() + std::ptrdiff_t(at + nameoff));
      nameoff += name.size();
    }
  }
}

void Builder::write_chunk_table(std::vector<std::uint8_t>& img) const {
  for (std::size_t i = 0; i < cis_.size(); ++i) {
    auto c = zeroed<ChunkTableRecord>();
    std::copy(digests_[i].begin(), digests_[i].end(), c.digest);
    c.blob_index = 0;
    c.flags = cis_[i].compressed ? 1 : 0;
    c.compressed_size = cis_[i].compressed_size;
    c.uncompressed_size = cis_[i].uncompressed_size;
    c.compressed_offset = cis_[i].compressed_offset;
    c.uncompressed_offset = cis_[i].uncompressed_offset;
    c.index = std::uint32_t(i);
    store(img.data() + chunk_table_offset_ + i * kChunkTableEntrySize, c);
  }
}

// The passes of the opening comment, in order.
Result<BuildResult> Builder::run(const std::string& src) {
  const std::uint32_t cs = opt_.chunk_size;
  if (!valid_chunk_size(cs)) {
    return fail(ErrorCode::kInvalidArgument, "chunk size must be a power of two in 4 KiB..16 MiB");
  }
  if (opt_.compressor == Compressor::kGzip || opt_.ci_compressor == Compressor::kGzip) {
    return fail(ErrorCode::kUnsupported, "gzip compression is not supported");
  }
  // 1. scan
  auto root_r = scan(src, "/", nullptr);
  if (!root_r) return tl::unexpected(root_r.error());
  Node* root = root_r->get();
  if (!S_ISDIR(root->st.st_mode)) return fail(ErrorCode::kInvalidArgument, src + " is not a directory");
  std::deque<Node*> q{root};
  while (!q.empty()) {
    Node* n = q.front();
    q.pop_front();
    order_.push_back(n);
    for (auto& c : n->children) {
      if (!c->link_target) q.push_back(c.get());
    }
  }
  // 2. chunk
  for (Node* n : order_) {
    if (!S_ISREG(n->st.st_mode)) continue;
    if (auto r = chunk_file(*n); !r) return tl::unexpected(r.error());
  }
  // 3. layout
  for (Node* n : order_) {
    if (auto r = size_node(*n); !r) return tl::unexpected(r.error());
  }
  place_inodes();
  if (root->nid > 0xFFFF) return fail(ErrorCode::kInternal, "root nid does not fit 16 bits");
  auto bi = finish_blob();
  if (!bi) return tl::unexpected(bi.error());
  auto prefetch = prefetch_nids(*root);
  if (!prefetch) return tl::unexpected(prefetch.error());
  // 4. write
  std::vector<std::uint8_t> img(total_, 0);
  write_super(img, *root, *bi, *prefetch);
  for (Node* n : order_) {
    write_inode(img, *n);
    write_data(img, *n);
  }
  write_chunk_table(img);

  BuildResult out;
  out.bootstrap = std::move(img);
  out.blob = std::move(blob_);
  out.cache_image = std::move(cache_);
  out.blob_id = bi->blob_id;
  out.inodes = order_.size();
  out.chunks = cis_.size();
  return out;
}

Result<void> write_file(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return tl::unexpected(io("create " + path));
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f.flush()) return tl::unexpected(io("write " + path));
  return {};
}

}  // namespace

Result<BuildResult> build_image(const std::string& source_dir, const BuildOptions& options) {
  return Builder(options).run(source_dir);
}

Result<BuildResult> build_image_files(const std::string& source_dir, const BuildOptions& options,
                                      const std::string& bootstrap_path, const std::string& blob_dir) {
  auto r = build_image(source_dir, options);
  if (!r) return r;
  if (auto w = write_file(bootstrap_path, r->bootstrap); !w) return tl::unexpected(w.error());
  if (!r->blob_id.empty()) {
    if (auto w = write_file(blob_dir + "/" + r->blob_id, r->blob); !w) return tl::unexpected(w.error());
  }
  return r;
}

}  // namespace nydus::storage
