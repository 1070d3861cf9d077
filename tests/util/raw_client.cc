#include "util/raw_client.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace nydus::testutil {
namespace {

using Clock = std::chrono::steady_clock;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Parses "HTTP/1.1 200 OK\r\nName: value\r\n..." (without the final CRLF CRLF).
std::optional<HttpReply> parse_head(std::string_view head, std::string& error) {
  HttpReply reply;
  auto eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || line.size() < sp1 + 4) {
    error = fmt::format("bad status line: {}", line);
    return std::nullopt;
  }
  reply.version = std::string(line.substr(0, sp1));
  std::string_view code = line.substr(sp1 + 1, 3);
  for (char c : code) {
    if (c < '0' || c > '9') {
      error = fmt::format("bad status code: {}", line);
      return std::nullopt;
    }
  }
  reply.status = static_cast<unsigned>(std::stoi(std::string(code)));
  if (line.size() > sp1 + 5) reply.reason = std::string(line.substr(sp1 + 5));
  while (eol != std::string_view::npos) {
    head.remove_prefix(eol + 2);
    eol = head.find("\r\n");
    line = head.substr(0, eol);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      error = fmt::format("bad header line: {}", line);
      return std::nullopt;
    }
    reply.headers.emplace_back(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  }
  return reply;
}

}  // namespace

std::optional<std::string> HttpReply::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

std::vector<std::string> HttpReply::header_names() const {
  std::vector<std::string> names;
  for (const auto& h : headers) names.push_back(h.first);
  return names;
}

Result<RawClient> RawClient::connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return fail(ErrorCode::kInvalidArgument, "path too long: " + path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return tl::unexpected(os_error("socket", errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    return tl::unexpected(os_error("connect " + path, err));
  }
  return RawClient(fd);
}

RawClient::RawClient(RawClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      buf_(std::move(other.buf_)),
      eof_(other.eof_),
      error_(std::move(other.error_)) {}

RawClient& RawClient::operator=(RawClient&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    buf_ = std::move(other.buf_);
    eof_ = other.eof_;
    error_ = std::move(other.error_);
  }
  return *this;
}

RawClient::~RawClient() { close(); }

RawClient RawClient::unconnected(std::string why) {
  RawClient c(-1);
  c.error_ = std::move(why);
  return c;
}

void RawClient::close() {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

bool RawClient::send(std::string_view bytes) {
  if (fd_ < 0) return false;  // unconnected(): keeps its reason in error_
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      error_ = fmt::format("send: {}", std::strerror(errno));
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void RawClient::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

bool RawClient::fill(Clock::time_point deadline) {
  if (eof_ || fd_ < 0) return false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left < 0) left = 0;
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;  // timeout
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) {
      // 0 = orderly EOF; ECONNRESET = server closed with our bytes unread.
      eof_ = true;
      return false;
    }
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
}

std::optional<HttpReply> RawClient::read_reply(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return std::nullopt;  // unconnected(): keeps its reason in error_
  auto deadline = Clock::now() + timeout;
  error_.clear();
  std::size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(deadline)) {
      error_ = eof_ ? "connection closed before a complete header" : "timed out waiting for a header";
      return std::nullopt;
    }
  }
  auto reply = parse_head(std::string_view(buf_).substr(0, end), error_);
  if (!reply) return std::nullopt;
  std::size_t start = end + 4;
  bool bodyless = reply->status / 100 == 1 || reply->status == 204 || reply->status == 304;
  auto length = reply->header("Content-Length");
  if (bodyless) {
    buf_.erase(0, start);
    return reply;
  }
  if (length) {
    std::size_t want = std::stoul(*length);
    while (buf_.size() - start < want) {
      if (!fill(deadline)) {
        error_ = eof_ ? "connection closed inside the body" : "timed out inside the body";
        return std::nullopt;
      }
    }
    reply->body = buf_.substr(start, want);
    buf_.erase(0, start + want);
    return reply;
  }
  while (fill(deadline)) {
  }
  if (!eof_) {
    error_ = "timed out reading an unframed body";
    return std::nullopt;
  }
  reply->body = buf_.substr(start);
  buf_.clear();
  return reply;
}

std::string RawClient::read_some(std::chrono::milliseconds timeout) {
  if (buf_.empty()) fill(Clock::now() + timeout);
  return std::exchange(buf_, {});
}

bool RawClient::wait_closed(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!eof_) {
    if (!fill(deadline) && !eof_) return false;
  }
  return true;
}

bool RawClient::stays_silent(std::chrono::milliseconds duration) {
  if (!buf_.empty() || eof_ || fd_ < 0) return false;
  fill(Clock::now() + duration);
  return buf_.empty() && !eof_;
}

std::optional<HttpReply> round_trip(const std::string& socket_path, std::string_view request,
                                    std::chrono::milliseconds timeout) {
  auto client = RawClient::connect(socket_path);
  if (!client || !client->send(request)) return std::nullopt;
  return client->read_reply(timeout);
}

HttpReply call_at(const std::string& socket_path, const std::string& method, const std::string& target,
                  const std::string& body, std::chrono::milliseconds timeout) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: x\r\n";
  if (!body.empty()) req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return round_trip(socket_path, req + "\r\n" + body, timeout).value_or(HttpReply{});
}

bool wait_state(const std::string& socket_path, const std::string& state) {
  return eventually([&] {
    auto j = nlohmann::json::parse(call_at(socket_path, "GET", "/api/v1/daemon").body, nullptr, false);
    return j.is_object() && j.value("state", "") == state;
  });
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/nydus-test-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    // A test failure, not an abort: the path below does not exist, so the
    // test's own checks fail too, and the other tests of the binary still run.
    ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    path_ = "/nonexistent/nydus-test-tempdir";
    return;
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::file(std::string_view name) const { return path_ + "/" + std::string(name); }

}  // namespace nydus::testutil
