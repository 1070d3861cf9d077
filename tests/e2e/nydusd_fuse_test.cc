// End-to-end: nydusd serving FUSE (--mountpoint, --shared-dir) and mounts through the API.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/nydusd_fuse_fixture.h"

namespace nydus::testutil {
namespace {

using Json = nlohmann::json;

class NydusdFuseTest : public NydusdFuseFixture {
 protected:
  void SetUp() override {
    NydusdFuseFixture::SetUp();
    if (IsSkipped()) return;
    src_ = dir_.file("src");
    std::filesystem::create_directories(src_ + "/sub");
    std::ofstream(src_ + "/sub/hello.txt") << "hello from the shared dir\n";
    std::filesystem::create_symlink("sub/hello.txt", src_ + "/link");
  }

  std::string src_;
};

TEST_F(NydusdFuseTest, SharedDirIsServedAndSigtermUnmounts) {
  start({"--shared-dir", src_});
  EXPECT_EQ(slurp(mnt_ + "/sub/hello.txt"), "hello from the shared dir\n");
  EXPECT_EQ(std::filesystem::read_symlink(mnt_ + "/link"), "sub/hello.txt");
  auto info = Json::parse(call("GET", "/api/v1/daemon").body);
  EXPECT_EQ(info["state"], "RUNNING");
  EXPECT_EQ(info["backend_collection"]["/"]["backend_type"], "PassthroughFs");
  EXPECT_EQ(info["backend_collection"]["/"]["config"], nullptr);
  auto metrics = Json::parse(call("GET", "/api/v1/metrics").body);
  EXPECT_EQ(metrics["id"], "/");
  EXPECT_GE(metrics["data_read"].get<std::uint64_t>(), 26u);
  // Writes are refused: the service is read-only.
  std::ofstream(mnt_ + "/new.txt") << "x";
  EXPECT_FALSE(std::filesystem::exists(src_ + "/new.txt"));
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(), 0) << daemon_->log();
  EXPECT_FALSE(is_mounted(mnt_));
}

TEST_F(NydusdFuseTest, MountsThroughTheApi) {
  start();
  std::string other = dir_.file("other");
  std::filesystem::create_directories(other);
  std::ofstream(other + "/a.txt") << "instance two";
  std::string body = Json{{"source", other}, {"fs_type", "passthrough_fs"}, {"config", ""}}.dump();
  auto r = call("POST", "/api/v1/mount?mountpoint=%2Fsnap-1", body);
  ASSERT_EQ(r.status, 204u) << r.body;
  EXPECT_EQ(slurp(mnt_ + "/snap-1/a.txt"), "instance two");
  EXPECT_EQ(call("POST", "/api/v1/mount?mountpoint=%2Fsnap-1", body).status, 500u);  // already exists
  auto rafs = call("POST", "/api/v1/mount?mountpoint=%2Fr",
                   Json{{"source", "/nonexistent"}, {"fs_type", "rafs"}, {"config", "{\"version\":2,\"backend\":{"
                        "\"type\":\"localfs\",\"localfs\":{\"dir\":\"/b\"}},\"cache\":{\"type\":\"blobcache\","
                        "\"filecache\":{\"work_dir\":\"/c\"}},\"rafs\":{\"mode\":\"direct\"}}"}}.dump());
  EXPECT_EQ(rafs.status, 500u) << rafs.body;  // no such bootstrap
  EXPECT_NE(Json::parse(rafs.body)["message"].get<std::string>().find("RAFS failed to handle request, "),
            std::string::npos)
      << rafs.body;
  EXPECT_EQ(call("DELETE", "/api/v1/mount?mountpoint=%2Fsnap-1").status, 204u);
  EXPECT_FALSE(std::filesystem::exists(mnt_ + "/snap-1/a.txt"));
  auto ctl = run_command({nydusctl_path(), "--sock", sock_, "info"});
  EXPECT_EQ(ctl.first, 0) << ctl.second;
}

TEST_F(NydusdFuseTest, ExitLeavesTheMountForASuccessor) {
  start({"--shared-dir", src_});
  EXPECT_EQ(call("PUT", "/api/v1/daemon/exit").status, 204u);
  EXPECT_EQ(daemon_->wait_exit(), 0) << daemon_->log();
  EXPECT_TRUE(is_mounted(mnt_));  // upstream behaviour (§2.5): the mount outlives the process
}

}  // namespace
}  // namespace nydus::testutil
