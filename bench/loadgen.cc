// nydus_loadgen: closed-loop HTTP/1.1 load over a Unix socket.
//
// N connections, each keeping `depth` requests in flight (1 = one request,
// wait for its reply, send the next); a warm-up, then a fixed measuring
// window. One thread and one epoll set drive every connection, so on a small
// machine the generator takes one core and leaves the rest to the server.
// Latency is from the moment a request was written to the moment its reply is
// complete. Replies are framed by Content-Length (enough for the API's
// responses); non-2xx replies and connections the server drops are counted.
//
// With --idle M it first opens M extra connections that never send anything
// (checking each is still open, i.e. not refused), and with --server-pid it
// reports the server's RSS before and after opening them.
//
// Output: one line of key=value pairs (parsed by scripts/bench.sh).
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string socket;
  int connections = 1;
  int depth = 1;
  double duration = 5.0;
  double warmup = 1.0;
  int idle = 0;
  long server_pid = 0;
  std::string target = "/api/v1/daemon";
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "nydus_loadgen: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "nydus_loadgen: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--socket") o.socket = next();
    else if (a == "--connections") o.connections = std::atoi(next());
    else if (a == "--depth") o.depth = std::atoi(next());
    else if (a == "--duration") o.duration = std::atof(next());
    else if (a == "--warmup") o.warmup = std::atof(next());
    else if (a == "--idle") o.idle = std::atoi(next());
    else if (a == "--server-pid") o.server_pid = std::atol(next());
    else if (a == "--target") o.target = next();
    else {
      std::fprintf(stderr,
                   "usage: nydus_loadgen --socket PATH [--connections N] [--depth D] [--duration S]\n"
                   "                     [--warmup S] [--idle M] [--server-pid PID] [--target URI]\n");
      std::exit(2);
    }
  }
  if (o.socket.empty() || o.connections < 1 || o.depth < 1) {
    std::fprintf(stderr, "nydus_loadgen: --socket is required; connections and depth must be >= 1\n");
    std::exit(2);
  }
  return o;
}

