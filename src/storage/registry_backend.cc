// The registry backend: URLs, the auth state machine, redirects, range
// checks and retries. The state under mu_ is small (scheme, credentials,
// token, redirect URLs); no network call is made while holding it. A token
// fetch is marked in progress under mu_ and done outside it; other threads
// that need a token wait on token_cv_ for that one fetch.
#include "nydus/storage/registry_backend.h"

#include "nydus/storage/http_proxy_backend.h"
#include "registry_parse.h"

#include <cctype>
#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

extern char** environ;

namespace nydus::storage {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kDefaultTokenLife{600};
constexpr std::chrono::seconds kMaxRefreshMargin{20};

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != std::tolower(static_cast<unsigned char>(prefix[i]))) return false;
  }
  return true;
}

std::string form_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::vector<std::string> env_headers() {
  std::vector<std::string> out;
  constexpr std::string_view kPrefix = "NYDUS_HEADER_";
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (!kv.starts_with(kPrefix) || eq == std::string_view::npos || eq == kPrefix.size()) continue;
    std::string name(kv.substr(kPrefix.size(), eq - kPrefix.size()));
    for (auto& c : name) c = c == '_' ? '-' : c;
    std::string value(kv.substr(eq + 1));
    if (value.find_first_of("\r\n") != std::string::npos) continue;  // would split the request
    out.push_back(name + ": " + value);
  }
  return out;
}

HttpClientOptions client_options(const config::RegistryConfig& cfg) {
  HttpClientOptions o;
  o.timeout_s = cfg.timeout;
  o.connect_timeout_s = cfg.connect_timeout;
  o.skip_verify = cfg.skip_verify;
  o.ca_cert_files = cfg.ca_cert_files;
  return o;
}

}  // namespace

std::map<std::string, std::string> challenge_params(std::string_view s) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i;
    auto eq = s.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string key(s.substr(i, eq - i));
    for (auto& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));
    i = eq + 1;
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        value += s[i++];
      }
      ++i;
    } else {
      while (i < s.size() && s[i] != ',') value += s[i++];
    }
    out[key] = value;
  }
  return out;
}

Result<TokenReply> parse_token_reply(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return fail(ErrorCode::kIo, "token reply is not a JSON object");
  std::string tok;
  for (const char* k : {"token", "access_token"}) {
    if (j.contains(k) && j[k].is_string() && !j[k].get<std::string>().empty()) {
      tok = j[k].get<std::string>();
      break;
    }
  }
  if (tok.empty()) return fail(ErrorCode::kIo, "token reply has no `token`");
  std::chrono::seconds life = kDefaultTokenLife;
  if (j.contains("expires_in") && j["expires_in"].is_number_unsigned() && j["expires_in"].get<std::uint64_t>() > 0) {
    life = std::chrono::seconds(std::min<std::uint64_t>(j["expires_in"].get<std::uint64_t>(), 86400 * 365));
  }
  return TokenReply{std::move(tok), life};
}

class RegistryBackend::Proxy {
 public:
  Proxy(const config::ProxyConfig& cfg, HttpClientOptions opts)
      : use_http_(cfg.use_http),
        interval_(std::max<std::uint64_t>(cfg.check_interval, 1)),
        ping_(ping_options(opts)),
        via_(through(opts, cfg.url)) {
    if (cfg.ping_url.empty()) return;
    ping_ok_ = ping(cfg.ping_url);  // the first answer decides before any request is sent
    checker_ = std::thread([this, url = cfg.ping_url] { check_loop(url); });
  }
  ~Proxy() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (checker_.joinable()) checker_.join();
  }

  bool healthy() const {
    std::lock_guard lock(mu_);
    return ping_ok_ && Clock::now() >= unhealthy_until_;
  }
  void failed() {
    std::lock_guard lock(mu_);
    unhealthy_until_ = Clock::now() + interval_;
  }
  // The URL to ask the proxy for: with `use_http`, an https URL becomes
  // plain http so the proxy sees (and can cache) the request instead of
  // tunnelling TLS through CONNECT.
  std::string target(const std::string& url) const {
    if (use_http_ && url.rfind("https://", 0) == 0) return "http://" + url.substr(8);
    return url;
  }
  // `req` sent through the proxy, as an HTTP forward proxy request.
  tl::expected<HttpResponse, HttpError> perform(HttpRequest req) {
    req.url = target(req.url);
    return via_.perform(req);
  }

 private:
  // The ping must not hold up the backend's destruction for long, whatever `timeout` says.
  static HttpClientOptions through(HttpClientOptions o, const std::string& proxy) {
    o.proxy = proxy;
    return o;
  }
  static HttpClientOptions ping_options(HttpClientOptions o) {
    o.timeout_s = o.timeout_s == 0 ? 5 : std::min<std::uint32_t>(o.timeout_s, 5);
    o.connect_timeout_s = o.connect_timeout_s == 0 ? 5 : std::min<std::uint32_t>(o.connect_timeout_s, 5);
    return o;
  }
  bool ping(const std::string& url) {
    auto r = ping_.perform(HttpRequest{"GET", url, {}, "", nullptr});
    return r && r->status < 500;
  }
  void check_loop(const std::string& url) {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, interval_, [this] { return stop_; })) {
      lock.unlock();
      bool ok = ping(url);
      lock.lock();
      ping_ok_ = ok;
    }
  }

  const bool use_http_;
  const std::chrono::seconds interval_;
  HttpClient ping_;
  HttpClient via_;  // every request through the proxy (CURLOPT_PROXY)
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                        // guarded by mu_
  bool ping_ok_ = true;                      // guarded by mu_
  Clock::time_point unhealthy_until_{};      // guarded by mu_
  std::thread checker_;
};

