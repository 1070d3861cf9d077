// Inodes, inline/shared xattrs, directories and symlinks.
//
// An inode lives at meta_blkaddr * bs + nid * 32 (rafs-format.md 1.7): a
// 32-byte compact or 64-byte extended record (bit 0 of i_format), data
// layout in bits 1-3, then `12 + (icount - 1) * 4` bytes of inline xattrs
// (1.8: 12-byte header with the shared-xattr count, shared ids, then entries
// `u8 name_len, u8 prefix, u16 value_size, name, value`, 4-byte aligned).
// Directory blocks (1.9) are arrays of 12-byte dirents (nid, nameoff, type)
// followed by names, sorted by name across the directory: lookup is a binary
// search over blocks then within one. Readdir cookies are
// `(block << 16) | entry index`, so resuming never rescans earlier blocks.
//
// Checks: the nid maps inside the file, the record and its xattr body fit,
// no unknown i_format bits, layout 0..4, a known file type; every block,
// dirent, name offset, name length and xattr entry lies inside its block or
// body; symlink targets are 1..block-size bytes.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <dirent.h>

#include "image_impl.h"
#include "ondisk.h"

namespace nydus::storage {

using namespace ondisk;

namespace {

Error corrupt(std::uint64_t nid, const std::string& what) {
  return Error(ErrorCode::kCorrupt, "bad image: inode " + std::to_string(nid) + ": " + what);
}

// One directory block, validated lazily entry by entry.
struct DirBlock {
  std::span<const std::uint8_t> b;
  std::uint32_t count = 0;

  static Result<DirBlock> parse(std::span<const std::uint8_t> b, std::uint64_t nid) {
    if (b.size() < kDirentSize) return tl::unexpected(corrupt(nid, "directory block shorter than a dirent"));
    std::uint32_t first = load<Dirent>(b.data()).nameoff.value();
    if (first < kDirentSize || first % kDirentSize != 0 || first > b.size()) {
      return tl::unexpected(corrupt(nid, "bad first name offset in directory block"));
    }
    return DirBlock{b, first / kDirentSize};
  }

