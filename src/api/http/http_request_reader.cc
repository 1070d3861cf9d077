#include "http_request_reader.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <fmt/format.h>

#include "http_response.h"

namespace nydus::api {

namespace http = boost::beast::http;

namespace {
ParseEvent make_event(ParseEvent::Kind kind) {
  ParseEvent ev;
  ev.kind = kind;
  return ev;
}
}  // namespace

RequestReader::RequestReader(std::size_t header_limit, std::size_t body_limit)
    : header_limit_(std::min<std::size_t>(header_limit, std::numeric_limits<std::uint32_t>::max())),
      body_limit_(body_limit) {}

boost::asio::mutable_buffer RequestReader::prepare() {
  std::size_t n = buffer_.capacity() - buffer_.size();
  if (parser_ && parser_->is_header_done()) {
    // Size body reads by what is still due, so a large body takes few reads.
    if (auto remaining = parser_->content_length_remaining()) {
      n = static_cast<std::size_t>(std::min<std::uint64_t>(*remaining, kMaxRead));
    }
  }
  return buffer_.prepare(std::clamp(n, kMinRead, kMaxRead));
}

ParseEvent RequestReader::parse() {
  if (!parser_) {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(header_limit_));
    parser_->body_limit(body_limit_);
    parser_->eager(true);  // parse the header and all buffered body bytes in one put()
    expect_checked_ = false;
  }
  for (;;) {
    if (continue_due()) return make_event(ParseEvent::Kind::kContinue);
    if (parser_->is_done()) return take_request();
    if (buffer_.size() == 0) return ParseEvent{};
    boost::system::error_code ec;
    std::size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == http::error::need_more || (!ec && used == 0 && !parser_->is_done())) {
      // Calling put() again before more bytes arrive would make no progress.
      if (continue_due()) return make_event(ParseEvent::Kind::kContinue);
      return ParseEvent{};
    }
    if (ec) return error(ec);
  }
}

bool RequestReader::continue_due() {
  if (expect_checked_ || !parser_->is_header_done() || parser_->is_done()) return false;
  expect_checked_ = true;
  const auto& msg = parser_->get();
  // RFC 7231 §5.1.1: never send 100 to an HTTP/1.0 client.
  return msg.version() >= 11 && boost::beast::iequals(msg[http::field::expect], "100-continue");
}

ParseEvent RequestReader::finish() {
  if (!parser_ || !parser_->got_some()) {
    if (buffer_.size() == 0) return make_event(ParseEvent::Kind::kEnd);
    // Unparsed bytes: parse() was not called since they arrived.
    return error(http::error::partial_message);
  }
  boost::system::error_code ec;
  parser_->put_eof(ec);
  if (!ec && parser_->is_done()) return make_event(ParseEvent::Kind::kEnd);
  return error(ec ? ec : http::error::partial_message);
}

ReadPhase RequestReader::phase() const {
  if (!parser_ || !parser_->got_some()) return ReadPhase::kIdle;
  if (!parser_->is_header_done()) return ReadPhase::kHeader;
  if (!parser_->is_done()) return ReadPhase::kBody;
  return ReadPhase::kIdle;
}

ParseEvent RequestReader::take_request() {
  http::request<http::string_body> msg = parser_->release();
  parser_.reset();
  ParseEvent ev = make_event(ParseEvent::Kind::kRequest);
  ev.request.method = std::string(msg.method_string());
  ev.request.target = std::string(msg.target());
  ev.request.version = msg.version();
  ev.request.body = std::move(msg.body());
  // Unlike Beast's keep_alive(), HTTP/1.0 without `keep-alive` stays open:
  // only an explicit `close` ends the connection (upstream keeps everything open).
  for (auto token : http::token_list{msg[http::field::connection]}) {
    if (boost::beast::iequals(token, "close")) ev.close = true;
  }
  if (buffer_.size() == 0 && buffer_.capacity() > kKeepCapacity) buffer_.shrink_to_fit();
  return ev;
}

ParseEvent RequestReader::error(const boost::system::error_code& ec) const {
  ParseEvent ev = make_event(ParseEvent::Kind::kError);
  if (ec == http::error::header_limit) {
    ev.status = 431;
    ev.code = http_wire::kHeaderTooLarge;
    ev.message = fmt::format("request header section exceeds {} bytes", header_limit_);
  } else if (ec == http::error::body_limit) {
    ev.status = 413;
    ev.code = http_wire::kPayloadTooLarge;
    ev.message = fmt::format("request body exceeds {} bytes", body_limit_);
  } else {
    ev.status = 400;
    ev.code = http_wire::kBadRequest;
    ev.message = ec.message();
  }
  return ev;
}

}  // namespace nydus::api
