// RafsFs: a storage::Image behind the Filesystem interface (see header).
#include "nydus/fs/rafs_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace nydus::fs {

namespace {

// Local 0 is reserved by the FUSE layer, so inode nid maps to nid + 1.
constexpr Ino to_local(std::uint64_t nid) { return nid + 1; }
constexpr std::uint64_t to_nid(Ino local) { return local - 1; }

struct timespec now_realtime() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

}  // namespace

RafsFs::RafsFs(std::unique_ptr<storage::Image> image, RafsOptions options)
    : image_(std::move(image)), options_(std::move(options)), report_limit_({}, options_.report_clock) {
  explicit_owner_ = image_->super_block().explicit_uid_gid();
  nydus_rules_ = image_->super_block().rafs;
  xattrs_ = options_.enable_xattr || image_->super_block().has_xattr();
  if (options_.start_time.tv_sec == 0 && options_.start_time.tv_nsec == 0) options_.start_time = now_realtime();
}

RafsFs::~RafsFs() = default;

Result<std::shared_ptr<RafsFs>> RafsFs::open(RafsOptions options) {
  auto image = storage::Image::open(options.bootstrap, options.image);
  if (!image) return tl::unexpected(image.error());
  return from_image(std::move(*image), std::move(options));
}

std::shared_ptr<RafsFs> RafsFs::from_image(std::unique_ptr<storage::Image> image, RafsOptions options) {
  return std::shared_ptr<RafsFs>(new RafsFs(std::move(image), std::move(options)));
}

Ino RafsFs::root() const { return to_local(image_->root_ino()); }

struct stat RafsFs::to_stat(const storage::InodeAttr& a) const {
  struct stat st {};
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  if (nydus_rules_ && a.ino == image_->root_ino()) st.st_mode = (a.mode & S_IFMT) | 0755;
  st.st_nlink = a.nlink;
  st.st_uid = explicit_owner_ ? a.uid : options_.owner_uid;
  st.st_gid = explicit_owner_ ? a.gid : options_.owner_gid;
  st.st_rdev = a.rdev;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blksize = static_cast<blksize_t>(image_->super_block().block_size);
  st.st_blocks = static_cast<blkcnt_t>(a.blocks);
  struct timespec t {};
  if (nydus_rules_ && a.mtime == 0 && a.mtime_nsec == 0) {
    t = options_.start_time;
  } else {
    t.tv_sec = static_cast<time_t>(a.mtime);
    t.tv_nsec = static_cast<long>(a.mtime_nsec);
  }
  st.st_atim = st.st_mtim = st.st_ctim = t;
  return st;
}

int RafsFs::fail(const Error& e, std::string_view what, Ino ino) {
  switch (e.code()) {
    case ErrorCode::kNotFound:
      if (what == "lookup" || what == "getxattr") return what == "lookup" ? ENOENT : ENODATA;
      break;  // a missing blob: EIO below
    case ErrorCode::kInvalidArgument:
      return what == "lookup" || what == "readdir" ? ENOTDIR : EINVAL;
    default:
      break;
  }
  auto verdict = report_limit_.admit(what);
  if (!verdict.pass) return EIO;
  std::string text = fmt::format("{} inode {}: {}{}", what, to_nid(ino), e.message(), suppressed_suffix(verdict.suppressed));
  spdlog::warn("{}: {}", options_.bootstrap, text);
  if (options_.on_error) options_.on_error(std::move(text));
  return EIO;
}

FsResult<Entry> RafsFs::lookup(Ino parent, std::string_view name) {
  auto a = image_->lookup(to_nid(parent), name);
  if (!a) return fs_error(fail(a.error(), "lookup", parent));
  return Entry{to_local(a->ino), to_stat(*a)};
}

bool RafsFs::forget(Ino, std::uint64_t) { return false; }  // image inodes live as long as the image

