// End-to-end live upgrade and failover (contract §6.6 B and C, docs/upgrade.md)
// with real nydusd processes and the test playing the snapshotter: its own
// supervisor stores what sendfd saves and serves it to the successor's
// takeover, while reader threads keep reading and verifying files through
// the mount.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <iostream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/fuse_connection.h"
#include "util/nydusd_fuse_fixture.h"
#include "util/registry_server.h"
#include "util/test_supervisor.h"
#include "util/verifying_readers.h"

namespace nydus::testutil {
namespace {

using Json = nlohmann::json;

const std::string kFixture = std::string(NYDUS_SOURCE_DIR) + "/../shared/fixtures/rafs-v6";
const std::vector<std::string> kFiles = {"lib.rs", "sync_io.rs"};

std::string rafs_config() {
  return Json{{"version", 2},
              {"backend", {{"type", "localfs"}, {"localfs", {{"dir", kFixture + "/blobs"}}}}},
              {"cache", {{"type", "blobcache"}, {"filecache", {{"work_dir", "/nonexistent-cache"}}}}},
              {"rafs", {{"mode", "direct"}, {"validate", true}}}}
      .dump();
}

using Readers = VerifyingReaders;

class UpgradeTest : public NydusdFuseFixture {
 protected:
  void SetUp() override {
    NydusdFuseFixture::SetUp();
    if (IsSkipped()) return;
    if (::access((kFixture + "/rafs-v6-2.2.boot").c_str(), R_OK) != 0) GTEST_SKIP() << "sample image absent: " << kFixture;
    sup_ = dir_.file("sup.sock");
    sock2_ = dir_.file("api2.sock");
  }
  void TearDown() override {
    // A failed run may leave readers waiting on a connection nobody serves:
    // abort it (when fusectl is mounted) so they return.
    if (HasFailure()) abort_connection();
    next_.reset();
    served_.reset();
    if (fuse_fd_ >= 0) ::close(fuse_fd_);
    NydusdFuseFixture::TearDown();
  }

  // The first daemon with the RAFS image at /r; its files and their content.
  std::vector<std::pair<std::string, std::string>> start_first() {
    start({"--id", "d1", "--supervisor", sup_, "--thread-num", "4"});
    conn_ = fuse_connection_id(mnt_);
    std::string body = Json{{"source", kFixture + "/rafs-v6-2.2.boot"}, {"fs_type", "rafs"}, {"config", rafs_config()}}.dump();
    auto r = call("POST", "/api/v1/mount?mountpoint=%2Fr", body);
    EXPECT_EQ(r.status, 204u) << r.body;
    mount_body_ = body;
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& f : kFiles) files.emplace_back(mnt_ + "/r/" + f, slurp(mnt_ + "/r/" + f));
    return files;
  }

  // §6.6 A: sendfd while the supervisor stores; keeps the state and a descriptor.
  void save_state(const std::string& sock = "") {
    served_.reset();  // it listens on the same path
    TestSupervisor store(sup_, TestSupervisor::Mode::kStore);
    auto r = call_at(sock.empty() ? sock_ : sock, "PUT", "/api/v1/daemon/fuse/sendfd");
    ASSERT_EQ(r.status, 204u) << r.body;
    store.wait_done();
    ASSERT_EQ(store.fds().size(), 1u);
    state_ = store.bytes();
    if (fuse_fd_ >= 0) ::close(fuse_fd_);
    fuse_fd_ = ::fcntl(store.fds()[0], F_DUPFD_CLOEXEC, 0);
    ASSERT_GE(fuse_fd_, 0);
  }

  // §6.6 B.1/C.1: the supervisor serves the stored state; then the new daemon.
  void start_next(const std::string& sock, std::vector<std::string> extra) {
    served_ = std::make_unique<TestSupervisor>(sup_, TestSupervisor::Mode::kServe, state_, fuse_fd_);
    std::vector<std::string> args = {"--apisock", sock, "--mountpoint", mnt_, "--id", "d1", "--supervisor", sup_};
    args.insert(args.end(), extra.begin(), extra.end());
    next_ = std::make_unique<DaemonProcess>(args, dir_.file("nydusd2.log"));
    ASSERT_TRUE(next_->wait_for_socket(sock)) << next_->log();
    ASSERT_TRUE(wait_state(sock, "INIT")) << next_->log();
  }

