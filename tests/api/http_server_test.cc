// HttpServer framing, ordering and handler contract, over a real socket.
// Limits and timeouts: http_limits_test.cc; socket file: http_socket_file_test.cc.
#include "nydus/api/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/http_server_fixture.h"

namespace nydus::api {
namespace {

using namespace std::chrono_literals;
using testutil::HttpReply;
using testutil::RawClient;
using testutil::TempDir;

HttpResponse echo(const HttpRequest& r) {
  nlohmann::json j = {{"method", r.method}, {"target", r.target}, {"body", r.body}, {"version", r.version}};
  HttpResponse resp;
  resp.body = j.dump();
  return resp;
}

std::string target_of(const HttpReply& reply) { return nlohmann::json::parse(reply.body).at("target"); }

std::string get(std::string_view target, std::string_view extra = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: nydus\r\n" + std::string(extra) + "\r\n";
}

// Responders parked by the handler until the test answers them.
struct Parked {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, HttpResponder> by_target;
  int received = 0;

  HttpHandler handler() {
    return [this](HttpRequest r, HttpResponder respond) {
      std::lock_guard lock(mu);
      by_target[r.target] = std::move(respond);
      ++received;
      cv.notify_all();
    };
  }
  bool wait_for(int n, std::chrono::milliseconds timeout = testutil::kHangGuard) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return received >= n; });
  }
  // Answers `target` with an echo-like body, from this (non-I/O) thread.
  void answer(const std::string& target) {
    HttpResponder r;
    {
      std::lock_guard lock(mu);
      r = std::move(by_target.at(target));
      by_target.erase(target);
    }
    HttpRequest req;
    req.target = target;
    r(echo(req));
  }
};

class HttpServerTest : public testutil::HttpServerFixture {};

TEST_F(HttpServerTest, KeepAliveServesSequentialRequestsWithFixedHeaders) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpRequest r, HttpResponder respond) { respond(echo(r)); }));
  RawClient c = connect();
  for (int i = 0; i < 5; ++i) {
    std::string target = "/api/v1/daemon?i=" + std::to_string(i);
    ASSERT_TRUE(c.send(get(target)));
    auto reply = c.read_reply();
    ASSERT_TRUE(reply) << c.last_error();
    EXPECT_EQ(reply->status, 200u);
    EXPECT_EQ(target_of(*reply), target);
    EXPECT_EQ(reply->header_names(),
              (std::vector<std::string>{"Server", "Connection", "Content-Type", "Content-Length"}));
    EXPECT_EQ(reply->header("Server"), "Nydus API");
    EXPECT_EQ(reply->header("Connection"), "keep-alive");
    EXPECT_EQ(reply->header("Content-Type"), "application/json");
  }
  EXPECT_EQ(server_->connection_count(), 1u);
}

TEST_F(HttpServerTest, RequestFieldsReachTheHandler) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpRequest r, HttpResponder respond) { respond(echo(r)); }));
  auto reply = testutil::round_trip(socket_path(),
                                    "PUT /api/v1/mount?mountpoint=%2Fa HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}");
  ASSERT_TRUE(reply);
  auto j = nlohmann::json::parse(reply->body);
  EXPECT_EQ(j["method"], "PUT");
  EXPECT_EQ(j["target"], "/api/v1/mount?mountpoint=%2Fa");
  EXPECT_EQ(j["body"], "{}");
  EXPECT_EQ(j["version"], 10);
  EXPECT_EQ(reply->version, "HTTP/1.1");
}

TEST_F(HttpServerTest, PipelinedRepliesKeepRequestOrder) {
  Parked parked;
  ASSERT_NO_FATAL_FAILURE(start(parked.handler()));
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/1") + get("/2") + get("/3")));
  ASSERT_TRUE(parked.wait_for(3));
  parked.answer("/3");
  parked.answer("/2");
  EXPECT_TRUE(c.stays_silent(150ms)) << "replies overtook an unanswered request: " << c.buffered();
  parked.answer("/1");
  for (std::string want : {"/1", "/2", "/3"}) {
    auto reply = c.read_reply();
    ASSERT_TRUE(reply) << c.last_error();
    EXPECT_EQ(target_of(*reply), want);
  }
}

TEST_F(HttpServerTest, ReadingPausesAtPipelineLimit) {
  Parked parked;
  ASSERT_NO_FATAL_FAILURE(start(parked.handler(), [](HttpServerOptions& o) { o.pipeline_limit = 2; }));
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/1") + get("/2") + get("/3") + get("/4")));
  ASSERT_TRUE(parked.wait_for(2));
  EXPECT_FALSE(parked.wait_for(3, 150ms)) << "requests beyond pipeline_limit were dispatched";
  parked.answer("/1");
  parked.answer("/2");
  ASSERT_TRUE(parked.wait_for(4));
  parked.answer("/4");
  parked.answer("/3");
  for (std::string want : {"/1", "/2", "/3", "/4"}) {
    auto reply = c.read_reply();
    ASSERT_TRUE(reply) << c.last_error();
    EXPECT_EQ(target_of(*reply), want);
  }
}

