// ApiClient: one Beast request/response exchange per call over a Unix socket.
#include "nydus/api/client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "nydus/api/body.h"
#include "nydus/api/query.h"

namespace nydus::api {
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

tl::unexpected<ClientError> transport_error(std::string code, std::string message) {
  return tl::unexpected(ClientError{0, std::move(code), std::move(message)});
}

std::string with_id(std::string target, const std::optional<std::string>& id, bool first = true) {
  if (id) target += std::string(first ? "?" : "&") + "id=" + form_encode(*id);
  return target;
}

ClientResult<nlohmann::json> parse_json(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return transport_error("BadResponse", "response body is not JSON: " + body.substr(0, 200));
  return j;
}

}  // namespace

std::string ClientError::to_string() const {
  if (status == 0) return fmt::format("{}: {}", code, message);
  return fmt::format("http response: {}, error code: {}, error message: {}", status, code, message);
}

ClientResult<RawResponse> ApiClient::request(const std::string& method, const std::string& target,
                                             const std::string& body) {
  asio::io_context io;
  asio::local::stream_protocol::socket sock(io);
  boost::system::error_code ec;
  sock.connect(asio::local::stream_protocol::endpoint(socket_path_), ec);
  if (ec) return transport_error("ConnectionFailed", fmt::format("cannot connect to {}: {}", socket_path_, ec.message()));
  // Blocking I/O bounded by socket timeouts: a hung daemon must not hang the client.
  timeval tv{static_cast<time_t>(timeout_.count() / 1000), static_cast<suseconds_t>((timeout_.count() % 1000) * 1000)};
  ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "localhost");
  req.set(http::field::user_agent, "nydus-cpp-client");
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  http::write(sock, req, ec);
  if (ec) return transport_error("ConnectionFailed", "sending request: " + ec.message());

  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  http::read(sock, buffer, parser, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again || ec == asio::error::timed_out) {
    return transport_error("Timeout", fmt::format("no response within {} ms", timeout_.count()));
  }
  if (ec) return transport_error("BadResponse", "reading response: " + ec.message());
  auto res = parser.release();
  return RawResponse{res.result_int(), std::move(res.body())};
}

ClientResult<RawResponse> ApiClient::expect(const std::string& method, const std::string& target,
                                            const std::string& body, unsigned success_status) {
  auto r = request(method, target, body);
  if (!r) return r;
  if (r->status == success_status || (success_status == 200 && r->status == 204)) return r;
  ClientError err{r->status, "", ""};
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_object() && j.contains("code") && j["code"].is_string() && j.contains("message") &&
      j["message"].is_string()) {
    err.code = j["code"].get<std::string>();
    err.message = j["message"].get<std::string>();
  } else {
    err.code = "BadResponse";
    err.message = r->body;
  }
  return tl::unexpected(std::move(err));
}

ClientResult<nlohmann::json> ApiClient::get_json(const std::string& target) {
  auto r = expect("GET", target, "", 200);
  if (!r) return tl::unexpected(r.error());
  if (r->status != 200) return transport_error("BadResponse", fmt::format("expected 200, got {}", r->status));
  return parse_json(r->body);
}

ClientResult<void> ApiClient::put_empty(const std::string& method, const std::string& target, const std::string& body) {
  auto r = expect(method, target, body, 204);
  if (!r) return tl::unexpected(r.error());
  return {};
}

ClientResult<DaemonInfo> ApiClient::daemon_info() {
  auto r = expect("GET", "/api/v1/daemon", "", 200);
  if (!r) return tl::unexpected(r.error());
  auto info = parse_daemon_info(r->body);
  if (!info) return transport_error("BadResponse", "daemon info: " + info.error().to_debug());
  return *info;
}

ClientResult<DaemonInfo> ApiClient::daemon_info_v2() {
  auto r = expect("GET", "/api/v2/daemon", "", 200);
  if (!r) return tl::unexpected(r.error());
  auto info = parse_daemon_info(r->body);
  if (!info) return transport_error("BadResponse", "daemon info: " + info.error().to_debug());
  return *info;
}

ClientResult<void> ApiClient::configure_daemon(const DaemonConf& conf) {
  return put_empty("PUT", "/api/v1/daemon", to_json(conf));
}

ClientResult<EventsInfo> ApiClient::events() {
  auto r = expect("GET", "/api/v1/daemon/events", "", 200);
  if (!r) return tl::unexpected(r.error());
  auto e = parse_events(r->body);
  if (!e) return transport_error("BadResponse", "events: " + e.error().to_debug());
  return *e;
}

