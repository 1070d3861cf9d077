#include "util/nydusd_fuse_fixture.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace nydus::testutil {

bool is_mounted(const std::string& path) {
  std::ifstream in("/proc/self/mounts");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string dev, mp;
    ss >> dev >> mp;
    if (mp == path) return true;
  }
  return false;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void NydusdFuseFixture::SetUp() {
  if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/fuse is not available: " << std::strerror(errno);
  if (::geteuid() != 0) GTEST_SKIP() << "mounting FUSE needs root";
  mnt_ = dir_.file("mnt");
  sock_ = dir_.file("api.sock");
  std::filesystem::create_directories(mnt_);
}

void NydusdFuseFixture::TearDown() {
  daemon_.reset();
  if (!mnt_.empty() && is_mounted(mnt_)) ::umount2(mnt_.c_str(), MNT_DETACH);
}

void NydusdFuseFixture::start(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--apisock", sock_, "--mountpoint", mnt_, "--log-level", "info"};
  args.insert(args.end(), extra.begin(), extra.end());
  daemon_ = std::make_unique<DaemonProcess>(args, dir_.file("nydusd.log"));
  ASSERT_TRUE(daemon_->wait_for_socket(sock_)) << daemon_->log();
  ASSERT_TRUE(eventually([&] { return is_mounted(mnt_); })) << daemon_->log();
  // FUSE is mounted during Start, a moment before the state reads RUNNING.
  ASSERT_TRUE(eventually([&] {
    auto r = round_trip(sock_, "GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\n\r\n");
    return r && r->body.find(R"("state":"RUNNING")") != std::string::npos;
  })) << daemon_->log();
}

HttpReply NydusdFuseFixture::call(const std::string& method, const std::string& target, const std::string& body) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: x\r\n";
  if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  // Generous: a mount of a large image, or a loaded CI machine under ASan.
  auto r = round_trip(sock_, req + "\r\n" + body, std::chrono::seconds(30));
  EXPECT_TRUE(r) << method << " " << target;
  return r.value_or(HttpReply{});
}

}  // namespace nydus::testutil
