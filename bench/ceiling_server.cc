// nydus_ceiling: the reference server for the API load benchmark.
//
// The physical limit of HTTP over a Unix socket on this machine: one thread,
// level-triggered epoll, non-blocking sockets, and for every request a fixed
// 200 reply prepared once at start. It does no parsing: a request is counted
// at each "\r\n\r\n" (the load generator sends body-less GETs), so pipelined
// requests are answered one reply each. The reply's body is --body-bytes long
// (scripts/bench.sh passes the size of nydusd's own answer) and its headers
// match nydusd's, so both servers move the same bytes.
//
// Usage: nydus_ceiling --socket PATH [--body-bytes N]; runs until killed.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "nydus_ceiling: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

struct Conn {
  int matched = 0;       // bytes of "\r\n\r\n" matched at the end of the last read
  std::string out;       // replies not written yet (only when the socket was full)
  std::size_t out_off = 0;
};

std::string make_reply(std::size_t body_bytes) {
  std::string body = "{\"pad\":\"";
  while (body.size() + 2 < body_bytes) body += 'x';
  body += "\"}";
  return "HTTP/1.1 200 OK\r\nServer: Nydus API\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  std::size_t body_bytes = 300;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view a = argv[i];
    if (a == "--socket") path = argv[i + 1];
    else if (a == "--body-bytes") body_bytes = std::strtoul(argv[i + 1], nullptr, 10);
  }
  if (path.empty()) {
    std::fprintf(stderr, "usage: nydus_ceiling --socket PATH [--body-bytes N]\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  const std::string reply = make_reply(body_bytes);

  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (lfd < 0) die("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ::unlink(path.c_str());
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  if (::listen(lfd, SOMAXCONN) != 0) die("listen");
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

  std::vector<Conn> conns;
  std::vector<epoll_event> events(1024);
  std::string batch;
  char buf[65536];
  for (;;) {
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int e = 0; e < n; ++e) {
      int fd = events[e].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          if (static_cast<std::size_t>(c) >= conns.size()) conns.resize(static_cast<std::size_t>(c) + 1);
          conns[static_cast<std::size_t>(c)] = Conn{};
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      Conn& conn = conns[static_cast<std::size_t>(fd)];
      bool close_it = false;
      if (events[e].events & EPOLLOUT) {
        ssize_t w = ::send(fd, conn.out.data() + conn.out_off, conn.out.size() - conn.out_off, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) close_it = true;
        if (w > 0) conn.out_off += static_cast<std::size_t>(w);
        if (conn.out_off == conn.out.size()) {
          conn.out.clear();
          conn.out_off = 0;
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = fd;
          ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
        }
      }
      if (!close_it && (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r <= 0) {
          close_it = r == 0 || errno != EAGAIN;
        } else {
          // Count request ends; the match state carries across reads.
          static constexpr char kEnd[] = "\r\n\r\n";
          batch.clear();
          for (ssize_t i = 0; i < r; ++i) {
            char ch = buf[i];
            if (ch == kEnd[conn.matched]) {
              if (++conn.matched == 4) {
                batch += reply;
                conn.matched = 0;
              }
            } else {
              conn.matched = ch == '\r' ? 1 : 0;
            }
          }
          if (!batch.empty() && conn.out.empty()) {
            ssize_t w = ::send(fd, batch.data(), batch.size(), MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN) close_it = true;
            std::size_t done = w > 0 ? static_cast<std::size_t>(w) : 0;
            if (!close_it && done < batch.size()) {
              conn.out.assign(batch, done);
              epoll_event cev{};
              cev.events = EPOLLIN | EPOLLOUT;
              cev.data.fd = fd;
              ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
            }
          } else if (!batch.empty()) {
            conn.out += batch;
          }
        }
      }
      if (close_it) ::close(fd);
    }
  }
}
