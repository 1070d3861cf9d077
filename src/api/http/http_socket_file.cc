#include "http_socket_file.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace nydus::api {
namespace {

// A system call failure: kIo, message "<call> <path>: <strerror>".
tl::unexpected<Error> sys_fail(std::string_view call, const std::string& path, int err) {
  return fail(ErrorCode::kIo, fmt::format("{} {}: {}", call, path, std::strerror(err)));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Result<sockaddr_un> make_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return fail(ErrorCode::kInvalidArgument, "API socket path is empty");
  // sun_path must hold the path and its terminating NUL.
  if (path.size() >= sizeof(addr.sun_path)) {
    return fail(ErrorCode::kInvalidArgument,
                fmt::format("API socket path is too long ({} bytes, at most {}): {}", path.size(),
                            sizeof(addr.sun_path) - 1, path));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// Whether some process accepts connections on the socket at `addr`. A
// non-blocking connect so that a live daemon with a full backlog (EAGAIN)
// counts as live instead of blocking us.
Result<bool> is_live(const sockaddr_un& addr, const std::string& path) {
  Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (probe.get() < 0) return sys_fail("socket", path, errno);
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) return true;
  int err = errno;
  if (err == EAGAIN || err == EINPROGRESS) return true;
  if (err == ECONNREFUSED || err == ENOENT) return false;
  return sys_fail("connect", path, err);
}

// Applies the pre-bind rules of the file comment to whatever is at `path`.
Result<void> clear_path(const sockaddr_un& addr, const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return sys_fail("lstat", path, errno);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return fail(ErrorCode::kAlreadyExists, fmt::format("refusing to replace {}: not a socket", path));
  }
  auto live = is_live(addr, path);
  if (!live) return tl::unexpected(live.error());
  if (*live) return fail(ErrorCode::kAlreadyExists, fmt::format("{} is in use by a live daemon", path));
  spdlog::info("removing stale API socket {}", path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return sys_fail("unlink", path, errno);
  return {};
}

}  // namespace

Result<SocketFile> SocketFile::create(const std::string& path, unsigned mode) {
  auto addr = make_address(path);
  if (!addr) return tl::unexpected(addr.error());
  if (auto cleared = clear_path(*addr, path); !cleared) return tl::unexpected(cleared.error());

  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return sys_fail("socket", path, errno);
  mode &= 07777;
  // bind() creates the node with the socket inode's mode minus the umask, so
  // restricting the inode first leaves no window with wider permissions.
  if (::fchmod(fd.get(), mode) != 0) return sys_fail("fchmod", path, errno);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    int err = errno;
    if (err == EADDRINUSE) {
      // Someone created the path between our check and bind().
      return fail(ErrorCode::kAlreadyExists, fmt::format("bind {}: {}", path, std::strerror(err)));
    }
    return sys_fail("bind", path, err);
  }

  SocketFile file;
  file.path_ = path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return sys_fail("lstat", path, errno);
  file.dev_ = st.st_dev;
  file.ino_ = st.st_ino;
  file.owned_ = true;  // from here on, failures remove the node again
  if ((st.st_mode & 07777 & ~mode) != 0) {
    spdlog::warn("API socket {} was created with mode {:o} instead of {:o}; fixing", path,
                 st.st_mode & 07777, mode);
  }
  // Sets exactly `mode` (the umask may have removed bits the caller wants).
  if (::chmod(path.c_str(), mode) != 0) {
    int err = errno;
    file.remove_if_ours();
    return sys_fail("chmod", path, err);
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) {
    int err = errno;
    file.remove_if_ours();
    return sys_fail("listen", path, err);
  }
  file.fd_ = fd.release();
  return file;
}

SocketFile::SocketFile(SocketFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      dev_(other.dev_),
      ino_(other.ino_),
      owned_(std::exchange(other.owned_, false)) {}

SocketFile& SocketFile::operator=(SocketFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    dev_ = other.dev_;
    ino_ = other.ino_;
    owned_ = std::exchange(other.owned_, false);
  }
  return *this;
}

SocketFile::~SocketFile() {
  if (fd_ >= 0) ::close(fd_);
}

int SocketFile::release_fd() { return std::exchange(fd_, -1); }

bool SocketFile::remove_if_ours() {
  if (!std::exchange(owned_, false)) return false;
  struct stat st {};
  // A small race remains (the path could be replaced between lstat and
  // unlink); there is no unlink-if-inode system call.
  if (::lstat(path_.c_str(), &st) != 0) return false;
  if (!S_ISSOCK(st.st_mode) || st.st_dev != dev_ || st.st_ino != ino_) {
    spdlog::info("API socket {} was replaced by another file; leaving it", path_);
    return false;
  }
  if (::unlink(path_.c_str()) != 0) {
    spdlog::warn("cannot remove API socket {}: {}", path_, std::strerror(errno));
    return false;
  }
  return true;
}

}  // namespace nydus::api
