#include "http_response.h"

#include <boost/beast/http/status.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace nydus::api {

std::string transport_error_body(std::string_view code, std::string_view message) {
  nlohmann::json body = {{"code", code}, {"message", message}};
  // replace: a message carrying invalid UTF-8 (e.g. an exception's what())
  // must still produce valid JSON instead of throwing.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace http_wire {

std::string format_head(unsigned status, std::size_t body_size, bool close, std::string_view content_type) {
  namespace http = boost::beast::http;
  auto beast_reason = http::obsolete_reason(http::int_to_status(status));
  std::string_view reason(beast_reason.data(), beast_reason.size());
  if (reason == "<unknown-status>") reason = {};
  // Plain appends: this runs once per response, and fmt's parsing showed in profiles.
  std::string head;
  head.reserve(160 + reason.size());
  head += "HTTP/1.1 ";
  head += std::to_string(status);
  head += ' ';
  head += reason;
  head += close ? "\r\nServer: Nydus API\r\nConnection: close\r\n"
                : "\r\nServer: Nydus API\r\nConnection: keep-alive\r\n";
  if (body_size > 0) {
    head += "Content-Type: ";
    head += content_type.empty() ? "application/json" : content_type;
    head += "\r\nContent-Length: ";
    head += std::to_string(body_size);
    head += "\r\n\r\n";
  } else if (status != 204) {
    head += "Content-Length: 0\r\n\r\n";
  } else {
    head += "\r\n";
  }
  return head;
}

void sanitize(HttpResponse& response) {
  if (response.status < 200 || response.status > 999) {
    spdlog::error("HTTP handler produced invalid status {}", response.status);
    unsigned bad = response.status;
    auto on_sent = std::move(response.on_sent);
    bool close = response.close;
    response = internal_error(fmt::format("handler produced invalid status {}", bad));
    response.close = close;
    response.on_sent = std::move(on_sent);
  } else if (response.status == 204 && !response.body.empty()) {
    spdlog::warn("HTTP handler produced a 204 with a body; dropping the body");
    response.body.clear();
  }
}

HttpResponse error_response(unsigned status, std::string_view code, std::string_view message) {
  HttpResponse response;
  response.status = status;
  response.body = transport_error_body(code, message);
  response.close = true;
  return response;
}

HttpResponse internal_error(std::string_view message) {
  HttpResponse response = error_response(500, kInternal, message);
  response.close = false;
  return response;
}

std::string too_many_connections(std::size_t limit) {
  std::string body = transport_error_body(kTooManyConnections,
                                          fmt::format("too many open connections (limit {})", limit));
  return format_head(503, body.size(), true) + body;
}

}  // namespace http_wire
}  // namespace nydus::api
