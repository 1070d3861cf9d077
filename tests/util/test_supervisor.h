// A supervisor for tests, playing nydus-snapshotter's side of contract §6.3:
// listens on a Unix socket and serves exactly one connection in the chosen
// way (store what a daemon sends, hand stored state back, or misbehave).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace nydus::testutil {

class TestSupervisor {
 public:
  enum class Mode {
    kStore,    // read bytes and fds until EOF, keep them (sendfd)
    kServe,    // send the given bytes with the given fd, then close (takeover)
    kServeNoFd,  // send the given bytes without a descriptor
    kSilent,   // accept, then neither read nor write until destroyed
  };

  // Listens on `path` at once (so a connect right after construction works).
  // `bytes`/`fd` are what kServe sends; `fd` is borrowed.
  TestSupervisor(std::string path, Mode mode, std::vector<std::uint8_t> bytes = {}, int fd = -1);
  ~TestSupervisor();  // stops serving, closes every descriptor it holds
  TestSupervisor(const TestSupervisor&) = delete;
  TestSupervisor& operator=(const TestSupervisor&) = delete;

  // Waits until the one connection has been served (kStore: EOF seen). Call
  // it only once a transfer has been made; it waits for one without bound.
  void wait_done();
  // kStore results (after wait_done): the bytes, every fd received (owned).
  std::vector<std::uint8_t> bytes() const;
  std::vector<int> fds() const;
  const std::string& path() const { return path_; }

 private:
  void run();

  const std::string path_;
  const Mode mode_;
  const std::vector<std::uint8_t> send_bytes_;
  const int send_fd_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: ends kSilent and a pending accept
  mutable std::mutex mu_;
  std::vector<std::uint8_t> got_bytes_;  // guarded by mu_
  std::vector<int> got_fds_;             // guarded by mu_
  std::thread thread_;
};

}  // namespace nydus::testutil
