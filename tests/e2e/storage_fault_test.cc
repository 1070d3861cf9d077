// End-to-end: faults of the host files behind a mount (issue #11 items 1, 2,
// 3, 7, 10) stay inside that mount. nydusd serves RAFS images whose
// bootstrap is truncated under the mount, whose source or blob is a FIFO, or
// which live on the daemon's own mount or on a hung filesystem (a second
// FUSE daemon that is stopped); every other mount keeps working, and SIGTERM
// completes within 5 s (a hang guard, not a latency check).
//
// Needs root and /dev/fuse (SKIP otherwise).
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nydus/storage/builder.h"
#include "util/nydusd_fuse_fixture.h"

namespace nydus::testutil {
namespace {

using Json = nlohmann::json;
namespace stdfs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto kExitGuard = std::chrono::milliseconds(5000);

std::string rafs_config(const std::string& blob_dir, const std::string& work_dir) {
  return Json{{"version", 2},
              {"backend", {{"type", "localfs"}, {"localfs", {{"dir", blob_dir}}}}},
              {"cache", {{"type", "blobcache"}, {"filecache", {{"work_dir", work_dir}}}}},
              {"rafs", {{"mode", "direct"}}}}
      .dump();
}

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(path, ec)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

// Reads `path` on its own thread: {errno of open/read or 0, bytes}. If it
// is still blocked after a generous bound (the daemon is stuck opening
// `fifo`), a writer on the FIFO releases it and the test fails.
std::pair<int, std::string> guarded_read(const std::string& path, const std::string& fifo) {
  auto fut = std::async(std::launch::async, [path]() -> std::pair<int, std::string> {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {errno, ""};
    std::string out(1 << 20, '\0');
    ssize_t n = ::read(fd, out.data(), out.size());
    int err = n < 0 ? errno : 0;
    ::close(fd);
    out.resize(n < 0 ? 0 : std::size_t(n));
    return {err, out};
  });
  if (fut.wait_for(20s) != std::future_status::ready) {
    ADD_FAILURE() << "reading " << path << " blocked: the daemon is stuck opening " << fifo;
    while (fut.wait_for(100ms) != std::future_status::ready) {
      int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (w >= 0) ::close(w);
    }
  }
  return fut.get();
}

class StorageFaultTest : public NydusdFuseFixture {
 protected:
  void SetUp() override {
    NydusdFuseFixture::SetUp();
    if (IsSkipped()) return;
    src_ = dir_.file("src");
    blobs_ = dir_.file("blobs");
    work_ = dir_.file("work");
    for (const auto& d : {src_ + "/sub", blobs_, work_}) stdfs::create_directories(d);
    std::ofstream(src_ + "/a.txt") << "first file\n";
    std::ofstream(src_ + "/sub/b.txt") << "second file\n";
    boot_ = dir_.file("img.boot");
    auto built = storage::build_image_files(src_, {}, boot_, blobs_);
    ASSERT_TRUE(built) << built.error().message();
    blob_id_ = built->blob_id;
  }

  HttpReply mount_rafs(const std::string& mp, const std::string& boot, const std::string& config) {
    return call("POST", "/api/v1/mount?mountpoint=" + mp,
                Json{{"source", boot}, {"fs_type", "rafs"}, {"config", config}}.dump());
  }
  HttpReply mount_passthrough(const std::string& mp, const std::string& dir) {
    return call("POST", "/api/v1/mount?mountpoint=" + mp,
                Json{{"source", dir}, {"fs_type", "passthrough_fs"}, {"config", ""}}.dump());
  }
  static std::string message(const HttpReply& r) {
    auto j = Json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("message") ? j["message"].get<std::string>() : r.body;
  }
  // The daemon still answers and serves a healthy instance.
  void expect_healthy(const std::string& mp) {
    EXPECT_EQ(call("GET", "/api/v1/daemon").status, 200u);
    EXPECT_EQ(slurp(mnt_ + mp + "/a.txt"), "first file\n");
  }
  void expect_sigterm_exits() {
    daemon_->signal(SIGTERM);
    auto st = daemon_->wait_exit(kExitGuard);
    ASSERT_TRUE(st) << "SIGTERM did not complete within 5 s\n" << daemon_->log();
    EXPECT_FALSE(is_mounted(mnt_));
  }

