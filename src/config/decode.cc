// Decoders for every configuration struct, on top of json::ObjectReader.
//
// Each decoder mirrors one upstream serde struct: it starts from the field
// defaults, reads the keys it knows (ignoring the rest), and only then
// reports required keys that are missing. That order follows serde, which
// reports a bad value as it meets it but a missing field only at the end of
// the object; among several missing fields the first in declaration order
// wins, as in serde. `usize` keys get serde's "expected usize" wording, which
// the generic Decoder (u8..u64 only) cannot produce. The legacy formats are
// in decode_legacy.cc.
#include "config/decode.h"

#include <initializer_list>

#include <fmt/format.h>

namespace nydus::config {

using json::Decoder;
using json::Value;
namespace {

using json::ObjectReader;

template <class T>
void decode_list(Decoder& d, const Value& v, const std::string& path, std::vector<T>& out) {
  if (!d.ok()) return;
  if (!v.is_array()) return d.fail_type(v, path, "a sequence");
  std::vector<T> items;
  items.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    T item{};
    decode(d, v[i], path + "/" + std::to_string(i), item);
    if (!d.ok()) return;
    items.push_back(std::move(item));
  }
  out = std::move(items);
}

template <class T>
void list_field(ObjectReader& o, std::string_view key, std::vector<T>& out) {
  if (!o.decoder().ok()) return;
  if (const Value* v = o.find(key)) decode_list(o.decoder(), *v, o.child_path(key), out);
}

// Fields shared by every HTTP-based backend, in their serde order.
template <class C>
void read_connection(ObjectReader& o, C& c) {
  o.optional("skip_verify", c.skip_verify);
  o.optional("timeout", c.timeout);
  o.optional("connect_timeout", c.connect_timeout);
  o.optional("retry_limit", c.retry_limit);
  decode_field(o, "proxy", c.proxy);
  o.optional("ca_cert_files", c.ca_cert_files);
}

// oss and s3 share everything but `region`.
template <class C>
void read_object_store(ObjectReader& o, C& c) {
  o.optional("scheme", c.scheme);
  o.optional("endpoint", c.endpoint);
  o.optional("bucket_name", c.bucket_name);
  o.optional("object_prefix", c.object_prefix);
  o.optional("access_key_id", c.access_key_id);
  o.optional("access_key_secret", c.access_key_secret);
  read_connection(o, c);
  list_field(o, "mirrors", c.mirrors);
}

}  // namespace

void read_usize(Decoder& d, const Value& v, const std::string& path, std::uint64_t& out) {
  if (!d.ok()) return;
  if (v.is_number_unsigned()) {
    out = v.get<std::uint64_t>();
  } else if (v.is_number_integer()) {
    d.fail(fmt::format("invalid value: integer `{}`, expected usize", v.get<std::int64_t>()), path);
  } else {
    d.fail_type(v, path, "usize");
  }
}

void usize_field(json::ObjectReader& o, std::string_view key, std::uint64_t& out) {
  if (!o.decoder().ok()) return;
  if (const Value* v = o.find(key)) read_usize(o.decoder(), *v, o.child_path(key), out);
}

void require_keys(json::ObjectReader& o, std::initializer_list<std::string_view> keys) {
  for (std::string_view key : keys) {
    if (!o.decoder().ok()) return;
    if (o.find(key) == nullptr) o.decoder().fail(fmt::format("missing field `{}`", key), o.path());
  }
}

