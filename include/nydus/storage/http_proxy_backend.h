// Blobs served by a plain HTTP server (backend type `http-proxy`, contract
// §7.2): `addr` is an http(s) URL or the absolute path of a Unix socket
// (requests then go over it with Host: localhost); blob `<id>` is
// `<addr><path>/<id>`. Size by HEAD, data by ranged GET, checked and
// retried exactly as the registry backend does (http_client.h); no auth.
//
// Thread-safety: every method may be called from any number of threads.
#pragma once

#include <memory>
#include <string>

#include "nydus/storage/blob_backend.h"
#include "nydus/storage/http_client.h"

namespace nydus::storage {

class HttpProxyBackend final : public BlobBackend {
 public:
  // kInvalidArgument when addr is neither an http(s) URL nor an absolute path.
  static Result<std::unique_ptr<HttpProxyBackend>> create(const config::HttpProxyConfig& cfg);

  Result<std::size_t> read(const std::string& blob_id, std::uint64_t offset,
                           std::span<std::uint8_t> out) override;
  Result<std::uint64_t> blob_size(const std::string& blob_id) override;
  const BackendMetrics& metrics() const override { return metrics_; }

 private:
  HttpProxyBackend(const config::HttpProxyConfig& cfg, std::string base, HttpClientOptions opts);
  std::string url_of(const std::string& blob_id) const { return base_ + "/" + blob_id; }

  const unsigned retry_limit_;
  const std::string base_;  // scheme://host[:port]/path without a trailing '/'
  HttpClient http_;
  BackendMetrics metrics_;
};

// Blob ids go into URL paths: only [A-Za-z0-9._-], not "." or "..".
bool is_url_safe_blob_id(const std::string& id);

}  // namespace nydus::storage
