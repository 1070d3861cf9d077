// PassthroughFs: serves a host directory (read-only) as a filesystem instance.
//
// Design (libfuse passthrough_ll): each known inode holds an O_PATH file
// descriptor opened relative to its parent's, so the tree is pinned by
// descriptors, not by path strings, and renames in the source do not confuse
// it. Inodes are keyed by (st_dev, st_ino) so hard links share one node;
// instance-local inode numbers are assigned sequentially from 2 (root is 1)
// and never reused. Attributes are the source's, st_ino included. Data is
// read with pread() on a descriptor reopened through /proc/self/fd.
// Symbolic links report no extended attributes (O_PATH descriptors of links
// cannot be used for xattr calls).
//
// Thread-safety: all methods may be called concurrently; the inode tables
// are guarded by one mutex held only for map updates, never across I/O.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "nydus/fs/filesystem.h"
#include "nydus/result.h"

namespace nydus::fs {

struct PassthroughOptions {
  std::string source;  // directory to serve
  // Test hook run before every read; a non-zero errno fails the read with it.
  // May block (tests use it to hold a request in flight).
  std::function<int(Ino)> before_read;
};

class PassthroughFs final : public Filesystem {
 public:
  // Errors: kNotFound (no such source), kInvalidArgument (not a directory), kIo.
  static Result<std::shared_ptr<PassthroughFs>> create(PassthroughOptions options);
  ~PassthroughFs() override;

  Ino root() const override { return kRootIno; }
  FsResult<Entry> lookup(Ino parent, std::string_view name) override;
  // True when the inode was freed.
  bool forget(Ino ino, std::uint64_t nlookup) override;
  FsResult<struct stat> getattr(Ino ino) override;
  FsResult<std::string> readlink(Ino ino) override;
  FsResult<std::uint64_t> open(Ino ino, int flags) override;
  FsResult<std::size_t> read(Ino ino, std::uint64_t fh, char* buf, std::size_t size, off_t off) override;
  void release(Ino ino, std::uint64_t fh) override;
  FsResult<std::uint64_t> opendir(Ino ino) override;
  FsResult<void> readdir(Ino ino, std::uint64_t fh, std::uint64_t off, const DirSink& sink) override;
  void releasedir(Ino ino, std::uint64_t fh) override;
  FsResult<struct statvfs> statfs(Ino ino) override;
  FsResult<std::string> getxattr(Ino ino, const char* name) override;
  FsResult<std::string> listxattr(Ino ino) override;
  FsResult<void> access(Ino ino, int mask) override;

  // Inodes currently known (root included); for tests of the lookup/forget invariant.
  std::size_t inode_count() const;
  // Lookup count of `ino` (0 if unknown).
  std::uint64_t lookup_count(Ino ino) const;

  static constexpr Ino kRootIno = 1;

 private:
  struct Inode;
  struct DirHandle;
  explicit PassthroughFs(PassthroughOptions options);
  std::shared_ptr<Inode> find(Ino ino) const;

  const PassthroughOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<Ino, std::shared_ptr<Inode>> inodes_;  // guarded by mu_
  std::map<std::pair<dev_t, ino_t>, Ino> by_id_;            // guarded by mu_
  Ino next_ino_ = kRootIno + 1;                             // guarded by mu_
};

}  // namespace nydus::fs
