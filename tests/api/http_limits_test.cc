// HttpServer limits and timeouts: idle connections, slow senders, oversized
// headers and bodies, the connection cap, malformed requests, accept errors.
// Every transport error must be JSON {"code","message"} with `Server: Nydus
// API`, followed by the server closing the connection.
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "nydus/api/http_server.h"
#include "util/http_server_fixture.h"

namespace nydus::api {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testutil::HttpReply;
using testutil::eventually;
using testutil::RawClient;
using testutil::TempDir;

std::string get(std::string_view target) { return "GET " + std::string(target) + " HTTP/1.1\r\nHost: n\r\n\r\n"; }

// Checks a transport error reply and that the server then closes.
void expect_transport_error(RawClient& c, unsigned status, std::string_view code,
                            std::string_view message_part = "") {
  auto reply = c.read_reply();
  ASSERT_TRUE(reply) << c.last_error();
  EXPECT_EQ(reply->status, status);
  EXPECT_EQ(reply->header("Server"), "Nydus API");
  EXPECT_EQ(reply->header("Connection"), "close");
  EXPECT_EQ(reply->header("Content-Type"), "application/json");
  nlohmann::json j = nlohmann::json::parse(reply->body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << "not JSON: " << reply->body;
  EXPECT_EQ(j["code"], code);
  ASSERT_TRUE(j["message"].is_string());
  EXPECT_NE(j["message"].get<std::string>().find(message_part), std::string::npos) << j["message"];
  EXPECT_TRUE(c.wait_closed()) << "connection left open after a transport error";
}

class HttpLimitsTest : public testutil::HttpServerFixture {
 protected:
  // Requests for "/park" are held in parked_ until the test answers them.
  void start(const std::function<void(HttpServerOptions&)>& tweak = {}) {
    HttpServerFixture::start([this](HttpRequest r, HttpResponder respond) {
      ++calls_;
      HttpResponse resp;
      resp.body = nlohmann::json{{"target", r.target}}.dump();
      if (r.target == "/park") {
        std::lock_guard lock(mu_);
        parked_ = [respond, resp] { respond(resp); };
        return;
      }
      respond(std::move(resp));
    }, [&](HttpServerOptions& o) {
      o.header_timeout = 300ms;
      if (tweak) tweak(o);
    });
  }

  void answer_parked() {
    std::function<void()> f;
    {
      std::lock_guard lock(mu_);
      f = std::move(parked_);
    }
    ASSERT_TRUE(f);
    f();
  }

  std::atomic<int> calls_{0};
  std::mutex mu_;
  std::function<void()> parked_;  // guarded by mu_
};

TEST_F(HttpLimitsTest, IdleConnectionIsNeverTimedOut) {
  ASSERT_NO_FATAL_FAILURE(start());
  RawClient fresh = connect();
  RawClient used = connect();
  ASSERT_TRUE(used.send(get("/first")));
  ASSERT_TRUE(used.read_reply());
  // Well past header_timeout (300 ms) with nothing sent.
  EXPECT_TRUE(fresh.stays_silent(800ms));
  EXPECT_TRUE(used.stays_silent(10ms));
  for (RawClient* c : {&fresh, &used}) {
    ASSERT_TRUE(c->send(get("/later")));
    auto reply = c->read_reply();
    ASSERT_TRUE(reply) << c->last_error();
    EXPECT_EQ(reply->status, 200u);
  }
}

TEST_F(HttpLimitsTest, IncompleteHeaderGets408AfterTimeout) {
  ASSERT_NO_FATAL_FAILURE(start());
  RawClient c = connect();
  auto t0 = Clock::now();
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: n\r\n"));
  ASSERT_NO_FATAL_FAILURE(expect_transport_error(c, 408, "RequestTimeout", "header"));
  EXPECT_GE(Clock::now() - t0, 300ms);  // never before the deadline; how late depends on the machine
  EXPECT_EQ(calls_, 0);
}

// The deadline runs from the first byte and is not extended by progress.
TEST_F(HttpLimitsTest, TricklingHeaderStillTimesOut) {
  ASSERT_NO_FATAL_FAILURE(start());
  RawClient c = connect();
  // One byte per 40 ms: the whole header would take over 10 s, far past the
  // 300 ms deadline however loaded the machine is.
  std::string header = "GET /slow-loris HTTP/1.1\r\nX-Pad: " + std::string(260, 'a') + "\r\n\r\n";
  std::size_t sent = 0;
  while (sent < header.size() && c.send(header.substr(sent++, 1))) {
    if (!c.stays_silent(40ms)) break;  // the reply stays buffered for below
  }
  EXPECT_LT(sent, header.size()) << "the whole header went through without a 408";
  ASSERT_NO_FATAL_FAILURE(expect_transport_error(c, 408, "RequestTimeout"));
}

TEST_F(HttpLimitsTest, IncompleteBodyGets408AfterTimeout) {
  ASSERT_NO_FATAL_FAILURE(start());
  RawClient c = connect();
  ASSERT_TRUE(c.send("PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"));
  ASSERT_NO_FATAL_FAILURE(expect_transport_error(c, 408, "RequestTimeout", "body"));
  EXPECT_EQ(calls_, 0);
}

// The 100 Continue waits behind a slow earlier response; the client cannot
// send its body before seeing it, so the body deadline must not run meanwhile.
TEST_F(HttpLimitsTest, BodyDeadlineStartsWhenContinueIsWritten) {
  // The client must send its body within the deadline once the 100 is out:
  // 1 s leaves a loaded machine ample time for that read-then-send.
  ASSERT_NO_FATAL_FAILURE(start([](HttpServerOptions& o) { o.header_timeout = 1s; }));
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/park") + "PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  ASSERT_TRUE(eventually([&] { return calls_ == 1; }));
  EXPECT_TRUE(c.stays_silent(2s)) << c.buffered();  // 2x header_timeout
  ASSERT_NO_FATAL_FAILURE(answer_parked());
  auto first = c.read_reply();
  ASSERT_TRUE(first) << c.last_error();
  EXPECT_EQ(first->status, 200u);
  auto interim = c.read_reply();
  ASSERT_TRUE(interim) << c.last_error();
  EXPECT_EQ(interim->status, 100u);
  ASSERT_TRUE(c.send("hello"));
  auto reply = c.read_reply();
  ASSERT_TRUE(reply) << c.last_error();
  EXPECT_EQ(reply->status, 200u);
  // ...but it does run once the 100 is out.
  ASSERT_TRUE(c.send("PUT /y HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  interim = c.read_reply();
  ASSERT_TRUE(interim) << c.last_error();
  EXPECT_EQ(interim->status, 100u);
  ASSERT_NO_FATAL_FAILURE(expect_transport_error(c, 408, "RequestTimeout", "body"));
}

TEST_F(HttpLimitsTest, OversizedHeaderGets431) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpServerOptions& o) { o.header_limit = 1024; }));
  RawClient c = connect();
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"));
  ASSERT_NO_FATAL_FAILURE(expect_transport_error(c, 431, "HeaderTooLarge"));
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpLimitsTest, OversizedUnterminatedHeaderGets431WithoutWaiting) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpServerOptions& o) {
    o.header_limit = 1024;
    o.header_timeout = 10s;
  }));
  RawClient c = connect();
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a')));
  ASSERT_NO_FATAL_FAILURE(expect_transport_error(c, 431, "HeaderTooLarge"));
}

