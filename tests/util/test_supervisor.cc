#include "util/test_supervisor.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace nydus::testutil {

TestSupervisor::TestSupervisor(std::string path, Mode mode, std::vector<std::uint8_t> bytes, int fd)
    : path_(std::move(path)), mode_(mode), send_bytes_(std::move(bytes)), send_fd_(fd) {
  ::unlink(path_.c_str());
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (listen_fd_ < 0 || stop_fd_ < 0 || path_.size() >= sizeof(addr.sun_path)) throw std::runtime_error("supervisor");
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listen_fd_, 4) != 0) {
    throw std::runtime_error("supervisor bind/listen: " + std::string(std::strerror(errno)));
  }
  thread_ = std::thread([this] { run(); });
}

TestSupervisor::~TestSupervisor() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(stop_fd_);
  for (int fd : got_fds_) ::close(fd);
  ::unlink(path_.c_str());
}

void TestSupervisor::wait_done() {
  if (thread_.joinable()) thread_.join();
}

std::vector<std::uint8_t> TestSupervisor::bytes() const {
  std::lock_guard lock(mu_);
  return got_bytes_;
}

std::vector<int> TestSupervisor::fds() const {
  std::lock_guard lock(mu_);
  return got_fds_;
}

namespace {

// Waits for `fd` to be readable or the stop eventfd; false when stopped.
bool wait_readable(int fd, int stop_fd) {
  pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
  while (::poll(p, 2, -1) < 0) {
    if (errno != EINTR) return false;
  }
  return (p[1].revents & POLLIN) == 0;
}

}  // namespace

void TestSupervisor::run() {
  if (!wait_readable(listen_fd_, stop_fd_)) return;
  int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return;
  if (mode_ == Mode::kSilent) {
    wait_readable(stop_fd_, stop_fd_);  // hold the connection until destroyed
  } else if (mode_ == Mode::kStore) {
    std::vector<std::uint8_t> buf(64 << 10);
    for (;;) {
      if (!wait_readable(c, stop_fd_)) break;
      iovec iov{buf.data(), buf.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(16 * sizeof(int))];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      ssize_t n = ::recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard lock(mu_);
      for (cmsghdr* h = CMSG_FIRSTHDR(&msg); n >= 0 && h != nullptr; h = CMSG_NXTHDR(&msg, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
        std::size_t count = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
          int fd = -1;
          std::memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
          got_fds_.push_back(fd);
        }
      }
      if (n <= 0) break;
      got_bytes_.insert(got_bytes_.end(), buf.begin(), buf.begin() + n);
    }
  } else {
    std::size_t sent = 0;
    bool first = true;
    while (first || sent < send_bytes_.size()) {
      iovec iov{const_cast<std::uint8_t*>(send_bytes_.data() + sent), send_bytes_.size() - sent};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
      if (first && mode_ == Mode::kServe && send_fd_ >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        cmsghdr* h = CMSG_FIRSTHDR(&msg);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(h), &send_fd_, sizeof(int));
      }
      ssize_t n = ::sendmsg(c, &msg, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      first = false;
      sent += static_cast<std::size_t>(n);
    }
  }
  ::close(c);
}

}  // namespace nydus::testutil