int connect_unix(const std::string& path, bool nonblocking) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  // The server's backlog may be full for a moment while thousands connect.
  for (int attempt = 0;; ++attempt) {
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
    if ((errno == EAGAIN || errno == ECONNREFUSED) && attempt < 1000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    die("connect " + path);
  }
  if (nonblocking) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

long rss_kib(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

void raise_nofile() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
}

struct Conn {
  int fd = -1;
  std::deque<Clock::time_point> sent;  // send times of the requests in flight
  std::string in;                      // bytes of replies not consumed yet
  std::size_t out_off = 0;             // bytes of `pending_out` already written
  std::string pending_out;
};

class Load {
 public:
  explicit Load(const Options& o) : o_(o) {
    request_ = "GET " + o.target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) die("epoll_create1");
    conns_.resize(static_cast<std::size_t>(o.connections));
    for (std::size_t i = 0; i < conns_.size(); ++i) open(i);
  }

  void run() {
    const auto start = Clock::now();
    const auto measure_from = start + to_duration(o_.warmup);
    const auto end = measure_from + to_duration(o_.duration);
    std::vector<epoll_event> events(conns_.size());
    for (;;) {
      auto now = Clock::now();
      if (!measuring_ && now >= measure_from) {
        measuring_ = true;
        counted_ = 0;
        non2xx_ = 0;
        dropped_ = 0;
        latencies_.clear();
      }
      if (now >= end) break;
      int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 10);
      if (n < 0 && errno != EINTR) die("epoll_wait");
      for (int i = 0; i < n; ++i) on_event(events[i].data.u64, events[i].events);
    }
  }

  void report(double seconds) {
    std::sort(latencies_.begin(), latencies_.end());
    auto pct = [&](double p) -> double {
      if (latencies_.empty()) return 0;
      std::size_t k = static_cast<std::size_t>(p * static_cast<double>(latencies_.size() - 1));
      return static_cast<double>(latencies_[k]) / 1000.0;  // microseconds
    };
    std::printf("rps=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f requests=%llu non2xx=%llu dropped=%llu\n",
                static_cast<double>(counted_) / seconds, pct(0.50), pct(0.99), pct(0.999),
                static_cast<unsigned long long>(counted_), static_cast<unsigned long long>(non2xx_),
                static_cast<unsigned long long>(dropped_));
  }

 private:
  static Clock::duration to_duration(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }

  void open(std::size_t i) {
    Conn& c = conns_[i];
    c = Conn{};
    c.fd = connect_unix(o_.socket, true);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = i;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0) die("epoll_ctl");
    for (int d = 0; d < o_.depth; ++d) queue_request(c);
    flush(i);
  }

  void queue_request(Conn& c) {
    c.pending_out += request_;
    c.sent.push_back(Clock::now());
  }

  void flush(std::size_t i) {
    Conn& c = conns_[i];
    while (c.out_off < c.pending_out.size()) {
      ssize_t w = ::send(c.fd, c.pending_out.data() + c.out_off, c.pending_out.size() - c.out_off, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN) break;  // rare: a reply will come and we retry then
        drop(i);
        return;
      }
      c.out_off += static_cast<std::size_t>(w);
    }
    if (c.out_off == c.pending_out.size()) {
      c.pending_out.clear();
      c.out_off = 0;
    }
  }

  void drop(std::size_t i) {
    ++dropped_;
    ::close(conns_[i].fd);  // also leaves the epoll set
    open(i);
  }

  void on_event(std::size_t i, std::uint32_t events) {
    Conn& c = conns_[i];
    char buf[65536];
    for (;;) {
      ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
      if (r > 0) {
        c.in.append(buf, static_cast<std::size_t>(r));
        if (static_cast<std::size_t>(r) < sizeof buf) break;
        continue;
      }
      if (r < 0 && errno == EAGAIN) break;
      drop(i);  // EOF or error: the server dropped us
      return;
    }
    std::size_t replies = consume(c);
    for (std::size_t k = 0; k < replies; ++k) queue_request(c);
    if (replies) flush(i);
    if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && replies == 0) drop(i);
  }

  // Takes the complete replies off the front of c.in; returns how many.
  std::size_t consume(Conn& c) {
    std::size_t count = 0, off = 0;
    const auto now = Clock::now();
    for (;;) {
      std::string_view rest(c.in.data() + off, c.in.size() - off);
      std::size_t head_end = rest.find("\r\n\r\n");
      if (head_end == std::string_view::npos) break;
      std::string_view head = rest.substr(0, head_end);
      std::size_t body = 0;
      std::size_t cl = head.find("Content-Length:");
      if (cl != std::string_view::npos) body = std::strtoull(head.data() + cl + 15, nullptr, 10);
      if (rest.size() < head_end + 4 + body) break;
      unsigned status = head.size() > 12 ? static_cast<unsigned>(std::atoi(head.data() + 9)) : 0;
      off += head_end + 4 + body;
      if (status == 100) continue;
      ++count;
      if (measuring_) {
        ++counted_;
        if (status < 200 || status > 299) ++non2xx_;
        if (!c.sent.empty()) latencies_.push_back(static_cast<std::uint32_t>(
                                  std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.sent.front()).count()));
      }
      if (!c.sent.empty()) c.sent.pop_front();
    }
    c.in.erase(0, off);
    return count;
  }

  const Options& o_;
  std::string request_;
  int ep_ = -1;
  std::vector<Conn> conns_;
  bool measuring_ = false;
  std::uint64_t counted_ = 0, non2xx_ = 0, dropped_ = 0;
  std::vector<std::uint32_t> latencies_;
};

// Opens `n` connections that stay silent; exits if the server refuses or
// closes any of them (a 503 over the connection limit is a close).
std::vector<int> open_idle(const Options& o) {
  std::vector<int> fds;
  fds.reserve(static_cast<std::size_t>(o.idle));
  for (int i = 0; i < o.idle; ++i) fds.push_back(connect_unix(o.socket, true));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the server accept them all
  int closed = 0;
  for (int fd : fds) {
    char b;
    ssize_t r = ::recv(fd, &b, 1, MSG_PEEK);
    if (r >= 0 || errno != EAGAIN) ++closed;
  }
  if (closed) {
    std::fprintf(stderr, "nydus_loadgen: the server refused or closed %d of %d idle connections\n", closed, o.idle);
    std::printf("idle_refused=%d\n", closed);
    std::exit(3);
  }
  return fds;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  raise_nofile();
  long rss_before = o.server_pid ? rss_kib(o.server_pid) : -1;
  std::vector<int> idle = open_idle(o);
  long rss_after = o.server_pid ? rss_kib(o.server_pid) : -1;
  Load load(o);
  load.run();
  std::printf("connections=%d depth=%d idle=%d ", o.connections, o.depth, o.idle);
  if (o.server_pid) std::printf("rss_before_kib=%ld rss_idle_kib=%ld ", rss_before, rss_after);
  load.report(o.duration);
  for (int fd : idle) ::close(fd);
  return 0;
}
