// libcurl easy handles from a pool, a share object for DNS and TLS sessions.
// Every option that depends on the request is set again on each use, after a
// curl_easy_reset, so nothing of one request (a header list, a POST body, a
// window) leaks into the next; the reset keeps the handle's connections.
#include "nydus/storage/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

namespace nydus::storage {

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_ALL); });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// What one transfer collects; the callbacks' user pointer.
struct Transfer {
  CURL* curl;
  BodyWindow* window;
  HttpResponse resp;
  bool window_full_stop = false;  // we ended the transfer on purpose
  std::uint64_t skipped = 0;       // body bytes dropped before the window
  std::size_t header_bytes = 0;    // of the current response, bounded by kMaxHeaders
  bool headers_too_big = false;
};

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    t->resp.headers.clear();  // a new response (after 100 Continue): start over
    t->header_bytes = 0;
    return size * n;
  }
  t->header_bytes += line.size();
  if (t->header_bytes > HttpClient::kMaxHeaders) {
    t->headers_too_big = true;
    return 0;  // ends the transfer: a server may not make us hold unbounded headers
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) t->resp.headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  return size * n;
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  BodyWindow* w = t->window;
  if (w == nullptr || status < 200 || status > 299) {
    std::size_t room = HttpClient::kMaxBody - std::min(HttpClient::kMaxBody, t->resp.body.size());
    t->resp.body.append(data, std::min(room, len));
    return len;
  }
  std::string_view in(data, len);
  if (status == 200 && t->skipped < w->range_start) {  // the whole resource: drop what precedes the range
    std::size_t drop = std::size_t(std::min<std::uint64_t>(w->range_start - t->skipped, in.size()));
    t->skipped += drop;
    in.remove_prefix(drop);
  }
  std::size_t room = w->out.size() - std::size_t(t->resp.window_bytes);
  std::size_t take = std::min(room, in.size());
  std::memcpy(w->out.data() + t->resp.window_bytes, in.data(), take);
  t->resp.window_bytes += take;
  if (take < in.size() && status != 200) {
    t->resp.window_overflow = true;
    return 0;  // ends the transfer: the body is not the range asked for
  }
  if (status == 200 && t->resp.window_bytes == w->out.size()) {
    t->window_full_stop = true;
    return 0;  // ends the transfer: the rest of the resource is not wanted
  }
  return len;
}

bool transient(CURLcode c) {
  switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_OUT_OF_MEMORY:
      return false;
    default:
      return true;
  }
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// `bytes FIRST-LAST/TOTAL` (TOTAL may be `*`).
struct ContentRange {
  std::uint64_t first = 0, last = 0;
};
std::optional<ContentRange> parse_content_range(std::string_view s) {
  if (!s.starts_with("bytes ")) return std::nullopt;
  s.remove_prefix(6);
  auto dash = s.find('-'), slash = s.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return std::nullopt;
  auto first = parse_u64(s.substr(0, dash)), last = parse_u64(s.substr(dash + 1, slash - dash - 1));
  if (!first || !last || *last < *first) return std::nullopt;
  return ContentRange{*first, *last};
}

std::string status_text(long status) {
  switch (status) {
    case 401: return "401 Unauthorized";
    case 403: return "403 Forbidden";
    case 404: return "404 Not Found";
    case 429: return "429 Too Many Requests";
    default: return "HTTP " + std::to_string(status);
  }
}

}  // namespace

// DNS cache and TLS sessions shared by the pool's handles; one mutex per
// kind of data, as libcurl asks.
struct HttpClient::Share {
  CURLSH* sh = curl_share_init();
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;

  Share() {
    curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, &Share::lock);
    curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, &Share::unlock);
    curl_share_setopt(sh, CURLSHOPT_USERDATA, this);
    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
  ~Share() { curl_share_cleanup(sh); }
  static void lock(CURL*, curl_lock_data d, curl_lock_access, void* self) {
    static_cast<Share*>(self)->locks[std::size_t(d)].lock();
  }
  static void unlock(CURL*, curl_lock_data d, void* self) { static_cast<Share*>(self)->locks[std::size_t(d)].unlock(); }
};

std::string HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(HttpClientOptions opts) : opts_(std::move(opts)) {
  global_init();
  share_ = std::make_unique<Share>();
  for (const auto& f : opts_.ca_cert_files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    ca_bundle_ += ss.str();
    ca_bundle_ += "\n";
  }
}

HttpClient::~HttpClient() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* HttpClient::take_handle() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpClient::give_back(void* h) {
  {
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdleHandles) {
      idle_.push_back(h);
      return;
    }
  }
  curl_easy_cleanup(static_cast<CURL*>(h));
}