  // Descriptors of this process, but the readers' files (opened and closed all the time).
  std::vector<std::string> open_fds() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      std::string target = std::filesystem::read_symlink(e.path(), ec).string();
      // Skipped: closed meanwhile, or a reader's file.
      if (!ec && target.rfind(mnt_, 0) != 0) out.push_back(e.path().filename().string() + " " + target);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // Children of this process that exited and were not reaped.
  static std::size_t zombie_children() {
    std::size_t n = 0;
    const std::string me = std::to_string(::getpid());
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      std::ifstream in(e.path() / "status");
      std::string line, state, ppid;
      while (std::getline(in, line)) {
        if (line.rfind("State:", 0) == 0) state = line;
        if (line.rfind("PPid:", 0) == 0) ppid = line.substr(line.find_first_not_of(" \t", 5));
      }
      if (ppid == me && state.find('Z') != std::string::npos) ++n;
    }
    return n;
  }

  // Ends the FUSE connection through fusectl (mounted if it is not).
  void abort_connection() const { abort_fuse_connection(conn_); }

  std::string fmt_conn(const char* file) const { return fuse_connection_file(conn_, file); }

  std::string sup_, sock2_, mount_body_;
  std::uint64_t conn_ = 0;
  std::vector<std::uint8_t> state_;
  int fuse_fd_ = -1;
  std::unique_ptr<TestSupervisor> served_;
  std::unique_ptr<DaemonProcess> next_;
};

