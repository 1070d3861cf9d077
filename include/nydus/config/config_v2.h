// ConfigV2: the one canonical filesystem / blob configuration (contract §7).
//
// Every `--config` file, mount `config` string and blob-cache entry ends up
// as one of the structs below; legacy formats are converted at the edge
// (legacy.h, blob_entry.h). Text is turned into these structs by parse.h,
// checked by validate.h and written back by serialize.h.
//
// Defaults: member initialisers are the values of §7 for a key absent from a
// present section. Two sections differ when they are absent as a whole:
// `prefetch` (cache and rafs) is then all zero/false, which is what the
// struct default holds; the field defaults used when a `prefetch` object is
// present but partial are kPrefetchFieldDefaults. Optional sections
// (std::optional) are simply absent. Where upstream 0.2.0 and HEAD differ we
// use HEAD (e.g. rafs.batch_size 1 MiB); docs/config.md lists every choice.
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nydus/config/backend_config.h"

namespace nydus::config {

inline constexpr std::uint64_t kDefaultBatchSize = 1 << 20;     // 1 MiB [HEAD]; 128 KiB in 0.2.0
inline constexpr std::uint64_t kMaxBatchSize = 0x1000'0000;     // 256 MiB, rafs and prefetch
inline constexpr std::uint64_t kMaxPrefetchThreads = 1024;

// `cache.prefetch` and `rafs.prefetch`. Struct defaults = section absent.
struct PrefetchConfigV2 {
  bool enable = false;                // required key when the section is present
  std::uint64_t threads = 0;          // 1..1024 when enabled
  std::uint64_t batch_size = 0;       // bytes per backend request, <= kMaxBatchSize
  std::uint32_t bandwidth_limit = 0;  // bytes/s, 0 = unlimited
  bool prefetch_all = false;          // prefetch every blob, not just the hinted files
  bool stream_prefetch = false;       // [HEAD]
  bool operator==(const PrefetchConfigV2&) const = default;
};

// Defaults of the keys of a present but partial `prefetch` object.
inline constexpr PrefetchConfigV2 kPrefetchFieldDefaults{
    .enable = false, .threads = 8, .batch_size = kDefaultBatchSize};

// `cache.filecache` (also used for type `blobcache`).
struct FileCacheConfig {
  std::string work_dir = ".";                 // directory for cached blob data
  bool disable_indexed_map = false;           // deprecated; keep false
  bool enable_encryption = false;             // [HEAD] encrypt cached data
  bool enable_convergent_encryption = false;  // [HEAD] keeps chunk dedup possible
  std::string encryption_key{};               // [HEAD] secret: hex of 32 bytes
  bool operator==(const FileCacheConfig&) const = default;
};

// `cache.fscache` (Linux fscache/EROFS on-demand mode).
struct FsCacheConfig {
  std::string work_dir = ".";
  bool operator==(const FsCacheConfig&) const = default;
};

// `cache`. type: blobcache == filecache, fscache, dummycache or "" (none).
struct CacheConfigV2 {
  std::string type{};
  bool compressed = false;                     // cache chunks as stored: `.blob.raw`
  bool validate = false;                       // verify chunk digests when reading the cache
  PrefetchConfigV2 prefetch{};                 // blob-level prefetch
  std::optional<FileCacheConfig> filecache{};  // required for blobcache/filecache
  std::optional<FsCacheConfig> fscache{};      // required for fscache
  bool operator==(const CacheConfigV2&) const = default;
};

// `rafs`: filesystem-level options.
struct RafsConfigV2 {
  std::string mode = "direct";                   // direct or cached metadata
  std::uint64_t batch_size = kDefaultBatchSize;  // user I/O amplification, <= kMaxBatchSize
  bool validate = false;                         // verify chunk digests
  bool enable_xattr = false;
  bool iostats_files = false;                    // per-file metrics (contract §4.4)
  bool access_pattern = false;                   // access-pattern metrics (§4.5)
  bool latest_read_files = false;                // record recently read files (§4.4)
  PrefetchConfigV2 prefetch{};                   // filesystem-level prefetch
  bool operator==(const RafsConfigV2&) const = default;
};

// One entry of `external_backends` [HEAD]; `type` is required.
struct ExternalBackendConfig {
  std::string type{};
  std::map<std::string, std::string> patch{};
  std::map<std::string, std::string> config{};  // may hold credentials
  bool operator==(const ExternalBackendConfig&) const = default;
};

// `overlay` [HEAD]: writable layer over the image; both keys required.
struct OverlayConfig {
  std::string upper_dir{};
  std::string work_dir{};
  bool operator==(const OverlayConfig&) const = default;
};

struct ConfigV2 {
  std::uint32_t version = 2;                               // required key; must be 2
  std::string id{};                                        // instance id, blob-cache metrics key
  std::optional<BackendConfigV2> backend{};
  std::vector<ExternalBackendConfig> external_backends{};  // [HEAD]
  std::optional<CacheConfigV2> cache{};
  std::optional<RafsConfigV2> rafs{};
  std::optional<OverlayConfig> overlay{};                  // [HEAD]
  bool operator==(const ConfigV2&) const = default;
};

// `config_v2` of a BlobCacheEntry (§3.3.1). backend/cache default to empty
// sections, which then fail validation.
struct BlobCacheEntryConfigV2 {
  std::uint32_t version = 2;                               // required key; not checked (upstream quirk kept)
  std::string id{};
  BackendConfigV2 backend{};
  CacheConfigV2 cache{};
  std::optional<std::string> metadata_path{};              // bootstrap file; the daemon needs it
  std::vector<ExternalBackendConfig> external_backends{};  // [HEAD]
  bool operator==(const BlobCacheEntryConfigV2&) const = default;
};

}  // namespace nydus::config
