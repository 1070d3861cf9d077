// Blobs pulled from an OCI distribution registry (backend type `registry`,
// contract §7.2, registry-and-cache.md §2).
//
// A blob is `{scheme}://{host}/v2/{repo}/blobs/sha256:{blob_id}`: its size
// comes from HEAD (`Content-Length`), its bytes from GET with a `Range`
// header, expecting 206 and a `Content-Range` that names exactly the range
// asked for. A 200 (the whole blob) is accepted: the bytes before the range
// are skipped and the transfer ends once the range is in hand. A short body
// or a wrong `Content-Range` is an error, never data.
//
// Auth: `registry_token` is sent as `Bearer`; otherwise requests go without
// credentials until a 401 names the scheme: `Basic` -> `auth` is sent from
// then on; `Bearer realm,service,scope` -> a token is fetched from the realm
// (POST form, then GET when POST fails; GET is remembered), cached with its
// `expires_in` (600 s when absent) and refreshed shortly before it expires.
// One fetch serves every thread: concurrent first requests wait for it. A 401
// with a cached token drops it and runs the challenge once more.
//
// Redirects: a 3xx `Location` is requested with the `Range` header only (no
// Authorization: object stores reject both) and remembered per blob; a 4xx
// from it forgets it and the request goes through the registry again.
//
// Retries: connection errors, timeouts, short or inconsistent bodies, 5xx
// and 429 are retried `retry_limit` times with exponential backoff (100 ms
// doubling, at most 2 s); other statuses are final. So a read ends within
// about (retry_limit + 1) x (timeout + backoff).
//
// Proxy (`proxy.url`, e.g. a Dragonfly dfdaemon): every request (registry,
// token realm, redirect target) goes through it as an HTTP forward proxy
// while it is healthy; with `use_http` an https URL is asked for as http so
// the proxy can see and cache it (else curl tunnels TLS with CONNECT).
// Health: a thread GETs `ping_url` directly every `check_interval` s
// (healthy: any answer below 500); and a proxied request that fails to
// connect or answers >= 500 marks the proxy unhealthy for `check_interval`
// s. With `fallback` the request then goes directly; without it the failure
// is the request's.
//
// Extra headers: every environment variable `NYDUS_HEADER_<Name>=<value>`
// present when the backend is created adds `<Name>: <value>` to registry
// requests ('_' in Name becomes '-').
//
// No credential appears in an error message: they name the method, the URL
// without its query string and the status or curl error.
//
// Thread-safety: every method may be called from any number of threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "nydus/storage/blob_backend.h"
#include "nydus/storage/http_client.h"

namespace nydus::storage {

class RegistryBackend final : public BlobBackend {
 public:
  // kInvalidArgument when host or repo is empty or scheme is not http(s).
  static Result<std::unique_ptr<RegistryBackend>> create(const config::RegistryConfig& cfg);
  ~RegistryBackend() override;  // stops the proxy health check

  Result<std::size_t> read(const std::string& blob_id, std::uint64_t offset,
                           std::span<std::uint8_t> out) override;
  Result<std::uint64_t> blob_size(const std::string& blob_id) override;
  const BackendMetrics& metrics() const override { return metrics_; }

  // New basic credentials (base64 "user:pass", from PUT /api/v1/config
  // registry_auth), used from the next request on; drops a cached token that
  // was fetched with the old ones.
  void renew_credentials(const std::string& base64_user_pass) override;

  // Token fetches so far (tests check that tokens are shared).
  std::uint64_t token_fetches() const;

 private:
  enum class Scheme { kUnknown, kBasic, kBearer };
  struct Challenge {
    std::string realm, service, scope;
  };
  class Proxy;  // health of `proxy.url`, see registry_backend.cc
  struct Token {
    std::string token;
    std::chrono::seconds life;
    bool via_get;  // obtained by GET (POST to the realm failed)
  };

  explicit RegistryBackend(const config::RegistryConfig& cfg);
  // One registry request: through the proxy while it is healthy, else (or
  // on its failure, with fallback) directly.
  tl::expected<HttpResponse, HttpError> send(const HttpRequest& req);

  std::string blob_url(const std::string& blob_id) const;
  std::vector<std::string> base_headers() const;
  Result<std::size_t> read_once(const std::string& blob_id, std::uint64_t offset, std::span<std::uint8_t> out,
                                bool& transient);
  // GET/HEAD of a blob through its cached redirect, else the registry.
  tl::expected<HttpResponse, HttpError> blob_request(const std::string& blob_id, HttpRequest req);
  // A registry request with credentials and one run of the 401 challenge.
  tl::expected<HttpResponse, HttpError> registry_request(HttpRequest req);
  // The Authorization header to send now ("" for none) and the credential
  // generation it belongs to; fetches a token first when one is due.
  Result<std::pair<std::string, std::uint64_t>> auth_header();
  // Learns the scheme from a 401's challenge and drops a refused credential.
  Result<void> on_unauthorized(const HttpResponse& resp, std::uint64_t used_generation);
  Result<Token> request_token(const Challenge& ch, const std::optional<std::string>& basic, bool via_get);

  const config::RegistryConfig cfg_;
  const std::vector<std::string> env_headers_;
  HttpClient http_;
  BackendMetrics metrics_;
  std::unique_ptr<Proxy> proxy_;  // null without proxy.url

  mutable std::mutex mu_;
  std::condition_variable token_cv_;
  Scheme scheme_ = Scheme::kUnknown;             // guarded by mu_
  std::optional<Challenge> challenge_;           // guarded by mu_: the last Bearer challenge
  std::optional<std::string> basic_;             // guarded by mu_: base64 user:pass
  std::optional<std::string> static_token_;      // guarded by mu_: registry_token
  std::string token_;                            // guarded by mu_: bearer token from the realm
  std::chrono::steady_clock::time_point token_refresh_at_{}, token_expires_at_{};  // guarded by mu_
  std::uint64_t token_generation_ = 0;           // guarded by mu_: bumped when the credential changes
  bool token_fetching_ = false;                  // guarded by mu_
  bool token_via_get_ = false;                   // guarded by mu_: POST to the realm failed before
  std::uint64_t token_fetches_ = 0;              // guarded by mu_
  std::map<std::string, std::string> redirects_;  // guarded by mu_: blob id -> Location
};

}  // namespace nydus::storage
