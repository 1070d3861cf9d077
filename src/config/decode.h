// Decoding configuration objects from a json::Document (JSON or TOML source).
//
// Each decode(d, v, path, out) reads the JSON value `v`, found at JSON pointer
// `path` of d's document, as the named struct with serde's rules (contract
// §3): unknown keys ignored; a missing required key, a value of the wrong
// type, or null for a non-optional key is an error recorded in `d` (with
// serde's text and the position of the value); optional sections accept
// null. Arrays are NOT accepted in place of objects (deliberate deviation
// from serde, see docs/config.md). Absent keys take the field defaults of
// §7 — for prefetch objects kPrefetchFieldDefaults / kFsPrefetchFieldDefaults,
// not the struct defaults.
//
// Contract of every decode(): if `d` already holds an error nothing happens;
// on success `out` is replaced; on failure `out` is left untouched and
// d.error() says why. Callers check d.ok() once at the end.
//
// The API layer uses these while parsing a request body with its own Decoder,
// so ParseBody errors inside nested configuration objects carry the body's
// positions:
//   std::optional<config::BlobCacheEntryConfig> legacy;
//   config::decode_optional_field(entry_reader, "config", legacy);
//
// Thread-safety: a Decoder is used by one thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "nydus/config/blob_entry.h"
#include "nydus/config/config_v2.h"
#include "config/legacy.h"
#include "nydus/json.h"
#include "nydus/result.h"

namespace nydus::config {

void decode(json::Decoder& d, const json::Value& v, const std::string& path, ProxyConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, MirrorConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, LocalFsConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, LocalDiskConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, OssConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, S3Config& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, RegistryConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, HttpProxyConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, BackendConfigV2& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, PrefetchConfigV2& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, FileCacheConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, FsCacheConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, CacheConfigV2& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, RafsConfigV2& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, ExternalBackendConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, OverlayConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, ConfigV2& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, BlobCacheEntryConfigV2& out);
// Legacy formats (legacy.h, blob_entry.h): raw `config` values are copied.
void decode(json::Decoder& d, const json::Value& v, const std::string& path, LegacyBackendConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, LegacyCacheConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, FactoryConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, FsPrefetchControl& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, RafsConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, BlobPrefetchConfig& out);
void decode(json::Decoder& d, const json::Value& v, const std::string& path, BlobCacheEntryConfig& out);

// Field helpers for callers holding an ObjectReader of the enclosing object.
// decode_optional_field: absent or null -> nullopt, otherwise decoded.
template <class T>
void decode_optional_field(json::ObjectReader& o, std::string_view key, std::optional<T>& out) {
  if (!o.decoder().ok()) return;
  const json::Value* v = o.find(key);
  if (v == nullptr || v->is_null()) {
    out.reset();
    return;
  }
  T tmp{};
  decode(o.decoder(), *v, o.child_path(key), tmp);
  if (o.decoder().ok()) out = std::move(tmp);
}

// serde-compatible building blocks for decoders of other structs:
// read_usize / usize_field read a `usize` ("invalid value: integer `-1`,
// expected usize"); usize_field leaves `out` alone when the key is absent.
// require_keys reports the first absent key ("missing field `k`", at the
// object's position); call it after reading the present keys, as serde does.
void read_usize(json::Decoder& d, const json::Value& v, const std::string& path, std::uint64_t& out);
void usize_field(json::ObjectReader& o, std::string_view key, std::uint64_t& out);
void require_keys(json::ObjectReader& o, std::initializer_list<std::string_view> keys);

// decode_field: absent keeps `out` (the section default); null is an error.
template <class T>
void decode_field(json::ObjectReader& o, std::string_view key, T& out) {
  if (!o.decoder().ok()) return;
  const json::Value* v = o.find(key);
  if (v != nullptr) decode(o.decoder(), *v, o.child_path(key), out);
}

// "<dotted key>: <reason> at line L column C" (serde's Display plus the key);
// the key part is left out for the root, the position when it is unknown
// (line 0, e.g. documents built in memory).
std::string format_decode_error(const json::Error& e);

// Decodes the root of `doc` as T; errors as kInvalidArgument with
// format_decode_error's text. Does not validate.
template <class T>
Result<T> decode_document(const json::Document& doc) {
  json::Decoder d(doc);
  T out{};
  decode(d, doc.root(), "", out);
  if (!d.ok()) return fail(ErrorCode::kInvalidArgument, format_decode_error(d.error()));
  return out;
}

}  // namespace nydus::config