FsResult<struct stat> RafsFs::getattr(Ino ino) {
  auto a = image_->getattr(to_nid(ino));
  if (!a) return fs_error(fail(a.error(), "getattr", ino));
  return to_stat(*a);
}

FsResult<std::string> RafsFs::readlink(Ino ino) {
  auto t = image_->readlink(to_nid(ino));
  if (!t) return fs_error(fail(t.error(), "readlink", ino));
  return std::move(*t);
}

FsResult<std::uint64_t> RafsFs::open(Ino ino, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) return fs_error(EROFS);
  auto a = image_->getattr(to_nid(ino));
  if (!a) return fs_error(fail(a.error(), "open", ino));
  if (S_ISDIR(a->mode)) return fs_error(EISDIR);
  return std::uint64_t{0};
}

FsResult<std::size_t> RafsFs::read(Ino ino, std::uint64_t, char* buf, std::size_t size, off_t off) {
  if (off < 0) return fs_error(EINVAL);
  auto n = image_->read(to_nid(ino), static_cast<std::uint64_t>(off),
                        std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(buf), size));
  if (!n) {
    if (n.error().code() == ErrorCode::kInvalidArgument) return fs_error(EISDIR);
    return fs_error(fail(n.error(), fmt::format("read at {} size {} of", off, size), ino));
  }
  return *n;
}

void RafsFs::release(Ino, std::uint64_t) {}

FsResult<std::uint64_t> RafsFs::opendir(Ino ino) {
  auto a = image_->getattr(to_nid(ino));
  if (!a) return fs_error(fail(a.error(), "opendir", ino));
  if (!S_ISDIR(a->mode)) return fs_error(ENOTDIR);
  return std::uint64_t{0};
}

FsResult<void> RafsFs::readdir(Ino ino, std::uint64_t, std::uint64_t off, const DirSink& sink) {
  auto r = image_->readdir(to_nid(ino), off, [&](const storage::DirEntry& e) {
    DirEntry de;
    de.name = e.name;
    de.next_off = e.next_offset;
    de.d_ino = e.ino;
    de.d_type = e.type;
    return sink(de);
  });
  if (!r) return fs_error(fail(r.error(), "readdir", ino));
  return {};
}

void RafsFs::releasedir(Ino, std::uint64_t) {}

FsResult<struct statvfs> RafsFs::statfs(Ino) {
  const storage::SuperBlock& sb = image_->super_block();
  struct statvfs sv {};
  sv.f_bsize = sb.block_size;
  sv.f_frsize = sb.block_size;
  sv.f_blocks = sb.blocks;
  sv.f_files = sb.inodes;
  sv.f_namemax = 255;
  sv.f_flag = ST_RDONLY;
  return sv;
}

FsResult<std::string> RafsFs::getxattr(Ino ino, const char* name) {
  if (!xattrs_) {
    if (auto a = image_->getattr(to_nid(ino)); !a) return fs_error(fail(a.error(), "getxattr", ino));
    return fs_error(ENODATA);
  }
  auto v = image_->getxattr(to_nid(ino), name);
  if (!v) return fs_error(fail(v.error(), "getxattr", ino));
  return std::move(*v);
}

FsResult<std::string> RafsFs::listxattr(Ino ino) {
  if (!xattrs_) {
    if (auto a = image_->getattr(to_nid(ino)); !a) return fs_error(fail(a.error(), "listxattr", ino));
    return std::string();
  }
  auto names = image_->listxattr(to_nid(ino));
  if (!names) return fs_error(fail(names.error(), "listxattr", ino));
  std::string out;
  for (const std::string& n : *names) {
    out += n;
    out.push_back('\0');
  }
  return out;
}

FsResult<void> RafsFs::access(Ino ino, int mask) {
  auto a = image_->getattr(to_nid(ino));
  if (!a) return fs_error(fail(a.error(), "access", ino));
  if (mask & W_OK) return fs_error(EROFS);
  return {};
}

}  // namespace nydus::fs
