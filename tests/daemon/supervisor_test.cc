// The supervisor socket protocol (contract §6.3) from nydusd's side, against
// a test supervisor: transfers, misbehaving supervisors, and PUT …/sendfd.
#include "nydus/daemon/supervisor.h"

#include <sys/socket.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <future>
#include <optional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nydus/api/router.h"
#include "nydus/config/parse.h"
#include "nydus/daemon/daemon.h"
#include "daemon/supervisor_receive.h"
#include "util/raw_client.h"
#include "util/test_supervisor.h"

namespace nydus::daemon {
namespace {

using testutil::TempDir;
using testutil::TestSupervisor;
using namespace std::chrono_literals;

// Both ends of a pipe; the read end stands in for /dev/fuse.
struct Pipe {
  Pipe() { EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0); }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  int fds[2] = {-1, -1};
};

bool same_file(int a, int b) {
  struct stat x {}, y {};
  return ::fstat(a, &x) == 0 && ::fstat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

std::vector<std::uint8_t> pattern(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 131 + 7);
  return v;
}

TEST(SupervisorTest, SendDeliversAllBytesAndExactlyOneFd) {
  TempDir dir;
  Pipe p;
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kStore);
  auto bytes = pattern(3u << 20);  // far beyond one socket buffer and upstream's 32 KiB
  auto r = send_to_supervisor(sup.path(), bytes, p.fds[0]);
  ASSERT_TRUE(r) << r.error().message();
  sup.wait_done();
  EXPECT_EQ(sup.bytes(), bytes);
  ASSERT_EQ(sup.fds().size(), 1u);
  EXPECT_TRUE(same_file(sup.fds()[0], p.fds[0]));
}

TEST(SupervisorTest, ReceiveGetsAllBytesAndTheFd) {
  TempDir dir;
  Pipe p;
  auto bytes = pattern(1u << 20);
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kServe, bytes, p.fds[1]);
  auto r = receive_from_supervisor(sup.path());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->bytes, bytes);
  EXPECT_TRUE(same_file(r->fd.get(), p.fds[1]));
}

TEST(SupervisorTest, ReceiveWithoutFdIsNoEnoughFds) {
  TempDir dir;
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kServeNoFd, pattern(100));
  auto r = receive_from_supervisor(sup.path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "NoEnoughFds");
}

TEST(SupervisorTest, ReceiveIsBoundedInSize) {
  TempDir dir;
  Pipe p;
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kServe, pattern(1u << 20), p.fds[1]);
  auto r = receive_from_supervisor(sup.path(), kSupervisorTimeout, 64u << 10);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("TooLarge"), std::string::npos) << r.error().message();
}

TEST(SupervisorTest, AbsentSupervisorIsCreateUnixStream) {
  TempDir dir;
  Pipe p;
  auto s = send_to_supervisor(dir.file("nobody.sock"), pattern(10), p.fds[0]);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message().rfind("CreateUnixStream(", 0), 0u) << s.error().message();
  auto r = receive_from_supervisor(dir.file("nobody.sock"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message().rfind("CreateUnixStream(", 0), 0u) << r.error().message();
}

// A supervisor that accepts and then does nothing costs the timeout, not a hang.
TEST(SupervisorTest, SilentSupervisorEndsInTimeout) {
  TempDir dir;
  Pipe p;
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kSilent);
  auto s = send_to_supervisor(sup.path(), pattern(8u << 20), p.fds[0], 200ms);  // more than the socket holds
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message().rfind("Timeout(", 0), 0u) << s.error().message();
}

TEST(SupervisorTest, SupervisorThatNeverWritesEndsInTimeout) {
  TempDir dir;
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kSilent);
  auto r = receive_from_supervisor(sup.path(), 200ms);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message().rfind("Timeout(", 0), 0u) << r.error().message();
}

