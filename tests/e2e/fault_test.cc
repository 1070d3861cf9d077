// Fault tests: misbehaving clients against the real nydusd over its socket,
// plus one in-process case (a 2 s handler) that nydusd cannot produce yet.
//
// Every nydusd case ends by checking that the daemon still answers, that its
// descriptors are back to where they were (no connection leaked), and that it
// exits 0 on SIGTERM. Under the sanitize preset ASAN_OPTIONS has
// detect_leaks=1:abort_on_error=1, so a leak, or any ASan/UBSan report, makes
// that exit status non-zero and fails the test.
//
// No latency is checked here: on a loaded machine any bound is either loose
// enough to prove nothing or tight enough to fail at random. The properties
// are exact instead (every request answered while the slow-loris connections
// are held open, info answered while a mount is held by its handler); the
// latency under idle connections is measured by bench/loadgen.cc (--idle).
// RSS bounds are checked only without ASan, whose quarantine keeps freed
// memory resident by design.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "nydus/api/service.h"
#include "nydus/daemon/daemon.h"
#include "util/daemon_process.h"
#include "util/raw_client.h"
#include "util/sanitizer.h"

namespace nydus::testutil {
namespace {

constexpr bool kAsan = kAddressSanitizer;

const std::string kInfo = "GET /api/v1/daemon HTTP/1.1\r\nHost: localhost\r\n\r\n";

// 1,000 slow-loris connections need more descriptors than a default soft
// limit of 1024 leaves; root may also raise the hard limit, others go up to it.
void raise_nofile() {
  rlimit lim{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  rlimit want = lim;
  want.rlim_cur = want.rlim_max = std::max<rlim_t>(lim.rlim_max, 65536);
  if (::setrlimit(RLIMIT_NOFILE, &want) == 0) return;
  lim.rlim_cur = lim.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lim), 0);
}

std::size_t open_fds(pid_t pid) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) ++n;
  return n;
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// `n` GET /api/v1/daemon on one keep-alive connection, one at a time; how
// many of them failed (no 200 within the hang guard).
std::size_t info_failures(const std::string& sock, int n) {
  auto c = RawClient::connect(sock);
  if (!c) return static_cast<std::size_t>(n);
  std::size_t failures = 0;
  for (int i = 0; i < n; ++i) {
    std::optional<HttpReply> r = c->send(kInfo) ? c->read_reply() : std::nullopt;
    if (!r || r->status != 200) ++failures;
  }
  return failures;
}

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    raise_nofile();
    sock_ = dir_.file("api.sock");
    daemon_ = std::make_unique<DaemonProcess>(std::vector<std::string>{"--apisock", sock_, "--log-level", "warn"},
                                              dir_.file("nydusd.log"));
    ASSERT_TRUE(daemon_->wait_for_socket(sock_)) << daemon_->log();
    ASSERT_TRUE(answers()) << daemon_->log();
    baseline_fds_ = open_fds(daemon_->pid());
  }

  // One info request on a connection the daemon closes after its reply; true
  // once that reply was 200 and the daemon's side of it is closed too, so a
  // descriptor count taken next does not include it.
  bool answers() {
    std::optional<RawClient> c;
    // The socket file appears at bind(), a moment before listen().
    bool connected = eventually([&] {
      if (auto r = RawClient::connect(sock_)) c.emplace(std::move(*r));
      return c.has_value();
    });
    if (!connected) return false;
    if (!c->send("GET /api/v1/daemon HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")) return false;
    auto r = c->read_reply();
    return r && r->status == 200 && c->wait_closed();
  }

  // The daemon survived, closed every connection the test dropped, and
  // shuts down cleanly (leak-free under the sanitize preset).
  void expect_healthy_and_clean_exit() {
    ASSERT_TRUE(answers()) << daemon_->log();
    // Dropped connections are closed asynchronously; a leaked one never is.
    EXPECT_TRUE(eventually([&] { return open_fds(daemon_->pid()) <= baseline_fds_; }))
        << open_fds(daemon_->pid()) << " descriptors open, " << baseline_fds_ << " at the start: connections leaked";
    daemon_->signal(SIGTERM);
    auto status = daemon_->wait_exit(60s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 0) << daemon_->log();
    EXPECT_EQ(daemon_->log().find("Sanitizer"), std::string::npos) << daemon_->log();
  }

  TempDir dir_;
  std::string sock_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::size_t baseline_fds_ = 0;
};

