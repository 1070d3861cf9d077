// Connecting the HTTP server to a daemon: the two dispatch shapes.
//
// (a) ApiHandler (what nydusd uses): the server routes each request and calls
//     handle() on the I/O thread with a one-shot reply callback. A daemon
//     answers quick requests (info, metrics) inline — no thread hand-off — and
//     hands slow ones (mount, upgrade) to a worker that replies later, so they
//     never block other connections. Replies on one connection keep request order.
//
// (b) start_http_thread (upstream's shape, for embedders that want one API
//     thread): requests travel over a request channel to a single consumer and
//     replies come back over a response channel, one request at a time. Waking
//     the returned Waker stops the server and sends an empty message
//     (std::nullopt) on the request channel so the consumer can finish.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "nydus/api/channel.h"
#include "nydus/api/http_server.h"
#include "nydus/api/types.h"

namespace nydus::api {

// Delivers the result of one request. Call exactly once, from any thread.
// `on_sent` (optional) runs after the response has been written to the socket.
using ApiReply = std::function<void(ApiResult result, std::function<void()> on_sent)>;

class ApiHandler {
 public:
  virtual ~ApiHandler() = default;
  // Runs on the server's I/O thread; must not block.
  virtual void handle(ApiRequest request, ApiReply reply) = 0;
};

// The HttpHandler that routes requests and dispatches them to `handler`
// (which must outlive the server). Handler exceptions become 500 responses.
HttpHandler make_api_http_handler(ApiHandler& handler);

// ---- (b) channels ----

class Waker {
 public:
  virtual ~Waker() = default;
  virtual void wake() = 0;  // thread-safe, idempotent
};

struct HttpThread {
  std::thread thread;              // join after waking the waker
  std::shared_ptr<Waker> waker;
};

// Starts the API server on `options.socket_path`. Every routed request is sent
// on `to_api`; the consumer must answer each with exactly one ApiResult on
// `from_api`, in order. Errors: as HttpServer::start.
Result<HttpThread> start_http_thread(HttpServerOptions options,
                                     std::shared_ptr<Channel<std::optional<ApiRequest>>> to_api,
                                     std::shared_ptr<Channel<ApiResult>> from_api);

}  // namespace nydus::api
