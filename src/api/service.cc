// Glue between the HTTP transport, the router and a daemon (service.h).
#include "nydus/api/service.h"

#include <atomic>
#include <exception>

#include <spdlog/spdlog.h>

#include "nydus/api/router.h"

namespace nydus::api {

HttpHandler make_api_http_handler(ApiHandler& handler) {
  return [&handler](HttpRequest req, HttpResponder respond_http) {
    if (req.method == "HEAD") {
      // No route accepts HEAD, and a HEAD response must not carry a body.
      HttpResponse r = error_response(HttpError::bad_request());
      r.body.clear();
      respond_http(std::move(r));
      return;
    }
    auto routed = route(req);
    if (!routed) {
      if (!routed.error().text.empty()) {
        spdlog::info("rejected {} {}: {}", req.method, req.target, routed.error().text);
      }
      respond_http(error_response(routed.error()));
      return;
    }
    auto wrapper = routed->wrapper;
    // The request is moved into the handler; keep what the reply conversion needs.
    auto request_copy = std::make_shared<ApiRequest>(routed->request);
    ApiReply reply = [respond_http = std::move(respond_http), wrapper, request_copy](
                         ApiResult result, std::function<void()> on_sent) {
      HttpResponse resp = respond(wrapper, *request_copy, result);
      resp.on_sent = std::move(on_sent);
      respond_http(std::move(resp));
    };
    handler.handle(std::move(routed->request), std::move(reply));
  };
}

namespace {

// Serialises requests onto the channels: one request in flight at a time,
// like upstream's single API thread, without blocking the I/O thread.
class ChannelBridge : public ApiHandler {
 public:
  ChannelBridge(std::shared_ptr<Channel<std::optional<ApiRequest>>> to_api,
                std::shared_ptr<Channel<ApiResult>> from_api)
      : to_api_(std::move(to_api)), from_api_(std::move(from_api)), relay_([this] { run(); }) {}

  ~ChannelBridge() override { shutdown(); }

  // Stops the relay; requests arriving later are answered RequestSend at once.
  void shutdown() {
    pending_.close();
    if (relay_.joinable()) relay_.join();
  }

  void handle(ApiRequest request, ApiReply reply) override {
    if (!pending_.send(Pending{std::move(request), reply})) {
      reply(tl::unexpected(ApiError::request_send()), {});
    }
  }

 private:
  struct Pending {
    ApiRequest request;
    ApiReply reply;
  };

  void run() {
    while (auto p = pending_.recv()) {
      if (!to_api_->send(std::move(p->request))) {
        p->reply(tl::unexpected(ApiError::request_send()), {});
        continue;
      }
      auto result = from_api_->recv();
      if (!result) {
        p->reply(tl::unexpected(ApiError::response_recv()), {});
        continue;
      }
      p->reply(std::move(*result), {});
    }
  }

  std::shared_ptr<Channel<std::optional<ApiRequest>>> to_api_;
  std::shared_ptr<Channel<ApiResult>> from_api_;
  Channel<Pending> pending_;
  std::thread relay_;
};

class ServerWaker : public Waker {
 public:
  void wake() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      woken_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return woken_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;  // guarded by mu_
};

}  // namespace

Result<HttpThread> start_http_thread(HttpServerOptions options,
                                     std::shared_ptr<Channel<std::optional<ApiRequest>>> to_api,
                                     std::shared_ptr<Channel<ApiResult>> from_api) {
  auto bridge = std::make_shared<ChannelBridge>(to_api, from_api);
  auto server = HttpServer::start(std::move(options), make_api_http_handler(*bridge));
  if (!server) return tl::unexpected(server.error());
  auto waker = std::make_shared<ServerWaker>();
  std::shared_ptr<HttpServer> owned = std::move(*server);
  std::thread thread([waker, owned, bridge, to_api, from_api]() mutable {
    waker->wait();
    // Unblock a relay waiting for a reply that will never come and finish it
    // while the server is still alive to deliver its last replies.
    from_api->close();
    bridge->shutdown();
    owned->stop();
    owned.reset();  // joins the I/O threads and removes the socket
    bridge.reset();
    // Tell the API side to finish, as upstream does with an empty message.
    to_api->send(std::nullopt);
  });
  return HttpThread{std::move(thread), waker};
}

}  // namespace nydus::api