void decode(Decoder& d, const Value& v, const std::string& path, ProxyConfig& out) {
  auto o = d.as_object(v, path, "struct ProxyConfig");
  if (!o) return;
  ProxyConfig c;
  o->optional("url", c.url);
  o->optional("ping_url", c.ping_url);
  o->optional("fallback", c.fallback);
  o->optional("check_interval", c.check_interval);
  o->optional("use_http", c.use_http);
  o->optional("check_pause_elapsed", c.check_pause_elapsed);
  o->optional("dragonfly_scheduler_endpoint", c.dragonfly_scheduler_endpoint);
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, MirrorConfig& out) {
  auto o = d.as_object(v, path, "struct MirrorConfig");
  if (!o) return;
  MirrorConfig c;
  o->optional("host", c.host);
  o->optional("ping_url", c.ping_url);
  o->optional("headers", c.headers);
  o->optional("auth_through", c.auth_through);
  o->optional("health_check_interval", c.health_check_interval);
  o->optional("failure_limit", c.failure_limit);
  require_keys(*o, {"host"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, LocalFsConfig& out) {
  auto o = d.as_object(v, path, "struct LocalFsConfig");
  if (!o) return;
  LocalFsConfig c;
  o->optional("blob_file", c.blob_file);
  o->optional("dir", c.dir);
  o->optional("alt_dirs", c.alt_dirs);
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, LocalDiskConfig& out) {
  auto o = d.as_object(v, path, "struct LocalDiskConfig");
  if (!o) return;
  LocalDiskConfig c;
  o->optional("device_path", c.device_path);
  o->optional("disable_gpt", c.disable_gpt);
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, OssConfig& out) {
  auto o = d.as_object(v, path, "struct OssConfig");
  if (!o) return;
  OssConfig c;
  read_object_store(*o, c);
  require_keys(*o, {"endpoint", "bucket_name"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, S3Config& out) {
  auto o = d.as_object(v, path, "struct S3Config");
  if (!o) return;
  S3Config c;
  o->optional("region", c.region);
  read_object_store(*o, c);
  require_keys(*o, {"endpoint", "region", "bucket_name"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, RegistryConfig& out) {
  auto o = d.as_object(v, path, "struct RegistryConfig");
  if (!o) return;
  RegistryConfig c;
  o->optional("scheme", c.scheme);
  o->optional("host", c.host);
  o->optional("repo", c.repo);
  o->optional("auth", c.auth);
  o->optional("registry_token", c.registry_token);
  o->optional("blob_url_scheme", c.blob_url_scheme);
  o->optional("blob_redirected_host", c.blob_redirected_host);
  read_connection(*o, c);
  list_field(*o, "mirrors", c.mirrors);
  require_keys(*o, {"host", "repo"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, HttpProxyConfig& out) {
  auto o = d.as_object(v, path, "struct HttpProxyConfig");
  if (!o) return;
  HttpProxyConfig c;
  o->optional("addr", c.addr);
  o->optional("path", c.path);
  read_connection(*o, c);
  require_keys(*o, {"addr"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, BackendConfigV2& out) {
  auto o = d.as_object(v, path, "struct BackendConfigV2");
  if (!o) return;
  BackendConfigV2 c;
  o->optional("type", c.type);
  decode_optional_field(*o, "localdisk", c.localdisk);
  decode_optional_field(*o, "localfs", c.localfs);
  decode_optional_field(*o, "oss", c.oss);
  decode_optional_field(*o, "s3", c.s3);
  decode_optional_field(*o, "registry", c.registry);
  decode_optional_field(*o, "http-proxy", c.http_proxy);
  require_keys(*o, {"type"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, PrefetchConfigV2& out) {
  auto o = d.as_object(v, path, "struct PrefetchConfigV2");
  if (!o) return;
  PrefetchConfigV2 c = kPrefetchFieldDefaults;
  o->optional("enable", c.enable);
  usize_field(*o, "threads", c.threads);
  usize_field(*o, "batch_size", c.batch_size);
  o->optional("bandwidth_limit", c.bandwidth_limit);
  o->optional("prefetch_all", c.prefetch_all);
  o->optional("stream_prefetch", c.stream_prefetch);
  require_keys(*o, {"enable"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, FileCacheConfig& out) {
  auto o = d.as_object(v, path, "struct FileCacheConfig");
  if (!o) return;
  FileCacheConfig c;
  o->optional("work_dir", c.work_dir);
  o->optional("disable_indexed_map", c.disable_indexed_map);
  o->optional("enable_encryption", c.enable_encryption);
  o->optional("enable_convergent_encryption", c.enable_convergent_encryption);
  o->optional("encryption_key", c.encryption_key);
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, FsCacheConfig& out) {
  auto o = d.as_object(v, path, "struct FsCacheConfig");
  if (!o) return;
  FsCacheConfig c;
  o->optional("work_dir", c.work_dir);
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, CacheConfigV2& out) {
  auto o = d.as_object(v, path, "struct CacheConfigV2");
  if (!o) return;
  CacheConfigV2 c;
  o->optional("type", c.type);
  o->optional("compressed", c.compressed);
  o->optional("validate", c.validate);
  decode_field(*o, "prefetch", c.prefetch);
  decode_optional_field(*o, "filecache", c.filecache);
  decode_optional_field(*o, "fscache", c.fscache);
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, RafsConfigV2& out) {
  auto o = d.as_object(v, path, "struct RafsConfigV2");
  if (!o) return;
  RafsConfigV2 c;
  o->optional("mode", c.mode);
  usize_field(*o, "batch_size", c.batch_size);
  o->optional("validate", c.validate);
  o->optional("enable_xattr", c.enable_xattr);
  o->optional("iostats_files", c.iostats_files);
  o->optional("access_pattern", c.access_pattern);
  o->optional("latest_read_files", c.latest_read_files);
  decode_field(*o, "prefetch", c.prefetch);
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, ExternalBackendConfig& out) {
  auto o = d.as_object(v, path, "struct ExternalBackendConfig");
  if (!o) return;
  ExternalBackendConfig c;
  o->optional("type", c.type);
  o->optional("patch", c.patch);
  o->optional("config", c.config);
  require_keys(*o, {"type"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, OverlayConfig& out) {
  auto o = d.as_object(v, path, "struct OverlayConfig");
  if (!o) return;
  OverlayConfig c;
  o->optional("upper_dir", c.upper_dir);
  o->optional("work_dir", c.work_dir);
  require_keys(*o, {"upper_dir", "work_dir"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, ConfigV2& out) {
  auto o = d.as_object(v, path, "struct ConfigV2");
  if (!o) return;
  ConfigV2 c;
  o->optional("version", c.version);
  o->optional("id", c.id);
  decode_optional_field(*o, "backend", c.backend);
  list_field(*o, "external_backends", c.external_backends);
  decode_optional_field(*o, "cache", c.cache);
  decode_optional_field(*o, "rafs", c.rafs);
  decode_optional_field(*o, "overlay", c.overlay);
  require_keys(*o, {"version"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, BlobCacheEntryConfigV2& out) {
  auto o = d.as_object(v, path, "struct BlobCacheEntryConfigV2");
  if (!o) return;
  BlobCacheEntryConfigV2 c;
  o->optional("version", c.version);
  o->optional("id", c.id);
  decode_field(*o, "backend", c.backend);
  decode_field(*o, "cache", c.cache);
  o->optional("metadata_path", c.metadata_path);
  list_field(*o, "external_backends", c.external_backends);
  require_keys(*o, {"version"});
  if (d.ok()) out = std::move(c);
}

std::string format_decode_error(const json::Error& e) {
  std::string text = e.to_key_message();
  if (e.position.line > 0) text += fmt::format(" at line {} column {}", e.position.line, e.position.column);
  return text;
}

}  // namespace nydus::config