// A control block whose header claims more than the buffer holds: nothing
// is read past msg_controllen (CMSG_FIRSTHDR does not check the length).
TEST(SupervisorTest, ControlHeaderLongerThanTheBufferYieldsNoDescriptor) {
  alignas(cmsghdr) unsigned char control[256] = {};
  msghdr msg{};
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int));
  auto* c = reinterpret_cast<cmsghdr*>(control);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(16 * sizeof(int));
  EXPECT_TRUE(scm_rights_fds(msg).empty());
  c->cmsg_len = CMSG_LEN(sizeof(int));  // fits: fd 0 from the zeroed buffer
  EXPECT_EQ(scm_rights_fds(msg), std::vector<int>{0});
  c->cmsg_len = 3;  // shorter than a header
  EXPECT_TRUE(scm_rights_fds(msg).empty());
}

std::size_t open_fd_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Descriptors spread over several messages (as a misbehaving supervisor may
// send them): the first is kept, every other one closed, the bytes joined.
TEST(SupervisorTest, ReceiveKeepsTheFirstOfManyDescriptorsAndClosesTheRest) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Pipe a, b;
  const std::size_t before = open_fd_count();
  for (int i = 0; i < 3; ++i) {
    char byte = static_cast<char>('a' + i);
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * sizeof(int));
    const int fds[2] = {i == 0 ? a.fds[0] : b.fds[0], b.fds[1]};
    std::memcpy(CMSG_DATA(c), fds, sizeof(fds));
    ASSERT_EQ(::sendmsg(sv[0], &msg, MSG_NOSIGNAL), 1);
  }
  ::close(sv[0]);
  auto r = receive_transfer(sv[1], std::chrono::steady_clock::now() + kSupervisorTimeout, 1024);
  ::close(sv[1]);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(std::string(r->bytes.begin(), r->bytes.end()), "abc");
  EXPECT_TRUE(same_file(r->fd.get(), a.fds[0]));
  r->fd.reset();
  EXPECT_EQ(open_fd_count(), before - 2);  // the socketpair; all five others closed
}

// ---- PUT /api/v1/daemon/fuse/sendfd ----

api::HttpResponse call(Daemon& d, const std::string& method, const std::string& target) {
  auto routed = api::route(api::HttpRequest{method, target, "", 11});
  if (!routed) return api::error_response(routed.error());
  std::promise<api::HttpResponse> p;
  auto f = p.get_future();
  auto wrapper = routed->wrapper;
  auto copy = routed->request;
  d.handle(routed->request, [&, wrapper, copy](api::ApiResult r, std::function<void()>) {
    p.set_value(api::respond(wrapper, copy, r));
  });
  return f.get();
}

std::string message(const api::HttpResponse& r) { return nlohmann::json::parse(r.body).value("message", ""); }

UpgradeState sample_state(unsigned mounts) {
  UpgradeState s;
  s.fuse_mountpoint = "/mnt/nydus";
  s.fuse_conn_id = 42;
  s.init.proto_major = 7;
  s.init.proto_minor = 31;
  for (unsigned i = 0; i < mounts; ++i) {
    SavedMount m;
    m.slot = i % 255 + 1;
    m.request.mountpoint = "/m" + std::to_string(i);
    m.request.source = "/srv/" + std::to_string(i);
    s.mounts.push_back(m);
  }
  return s;
}

struct SendFdTest : ::testing::Test {
  DaemonOptions options(const std::string& supervisor, int fd, unsigned mounts = 3) {
    DaemonOptions o;
    o.id = "d1";
    o.supervisor = supervisor;
    o.fuse_ready = [] { return true; };
    o.save_state = [mounts]() -> Result<UpgradeState> { return sample_state(mounts); };
    o.fuse_fd = [fd] { return fd; };
    return o;
  }
  std::string state(Daemon& d) {
    return nlohmann::json::parse(call(d, "GET", "/api/v1/daemon").body).value("state", "");
  }
  TempDir dir;
  Pipe fuse;
};

