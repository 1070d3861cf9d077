// What nydusd receives from a supervisor at takeover (contract §6.3): the
// input scripts a supervisor's messages over a socketpair (bytes with 0-19
// descriptors each, then EOF) and receive_transfer must hand back exactly the
// bytes sent with the first descriptor sent, or the error the script calls
// for (TooLarge, NoEnoughFds), and leave no descriptor open either way; what
// it returns is then decoded as takeover does. An input starting with 0xff
// feeds its rest as control data to scm_rights_fds, which must not read past
// the buffer (every header's length is arbitrary there).
//
// Script: byte 0 sets max_bytes ((b + 1) * 128, or the daemon's limit from
// 0xf0 up); then messages of {u8 descriptor count (mod 20), u16 LE length,
// bytes}. More than 16 descriptors in one message overflow the receiver's
// control buffer (MSG_CTRUNC): the kernel drops the rest.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "daemon/supervisor_receive.h"
#include "nydus/daemon/upgrade_state.h"

using namespace nydus::daemon;

namespace {

constexpr std::size_t kMaxFdsPerInput = 48;

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

void check_control(const std::uint8_t* data, std::size_t size) {
  auto buf = std::make_unique<unsigned char[]>(size);  // exactly the input: ASan sees any read past it
  std::memcpy(buf.get(), data, size);
  msghdr msg{};
  msg.msg_control = size ? buf.get() : nullptr;
  msg.msg_controllen = size;
  if (scm_rights_fds(msg).size() * sizeof(int) > size) std::abort();
}

// What the script made the supervisor send.
struct Sent {
  std::vector<std::uint8_t> bytes;
  std::size_t fds = 0;
  ino_t first_fd_ino = 0;
};

// Sends one message; false when the socket is full (the script ends there).
bool send_message(int sock, std::span<const std::uint8_t> payload, std::size_t nfds, int first, int other, Sent& sent) {
  std::vector<int> fds(nfds, other);
  if (nfds > 0 && sent.fds == 0) fds[0] = first;
  iovec iov{const_cast<std::uint8_t*>(payload.data()), payload.size()};
  std::vector<unsigned char> control(CMSG_SPACE(sizeof(int) * (nfds ? nfds : 1)));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * nfds);
  }
  ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n <= 0) return false;
  sent.bytes.insert(sent.bytes.end(), payload.begin(), payload.begin() + n);
  sent.fds += nfds;
  return static_cast<std::size_t>(n) == payload.size();
}

// Runs the script; returns what was sent. `first` is the descriptor sent first.
Sent play(int sock, const std::uint8_t* data, std::size_t size, int first, int other) {
  Sent sent;
  struct stat st {};
  if (::fstat(first, &st) == 0) sent.first_fd_ino = st.st_ino;
  for (std::size_t at = 0; at + 3 <= size;) {
    std::size_t nfds = data[at] % 20;
    std::size_t len = data[at + 1] | (std::size_t{data[at + 2]} << 8);
    at += 3;
    len = std::min(len, size - at);
    if (len == 0) nfds = 0;  // a stream socket drops descriptors sent with no byte
    if (sent.fds + nfds > kMaxFdsPerInput) nfds = 0;
    if (!send_message(sock, std::span(data + at, len), nfds, first, other, sent)) break;
    at += len;
  }
  return sent;
}

void check_socket(const std::uint8_t* data, std::size_t size) {
  static const int dev_null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const std::size_t max_bytes = data[0] >= 0xf0 ? kMaxUpgradeStateBytes : (std::size_t{data[0]} + 1) * 128;
  const std::size_t before = open_fds();
  int sv[2], p[2];
  if (dev_null < 0 || ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  if (::pipe2(p, O_CLOEXEC) != 0) std::abort();
  Sent sent = play(sv[0], data + 1, size - 1, p[0], dev_null);
  ::close(p[0]);  // in flight or never sent; the write end keeps the pipe's identity checkable
  ::close(sv[0]);  // EOF
  auto got = receive_transfer(sv[1], std::chrono::steady_clock::now() + kSupervisorTimeout, max_bytes);
  ::close(sv[1]);  // drops whatever was left unread, descriptors included
  if (sent.bytes.size() > max_bytes) {
    if (got || got.error().code() != nydus::ErrorCode::kInvalidArgument) std::abort();
  } else if (sent.fds == 0) {
    if (got || got.error().message() != "NoEnoughFds") std::abort();
  } else {
    struct stat st {};
    if (!got || got->bytes != sent.bytes || ::fstat(got->fd.get(), &st) != 0 || st.st_ino != sent.first_fd_ino) {
      std::abort();
    }
    (void)decode_upgrade_state(got->bytes);  // what takeover does next
    got->fd.reset();
  }
  ::close(p[1]);
  if (open_fds() != before) std::abort();  // a descriptor received and neither kept nor closed
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > (64u << 10)) return 0;
  if (data[0] == 0xff) {
    check_control(data + 1, size - 1);
  } else {
    check_socket(data, size);
  }
  return 0;
}