Result<std::unique_ptr<RegistryBackend>> RegistryBackend::create(const config::RegistryConfig& cfg) {
  if (cfg.host.empty() || cfg.repo.empty()) {
    return fail(ErrorCode::kInvalidArgument, "registry backend: `host` and `repo` must be set");
  }
  if (cfg.scheme != "http" && cfg.scheme != "https") {
    return fail(ErrorCode::kInvalidArgument, "registry backend: scheme `" + cfg.scheme + "` is not http or https");
  }
  return std::unique_ptr<RegistryBackend>(new RegistryBackend(cfg));
}

RegistryBackend::RegistryBackend(const config::RegistryConfig& cfg)
    : cfg_(cfg), env_headers_(env_headers()), http_(client_options(cfg)), metrics_("registry") {
  if (cfg.auth && !cfg.auth->empty()) basic_ = *cfg.auth;
  if (cfg.registry_token && !cfg.registry_token->empty()) static_token_ = *cfg.registry_token;
  if (!cfg.proxy.url.empty()) proxy_ = std::make_unique<Proxy>(cfg.proxy, client_options(cfg));
}

RegistryBackend::~RegistryBackend() = default;

tl::expected<HttpResponse, HttpError> RegistryBackend::send(const HttpRequest& req) {
  if (!proxy_) return http_.perform(req);
  if (proxy_->healthy()) {
    auto r = proxy_->perform(req);
    if (r && r->status < 500) return r;
    proxy_->failed();
    if (!cfg_.proxy.fallback) return r;
  } else if (!cfg_.proxy.fallback) {
    return tl::unexpected(HttpError{Error(ErrorCode::kIo, "registry: proxy " + HttpClient::loggable_url(cfg_.proxy.url) +
                                                              " is unhealthy and fallback is off"),
                                    true});
  }
  return http_.perform(req);
}

std::string RegistryBackend::blob_url(const std::string& blob_id) const {
  return cfg_.scheme + "://" + cfg_.host + "/v2/" + cfg_.repo + "/blobs/sha256:" + blob_id;
}

void RegistryBackend::renew_credentials(const std::string& base64_user_pass) {
  std::lock_guard lock(mu_);
  if (base64_user_pass.empty()) {
    basic_.reset();
  } else {
    basic_ = base64_user_pass;
  }
  token_.clear();  // fetched with the old credentials
  ++token_generation_;
}

std::uint64_t RegistryBackend::token_fetches() const {
  std::lock_guard lock(mu_);
  return token_fetches_;
}

std::vector<std::string> RegistryBackend::base_headers() const {
  std::vector<std::string> h = env_headers_;
  h.push_back("User-Agent: nydus-cpp");
  return h;
}

