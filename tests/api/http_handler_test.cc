// HttpServer's side of the handler contract: exceptions, misused responders,
// on_sent, stop() from a handler, several I/O threads.
#include <poll.h>

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "nydus/api/http_server.h"
#include "util/http_server_fixture.h"

namespace nydus::api {
namespace {

using namespace std::chrono_literals;
using testutil::eventually;
using testutil::RawClient;
using testutil::TempDir;

std::string get(std::string_view target) {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: nydus\r\n\r\n";
}

HttpResponse ok(std::string body = R"({"ok":true})") {
  HttpResponse r;
  r.body = std::move(body);
  return r;
}

class HttpHandlerTest : public testutil::HttpServerFixture {};

void expect_internal_error(const std::optional<testutil::HttpReply>& reply, const std::string& message) {
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 500u);
  EXPECT_EQ(reply->header("Server"), "Nydus API");
  auto j = nlohmann::json::parse(reply->body);
  EXPECT_EQ(j["code"], "Internal");
  EXPECT_EQ(j["message"], message);
}

TEST_F(HttpHandlerTest, ThrowingHandlerGets500AndServerKeepsServing) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpRequest r, HttpResponder respond) {
    if (r.target == "/throw") throw std::runtime_error("boom \"quoted\"\n");
    if (r.target == "/int") throw 42;
    respond(ok());
  }));
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/throw")));
  expect_internal_error(c.read_reply(), "boom \"quoted\"\n");
  ASSERT_TRUE(c.send(get("/int")));
  expect_internal_error(c.read_reply(), "unknown exception");
  ASSERT_TRUE(c.send(get("/fine")));
  auto reply = c.read_reply();
  ASSERT_TRUE(reply) << c.last_error();
  EXPECT_EQ(reply->status, 200u);
}

TEST_F(HttpHandlerTest, DroppedResponderGets500) {
  std::vector<HttpResponder> kept;
  std::mutex mu;
  ASSERT_NO_FATAL_FAILURE(start([&](HttpRequest r, HttpResponder respond) {
    if (r.target == "/keep") {
      std::lock_guard lock(mu);
      kept.push_back(std::move(respond));  // dropped later, from the test thread
    }
  }));
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/drop")));
  expect_internal_error(c.read_reply(), "handler dropped the request");
  ASSERT_TRUE(c.send(get("/keep")));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return !kept.empty();
  }));
  EXPECT_TRUE(c.stays_silent(100ms));  // held by the handler: no reply yet
  {
    std::lock_guard lock(mu);
    kept.clear();
  }
  expect_internal_error(c.read_reply(), "handler dropped the request");
}

TEST_F(HttpHandlerTest, SecondCallOfAResponderIsIgnored) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpRequest, HttpResponder respond) {
    HttpResponder copy = respond;
    respond(ok(R"({"n":1})"));
    copy(ok(R"({"n":2})"));
  }));
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/a")));
  auto reply = c.read_reply();
  ASSERT_TRUE(reply) << c.last_error();
  EXPECT_EQ(reply->body, R"({"n":1})");
  EXPECT_TRUE(c.stays_silent(100ms)) << c.buffered();
  ASSERT_TRUE(c.send(get("/b")));
  reply = c.read_reply();
  ASSERT_TRUE(reply) << c.last_error();
  EXPECT_EQ(reply->body, R"({"n":1})");
}

TEST_F(HttpHandlerTest, InvalidStatusBecomes500) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpRequest, HttpResponder respond) {
    HttpResponse r;
    r.status = 42;
    respond(std::move(r));
  }));
  auto reply = testutil::round_trip(socket_path(), get("/"));
  expect_internal_error(reply, "handler produced invalid status 42");
}

// A body far larger than the socket buffers cannot be written until the
// client reads, so on_sent must not have run before that.
TEST_F(HttpHandlerTest, OnSentRunsAfterTheResponseIsWritten) {
  std::promise<void> sent;
  std::atomic<bool> sent_flag{false};
  const std::string body(8 << 20, 'x');
  ASSERT_NO_FATAL_FAILURE(start([&](HttpRequest, HttpResponder respond) {
    HttpResponse r = ok(body);
    r.on_sent = [&] {
      sent_flag = true;
      sent.set_value();
    };
    respond(std::move(r));
  }));
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/big")));
  pollfd p{.fd = c.fd(), .events = POLLIN, .revents = 0};  // the server is writing now
  ASSERT_EQ(::poll(&p, 1, static_cast<int>(testutil::kHangGuard.count())), 1);
  EXPECT_FALSE(sent_flag) << "on_sent ran before the client read the response";
  auto reply = c.read_reply();
  ASSERT_TRUE(reply) << c.last_error();
  EXPECT_EQ(reply->body.size(), body.size());
  EXPECT_EQ(sent.get_future().wait_for(testutil::kHangGuard), std::future_status::ready);
}

