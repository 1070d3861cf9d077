// The two dispatch shapes of service.h over a real socket.
#include "nydus/api/service.h"

#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "util/raw_client.h"

namespace nydus::api {
namespace {

using namespace std::chrono_literals;
using testutil::RawClient;
using testutil::TempDir;

ApiResult info_payload() { return ApiResponsePayload{PayloadKind::kDaemonInfo, R"({"state":"RUNNING"})"}; }

// Answers info inline; holds each mount on a thread of its own until
// release_mounts(); throws on Start.
class FakeDaemon : public ApiHandler {
 public:
  ~FakeDaemon() override {
    release_mounts();
    for (auto& t : threads_) t.join();
  }
  void handle(ApiRequest request, ApiReply reply) override {
    if (std::holds_alternative<GetDaemonInfo>(request)) {
      infos_served_++;
      reply(info_payload(), {});
    } else if (std::holds_alternative<Mount>(request)) {
      mounts_started_++;
      threads_.emplace_back([reply = std::move(reply), this] {
        {
          std::unique_lock lock(mu_);
          cv_.wait(lock, [this] { return released_; });
        }
        mounts_done_++;
        reply(ApiResponsePayload::empty(), {});
      });
    } else if (std::holds_alternative<Start>(request)) {
      throw std::runtime_error("handler bug");
    } else {
      reply(tl::unexpected(ApiError::daemon_abnormal(DaemonError::unsupported())), {});
    }
  }
  void release_mounts() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }
  std::atomic<int> infos_served_{0};
  std::atomic<int> mounts_started_{0};
  std::atomic<int> mounts_done_{0};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;  // guarded by mu_
  std::vector<std::thread> threads_;  // I/O thread only
};

const char* kMount =
    "POST /api/v1/mount?mountpoint=/a HTTP/1.1\r\nHost: x\r\nContent-Length: 45\r\n\r\n"
    R"({"source":"/s","fs_type":"rafs","config":"x"})";
const char* kInfo = "GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\n\r\n";

TEST(ServiceTest, SlowRequestDoesNotBlockOtherConnections) {
  TempDir dir;
  FakeDaemon daemon;
  auto server = HttpServer::start({dir.file("api.sock")}, make_api_http_handler(daemon));
  ASSERT_TRUE(server) << server.error().to_string();
  auto slow = RawClient::connect(dir.file("api.sock"));
  ASSERT_TRUE(slow);
  ASSERT_TRUE(slow->send(kMount));
  ASSERT_TRUE(testutil::eventually([&] { return daemon.mounts_started_ == 1; }));
  // The mount cannot finish before release_mounts(): a blocked connection
  // would make this round trip hang until the hang guard.
  auto fast = testutil::round_trip(dir.file("api.sock"), kInfo);
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->status, 200u);
  EXPECT_EQ(daemon.mounts_done_.load(), 0);
  daemon.release_mounts();
  auto mounted = slow->read_reply();
  ASSERT_TRUE(mounted);
  EXPECT_EQ(mounted->status, 204u);
}

TEST(ServiceTest, RepliesOnOneConnectionKeepRequestOrder) {
  TempDir dir;
  FakeDaemon daemon;
  auto server = HttpServer::start({dir.file("api.sock")}, make_api_http_handler(daemon));
  ASSERT_TRUE(server);
  auto c = RawClient::connect(dir.file("api.sock"));
  ASSERT_TRUE(c);
  // The mount finishes after the info request was answered, but its reply goes first.
  ASSERT_TRUE(c->send(std::string(kMount) + kInfo));
  ASSERT_TRUE(testutil::eventually([&] { return daemon.infos_served_ == 1; }));
  EXPECT_TRUE(c->stays_silent(50ms)) << c->buffered();  // the info reply waits for the mount's
  daemon.release_mounts();
  auto first = c->read_reply();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 204u);
  auto second = c->read_reply();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200u);
}

TEST(ServiceTest, HandlerThatThrowsGets500AndServerLives) {
  TempDir dir;
  FakeDaemon daemon;
  auto server = HttpServer::start({dir.file("api.sock")}, make_api_http_handler(daemon));
  ASSERT_TRUE(server);
  auto r = testutil::round_trip(dir.file("api.sock"), "PUT /api/v1/daemon/start HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500u);
  auto again = testutil::round_trip(dir.file("api.sock"), kInfo);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200u);
}

TEST(ServiceTest, ChannelShapeRoundTripAndWake) {
  TempDir dir;
  auto to_api = std::make_shared<Channel<std::optional<ApiRequest>>>();
  auto from_api = std::make_shared<Channel<ApiResult>>();
  auto started = start_http_thread({dir.file("api.sock")}, to_api, from_api);
  ASSERT_TRUE(started) << started.error().to_string();
  std::atomic<int> served{0};
  std::promise<bool> finished;
  // The single API thread: answers until it receives the empty message.
  std::thread api([&] {
    while (auto msg = to_api->recv()) {
      if (!*msg) {
        finished.set_value(true);
        return;
      }
      served++;
      if (std::holds_alternative<GetDaemonInfo>(**msg)) {
        from_api->send(info_payload());
      } else {
        from_api->send(tl::unexpected(ApiError::no_counter()));
      }
    }
    finished.set_value(false);
  });
  auto r = testutil::round_trip(dir.file("api.sock"), kInfo);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(r->body, R"~({"state":"RUNNING"})~");
  auto m = testutil::round_trip(dir.file("api.sock"), "GET /api/v1/metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 404u);
  // Routing errors never reach the API thread.
  auto nr = testutil::round_trip(dir.file("api.sock"), "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(nr);
  EXPECT_EQ(nr->status, 404u);
  EXPECT_EQ(served.load(), 2);

  started->waker->wake();
  auto fut = finished.get_future();
  ASSERT_EQ(fut.wait_for(testutil::kHangGuard), std::future_status::ready);
  EXPECT_TRUE(fut.get());  // the API side was told to finish with an empty message
  started->thread.join();
  api.join();
  struct stat st {};
  EXPECT_NE(lstat(dir.file("api.sock").c_str(), &st), 0);  // the server removed its socket
}

TEST(ServiceTest, ChannelShapeServesOneRequestAtATime) {
  TempDir dir;
  auto to_api = std::make_shared<Channel<std::optional<ApiRequest>>>();
  auto from_api = std::make_shared<Channel<ApiResult>>();
  auto started = start_http_thread({dir.file("api.sock")}, to_api, from_api);
  ASSERT_TRUE(started);
  std::atomic<int> in_flight{0}, max_in_flight{0};
  std::thread api([&] {
    while (auto msg = to_api->recv()) {
      if (!*msg) return;
      int now = ++in_flight;
      max_in_flight = std::max(max_in_flight.load(), now);
      std::this_thread::sleep_for(20ms);
      --in_flight;
      from_api->send(info_payload());
    }
  });
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&] {
      auto r = testutil::round_trip(dir.file("api.sock"), kInfo);
      if (r && r->status == 200) ok++;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(max_in_flight.load(), 1);
  started->waker->wake();
  started->thread.join();
  api.join();
}

}  // namespace
}  // namespace nydus::api
