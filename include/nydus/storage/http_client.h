// A small blocking HTTP client on libcurl for the remote blob backends
// (registry, http-proxy). One HttpClient per backend: it keeps a pool of
// curl easy handles, each holding its own keep-alive connection(s), and a
// curl share object for the DNS cache and TLS sessions. A request takes a
// handle from the pool (or makes one) and gives it back afterwards, so N
// threads reading at once use N connections; libcurl does not support
// sharing one connection cache between concurrent threads.
//
// Redirects are never followed here: the caller decides what to send to the
// `Location` (see registry_backend.h). Error messages carry the method, the
// URL without its query string (presigned URLs hold signatures) and the curl
// error text; never a request header.
//
// Thread-safety: perform() may be called from any number of threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "nydus/result.h"

namespace nydus::storage {

struct HttpClientOptions {
  std::uint32_t timeout_s = 5;           // whole request; 0 = no limit
  std::uint32_t connect_timeout_s = 5;   // 0 = curl's default (300 s)
  bool skip_verify = false;              // accept any TLS certificate
  std::vector<std::string> ca_cert_files{};  // PEM files trusted in addition to the system store
  std::string unix_socket{};             // connect here instead of the URL's host (http-proxy)
  std::string proxy{};                   // forward every request through this proxy URL; "" = the environment's
};

// Where the body of a ranged GET goes. A 206 body is copied to `out` (a
// longer one is flagged, not copied). A 200 body is the whole resource:
// its bytes before `range_start` are skipped and the transfer ends as soon
// as `out` is full. Other statuses' bodies go to HttpResponse::body.
struct BodyWindow {
  std::span<std::uint8_t> out{};
  std::uint64_t range_start = 0;
};

struct HttpRequest {
  std::string method = "GET";            // GET, HEAD or POST
  std::string url{};
  std::vector<std::string> headers{};    // "Name: value"; may hold credentials
  std::string body{};                    // POST body
  BodyWindow* window = nullptr;          // 2xx body destination; null: into `HttpResponse::body`
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers{};  // lower-case names, last value wins
  std::string body{};                    // non-window bodies, first kMaxBody bytes
  std::string redirect_url{};            // absolute form of `Location` on 3xx
  std::uint64_t window_bytes = 0;        // bytes copied into the window
  bool window_overflow = false;          // a 206 body was longer than the window
  std::string header(const std::string& lower_name) const;
};

// Whether a transport failure may go away on a retry (connection refused or
// reset, timeout, short transfer) rather than being final (TLS verification,
// malformed URL).
struct HttpError {
  Error error;
  bool transient;
};

class HttpClient {
 public:
  static constexpr std::size_t kMaxBody = 64 * 1024;      // kept of a non-window body
  static constexpr std::size_t kMaxHeaders = 256 * 1024;  // a response with more header bytes fails
  static constexpr std::size_t kMaxIdleHandles = 32;

  explicit HttpClient(HttpClientOptions opts);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  tl::expected<HttpResponse, HttpError> perform(const HttpRequest& req);

  // `url` with any query string and userinfo removed, for messages.
  static std::string loggable_url(const std::string& url);

 private:
  struct Share;
  void* take_handle();
  void give_back(void* handle);

  const HttpClientOptions opts_;
  std::string ca_bundle_;              // every ca_cert_files file concatenated, for CURLOPT_CAINFO_BLOB
  std::unique_ptr<Share> share_;
  std::mutex mu_;
  std::vector<void*> idle_;            // guarded by mu_
};

// Helpers shared by the blob backends on HttpClient.

// 5xx and 429: worth another attempt.
bool retryable_status(long status);
// kNotFound for 404, else kIo: "<what>: 401 Unauthorized".
Error http_status_error(const std::string& what, long status);
// The byte count a ranged GET of [offset, offset + len) delivered into its
// BodyWindow, after checking the reply (see BodyWindow and registry.md):
// 206 with a matching Content-Range and body, or 200 cut to the range. Any
// other status, or an inconsistent reply, is an error; `transient` tells
// whether another attempt may help.
Result<std::size_t> ranged_reply(const HttpResponse& r, std::uint64_t offset, std::size_t len, const std::string& what,
                                 bool& transient);
// Size from a HEAD reply: 200 with Content-Length.
Result<std::uint64_t> head_reply(const HttpResponse& r, const std::string& what, bool& transient);
// Runs `once(bool& transient)` until it succeeds, fails for good, or has
// been retried `retry_limit` times, sleeping 100 ms doubling (at most 2 s)
// between attempts; the last error names the attempt count.
template <class T, class F>
Result<T> with_retries(unsigned retry_limit, F&& once) {
  for (unsigned attempt = 0;; ++attempt) {
    bool transient = false;
    Result<T> r = once(transient);
    if (r || !transient || attempt >= retry_limit) {
      if (!r && attempt > 0) {
        return tl::unexpected(Error(r.error().code(),
                                    r.error().message() + " (after " + std::to_string(attempt + 1) + " attempts)"));
      }
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min<unsigned>(100u << std::min(attempt, 5u), 2000u)));
  }
}

}  // namespace nydus::storage