TEST_F(HttpLimitsTest, DeclaredBodyOverLimitGets413BeforeBodyIsSent) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpServerOptions& o) {
    o.body_limit = 100;
    o.header_timeout = 10s;
  }));
  RawClient at_limit = connect();
  ASSERT_TRUE(at_limit.send("PUT /ok HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b')));
  auto reply = at_limit.read_reply();
  ASSERT_TRUE(reply) << at_limit.last_error();
  EXPECT_EQ(reply->status, 200u);

  RawClient c = connect();
  ASSERT_TRUE(c.send("PUT /big HTTP/1.1\r\nContent-Length: 101\r\n\r\n"));  // no body sent
  ASSERT_NO_FATAL_FAILURE(expect_transport_error(c, 413, "PayloadTooLarge"));
  EXPECT_EQ(calls_, 1);
}

TEST_F(HttpLimitsTest, ChunkedBodyOverLimitGets413) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpServerOptions& o) { o.body_limit = 100; }));
  RawClient c = connect();
  ASSERT_TRUE(c.send("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n60\r\n" + std::string(96, 'a') +
                     "\r\n10\r\n" + std::string(16, 'a') + "\r\n0\r\n\r\n"));
  ASSERT_NO_FATAL_FAILURE(expect_transport_error(c, 413, "PayloadTooLarge"));
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpLimitsTest, ExpectContinueWithOversizedBodyGets413Not100) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpServerOptions& o) { o.body_limit = 100; }));
  RawClient c = connect();
  ASSERT_TRUE(c.send("PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n"));
  ASSERT_NO_FATAL_FAILURE(expect_transport_error(c, 413, "PayloadTooLarge"));
}

TEST_F(HttpLimitsTest, ConnectionsOverTheLimitGet503) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpServerOptions& o) { o.max_connections = 2; }));
  RawClient a = connect();
  RawClient b = connect();
  for (RawClient* c : {&a, &b}) {
    ASSERT_TRUE(c->send(get("/")));
    ASSERT_TRUE(c->read_reply());
  }
  EXPECT_EQ(server_->connection_count(), 2u);
  RawClient over = connect();
  ASSERT_NO_FATAL_FAILURE(expect_transport_error(over, 503, "TooManyConnections"));
  EXPECT_EQ(server_->connection_count(), 2u);

  a.close();
  ASSERT_TRUE(eventually([&] { return server_->connection_count() == 1; }));
  RawClient again = connect();
  ASSERT_TRUE(again.send(get("/")));
  auto reply = again.read_reply();
  ASSERT_TRUE(reply) << again.last_error();
  EXPECT_EQ(reply->status, 200u);
}

