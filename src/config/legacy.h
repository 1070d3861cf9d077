// Legacy v1 filesystem configuration (RafsConfig / FactoryConfig, contract
// §7.6) and its conversion to ConfigV2.
//
// This is the format nydus-snapshotter writes for FUSE daemons and sends in
// the mount `config` string, e.g.
//   {"device":{"backend":{"type":"registry","config":{"host":"h","repo":"r"}},
//              "cache":{"type":"blobcache","config":{"work_dir":"/c"}}},
//    "mode":"direct","fs_prefetch":{"enable":true,"threads_count":8}}
// The backend and cache `config` objects are kept as raw JSON until
// conversion, because their shape depends on `type`.
//
// Conversion (to_config_v2): version := 2; backend.<type> is decoded from
// device.backend.config with the §7.2 rules (type must be localfs, oss, s3,
// registry or localdisk); cache.type is copied and device.cache.config
// decoded as cache.filecache (blobcache/filecache) or cache.fscache
// (fscache), ignored for ""; `dummycache` and every other type are a
// conversion error (upstream quirk kept, see docs/config.md); cache.validate
// := false; cache.prefetch := disabled with prefetch_all = true (as observed
// upstream), replaced by a copy of rafs.prefetch when fs_prefetch is enabled.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "nydus/config/config_v2.h"
#include "nydus/json.h"
#include "nydus/result.h"

namespace nydus::config {

// `device.backend`: both keys required.
struct LegacyBackendConfig {
  std::string type{};
  json::Value config{};             // raw; decoded per `type` at conversion
  bool operator==(const LegacyBackendConfig&) const = default;
};

// `device.cache`; absent -> type "" (no cache).
struct LegacyCacheConfig {
  std::string type{};
  bool compressed = false;
  json::Value config{};             // raw; null when absent
  bool operator==(const LegacyCacheConfig&) const = default;
};

// `device`.
struct FactoryConfig {
  std::string id{};                 // becomes ConfigV2::id
  LegacyBackendConfig backend{};
  LegacyCacheConfig cache{};
  bool operator==(const FactoryConfig&) const = default;
};

// `fs_prefetch`. Struct defaults = section absent (all zero/false).
struct FsPrefetchControl {
  bool enable = false;
  std::uint64_t threads_count = 0;
  std::uint64_t merging_size = 0;
  std::uint32_t bandwidth_rate = 0;
  bool prefetch_all = false;
  bool stream_prefetch = false;     // [HEAD]
  bool operator==(const FsPrefetchControl&) const = default;
};

// Defaults of the keys of a present `fs_prefetch` object.
inline constexpr FsPrefetchControl kFsPrefetchFieldDefaults{
    .enable = false, .threads_count = 8, .merging_size = kDefaultBatchSize, .bandwidth_rate = 0,
    .prefetch_all = true};

// The legacy document. `device` and `mode` are required keys.
struct RafsConfig {
  FactoryConfig device{};
  std::string mode{};                            // -> rafs.mode
  bool digest_validate = false;                  // -> rafs.validate
  bool iostats_files = false;
  bool enable_xattr = false;
  bool access_pattern = false;
  bool latest_read_files = false;
  std::uint64_t amplify_io = kDefaultBatchSize;  // -> rafs.batch_size (HEAD default)
  FsPrefetchControl fs_prefetch{};               // -> rafs.prefetch
  bool operator==(const RafsConfig&) const = default;
};

// Converts without validating (parse.h validates). Errors (kInvalidArgument)
// name the legacy key, e.g. "device.backend.config: missing field `host`" or
// "device.cache.type: unsupported cache type `dummycache` …".
Result<ConfigV2> to_config_v2(const RafsConfig& legacy);

// Decodes the root of `doc` as RafsConfig, converts and validates it
// (validate(), not the RAFS-mount rules). Errors (kInvalidArgument) carry the
// key and, for decode errors, the position in `doc`'s source text;
// validation problems are named by the legacy key the user wrote
// ("fs_prefetch.threads_count: …", "device.backend.config.dir: …").
Result<ConfigV2> from_legacy_document(const json::Document& doc);

// nydusd's built-in configuration for `--localfs-dir <dir>` (§7.6): the
// legacy document {device:{backend:{type:localfs,config:{dir,readahead:true}},
// cache:{type:blobcache,config:{compressed:false,work_dir:dir}}},mode:direct,
// digest_validate:false,iostats_files:false}, converted and validated.
// Fails only when `dir` is empty.
Result<ConfigV2> localfs_dir_config(std::string_view dir);

// Building blocks shared with the legacy blob-cache entry (blob_entry.h).
// They decode a raw legacy `config` value into the ConfigV2 section named by
// `type`, recording the first error in `d`; `*_path` are the JSON pointers of
// the two values in d's document (used for the error key and position).
// convert_legacy_backend replaces `out`; convert_legacy_cache sets only
// out.type, out.filecache and out.fscache. On error `out` is untouched.
void convert_legacy_backend(json::Decoder& d, const std::string& type, const std::string& type_path,
                            const json::Value& config, const std::string& config_path, BackendConfigV2& out);
void convert_legacy_cache(json::Decoder& d, const std::string& type, const std::string& type_path,
                          const json::Value& config, const std::string& config_path, CacheConfigV2& out);

}  // namespace nydus::config
