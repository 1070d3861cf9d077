// Raw bytes of one API connection through the whole server-side session
// (src/api/http_session.cc): reads, the request reader, pipelining and the
// pipeline limit, Expect: 100-continue, handler dispatch through the router,
// out-of-order and dropped answers, the in-order write queue and half-close.
// The connection is a socketpair in this process and the io_context is
// polled on this thread, so a run is deterministic and needs no socket file.
//
// Input: byte 0 picks how the client cuts its bytes into writes, byte 1 is a
// bit pattern that decides per request whether the handler answers inline,
// later from outside the strand, drops its responder (-> 500) or throws; the
// rest is what the client sends before it half-closes.
//
// Oracle, beyond sanitizers: everything the server writes must parse as a
// sequence of well-formed HTTP/1.1 responses, and the session must finish
// (close the connection) once the client has half-closed.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <spdlog/spdlog.h>

#include "api/http/http_session.h"
#include "nydus/api/service.h"

using namespace nydus::api;

namespace {

// Answers like a daemon would, in the way the control byte asks for.
class FuzzHandler : public ApiHandler {
 public:
  explicit FuzzHandler(std::uint8_t pattern) : pattern_(pattern) {}

  void handle(ApiRequest, ApiReply reply) override {
    switch ((pattern_ >> (2 * (n_++ % 4))) & 3) {
      case 0: reply(ApiResponsePayload::empty(), {}); break;
      case 1: later_.push_back(std::move(reply)); break;  // answered from "another thread"
      case 2: break;  // dropped: the transport must answer 500 for it
      default: throw std::runtime_error("handler failure");
    }
  }

  // Deferred answers, delivered from outside the session's strand.
  void answer_later() {
    auto later = std::move(later_);
    later_.clear();
    for (auto& reply : later) reply(ApiResponsePayload::empty(), {});
  }

 private:
  std::uint8_t pattern_;
  unsigned n_ = 0;
  std::vector<ApiReply> later_;
};

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Everything the server wrote must be a sequence of complete responses; the
// last one may be cut short only if it is a transport error and the server
// closed (it never is: responses are written whole).
void check_responses(const std::string& out) {
  namespace http = boost::beast::http;
  std::size_t off = 0;
  while (off < out.size()) {
    http::response_parser<http::string_body> p;
    p.eager(true);
    p.body_limit(1 << 20);
    boost::beast::error_code ec;
    std::size_t n = p.put(boost::asio::buffer(out.data() + off, out.size() - off), ec);
    check(!ec && p.is_done() && n > 0);
    const auto& res = p.get();
    check(res.count(http::field::server) == 1 || res.result_int() == 100);
    off += n;
  }
}

// Reads whatever the server has written so far, without blocking.
void drain(int fd, std::string& out) {
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    return;
  }
}

}  // namespace

// Handler failures are logged; at fuzzing rates that output is only noise.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || size > 64 * 1024) return 0;
  const std::size_t chunk = 1 + data[0] % 128;
  FuzzHandler handler(data[1]);
  data += 2;
  size -= 2;

  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return 0;
  const int client = fds[1];

  auto ioc = std::make_shared<asio::io_context>(1);
  HttpServerOptions options;
  options.header_limit = 2048;  // small limits: the 413/431 paths are reachable
  options.body_limit = 4096;
  options.pipeline_limit = 4;
  options.header_timeout = std::chrono::hours(1);  // never fires here: the client always finishes
  auto state = std::make_shared<ServerState>(options, make_api_http_handler(handler), ioc);
  {
    Socket socket(asio::make_strand(*ioc));
    boost::system::error_code ec;
    socket.assign(asio::local::stream_protocol(), fds[0], ec);
    if (ec) {
      ::close(fds[0]);
      ::close(client);
      return 0;
    }
    auto session = std::make_shared<Session>(std::move(socket), state);
    check(state->add(session.get()));
    session->start();
  }

  std::string out;
  std::size_t off = 0;
  bool half_closed = false;
  bool done = false;
  // Each round sends at most one chunk, so this bound is never reached by a
  // session that makes progress: hitting it means the server is stuck.
  const std::size_t max_rounds = size + 1000;
  for (std::size_t round = 0; round < max_rounds && !done; ++round) {
    if (off < size) {
      std::size_t n = std::min(chunk, size - off);
      ssize_t w = ::send(client, data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (w > 0) off += static_cast<std::size_t>(w);
      if (w < 0 && errno != EAGAIN) off = size;  // the server closed early (transport error)
    } else if (!half_closed) {
      ::shutdown(client, SHUT_WR);
      half_closed = true;
    }
    // restart(): poll() on an io_context that ran out of work does nothing,
    // and a deferred answer may have been posted to it since.
    ioc->restart();
    ioc->poll();
    handler.answer_later();
    ioc->restart();
    ioc->poll();
    drain(client, out);
    if (state->count() == 0) off = size;  // closed: nothing more will be read
    done = half_closed && state->count() == 0 && ioc->stopped();
  }
  // After the client's half-close the session must answer and close by itself.
  check(done);
  drain(client, out);
  ::close(client);
  check_responses(out);
  return 0;
}