TEST_F(FaultTest, ClientsThatVanishMidRequestMidBodyOrBeforeTheReply) {
  for (int i = 0; i < 50; ++i) {
    {  // mid-request: half a header section, then gone
      auto c = RawClient::connect(sock_);
      ASSERT_TRUE(c);
      c->send("GET /api/v1/daemon HTTP/1.1\r\nHo");
    }
    {  // mid-body: 10 of 100 declared bytes
      auto c = RawClient::connect(sock_);
      ASSERT_TRUE(c);
      c->send("PUT /api/v1/daemon HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"log_level");
    }
    {  // before reading its replies: 64 pipelined requests, then close
      auto c = RawClient::connect(sock_);
      ASSERT_TRUE(c);
      std::string burst;
      for (int k = 0; k < 64; ++k) burst += kInfo;
      c->send(burst);
    }
  }
  expect_healthy_and_clean_exit();
}

// The server's writes to a closed peer fail with EPIPE; the signal that would
// go with it must never reach (and kill) the daemon.
TEST_F(FaultTest, SigpipeNeverKillsTheDaemon) {
  for (int i = 0; i < 20; ++i) {
    auto c = RawClient::connect(sock_);
    ASSERT_TRUE(c);
    std::string burst;
    for (int k = 0; k < 512; ++k) burst += kInfo;  // ~200 KB of replies: more than the socket buffer
    c->send(burst);
    c->read_some(5ms);  // the server is writing now
    c->close();
  }
  EXPECT_EQ(::kill(daemon_->pid(), 0), 0);
  expect_healthy_and_clean_exit();
}

TEST_F(FaultTest, SlowLorisDoesNotStarveANormalClient) {
  constexpr int kLoris = 1000;  // under nydusd's connection cap (1024)
  std::vector<RawClient> loris;
  loris.reserve(kLoris);
  for (int i = 0; i < kLoris; ++i) {
    auto c = RawClient::connect(sock_);
    ASSERT_TRUE(c) << i;
    c->send("GET /api/v1/daemon HTTP/1.1\r\n");
    loris.push_back(std::move(*c));
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {  // one more header byte per connection, round after round
    for (int round = 0; !stop; ++round) {
      for (auto& c : loris) {
        if (stop) break;
        c.send("X");
      }
      std::this_thread::sleep_for(20ms);
    }
  });
  EXPECT_EQ(info_failures(sock_, 300), 0u);
  stop = true;
  trickle.join();
  // None of them was answered or dropped: they are within the header deadline.
  std::size_t answered = 0;
  for (auto& c : loris) answered += !c.read_some(0ms).empty() || c.eof();
  EXPECT_EQ(answered, 0u);
  loris.clear();
  expect_healthy_and_clean_exit();
}

// A declared 10 MB / 100 MB body is refused from its header: 413 arrives
// before a byte of the body is sent, and the daemon's memory does not grow.
TEST_F(FaultTest, HugeDeclaredBodiesAreRefusedWithoutBuffering) {
  long rss0 = rss_kib(daemon_->pid());
  for (std::size_t mb : {10u, 100u}) {
    auto c = RawClient::connect(sock_);
    ASSERT_TRUE(c);
    c->send("PUT /api/v1/config HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
            std::to_string(mb * 1000 * 1000) + "\r\n\r\n");
    auto r = c->read_reply();
    ASSERT_TRUE(r) << mb << " MB: " << c->last_error();
    EXPECT_EQ(r->status, 413u);
    EXPECT_TRUE(c->wait_closed());
  }
  if (!kAsan) {
    EXPECT_LT(rss_kib(daemon_->pid()) - rss0, 4096) << "KiB grown";
  }
  expect_healthy_and_clean_exit();
}

// A chunked body has no declared size: the daemon must stop reading at the
// body limit (1 MiB) while the client keeps streaming 100 MB at it.
TEST_F(FaultTest, HugeChunkedBodiesAreCutOffAtTheLimit) {
  long rss0 = rss_kib(daemon_->pid());
  for (std::size_t mb : {10u, 100u}) {
    auto c = RawClient::connect(sock_);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send("PUT /api/v1/config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
    const std::string chunk = "10000\r\n" + std::string(0x10000, 'a') + "\r\n";  // 64 KiB
    std::size_t sent = 0;
    while (sent < mb * 1000 * 1000 && c->send(chunk)) sent += 0x10000;
    EXPECT_LT(sent, 4u << 20) << "the daemon kept reading past its body limit";
    auto r = c->read_reply();
    ASSERT_TRUE(r) << c->last_error();
    EXPECT_EQ(r->status, 413u);
  }
  if (!kAsan) {
    EXPECT_LT(rss_kib(daemon_->pid()) - rss0, 4096) << "KiB grown";
  }
  expect_healthy_and_clean_exit();
}

// nydusd has no slow handler to offer yet (mount fails at once without a
// filesystem service), so this case runs nydusd's API stack in process: the
// real Daemon behind the real server, with mounts held on a thread of their
// own, as a slow filesystem would, until the test releases them.
class SlowMount : public api::ApiHandler {
 public:
  explicit SlowMount(api::ApiHandler& inner) : inner_(inner) {}
  ~SlowMount() override {
    release();
    for (auto& t : threads_) t.join();
  }
  void handle(api::ApiRequest request, api::ApiReply reply) override {
    if (!std::holds_alternative<api::Mount>(request)) return inner_.handle(std::move(request), std::move(reply));
    ++started_;
    threads_.emplace_back([this, request = std::move(request), reply = std::move(reply)]() mutable {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return released_; });
      }
      inner_.handle(std::move(request), std::move(reply));
    });
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }
  std::atomic<int> started_{0};

 private:
  api::ApiHandler& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;  // guarded by mu_
  std::vector<std::thread> threads_;  // I/O thread only
};

TEST(FaultInProcess, SlowHandlerDoesNotDelayOtherConnections) {
  TempDir dir;
  daemon::Daemon d(daemon::DaemonOptions{});
  ASSERT_TRUE(d.start());
  SlowMount slow(d);
  api::HttpServerOptions options;
  options.socket_path = dir.file("api.sock");
  auto server = api::HttpServer::start(options, api::make_api_http_handler(slow));
  ASSERT_TRUE(server) << server.error().message();

  auto mounter = RawClient::connect(options.socket_path);
  ASSERT_TRUE(mounter);
  const std::string body = R"({"source":"/b","fs_type":"passthrough_fs","config":"{}"})";
  ASSERT_TRUE(mounter->send("POST /api/v1/mount?mountpoint=/m HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body));
  ASSERT_TRUE(eventually([&] { return slow.started_ == 1; }));
  // The mount is held until release(): every info request is served meanwhile.
  EXPECT_EQ(info_failures(options.socket_path, 200), 0u);
  EXPECT_TRUE(mounter->stays_silent(0ms)) << mounter->buffered();
  slow.release();
  auto r = mounter->read_reply();
  ASSERT_TRUE(r);
  EXPECT_NE(r->status, 0u);
  (*server)->stop();
}

}  // namespace
}  // namespace nydus::testutil
