// Runs build/bin/nydusd as a child process for end-to-end tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/wait.h"

namespace nydus::testutil {

class DaemonProcess {
 public:
  // Starts `nydusd <args…>` with stdout/stderr sent to `log_path`.
  DaemonProcess(std::vector<std::string> args, std::string log_path);
  ~DaemonProcess();  // SIGKILLs the child if it is still running

  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Polls until `path` is a socket; false on timeout or if the child died.
  bool wait_for_socket(const std::string& path, std::chrono::milliseconds timeout = kHangGuard);
  // Waits for the child to exit; its exit status (or 128+signal), nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = kHangGuard);
  // Sends `sig` to the child.
  void signal(int sig);
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> status_;
};

// A /proc/<pid>/status field in KiB ("VmRSS", "VmHWM"); 0 when absent.
std::uint64_t status_kib(pid_t pid, const std::string& field);

// Runs a program to completion, capturing stdout+stderr. Returns {exit code, output}.
std::pair<int, std::string> run_command(const std::vector<std::string>& argv);

std::string nydusd_path();
std::string nydusctl_path();

}  // namespace nydus::testutil