TEST_F(HttpHandlerTest, OnSentRunsWhenTheConnectionFails) {
  std::promise<void> sent;
  std::promise<void> handled;
  ASSERT_NO_FATAL_FAILURE(start([&](HttpRequest, HttpResponder respond) {
    HttpResponse r = ok(std::string(8 << 20, 'x'));
    r.on_sent = [&] { sent.set_value(); };
    respond(std::move(r));
    handled.set_value();
  }));
  {
    RawClient c = connect();
    ASSERT_TRUE(c.send(get("/big")));
    // Close only once the response is being written, not before the request is read.
    ASSERT_EQ(handled.get_future().wait_for(testutil::kHangGuard), std::future_status::ready);
  }  // closed without reading
  EXPECT_EQ(sent.get_future().wait_for(testutil::kHangGuard), std::future_status::ready);
}

TEST_F(HttpHandlerTest, StopFromInsideAHandler) {
  ASSERT_NO_FATAL_FAILURE(start([this](HttpRequest, HttpResponder respond) {
    server_->stop();
    respond(ok());
  }));
  RawClient idle = connect();
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/exit")));
  auto reply = c.read_reply();
  ASSERT_TRUE(reply) << c.last_error();
  EXPECT_EQ(reply->status, 200u);
  auto waited = std::async(std::launch::async, [this] { server_->wait(); });
  EXPECT_EQ(waited.wait_for(testutil::kHangGuard), std::future_status::ready);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(idle.wait_closed());
  EXPECT_FALSE(RawClient::connect(socket_path()));
}

TEST_F(HttpHandlerTest, StopFromOnSent) {
  ASSERT_NO_FATAL_FAILURE(start([this](HttpRequest, HttpResponder respond) {
    HttpResponse r;
    r.status = 204;
    r.on_sent = [this] { server_->stop(); };
    respond(std::move(r));
  }));
  auto reply = testutil::round_trip(socket_path(), get("/api/v1/daemon/exit"));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 204u);
  auto waited = std::async(std::launch::async, [this] { server_->wait(); });
  EXPECT_EQ(waited.wait_for(testutil::kHangGuard), std::future_status::ready);
}

TEST_F(HttpHandlerTest, StopClosesIdleConnectionsAndWaitReturns) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpRequest, HttpResponder respond) { respond(ok()); }));
  RawClient idle = connect();
  ASSERT_TRUE(eventually([&] { return server_->connection_count() == 1; }));
  server_->stop();
  server_->stop();  // idempotent
  EXPECT_TRUE(idle.wait_closed());
  server_->wait();
  EXPECT_EQ(server_->connection_count(), 0u);
}

TEST_F(HttpHandlerTest, ResponderOutlivingTheServerIsHarmless) {
  HttpResponder late;
  std::mutex mu;
  ASSERT_NO_FATAL_FAILURE(start([&](HttpRequest, HttpResponder respond) {
    std::lock_guard lock(mu);
    late = std::move(respond);
  }));
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/slow")));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return static_cast<bool>(late);
  }));
  server_.reset();
  EXPECT_TRUE(c.wait_closed());
  late(ok());  // after the server is gone: ignored, no crash
  late = nullptr;
}

TEST_F(HttpHandlerTest, SeveralIoThreadsServeConcurrentClients) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpRequest r, HttpResponder respond) { respond(ok(r.body)); },
                                [](HttpServerOptions& o) { o.io_threads = 4; }));
  std::vector<std::thread> clients;
  std::atomic<int> good{0};
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      auto c = RawClient::connect(socket_path());
      if (!c) return;
      for (int i = 0; i < 50; ++i) {
        std::string body = std::to_string(t * 1000 + i);
        c->send("PUT / HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
        auto reply = c->read_reply();
        if (reply && reply->body == body) ++good;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(good, 8 * 50);
}

}  // namespace
}  // namespace nydus::api
