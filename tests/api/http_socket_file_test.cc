// HttpServer socket file rules (wire contract §10 #3, #30), option checks and
// transport_error_body.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nydus/api/http_server.h"
#include "util/raw_client.h"

namespace nydus::api {
namespace {

using namespace std::chrono_literals;
using testutil::RawClient;
using testutil::TempDir;

const std::string kRequest = "GET / HTTP/1.1\r\nHost: n\r\n\r\n";

HttpHandler ok_handler() {
  return [](HttpRequest, HttpResponder respond) {
    HttpResponse r;
    r.body = "{}";
    respond(std::move(r));
  };
}

Result<std::unique_ptr<HttpServer>> start_at(const std::string& path, unsigned mode = 0600) {
  HttpServerOptions o;
  o.socket_path = path;
  o.socket_mode = mode;
  return HttpServer::start(o, ok_handler());
}

bool serves(const std::string& path) {
  auto reply = testutil::round_trip(path, kRequest);
  return reply && reply->status == 200;
}

// Binds a socket at `path` and closes it without unlinking: a stale socket
// file, as left behind by a crashed daemon.
void make_stale_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << std::strerror(errno);
  ::close(fd);
}

struct stat lstat_or_fail(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

TEST(HttpSocketFileTest, SocketIsCreatedWithMode0600) {
  TempDir dir;
  mode_t old = ::umask(022);  // alone, the usual umask would give 0755
  auto server = start_at(dir.file("api.sock"));
  ::umask(old);
  ASSERT_TRUE(server) << server.error().to_string();
  struct stat st = lstat_or_fail(dir.file("api.sock"));
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ((*server)->socket_path(), dir.file("api.sock"));
}

TEST(HttpSocketFileTest, ModeIsExactEvenWhenTheUmaskWouldStripIt) {
  TempDir dir;
  mode_t old = ::umask(077);
  auto server = start_at(dir.file("api.sock"), 0660);
  ::umask(old);
  ASSERT_TRUE(server) << server.error().to_string();
  EXPECT_EQ(lstat_or_fail(dir.file("api.sock")).st_mode & 07777, 0660u);
}

TEST(HttpSocketFileTest, StaleSocketIsReplaced) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(make_stale_socket(dir.file("api.sock")));
  ASSERT_FALSE(serves(dir.file("api.sock")));
  auto server = start_at(dir.file("api.sock"));
  ASSERT_TRUE(server) << server.error().to_string();
  EXPECT_TRUE(serves(dir.file("api.sock")));  // a stale socket refuses connections
}

TEST(HttpSocketFileTest, LiveSocketIsRefusedAndKeepsServing) {
  TempDir dir;
  auto first = start_at(dir.file("api.sock"));
  ASSERT_TRUE(first) << first.error().to_string();
  auto second = start_at(dir.file("api.sock"));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(second.error().message(), dir.file("api.sock") + " is in use by a live daemon");
  EXPECT_TRUE(serves(dir.file("api.sock")));
}

TEST(HttpSocketFileTest, RegularFileIsRefusedAndLeftIntact) {
  TempDir dir;
  { std::ofstream(dir.file("api.sock")) << "precious"; }
  auto server = start_at(dir.file("api.sock"));
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(server.error().message(), "refusing to replace " + dir.file("api.sock") + ": not a socket");
  std::ifstream in(dir.file("api.sock"));
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), "precious");
}

TEST(HttpSocketFileTest, DirectoryIsRefused) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.file("api.sock").c_str(), 0700), 0);
  auto server = start_at(dir.file("api.sock"));
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_TRUE(exists(dir.file("api.sock")));
}

TEST(HttpSocketFileTest, OverlongPathIsInvalidArgument) {
  TempDir dir;
  auto server = start_at(dir.file(std::string(120, 'a')));
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(server.error().message().find("too long"), std::string::npos) << server.error().message();
}

TEST(HttpSocketFileTest, MissingDirectoryIsIoErrorNamingThePath) {
  TempDir dir;
  auto server = start_at(dir.file("missing/api.sock"));
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code(), ErrorCode::kIo);
  EXPECT_NE(server.error().message().find(dir.file("missing/api.sock")), std::string::npos);
}

TEST(HttpSocketFileTest, SocketIsRemovedAtStop) {
  TempDir dir;
  auto server = start_at(dir.file("api.sock"));
  ASSERT_TRUE(server) << server.error().to_string();
  (*server)->stop();
  (*server)->wait();
  EXPECT_FALSE(exists(dir.file("api.sock")));
}

TEST(HttpSocketFileTest, ReplacedSocketIsNotRemovedAtStop) {
  TempDir dir;
  auto server = start_at(dir.file("api.sock"));
  ASSERT_TRUE(server) << server.error().to_string();
  // A successor daemon took the path over meanwhile.
  ASSERT_EQ(::unlink(dir.file("api.sock").c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(make_stale_socket(dir.file("api.sock")));
  ino_t successor = lstat_or_fail(dir.file("api.sock")).st_ino;
  server->reset();  // stops and waits
  ASSERT_TRUE(exists(dir.file("api.sock")));
  EXPECT_EQ(lstat_or_fail(dir.file("api.sock")).st_ino, successor);
}

TEST(HttpSocketFileTest, InvalidOptionsAreRejected) {
  TempDir dir;
  HttpServerOptions o;
  o.socket_path = dir.file("api.sock");
  EXPECT_EQ(HttpServer::start(o, nullptr).error().code(), ErrorCode::kInvalidArgument);
  o.io_threads = 0;
  EXPECT_EQ(HttpServer::start(o, ok_handler()).error().code(), ErrorCode::kInvalidArgument);
  o.io_threads = 1;
  o.socket_path = "";
  EXPECT_EQ(HttpServer::start(o, ok_handler()).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(exists(dir.file("api.sock")));
}

TEST(TransportErrorBodyTest, IsValidJsonWithEscapes) {
  std::string body = transport_error_body("BadRequest", "line\n\"quoted\" \\ \x01 \xff end");
  auto j = nlohmann::json::parse(body);  // throws (fails the test) if invalid
  EXPECT_EQ(j.size(), 2u);
  EXPECT_EQ(j["code"], "BadRequest");
  EXPECT_EQ(j["message"], "line\n\"quoted\" \\ \x01 \xEF\xBF\xBD end");
  EXPECT_EQ(transport_error_body("Internal", "x"), R"({"code":"Internal","message":"x"})");
}

}  // namespace
}  // namespace nydus::api