TEST_F(HttpLimitsTest, MalformedRequestsGet400WithBeastMessage) {
  ASSERT_NO_FATAL_FAILURE(start());
  struct Case {
    std::string bytes;
    std::string message;
  };
  for (const Case& k : {Case{"GET / HTTP/2.0\r\n\r\n", "bad version"}, Case{" / HTTP/1.1\r\n\r\n", "bad method"},
                        Case{"GET / HTTP/1.1\r\nNoColon\r\n\r\n", "bad field"},
                        Case{"PUT / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "bad Content-Length"}}) {
    SCOPED_TRACE(k.bytes);
    RawClient c = connect();
    ASSERT_TRUE(c.send(k.bytes));
    ASSERT_NO_FATAL_FAILURE(expect_transport_error(c, 400, "BadRequest", k.message));
  }
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpLimitsTest, ParseErrorComesAfterEarlierReplies) {
  ASSERT_NO_FATAL_FAILURE(start());
  RawClient c = connect();
  ASSERT_TRUE(c.send(get("/ok") + "GET / HTTP/9.9\r\n\r\n"));
  auto first = c.read_reply();
  ASSERT_TRUE(first) << c.last_error();
  EXPECT_EQ(first->status, 200u);
  ASSERT_NO_FATAL_FAILURE(expect_transport_error(c, 400, "BadRequest"));
}

TEST_F(HttpLimitsTest, PartialRequestAtEofGets400) {
  ASSERT_NO_FATAL_FAILURE(start([](HttpServerOptions& o) { o.header_timeout = 10s; }));
  RawClient c = connect();
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost"));
  c.shutdown_write();
  ASSERT_NO_FATAL_FAILURE(expect_transport_error(c, 400, "BadRequest", "partial message"));
}

// With the fd limit reached, accept() fails with EMFILE and the pending
// connection keeps the listener readable: retrying at once would spin.
// The first such connection gets the server's reserved descriptor
// (ReservedDescriptorAcceptsWhenNoneIsLeft); `first` uses it up.
TEST_F(HttpLimitsTest, AcceptErrorsBackOffInsteadOfSpinning) {
  ASSERT_NO_FATAL_FAILURE(start());
  int first = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(first, 0);
  int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(client, 0);
  int lowest_free = ::dup(0);
  ASSERT_GE(lowest_free, 0);
  ::close(lowest_free);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);  // no fd left for accept()
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = socket_path();
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(::connect(first, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << std::strerror(errno);
  const std::string hello = get("/reserve");
  ASSERT_EQ(::send(first, hello.data(), hello.size(), MSG_NOSIGNAL), static_cast<ssize_t>(hello.size()));
  pollfd served{.fd = first, .events = POLLIN, .revents = 0};
  ASSERT_EQ(::poll(&served, 1, 10000), 1) << "the reserved descriptor was not used";  // hang guard only
  int rc = ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  rusage before{}, after{};
  ::getrusage(RUSAGE_SELF, &before);
  std::this_thread::sleep_for(500ms);
  ::getrusage(RUSAGE_SELF, &after);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_EQ(rc, 0) << std::strerror(errno);

  auto cpu = [](const rusage& u) {
    return std::chrono::seconds(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           std::chrono::microseconds(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  };
  EXPECT_LT(cpu(after) - cpu(before), 100ms) << "accept loop spins on EMFILE";

  // Once fds are available again, the waiting connection is served.
  const std::string request = get("/after-emfile");
  ASSERT_EQ(::send(client, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  pollfd p{.fd = client, .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&p, 1, static_cast<int>(testutil::kHangGuard.count())), 1) << "connection not served after the fd limit was lifted";
  char buf[64] = {};
  EXPECT_GT(::recv(client, buf, sizeof(buf) - 1, 0), 0);
  EXPECT_EQ(std::string_view(buf).substr(0, 12), "HTTP/1.1 200");
  ::close(client);
  ::close(first);
}

// Issue #11 item 9: with every descriptor taken (a FUSE client holding files
// open), the management API must still answer, not wait for the limit to lift.
TEST_F(HttpLimitsTest, ReservedDescriptorAcceptsWhenNoneIsLeft) {
  ASSERT_NO_FATAL_FAILURE(start());
  int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(client, 0);
  int lowest_free = ::dup(0);
  ASSERT_GE(lowest_free, 0);
  ::close(lowest_free);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  struct Restore {
    rlimit lim;
    ~Restore() { ::setrlimit(RLIMIT_NOFILE, &lim); }
  } restore{saved};
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(lowest_free);  // no descriptor left but the server's reserve
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &tight), 0);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = socket_path();
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << std::strerror(errno);
  const std::string request = get("/while-exhausted");
  ASSERT_EQ(::send(client, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  pollfd p{.fd = client, .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&p, 1, 10000), 1) << "not served while descriptors are exhausted";  // hang guard only
  char buf[64] = {};
  EXPECT_GT(::recv(client, buf, sizeof(buf) - 1, MSG_DONTWAIT), 0);
  EXPECT_EQ(std::string_view(buf).substr(0, 12), "HTTP/1.1 200");
  ::close(client);
}

}  // namespace
}  // namespace nydus::api
