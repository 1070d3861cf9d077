// HTTP/1.1 server on a Unix stream socket: the transport under the nydus API.
//
// It knows nothing of routes or daemons: every complete request is handed to an
// HttpHandler together with a one-shot HttpResponder. The handler runs on the
// I/O thread and must not block; it may answer inline (the fast path for
// requests the daemon can answer at once) or keep the responder and call it
// later from any thread (slow requests such as mount). Responses on one
// connection always go out in request order, whatever order handlers finish in.
//
// Transport behaviour (each covered by tests/api/http_server_test.cc):
//  * keep-alive always, unless the client sends `Connection: close`; pipelined
//    requests are answered in order; idle connections are never timed out;
//  * partial requests are buffered until complete; `Expect: 100-continue` gets
//    an interim 100; chunked request bodies are decoded;
//  * a header section still incomplete `header_timeout` after its first byte
//    -> 408 and close; header section over `header_limit` -> 431 and close;
//    body over `body_limit` -> 413 and close, without reading the body;
//  * more than `max_connections` open -> 503 with a JSON body, then close;
//  * a client that half-closes after sending still gets its replies;
//  * every response carries `Server: Nydus API`; every transport error body is
//    JSON of the shape {"code": "...", "message": "..."};
//  * a handler that throws -> 500, never a crash.
//
// Socket file rules: created with `socket_mode` (default 0600). At start an
// existing path that is a stale socket (nobody accepts) is replaced; a live
// socket or a non-socket file is left untouched and start fails. At stop the
// path is removed only if it is still the socket this server created.
//
// Thread-safety: start/stop/wait may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "nydus/result.h"

namespace nydus::api {

struct HttpRequest {
  std::string method;  // as sent, e.g. "GET"
  std::string target;  // request-target as sent, e.g. "/api/v1/mount?mountpoint=%2Fa"
  std::string body;    // decoded body (chunked bodies are de-chunked)
  unsigned version = 11;  // 10 or 11

  // nydus's notion of "has a body": a non-empty body (Content-Length > 0 or chunks).
  bool has_body() const { return !body.empty(); }
};

struct HttpResponse {
  unsigned status = 200;
  // JSON text. Non-empty: sent with Content-Type: application/json and
  // Content-Length. Empty: no Content-Type; Content-Length: 0 except for 204.
  std::string body;
  // Close the connection after this response.
  bool close = false;
  // Called once this response has been written to the socket (or the
  // connection failed before it could be). Used by "exit" to flush its 204
  // before the process goes away. Runs on the I/O thread; must not block.
  std::function<void()> on_sent;
};

// Calls deliver the response for one request; call exactly once, from any thread.
using HttpResponder = std::function<void(HttpResponse)>;
// Invoked on the I/O thread for each complete request. Must not block.
using HttpHandler = std::function<void(HttpRequest, HttpResponder)>;

struct HttpServerOptions {
  std::string socket_path;
  unsigned socket_mode = 0600;
  std::size_t max_connections = 1024;   // open connections; more get 503
  std::size_t body_limit = 1 << 20;     // bytes; more -> 413
  std::size_t header_limit = 64 << 10;  // bytes of request line + headers; more -> 431
  std::chrono::milliseconds header_timeout{30000};  // slow-loris guard -> 408
  std::size_t pipeline_limit = 16;      // queued responses per connection before reading pauses
  unsigned io_threads = 1;
};

// The JSON error body used for transport errors: {"code":"<code>","message":"<message>"}.
std::string transport_error_body(std::string_view code, std::string_view message);

class HttpServer {
 public:
  // Binds the socket per the rules above and starts the I/O thread(s).
  // Errors: kAlreadyExists (live socket or non-socket file at the path),
  // kIo / kInvalidArgument for bind/listen failures (message names the path).
  static Result<std::unique_ptr<HttpServer>> start(HttpServerOptions options, HttpHandler handler);

  // Stops (if running), joins the I/O threads, removes the socket file if still ours.
  ~HttpServer();

  // Stops accepting, closes every connection, wakes wait(). Idempotent; any thread,
  // including from inside a handler or an on_sent callback.
  void stop();
  // Blocks until stop() has been called and the I/O threads have finished.
  void wait();

  const std::string& socket_path() const;
  // Currently open connections (for tests and metrics).
  std::size_t connection_count() const;

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nydus::api
