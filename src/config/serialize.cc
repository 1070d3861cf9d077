// ConfigV2 -> JSON in upstream's key order (§7.7), optionally without secrets.
//
// nlohmann::ordered_json keeps insertion order, so each writer below lists
// its keys in wire order. Scrubbing is a separate pass over a copy
// (without_secrets), so the writers never need to know about secrets and the
// scrubbed output is just the serialisation of a scrubbed config.
#include "nydus/config/serialize.h"

#include <algorithm>
#include <array>
#include <cctype>

#include <nlohmann/json.hpp>

namespace nydus::config {
namespace {

using J = nlohmann::ordered_json;

// Declared up front: the templates below call them for nested sections.
J to_j(const std::map<std::string, std::string>& m);
J to_j(const ProxyConfig& p);
J to_j(const MirrorConfig& m);
J to_j(const LocalFsConfig& c);
J to_j(const LocalDiskConfig& c);
J to_j(const OssConfig& c);
J to_j(const S3Config& c);
J to_j(const RegistryConfig& c);
J to_j(const HttpProxyConfig& c);
J to_j(const BackendConfigV2& b);
J to_j(const PrefetchConfigV2& p);
J to_j(const FileCacheConfig& c);
J to_j(const FsCacheConfig& c);
J to_j(const CacheConfigV2& c);
J to_j(const RafsConfigV2& r);
J to_j(const ExternalBackendConfig& e);
J to_j(const OverlayConfig& o);

template <class T>
J opt(const std::optional<T>& v) {
  return v ? J(to_j(*v)) : J(nullptr);
}
J opt(const std::optional<std::string>& v) { return v ? J(*v) : J(nullptr); }

J to_j(const std::map<std::string, std::string>& m) {
  J out = J::object();
  for (const auto& [k, v] : m) out[k] = v;
  return out;
}

J to_j(const ProxyConfig& p) {
  return J{{"url", p.url},
           {"ping_url", p.ping_url},
           {"fallback", p.fallback},
           {"check_interval", p.check_interval},
           {"use_http", p.use_http},
           {"check_pause_elapsed", p.check_pause_elapsed},
           {"dragonfly_scheduler_endpoint", p.dragonfly_scheduler_endpoint}};
}

J to_j(const MirrorConfig& m) {
  return J{{"host", m.host},
           {"ping_url", m.ping_url},
           {"headers", to_j(m.headers)},
           {"auth_through", m.auth_through},
           {"health_check_interval", m.health_check_interval},
           {"failure_limit", m.failure_limit}};
}

template <class T>
J list(const std::vector<T>& items) {
  J out = J::array();
  for (const T& item : items) out.push_back(to_j(item));
  return out;
}

J to_j(const LocalFsConfig& c) {
  return J{{"blob_file", c.blob_file}, {"dir", c.dir}, {"alt_dirs", c.alt_dirs}};
}

J to_j(const LocalDiskConfig& c) { return J{{"device_path", c.device_path}, {"disable_gpt", c.disable_gpt}}; }

// Connection keys shared by oss, s3, registry, http-proxy, appended to `out`.
template <class C>
void connection(J& out, const C& c) {
  out["skip_verify"] = c.skip_verify;
  out["timeout"] = c.timeout;
  out["connect_timeout"] = c.connect_timeout;
  out["retry_limit"] = c.retry_limit;
}

template <class C>
J object_store(const C& c) {
  J out{{"scheme", c.scheme}, {"endpoint", c.endpoint}};
  if constexpr (requires { c.region; }) out["region"] = c.region;
  out["bucket_name"] = c.bucket_name;
  out["object_prefix"] = c.object_prefix;
  out["access_key_id"] = c.access_key_id;
  out["access_key_secret"] = c.access_key_secret;
  connection(out, c);
  out["proxy"] = to_j(c.proxy);
  out["mirrors"] = list(c.mirrors);
  out["ca_cert_files"] = c.ca_cert_files;
  return out;
}

J to_j(const OssConfig& c) { return object_store(c); }
J to_j(const S3Config& c) { return object_store(c); }

J to_j(const RegistryConfig& c) {
  J out{{"scheme", c.scheme}, {"host", c.host}, {"repo", c.repo}, {"auth", opt(c.auth)}};
  connection(out, c);
  out["registry_token"] = opt(c.registry_token);
  out["blob_url_scheme"] = c.blob_url_scheme;
  out["blob_redirected_host"] = c.blob_redirected_host;
  out["proxy"] = to_j(c.proxy);
  out["mirrors"] = list(c.mirrors);
  out["ca_cert_files"] = c.ca_cert_files;
  return out;
}

J to_j(const HttpProxyConfig& c) {
  J out{{"addr", c.addr}, {"path", c.path}};
  connection(out, c);
  out["proxy"] = to_j(c.proxy);
  out["ca_cert_files"] = c.ca_cert_files;
  return out;
}

J to_j(const BackendConfigV2& b) {
  return J{{"type", b.type},       {"localdisk", opt(b.localdisk)}, {"localfs", opt(b.localfs)},
           {"oss", opt(b.oss)},    {"s3", opt(b.s3)},               {"registry", opt(b.registry)},
           {"http-proxy", opt(b.http_proxy)}};
}

J to_j(const PrefetchConfigV2& p) {
  return J{{"enable", p.enable},
           {"threads", p.threads},
           {"batch_size", p.batch_size},
           {"bandwidth_limit", p.bandwidth_limit},
           {"prefetch_all", p.prefetch_all},
           {"stream_prefetch", p.stream_prefetch}};
}

J to_j(const FileCacheConfig& c) {
  return J{{"work_dir", c.work_dir},
           {"disable_indexed_map", c.disable_indexed_map},
           {"enable_encryption", c.enable_encryption},
           {"enable_convergent_encryption", c.enable_convergent_encryption},
           {"encryption_key", c.encryption_key}};
}

J to_j(const FsCacheConfig& c) { return J{{"work_dir", c.work_dir}}; }

J to_j(const CacheConfigV2& c) {
  return J{{"type", c.type},           {"compressed", c.compressed},       {"validate", c.validate},
           {"prefetch", to_j(c.prefetch)}, {"filecache", opt(c.filecache)}, {"fscache", opt(c.fscache)}};
}

J to_j(const RafsConfigV2& r) {
  return J{{"mode", r.mode},
           {"batch_size", r.batch_size},
           {"validate", r.validate},
           {"enable_xattr", r.enable_xattr},
           {"iostats_files", r.iostats_files},
           {"access_pattern", r.access_pattern},
           {"latest_read_files", r.latest_read_files},
           {"prefetch", to_j(r.prefetch)}};
}

J to_j(const ExternalBackendConfig& e) {
  return J{{"type", e.type}, {"patch", to_j(e.patch)}, {"config", to_j(e.config)}};
}

J to_j(const OverlayConfig& o) { return J{{"upper_dir", o.upper_dir}, {"work_dir", o.work_dir}}; }

// ---- scrubbing -------------------------------------------------------------

void scrub_map(std::map<std::string, std::string>& m) {
  for (auto& [key, value] : m) {
    if (looks_like_secret_key(key)) {
      value = kRedacted;
    } else if (value.find("://") != std::string::npos) {
      value = redact_userinfo(value);
    }
  }
}

void scrub(ProxyConfig& p) {
  p.url = redact_userinfo(p.url);
  p.ping_url = redact_userinfo(p.ping_url);
  p.dragonfly_scheduler_endpoint = redact_userinfo(p.dragonfly_scheduler_endpoint);
}

void scrub(std::vector<MirrorConfig>& mirrors) {
  for (MirrorConfig& m : mirrors) {
    m.host = redact_userinfo(m.host);
    m.ping_url = redact_userinfo(m.ping_url);
    scrub_map(m.headers);
  }
}

template <class C>
void scrub_object_store(C& c) {
  c.endpoint = redact_userinfo(c.endpoint);
  c.access_key_id.clear();
  c.access_key_secret.clear();
  scrub(c.proxy);
  scrub(c.mirrors);
}

void scrub(BackendConfigV2& b) {
  if (b.oss) scrub_object_store(*b.oss);
  if (b.s3) scrub_object_store(*b.s3);
  if (b.registry) {
    RegistryConfig& r = *b.registry;
    r.host = redact_userinfo(r.host);
    r.blob_redirected_host = redact_userinfo(r.blob_redirected_host);
    r.auth.reset();
    r.registry_token.reset();
    scrub(r.proxy);
    scrub(r.mirrors);
  }
  if (b.http_proxy) {
    b.http_proxy->addr = redact_userinfo(b.http_proxy->addr);
    scrub(b.http_proxy->proxy);
  }
}

void scrub(CacheConfigV2& c) {
  if (c.filecache) c.filecache->encryption_key.clear();
}

void scrub(std::vector<ExternalBackendConfig>& backends) {
  for (ExternalBackendConfig& e : backends) {
    scrub_map(e.patch);
    scrub_map(e.config);
  }
}

}  // namespace

std::string redact_userinfo(std::string_view url) {
  std::size_t start = url.find("://");
  start = start == std::string_view::npos ? 0 : start + 3;
  std::size_t end = url.find_first_of("/?#", start);
  std::string_view authority = url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, start));
  out += kRedacted;
  out += url.substr(start + at);
  return out;
}

