// HttpServer: the listening socket, the accept loop and the I/O threads.
//
// One io_context runs on `io_threads` threads. The acceptor lives on its own
// strand and accepts every connection onto a fresh strand, where a Session
// (http_session.h) takes it over. Connections beyond max_connections are
// accepted anyway and get a 503 with a JSON body before being closed, so the
// client learns why instead of hanging in the backlog. An accept error
// (EMFILE, ENFILE, ENOBUFS...) is logged and retried after kAcceptBackoff on a
// timer: retrying at once would spin, since the pending connection keeps the
// listening socket readable. Out of descriptors, the server first gives up a
// reserved one (an open /dev/null) and accepts at once with it, so the
// management API answers while something else (a FUSE client holding many
// files open) has taken every other descriptor; the reserve is taken back at
// the next accept that finds one free.
//
// Ownership: Impl owns the io_context through a shared_ptr that responders
// also lock (see http_session.cc), so a responder that outlives the server
// can still be called or destroyed safely. No work guard: run() returns once
// stop() has closed the acceptor and every session.
#include "nydus/api/http_server.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http_response.h"
#include "http_session.h"
#include "http_socket_file.h"

namespace nydus::api {

namespace {
constexpr std::chrono::milliseconds kAcceptBackoff{100};
using Acceptor = asio::basic_socket_acceptor<asio::local::stream_protocol, Strand>;
}  // namespace

class HttpServer::Impl {
 public:
  // Takes `file` over only if construction succeeds (it is the last member).
  Impl(HttpServerOptions options, HttpHandler handler, SocketFile&& file)
      : ioc_(std::make_shared<asio::io_context>(static_cast<int>(options.io_threads))),
        state_(std::make_shared<ServerState>(std::move(options), std::move(handler), ioc_)),
        strand_(asio::make_strand(*ioc_)),
        acceptor_(strand_),
        backoff_(strand_),
        socket_file_(std::move(file)) {}

  ~Impl() {
    stop();
    wait();
    if (reserve_fd_ >= 0) ::close(reserve_fd_);
  }

  Result<void> run() {
    try {
      boost::system::error_code ec;
      acceptor_.assign(asio::local::stream_protocol(), socket_file_.release_fd(), ec);
      if (ec) return fail(ErrorCode::kIo, fmt::format("listen {}: {}", path(), ec.message()));
      take_reserve();
      do_accept();
      for (unsigned i = 0; i < state_->options.io_threads; ++i) {
        threads_.emplace_back([ioc = ioc_] { run_io(*ioc); });
      }
    } catch (const std::exception& e) {
      return fail(ErrorCode::kInternal, fmt::format("starting HTTP server on {}: {}", path(), e.what()));
    }
    return {};
  }

  void stop() {
    auto sessions = state_->begin_stop();
    if (!sessions) return;
    socket_file_.remove_if_ours();
    asio::post(strand_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      backoff_.cancel();
    });
    for (auto& s : *sessions) s->shutdown();
  }

  void wait() {
    std::lock_guard lock(join_mu_);
    for (auto& t : threads_) {
      if (!t.joinable()) continue;
      if (t.get_id() == std::this_thread::get_id()) {
        spdlog::error("HttpServer::wait() called on its own I/O thread; not joining it");
        continue;
      }
      t.join();
    }
  }

  const std::string& path() const { return state_->options.socket_path; }
  std::size_t connection_count() const { return state_->count(); }

