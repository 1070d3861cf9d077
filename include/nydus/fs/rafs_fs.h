// RafsFs: serves a RAFS v6 (or plain EROFS) image as a filesystem instance,
// file data fetched lazily from its blobs through the image's backend.
//
// Inode numbers: the instance-local inode of an image inode is its nid + 1
// (local 0 is reserved by the FUSE layer); st_ino and d_ino are the nid
// itself, as the kernel's EROFS driver reports them.
//
// Attributes of RAFS images follow nydusd's rules (rafs-format.md §1.14):
//   - images without EXPLICIT_UID_GID report every inode as owned by
//     `owner_uid`/`owner_gid` (default: the daemon's effective ids);
//   - an mtime of 0 (nydus compact inodes) reads as `start_time`;
//   - the root directory's permission bits are 0755.
// Plain EROFS images are shown exactly as the kernel's EROFS driver shows
// them. In both, atime and ctime equal mtime.
// Extended attributes are served when `enable_xattr` is on or, as upstream
// does, whenever the image says it has any (RAFS flag HAS_XATTR), whatever
// the configuration. Otherwise every inode has none (getxattr ENODATA,
// listxattr empty). Upstream answers ENOSYS instead, which makes the kernel
// stop asking for the whole FUSE connection, i.e. for every other instance
// too; see docs/fuse.md.
//
// Errors: a name that does not exist is ENOENT; a corrupt image, a missing
// blob, a failed backend read, a corrupt chunk or a digest mismatch is EIO
// for that operation, and its reason goes to `on_error` (the daemon's event
// ring) and the log, at most `RateLimiter::Options{}.budget` lines per kind of
// operation per interval (any local user can make reads fail at will); the
// next line that passes says how many were suppressed. Nothing in an image can crash the daemon (the storage
// reader bounds-checks every field).
//
// The image is immutable: lookup counts are not tracked (forget is a no-op)
// and open/opendir hand out handle 0.
//
// Thread-safety: every method may be called concurrently (Image is const).
#pragma once

#include <sys/types.h>

#include <unistd.h>

#include <ctime>
#include <functional>
#include <memory>
#include <string>

#include "nydus/fs/filesystem.h"
#include "nydus/rate_limiter.h"
#include "nydus/result.h"
#include "nydus/storage/image.h"

namespace nydus::fs {

struct RafsOptions {
  std::string bootstrap{};         // path of the bootstrap (meta blob)
  storage::ImageOptions image{};   // backend, digest validation, blob.meta directory
  bool enable_xattr = false;       // config `rafs.enable_xattr` (images with xattrs show them anyway)
  uid_t owner_uid = ::geteuid();   // owner without EXPLICIT_UID_GID
  gid_t owner_gid = ::getegid();
  struct timespec start_time {};   // shown for mtime 0; {0,0} = now at open()
  // Data-plane error texts ("read at 0 size 4096 of inode 128: <reason>"); may be empty.
  std::function<void(std::string)> on_error{};
  // Clock of the error-report rate limit (tests); empty = steady_clock.
  RateLimiter::Clock report_clock{};
};

class RafsFs final : public Filesystem {
 public:
  // Opens and validates the bootstrap. Errors as storage::Image::open().
  static Result<std::shared_ptr<RafsFs>> open(RafsOptions options);
  // Serves an image already open (tests, fuzzing).
  static std::shared_ptr<RafsFs> from_image(std::unique_ptr<storage::Image> image, RafsOptions options);
  ~RafsFs() override;

  const storage::Image& image() const { return *image_; }
  const storage::BlobBackend* backend() const { return options_.image.backend.get(); }
  storage::BlobBackend* backend() { return options_.image.backend.get(); }
  const std::string& bootstrap() const { return options_.bootstrap; }

  Ino root() const override;
  FsResult<Entry> lookup(Ino parent, std::string_view name) override;
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
  bool reports_own_errors() const override { return true; }
  bool immutable() const override { return true; }  // the image never changes; a remount is a new instance

 private:
  RafsFs(std::unique_ptr<storage::Image> image, RafsOptions options);
  struct stat to_stat(const storage::InodeAttr& a) const;
  // Maps a storage error to an errno; EIO ones are reported with `what`.
  int fail(const Error& e, std::string_view what, Ino ino);

  std::unique_ptr<storage::Image> image_;
  RafsOptions options_;
  bool explicit_owner_ = false;
  bool nydus_rules_ = false;  // RAFS image (not plain EROFS): mtime 0 and root mode rules apply
  bool xattrs_ = false;       // xattrs are served (enable_xattr, or the image has some)
  RateLimiter report_limit_;  // keyed by operation name
};

}  // namespace nydus::fs
