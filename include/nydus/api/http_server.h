// HTTP/1.1 server on a Unix stream socket: the transport under the nydus API.
//
// It knows nothing of routes or daemons: every complete request is handed to an
// HttpHandler together with a one-shot HttpResponder. The handler runs on the
// I/O thread and must not block; it may answer inline (the fast path for
// requests the daemon can answer at once) or keep the responder and call it
// later from any thread (slow requests such as mount). Responses on one
// connection always go out in request order, whatever order handlers finish in.
//
// Transport behaviour (covered by tests/api/http_{server,handler,limits,
// socket_file,request_reader}_test.cc):
//  * keep-alive always (HTTP/1.0 too), unless the client sends
//    `Connection: close` or the response sets `close`; pipelined requests are
//    answered in order (at most `pipeline_limit` queued per connection before
//    reading pauses); idle connections are never timed out;
//  * partial requests are buffered until complete; `Expect: 100-continue` gets
//    an interim 100 (HTTP/1.1, body within limits, body not already sent);
//    chunked request bodies are decoded;
//  * a header section still incomplete `header_timeout` after its first byte
//    -> 408 and close; a body still incomplete `header_timeout` after its
//    header (or after the 100 Continue was written) -> 408 and close;
//    header section over `header_limit` -> 431 and close; body over
//    `body_limit` -> 413 and close, without reading the body (a declared
//    Content-Length is checked with the header; chunked bodies as they come);
//  * malformed requests -> 400 {"code":"BadRequest","message":"<parser
//    error>"} and close (the byte stream cannot be trusted any more); replies
//    to requests before it still go out first;
//  * more than `max_connections` open -> 503 with a JSON body, then close;
//  * a client that half-closes after sending still gets its replies;
//  * every final response carries `Server: Nydus API` (the interim 100 is
//    the bare status line); transport error bodies are {"code","message"}
//    JSON with the codes BadRequest (400), RequestTimeout (408),
//    PayloadTooLarge (413), HeaderTooLarge (431), Internal (500),
//    TooManyConnections (503);
//  * a handler that throws -> 500 Internal with the exception's what(), the
//    connection stays usable; a responder destroyed without being called ->
//    500 Internal "handler dropped the request"; calls after the first are
//    ignored; a status outside 200..999 -> 500. The transport never looks at
//    the method: a HEAD answer with a body is sent with that body.
//
// Socket file rules: created with `socket_mode` (default 0600), with no
// window where it is more accessible (the mode is set on the socket before
// bind(); the process umask is not touched). At start an existing path that
// is a stale socket (connect() refused) is replaced; a live socket or a
// non-socket file is left untouched and start fails. At stop the path is
// removed only if it is still the socket this server created.
//
// Thread-safety: start/stop/wait/socket_path/connection_count may be called
// from any thread. With io_threads > 1 the handler runs concurrently on
// several threads (one request of a given connection at a time).
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
  // JSON text (or what content_type says). Non-empty: sent with Content-Type
  // and Content-Length. Empty: no Content-Type; Content-Length: 0 except for 204.
  std::string body;
  // Close the connection after this response.
  bool close = false;
  // Called once this response has been written to the socket (or the
  // connection failed or was closed before it could be). Used by "exit" to
  // flush its 204 before the process goes away. Runs on the I/O thread; must
  // not block; may call HttpServer::stop(). Exceptions are logged and
  // swallowed. Not called if the server is destroyed before the response
  // reaches the I/O thread.
  std::function<void()> on_sent;
  // Content-Type of a non-empty body; empty means application/json.
  std::string content_type;
};

// Delivers the response for one request; call once, from any thread, also
// after the server is gone (then it does nothing). Copies share one state: the
// first call wins, later ones are ignored. If every copy is destroyed uncalled,
// the client gets a 500. Calling it inline from the handler is the fast path.
using HttpResponder = std::function<void(HttpResponse)>;
// Invoked on an I/O thread for each complete request. Must not block; may
// throw (-> 500). Keep the responder to answer later from another thread.
using HttpHandler = std::function<void(HttpRequest, HttpResponder)>;

struct HttpServerOptions {
  std::string socket_path;
  unsigned socket_mode = 0600;
  std::size_t max_connections = 1024;   // open connections; more get 503
  std::size_t body_limit = 1 << 20;     // bytes; more -> 413
  std::size_t header_limit = 64 << 10;  // bytes of request line + headers; more -> 431
  // Slow-loris guard -> 408: limit for the rest of a header section once its
  // first byte arrived, and again for a body once its header is complete.
  // Never applies to an idle connection.
  std::chrono::milliseconds header_timeout{30000};
  std::size_t pipeline_limit = 16;      // queued responses per connection before reading pauses
  unsigned io_threads = 1;              // threads running the I/O loop and the handler
};

// The JSON error body used for transport errors: {"code":"<code>","message":"<message>"}.
std::string transport_error_body(std::string_view code, std::string_view message);

class HttpServer {
 public:
  // Binds the socket per the rules above and starts the I/O thread(s).
  // Errors: kAlreadyExists (live socket or non-socket file at the path),
  // kInvalidArgument (empty or over-long path, no handler, a zero io_threads,
  // pipeline_limit, max_connections or header_timeout), kIo for failing
  // system calls (message names the call and the path), kInternal if the
  // I/O machinery cannot be set up.
  static Result<std::unique_ptr<HttpServer>> start(HttpServerOptions options, HttpHandler handler);

  // Stops (if running), joins the I/O threads, removes the socket file if
  // still ours. Must not run on one of the server's own I/O threads.
  ~HttpServer();

  // Stops accepting, removes the socket file (if still ours), closes every
  // connection (responses not yet written are dropped; their on_sent runs),
  // wakes wait(). Does not block. Idempotent; any thread, including from
  // inside a handler (an inline answer is handed to the socket before the
  // connection closes, as far as the socket buffer takes it) or an on_sent
  // callback.
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