TEST_F(SendFdTest, SavesStateAndFuseFdToTheSupervisor) {
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kStore);
  Daemon d(options(sup.path(), fuse.fds[0]));
  ASSERT_TRUE(d.start());
  auto r = call(d, "PUT", "/api/v1/daemon/fuse/sendfd");
  ASSERT_EQ(r.status, 204u) << r.body;  // else the supervisor waits for a connection that never comes
  sup.wait_done();
  auto back = decode_upgrade_state(sup.bytes());
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->fuse_conn_id, 42u);
  ASSERT_EQ(back->mounts.size(), 3u);
  EXPECT_EQ(back->mounts[2].request.source, "/srv/2");
  ASSERT_EQ(sup.fds().size(), 1u);
  EXPECT_TRUE(same_file(sup.fds()[0], fuse.fds[0]));
  EXPECT_EQ(state(d), "RUNNING");
  auto events = call(d, "GET", "/api/v1/daemon/events").body;
  EXPECT_NE(events.find("state saved to supervisor"), std::string::npos) << events;
}

TEST_F(SendFdTest, AbsentSupervisorIs500AndTheDaemonKeepsServing) {
  Daemon d(options(dir.file("absent.sock"), fuse.fds[0]));
  ASSERT_TRUE(d.start());
  auto r = call(d, "PUT", "/api/v1/daemon/fuse/sendfd");
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(message(r).rfind("Upgrade(DaemonAbnormal(UpgradeManager(\"StorageBackendError(CreateUnixStream(", 0), 0u)
      << r.body;
  EXPECT_EQ(state(d), "RUNNING");
}

TEST_F(SendFdTest, SilentSupervisorIs500WithinTheBound) {
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kSilent);
  DaemonOptions o = options(sup.path(), fuse.fds[0], 20000);  // a state larger than the socket buffer
  o.supervisor_timeout = 200ms;
  Daemon d(std::move(o));
  ASSERT_TRUE(d.start());
  auto r = call(d, "PUT", "/api/v1/daemon/fuse/sendfd");
  EXPECT_EQ(r.status, 500u);
  EXPECT_NE(message(r).find("Timeout("), std::string::npos) << r.body;
  EXPECT_EQ(state(d), "RUNNING");
  // The worker is free again: the next request is answered.
  EXPECT_EQ(call(d, "PUT", "/api/v1/daemon/fuse/sendfd").status, 500u);
}

TEST_F(SendFdTest, NoFuseFdIsNoEnoughFds) {
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kStore);
  Daemon d(options(sup.path(), -1));
  ASSERT_TRUE(d.start());
  auto r = call(d, "PUT", "/api/v1/daemon/fuse/sendfd");
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(message(r), "Upgrade(DaemonAbnormal(UpgradeManager(\"StorageBackendError(NoEnoughFds)\")))") << r.body;
}

TEST_F(SendFdTest, WithoutSupervisorIs500NotAnAbort) {
  DaemonOptions o = options("", fuse.fds[0]);
  o.supervisor.reset();
  Daemon d(std::move(o));
  ASSERT_TRUE(d.start());
  auto r = call(d, "PUT", "/api/v1/daemon/fuse/sendfd");
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(message(r), "Upgrade(DaemonAbnormal(UpgradeManager(\"MissingSupervisorPath\")))");
}

// PUT …/fuse/takeover (contract §6.3 Restore, §6.5): the state and the
// descriptor come from the supervisor, within a bound, or a clear 500 and
// the daemon stays in INIT, answering.
struct TakeoverTest : SendFdTest {
  DaemonOptions upgrading(const std::string& supervisor) {
    DaemonOptions o;
    o.id = "d1";
    o.supervisor = supervisor;
    o.upgrade = true;
    o.supervisor_timeout = 200ms;
    o.restore_state = [this](const UpgradeState& st, UniqueFd fd) -> Result<std::size_t> {
      restored = st;
      got_fd = std::move(fd);
      return st.mounts.size();
    };
    return o;
  }
  std::optional<UpgradeState> restored;
  UniqueFd got_fd;
};

