// Turns the bytes of one connection into requests, without doing any I/O.
//
// The session reads into the reader's buffer (prepare/commit) and calls
// parse() until it says kNeedMore; each call yields the next event: a 100
// Continue is due, a complete request, or a transport error. Keeping this
// free of sockets and timers lets a fuzz target push arbitrary bytes through
// exactly the parsing, limit and Expect logic the server uses.
//
// Parsing is Beast's request_parser<string_body>, re-created for every
// message (Beast parsers are single-use) with the header and body limits set.
// Beast checks a declared Content-Length against body_limit as soon as the
// header section is complete, so an oversized body is refused before any of
// it is read; chunked bodies are checked chunk by chunk. The read buffer is a
// flat_buffer (Beast needs each header section contiguous); it starts at
// kMinRead bytes and is shrunk back when a large request has left it big.
//
// Thread-safety: one reader per connection, used from the connection's strand.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "nydus/api/http_server.h"

namespace nydus::api {

struct ParseEvent {
  enum class Kind {
    kNeedMore,  // read more bytes, then call parse() again
    kContinue,  // header of a request with `Expect: 100-continue` done; send a 100
    kRequest,   // `request` is complete
    kError,     // answer `status`/`code`/`message`, then close the connection
    kEnd,       // (finish() only) the peer closed between requests
  };
  Kind kind = Kind::kNeedMore;
  HttpRequest request;  // kRequest
  bool close = false;   // kRequest: the client sent `Connection: close`
  unsigned status = 0;  // kError
  std::string_view code;  // kError: a transport error code (http_response.h)
  std::string message;    // kError
};

// Where the reader is within a message; drives the session's deadline.
enum class ReadPhase {
  kIdle,    // no byte of the next request seen
  kHeader,  // inside the header section
  kBody,    // header done, body incomplete
};

class RequestReader {
 public:
  static constexpr std::size_t kMinRead = 1024;
  static constexpr std::size_t kMaxRead = 64 * 1024;
  // Buffers grown beyond this by a large request are freed once idle again.
  static constexpr std::size_t kKeepCapacity = 16 * 1024;

  RequestReader(std::size_t header_limit, std::size_t body_limit);

  // Space for the next read, and how much of it was filled.
  boost::asio::mutable_buffer prepare();
  void commit(std::size_t n) { buffer_.commit(n); }

  // The next event from the buffered bytes. After kError the reader is dead.
  ParseEvent parse();
  // The peer will send nothing more: kEnd if no request was under way,
  // otherwise a kError for the partial request.
  ParseEvent finish();

  ReadPhase phase() const;

 private:
  ParseEvent take_request();
  ParseEvent error(const boost::system::error_code& ec) const;
  // True once per message, when its header asked for `100-continue` and the
  // body is not complete yet (a client that did not wait needs no 100).
  bool continue_due();

  std::size_t header_limit_;
  std::size_t body_limit_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  bool expect_checked_ = false;  // kContinue decided for the current message
};

}  // namespace nydus::api
