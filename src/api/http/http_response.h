// Response bytes as they go on the wire, and the transport's own errors.
//
// Responses are formatted by hand rather than through Beast's serializer: the
// header block is fixed (Server, Connection, then Content-Type and
// Content-Length only as the body requires, wire contract §1.4), a slot then
// holds two plain strings that a pipelined batch writes with one writev(),
// and there is no per-response serializer state to keep alive.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "nydus/api/http_server.h"

namespace nydus::api::http_wire {

// Transport error codes (the JSON "code" values of transport_error_body).
inline constexpr std::string_view kBadRequest = "BadRequest";                  // 400
inline constexpr std::string_view kRequestTimeout = "RequestTimeout";          // 408
inline constexpr std::string_view kPayloadTooLarge = "PayloadTooLarge";        // 413
inline constexpr std::string_view kHeaderTooLarge = "HeaderTooLarge";          // 431
inline constexpr std::string_view kInternal = "Internal";                      // 500
inline constexpr std::string_view kTooManyConnections = "TooManyConnections";  // 503

// The interim response to `Expect: 100-continue`; it names the server as
// every final response does (format_head).
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\nServer: Nydus API\r\n\r\n";

// Status line and headers for a final response with a body of `body_size`
// bytes, of `content_type` (empty: application/json). Status 204 gets neither
// Content-Type nor Content-Length.
// REQUIRES: 200 <= status <= 999 (see sanitize()).
std::string format_head(unsigned status, std::size_t body_size, bool close, std::string_view content_type = {});

// Makes `response` sendable: a status outside 200..999 becomes a 500 (a
// handler bug must not put an invalid status line or an interim response on
// the wire), and a 204 loses any body.
void sanitize(HttpResponse& response);

// A transport error response: status, JSON body {"code","message"}, close set.
HttpResponse error_response(unsigned status, std::string_view code, std::string_view message);

// A 500 "Internal" standing in for a handler that failed (threw, dropped its
// responder, produced garbage). The connection stays usable: not closed.
HttpResponse internal_error(std::string_view message);

// The complete bytes of the 503 sent to connections over max_connections.
std::string too_many_connections(std::size_t limit);

}  // namespace nydus::api::http_wire
