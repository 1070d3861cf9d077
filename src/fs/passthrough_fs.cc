// PassthroughFs: O_PATH-descriptor inodes over a host directory (see header).
#include "nydus/fs/passthrough_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace nydus::fs {

struct PassthroughFs::Inode {
  Inode(int f, dev_t d, ino_t i, mode_t m) : fd(f), dev(d), ino(i), mode(m) {}
  ~Inode() { ::close(fd); }
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;
  const int fd;  // O_PATH
  const dev_t dev;
  const ino_t ino;
  const mode_t mode;     // file type bits
  std::uint64_t nlookup = 0;  // guarded by PassthroughFs::mu_
};

struct PassthroughFs::DirHandle {
  std::mutex mu;
  DIR* dp = nullptr;             // guarded by mu
  std::uint64_t offset = 0;      // guarded by mu
  struct dirent* entry = nullptr;  // guarded by mu: read but not yet consumed
  ~DirHandle() {
    if (dp) ::closedir(dp);
  }
};

namespace {

std::string proc_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

}  // namespace

PassthroughFs::PassthroughFs(PassthroughOptions options) : options_(std::move(options)) {}
PassthroughFs::~PassthroughFs() = default;

Result<std::shared_ptr<PassthroughFs>> PassthroughFs::create(PassthroughOptions options) {
  int fd = ::open(options.source.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(os_error("open passthrough source " + options.source, errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return tl::unexpected(os_error("stat passthrough source " + options.source, err));
  }
  if (!S_ISDIR(st.st_mode)) {
    ::close(fd);
    return fail(ErrorCode::kInvalidArgument, "passthrough source " + options.source + " is not a directory");
  }
  std::shared_ptr<PassthroughFs> fs(new PassthroughFs(std::move(options)));
  auto root = std::make_shared<Inode>(fd, st.st_dev, st.st_ino, st.st_mode & S_IFMT);
  root->nlookup = 1;  // pinned: forget never frees the root
  fs->inodes_.emplace(kRootIno, root);
  fs->by_id_.emplace(std::make_pair(st.st_dev, st.st_ino), kRootIno);
  return fs;
}

std::shared_ptr<PassthroughFs::Inode> PassthroughFs::find(Ino ino) const {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? nullptr : it->second;
}

std::size_t PassthroughFs::inode_count() const {
  std::lock_guard lock(mu_);
  return inodes_.size();
}

std::uint64_t PassthroughFs::lookup_count(Ino ino) const {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? 0 : it->second->nlookup;
}

FsResult<Entry> PassthroughFs::lookup(Ino parent, std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos) return fs_error(ENOENT);
  auto dir = find(parent);
  if (!dir) return fs_error(ESTALE);
  std::string n(name);
  int fd = ::openat(dir->fd, n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return fs_error(errno);
  Entry e;
  if (::fstatat(fd, "", &e.attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
    int err = errno;
    ::close(fd);
    return fs_error(err);
  }
  std::lock_guard lock(mu_);
  auto key = std::make_pair(e.attr.st_dev, e.attr.st_ino);
  if (auto it = by_id_.find(key); it != by_id_.end()) {
    ::close(fd);  // hard link or repeated lookup: one node
    e.ino = it->second;
    inodes_.at(e.ino)->nlookup++;
    return e;
  }
  e.ino = next_ino_++;
  auto node = std::make_shared<Inode>(fd, e.attr.st_dev, e.attr.st_ino, e.attr.st_mode & S_IFMT);
  node->nlookup = 1;
  inodes_.emplace(e.ino, std::move(node));
  by_id_.emplace(key, e.ino);
  return e;
}

bool PassthroughFs::forget(Ino ino, std::uint64_t nlookup) {
  if (ino == kRootIno) return false;
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return false;
  auto& node = *it->second;
  node.nlookup = nlookup >= node.nlookup ? 0 : node.nlookup - nlookup;
  if (node.nlookup == 0) {
    by_id_.erase(std::make_pair(node.dev, node.ino));
    inodes_.erase(it);  // the descriptor closes when the last in-flight user lets go
    return true;
  }
  return false;
}

FsResult<struct stat> PassthroughFs::getattr(Ino ino) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  struct stat st {};
  if (::fstatat(node->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return fs_error(errno);
  return st;
}

FsResult<std::string> PassthroughFs::readlink(Ino ino) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  if (!S_ISLNK(node->mode)) return fs_error(EINVAL);
  std::string buf(PATH_MAX, '\0');
  ssize_t n = ::readlinkat(node->fd, "", buf.data(), buf.size());
  if (n < 0) return fs_error(errno);
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

FsResult<std::uint64_t> PassthroughFs::open(Ino ino, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_APPEND | O_CREAT)) != 0) return fs_error(EROFS);
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  // O_DIRECT is the caller's cache choice, not a property the source must support (tmpfs does not).
  int oflags = (flags & ~(O_NOFOLLOW | O_DIRECT | O_EXCL | O_NOCTTY)) | O_CLOEXEC;
  int fd = ::open(proc_path(node->fd).c_str(), oflags);
  if (fd < 0) return fs_error(errno);
  return static_cast<std::uint64_t>(fd);
}

FsResult<std::size_t> PassthroughFs::read(Ino ino, std::uint64_t fh, char* buf, std::size_t size, off_t off) {
  if (options_.before_read) {
    if (int err = options_.before_read(ino); err != 0) return fs_error(err);
  }
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(static_cast<int>(fh), buf + done, size - done, off + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fs_error(errno);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

void PassthroughFs::release(Ino, std::uint64_t fh) { ::close(static_cast<int>(fh)); }

FsResult<std::uint64_t> PassthroughFs::opendir(Ino ino) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  if (!S_ISDIR(node->mode)) return fs_error(ENOTDIR);
  int fd = ::openat(node->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fs_error(errno);
  auto d = std::make_unique<DirHandle>();
  d->dp = ::fdopendir(fd);
  if (!d->dp) {
    int err = errno;
    ::close(fd);
    return fs_error(err);
  }
  return reinterpret_cast<std::uint64_t>(d.release());
}

FsResult<void> PassthroughFs::readdir(Ino, std::uint64_t fh, std::uint64_t off, const DirSink& sink) {
  auto* d = reinterpret_cast<DirHandle*>(fh);
  std::lock_guard lock(d->mu);
  if (off != d->offset) {
    ::seekdir(d->dp, static_cast<long>(off));
    d->entry = nullptr;
    d->offset = off;
  }
  for (;;) {
    if (!d->entry) {
      errno = 0;
      d->entry = ::readdir(d->dp);
      if (!d->entry) {
        if (errno != 0) return fs_error(errno);
        return {};
      }
    }
    DirEntry e{d->entry->d_name, static_cast<std::uint64_t>(d->entry->d_off), d->entry->d_ino, d->entry->d_type};
    if (!sink(e)) return {};
    d->offset = e.next_off;
    d->entry = nullptr;
  }
}

void PassthroughFs::releasedir(Ino, std::uint64_t fh) { delete reinterpret_cast<DirHandle*>(fh); }

FsResult<struct statvfs> PassthroughFs::statfs(Ino ino) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  struct statvfs sv {};
  if (::fstatvfs(node->fd, &sv) != 0) return fs_error(errno);
  return sv;
}

FsResult<std::string> PassthroughFs::getxattr(Ino ino, const char* name) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  if (S_ISLNK(node->mode)) return fs_error(ENODATA);
  std::string path = proc_path(node->fd);
  for (;;) {
    ssize_t n = ::getxattr(path.c_str(), name, nullptr, 0);
    if (n < 0) return fs_error(errno);
    std::string value(static_cast<std::size_t>(n), '\0');
    ssize_t m = ::getxattr(path.c_str(), name, value.data(), value.size());
    if (m < 0 && errno == ERANGE) continue;  // grew in between
    if (m < 0) return fs_error(errno);
    value.resize(static_cast<std::size_t>(m));
    return value;
  }
}

FsResult<std::string> PassthroughFs::listxattr(Ino ino) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  if (S_ISLNK(node->mode)) return std::string();
  std::string path = proc_path(node->fd);
  for (;;) {
    ssize_t n = ::listxattr(path.c_str(), nullptr, 0);
    if (n < 0) return fs_error(errno);
    std::string names(static_cast<std::size_t>(n), '\0');
    ssize_t m = ::listxattr(path.c_str(), names.data(), names.size());
    if (m < 0 && errno == ERANGE) continue;
    if (m < 0) return fs_error(errno);
    names.resize(static_cast<std::size_t>(m));
    return names;
  }
}

FsResult<void> PassthroughFs::access(Ino ino, int mask) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  if (mask & W_OK) return fs_error(EROFS);
  if (S_ISLNK(node->mode)) return {};
  if (::access(proc_path(node->fd).c_str(), mask) != 0) return fs_error(errno);
  return {};
}

}  // namespace nydus::fs
