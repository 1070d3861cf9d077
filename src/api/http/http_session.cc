#include "http_session.h"

#include <algorithm>
#include <cassert>
#include <exception>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http_response.h"

namespace nydus::api {
namespace {

// Runs a user callback; nothing it throws may unwind into asio.
void run_callback(std::function<void()>& fn) {
  if (!fn) return;
  try {
    fn();
  } catch (const std::exception& e) {
    spdlog::error("HTTP on_sent callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("HTTP on_sent callback threw a non-standard exception");
  }
}

// A view of the session's buffer array as a ConstBufferSequence: asio copies
// the sequence into the write operation, and this copy costs two pointers.
struct BufferSpan {
  const asio::const_buffer* first;
  const asio::const_buffer* last;
  const asio::const_buffer* begin() const { return first; }
  const asio::const_buffer* end() const { return last; }
};

// The state behind one request's HttpResponder (which must be copyable, so
// the copies share this). The first delivery wins; later ones are ignored.
// If every copy is destroyed without a delivery, the destructor answers 500
// so the connection does not wait forever for a response that never comes.
class Responder {
 public:
  Responder(std::shared_ptr<asio::io_context> ioc, std::shared_ptr<Session> session, std::uint64_t seq)
      : ioc_(std::move(ioc)), session_(std::move(session)), seq_(seq) {}
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder() {
    if (!delivered_.load(std::memory_order_relaxed)) {
      deliver(http_wire::internal_error("handler dropped the request"));
    }
  }

  void deliver(HttpResponse response) {
    if (delivered_.exchange(true, std::memory_order_acq_rel)) return;
    if (session_->in_strand()) {
      session_->fill(seq_, std::move(response));  // inline answer: no hand-off
      return;
    }
    asio::post(session_->strand(), [s = session_, seq = seq_, r = std::move(response)]() mutable {
      s->fill(seq, std::move(r));
    });
  }

 private:
  // Declared first, destroyed last: the session's socket needs the io_context.
  std::shared_ptr<asio::io_context> ioc_;
  std::shared_ptr<Session> session_;
  std::uint64_t seq_;
  std::atomic<bool> delivered_{false};
};

}  // namespace

// ServerState ----------------------------------------------------------------

bool ServerState::add(Session* session) {
  std::lock_guard lock(mu_);
  if (stopping_.load(std::memory_order_relaxed)) return false;
  sessions_.insert(session);
  return true;
}

void ServerState::remove(Session* session) {
  std::lock_guard lock(mu_);
  sessions_.erase(session);
}

std::size_t ServerState::count() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

std::optional<std::vector<std::shared_ptr<Session>>> ServerState::begin_stop() {
  std::lock_guard lock(mu_);
  if (stopping_.exchange(true, std::memory_order_acq_rel)) return std::nullopt;
  std::vector<std::shared_ptr<Session>> live;
  live.reserve(sessions_.size());
  // A session whose destructor has started yields null here; it cannot
  // finish (and free itself) before we release mu_, since it removes itself
  // under mu_.
  for (Session* s : sessions_) {
    if (auto strong = s->weak_from_this().lock()) live.push_back(std::move(strong));
  }
  return live;
}

// Session: reading ------------------------------------------------------------

Session::Session(Socket socket, std::shared_ptr<ServerState> server)
    : strand_(socket.get_executor()),
      socket_(std::move(socket)),
      timer_(strand_),
      server_(std::move(server)),
      reader_(server_->options.header_limit, server_->options.body_limit) {}

Session::~Session() { server_->remove(this); }

void Session::start() {
  asio::dispatch(strand_, [self = shared_from_this()] { self->process(); });
}

void Session::shutdown() {
  // post, not dispatch: stop() from a handler of this session must not close
  // the connection under it; its inline answer is queued first.
  asio::post(strand_, [self = shared_from_this()] { self->close_now(); });
}

// Parses what is buffered and acts on it until more bytes are needed. The
// answers given inline meanwhile go out together in one write at the end:
// one wake-up of a pipelining client instead of one per response.
void Session::process() {
  // With a write in flight nothing can start a write anyway.
  if (write_ == WriteState::kIdle) set_write(WriteState::kHeld);
  process_buffered();
  if (write_ == WriteState::kHeld) set_write(WriteState::kIdle);
  maybe_write();
  resume_reading();
}

// The next read waits for the write in flight: its completion runs after the
// other connections' ready handlers, by when a closed-loop client has usually
// sent its next request, so the read finds data instead of costing a
// recv() that answers EAGAIN. A client cannot make us buffer more meanwhile.
void Session::resume_reading() {
  if (read_ == ReadState::kWant && write_ == WriteState::kIdle) start_read();
}

void Session::process_buffered() {
  while (read_ == ReadState::kIdle) {
    if (slots_.size() >= server_->options.pipeline_limit) {
      set_read(ReadState::kPaused);
      cancel_deadline();
      return;
    }
    ParseEvent ev = reader_.parse();
    switch (ev.kind) {
      case ParseEvent::Kind::kNeedMore:
        set_read(ReadState::kWant);
        update_deadline();
        return;
      case ParseEvent::Kind::kContinue:
        slots_.emplace_back();
        slots_.back().head = http_wire::kContinue;
        slots_.back().ready = true;
        slots_.back().interim = true;
        maybe_write();
        break;
      case ParseEvent::Kind::kRequest:
        cancel_deadline();
        if (ev.close) end_reading();  // requests after it would go unanswered
        dispatch(std::move(ev.request), ev.close);
        break;
      case ParseEvent::Kind::kError:
        push_error(ev.status, ev.code, std::move(ev.message));
        return;
      case ParseEvent::Kind::kEnd:  // only finish() yields it
        return;
    }
  }
}

void Session::start_read() {
  set_read(ReadState::kReading);
  socket_.async_read_some(reader_.prepare(),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            self->on_read(ec, n);
                          });
}

void Session::on_read(const boost::system::error_code& ec, std::size_t n) {
  if (read_ == ReadState::kDone) return;  // e.g. a 408 was queued meanwhile, or closed
  if (ec == asio::error::eof) {
    // Half-close: answer everything received, then close (wire contract §10 #9).
    end_reading();
    cancel_deadline();
    ParseEvent ev = reader_.finish();
    if (ev.kind == ParseEvent::Kind::kError) {
      push_error(ev.status, ev.code, std::move(ev.message));
    } else if (slots_.empty() && !writing()) {
      close_now();
    }
    return;
  }
  if (ec) {
    if (ec != asio::error::operation_aborted) spdlog::debug("HTTP read failed: {}", ec.message());
    close_now();
    return;
  }
  set_read(ReadState::kIdle);
  reader_.commit(n);
  process();
}

void Session::dispatch(HttpRequest request, bool close) {
  std::uint64_t seq = front_seq_ + slots_.size();
  slots_.emplace_back();
  slots_.back().close = close;
  auto ioc = server_->io_context.lock();
  if (!ioc) {
    // Cannot happen while the server runs (it owns the io_context).
    fill(seq, http_wire::internal_error("server is shutting down"));
    return;
  }
  auto state = std::make_shared<Responder>(std::move(ioc), shared_from_this(), seq);
  try {
    server_->handler(std::move(request), [state](HttpResponse r) { state->deliver(std::move(r)); });
  } catch (const std::exception& e) {
    spdlog::warn("HTTP handler threw: {}", e.what());
    state->deliver(http_wire::internal_error(e.what()));
  } catch (...) {
    spdlog::warn("HTTP handler threw a non-standard exception");
    state->deliver(http_wire::internal_error("unknown exception"));
  }
}

// A transport error ends the request stream: it is the last slot, and the
// connection closes once it is written.
void Session::push_error(unsigned status, std::string_view code, std::string message) {
  end_reading();
  cancel_deadline();
  spdlog::debug("HTTP transport error {} {}: {}", status, code, message);
  HttpResponse r = http_wire::error_response(status, code, message);
  Slot& slot = slots_.emplace_back();
  slot.head = http_wire::format_head(r.status, r.body.size(), true);
  slot.body = std::move(r.body);
  slot.ready = true;
  slot.close = true;
  maybe_write();
}

// Session: writing -------------------------------------------------------------

void Session::fill(std::uint64_t seq, HttpResponse response) {
  if (closed() || seq < front_seq_ || seq - front_seq_ >= slots_.size()) {
    // The connection is gone: the response can never be written.
    run_callback(response.on_sent);
    return;
  }
  Slot& slot = slots_[seq - front_seq_];
  if (slot.ready) return;  // cannot happen: Responder delivers once
  http_wire::sanitize(response);
  if (response.close) end_reading();  // later requests would be dropped unanswered
  slot.close = slot.close || response.close;
  slot.head = http_wire::format_head(response.status, response.body.size(), slot.close, response.content_type);
  slot.body = std::move(response.body);
  slot.on_sent = std::move(response.on_sent);
  slot.ready = true;
  maybe_write();
}

// Sends the ready slots at the front of the queue, in one writev().
void Session::maybe_write() {
  if (write_ != WriteState::kIdle || slots_.empty() || !slots_.front().ready) return;
  std::size_t nbufs = 0;
  write_slots_ = 0;
  for (const Slot& slot : slots_) {
    if (!slot.ready || write_slots_ == kMaxBatch) break;
    write_bufs_[nbufs++] = asio::buffer(slot.head);
    if (!slot.body.empty()) write_bufs_[nbufs++] = asio::buffer(slot.body);
    ++write_slots_;
    if (slot.close) break;  // nothing after it is sent
  }
  set_write(WriteState::kWriting);
  asio::async_write(socket_, BufferSpan{write_bufs_.data(), write_bufs_.data() + nbufs},
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                      self->on_write(ec);
                    });
}