 private:
  static void run_io(asio::io_context& ioc) {
    for (;;) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& e) {
        // Handlers catch what user code throws; this is a last line of defence.
        spdlog::error("HTTP I/O thread: unexpected exception: {}", e.what());
      }
    }
  }

  void do_accept() {
    acceptor_.async_accept(asio::make_strand(*ioc_),
                           [this](const boost::system::error_code& ec, Socket socket) {
                             on_accept(ec, std::move(socket));
                           });
  }

  void on_accept(const boost::system::error_code& ec, Socket socket) {
    if (state_->stopping()) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      if (out_of_descriptors(ec) && reserve_fd_ >= 0) {
        spdlog::warn("accept on {}: {}; using the reserved descriptor", path(), ec.message());
        ::close(reserve_fd_);
        reserve_fd_ = -1;
        do_accept();
        return;
      }
      if (!accept_failing_) spdlog::warn("accept on {} failed: {}; retrying every {} ms", path(), ec.message(),
                                         kAcceptBackoff.count());
      accept_failing_ = true;
      backoff_.expires_after(kAcceptBackoff);
      backoff_.async_wait([this](const boost::system::error_code& wait_ec) {
        if (!wait_ec && !state_->stopping()) do_accept();
      });
      return;
    }
    if (accept_failing_) spdlog::info("accept on {} works again", path());
    accept_failing_ = false;
    admit(std::move(socket));
    take_reserve();
    do_accept();
  }

  static bool out_of_descriptors(const boost::system::error_code& ec) {
    return ec == asio::error::no_descriptors || ec == boost::system::error_code(ENFILE, boost::system::system_category());
  }

  // Holds one descriptor back for accept (see the file comment); a no-op if
  // held already or none is free.
  void take_reserve() {
    if (reserve_fd_ < 0) reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  void admit(Socket socket) {
    if (state_->count() >= state_->options.max_connections) {
      reject(std::move(socket));
      return;
    }
    rejecting_ = false;
    auto session = std::make_shared<Session>(std::move(socket), state_);
    if (state_->add(session.get())) session->start();
  }

  // Over the connection limit: 503 with a JSON body, then close.
  void reject(Socket socket) {
    // Once per episode: a flood of connections must not flood the log too.
    if (!rejecting_) {
      spdlog::warn("API connection limit ({}) reached; refusing connections", state_->options.max_connections);
    }
    rejecting_ = true;
    struct Reject {
      Socket socket;
      std::string bytes;
    };
    auto r = std::make_shared<Reject>(Reject{std::move(socket), http_wire::too_many_connections(
                                                                    state_->options.max_connections)});
    asio::async_write(r->socket, asio::buffer(r->bytes), [r](const boost::system::error_code&, std::size_t) {
      boost::system::error_code ignored;
      r->socket.shutdown(asio::socket_base::shutdown_both, ignored);
      r->socket.close(ignored);
    });
  }

  // Declared first, destroyed last: every I/O object below uses it.
  std::shared_ptr<asio::io_context> ioc_;
  std::shared_ptr<ServerState> state_;
  Strand strand_;
  Acceptor acceptor_;  // strand_ only
  Timer backoff_;      // strand_ only
  bool accept_failing_ = false;  // strand_ only
  int reserve_fd_ = -1;          // strand_ only (and run() before the I/O threads start)
  bool rejecting_ = false;       // strand_ only
  SocketFile socket_file_;  // touched by run() and the first stop() only
  std::vector<std::thread> threads_;  // guarded by join_mu_ after run()
  std::mutex join_mu_;
};

Result<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerOptions options, HttpHandler handler) {
  if (!handler) return fail(ErrorCode::kInvalidArgument, "HTTP server needs a handler");
  if (options.io_threads == 0 || options.pipeline_limit == 0 || options.max_connections == 0 ||
      options.header_timeout.count() <= 0) {
    return fail(ErrorCode::kInvalidArgument,
                "HTTP server options: io_threads, pipeline_limit, max_connections and header_timeout must be > 0");
  }
  auto file = SocketFile::create(options.socket_path, options.socket_mode);
  if (!file) return tl::unexpected(file.error());
  std::unique_ptr<Impl> impl;
  try {
    impl = std::make_unique<Impl>(std::move(options), std::move(handler), std::move(*file));
  } catch (const std::exception& e) {
    file->remove_if_ours();
    return fail(ErrorCode::kInternal, fmt::format("creating HTTP server: {}", e.what()));
  }
  if (auto ok = impl->run(); !ok) return tl::unexpected(ok.error());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() = default;

void HttpServer::stop() { impl_->stop(); }
void HttpServer::wait() { impl_->wait(); }
const std::string& HttpServer::socket_path() const { return impl_->path(); }
std::size_t HttpServer::connection_count() const { return impl_->connection_count(); }

}  // namespace nydus::api