// §6.6 C under load: 8 readers, none fails or hangs; an fd opened before
// keeps reading, inode numbers stay, the listing is whole, info lists the
// mount, and the snapshotter's re-issued mount succeeds without change.
TEST_F(UpgradeTest, HotUpgradeUnderLoadLosesNoRead) {
  auto files = start_first();
  ASSERT_FALSE(files.empty());
  ASSERT_EQ(files[0].second.size(), 16931u);
  struct stat before {};
  ASSERT_EQ(::stat(files[0].first.c_str(), &before), 0);
  int held = ::open(files[1].first.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(held, 0);
  Readers readers(files, 8, [this] { abort_connection(); });
  ASSERT_TRUE(readers.progress(20)) << readers.first_failure();
  save_state();
  start_next(sock2_, {"--upgrade", "--thread-num", "4"});
  auto t = call_at(sock2_, "PUT", "/api/v1/daemon/fuse/takeover");
  ASSERT_EQ(t.status, 204u) << t.body << next_->log();
  ASSERT_TRUE(wait_state(sock2_, "READY"));
  ASSERT_TRUE(readers.progress(20)) << readers.first_failure();  // the old daemon still serves
  ASSERT_EQ(call("PUT", "/api/v1/daemon/exit").status, 204u);
  EXPECT_EQ(daemon_->wait_exit(), 0) << daemon_->log();
  auto s = call_at(sock2_, "PUT", "/api/v1/daemon/start");
  ASSERT_EQ(s.status, 204u) << s.body << next_->log();
  ASSERT_TRUE(wait_state(sock2_, "RUNNING")) << next_->log();
  ASSERT_TRUE(readers.progress(20)) << readers.first_failure();
  EXPECT_TRUE(readers.stop()) << "a read hung";
  EXPECT_EQ(readers.failures(), 0u) << readers.first_failure() << next_->log();

  std::string rest(files[1].second.size(), '\0');
  EXPECT_EQ(::pread(held, rest.data(), rest.size(), 0), static_cast<ssize_t>(rest.size())) << std::strerror(errno);
  EXPECT_EQ(rest, files[1].second);
  ::close(held);
  struct stat after {};
  ASSERT_EQ(::stat(files[0].first.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  std::set<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(mnt_ + "/r")) names.insert(e.path().filename());
  EXPECT_EQ(names, (std::set<std::string>{"lib.rs", "sync_io.rs"}));
  auto info = Json::parse(call_at(sock2_, "GET", "/api/v1/daemon").body);
  EXPECT_EQ(info["backend_collection"]["/r"]["backend_type"], "Rafs") << info.dump();
  // §6.6 C.8: the re-issued identical mount is kept as restored.
  EXPECT_EQ(call_at(sock2_, "POST", "/api/v1/mount?mountpoint=%2Fr", mount_body_).status, 204u);
  auto events = call_at(sock2_, "GET", "/api/v1/daemon/events").body;
  EXPECT_NE(events.find("state restored from supervisor"), std::string::npos) << events;
  // A graceful stop of the successor unmounts what it inherited (libfuse does not know the mountpoint).
  next_->signal(SIGTERM);
  EXPECT_EQ(next_->wait_exit(), 0) << next_->log();
  EXPECT_FALSE(is_mounted(mnt_));
}

// §6.6 B: the daemon is killed (-9) under load; a new one started with the
// same arguments detects the failover (§6.4), takes over the supervisor's
// last state, and with --failover-policy resend the requests the dead daemon
// had read are answered too: no reader fails or hangs.
TEST_F(UpgradeTest, FailoverAfterKill9WithResendLosesNoRead) {
  auto files = start_first();
  ASSERT_FALSE(files.empty());
  struct stat before {};
  ASSERT_EQ(::stat(files[0].first.c_str(), &before), 0);
  save_state();
  Readers readers(files, 8, [this] { abort_connection(); });
  ASSERT_TRUE(readers.progress(20)) << readers.first_failure();
  readers.take_longest_gap();
  daemon_->signal(SIGKILL);
  EXPECT_EQ(daemon_->wait_exit(), 128 + SIGKILL);
  start_next(sock_, {"--thread-num", "4", "--failover-policy", "resend"});  // no --upgrade: detected
  auto t = call_at(sock_, "PUT", "/api/v1/daemon/fuse/takeover");
  ASSERT_EQ(t.status, 204u) << t.body << next_->log();
  auto s = call_at(sock_, "PUT", "/api/v1/daemon/start");
  ASSERT_EQ(s.status, 204u) << s.body << next_->log();
  ASSERT_TRUE(wait_state(sock_, "RUNNING")) << next_->log();
  ASSERT_TRUE(readers.progress(20)) << readers.first_failure() << next_->log();
  std::cout << "failover read pause (kill -9 to reads answered again): "
            << readers.take_longest_gap().count() / 1000.0 << " ms\n";  // reported, not checked
  EXPECT_TRUE(readers.stop()) << "a read hung";
  EXPECT_EQ(readers.failures(), 0u) << readers.first_failure() << next_->log();
  struct stat after {};
  ASSERT_EQ(::stat(files[0].first.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_NE(next_->log().find("failover: "), std::string::npos) << next_->log();
  auto info = Json::parse(call_at(sock_, "GET", "/api/v1/daemon").body);
  EXPECT_EQ(info["backend_collection"]["/r"]["backend_type"], "Rafs") << info.dump();
}

// What a daemon holds once RUNNING under load: its descriptors and its
// resident memory. Left out of `fds`: its accepted API connections (the
// test's last request may still be open on the daemon's side), and counted
// apart: the image's blob files (a blob is opened on the first read that
// reaches the daemon, and whether one does depends on what the kernel has
// cached) and descriptors into the passthrough sources (beside each source's
// own, a reader's open file and a lookup in progress each hold one for as
// long as the kernel keeps the file open or the request runs, which the test
// cannot know). Node table files stay in `fds` and are counted as well.
struct DaemonUsage {
  std::vector<std::string> fds;  // "<fd> <target>", sorted
  std::size_t blob_fds = 0;
  std::size_t source_fds = 0;  // into a passthrough source
  std::size_t node_tables = 0;
  std::uint64_t rss_kib = 0;
};

DaemonUsage daemon_usage(pid_t pid, const std::string& api_sock, const std::vector<std::string>& sources = {}) {
  // /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path"; an
  // accepted connection carries its listener's path, the listener has
  // __SO_ACCEPTCON (00010000) in Flags.
  std::set<std::string> api_conns;
  std::ifstream unix_socks("/proc/net/unix");
  for (std::string line; std::getline(unix_socks, line);) {
    std::istringstream in(line);
    std::string num, refs, proto, flags, type, st, inode, path;
    if (in >> num >> refs >> proto >> flags >> type >> st >> inode >> path && path == api_sock && flags != "00010000") {
      api_conns.insert("socket:[" + inode + "]");
    }
  }
  std::vector<std::string> roots;
  for (const auto& s : sources) roots.push_back(std::filesystem::weakly_canonical(s).string());
  auto in_source = [&](const std::string& target) {
    return std::any_of(roots.begin(), roots.end(), [&](const std::string& r) {
      return target.rfind(r, 0) == 0 && (target.size() == r.size() || target[r.size()] == '/');
    });
  };
  DaemonUsage u;
  std::error_code ec;
  const std::string blobs = std::filesystem::weakly_canonical(kFixture + "/blobs").string() + "/";
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code lec;
    std::string target = std::filesystem::read_symlink(it->path(), lec).string();
    if (lec) continue;  // closed meanwhile: a transient one, whatever it was
    if (target.rfind(blobs, 0) == 0) {
      ++u.blob_fds;
    } else if (in_source(target)) {
      ++u.source_fds;
    } else if (!api_conns.count(target)) {
      u.node_tables += std::filesystem::path(target).extension() == ".nodes";
      u.fds.push_back(it->path().filename().string() + " " + target);
    }
  }
  std::sort(u.fds.begin(), u.fds.end());
  u.rss_kib = status_kib(pid, "VmRSS");
  return u;
}

std::uint64_t median_rss(std::vector<DaemonUsage>::const_iterator from, std::vector<DaemonUsage>::const_iterator to) {
  std::vector<std::uint64_t> v;
  for (auto it = from; it != to; ++it) v.push_back(it->rss_kib);
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// §6.6 B with a request held by the daemon when it dies: the registry hangs
// the first blob read, so a worker is inside a READ when kill -9 comes. Only
// FUSE_NOTIFY_RESEND brings that request to the successor; without it the
// reader would wait forever.
TEST_F(UpgradeTest, FailoverResendsTheRequestTheKilledDaemonHeld) {
  auto files = start_first();  // /r (localfs) gives the expected content
  ASSERT_FALSE(files.empty());
  FakeRegistry fake(dir_.path(), kFixture + "/blobs", {"--repo", "library/t"});
  if (!fake.skip_reason().empty()) GTEST_SKIP() << fake.skip_reason();
  ASSERT_TRUE(fake.up()) << fake.log();
  std::string work = dir_.file("cache");
  std::filesystem::create_directories(work);
  Json cfg = {{"device",
               {{"backend",
                 {{"type", "registry"},
                  {"config",
                   {{"scheme", "http"}, {"host", fake.host()}, {"repo", "library/t"}, {"timeout", 60},
                    {"connect_timeout", 5}, {"retry_limit", 0}}}}},
                {"cache", {{"type", "blobcache"}, {"config", {{"work_dir", work}}}}}}},
              {"mode", "direct"}};
  std::string body = Json{{"source", kFixture + "/rafs-v6-2.2.boot"}, {"fs_type", "rafs"}, {"config", cfg.dump()}}.dump();
  auto m = call("POST", "/api/v1/mount?mountpoint=%2Fg", body);
  ASSERT_EQ(m.status, 204u) << m.body;
  save_state();
  fake.control({{"faults", {"hang"}}});
  std::vector<std::pair<std::string, std::string>> remote;
  for (std::size_t i = 0; i < files.size(); ++i) remote.emplace_back(mnt_ + "/g/" + kFiles[i], files[i].second);
  Readers readers(remote, 8, [this] { abort_connection(); });
  ASSERT_TRUE(eventually([&] { return fake.stats().value("blob_gets", 0) >= 1; })) << fake.log();
  daemon_->signal(SIGKILL);  // a worker is waiting for the hung blob read
  EXPECT_EQ(daemon_->wait_exit(), 128 + SIGKILL);
  start_next(sock_, {"--thread-num", "4", "--failover-policy", "resend"});
  ASSERT_EQ(call_at(sock_, "PUT", "/api/v1/daemon/fuse/takeover").status, 204u) << next_->log();
  ASSERT_EQ(call_at(sock_, "PUT", "/api/v1/daemon/start").status, 204u) << next_->log();
  ASSERT_TRUE(readers.progress(5)) << readers.first_failure() << next_->log();
  EXPECT_TRUE(readers.stop()) << "a read hung" << next_->log();
  EXPECT_EQ(readers.failures(), 0u) << readers.first_failure() << next_->log();
}


// Passthrough mounts beside the RAFS one (issue #15): two host directories at
// nested mountpoints /pt/src and /pt/other, attached after /r, so that a
// restore in mountpoint order would renumber the pseudo directory /pt.
class PassthroughUpgradeTest : public UpgradeTest {
 protected:
  // The RAFS files of start_first() and the passthrough files, with their content.
  std::vector<std::pair<std::string, std::string>> start_with_passthrough() {
    auto files = start_first();
    const std::string src = sources()[0], other = sources()[1];
    std::filesystem::create_directories(src + "/sub");
    std::filesystem::create_directories(other);
    const std::vector<std::pair<std::string, std::size_t>> made = {{"a.txt", 40000}, {"b.bin", 200000}, {"sub/c.txt", 777}};
    for (const auto& [name, size] : made) {
      std::string data(size, '\0');
      for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>('a' + (i * 7 + name.size()) % 26);
      std::ofstream(src + "/" + name, std::ios::binary) << data;
      files.emplace_back(mnt_ + "/pt/src/" + name, data);
    }
    std::ofstream(other + "/o.txt") << "other";
    for (const auto& [mp, dir] : {std::pair{"%2Fpt%2Fsrc", src}, std::pair{"%2Fpt%2Fother", other}}) {
      std::string body = Json{{"source", dir}, {"fs_type", "passthrough_fs"}, {"config", ""}}.dump();
      auto r = call("POST", std::string("/api/v1/mount?mountpoint=") + mp, body);
      EXPECT_EQ(r.status, 204u) << r.body;
    }
    // Before the kernel has touched a passthrough file: what the instances
    // hold of their sources at rest.
    idle_source_fds_ = daemon_usage(daemon_->pid(), sock_, sources()).source_fds;
    for (std::size_t i = kFiles.size(); i < files.size(); ++i) EXPECT_EQ(slurp(files[i].first), files[i].second);
    return files;
  }
  // The host directories mounted at /pt/src and /pt/other.
  std::vector<std::string> sources() const { return {dir_.file("ptsrc"), dir_.file("ptother")}; }
  static ino_t ino_of(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  }
  static std::set<std::string> names_in(const std::string& dir) {
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) names.insert(e.path().filename());
    return names;
  }
  // What the kernel holds across the handover keeps working in the successor `sock`.
  void expect_kept(const std::string& sock, int held, const std::string& want, int pt_dir,
                   const std::map<std::string, ino_t>& inos, const std::set<std::string>& src_names) {
    std::string got(want.size(), '\0');
    EXPECT_EQ(::pread(held, got.data(), got.size(), 0), static_cast<ssize_t>(got.size())) << std::strerror(errno);
    EXPECT_EQ(got, want);
    for (const auto& [path, ino] : inos) EXPECT_EQ(ino_of(path), ino) << path;
    // A name never looked up below the pseudo directory the kernel holds: the
    // lookup reaches the successor with the predecessor's id of /pt.
    struct stat st {};
    EXPECT_EQ(::fstatat(pt_dir, "other/o.txt", &st, 0), 0) << std::strerror(errno);
    EXPECT_EQ(names_in(mnt_ + "/pt"), (std::set<std::string>{"other", "src"}));
    EXPECT_EQ(names_in(mnt_ + "/pt/src"), src_names);
    EXPECT_EQ(names_in(mnt_ + "/pt/src/sub"), (std::set<std::string>{"c.txt"}));
    auto info = Json::parse(call_at(sock, "GET", "/api/v1/daemon").body);
    EXPECT_EQ(info["backend_collection"]["/pt/src"]["backend_type"], "PassthroughFs") << info.dump();
  }
  // Node table files of this daemon id: one per passthrough instance.
  std::size_t node_table_files() const {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_.file("nydusd-d1-state"))) n += e.path().extension() == ".nodes";
    return n;
  }

  std::size_t idle_source_fds_ = 0;
};

// §6.6 C with passthrough mounts: readers of both kinds lose nothing; a
// passthrough fd opened before the handover reads after it; st_ino (files
// and the pseudo directory) and listings are unchanged.
TEST_F(PassthroughUpgradeTest, HotUpgradeKeepsPassthroughIdsAndOpenFiles) {
  auto files = start_with_passthrough();
  ASSERT_EQ(files.size(), kFiles.size() + 3);
  const std::string& held_path = files[kFiles.size() + 1].first;
  int held = ::open(held_path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(held, 0);
  int pt_dir = ::open((mnt_ + "/pt").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(pt_dir, 0);
  std::map<std::string, ino_t> inos;
  for (const auto& p : {files[kFiles.size()].first, files.back().first, mnt_ + "/pt", mnt_ + "/pt/src/sub"}) inos[p] = ino_of(p);
  Readers readers(files, 8, [this] { abort_connection(); });
  ASSERT_TRUE(readers.progress(20)) << readers.first_failure();
  save_state();
  start_next(sock2_, {"--upgrade", "--thread-num", "4"});
  auto t = call_at(sock2_, "PUT", "/api/v1/daemon/fuse/takeover");
  ASSERT_EQ(t.status, 204u) << t.body << next_->log();
  ASSERT_TRUE(readers.progress(20)) << readers.first_failure();  // the old daemon still serves
  ASSERT_EQ(call("PUT", "/api/v1/daemon/exit").status, 204u);
  EXPECT_EQ(daemon_->wait_exit(), 0) << daemon_->log();
  ASSERT_EQ(call_at(sock2_, "PUT", "/api/v1/daemon/start").status, 204u) << next_->log();
  ASSERT_TRUE(wait_state(sock2_, "RUNNING")) << next_->log();
  ASSERT_TRUE(readers.progress(20)) << readers.first_failure() << next_->log();
  EXPECT_TRUE(readers.stop()) << "a read hung";
  EXPECT_EQ(readers.failures(), 0u) << readers.first_failure() << next_->log();
  expect_kept(sock2_, held, files[kFiles.size() + 1].second, pt_dir, inos, {"a.txt", "b.bin", "sub"});
  ::close(held);
  ::close(pt_dir);
  // One node table per passthrough mount, beside the API sockets; a graceful
  // stop (unmount) removes them: no successor will need them.
  EXPECT_EQ(node_table_files(), 2u);
  next_->signal(SIGTERM);
  EXPECT_EQ(next_->wait_exit(), 0) << next_->log();
  EXPECT_EQ(node_table_files(), 0u);
}

// §6.6 B with passthrough mounts: kill -9 under load, after lookups and an
// open that happened after the last sendfd (the saved state predates them):
// the successor resolves those ids from the node table file alone.
TEST_F(PassthroughUpgradeTest, FailoverAfterKill9KeepsPassthroughIdsAndOpenFiles) {
  auto files = start_with_passthrough();
  ASSERT_EQ(files.size(), kFiles.size() + 3);
  save_state();
  // Looked up and opened only now: ids and a handle the saved state knows nothing of.
  const std::string late = dir_.file("ptsrc/late.txt");
  std::ofstream(late) << "late file";
  int held = ::open((mnt_ + "/pt/src/late.txt").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(held, 0);
  int pt_dir = ::open((mnt_ + "/pt").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(pt_dir, 0);
  std::map<std::string, ino_t> inos;
  for (const auto& p : {files[kFiles.size()].first, files.back().first, mnt_ + "/pt/src/late.txt"}) inos[p] = ino_of(p);
  Readers readers(files, 8, [this] { abort_connection(); });
  ASSERT_TRUE(readers.progress(20)) << readers.first_failure();
  daemon_->signal(SIGKILL);
  EXPECT_EQ(daemon_->wait_exit(), 128 + SIGKILL);
  start_next(sock_, {"--thread-num", "4", "--failover-policy", "resend"});  // no --upgrade: detected
  auto t = call_at(sock_, "PUT", "/api/v1/daemon/fuse/takeover");
  ASSERT_EQ(t.status, 204u) << t.body << next_->log();
  ASSERT_EQ(call_at(sock_, "PUT", "/api/v1/daemon/start").status, 204u) << next_->log();
  ASSERT_TRUE(wait_state(sock_, "RUNNING")) << next_->log();
  ASSERT_TRUE(readers.progress(20)) << readers.first_failure() << next_->log();
  EXPECT_TRUE(readers.stop()) << "a read hung";
  EXPECT_EQ(readers.failures(), 0u) << readers.first_failure() << next_->log();
  expect_kept(sock_, held, "late file", pt_dir, inos, {"a.txt", "b.bin", "late.txt", "sub"});
  ::close(held);
  ::close(pt_dir);
}


// 100 hot upgrades in a row under the same load (issue #15): 8 readers of
// the RAFS and the passthrough files; no read fails or hangs, every old
// daemon exits 0 and is reaped (no zombie), and the test process (the
// supervisor's side) holds no more descriptors than before. Each generation,
// once RUNNING under the readers' load, holds exactly the descriptors the
// first daemon held (a takeover that leaks one, or state that grows from one
// generation to the next, shows), one node table file per passthrough mount,
// and its RSS does not grow with the generation. At the end a passthrough fd
// held across all 100 still reads its bytes, st_ino and listings are
// unchanged, and once the readers stopped the last daemon holds of the
// sources only what the first held at rest.
TEST_F(PassthroughUpgradeTest, HundredHotUpgradesInARowUnderLoad) {
  auto files = start_with_passthrough();
  ASSERT_EQ(files.size(), kFiles.size() + 3);
  const auto& [held_path, held_want] = files[kFiles.size() + 1];
  int held = ::open(held_path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(held, 0);
  int pt_dir = ::open((mnt_ + "/pt").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(pt_dir, 0);
  std::map<std::string, ino_t> inos;
  for (const auto& p : {files[0].first, files[kFiles.size()].first, files.back().first, mnt_ + "/pt", mnt_ + "/pt/src/sub"}) {
    inos[p] = ino_of(p);
  }
  Readers readers(files, 8, [this] { abort_connection(); });
  ASSERT_TRUE(readers.progress(5)) << readers.first_failure();
  std::vector<DaemonUsage> usage = {daemon_usage(daemon_->pid(), sock_, sources())};
  std::unique_ptr<DaemonProcess> cur = std::move(daemon_);
  std::string from = sock_;
  const std::string socks[2] = {dir_.file("api-a.sock"), dir_.file("api-b.sock")};
  std::vector<std::string> fds_before;
  std::vector<std::chrono::microseconds> pauses;
  for (int i = 0; i < 100; ++i) {
    const std::string& to = socks[i % 2];
    readers.take_longest_gap();
    ASSERT_NO_FATAL_FAILURE(save_state(from));
    ASSERT_NO_FATAL_FAILURE(start_next(to, {"--upgrade", "--thread-num", "4"}));
    ASSERT_EQ(call_at(to, "PUT", "/api/v1/daemon/fuse/takeover").status, 204u) << next_->log();
    ASSERT_EQ(call_at(from, "PUT", "/api/v1/daemon/exit").status, 204u);
    ASSERT_EQ(cur->wait_exit(), 0) << cur->log();
    ASSERT_EQ(call_at(to, "PUT", "/api/v1/daemon/start").status, 204u) << next_->log();
    ASSERT_TRUE(wait_state(to, "RUNNING")) << next_->log();
    ASSERT_TRUE(readers.progress(1)) << "round " << i << ": " << readers.first_failure();
    pauses.push_back(readers.take_longest_gap());
    usage.push_back(daemon_usage(next_->pid(), to, sources()));
    ASSERT_EQ(node_table_files(), 2u) << "round " << i;
    cur = std::move(next_);
    from = to;
    if (i == 0) fds_before = open_fds();
  }
  EXPECT_TRUE(readers.stop()) << "a read hung";
  EXPECT_EQ(readers.failures(), 0u) << readers.first_failure() << cur->log();
  // Reported, not checked (docs/benchmarks.md): the longest stretch without a
  // completed read in each round, sendfd to RUNNING.
  std::sort(pauses.begin(), pauses.end());
  std::cout << "hot-upgrade read pause over " << pauses.size() << " rounds: p50 " << pauses[pauses.size() / 2].count() / 1000.0
            << " ms, max " << pauses.back().count() / 1000.0 << " ms\n";
  EXPECT_EQ(open_fds().size(), fds_before.size()) << testing::PrintToString(open_fds()) << testing::PrintToString(fds_before);
  EXPECT_EQ(zombie_children(), 0u);
  // The daemon side: same descriptors in the last generation as in the first
  // (started normally), each with one node table per passthrough mount, and
  // RSS flat: the last ten generations' median within 4 MiB of the first
  // ten's (a few KiB per generation would be far below it, state or a mount
  // copied per generation far above).
  EXPECT_EQ(usage.back().fds.size(), usage.front().fds.size())
      << "first: " << testing::PrintToString(usage.front().fds) << "\nlast: " << testing::PrintToString(usage.back().fds);
  for (std::size_t g = 0; g < usage.size(); ++g) EXPECT_EQ(usage[g].node_tables, 2u) << "generation " << g;
  EXPECT_LE(std::max_element(usage.begin(), usage.end(), [](auto& a, auto& b) { return a.blob_fds < b.blob_fds; })->blob_fds,
            1u) << "the image's one blob opened more than once";
  const std::uint64_t first_rss = median_rss(usage.begin(), usage.begin() + 10);
  const std::uint64_t last_rss = median_rss(usage.end() - 10, usage.end());
  std::cout << "daemon per generation: " << usage.front().fds.size() << " -> " << usage.back().fds.size()
            << " descriptors (" << idle_source_fds_ << " into the sources at rest), VmRSS median first 10 " << first_rss
            << " KiB, last 10 " << last_rss << " KiB\n";
  EXPECT_LE(last_rss, first_rss + 4096) << "VmRSS grows with the generation";

  expect_kept(from, held, held_want, pt_dir, inos, {"a.txt", "b.bin", "sub"});
  ::close(held);
  ::close(pt_dir);
  EXPECT_EQ(names_in(mnt_), (std::set<std::string>{"pt", "r"}));
  EXPECT_EQ(names_in(mnt_ + "/r"), (std::set<std::string>{"lib.rs", "sync_io.rs"}));
  EXPECT_EQ(names_in(mnt_ + "/pt/other"), (std::set<std::string>{"o.txt"}));
  // Every file is closed now; the kernel's releases arrive asynchronously.
  const pid_t last = cur->pid();
  std::size_t source_fds = 0;
  EXPECT_TRUE(eventually([&] { return (source_fds = daemon_usage(last, from, sources()).source_fds) == idle_source_fds_; }))
      << source_fds << " descriptors into the sources, " << idle_source_fds_ << " at rest in the first daemon";
  daemon_ = std::move(cur);  // the fixture's teardown ends the last one
}

// A node table that is garbage when the successor reads it (disk trouble,
// tampering) costs the kernel's passthrough ids (ESTALE until it looks the
// names up again), never the takeover or the daemon.
TEST_F(PassthroughUpgradeTest, GarbageNodeTableFallsBackToNewIds) {
  auto files = start_with_passthrough();
  ASSERT_EQ(files.size(), kFiles.size() + 3);
  save_state();
  const std::string tables = dir_.file("nydusd-d1-state");
  for (const auto& e : std::filesystem::directory_iterator(tables)) {
    std::ofstream(e.path(), std::ios::binary | std::ios::trunc) << std::string(1000, '\x5a');
  }
  daemon_->signal(SIGKILL);
  EXPECT_EQ(daemon_->wait_exit(), 128 + SIGKILL);
  start_next(sock_, {"--thread-num", "4"});
  auto t = call_at(sock_, "PUT", "/api/v1/daemon/fuse/takeover");
  ASSERT_EQ(t.status, 204u) << t.body << next_->log();
  ASSERT_EQ(call_at(sock_, "PUT", "/api/v1/daemon/start").status, 204u) << next_->log();
  ASSERT_TRUE(wait_state(sock_, "RUNNING")) << next_->log();
  EXPECT_NE(next_->log().find("is not a version 1 table"), std::string::npos) << next_->log();
  const std::string& path = files.back().first;
  const std::string& want = files.back().second;
  EXPECT_TRUE(eventually([&] { return slurp(path) == want; })) << next_->log();
  EXPECT_EQ(slurp(files[0].first), files[0].second);  // RAFS unaffected
}

}  // namespace
}  // namespace nydus::testutil