void Session::on_write(const boost::system::error_code& ec) {
  if (write_ == WriteState::kClosing) {
    set_write(WriteState::kClosed);
    drop_slots();  // closed while the write was in flight
    return;
  }
  set_write(WriteState::kIdle);
  if (ec) {
    spdlog::debug("HTTP write failed: {}", ec.message());
    close_now();
    return;
  }
  // Pop the whole batch before running callbacks: an on_sent may answer
  // another request inline, which starts the next write from the front.
  std::vector<std::function<void()>> callbacks;
  bool close = false;
  for (std::size_t i = 0; i < write_slots_; ++i) {
    Slot& slot = slots_.front();
    close = close || slot.close;
    if (slot.on_sent) callbacks.push_back(std::move(slot.on_sent));
    slots_.pop_front();
    ++front_seq_;
  }
  write_slots_ = 0;
  if (close) {
    close_now();
  } else if (read_ == ReadState::kPaused && slots_.size() < server_->options.pipeline_limit) {
    set_read(ReadState::kIdle);
    process();
  } else if (read_ == ReadState::kReading || read_ == ReadState::kWant) {
    update_deadline();  // a written 100 Continue starts the body deadline
  }
  for (auto& fn : callbacks) run_callback(fn);
  if (closed()) return;
  if (read_ == ReadState::kDone && slots_.empty() && !writing()) {
    close_now();  // half-closed client fully answered
  } else {
    maybe_write();
    resume_reading();
  }
}

