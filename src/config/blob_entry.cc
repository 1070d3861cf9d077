// Blob-cache entry configuration: legacy conversion and `prepare` (§3.3.2).
//
// The legacy object is converted with the same building blocks as the legacy
// filesystem configuration (legacy.h), so both accept the same backend and
// cache types. Errors and problems name keys as they appear in the request
// body ("config.backend_config: missing field `host`",
// "config_v2.cache.prefetch.threads: …"); the API layer already reported
// positions for anything that failed while the body was decoded.
#include "nydus/config/blob_entry.h"

#include "config/decode.h"
#include "config/legacy.h"

namespace nydus::config {

using json::Decoder;
using json::Value;
namespace {

// Key of a problem in a converted legacy entry -> the key in the request body.
std::string legacy_key(const BlobCacheEntryConfigV2& c, const std::string& key) {
  auto under = [&](const std::string& prefix) { return key == prefix || key.starts_with(prefix + "."); };
  auto rest = [&](const std::string& prefix) { return key.substr(prefix.size()); };
  if (key == "backend.type") return "config.backend_type";
  if (key == "cache.type") return "config.cache_type";
  if (std::string p = "backend." + c.backend.type; under(p)) return "config.backend_config" + rest(p);
  for (std::string p : {"cache.filecache", "cache.fscache"}) {
    if (under(p)) return "config.cache_config" + rest(p);
  }
  if (key == "cache.prefetch.threads") return "config.prefetch_config.threads_count";
  if (key == "cache.prefetch.batch_size") return "config.prefetch_config.merging_size";
  return "config." + key;
}

}  // namespace

Result<BlobCacheEntryConfigV2> to_config_v2(const BlobCacheEntryConfig& legacy) {
  json::Document none(Value(), {});
  Decoder d(none);
  BlobCacheEntryConfigV2 out;
  out.version = 2;
  out.id = legacy.id;
  out.metadata_path = legacy.metadata_path;
  convert_legacy_backend(d, legacy.backend_type, "/config/backend_type", legacy.backend_config,
                         "/config/backend_config", out.backend);
  convert_legacy_cache(d, legacy.cache_type, "/config/cache_type", legacy.cache_config, "/config/cache_config",
                       out.cache);
  if (!d.ok()) return fail(ErrorCode::kInvalidArgument, format_decode_error(d.error()));
  out.cache.compressed = false;
  out.cache.validate = false;
  const BlobPrefetchConfig& p = legacy.prefetch_config;
  // prefetch_all is forced on: a legacy blob entry always prefetches whole blobs.
  out.cache.prefetch = PrefetchConfigV2{.enable = p.enable,
                                        .threads = p.threads_count,
                                        .batch_size = p.merging_size,
                                        .bandwidth_limit = p.bandwidth_rate,
                                        .prefetch_all = true};
  return out;
}

std::vector<Problem> validate_blob_entry(const BlobCacheEntryConfigV2& config) {
  std::vector<Problem> problems = validate_cache(config.cache);
  for (Problem& p : validate_backend(config.backend)) problems.push_back(std::move(p));
  return problems;
}

Result<BlobCacheEntryConfigV2> prepare_blob_entry_config(const std::optional<BlobCacheEntryConfigV2>& v2,
                                                         const std::optional<BlobCacheEntryConfig>& legacy) {
  BlobCacheEntryConfigV2 config;
  if (v2) {
    config = *v2;
  } else if (legacy) {
    auto converted = to_config_v2(*legacy);
    if (!converted) return tl::unexpected(converted.error());
    config = std::move(*converted);
  } else {
    return fail(ErrorCode::kInvalidArgument, "no configuration: neither `config_v2` nor `config` given");
  }
  std::vector<Problem> problems = validate_blob_entry(config);
  for (Problem& p : problems) p.key = v2 ? "config_v2." + p.key : legacy_key(config, p.key);
  if (!problems.empty()) return fail(ErrorCode::kInvalidArgument, render(problems));
  return config;
}

void decode_entry_configs(json::ObjectReader& entry, std::optional<BlobCacheEntryConfig>& legacy,
                          std::optional<BlobCacheEntryConfigV2>& v2) {
  decode_optional_field(entry, "config", legacy);
  decode_optional_field(entry, "config_v2", v2);
}

}  // namespace nydus::config
