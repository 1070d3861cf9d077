// FuseService: the FsService behind the mount/metrics routes, with and without
// a real FUSE session (FUSE parts skip without root or /dev/fuse).
#include "nydus/daemon/fuse_service.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/raw_client.h"

namespace nydus::daemon {
namespace {

using testutil::TempDir;
using namespace std::chrono_literals;
namespace stdfs = std::filesystem;

MountRequest passthrough(const std::string& mp, const std::string& src) {
  MountRequest r;
  r.mountpoint = mp;
  r.type = FsType::kPassthrough;
  r.source = src;
  return r;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool is_mountpoint(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.find(" " + path + " ") != std::string::npos) return true;
  return false;
}

TEST(MountedTime, FormatTrimsTrailingZerosKeepingOneDigit) {
  using std::chrono::system_clock;
  auto at = [](std::int64_t ns) { return system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(std::chrono::nanoseconds(ns))); };
  EXPECT_EQ(format_mounted_time(at(1674117095'000000000)), "2023-01-19 08:31:35.0 +00:00:00");
  EXPECT_EQ(format_mounted_time(at(1674117095'123456000)), "2023-01-19 08:31:35.123456 +00:00:00");
  EXPECT_EQ(format_mounted_time(at(1674117095'123456789)), "2023-01-19 08:31:35.123456789 +00:00:00");
  EXPECT_EQ(format_mounted_time(at(1'500000000)), "1970-01-01 00:00:01.5 +00:00:00");
}

class FuseServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stdfs::create_directories(dir_.file("a"));
    stdfs::create_directories(dir_.file("b"));
    std::ofstream(dir_.file("a/f")) << "from a";
    std::ofstream(dir_.file("b/f")) << "from b";
  }
  TempDir dir_;
  std::vector<std::string> events_;
  std::mutex mu_;
};

TEST_F(FuseServiceTest, MountBookkeepingWithoutFuse) {
  FuseService svc([](std::string) {});
  EXPECT_FALSE(svc.started());
  EXPECT_EQ(svc.fuse_fd(), -1);
  EXPECT_FALSE(svc.inflight_metrics());

  auto none = svc.backend_info("/");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(none.error().message(), "nothing is mounted at /");  // the API's sentence is the daemon's
  EXPECT_EQ(svc.global_metrics(std::nullopt).error().code(), ErrorCode::kNotFound);

  ASSERT_TRUE(svc.mount(passthrough("/snap-1", dir_.file("a"))));
  EXPECT_TRUE(svc.is_mounted("/snap-1"));
  EXPECT_TRUE(svc.is_mounted("//snap-1/"));
  auto dup = svc.mount(passthrough("/snap-1", dir_.file("b")));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(dup.error().message(), "/snap-1 is mounted already");

  MountRequest rafs = passthrough("/r", dir_.file("a"));
  rafs.type = FsType::kRafs;
  auto not_an_image = svc.mount(rafs);  // a directory, and no backend configured
  ASSERT_FALSE(not_an_image);
  EXPECT_EQ(not_an_image.error().message().rfind("RAFS failed to handle request, ", 0), 0u)
      << not_an_image.error().message();
  EXPECT_FALSE(svc.is_mounted("/r"));
  EXPECT_EQ(svc.mount(passthrough("/bad", dir_.file("missing"))).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(svc.mount(passthrough("relative", dir_.file("a"))).error().code(), ErrorCode::kInvalidArgument);

  auto mounts = svc.mounts();
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].mountpoint, "/snap-1");
  EXPECT_EQ(mounts[0].type, FsType::kPassthrough);
  EXPECT_FALSE(mounts[0].config);
  EXPECT_TRUE(std::regex_match(mounts[0].mounted_time,
                               std::regex(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{1,9} \+00:00:00)")))
      << mounts[0].mounted_time;

  auto mismatch = svc.backend_info("/snap-1");
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(mismatch.error().message(), "/snap-1 is a passthrough instance, not RAFS");

  // Metrics registry: one instance answers without id; two need one; umount unregisters (§10 #24).
  auto g = svc.global_metrics(std::nullopt);
  ASSERT_TRUE(g);
  EXPECT_EQ(nlohmann::json::parse(*g)["id"], "/snap-1");
  ASSERT_TRUE(svc.mount(passthrough("/snap-2", dir_.file("b"))));
  EXPECT_EQ(svc.global_metrics(std::nullopt).error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(svc.global_metrics("/snap-2"));
  EXPECT_EQ(svc.global_metrics("/nope").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(*svc.files_metrics("/snap-2", false), "{}");
  EXPECT_EQ(*svc.files_metrics("/snap-2", true), "[]");
  EXPECT_EQ(*svc.access_patterns("/snap-2"), "[]");
  EXPECT_EQ(svc.backend_metrics("/snap-2").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(svc.blobcache_metrics("/snap-2").error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(svc.umount("/snap-1"));
  EXPECT_FALSE(svc.is_mounted("/snap-1"));
  EXPECT_EQ(svc.global_metrics("/snap-1").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(nlohmann::json::parse(*svc.global_metrics(std::nullopt))["id"], "/snap-2");
  EXPECT_EQ(svc.umount("/snap-1").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(svc.remount(passthrough("/snap-1", dir_.file("a"))).error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(svc.remount(passthrough("/snap-2", dir_.file("a"))));
  EXPECT_EQ(svc.mounts().size(), 1u);
}

TEST_F(FuseServiceTest, ServesMountsOverFuse) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount FUSE";
  if (int fd = ::open("/dev/fuse", O_RDWR); fd < 0) {
    GTEST_SKIP() << "cannot open /dev/fuse: " << std::strerror(errno);
  } else {
    ::close(fd);
  }
  std::string mnt = dir_.file("mnt");
  stdfs::create_directories(mnt);
  struct Guard {
    std::string p;
    ~Guard() {
      if (is_mountpoint(p)) ::umount2(p.c_str(), MNT_DETACH);
    }
  } guard{mnt};
  FuseServiceOptions opts;
  opts.before_read = [](fs::Ino) { return 0; };
  FuseService svc(
      [this](std::string e) {
        std::lock_guard lock(mu_);
        events_.push_back(std::move(e));
      },
      opts);
  ASSERT_TRUE(svc.mount(passthrough("/", dir_.file("a"))));  // attached before the session starts
  auto r = svc.start(mnt, 2);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(svc.start(mnt, 2).error().code(), ErrorCode::kAlreadyExists);
  EXPECT_TRUE(svc.started());
  EXPECT_GE(svc.fuse_fd(), 0);
  EXPECT_EQ(read_all(mnt + "/f"), "from a");
  EXPECT_TRUE(svc.initialized());
  struct stat st {};  // readahead raised after INIT (docs/fuse.md "Request sizes")
  ASSERT_EQ(::stat(mnt.c_str(), &st), 0);
  EXPECT_EQ(read_all(fmt::format("/sys/class/bdi/{}:{}/read_ahead_kb", major(st.st_dev), minor(st.st_dev))),
            std::to_string(opts.readahead_kb) + "\n");
  ASSERT_TRUE(svc.mount(passthrough("/snap", dir_.file("b"))));
  EXPECT_EQ(read_all(mnt + "/snap/f"), "from b");
  ASSERT_TRUE(svc.remount(passthrough("/", dir_.file("b"))));
  EXPECT_EQ(read_all(mnt + "/f"), "from b");
  auto g = nlohmann::json::parse(*svc.global_metrics("/snap"));
  EXPECT_EQ(g["data_read"], 6);
  // Idle -> 204 (asynchronous releases may still be finishing).
  EXPECT_TRUE(testutil::eventually([&] { return !svc.inflight_metrics(); }));
  ASSERT_TRUE(svc.umount("/snap"));
  EXPECT_FALSE(stdfs::exists(mnt + "/snap"));
  svc.stop();
  EXPECT_FALSE(svc.started());
  EXPECT_FALSE(is_mountpoint(mnt));
  svc.stop();  // idempotent
}

TEST_F(FuseServiceTest, InflightAndEventsFromASlowFailingSource) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount FUSE";
  if (int fd = ::open("/dev/fuse", O_RDWR); fd < 0) {
    GTEST_SKIP() << "cannot open /dev/fuse: " << std::strerror(errno);
  } else {
    ::close(fd);
  }
  std::string mnt = dir_.file("mnt");
  stdfs::create_directories(mnt);
  struct Guard {
    std::string p;
    ~Guard() {
      if (is_mountpoint(p)) ::umount2(p.c_str(), MNT_DETACH);
    }
  } guard{mnt};
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  FuseServiceOptions opts;
  opts.before_read = [&](fs::Ino) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return go; });
    return EIO;  // then fail: an event for the ring
  };
  FuseService svc(
      [this](std::string e) {
        std::lock_guard lock(mu_);
        events_.push_back(std::move(e));
      },
      opts);
  ASSERT_TRUE(svc.start(mnt, 2));
  ASSERT_TRUE(svc.mount(passthrough("/slow", dir_.file("a"))));
  std::thread reader([&] {
    int fd = ::open((mnt + "/slow/f").c_str(), O_RDONLY | O_DIRECT);
    char buf[8];
    EXPECT_EQ(::pread(fd, buf, sizeof buf, 0), -1);
    ::close(fd);
  });
  std::optional<std::string> inflight;
  testutil::eventually([&] {
    inflight = svc.inflight_metrics();
    return inflight && inflight->find("\"opcode\":15") != std::string::npos;
  });
  {
    std::lock_guard lock(mu);
    go = true;
  }
  cv.notify_all();
  reader.join();
  ASSERT_TRUE(inflight);
  auto j = nlohmann::json::parse(*inflight);
  ASSERT_TRUE(j.is_array());
  bool found = false;
  for (const auto& e : j) {
    ASSERT_FALSE(e.is_null());  // §10 #25
    if (e["opcode"] == 15) found = true;
  }
  EXPECT_TRUE(found) << *inflight;
  EXPECT_TRUE(testutil::eventually([&] { return !svc.inflight_metrics(); }));
  auto g = nlohmann::json::parse(*svc.global_metrics("/slow"));
  EXPECT_EQ(g["fop_errors"][4], 1);
  std::lock_guard lock(mu_);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_NE(events_[0].find("/slow: read inode 2 offset 0 size 8: Input/output error"), std::string::npos) << events_[0];
}

}  // namespace
}  // namespace nydus::daemon
