// Per-blob configuration of a blob-cache entry (`PUT /api/v2/blobs`,
// contract §3.3, §3.3.1, §3.3.2).
//
// A BlobCacheEntry carries `config_v2` (BlobCacheEntryConfigV2, config_v2.h)
// and/or the legacy `config` (BlobCacheEntryConfig, below; what
// nydus-snapshotter sends). The API layer decodes both with decode.h while it
// parses the request body — errors there are 400 ParseBody, including a
// `prefetch_config` object that lacks one of its four keys — and then calls
// prepare_blob_entry_config(); an error from it is 400 BadRequest.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nydus/config/config_v2.h"
#include "nydus/config/validate.h"
#include "nydus/json.h"
#include "nydus/result.h"

namespace nydus::config {

// Legacy `prefetch_config`. Absent -> all zero. Present -> all four keys are
// required (serde has no field defaults here).
struct BlobPrefetchConfig {
  bool enable = false;
  std::uint64_t threads_count = 0;   // -> cache.prefetch.threads
  std::uint64_t merging_size = 0;    // -> cache.prefetch.batch_size
  std::uint32_t bandwidth_rate = 0;  // -> cache.prefetch.bandwidth_limit
  bool operator==(const BlobPrefetchConfig&) const = default;
};

// Legacy `config`. backend_type, backend_config, cache_type and cache_config
// are required keys; the two `*_config` values may be any JSON and are
// decoded per type only at conversion.
struct BlobCacheEntryConfig {
  std::string id{};
  std::string backend_type{};       // localfs, oss, s3, registry, localdisk
  json::Value backend_config{};
  std::string cache_type{};         // blobcache, filecache, fscache or ""
  json::Value cache_config{};
  BlobPrefetchConfig prefetch_config{};
  std::optional<std::string> metadata_path{};
  bool operator==(const BlobCacheEntryConfig&) const = default;
};

// Converts the legacy object (no validation): version 2, id, backend.<type>
// from backend_config, cache.type and cache.filecache/fscache from
// cache_config, cache.prefetch from prefetch_config with prefetch_all forced
// to true, compressed/validate false, metadata_path copied.
// Errors (kInvalidArgument) name the key as it appears in a BlobCacheEntry
// body, e.g. "config.backend_type: unsupported backend type `ftp` …",
// "config.cache_type: unsupported cache type `dummycache` …",
// "config.backend_config: missing field `host`".
Result<BlobCacheEntryConfigV2> to_config_v2(const BlobCacheEntryConfig& legacy);

// The checks `prepare` applies: validate_cache(cache) then
// validate_backend(backend). `version` and the ConfigV2 top-level rules are
// not applied (upstream behaviour, see docs/config.md).
std::vector<Problem> validate_blob_entry(const BlobCacheEntryConfigV2& config);

// §3.3.2 prepare_configuration_info:
//   1. `v2` present -> it is used and `legacy` ignored completely;
//      otherwise `legacy` present -> converted (error -> returned);
//   2. neither -> error "no configuration: neither `config_v2` nor `config` given";
//   3. validate_blob_entry(); problems -> error listing all of them, keyed
//      as in the body ("config_v2.backend.localfs.dir: …", or for a converted
//      legacy entry "config.backend_config.dir: …").
// On success returns the configuration the daemon should use. Every error
// is kInvalidArgument; its message is for logs, the API answers 400
// BadRequest with upstream's bare body.
Result<BlobCacheEntryConfigV2> prepare_blob_entry_config(const std::optional<BlobCacheEntryConfigV2>& v2,
                                                         const std::optional<BlobCacheEntryConfig>& legacy);

// Reads a BlobCacheEntry body's optional per-blob objects, "config" (legacy)
// then "config_v2", with the caller's reader: a decode error is recorded in
// its Decoder with the body's positions (the API answers 400 ParseBody).
void decode_entry_configs(json::ObjectReader& entry, std::optional<BlobCacheEntryConfig>& legacy,
                          std::optional<BlobCacheEntryConfigV2>& v2);

}  // namespace nydus::config
