// Semantic checks of a decoded ConfigV2 (contract §7.2–§7.4).
//
// Unlike upstream's `validate() -> bool`, every check reports each problem
// it finds, with the dotted key of the offending value:
//   backend.localfs.dir: required when blob_file is empty
//   cache.prefetch.threads: must be between 1 and 1024 when prefetch is enabled, got 0
// Checks run in key order (backend, cache, rafs), so messages are stable.
//
// The only check that touches the filesystem is http-proxy `addr`, which may
// name an existing Unix socket (stat only, never opened).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "nydus/config/config_v2.h"

namespace nydus::config {

struct Problem {
  std::string key{};                // dotted path, e.g. "backend.oss.endpoint"; "" = whole document
  std::string message{};            // e.g. "must not be empty"
  bool operator==(const Problem&) const = default;
  // "<key>: <message>", or just the message when key is empty.
  std::string to_string() const;
};

// All problems joined by "; ", in order. "" for no problems.
std::string render(const std::vector<Problem>& problems);

// Backend rules: `type` must be one of localfs, localdisk, oss, s3, registry,
// http-proxy and its section must be present; then per type: localfs needs
// blob_file or dir; localdisk device_path; oss endpoint and bucket_name; s3
// region and bucket_name; registry host and repo; http-proxy an addr that
// starts with http:// or https:// or is an absolute path that exists.
// `prefix` is the key of the section ("backend").
std::vector<Problem> validate_backend(const BackendConfigV2& backend, std::string_view prefix = "backend");

// Cache rules: blobcache/filecache need `filecache` with a non-empty
// work_dir, fscache needs `fscache` with a non-empty work_dir, "" and
// dummycache need nothing, other types are invalid; enabled prefetch needs
// batch_size <= kMaxBatchSize and 1 <= threads <= kMaxPrefetchThreads.
std::vector<Problem> validate_cache(const CacheConfigV2& cache, std::string_view prefix = "cache");

// RAFS rules: mode direct or cached, batch_size <= kMaxBatchSize, and the
// prefetch rules above.
std::vector<Problem> validate_rafs(const RafsConfigV2& rafs, std::string_view prefix = "rafs");

// ConfigV2 rules: version == 2, then the rules of each present section.
// Empty result = valid (upstream's validate() would return true).
std::vector<Problem> validate(const ConfigV2& config);

// validate() plus what a RAFS mount needs: `cache` and `rafs` present (always
// true after legacy conversion) and, if `overlay` is present, both of its
// directories non-empty. (The RAFS v6 cache-type rule depends on the image
// and is checked by the filesystem layer.)
std::vector<Problem> validate_for_rafs_mount(const ConfigV2& config);

}  // namespace nydus::config
