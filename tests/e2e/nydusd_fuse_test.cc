// End-to-end: nydusd serving FUSE (--mountpoint, --shared-dir) and mounts through the API.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nydus/daemon/upgrade_state.h"
#include "util/nydusd_fuse_fixture.h"
#include "util/test_supervisor.h"

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

  // Start-up ends with the Start transition (FUSE session recorded, FUSE_INIT
  // answered) a little after the mount appears; like the snapshotter, poll
  // the state until RUNNING. The bound is only a hang guard.
  bool wait_running() {
    for (int i = 0; i < 100000; ++i) {
      auto info = Json::parse(call("GET", "/api/v1/daemon").body, nullptr, false);
      if (info.is_object() && info.value("state", "") == "RUNNING") return true;
    }
    return false;
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

// sendfd (contract §6.3) with a real FUSE session: the supervisor gets every
// mount and the live /dev/fuse connection, and the daemon keeps serving.
TEST_F(NydusdFuseTest, SendFdSavesEveryMountAndTheLiveConnection) {
  TestSupervisor sup(dir_.file("sup.sock"), TestSupervisor::Mode::kStore);
  start({"--shared-dir", src_, "--id", "d1", "--supervisor", sup.path()});
  std::string other = dir_.file("other");
  std::filesystem::create_directories(other);
  std::ofstream(other + "/a.txt") << "instance two";
  std::string body = Json{{"source", other}, {"fs_type", "passthrough_fs"}, {"config", ""}}.dump();
  ASSERT_EQ(call("POST", "/api/v1/mount?mountpoint=%2Fsnap-1", body).status, 204u);
  // A request answered through the mount means the kernel's FUSE_INIT is done (before it: 503 NotReady).
  EXPECT_EQ(slurp(mnt_ + "/snap-1/a.txt"), "instance two");
  ASSERT_TRUE(wait_running());
  auto r = call("PUT", "/api/v1/daemon/fuse/sendfd");
  ASSERT_EQ(r.status, 204u) << r.body << daemon_->log();
  sup.wait_done();

  auto bytes = sup.bytes();
  auto state = daemon::decode_upgrade_state(bytes);
  ASSERT_TRUE(state) << state.error().message();
  EXPECT_EQ(state->fuse_mountpoint, mnt_);
  struct stat st {};
  ASSERT_EQ(::stat(mnt_.c_str(), &st), 0);
  EXPECT_EQ(state->fuse_conn_id, (std::uint64_t{major(st.st_dev)} << 20) | minor(st.st_dev));
  EXPECT_EQ(state->init.proto_major, 7u);
  EXPECT_GT(state->init.max_write, 0u);
  ASSERT_EQ(state->mounts.size(), 2u);
  EXPECT_EQ(state->mounts[0].request.mountpoint, "/");
  EXPECT_EQ(state->mounts[0].request.source, src_);
  EXPECT_EQ(state->mounts[1].request.mountpoint, "/snap-1");
  EXPECT_EQ(state->mounts[1].request.source, other);
  EXPECT_NE(state->mounts[0].slot, state->mounts[1].slot);
  // Exactly one descriptor: the FUSE connection itself (/dev/fuse is char 10:229).
  ASSERT_EQ(sup.fds().size(), 1u);
  struct stat fd_st {};
  ASSERT_EQ(::fstat(sup.fds()[0], &fd_st), 0);
  EXPECT_TRUE(S_ISCHR(fd_st.st_mode));
  EXPECT_EQ(fd_st.st_rdev, makedev(10, 229));

  // Nothing changed for the daemon: still RUNNING, still serving both mounts.
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/daemon").body)["state"], "RUNNING");
  EXPECT_EQ(slurp(mnt_ + "/sub/hello.txt"), "hello from the shared dir\n");
  EXPECT_EQ(slurp(mnt_ + "/snap-1/a.txt"), "instance two");
  auto events = call("GET", "/api/v1/daemon/events").body;
  EXPECT_NE(events.find("state saved to supervisor"), std::string::npos) << events;
}

// A supervisor that is gone: a clear 500 at once, and the daemon serves on.
TEST_F(NydusdFuseTest, SendFdWithoutALiveSupervisorIs500AndServingGoesOn) {
  start({"--shared-dir", src_, "--id", "d1", "--supervisor", dir_.file("gone.sock")});
  EXPECT_EQ(slurp(mnt_ + "/sub/hello.txt"), "hello from the shared dir\n");  // FUSE_INIT done
  ASSERT_TRUE(wait_running());
  auto r = call("PUT", "/api/v1/daemon/fuse/sendfd");
  EXPECT_EQ(r.status, 500u);
  EXPECT_NE(r.body.find("CreateUnixStream("), std::string::npos) << r.body;
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/daemon").body)["state"], "RUNNING");
  EXPECT_EQ(slurp(mnt_ + "/sub/hello.txt"), "hello from the shared dir\n");
}

// Upstream parity (issue #11 item 13): scripts grep /proc/mounts for `rafs … fuse`.
TEST_F(NydusdFuseTest, ProcMountsShowsRafsOfTypeFuseLikeUpstream) {
  start({"--shared-dir", src_});
  std::ifstream in("/proc/self/mounts");
  std::string line, found;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string dev, mp, type;
    ss >> dev >> mp >> type;
    if (mp == mnt_) found = dev + " " + type;
  }
  EXPECT_EQ(found, "rafs fuse");
}