ClientResult<nlohmann::json> ApiClient::fs_backend_info(const std::string& mountpoint) {
  return get_json("/api/v1/daemon/backend?mountpoint=" + form_encode(mountpoint));
}

ClientResult<void> ApiClient::start() { return put_empty("PUT", "/api/v1/daemon/start"); }
ClientResult<void> ApiClient::exit() { return put_empty("PUT", "/api/v1/daemon/exit"); }
ClientResult<void> ApiClient::send_fuse_fd() { return put_empty("PUT", "/api/v1/daemon/fuse/sendfd"); }
ClientResult<void> ApiClient::takeover() { return put_empty("PUT", "/api/v1/daemon/fuse/takeover"); }

ClientResult<void> ApiClient::mount(const std::string& mountpoint, const ApiMountCmd& cmd) {
  return put_empty("POST", "/api/v1/mount?mountpoint=" + form_encode(mountpoint), to_json(cmd));
}

ClientResult<void> ApiClient::remount(const std::string& mountpoint, const ApiMountCmd& cmd) {
  return put_empty("PUT", "/api/v1/mount?mountpoint=" + form_encode(mountpoint), to_json(cmd));
}

ClientResult<void> ApiClient::umount(const std::string& mountpoint) {
  return put_empty("DELETE", "/api/v1/mount?mountpoint=" + form_encode(mountpoint));
}

ClientResult<nlohmann::json> ApiClient::global_metrics(const std::optional<std::string>& id) {
  return get_json(with_id("/api/v1/metrics", id));
}

ClientResult<nlohmann::json> ApiClient::files_metrics(const std::optional<std::string>& id, bool latest) {
  std::string target = with_id("/api/v1/metrics/files", id);
  if (latest) target += id ? "&latest=true" : "?latest=true";
  return get_json(target);
}

ClientResult<nlohmann::json> ApiClient::access_patterns(const std::optional<std::string>& id) {
  return get_json(with_id("/api/v1/metrics/pattern", id));
}

ClientResult<nlohmann::json> ApiClient::backend_metrics(const std::optional<std::string>& id) {
  return get_json(with_id("/api/v1/metrics/backend", id));
}

ClientResult<nlohmann::json> ApiClient::blobcache_metrics(const std::optional<std::string>& id) {
  return get_json(with_id("/api/v1/metrics/blobcache", id));
}

ClientResult<std::optional<nlohmann::json>> ApiClient::inflight_metrics() {
  auto r = expect("GET", "/api/v1/metrics/inflight", "", 200);
  if (!r) return tl::unexpected(r.error());
  if (r->status == 204) return std::optional<nlohmann::json>();
  auto j = parse_json(r->body);
  if (!j) return tl::unexpected(j.error());
  return std::optional<nlohmann::json>(std::move(*j));
}

ClientResult<std::string> ApiClient::prometheus_metrics(bool files) {
  auto r = expect("GET", files ? "/api/v1/metrics/prometheus?files=true" : "/api/v1/metrics/prometheus", "", 200);
  if (!r) return tl::unexpected(r.error());
  if (r->status != 200) return transport_error("BadResponse", fmt::format("expected 200, got {}", r->status));
  return std::move(r->body);
}

ClientResult<ConfigMap> ApiClient::get_config(const std::optional<std::string>& id) {
  auto r = expect("GET", with_id("/api/v1/config", id), "", 200);
  if (!r) return tl::unexpected(r.error());
  auto m = parse_config_map(r->body);
  if (!m) return transport_error("BadResponse", "config: " + m.error().to_debug());
  return *m;
}

ClientResult<void> ApiClient::update_config(const std::optional<std::string>& id, const ConfigMap& values) {
  return put_empty("PUT", with_id("/api/v1/config", id), to_json(values));
}

ClientResult<nlohmann::json> ApiClient::get_blob_objects(const BlobCacheObjectId& param) {
  return get_json("/api/v2/blobs?domain_id=" + form_encode(param.domain_id) + "&blob_id=" + form_encode(param.blob_id));
}

ClientResult<void> ApiClient::create_blob_object(const BlobCacheEntry& entry) {
  return put_empty("PUT", "/api/v2/blobs", to_json(entry));
}

ClientResult<void> ApiClient::delete_blob_object(const BlobCacheObjectId& param) {
  std::string target = "/api/v2/blobs?domain_id=" + form_encode(param.domain_id);
  if (!param.blob_id.empty()) target += "&blob_id=" + form_encode(param.blob_id);
  return put_empty("DELETE", target);
}

ClientResult<void> ApiClient::delete_blob_file(const std::string& blob_id) {
  return put_empty("DELETE", "/api/v2/blobs?blob_id=" + form_encode(blob_id));
}

}  // namespace nydus::api