TEST_F(HttpServerTest, RequestSplitAcrossSlowWritesGetsOneReply) {
  std::atomic<int> calls{0};
  ASSERT_NO_FATAL_FAILURE(start([&](HttpRequest r, HttpResponder respond) {
    ++calls;
    respond(echo(r));
  }));
  RawClient c = connect();
  for (std::string_view part : {"PUT /split HT", "TP/1.1\r\nContent-Le", "ngth: 11\r\n\r\nhello"}) {
    ASSERT_TRUE(c.send(part));
    EXPECT_TRUE(c.stays_silent(200ms)) << "premature reply: " << c.buffered();
  }
  ASSERT_TRUE(c.send(" world"));
  auto reply = c.read_reply();
  ASSERT_TRUE(reply) << c.last_error();
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(nlohmann::json::parse(reply->body)["body"], "hello world");
  EXPECT_TRUE(c.stays_silent(100ms));
  EXPECT_EQ(calls, 1);
}

TEST_F(HttpServerTest, ExpectContinueGetsInterimResponseBeforeBody) {
  std::atomic<int> calls{0};
  ASSERT_NO_FATAL_FAILURE(start([&](HttpRequest r, HttpResponder respond) {
    ++calls;
    respond(echo(r));
  }));
  RawClient c = connect();
  ASSERT_TRUE(c.send("PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  auto interim = c.read_reply();
  ASSERT_TRUE(interim) << c.last_error();
  EXPECT_EQ(interim->status, 100u);
  // An interim response is a response too: it names the server like every other.
  EXPECT_EQ(interim->header_names(), (std::vector<std::string>{"Server"}));
  EXPECT_EQ(interim->header("Server"), "Nydus API");
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(c.send("hello"));
  auto reply = c.read_reply();
  ASSERT_TRUE(reply) << c.last_error();
  EXPECT_EQ(reply->status, 200u);
  EXPECT_EQ(nlohmann::json::parse(reply->body)["body"], "hello");
}

TEST_F(HttpServerTest, ExpectContinueNotSentWhenBodyAlreadyArrived) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpRequest r, HttpResponder respond) { respond(echo(r)); }));
  RawClient c = connect();
  ASSERT_TRUE(c.send("PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"));
  auto reply = c.read_reply();
  ASSERT_TRUE(reply) << c.last_error();
  EXPECT_EQ(reply->status, 200u);
}

TEST_F(HttpServerTest, ChunkedBodyIsDecoded) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpRequest r, HttpResponder respond) { respond(echo(r)); }));
  auto reply = testutil::round_trip(socket_path(),
                                    "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  ASSERT_TRUE(reply);
  EXPECT_EQ(nlohmann::json::parse(reply->body)["body"], "hello world");
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  std::atomic<int> calls{0};
  ASSERT_NO_FATAL_FAILURE(start([&](HttpRequest r, HttpResponder respond) {
    ++calls;
    respond(echo(r));
  }));
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/bye", "Connection: close\r\n") + get("/after")));
  auto reply = c.read_reply();
  ASSERT_TRUE(reply) << c.last_error();
  EXPECT_EQ(reply->header("Connection"), "close");
  EXPECT_TRUE(c.wait_closed());
  EXPECT_EQ(calls, 1) << "a request after Connection: close was handled";
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveStaysOpen) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpRequest r, HttpResponder respond) { respond(echo(r)); }));
  RawClient c = connect();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(c.send("GET /old HTTP/1.0\r\n\r\n"));
    auto reply = c.read_reply();
    ASSERT_TRUE(reply) << c.last_error();
    EXPECT_EQ(reply->header("Connection"), "keep-alive");
  }
}

TEST_F(HttpServerTest, ResponseCloseFlagClosesConnection) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpRequest, HttpResponder respond) {
    HttpResponse r;
    r.status = 204;
    r.close = true;
    respond(std::move(r));
  }));
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/")));
  auto reply = c.read_reply();
  ASSERT_TRUE(reply) << c.last_error();
  EXPECT_EQ(reply->header("Connection"), "close");
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(HttpServerTest, EmptyBodiesAreFramed) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpRequest r, HttpResponder respond) {
    HttpResponse resp;
    resp.status = r.target == "/204" ? 204 : 200;
    respond(std::move(resp));
  }));
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/200") + get("/204") + get("/200")));
  auto ok = c.read_reply();
  ASSERT_TRUE(ok) << c.last_error();
  EXPECT_EQ(ok->header_names(), (std::vector<std::string>{"Server", "Connection", "Content-Length"}));
  EXPECT_EQ(ok->header("Content-Length"), "0");
  auto none = c.read_reply();
  ASSERT_TRUE(none) << c.last_error();
  EXPECT_EQ(none->status, 204u);
  EXPECT_EQ(none->header_names(), (std::vector<std::string>{"Server", "Connection"}));
  auto again = c.read_reply();
  ASSERT_TRUE(again) << c.last_error();
  EXPECT_EQ(again->status, 200u);
}

TEST_F(HttpServerTest, HalfClosedClientStillGetsReplies) {
  Parked parked;
  ASSERT_NO_FATAL_FAILURE(start(parked.handler()));
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/1") + get("/2")));
  c.shutdown_write();
  ASSERT_TRUE(parked.wait_for(2));
  std::this_thread::sleep_for(50ms);  // let the server see the EOF first
  parked.answer("/2");
  parked.answer("/1");
  for (std::string want : {"/1", "/2"}) {
    auto reply = c.read_reply();
    ASSERT_TRUE(reply) << c.last_error();
    EXPECT_EQ(target_of(*reply), want);
  }
  EXPECT_TRUE(c.wait_closed());
}

}  // namespace
}  // namespace nydus::api
