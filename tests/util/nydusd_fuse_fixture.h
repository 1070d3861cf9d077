// A test fixture that runs build/bin/nydusd with a FUSE mountpoint and an API
// socket in a temporary directory, for end-to-end tests of what it serves.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "util/daemon_process.h"
#include "util/raw_client.h"

namespace nydus::testutil {

// Whether `path` is a mountpoint in /proc/self/mounts.
bool is_mounted(const std::string& path);
// The whole file as bytes ("" if it cannot be read).
std::string slurp(const std::string& path);

class NydusdFuseFixture : public ::testing::Test {
 protected:
  // Skips the test without /dev/fuse or root; makes mnt_ and names sock_.
  // A derived SetUp calls this first and returns if IsSkipped().
  void SetUp() override;
  // Stops the daemon and detaches the mount if it is still there.
  void TearDown() override;

  // Starts nydusd --apisock sock_ --mountpoint mnt_ <extra…> and waits until
  // both the socket and the FUSE mount are up (fatal failure otherwise).
  void start(const std::vector<std::string>& extra = {});
  // One request over the API socket; an empty reply (and a test failure) on
  // a transport error.
  HttpReply call(const std::string& method, const std::string& target, const std::string& body = "");

  TempDir dir_;
  std::string mnt_, sock_;
  std::unique_ptr<DaemonProcess> daemon_;
};

}  // namespace nydus::testutil
