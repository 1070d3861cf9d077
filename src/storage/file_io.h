// Opening and reading host files that a mount names (bootstraps, blobs,
// `<id>.blob.meta`) without ever blocking on them or trusting their size.
//
// open() of a FIFO blocks until a writer appears, and reading a device or a
// FIFO has no end: the only files served are regular ones, opened with
// O_NONBLOCK (which regular files ignore) and checked with fstat before the
// first read. A file on a hung network filesystem can still block open();
// that is why callers never open while holding a lock others wait on.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "nydus/result.h"

namespace nydus::storage {

// An owned file descriptor.
class FileFd {
 public:
  FileFd() = default;
  explicit FileFd(int fd) : fd_(fd) {}
  FileFd(FileFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  FileFd& operator=(FileFd&& o) noexcept;
  FileFd(const FileFd&) = delete;
  FileFd& operator=(const FileFd&) = delete;
  ~FileFd();
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

// Opens `path` read-only without blocking and accepts only a regular file.
// `what` names the file in errors ("bootstrap", "blob", …). Errors: kNotFound
// (ENOENT), kInvalidArgument (not a regular file), kIo (other failures).
Result<FileFd> open_regular_file(const std::string& path, const char* what, struct stat* st = nullptr);

// The whole regular file at `path`, refused with kInvalidArgument before any
// allocation when it is larger than `max_size` bytes. A file that shrinks
// while being read is kCorrupt (the caller sees a consistent copy or an error).
Result<std::vector<std::uint8_t>> read_regular_file(const std::string& path, const char* what,
                                                    std::uint64_t max_size);

// Reads exactly out.size() bytes at `offset`; kCorrupt on a short file.
Result<void> pread_exact(int fd, std::span<std::uint8_t> out, std::uint64_t offset, const std::string& what);

}  // namespace nydus::storage