TEST_F(TakeoverTest, RestoresTheSupervisorsStateAndDescriptorThenReady) {
  auto bytes = encode_upgrade_state(sample_state(2000));  // far beyond upstream's 32 KiB
  ASSERT_TRUE(bytes);
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kServe, *bytes, fuse.fds[0]);
  Daemon d(upgrading(sup.path()));
  ASSERT_TRUE(d.start());
  EXPECT_EQ(state(d), "INIT");
  auto r = call(d, "PUT", "/api/v1/daemon/fuse/takeover");
  ASSERT_EQ(r.status, 204u) << r.body;
  EXPECT_EQ(state(d), "READY");
  ASSERT_TRUE(restored);
  EXPECT_EQ(restored->mounts.size(), 2000u);
  EXPECT_EQ(restored->mounts[1999].request.source, "/srv/1999");
  EXPECT_TRUE(same_file(got_fd.get(), fuse.fds[0]));
  auto events = call(d, "GET", "/api/v1/daemon/events").body;
  EXPECT_NE(events.find("state restored from supervisor"), std::string::npos) << events;
}

TEST_F(TakeoverTest, SilentSupervisorIs500WithinTheBoundAndStaysInit) {
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kSilent);
  Daemon d(upgrading(sup.path()));
  ASSERT_TRUE(d.start());
  auto r = call(d, "PUT", "/api/v1/daemon/fuse/takeover");
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(message(r).rfind("Upgrade(DaemonAbnormal(UpgradeManager(\"StorageBackendError(Timeout(", 0), 0u) << r.body;
  EXPECT_EQ(state(d), "INIT");
  EXPECT_FALSE(restored);
}

TEST_F(TakeoverTest, NoDescriptorIsNoEnoughFdsAndStaysInit) {
  auto bytes = encode_upgrade_state(sample_state(1));
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kServeNoFd, *bytes);
  Daemon d(upgrading(sup.path()));
  ASSERT_TRUE(d.start());
  auto r = call(d, "PUT", "/api/v1/daemon/fuse/takeover");
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(message(r), "Upgrade(DaemonAbnormal(UpgradeManager(\"StorageBackendError(NoEnoughFds)\")))") << r.body;
  EXPECT_EQ(state(d), "INIT");
  EXPECT_FALSE(restored);
}

TEST_F(TakeoverTest, GarbageStateOrAFailedRestoreIs500AndStaysInit) {
  {
    TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kServe, std::vector<std::uint8_t>(100, 0x5a),
                       fuse.fds[0]);
    Daemon d(upgrading(sup.path()));
    ASSERT_TRUE(d.start());
    auto r = call(d, "PUT", "/api/v1/daemon/fuse/takeover");
    EXPECT_EQ(r.status, 500u);
    EXPECT_EQ(message(r).rfind("Upgrade(DaemonAbnormal(UpgradeManager(\"Restore(", 0), 0u) << r.body;
    EXPECT_EQ(state(d), "INIT");
    EXPECT_FALSE(restored);
  }
  // A restore that fails (e.g. a bootstrap gone) is reported and leaves INIT too.
  auto bytes = encode_upgrade_state(sample_state(1));
  TestSupervisor sup(dir.file("sup.sock"), TestSupervisor::Mode::kServe, *bytes, fuse.fds[0]);
  DaemonOptions o = upgrading(sup.path());
  o.restore_state = [](const UpgradeState&, UniqueFd) -> Result<std::size_t> {
    return fail(ErrorCode::kNotFound, "restoring /m0: no such bootstrap");
  };
  Daemon d(std::move(o));
  ASSERT_TRUE(d.start());
  auto r = call(d, "PUT", "/api/v1/daemon/fuse/takeover");
  EXPECT_EQ(r.status, 500u);
  EXPECT_NE(message(r).find("no such bootstrap"), std::string::npos) << r.body;
  EXPECT_EQ(state(d), "INIT");
  EXPECT_EQ(call(d, "PUT", "/api/v1/daemon/start").status, 400u);  // nothing to start
}

}  // namespace
}  // namespace nydus::daemon