Result<std::pair<std::string, std::uint64_t>> RegistryBackend::auth_header() {
  std::unique_lock lock(mu_);
  while (scheme_ == Scheme::kBearer && challenge_ && (token_.empty() || Clock::now() >= token_refresh_at_)) {
    if (token_fetching_) {
      token_cv_.wait(lock);  // the fetching thread's request is bounded by the curl timeouts
      continue;
    }
    token_fetching_ = true;
    Challenge ch = *challenge_;
    std::optional<std::string> basic = basic_;
    bool via_get = token_via_get_;
    lock.unlock();
    auto got = request_token(ch, basic, via_get);
    lock.lock();
    token_fetching_ = false;
    token_cv_.notify_all();
    if (!got) {
      if (!token_.empty() && Clock::now() < token_expires_at_) break;  // refresh failed: the old one still works
      return tl::unexpected(got.error());
    }
    ++token_fetches_;
    ++token_generation_;
    token_ = std::move(got->token);
    token_via_get_ = got->via_get;
    auto life = got->life;
    auto margin = std::min<std::chrono::milliseconds>(kMaxRefreshMargin, std::chrono::milliseconds(life) / 10);
    token_expires_at_ = Clock::now() + life;
    token_refresh_at_ = token_expires_at_ - margin;
  }
  std::string h;
  if (scheme_ == Scheme::kBearer && !token_.empty()) {
    h = "Authorization: Bearer " + token_;
  } else if (scheme_ == Scheme::kBasic && basic_) {
    h = "Authorization: Basic " + *basic_;
  } else if (static_token_) {
    h = "Authorization: Bearer " + *static_token_;
  }
  return std::make_pair(std::move(h), token_generation_);
}

Result<void> RegistryBackend::on_unauthorized(const HttpResponse& resp, std::uint64_t used_generation) {
  const std::string www = resp.header("www-authenticate");
  std::lock_guard lock(mu_);
  const bool stale = used_generation == token_generation_;  // nobody renewed the credential since we used it
  if (iequals_prefix(www, "basic")) {
    if (!basic_) return fail(ErrorCode::kIo, "401 Unauthorized: the registry asks for basic auth and no `auth` is set");
    if (scheme_ == Scheme::kBasic && stale) return fail(ErrorCode::kIo, "401 Unauthorized: credentials refused");
    scheme_ = Scheme::kBasic;
    return {};
  }
  if (iequals_prefix(www, "bearer")) {
    auto p = challenge_params(std::string_view(www).substr(6));
    if (p["realm"].empty()) return fail(ErrorCode::kIo, "401 Unauthorized: bearer challenge without a realm");
    challenge_ = Challenge{p["realm"], p["service"], p["scope"]};
    if (stale) {
      if (scheme_ == Scheme::kBearer && !token_.empty()) {
        token_.clear();  // rejected (expired or revoked): the challenge runs again
      } else if (static_token_) {
        static_token_.reset();  // the configured token is refused: fall back to the challenge
      }
      ++token_generation_;
    }
    scheme_ = Scheme::kBearer;
    return {};
  }
  return fail(ErrorCode::kIo, "401 Unauthorized without a Basic or Bearer challenge");
}

Result<RegistryBackend::Token> RegistryBackend::request_token(const Challenge& ch, const std::optional<std::string>& basic,
                                                              bool via_get) {
  std::string form = "service=" + form_escape(ch.service) + "&scope=" + form_escape(ch.scope);
  std::vector<std::string> headers = base_headers();
  if (basic) headers.push_back("Authorization: Basic " + *basic);
  auto parse = [&](const HttpResponse& r, bool get) -> Result<Token> {
    auto t = parse_token_reply(r.body);
    if (!t) return tl::unexpected(t.error());
    return Token{std::move(t->token), t->life, get};
  };
  std::string what = "token POST " + HttpClient::loggable_url(ch.realm);
  if (!via_get) {
    HttpRequest post{"POST", ch.realm, headers, form + "&client_id=nydus-registry-client", nullptr};
    post.headers.push_back("Content-Type: application/x-www-form-urlencoded");
    auto r = send(post);
    if (r && r->status == 200) return parse(*r, false);
  }
  HttpRequest get{"GET", ch.realm + (ch.realm.find('?') == std::string::npos ? "?" : "&") + form, headers, "", nullptr};
  auto r = send(get);
  if (!r) return tl::unexpected(r.error().error);
  if (r->status != 200) return tl::unexpected(http_status_error("token GET " + HttpClient::loggable_url(ch.realm), r->status));
  return parse(*r, true);
}

