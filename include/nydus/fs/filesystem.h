// One filesystem instance as the FUSE layer sees it: an inode space of its
// own (instance-local inode numbers, root() fixed) and read-only operations
// that answer either a value or an errno.
//
// Inode lifetime follows libfuse's passthrough_ll invariant: every successful
// lookup() (and every entry returned through readdir with `plus`) adds one to
// the inode's lookup count; forget(ino, n) subtracts n and the inode may be
// freed at zero; forget() says whether it was, so that whatever the caller
// keeps per inode (per-file metrics) follows the inode's life. The root is never freed. Operations on an unknown or freed
// inode answer ESTALE (never crash).
//
// Handles: open()/opendir() return an opaque u64 the caller passes back to
// read()/readdir() and exactly once to release()/releasedir().
//
// The service is read-only by design: nothing here writes, and callers refuse
// write requests with EROFS before reaching an instance.
//
// Thread-safety: implementations must allow every method to be called
// concurrently from any number of threads.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace nydus::fs {

using Ino = std::uint64_t;  // instance-local inode number

// A value or a positive errno.
template <class T>
using FsResult = tl::expected<T, int>;

inline tl::unexpected<int> fs_error(int err) { return tl::unexpected<int>(err); }

struct Entry {
  Ino ino = 0;        // 0 for "." and ".." in readdir-plus listings (no lookup counted)
  struct stat attr {};
};

struct DirEntry {
  std::string_view name;  // valid during the callback only
  std::uint64_t next_off = 0;  // offset to resume after this entry
  std::uint64_t d_ino = 0;     // st_ino shown to readdir
  unsigned d_type = 0;         // DT_*
};

// Returns false to stop the listing (the caller's buffer is full); the entry
// it was given is then not consumed.
using DirSink = std::function<bool(const DirEntry&)>;

class Filesystem {
 public:
  virtual ~Filesystem() = default;

  virtual Ino root() const = 0;
  virtual FsResult<Entry> lookup(Ino parent, std::string_view name) = 0;
  // True when `ino` was freed by this call (its number will not come back).
  virtual bool forget(Ino ino, std::uint64_t nlookup) = 0;
  virtual FsResult<struct stat> getattr(Ino ino) = 0;
  virtual FsResult<std::string> readlink(Ino ino) = 0;
  virtual FsResult<std::uint64_t> open(Ino ino, int flags) = 0;
  // Reads up to `size` bytes at `off` into buf; short only at end of file.
  virtual FsResult<std::size_t> read(Ino ino, std::uint64_t fh, char* buf, std::size_t size, off_t off) = 0;
  virtual void release(Ino ino, std::uint64_t fh) = 0;
  virtual FsResult<std::uint64_t> opendir(Ino ino) = 0;
  // Lists from `off` (0 = start, else a previous next_off) until sink returns false or the end.
  virtual FsResult<void> readdir(Ino ino, std::uint64_t fh, std::uint64_t off, const DirSink& sink) = 0;
  virtual void releasedir(Ino ino, std::uint64_t fh) = 0;
  virtual FsResult<struct statvfs> statfs(Ino ino) = 0;
  // The whole value / the whole NUL-separated name list; callers apply the
  // FUSE size rules (size 0 asks for the length, too small is ERANGE).
  virtual FsResult<std::string> getxattr(Ino ino, const char* name) = 0;
  virtual FsResult<std::string> listxattr(Ino ino) = 0;
  virtual FsResult<void> access(Ino ino, int mask) = 0;

  // True when the instance reports its own failures (with their reasons) to
  // the daemon's error sink, so the FUSE layer does not report them again.
  virtual bool reports_own_errors() const { return false; }

  // True when nothing the instance serves can change while it is attached
  // (RAFS images): the FUSE layer may then let the kernel keep its names,
  // attributes and file data for long (FuseServerOptions::kernel_cache).
  virtual bool immutable() const { return false; }
};

}  // namespace nydus::fs
