// The http-proxy backend: the registry backend's request checks without its
// auth and redirect handling.
#include "nydus/storage/http_proxy_backend.h"

#include <cctype>
#include <chrono>

namespace nydus::storage {

bool is_url_safe_blob_id(const std::string& id) {
  if (id.empty() || id == "." || id == "..") return false;
  for (unsigned char c : id) {
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

Result<std::unique_ptr<HttpProxyBackend>> HttpProxyBackend::create(const config::HttpProxyConfig& cfg) {
  HttpClientOptions o;
  o.timeout_s = cfg.timeout;
  o.connect_timeout_s = cfg.connect_timeout;
  o.skip_verify = cfg.skip_verify;
  o.ca_cert_files = cfg.ca_cert_files;
  std::string base;
  if (cfg.addr.starts_with("http://") || cfg.addr.starts_with("https://")) {
    base = cfg.addr;
  } else if (cfg.addr.starts_with("/")) {
    o.unix_socket = cfg.addr;
    base = "http://localhost";
  } else {
    return fail(ErrorCode::kInvalidArgument, "http-proxy backend: `addr` must be an http(s) URL or a Unix socket path");
  }
  while (base.ends_with("/")) base.pop_back();
  std::string path = cfg.path;
  while (path.ends_with("/")) path.pop_back();
  // One char, not insert(0, "/"): that trips g++ 12's -Wrestrict false positive at -O3.
  if (!path.empty() && !path.starts_with("/")) path.insert(path.begin(), '/');
  return std::unique_ptr<HttpProxyBackend>(new HttpProxyBackend(cfg, base + path, std::move(o)));
}

HttpProxyBackend::HttpProxyBackend(const config::HttpProxyConfig& cfg, std::string base, HttpClientOptions opts)
    : retry_limit_(cfg.retry_limit), base_(std::move(base)), http_(std::move(opts)), metrics_("http-proxy") {}

Result<std::uint64_t> HttpProxyBackend::blob_size(const std::string& blob_id) {
  if (!is_url_safe_blob_id(blob_id)) return fail(ErrorCode::kNotFound, "http-proxy: invalid blob id `" + blob_id + "`");
  const std::string what = "http-proxy: HEAD " + HttpClient::loggable_url(url_of(blob_id));
  return with_retries<std::uint64_t>(retry_limit_, [&](bool& transient) -> Result<std::uint64_t> {
    auto r = http_.perform(HttpRequest{"HEAD", url_of(blob_id), {}, "", nullptr});
    if (!r) {
      transient = r.error().transient;
      return tl::unexpected(r.error().error.with_context("http-proxy"));
    }
    return head_reply(*r, what, transient);
  });
}

Result<std::size_t> HttpProxyBackend::read(const std::string& blob_id, std::uint64_t offset,
                                           std::span<std::uint8_t> out) {
  auto start = std::chrono::steady_clock::now();
  Result<std::size_t> r = [&]() -> Result<std::size_t> {
    if (!is_url_safe_blob_id(blob_id)) return fail(ErrorCode::kNotFound, "http-proxy: invalid blob id `" + blob_id + "`");
    if (out.empty()) return std::size_t(0);
    const std::string range = std::to_string(offset) + "-" + std::to_string(offset + out.size() - 1);
    const std::string what = "http-proxy: GET " + HttpClient::loggable_url(url_of(blob_id)) + " bytes " + range;
    return with_retries<std::size_t>(retry_limit_, [&](bool& transient) -> Result<std::size_t> {
      BodyWindow window{out, offset};
      auto resp = http_.perform(HttpRequest{"GET", url_of(blob_id), {"Range: bytes=" + range}, "", &window});
      if (!resp) {
        transient = resp.error().transient;
        return tl::unexpected(resp.error().error.with_context("http-proxy"));
      }
      return ranged_reply(*resp, offset, out.size(), what, transient);
    });
  }();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  metrics_.record(out.size(), std::uint64_t(us), r.has_value());
  return r;
}

}  // namespace nydus::storage