std::string HttpClient::loggable_url(const std::string& url) {
  std::string u = url.substr(0, url.find_first_of("?#"));
  auto scheme_end = u.find("://");
  auto host_start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  auto at = u.find('@', host_start);
  if (at != std::string::npos && at < u.find('/', host_start)) u.erase(host_start, at + 1 - host_start);
  return u;
}

tl::expected<HttpResponse, HttpError> HttpClient::perform(const HttpRequest& req) {
  CURL* c = static_cast<CURL*>(take_handle());
  if (c == nullptr) return tl::unexpected(HttpError{Error(ErrorCode::kInternal, "curl_easy_init failed"), false});
  curl_easy_reset(c);
  Transfer t{c, req.window, {}, false, 0};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  for (const auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // many threads; timeouts must not use SIGALRM
  curl_easy_setopt(c, CURLOPT_SHARE, share_->sh);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_TIMEOUT, long(opts_.timeout_s));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, long(opts_.connect_timeout_s));
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (opts_.skip_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_blob ca{ca_bundle_.data(), ca_bundle_.size(), CURL_BLOB_NOCOPY};
  if (!ca_bundle_.empty()) curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  if (!opts_.unix_socket.empty()) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, opts_.unix_socket.c_str());
  // Unset: libcurl honours http_proxy / https_proxy / no_proxy, as upstream's HTTP client does.
  if (!opts_.proxy.empty()) curl_easy_setopt(c, CURLOPT_PROXY, opts_.proxy.c_str());
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, long(req.body.size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.resp.status);
  if (t.resp.status >= 300 && t.resp.status < 400) {
    char* loc = nullptr;
    if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc != nullptr) t.resp.redirect_url = loc;
  }
  curl_slist_free_all(headers);
  give_back(c);
  if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.window_full_stop)) return std::move(t.resp);
  if (rc == CURLE_WRITE_ERROR && t.resp.window_overflow) return std::move(t.resp);
  std::string what = t.headers_too_big ? "response headers over " + std::to_string(kMaxHeaders) + " bytes"
                     : errbuf[0] != 0  ? std::string(errbuf)
                                       : std::string(curl_easy_strerror(rc));
  return tl::unexpected(HttpError{Error(ErrorCode::kIo, req.method + " " + loggable_url(req.url) + ": " + what),
                                  transient(rc)});
}

bool retryable_status(long status) { return status >= 500 || status == 429; }

Error http_status_error(const std::string& what, long status) {
  return Error(status == 404 ? ErrorCode::kNotFound : ErrorCode::kIo, what + ": " + status_text(status));
}

Result<std::uint64_t> head_reply(const HttpResponse& r, const std::string& what, bool& transient) {
  if (r.status != 200) {
    transient = retryable_status(r.status);
    return tl::unexpected(http_status_error(what, r.status));
  }
  auto len = parse_u64(r.header("content-length"));
  if (!len) return fail(ErrorCode::kIo, what + ": no Content-Length");
  return *len;
}

Result<std::size_t> ranged_reply(const HttpResponse& r, std::uint64_t offset, std::size_t len, const std::string& what,
                                 bool& transient) {
  const std::uint64_t last = offset + len - 1;
  transient = true;  // a bad answer may be a hiccup of the server or the path
  if (r.status == 206) {
    auto cr = parse_content_range(r.header("content-range"));
    if (!cr || cr->first != offset || cr->last > last) {
      return fail(ErrorCode::kIo, what + ": 206 with Content-Range `" + r.header("content-range") + "`");
    }
    if (r.window_overflow || r.window_bytes != cr->last - cr->first + 1) {
      return fail(ErrorCode::kIo, what + ": body of " + std::to_string(r.window_bytes) +
                                      " bytes does not match its Content-Range");
    }
    return std::size_t(r.window_bytes);
  }
  if (r.status == 200) {
    // The whole blob: the window took the range out of it. It may end early
    // only at the blob's end, which Content-Length tells.
    auto total = parse_u64(r.header("content-length"));
    std::uint64_t expect = len;
    if (total) expect = *total <= offset ? 0 : std::min<std::uint64_t>(len, *total - offset);
    if (r.window_bytes != expect) return fail(ErrorCode::kIo, what + ": 200 body too short for the range");
    return std::size_t(r.window_bytes);
  }
  transient = retryable_status(r.status);
  return tl::unexpected(http_status_error(what, r.status));
}

}  // namespace nydus::storage
