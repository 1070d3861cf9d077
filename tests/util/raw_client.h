// Test helpers for talking raw HTTP/1.1 over a Unix socket.
//
// RawClient is a blocking client that sends exactly the bytes it is given and
// reads with timeouts, so tests can split, pipeline, half-close or stall
// requests and see exactly what the server sends back (status line, headers in
// order, body). TempDir makes a unique directory under /tmp for sockets.
//
// Typical use:
//   TempDir dir;
//   ... start a server on dir.file("api.sock") ...
//   auto c = RawClient::connect(dir.file("api.sock"));
//   ASSERT_TRUE(c) << c.error().to_string();
//   c->send("GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\n\r\n");
//   auto reply = c->read_reply();
//   ASSERT_TRUE(reply);
//   EXPECT_EQ(reply->status, 200);
//
// A server that closes a Unix socket with unread input makes the client's
// reads fail with ECONNRESET after the data already queued; RawClient reports
// that like an orderly EOF ("closed").
//
// Thread-safety: one thread per RawClient; distinct clients are independent.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nydus/result.h"
#include "util/wait.h"

namespace nydus::testutil {

using namespace std::chrono_literals;

// One HTTP response as received.
struct HttpReply {
  std::string version;  // e.g. "HTTP/1.1"
  unsigned status = 0;
  std::string reason;   // may be empty
  std::vector<std::pair<std::string, std::string>> headers;  // in order; values trimmed
  std::string body;

  // Value of the first header called `name` (case-insensitive), if any.
  std::optional<std::string> header(std::string_view name) const;
  // Header names in the order received.
  std::vector<std::string> header_names() const;
};

class RawClient {
 public:
  // Connects to the AF_UNIX stream socket at `path`.
  // Errors: kInvalidArgument (path too long), kIo (socket/connect failed).
  static Result<RawClient> connect(const std::string& path);
  // A client that never connected: every send and read fails at once with
  // `why` as last_error(), so a test that could not connect fails its checks
  // instead of stopping the binary.
  static RawClient unconnected(std::string why);

  RawClient(RawClient&& other) noexcept;
  RawClient& operator=(RawClient&& other) noexcept;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  ~RawClient();  // closes the socket

  // Writes all of `bytes` (blocking). False if the peer is gone (EPIPE, ...).
  bool send(std::string_view bytes);
  // shutdown(SHUT_WR): the server sees EOF after what was sent.
  void shutdown_write();
  void close();

  // Reads one response: status line, headers, then a body framed by
  // Content-Length; 1xx, 204 and 304 have no body; without Content-Length the
  // body runs to EOF. nullopt on timeout, EOF before a complete response, or
  // a malformed response (see last_error()). Bytes after the response stay
  // buffered for the next call.
  std::optional<HttpReply> read_reply(std::chrono::milliseconds timeout = kHangGuard);

  // Reads whatever arrives within `timeout` (buffered bytes first); stops at
  // the first data, EOF or timeout. Empty = nothing arrived.
  std::string read_some(std::chrono::milliseconds timeout);

  // True if the server closes the connection within `timeout`; data arriving
  // meanwhile is kept for read_reply().
  bool wait_closed(std::chrono::milliseconds timeout = kHangGuard);
  // True if for all of `duration` nothing arrives and the connection stays
  // open (e.g. no timeout on an idle connection, no spurious response).
  bool stays_silent(std::chrono::milliseconds duration);

  // Bytes received but not consumed by read_reply().
  const std::string& buffered() const { return buf_; }
  bool eof() const { return eof_; }
  const std::string& last_error() const { return error_; }
  int fd() const { return fd_; }

 private:
  explicit RawClient(int fd) : fd_(fd) {}
  // Waits up to `timeout` for more bytes and appends them to buf_. Returns
  // false on timeout or EOF (then eof_ is set).
  bool fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
  std::string error_;
};

// Connect, send `request`, read one reply, close. nullopt on any failure.
std::optional<HttpReply> round_trip(const std::string& socket_path, std::string_view request,
                                    std::chrono::milliseconds timeout = kHangGuard);

// One request (`body` with its Content-Length when not empty) over a fresh
// connection; an empty reply (status 0) on a transport failure. The timeout is
// generous: a mount of a large image, a loaded machine under ASan.
HttpReply call_at(const std::string& socket_path, const std::string& method, const std::string& target,
                  const std::string& body = "", std::chrono::milliseconds timeout = std::chrono::seconds(30));
// Polls GET /api/v1/daemon at `socket_path` until its "state" is `state`
// ("INIT", "READY", "RUNNING"); false on the hang guard.
bool wait_state(const std::string& socket_path, const std::string& state);

// A unique directory under /tmp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();  // a test failure (ADD_FAILURE) if it cannot be made
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string file(std::string_view name) const;

 private:
  std::string path_;
};

}  // namespace nydus::testutil