// Item 4: `fusermount3 -u` from outside ends the session: the daemon notices,
// logs it and shuts down (status 1) instead of staying RUNNING over nothing.
TEST_F(NydusdFuseTest, UnmountFromOutsideIsNoticedAndTheDaemonShutsDown) {
  start({"--shared-dir", src_});
  ASSERT_EQ(slurp(mnt_ + "/sub/hello.txt"), "hello from the shared dir\n");
  std::string fusermount;
  for (const char* p : {"/usr/bin/fusermount3", "/bin/fusermount3"})
    if (::access(p, X_OK) == 0) fusermount = p;
  if (fusermount.empty()) GTEST_SKIP() << "fusermount3 is not installed";
  auto r = run_command({fusermount, "-u", mnt_});
  ASSERT_EQ(r.first, 0) << r.second;
  auto status = daemon_->wait_exit(std::chrono::seconds(60));  // a hang guard only
  ASSERT_TRUE(status) << "nydusd kept running after its mount was removed\n" << daemon_->log();
  EXPECT_EQ(*status, 1) << daemon_->log();
  EXPECT_NE(daemon_->log().find("ended by the kernel (No such device)"), std::string::npos) << daemon_->log();
  EXPECT_NE(daemon_->log().find("has ended, shutting down"), std::string::npos) << daemon_->log();
  EXPECT_FALSE(is_mounted(mnt_));
  EXPECT_FALSE(std::filesystem::exists(sock_)) << "the API socket is removed as on any clean exit";
}

// Item 11: a second daemon on a live daemon's mountpoint is refused; the
// first keeps serving.
TEST_F(NydusdFuseTest, SecondDaemonRefusesALiveMountpoint) {
  start({"--shared-dir", src_});
  std::string other = dir_.file("other");
  std::filesystem::create_directories(other);
  DaemonProcess second({"--apisock", dir_.file("second.sock"), "--mountpoint", mnt_, "--shared-dir", other},
                       dir_.file("second.log"));
  auto status = second.wait_exit(std::chrono::seconds(30));
  ASSERT_TRUE(status) << "the second daemon stacked its mount\n" << second.log();
  EXPECT_EQ(*status, 1);
  EXPECT_NE(second.log().find("is already a live FUSE mount (rafs type fuse)"), std::string::npos) << second.log();
  EXPECT_EQ(slurp(mnt_ + "/sub/hello.txt"), "hello from the shared dir\n");
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/daemon").body)["state"], "RUNNING");
}

