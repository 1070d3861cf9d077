// See file_io.h.
#include "file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace nydus::storage {

FileFd& FileFd::operator=(FileFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

FileFd::~FileFd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<FileFd> open_regular_file(const std::string& path, const char* what, struct stat* st) {
  FileFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) {
    int err = errno;
    Error e = os_error(std::string("open ") + what + " " + path, err);
    if (err == ENOENT) return fail(ErrorCode::kNotFound, e.message());
    return tl::unexpected(e);
  }
  struct stat local {};
  struct stat& s = st ? *st : local;
  if (::fstat(fd.get(), &s) != 0) return tl::unexpected(os_error(std::string("stat ") + what + " " + path, errno));
  if (!S_ISREG(s.st_mode)) {
    return fail(ErrorCode::kInvalidArgument, std::string(what) + " " + path + " is not a regular file");
  }
  return fd;
}

Result<void> pread_exact(int fd, std::span<std::uint8_t> out, std::uint64_t offset, const std::string& what) {
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, off_t(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return tl::unexpected(os_error("read " + what, errno));
    if (n == 0) return fail(ErrorCode::kCorrupt, what + " changed while being read (shorter than its size)");
    done += std::size_t(n);
  }
  return {};
}

Result<std::vector<std::uint8_t>> read_regular_file(const std::string& path, const char* what,
                                                    std::uint64_t max_size) {
  struct stat st {};
  auto fd = open_regular_file(path, what, &st);
  if (!fd) return tl::unexpected(fd.error());
  if (std::uint64_t(st.st_size) > max_size) {
    return fail(ErrorCode::kInvalidArgument, std::string(what) + " " + path + " is " + std::to_string(st.st_size) +
                                                 " bytes, more than the " + std::to_string(max_size) + " allowed");
  }
  std::vector<std::uint8_t> bytes(std::size_t(st.st_size));
  if (auto r = pread_exact(fd->get(), bytes, 0, std::string(what) + " " + path); !r) return tl::unexpected(r.error());
  return bytes;
}

}  // namespace nydus::storage
