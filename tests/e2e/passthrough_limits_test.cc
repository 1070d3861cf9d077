// End-to-end, issue #11 item 9: a passthrough instance must not exhaust the
// daemon's descriptors. `ls -l` of a directory larger than RLIMIT_NOFILE used
// to pin one descriptor per cached inode until the API could no longer accept.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/nydusd_fuse_fixture.h"

namespace nydus::testutil {
namespace {

using Json = nlohmann::json;
namespace stdfs = std::filesystem;

class PassthroughLimitsTest : public NydusdFuseFixture {
 protected:
  static constexpr int kLimit = 256;
  static constexpr int kFiles = 1000;  // well over the limit

  void SetUp() override {
    NydusdFuseFixture::SetUp();
    if (IsSkipped()) return;
    src_ = dir_.file("src");
    stdfs::create_directories(src_ + "/many");
    for (int i = 0; i < kFiles; ++i) std::ofstream(src_ + "/many/" + std::to_string(i)) << i;
    start();
    // Lower the daemon's limit now (start-up raises it to the hard limit), then mount.
    rlimit lim{kLimit, kLimit};
    if (::prlimit(daemon_->pid(), RLIMIT_NOFILE, &lim, nullptr) != 0) GTEST_SKIP() << "prlimit: " << std::strerror(errno);
    std::string body = Json{{"source", src_}, {"fs_type", "passthrough_fs"}, {"config", ""}}.dump();
    auto r = call("POST", "/api/v1/mount?mountpoint=%2Fp", body);
    ASSERT_EQ(r.status, 204u) << r.body;
  }

  void expect_api_answers() {
    for (int i = 0; i < 3; ++i) {  // fresh connections: each needs an accept()
      auto info = call("GET", "/api/v1/daemon");
      ASSERT_EQ(info.status, 200u) << daemon_->log();
      EXPECT_EQ(Json::parse(info.body)["state"], "RUNNING");
    }
  }

  std::string src_;
};

TEST_F(PassthroughLimitsTest, ListingMoreFilesThanTheLimitKeepsTheApiUp) {
  // ls -l: list, then stat every entry (the kernel keeps them cached: no forget).
  int stated = 0, failed = 0;
  std::error_code ec;
  for (stdfs::directory_iterator it(mnt_ + "/p/many", ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    (::lstat(it->path().c_str(), &st) == 0 ? stated : failed)++;
  }
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(stated, kFiles);
  EXPECT_EQ(failed, 0);
  expect_api_answers();
}

TEST_F(PassthroughLimitsTest, ClientHoldingFilesOpenCannotStarveTheApi) {
  std::vector<int> held;
  int err = 0;
  for (int i = 0; i < kFiles; ++i) {
    int fd = ::open((mnt_ + "/p/many/" + std::to_string(i)).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      err = errno;
      break;
    }
    held.push_back(fd);
  }
  EXPECT_EQ(err, EMFILE) << "the daemon's limit, not ours, should stop the opens";
  EXPECT_LT(held.size(), static_cast<std::size_t>(kLimit));
  expect_api_answers();
  for (int fd : held) ::close(fd);
}

}  // namespace
}  // namespace nydus::testutil