// Item 12: names no client could reach or name again, the instance limit and
// a mistyped backend field each get a precise error in the contract's shape.
TEST_F(NydusdFuseTest, MountNamesAndLimitsGetPreciseErrors) {
  start();
  std::string body = Json{{"source", src_}, {"fs_type", "passthrough_fs"}, {"config", ""}}.dump();
  auto message = [](const HttpReply& r) { return Json::parse(r.body)["message"].get<std::string>(); };

  auto nul = call("POST", "/api/v1/mount?mountpoint=%2Fa%00b", body);
  EXPECT_EQ(nul.status, 500u);
  EXPECT_EQ(message(nul), R"(Mount(MountFilesystem(Other("mountpoint contains a NUL byte (%00): no path can reach it"))))");

  auto bad_utf8 = call("POST", "/api/v1/mount?mountpoint=%2Fa%FF", body);
  EXPECT_EQ(bad_utf8.status, 400u);
  EXPECT_EQ(message(bad_utf8), R"(QueryString("'mountpoint' must be valid UTF-8 once percent-decoded"))");

  std::string rafs_config = Json{{"device", {{"backend", {{"type", "localfs"}, {"config", {{"dir", 5}}}}}}}}.dump();
  auto dir5 = call("POST", "/api/v1/mount?mountpoint=%2Fr",
                   Json{{"source", "/b.boot"}, {"fs_type", "rafs"}, {"config", rafs_config}}.dump());
  EXPECT_EQ(dir5.status, 500u);
  EXPECT_NE(message(dir5).find("device.backend.config.dir: invalid type: integer `5`, expected a string"),
            std::string::npos)
      << message(dir5);

  for (int i = 0; i < 255; ++i) {
    auto r = call("POST", "/api/v1/mount?mountpoint=%2Fs" + std::to_string(i), body);
    ASSERT_EQ(r.status, 204u) << i << ": " << r.body;
  }
  auto full = call("POST", "/api/v1/mount?mountpoint=%2Fone-too-many", body);
  EXPECT_EQ(full.status, 500u);
  EXPECT_EQ(message(full),
            R"(Mount(MountFilesystem(Other("too many filesystem instances: the limit is 255 per daemon"))))");
  auto info = Json::parse(call("GET", "/api/v1/daemon").body);
  EXPECT_EQ(info["backend_collection"].size(), 255u);
}

// Kills the daemon so that its mount stays behind, dead (ENOTCONN).
void crash(DaemonProcess& d, const std::string& mnt) {
  d.signal(SIGKILL);
  ASSERT_TRUE(d.wait_exit());
  ASSERT_TRUE(is_mounted(mnt));
  // statfs, not stat: stat may still be answered from the attribute cache.
  struct statfs st {};
  ASSERT_NE(::statfs(mnt.c_str(), &st), 0);
  ASSERT_EQ(errno, ENOTCONN);
}

// Item 11: restart after a crash cleans the stale mount up (with a log line) and serves.
TEST_F(NydusdFuseTest, RestartAfterACrashUnmountsTheStaleMount) {
  start({"--shared-dir", src_});
  crash(*daemon_, mnt_);
  // The successor would replace the stale socket; removed here so that
  // start() waits for the new daemon's socket rather than finding the old one.
  std::filesystem::remove(sock_);
  start({"--shared-dir", src_});
  EXPECT_EQ(slurp(mnt_ + "/sub/hello.txt"), "hello from the shared dir\n");
  EXPECT_NE(daemon_->log().find("is a stale FUSE mount whose daemon is gone (Transport endpoint is not connected): "
                                "lazily unmounted it"),
            std::string::npos)
      << daemon_->log();
}

// Item 11: with a supervisor the stale mount is left for failover, and the
// start-up error names the real errno instead of guessing.
TEST_F(NydusdFuseTest, WithASupervisorAStaleMountIsLeftAndTheErrnoNamed) {
  start({"--shared-dir", src_});
  crash(*daemon_, mnt_);
  DaemonProcess again({"--apisock", sock_, "--mountpoint", mnt_, "--shared-dir", src_, "--id", "d1", "--supervisor",
                       dir_.file("supervisor.sock")},
                      dir_.file("again.log"));
  auto status = again.wait_exit(std::chrono::seconds(30));
  ASSERT_TRUE(status) << again.log();
  EXPECT_EQ(*status, 1);
  EXPECT_NE(again.log().find("mountpoint " + mnt_ + " is a stale FUSE mount whose daemon is gone (Transport endpoint "
                             "is not connected)"),
            std::string::npos)
      << again.log();
  EXPECT_TRUE(is_mounted(mnt_)) << "left for the takeover path";
}

}  // namespace
}  // namespace nydus::testutil
