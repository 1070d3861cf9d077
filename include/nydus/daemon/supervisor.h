// The supervisor socket protocol of contract §6.3, nydusd's side: nydusd
// always connects; one connection carries one transfer in one direction,
// bytes plus exactly one descriptor (SCM_RIGHTS, on the first message), and
// end-of-data is EOF (no length prefix, no reply).
//
// Unlike upstream (§10 #11, #14) every call is bounded by a deadline: a
// supervisor that is absent, never accepts, never reads or never writes costs
// at most `timeout`, and the error says which step failed. Received data is
// bounded by `max_bytes`; every received descriptor beyond the first is closed.
//
// A send that fits in the socket's buffer completes before the supervisor
// reads it: success means the kernel holds all bytes and the descriptor for
// the supervisor, not that it has stored them (the protocol has no reply).
//
// Thread-safety: free functions; they block the calling thread (the daemon's
// worker, never a FUSE worker or the API I/O thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "nydus/result.h"

namespace nydus::daemon {

// An owned descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

struct SupervisorTransfer {
  std::vector<std::uint8_t> bytes;
  UniqueFd fd;
};

inline constexpr std::chrono::milliseconds kSupervisorTimeout{5000};
inline constexpr std::size_t kMaxUpgradeStateBytes = 256u << 20;

// Errors (kIo), message prefixed with the failing step:
//   "CreateUnixStream(<os error>)"  connect failed (absent, refused, path too long)
//   "SendFd(<os error>)"            the first message with the descriptor failed
//   "Write(<os error>)"             a later write failed
//   "Timeout(<step>)"               the deadline passed (supervisor not accepting/reading)
Result<void> send_to_supervisor(const std::string& path, std::span<const std::uint8_t> bytes, int fd,
                                std::chrono::milliseconds timeout = kSupervisorTimeout);

// Errors (kIo unless said): CreateUnixStream / Read / Timeout as above;
// "NoEnoughFds" when no descriptor came; kInvalidArgument "TooLarge" beyond max_bytes.
Result<SupervisorTransfer> receive_from_supervisor(const std::string& path,
                                                   std::chrono::milliseconds timeout = kSupervisorTimeout,
                                                   std::size_t max_bytes = kMaxUpgradeStateBytes);

}  // namespace nydus::daemon