void Session::close_now() {
  if (closed()) return;
  bool in_flight = writing();
  set_write(in_flight ? WriteState::kClosing : WriteState::kClosed);
  end_reading();
  cancel_deadline();
  boost::system::error_code ignored;
  socket_.shutdown(asio::socket_base::shutdown_both, ignored);
  socket_.close(ignored);
  server_->remove(this);
  // A write in flight still references its slots; on_write drops them.
  if (!in_flight) drop_slots();
}

void Session::set_read(ReadState to) {
  if (!legal(read_, to)) {
    spdlog::error("HTTP session: illegal read transition {} -> {}", static_cast<int>(read_), static_cast<int>(to));
    assert(false && "illegal read transition");
  }
  read_ = to;
}

void Session::set_write(WriteState to) {
  if (!legal(write_, to)) {
    spdlog::error("HTTP session: illegal write transition {} -> {}", static_cast<int>(write_), static_cast<int>(to));
    assert(false && "illegal write transition");
  }
  write_ = to;
}

bool Session::continue_pending() const {
  return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.interim; });
}

// After close: responses never written still get their on_sent.
void Session::drop_slots() {
  std::deque<Slot> slots = std::move(slots_);
  slots_.clear();
  front_seq_ += slots.size();
  for (Slot& slot : slots) run_callback(slot.on_sent);
}

// Session: deadlines -----------------------------------------------------------

void Session::update_deadline() {
  Deadline want = Deadline::kNone;
  switch (reader_.phase()) {
    case ReadPhase::kIdle: break;
    case ReadPhase::kHeader: want = Deadline::kHeader; break;
    case ReadPhase::kBody: want = continue_pending() ? Deadline::kNone : Deadline::kBody; break;
  }
  if (want == deadline_) return;  // a running header deadline keeps its start
  cancel_deadline();
  if (want == Deadline::kNone) return;
  deadline_ = want;
  timer_.expires_after(server_->options.header_timeout);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) { self->on_deadline(ec); });
}

void Session::cancel_deadline() {
  if (deadline_ == Deadline::kNone) return;
  deadline_ = Deadline::kNone;
  timer_.cancel();
}

void Session::on_deadline(const boost::system::error_code& ec) {
  // A completion queued just before a cancel, or for an earlier arming.
  if (ec || closed() || deadline_ == Deadline::kNone || timer_.expiry() > std::chrono::steady_clock::now()) return;
  auto ms = server_->options.header_timeout.count();
  std::string message = deadline_ == Deadline::kHeader
                            ? fmt::format("request header not received within {} ms", ms)
                            : fmt::format("request body not received within {} ms", ms);
  deadline_ = Deadline::kNone;
  push_error(408, http_wire::kRequestTimeout, std::move(message));
}

}  // namespace nydus::api
