// One HTTP connection: read loop, handler dispatch, in-order response queue.
//
// Per connection there is a strand (every member below is touched only from
// it), a Unix stream socket, one timer, a RequestReader and a deque of
// response slots. Each parsed request appends an empty slot and goes to the
// handler with a responder that fills that slot (by sequence number): inline
// when called on the strand (the handler answered at once, the common case:
// no post, no thread hand-off), otherwise posted to the strand. The writer
// sends the ready slots at the front of the queue, up to kMaxBatch of them in
// one writev(), and pops them once written, so responses leave in request
// order whatever order handlers finish in. Reading pauses while
// pipeline_limit slots are queued and resumes as writes free them. A 100
// Continue and a transport error each take a slot of their own, so answers
// before them still go out first.
//
// Deadlines: none while idle (wire contract §1.2: a liveness probe holds an
// idle connection forever). Once bytes of a request are buffered but its
// header section is incomplete, `header_timeout` runs from that moment for
// the rest of the header; when the header is complete and a body is due, a
// fresh `header_timeout` runs for the whole body (from the moment the 100
// Continue was written, if one was queued). Expiry -> 408 and close. Reading
// paused by the pipeline limit is never the client's fault: no deadline.
//
// Lifetime: enable_shared_from_this. A session lives while an operation is
// pending or a responder for one of its requests exists (responders hold it
// strongly, so a slow handler can still answer after the client went quiet).
// The server finds live sessions for stop() through ServerState's set of raw
// pointers, which each session leaves when it closes or is destroyed.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/strand.hpp>

#include "http_request_reader.h"
#include "nydus/api/http_server.h"

namespace nydus::api {

namespace asio = boost::asio;
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = asio::basic_stream_socket<asio::local::stream_protocol, Strand>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock,
                                         asio::wait_traits<std::chrono::steady_clock>, Strand>;

class Session;

// A session's read side. Transitions (anything else is a bug, see legal()):
//   kIdle -> kWant (more bytes needed) | kPaused (pipeline_limit) | kDone
//   kWant -> kReading (no write in flight) | kDone
//   kReading -> kIdle (bytes arrived) | kDone (EOF, error, or ended meanwhile)
//   kPaused -> kIdle (writes freed slots) | kDone
//   kDone is final.
enum class ReadState {
  kIdle,     // no read in flight or wanted: parsing what is buffered, or not started
  kWant,     // more bytes needed; the read starts once no write is in flight
  kReading,  // a read is in flight
  kPaused,   // stopped at pipeline_limit until writes free slots
  kDone,     // no further request will be read; a read still in flight is ignored
};

// A session's write side. Transitions:
//   kIdle -> kHeld (process() batches inline answers) | kWriting | kClosed
//   kHeld -> kIdle | kClosed
//   kWriting -> kIdle (written) | kClosing (closed meanwhile)
//   kClosing -> kClosed (the write's completion drops the slots)
//   kClosed is final.
enum class WriteState {
  kIdle,     // nothing in flight; a ready front slot may be written
  kHeld,     // inside process(): answers given inline wait to go out in one write
  kWriting,  // a write is in flight
  kClosing,  // socket closed while a write was in flight; it still references its slots
  kClosed,   // socket closed; responses are discarded
};

constexpr bool legal(ReadState from, ReadState to) {
  using R = ReadState;
  switch (from) {
    case R::kIdle: return to == R::kWant || to == R::kPaused || to == R::kDone;
    case R::kWant: return to == R::kReading || to == R::kDone;
    case R::kReading: return to == R::kIdle || to == R::kDone;
    case R::kPaused: return to == R::kIdle || to == R::kDone;
    case R::kDone: return to == R::kDone;
  }
  return false;
}

constexpr bool legal(WriteState from, WriteState to) {
  using W = WriteState;
  switch (from) {
    case W::kIdle: return to == W::kHeld || to == W::kWriting || to == W::kClosed;
    case W::kHeld: return to == W::kIdle || to == W::kClosed;
    case W::kWriting: return to == W::kIdle || to == W::kClosing;
    case W::kClosing: return to == W::kClosed;
    case W::kClosed: return false;
  }
  return false;
}

// What the server and its sessions share. Sessions hold it by shared_ptr, so
// it outlives each of them; it holds no I/O object (the io_context is only
// referenced weakly), so queued handlers never keep the io_context alive.
class ServerState {
 public:
  ServerState(HttpServerOptions options, HttpHandler handler, std::weak_ptr<asio::io_context> ioc)
      : options(std::move(options)), handler(std::move(handler)), io_context(std::move(ioc)) {}

  const HttpServerOptions options;
  const HttpHandler handler;
  // Responders lock it so the io_context outlives the sessions they hold.
  const std::weak_ptr<asio::io_context> io_context;

  // Registers a new session; false once stopping (the caller drops it).
  bool add(Session* session);
  // Idempotent.
  void remove(Session* session);
  std::size_t count() const;
  // First call: marks the state stopping and returns the live sessions.
  // Later calls: nullopt.
  std::optional<std::vector<std::shared_ptr<Session>>> begin_stop();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  std::unordered_set<Session*> sessions_;  // guarded by mu_
  std::atomic<bool> stopping_{false};      // written under mu_
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // Responses written with one writev() at most (two buffers each).
  static constexpr std::size_t kMaxBatch = 16;

  Session(Socket socket, std::shared_ptr<ServerState> server);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts reading. Any thread.
  void start();
  // Closes the connection (server stop). Any thread.
  void shutdown();

  // Delivers the response to request `seq`. Strand only.
  void fill(std::uint64_t seq, HttpResponse response);
  // Any thread.
  bool in_strand() const { return strand_.running_in_this_thread(); }
  const Strand& strand() const { return strand_; }

 private:
  struct Slot {
    std::string head;  // status line and headers
    std::string body;
    std::function<void()> on_sent;
    bool ready = false;
    bool close = false;    // close the connection once written
    bool interim = false;  // a 100 Continue
  };
  enum class Deadline { kNone, kHeader, kBody };

  void process();
  void process_buffered();
  void start_read();
  void resume_reading();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void dispatch(HttpRequest request, bool close);
  void push_error(unsigned status, std::string_view code, std::string message);
  void maybe_write();
  void on_write(const boost::system::error_code& ec);
  void update_deadline();
  void cancel_deadline();
  void on_deadline(const boost::system::error_code& ec);
  void close_now();
  void drop_slots();
  // Checked transitions: an illegal one asserts in debug builds and is logged
  // as an error in release builds (the state is set anyway).
  void set_read(ReadState to);
  void set_write(WriteState to);
  void end_reading() { set_read(ReadState::kDone); }
  bool closed() const { return write_ == WriteState::kClosing || write_ == WriteState::kClosed; }
  bool writing() const { return write_ == WriteState::kWriting || write_ == WriteState::kClosing; }
  // A queued 100 Continue is not written yet: the body deadline waits for it.
  bool continue_pending() const;

  const Strand strand_;  // the socket's executor; a copy readable from any thread
  Socket socket_;
  Timer timer_;
  std::shared_ptr<ServerState> server_;
  RequestReader reader_;
  std::deque<Slot> slots_;
  std::uint64_t front_seq_ = 0;  // sequence number of slots_.front()
  std::array<asio::const_buffer, 2 * kMaxBatch> write_bufs_{};
  std::size_t write_slots_ = 0;  // slots in the write in flight
  Deadline deadline_ = Deadline::kNone;
  ReadState read_ = ReadState::kIdle;
  WriteState write_ = WriteState::kIdle;
};

}  // namespace nydus::api
