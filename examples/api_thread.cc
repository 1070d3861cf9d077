// Embedding the API server the classic way (upstream's shape): one API thread
// fed by a request channel, answering on a response channel, and a waker that
// stops the server. See include/nydus/api/service.h, dispatch shape (b).
//
//   api_thread [SOCKET]
//
// Serves GET /api/v1/daemon (a fixed DaemonInfo) and PUT /api/v1/daemon/exit;
// every other operation answers Unsupported. Without SOCKET it runs a
// self-check instead: it serves on a temporary socket, asks itself for the
// daemon info, exits through the API and returns 0 if all went as expected.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>

#include "nydus/api/client.h"
#include "nydus/api/payloads.h"
#include "nydus/api/service.h"

namespace api = nydus::api;

namespace {

// The consumer: one request at a time, one reply each, in order. Returns when
// the waker has sent its empty message (the server has stopped).
void serve(api::Channel<std::optional<api::ApiRequest>>& requests, api::Channel<api::ApiResult>& replies,
           api::Waker& waker) {
  while (auto message = requests.recv()) {
    if (!*message) return;  // the waker's empty message
    const api::ApiRequest& request = **message;
    std::printf("api_thread: %s\n", std::string(api::request_name(request)).c_str());
    if (std::holds_alternative<api::GetDaemonInfo>(request)) {
      api::DaemonInfo info;
      info.version.package_ver = "example";
      info.state = "RUNNING";
      info.backend_collection = nlohmann::ordered_json::object();
      replies.send(api::ApiResponsePayload{api::PayloadKind::kDaemonInfo, api::to_json(info)});
    } else if (std::holds_alternative<api::Exit>(request)) {
      replies.send(api::ApiResponsePayload::empty());
      waker.wake();  // stops the server once this reply is out
    } else {
      replies.send(tl::unexpected(api::ApiError::daemon_abnormal(api::DaemonError::unsupported())));
    }
  }
}

// Starts the server on `socket`, runs `client` (if any) beside the consumer,
// and returns once the server has stopped.
int run(const std::string& socket, const std::function<bool()>& client) {
  auto requests = std::make_shared<api::Channel<std::optional<api::ApiRequest>>>();
  auto replies = std::make_shared<api::Channel<api::ApiResult>>();
  api::HttpServerOptions options;
  options.socket_path = socket;
  auto started = api::start_http_thread(options, requests, replies);
  if (!started) {
    std::fprintf(stderr, "api_thread: %s\n", started.error().to_string().c_str());
    return 1;
  }
  std::printf("api_thread: listening on %s\n", socket.c_str());
  bool client_ok = true;
  std::thread client_thread;
  if (client) client_thread = std::thread([&] { client_ok = client(); });
  serve(*requests, *replies, *started->waker);
  if (client_thread.joinable()) client_thread.join();
  started->thread.join();
  return client_ok ? 0 : 1;
}

bool self_check(const std::string& socket) {
  api::ApiClient client(socket);
  auto info = client.daemon_info();
  if (!info || info->state != "RUNNING" || info->version.package_ver != "example") {
    std::fprintf(stderr, "api_thread: daemon info: %s\n", info ? "unexpected" : info.error().to_string().c_str());
    client.exit();
    return false;
  }
  // Not served here: an HTTP error answer, not a dropped connection.
  if (auto umount = client.umount("/x"); umount || umount.error().status == 0) {
    std::fprintf(stderr, "api_thread: umount should answer an HTTP error\n");
    client.exit();
    return false;
  }
  if (auto r = client.exit(); !r) {
    std::fprintf(stderr, "api_thread: exit: %s\n", r.error().to_string().c_str());
    return false;
  }
  std::printf("api_thread: self-check passed\n");
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) return run(argv[1], {});
  char dir[] = "/tmp/nydus-example-XXXXXX";
  if (::mkdtemp(dir) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  std::string socket = std::string(dir) + "/api.sock";
  int rc = run(socket, [&] { return self_check(socket); });
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return rc;
}