  Result<DirEntry> entry(std::uint32_t i, std::uint64_t nid) const {
    const std::uint8_t* p = b.data() + std::size_t(i) * kDirentSize;
    const auto d = load<Dirent>(p);
    std::uint32_t off = d.nameoff.value();
    std::uint32_t end = i + 1 < count ? load<Dirent>(p + kDirentSize).nameoff.value() : std::uint32_t(b.size());
    if (off < count * kDirentSize || off > end || end > b.size()) {
      return tl::unexpected(corrupt(nid, "dirent name out of its block"));
    }
    std::string_view name(reinterpret_cast<const char*>(b.data() + off), end - off);
    if (i + 1 == count) name = name.substr(0, name.find('\0'));
    if (name.empty() || name.size() > 255) return tl::unexpected(corrupt(nid, "dirent name length"));
    static constexpr std::uint8_t kDt[8] = {DT_UNKNOWN, DT_REG, DT_DIR, DT_CHR, DT_BLK, DT_FIFO, DT_SOCK, DT_LNK};
    std::uint8_t ft = d.file_type;
    DirEntry e;
    e.ino = d.nid.value();
    e.type = ft < 8 ? kDt[ft] : std::uint8_t(DT_UNKNOWN);
    e.name = name;
    e.next_offset = 0;
    return e;
  }
};

// Calls fn(prefix, suffix, value) for each xattr (shared first).
template <class Fn>
Result<void> for_each_xattr(const Image::Impl& im, const InodeRec& r, Fn&& fn) {
  if (r.xattr_size == 0) return {};
  const std::uint8_t* body = im.data + r.pos + r.isize;
  std::uint32_t shared = load<XattrBodyHeader>(body).shared_count;
  std::uint64_t p = kXattrBodyHeaderSize + std::uint64_t(shared) * kXattrIdSize;
  if (p > r.xattr_size) return tl::unexpected(corrupt(r.nid, "shared xattr ids beyond the xattr body"));
  static constexpr const char* kPrefix[7] = {nullptr, "user.", "system.posix_acl_access",
                                             "system.posix_acl_default", "trusted.", nullptr, "security."};
  auto one = [&](const std::uint8_t* e, std::uint64_t avail) -> Result<std::uint64_t> {
    if (avail < kXattrEntryHeaderSize) return tl::unexpected(corrupt(r.nid, "truncated xattr entry"));
    const auto h = load<XattrEntryHeader>(e);
    std::uint32_t nlen = h.name_len, idx = h.prefix, vlen = h.value_size.value();
    const std::uint64_t len = kXattrEntryHeaderSize + std::uint64_t(nlen) + vlen;
    if (len > avail) return tl::unexpected(corrupt(r.nid, "xattr entry beyond its area"));
    if (idx < 7 && kPrefix[idx] != nullptr) {
      const char* name = reinterpret_cast<const char*>(e + kXattrEntryHeaderSize);
      fn(std::string_view(kPrefix[idx]), std::string_view(name, nlen), std::string_view(name + nlen, vlen));
    }
    return std::min(align_up(len, kXattrAlign), avail);
  };
  for (std::uint32_t i = 0; i < shared; ++i) {
    std::uint64_t id = load<Le32>(body + kXattrBodyHeaderSize + i * kXattrIdSize).value();
    std::uint64_t at = std::uint64_t(im.sb.xattr_blkaddr) * im.sb.block_size + id * kXattrIdSize;
    if (!in_bounds(at, kXattrEntryHeaderSize, im.size)) return tl::unexpected(corrupt(r.nid, "shared xattr beyond the file"));
    auto n = one(im.data + at, im.size - at);
    if (!n) return tl::unexpected(n.error());
  }
  while (p < r.xattr_size) {
    auto n = one(body + p, r.xattr_size - p);
    if (!n) return tl::unexpected(n.error());
    p += *n;
  }
  return {};
}

}  // namespace

Result<InodeRec> Image::Impl::load_inode(std::uint64_t nid) const {
  if (nid > size / kInodeSlotSize) return tl::unexpected(corrupt(nid, "nid beyond the end of the image"));
  InodeRec r;
  r.nid = nid;
  r.pos = std::uint64_t(sb.meta_blkaddr) * sb.block_size + nid * kInodeSlotSize;
  if (!in_bounds(r.pos, kCompactInodeSize, size)) return tl::unexpected(corrupt(nid, "beyond the end of the image"));
  const std::uint8_t* p = data + r.pos;
  // i_format, i_xattr_icount and i_mode sit alike in both inode forms.
  const auto c = load<CompactInode>(p);
  std::uint16_t format = c.format.value();
  if (format & ~0xFu) return tl::unexpected(corrupt(nid, "unknown i_format bits"));
  r.layout = (format >> 1) & 7;
  if (r.layout > kLayoutChunkBased) return tl::unexpected(corrupt(nid, "unknown data layout"));
  bool extended = format & 1;
  r.isize = extended ? kExtendedInodeSize : kCompactInodeSize;
  if (!in_bounds(r.pos, r.isize, size)) return tl::unexpected(corrupt(nid, "extended inode beyond the end"));
  r.xattr_icount = c.xattr_icount.value();
  r.xattr_size = xattr_body_size(r.xattr_icount);
  if (!in_bounds(r.pos + r.isize, r.xattr_size, size)) return tl::unexpected(corrupt(nid, "xattrs beyond the end"));
  r.mode = c.mode.value();
  if (extended) {
    const auto x = load<ExtendedInode>(p);
    r.u = x.u.value();
    r.size = x.size.value();
    r.uid = x.uid.value();
    r.gid = x.gid.value();
    r.mtime = x.mtime.value();
    r.mtime_nsec = x.mtime_nsec.value();
    r.nlink = x.nlink.value();
  } else {
    r.u = c.u.value();
    r.nlink = c.nlink.value();
    r.size = c.size.value();
    r.uid = c.uid.value();
    r.gid = c.gid.value();
    if (!sb.rafs) {  // EROFS: compact inodes carry a delta to the build time
      r.mtime = sb.build_time + c.mtime_delta.value();
      r.mtime_nsec = sb.build_time_nsec;
    }
  }
  // The kernel's loff_t is signed: a larger i_size is no file Linux can have.
  if (r.size > std::uint64_t(INT64_MAX)) return tl::unexpected(corrupt(nid, "i_size beyond the largest file size"));
  switch (r.mode & S_IFMT) {
    case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK: break;
    default: return tl::unexpected(corrupt(nid, "unknown file type in i_mode"));
  }
  return r;
}

InodeAttr Image::Impl::attr_of(const InodeRec& r) const {
  InodeAttr a;
  a.ino = r.nid;
  a.mode = r.mode;
  a.uid = r.uid;
  a.gid = r.gid;
  a.size = r.size;
  a.nlink = r.nlink;
  a.mtime = r.mtime;
  a.mtime_nsec = r.mtime_nsec;
  if (S_ISCHR(r.mode) || S_ISBLK(r.mode)) {
    // Linux "new" dev encoding, as the kernel's new_decode_dev().
    std::uint32_t major = (r.u & 0xFFF00) >> 8, minor = (r.u & 0xFF) | ((r.u >> 12) & 0xFFF00);
    a.rdev = makedev(major, minor);
  }
  a.blocks = (r.size + 511) / 512;
  return a;
}

Result<std::span<const std::uint8_t>> Image::Impl::flat_block(const InodeRec& r, std::uint64_t k) const {
  if (r.layout != kLayoutFlatPlain && r.layout != kLayoutFlatInline) {
    return tl::unexpected(corrupt(r.nid, "data layout is not flat"));
  }
  const std::uint64_t bs = sb.block_size;
  std::uint64_t nblocks = (r.size + bs - 1) / bs;
  if (k >= nblocks) return tl::unexpected(corrupt(r.nid, "block beyond the inode size"));
  std::uint64_t len = std::min<std::uint64_t>(bs, r.size - k * bs);
  std::uint64_t off;
  if (r.layout == kLayoutFlatInline && k + 1 == nblocks) {
    off = r.pos + r.isize + r.xattr_size;
  } else {
    off = (std::uint64_t(r.u) + k) * bs;
  }
  if (!in_bounds(off, len, size)) return tl::unexpected(corrupt(r.nid, "data block beyond the end of the image"));
  return std::span<const std::uint8_t>(data + off, len);
}

Result<std::optional<std::uint64_t>> Image::Impl::find_entry(const InodeRec& dir, std::string_view name) const {
  const std::uint64_t bs = sb.block_size;
  std::uint64_t nblocks = (dir.size + bs - 1) / bs;
  // Last block whose first name <= name.
  std::uint64_t lo = 0, hi = nblocks;  // candidates in [lo, hi)
  while (hi - lo > 1) {
    std::uint64_t mid = lo + (hi - lo) / 2;
    auto blk = flat_block(dir, mid);
    if (!blk) return tl::unexpected(blk.error());
    auto db = DirBlock::parse(*blk, dir.nid);
    if (!db) return tl::unexpected(db.error());
    auto first = db->entry(0, dir.nid);
    if (!first) return tl::unexpected(first.error());
    if (first->name <= name) lo = mid; else hi = mid;
  }
  if (nblocks == 0) return std::optional<std::uint64_t>();
  auto blk = flat_block(dir, lo);
  if (!blk) return tl::unexpected(blk.error());
  auto db = DirBlock::parse(*blk, dir.nid);
  if (!db) return tl::unexpected(db.error());
  std::uint32_t a = 0, b = db->count;
  while (a < b) {
    std::uint32_t m = a + (b - a) / 2;
    auto e = db->entry(m, dir.nid);
    if (!e) return tl::unexpected(e.error());
    int c = e->name.compare(name);
    if (c == 0) return std::optional<std::uint64_t>(e->ino);
    if (c < 0) a = m + 1; else b = m;
  }
  return std::optional<std::uint64_t>();
}

Result<InodeAttr> Image::getattr(std::uint64_t ino) const {
  auto r = impl_->load_inode(ino);
  if (!r) return tl::unexpected(r.error());
  return impl_->attr_of(*r);
}

Result<InodeAttr> Image::lookup(std::uint64_t parent, std::string_view name) const {
  auto dir = impl_->load_inode(parent);
  if (!dir) return tl::unexpected(dir.error());
  if (!S_ISDIR(dir->mode)) return fail(ErrorCode::kInvalidArgument, "inode " + std::to_string(parent) + " is not a directory");
  auto nid = impl_->find_entry(*dir, name);
  if (!nid) return tl::unexpected(nid.error());
  if (!*nid) return fail(ErrorCode::kNotFound, "no entry `" + std::string(name) + "` in directory " + std::to_string(parent));
  return getattr(**nid);
}

Result<void> Image::readdir(std::uint64_t ino, std::uint64_t offset,
                            const std::function<bool(const DirEntry&)>& emit) const {
  auto dir = impl_->load_inode(ino);
  if (!dir) return tl::unexpected(dir.error());
  if (!S_ISDIR(dir->mode)) return fail(ErrorCode::kInvalidArgument, "inode " + std::to_string(ino) + " is not a directory");
  const std::uint64_t bs = impl_->sb.block_size;
  std::uint64_t nblocks = (dir->size + bs - 1) / bs;
  for (std::uint64_t k = offset >> 16; k < nblocks; ++k) {
    auto blk = impl_->flat_block(*dir, k);
    if (!blk) return tl::unexpected(blk.error());
    auto db = DirBlock::parse(*blk, ino);
    if (!db) return tl::unexpected(db.error());
    std::uint32_t start = k == (offset >> 16) ? std::uint32_t(offset & 0xFFFF) : 0;
    for (std::uint32_t i = start; i < db->count; ++i) {
      auto e = db->entry(i, ino);
      if (!e) return tl::unexpected(e.error());
      e->next_offset = i + 1 < db->count ? (k << 16) | (i + 1) : (k + 1) << 16;
      if (!emit(*e)) return {};
    }
  }
  return {};
}

Result<std::string> Image::readlink(std::uint64_t ino) const {
  auto r = impl_->load_inode(ino);
  if (!r) return tl::unexpected(r.error());
  if (!S_ISLNK(r->mode)) return fail(ErrorCode::kInvalidArgument, "inode " + std::to_string(ino) + " is not a symlink");
  if (r->size == 0 || r->size > impl_->sb.block_size) return tl::unexpected(corrupt(ino, "symlink target length"));
  auto blk = impl_->flat_block(*r, 0);
  if (!blk) return tl::unexpected(blk.error());
  return std::string(reinterpret_cast<const char*>(blk->data()), blk->size());
}

Result<std::vector<std::string>> Image::listxattr(std::uint64_t ino) const {
  auto r = impl_->load_inode(ino);
  if (!r) return tl::unexpected(r.error());
  std::vector<std::string> names;
  auto ok = for_each_xattr(*impl_, *r, [&](std::string_view pre, std::string_view suf, std::string_view) {
    names.push_back(std::string(pre).append(suf));
  });
  if (!ok) return tl::unexpected(ok.error());
  return names;
}

Result<std::string> Image::getxattr(std::uint64_t ino, std::string_view name) const {
  auto r = impl_->load_inode(ino);
  if (!r) return tl::unexpected(r.error());
  std::optional<std::string> found;
  auto ok = for_each_xattr(*impl_, *r, [&](std::string_view pre, std::string_view suf, std::string_view val) {
    if (!found && name.size() == pre.size() + suf.size() && name.starts_with(pre) && name.ends_with(suf)) {
      found.emplace(val);
    }
  });
  if (!ok) return tl::unexpected(ok.error());
  if (!found) return fail(ErrorCode::kNotFound, "no xattr `" + std::string(name) + "`");
  return *found;
}

}  // namespace nydus::storage