  std::string src_, blobs_, work_, boot_, blob_id_;
};

// Item 1: the bootstrap was mmapped; truncating it (or `cp new.boot
// img.boot`) made the next listing SIGBUS the whole daemon.
TEST_F(StorageFaultTest, TruncatedBootstrapNeverKillsTheDaemon) {
  start();
  std::string other = dir_.file("other.boot");
  stdfs::copy_file(boot_, other);
  ASSERT_EQ(mount_rafs("/img", boot_, rafs_config(blobs_, work_)).status, 204u);
  ASSERT_EQ(mount_rafs("/other", other, rafs_config(blobs_, work_)).status, 204u);
  ASSERT_EQ(::truncate(boot_.c_str(), 0), 0);
  // Never looked up before: these go to the daemon, which serves its copy.
  EXPECT_EQ(list_dir(mnt_ + "/img/sub"), std::vector<std::string>{"b.txt"});
  EXPECT_EQ(slurp(mnt_ + "/img/sub/b.txt"), "second file\n");
  std::ofstream(boot_, std::ios::binary | std::ios::trunc) << std::string(4096, 'x');
  EXPECT_EQ(slurp(mnt_ + "/img/a.txt"), "first file\n");
  expect_healthy("/other");
  // A remount reads the file again, and refuses what it now holds.
  EXPECT_EQ(call("PUT", "/api/v1/mount?mountpoint=/img",
                 Json{{"source", boot_}, {"fs_type", "rafs"}, {"config", rafs_config(blobs_, work_)}}.dump())
                .status,
            500u);
  expect_sigterm_exits();
}

// Item 2: open() of a FIFO source blocked the worker that serialises mounts.
TEST_F(StorageFaultTest, FifoSourceIsRefusedAndMountsGoOn) {
  start();
  std::string fifo = dir_.file("fifo.boot");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto fut = std::async(std::launch::async, [&] { return mount_rafs("/fifo", fifo, rafs_config(blobs_, work_)); });
  if (fut.wait_for(20s) != std::future_status::ready) {
    ADD_FAILURE() << "mount of a FIFO source blocked";
    while (fut.wait_for(100ms) != std::future_status::ready) {
      int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (w >= 0) ::close(w);
    }
  }
  auto r = fut.get();
  EXPECT_EQ(r.status, 500u) << r.body;
  EXPECT_NE(message(r).find("RAFS failed to handle request, "), std::string::npos) << r.body;
  EXPECT_NE(message(r).find("not a regular file"), std::string::npos) << r.body;
  ASSERT_EQ(mount_rafs("/img", boot_, rafs_config(blobs_, work_)).status, 204u);
  expect_healthy("/img");
  expect_sigterm_exits();
}

// The thread of `pid` blocked in a file-name system call (stat/open), if any.
bool has_thread_in_path_syscall(pid_t pid) {
  const long calls[] = {
#ifdef SYS_stat
      SYS_stat,
#endif
#ifdef SYS_open
      SYS_open,
#endif
      SYS_openat, SYS_newfstatat, SYS_statx};
  std::error_code ec;
  for (const auto& t : stdfs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    long nr = -1;
    std::ifstream(t.path() / "syscall") >> nr;
    for (long c : calls) {
      if (nr == c) return true;
    }
  }
  return false;
}

std::string threads_of(pid_t pid) {
  std::string out;
  std::error_code ec;
  for (const auto& t : stdfs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::string sc, wchan;
    std::getline(std::ifstream(t.path() / "syscall"), sc);
    std::getline(std::ifstream(t.path() / "wchan"), wchan);
    out += t.path().filename().string() + ": " + sc + " [" + wchan + "]\n";
  }
  return out;
}

// The "state" of GET /api/v1/daemon on `sock`, or "" if there is no answer.
std::string daemon_state(const std::string& sock) {
  auto c = RawClient::connect(sock);
  if (!c || !c->send("GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\n\r\n")) return "";
  auto reply = c->read_reply();
  if (!reply || reply->status != 200) return "";
  auto info = Json::parse(reply->body, nullptr, false);
  return info.is_object() && info.contains("state") && info["state"].is_string() ? info["state"].get<std::string>() : "";
}

// Item 2: a source on a hung filesystem (here a second FUSE daemon that is
// stopped) blocks the mount worker in the kernel. SIGTERM must still
// complete: the stuck request is abandoned after a bounded wait.
TEST_F(StorageFaultTest, SigtermCompletesWhileAMountIsStuckInTheKernel) {
  start();
  std::string hung_mnt = dir_.file("hung-mnt");
  stdfs::create_directories(hung_mnt);
  std::string hung_dir = dir_.file("hung-src");
  stdfs::create_directories(hung_dir);
  stdfs::copy_file(boot_, hung_dir + "/img.boot");
  DaemonProcess hung({"--apisock", dir_.file("hung.sock"), "--mountpoint", hung_mnt, "--shared-dir", hung_dir},
                     dir_.file("hung.log"));
  struct Cleanup {
    DaemonProcess& d;
    std::string mnt;
    ~Cleanup() {
      d.signal(SIGCONT);
      d.signal(SIGKILL);
      d.wait_exit();
      if (is_mounted(mnt)) ::umount2(mnt.c_str(), MNT_DETACH);
    }
  } cleanup{hung, hung_mnt};
  ASSERT_TRUE(hung.wait_for_socket(dir_.file("hung.sock"))) << hung.log();
  // RUNNING, not merely listed in /proc/mounts: until then a thread of that
  // daemon may sit in a request to its own mount (the stat that waits for
  // FUSE_INIT), a wait that SIGSTOP cannot interrupt, and the group stop
  // below would never complete.
  ASSERT_TRUE(eventually([&] { return daemon_state(dir_.file("hung.sock")) == "RUNNING"; })) << hung.log();
  hung.signal(SIGSTOP);
  // kill() returns before every thread has stopped: wait for the group stop.
  int status = 0;
  ASSERT_TRUE(eventually([&] { return ::waitpid(hung.pid(), &status, WUNTRACED | WNOHANG) == hung.pid(); }))
      << "the second daemon never stopped\n" << threads_of(hung.pid()) << hung.log();
  ASSERT_TRUE(WIFSTOPPED(status));

  auto client = RawClient::connect(sock_);
  ASSERT_TRUE(client) << client.error().message();
  std::string body = Json{{"source", hung_mnt + "/img.boot"}, {"fs_type", "rafs"},
                          {"config", rafs_config(blobs_, work_)}}
                         .dump();
  ASSERT_TRUE(client->send("POST /api/v1/mount?mountpoint=/stuck HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body));
  // The worker reaches the stopped filesystem; the guard only ends a hang.
  ASSERT_TRUE(eventually([&] { return has_thread_in_path_syscall(daemon_->pid()); })) << "the mount never reached the stopped filesystem\n" << threads_of(daemon_->pid()) << daemon_->log();
  expect_sigterm_exits();
  EXPECT_NE(daemon_->log().find("stuck"), std::string::npos) << daemon_->log();
}

// Item 3: a FIFO blob was opened blocking, under the backend's lock, in a
// FUSE worker: the read hung and SIGTERM with it.
TEST_F(StorageFaultTest, FifoBlobIsEioAndTheRestKeepsWorking) {
  start();
  std::string fifo_blobs = dir_.file("fifo-blobs");
  stdfs::create_directories(fifo_blobs);
  std::string fifo = fifo_blobs + "/" + blob_id_;
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string work2 = dir_.file("work2");
  stdfs::create_directories(work2);
  ASSERT_EQ(mount_rafs("/fifo", boot_, rafs_config(fifo_blobs, work2)).status, 204u);
  ASSERT_EQ(mount_rafs("/img", boot_, rafs_config(blobs_, work_)).status, 204u);
  auto [err, data] = guarded_read(mnt_ + "/fifo/a.txt", fifo);
  EXPECT_EQ(err, EIO) << data;
  auto ev = Json::parse(call("GET", "/api/v1/daemon/events").body);
  EXPECT_NE(ev.dump().find("not a regular file"), std::string::npos) << ev.dump();
  EXPECT_EQ(list_dir(mnt_), (std::vector<std::string>{"fifo", "img"}));
  expect_healthy("/img");
  expect_sigterm_exits();
}

// Items 3 and 7: `<id>.blob.meta` in work_dir that is a FIFO (blocked open)
// or a 3 GiB sparse file (read whole before its size was checked) is
// ignored: the chunk-info array comes from the blob and replaces it.
TEST_F(StorageFaultTest, FifoOrOversizedBlobMetaIsReplaced) {
  start();
  std::string fifo_work = dir_.file("fifo-work"), big_work = dir_.file("big-work");
  for (const auto& d : {fifo_work, big_work}) stdfs::create_directories(d);
  std::string fifo = fifo_work + "/" + blob_id_ + ".blob.meta";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string big = big_work + "/" + blob_id_ + ".blob.meta";
  {
    std::ofstream(big).close();
    ASSERT_EQ(::truncate(big.c_str(), off_t(3) << 30), 0);
  }
  ASSERT_EQ(mount_rafs("/f", boot_, rafs_config(blobs_, fifo_work)).status, 204u);
  ASSERT_EQ(mount_rafs("/g", boot_, rafs_config(blobs_, big_work)).status, 204u);
  auto f = guarded_read(mnt_ + "/f/a.txt", fifo);
  EXPECT_EQ(f.first, 0);
  EXPECT_EQ(f.second, "first file\n");
  EXPECT_EQ(slurp(mnt_ + "/g/a.txt"), "first file\n");
  for (const auto& meta : {fifo, big}) {
    struct stat st {};
    ASSERT_EQ(::stat(meta.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode)) << meta;
    EXPECT_LT(st.st_size, 1 << 20) << meta;
  }
  expect_sigterm_exits();
}

// Item 10: a bootstrap, blob directory or passthrough source on the daemon's
// own mount would be read by its FUSE workers through themselves (with one
// worker, at once a deadlock).
TEST_F(StorageFaultTest, SourcesOnTheDaemonsOwnMountAreRefused) {
  stdfs::copy_file(boot_, src_ + "/img.boot");
  stdfs::copy(blobs_, src_ + "/blobs");
  start({"--shared-dir", src_, "--thread-num", "1"});
  auto own_boot = mount_rafs("/x/boot", mnt_ + "/img.boot", rafs_config(blobs_, work_));
  EXPECT_EQ(own_boot.status, 500u) << own_boot.body;
  EXPECT_NE(message(own_boot).find("RAFS failed to handle request, "), std::string::npos) << own_boot.body;
  EXPECT_NE(message(own_boot).find("own mount"), std::string::npos) << own_boot.body;
  auto own_blobs = mount_rafs("/x/blobs", boot_, rafs_config(mnt_ + "/blobs", work_));
  EXPECT_EQ(own_blobs.status, 500u) << own_blobs.body;
  EXPECT_NE(message(own_blobs).find("own mount"), std::string::npos) << own_blobs.body;
  auto own_pt = mount_passthrough("/x/pt", mnt_ + "/sub");
  EXPECT_EQ(own_pt.status, 500u) << own_pt.body;
  EXPECT_NE(message(own_pt).find("own mount"), std::string::npos) << own_pt.body;
  // A symlink elsewhere that leads into the mount is the same file.
  std::string link = dir_.file("link.boot");
  stdfs::create_symlink(mnt_ + "/img.boot", link);
  EXPECT_EQ(mount_rafs("/x/link", link, rafs_config(blobs_, work_)).status, 500u);
  auto info = Json::parse(call("GET", "/api/v1/daemon").body);
  EXPECT_EQ(info["backend_collection"].size(), 1u) << info.dump();
  ASSERT_EQ(mount_rafs("/img", boot_, rafs_config(blobs_, work_)).status, 204u);
  expect_healthy("/img");
  expect_sigterm_exits();
}

}  // namespace
}  // namespace nydus::testutil
