// Supervisor socket transfers with deadlines (see header).
#include "nydus/daemon/supervisor.h"

#include "daemon/supervisor_receive.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace nydus::daemon {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

using Clock = std::chrono::steady_clock;

std::string os_text(int err) { return fmt::format("{} (os error {})", std::strerror(err), err); }

Error io(std::string what) { return Error(ErrorCode::kIo, std::move(what)); }

// Sets the socket's send and receive timeouts to what is left of the
// deadline (blocking calls, connect included, then end with EAGAIN).
// False when nothing is left.
bool arm(int fd, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
  if (left.count() <= 0) return false;
  timeval tv{static_cast<time_t>(left.count() / 1000000), static_cast<suseconds_t>(left.count() % 1000000)};
  return ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0 &&
         ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0;
}

bool timed_out(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINPROGRESS; }

Result<UniqueFd> connect_to(const std::string& path, Clock::time_point deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return tl::unexpected(io("CreateUnixStream(" + os_text(ENAMETOOLONG) + ")"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return tl::unexpected(io("CreateUnixStream(" + os_text(errno) + ")"));
  if (!arm(s.get(), deadline)) return tl::unexpected(io("Timeout(connect)"));
  while (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    if (err == EINTR) continue;
    if (timed_out(err)) return tl::unexpected(io("Timeout(connect: the supervisor does not accept)"));
    return tl::unexpected(io("CreateUnixStream(" + os_text(err) + ")"));
  }
  return s;
}

}  // namespace

Result<void> send_to_supervisor(const std::string& path, std::span<const std::uint8_t> bytes, int fd,
                                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (fd < 0) return fail(ErrorCode::kIo, "NoEnoughFds");
  auto s = connect_to(path, deadline);
  if (!s) return tl::unexpected(s.error());
  std::size_t sent = 0;
  bool fd_sent = false;
  while (!fd_sent || sent < bytes.size()) {
    if (!arm(s->get(), deadline)) return fail(ErrorCode::kIo, "Timeout(write: the supervisor does not read)");
    iovec iov{const_cast<std::uint8_t*>(bytes.data() + sent), bytes.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (!fd_sent) {  // the descriptor rides on the first message only
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t n = ::sendmsg(s->get(), &msg, MSG_NOSIGNAL);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (timed_out(err)) return fail(ErrorCode::kIo, "Timeout(write: the supervisor does not read)");
      return fail(ErrorCode::kIo, (fd_sent ? "Write(" : "SendFd(") + os_text(err) + ")");
    }
    fd_sent = true;
    sent += static_cast<std::size_t>(n);
  }
  return {};  // closing is the end-of-data mark
}

std::vector<int> scm_rights_fds(const msghdr& msg) {
  std::vector<int> fds;
  if (msg.msg_control == nullptr) return fds;
  msghdr m = msg;  // the CMSG macros take it mutable
  const auto* end = static_cast<const unsigned char*>(m.msg_control) + m.msg_controllen;
  // CMSG_NXTHDR checks that each next header fits, CMSG_FIRSTHDR does not:
  // every header's length is checked against the buffer here.
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    const auto left = static_cast<std::size_t>(end - reinterpret_cast<const unsigned char*>(c));
    if (c->cmsg_len < CMSG_LEN(0) || c->cmsg_len > left) break;
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.push_back(fd);
    }
  }
  return fds;
}

Result<SupervisorTransfer> receive_transfer(int sock, std::chrono::steady_clock::time_point deadline,
                                            std::size_t max_bytes) {
  SupervisorTransfer t;
  std::vector<std::uint8_t> buf(64u << 10);
  for (;;) {
    if (!arm(sock, deadline)) return fail(ErrorCode::kIo, "Timeout(read: the supervisor sent no end of data)");
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(16 * sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (timed_out(err)) return fail(ErrorCode::kIo, "Timeout(read: the supervisor sent no end of data)");
      return fail(ErrorCode::kIo, "Read(" + os_text(err) + ")");
    }
    // Keep the first descriptor; close every other one (§10 #14: upstream leaks them).
    for (int got : scm_rights_fds(msg)) {
      if (!t.fd) {
        t.fd.reset(got);
      } else {
        ::close(got);
      }
    }
    if (n == 0) break;
    if (t.bytes.size() + static_cast<std::size_t>(n) > max_bytes) {
      return fail(ErrorCode::kInvalidArgument, fmt::format("TooLarge(more than {} bytes)", max_bytes));
    }
    t.bytes.insert(t.bytes.end(), buf.begin(), buf.begin() + n);
  }
  if (!t.fd) return fail(ErrorCode::kIo, "NoEnoughFds");
  return t;
}

Result<SupervisorTransfer> receive_from_supervisor(const std::string& path, std::chrono::milliseconds timeout,
                                                   std::size_t max_bytes) {
  const auto deadline = Clock::now() + timeout;
  auto s = connect_to(path, deadline);
  if (!s) return tl::unexpected(s.error());
  return receive_transfer(s->get(), deadline, max_bytes);
}

}  // namespace nydus::daemon