tl::expected<HttpResponse, HttpError> RegistryBackend::registry_request(HttpRequest req) {
  const std::size_t base = req.headers.size();
  for (int round = 0;; ++round) {
    auto auth = auth_header();
    if (!auth) return tl::unexpected(HttpError{auth.error(), true});
    req.headers.resize(base);
    if (!auth->first.empty()) req.headers.push_back(auth->first);
    auto r = send(req);
    if (!r || r->status != 401 || round == 1) return r;
    if (auto u = on_unauthorized(*r, auth->second); !u) {
      return tl::unexpected(HttpError{u.error().with_context(req.method + " " + HttpClient::loggable_url(req.url)), false});
    }
  }
}

// One GET or HEAD of a blob: a GET through its cached redirect when there is
// one, else the registry (following one redirect, without credentials).
// Only GET redirects are cached: a presigned URL is signed for one method.
tl::expected<HttpResponse, HttpError> RegistryBackend::blob_request(const std::string& blob_id, HttpRequest req) {
  const std::string url = blob_url(blob_id);
  std::string cached;
  {
    std::lock_guard lock(mu_);
    if (auto it = redirects_.find(blob_id); it != redirects_.end()) cached = it->second;
  }
  auto forget = [&] {
    std::lock_guard lock(mu_);
    redirects_.erase(blob_id);
  };
  if (!cached.empty() && req.method == "GET") {
    HttpRequest direct = req;
    direct.url = cached;
    auto r = send(direct);
    if (r && r->status < 400) return r;
    forget();  // expired or refused: ask the registry again
  }
  req.url = url;
  auto headers = req.headers;
  req.headers = base_headers();
  req.headers.insert(req.headers.end(), headers.begin(), headers.end());
  auto r = registry_request(req);
  if (!r || r->status < 300 || r->status >= 400) return r;
  if (r->redirect_url.empty()) return r;
  if (req.method == "GET") {
    std::lock_guard lock(mu_);
    redirects_[blob_id] = r->redirect_url;
  }
  HttpRequest direct{req.method, r->redirect_url, headers, "", req.window};
  auto d = send(direct);
  if (d && d->status >= 400 && d->status < 500) forget();
  return d;
}

Result<std::uint64_t> RegistryBackend::blob_size(const std::string& blob_id) {
  if (!is_url_safe_blob_id(blob_id)) return fail(ErrorCode::kNotFound, "registry: invalid blob id `" + blob_id + "`");
  const std::string what = "registry: HEAD " + blob_url(blob_id);
  return with_retries<std::uint64_t>(cfg_.retry_limit, [&](bool& transient) -> Result<std::uint64_t> {
    auto r = blob_request(blob_id, HttpRequest{"HEAD", "", {}, "", nullptr});
    if (!r) {
      transient = r.error().transient;
      return tl::unexpected(r.error().error.with_context("registry"));
    }
    return head_reply(*r, what, transient);
  });
}

Result<std::size_t> RegistryBackend::read(const std::string& blob_id, std::uint64_t offset,
                                          std::span<std::uint8_t> out) {
  auto start = Clock::now();
  Result<std::size_t> r = [&]() -> Result<std::size_t> {
    if (!is_url_safe_blob_id(blob_id)) return fail(ErrorCode::kNotFound, "registry: invalid blob id `" + blob_id + "`");
    if (out.empty()) return std::size_t(0);
    return with_retries<std::size_t>(cfg_.retry_limit, [&](bool& transient) { return read_once(blob_id, offset, out, transient); });
  }();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
  metrics_.record(out.size(), std::uint64_t(us), r.has_value());
  return r;
}

Result<std::size_t> RegistryBackend::read_once(const std::string& blob_id, std::uint64_t offset,
                                               std::span<std::uint8_t> out, bool& transient) {
  const std::uint64_t last = offset + out.size() - 1;
  const std::string what = "registry: GET " + blob_url(blob_id) + " bytes " + std::to_string(offset) + "-" +
                           std::to_string(last);
  BodyWindow window{out, offset};
  HttpRequest req{"GET", "", {"Range: bytes=" + std::to_string(offset) + "-" + std::to_string(last)}, "", &window};
  auto r = blob_request(blob_id, req);
  if (!r) {
    transient = r.error().transient;
    return tl::unexpected(r.error().error.with_context("registry"));
  }
  return ranged_reply(*r, offset, out.size(), what, transient);
}

}  // namespace nydus::storage
