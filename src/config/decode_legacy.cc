// Decoders of the legacy formats: RafsConfig (§7.6) and the blob-cache
// entry's BlobCacheEntryConfig (§3.3.1). Same rules as decode.cc; the backend
// and cache `config` objects are copied raw, their shape depends on `type`
// and is checked at conversion (legacy.cc, blob_entry.cc).
#include "config/decode.h"

namespace nydus::config {

using json::Decoder;
using json::Value;

void decode(Decoder& d, const Value& v, const std::string& path, LegacyBackendConfig& out) {
  auto o = d.as_object(v, path, "struct BackendConfig");
  if (!o) return;
  LegacyBackendConfig c;
  o->optional("type", c.type);
  o->optional("config", c.config);
  require_keys(*o, {"type", "config"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, LegacyCacheConfig& out) {
  auto o = d.as_object(v, path, "struct CacheConfig");
  if (!o) return;
  LegacyCacheConfig c;
  o->optional("type", c.type);
  o->optional("compressed", c.compressed);
  o->optional("config", c.config);
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, FactoryConfig& out) {
  auto o = d.as_object(v, path, "struct FactoryConfig");
  if (!o) return;
  FactoryConfig c;
  o->optional("id", c.id);
  decode_field(*o, "backend", c.backend);
  decode_field(*o, "cache", c.cache);
  require_keys(*o, {"backend"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, FsPrefetchControl& out) {
  auto o = d.as_object(v, path, "struct FsPrefetchControl");
  if (!o) return;
  FsPrefetchControl c = kFsPrefetchFieldDefaults;
  o->optional("enable", c.enable);
  usize_field(*o, "threads_count", c.threads_count);
  usize_field(*o, "merging_size", c.merging_size);
  o->optional("bandwidth_rate", c.bandwidth_rate);
  o->optional("prefetch_all", c.prefetch_all);
  o->optional("stream_prefetch", c.stream_prefetch);
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, RafsConfig& out) {
  auto o = d.as_object(v, path, "struct RafsConfig");
  if (!o) return;
  RafsConfig c;
  decode_field(*o, "device", c.device);
  o->optional("mode", c.mode);
  o->optional("digest_validate", c.digest_validate);
  o->optional("iostats_files", c.iostats_files);
  decode_field(*o, "fs_prefetch", c.fs_prefetch);
  o->optional("enable_xattr", c.enable_xattr);
  o->optional("access_pattern", c.access_pattern);
  o->optional("latest_read_files", c.latest_read_files);
  usize_field(*o, "amplify_io", c.amplify_io);
  require_keys(*o, {"device", "mode"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, BlobPrefetchConfig& out) {
  auto o = d.as_object(v, path, "struct BlobPrefetchConfig");
  if (!o) return;
  BlobPrefetchConfig c;
  o->optional("enable", c.enable);
  usize_field(*o, "threads_count", c.threads_count);
  usize_field(*o, "merging_size", c.merging_size);
  o->optional("bandwidth_rate", c.bandwidth_rate);
  require_keys(*o, {"enable", "threads_count", "merging_size", "bandwidth_rate"});
  if (d.ok()) out = std::move(c);
}

void decode(Decoder& d, const Value& v, const std::string& path, BlobCacheEntryConfig& out) {
  auto o = d.as_object(v, path, "struct BlobCacheEntryConfig");
  if (!o) return;
  BlobCacheEntryConfig c;
  o->optional("id", c.id);
  o->optional("backend_type", c.backend_type);
  o->optional("backend_config", c.backend_config);
  o->optional("cache_type", c.cache_type);
  o->optional("cache_config", c.cache_config);
  decode_field(*o, "prefetch_config", c.prefetch_config);
  o->optional("metadata_path", c.metadata_path);
  require_keys(*o, {"backend_type", "backend_config", "cache_type", "cache_config"});
  if (d.ok()) out = std::move(c);
}

}  // namespace nydus::config