bool looks_like_secret_key(std::string_view key) {
  static constexpr std::array<std::string_view, 7> kWords{"auth", "token", "secret", "passw",
                                                          "credential", "cookie", "key"};
  std::string lower(key);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return std::any_of(kWords.begin(), kWords.end(),
                     [&](std::string_view w) { return lower.find(w) != std::string::npos; });
}

ConfigV2 without_secrets(const ConfigV2& config) {
  ConfigV2 c = config;
  if (c.backend) scrub(*c.backend);
  if (c.cache) scrub(*c.cache);
  scrub(c.external_backends);
  return c;
}

BlobCacheEntryConfigV2 without_secrets(const BlobCacheEntryConfigV2& config) {
  BlobCacheEntryConfigV2 c = config;
  scrub(c.backend);
  scrub(c.cache);
  scrub(c.external_backends);
  return c;
}

nlohmann::ordered_json to_json(const ConfigV2& config, Secrets secrets) {
  if (secrets == Secrets::kScrub) return to_json(without_secrets(config), Secrets::kKeep);
  return J{{"version", config.version},
           {"id", config.id},
           {"backend", opt(config.backend)},
           {"external_backends", list(config.external_backends)},
           {"cache", opt(config.cache)},
           {"rafs", opt(config.rafs)},
           {"overlay", opt(config.overlay)}};
}

nlohmann::ordered_json to_json(const BlobCacheEntryConfigV2& config, Secrets secrets) {
  if (secrets == Secrets::kScrub) return to_json(without_secrets(config), Secrets::kKeep);
  return J{{"version", config.version},
           {"id", config.id},
           {"backend", to_j(config.backend)},
           {"cache", to_j(config.cache)},
           {"metadata_path", opt(config.metadata_path)},
           {"external_backends", list(config.external_backends)}};
}

}  // namespace nydus::config
