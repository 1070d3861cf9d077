// Legacy RafsConfig -> ConfigV2 conversion (contract §7.6).
//
// Conversion runs on a json::Decoder so that errors inside the raw backend
// and cache `config` objects get the same serde wording, key and (when the
// source document is known) position as any other decode error. Validation
// of the converted ConfigV2 is reported with the legacy key names the user
// wrote (`fs_prefetch.threads_count`, not `rafs.prefetch.threads`), because
// the converted keys appear nowhere in their file.
#include "config/legacy.h"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "config/decode.h"
#include "nydus/config/validate.h"

namespace nydus::config {

using json::Decoder;
using json::Value;
namespace {

template <class T>
void decode_section(Decoder& d, const Value& v, const std::string& path, std::optional<T>& out) {
  T tmp{};
  decode(d, v, path, tmp);
  if (d.ok()) out = std::move(tmp);
}

PrefetchConfigV2 to_prefetch(const FsPrefetchControl& p) {
  return PrefetchConfigV2{.enable = p.enable,
                          .threads = p.threads_count,
                          .batch_size = p.merging_size,
                          .bandwidth_limit = p.bandwidth_rate,
                          .prefetch_all = p.prefetch_all,
                          .stream_prefetch = p.stream_prefetch};
}

void convert(Decoder& d, const RafsConfig& in, ConfigV2& out) {
  const FactoryConfig& dev = in.device;
  ConfigV2 c;
  c.version = 2;
  c.id = dev.id;
  BackendConfigV2 backend;
  convert_legacy_backend(d, dev.backend.type, "/device/backend/type", dev.backend.config, "/device/backend/config",
                         backend);
  CacheConfigV2 cache;
  convert_legacy_cache(d, dev.cache.type, "/device/cache/type", dev.cache.config, "/device/cache/config", cache);
  if (!d.ok()) return;
  cache.compressed = dev.cache.compressed;
  // The legacy blob-level prefetch cannot be configured; upstream converts
  // its all-zero default with prefetch_all forced on (observed, §4.1).
  cache.prefetch = PrefetchConfigV2{.prefetch_all = true};
  RafsConfigV2 rafs{.mode = in.mode,
                    .batch_size = in.amplify_io,
                    .validate = in.digest_validate,
                    .enable_xattr = in.enable_xattr,
                    .iostats_files = in.iostats_files,
                    .access_pattern = in.access_pattern,
                    .latest_read_files = in.latest_read_files,
                    .prefetch = to_prefetch(in.fs_prefetch)};
  if (rafs.prefetch.enable) cache.prefetch = rafs.prefetch;
  c.backend = std::move(backend);
  c.cache = std::move(cache);
  c.rafs = std::move(rafs);
  out = std::move(c);
}

// ConfigV2 key of a validation problem -> the legacy key it came from.
std::string legacy_key(const ConfigV2& c, const std::string& key) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kPrefetch{{
      {"enable", "enable"}, {"threads", "threads_count"}, {"batch_size", "merging_size"},
      {"bandwidth_limit", "bandwidth_rate"}}};
  // The part of `key` after `prefix` ("" or ".x"), if `key` is under it.
  auto under = [&](std::string_view prefix) -> std::optional<std::string> {
    if (key == prefix) return std::string();
    if (key.starts_with(std::string(prefix) + ".")) return key.substr(prefix.size());
    return std::nullopt;
  };
  if (key == "backend.type") return "device.backend.type";
  if (c.backend) {
    if (auto rest = under("backend." + c.backend->type)) return "device.backend.config" + *rest;
  }
  if (key == "cache.type") return "device.cache.type";
  for (std::string_view section : {"cache.filecache", "cache.fscache"}) {
    if (auto rest = under(section)) return "device.cache.config" + *rest;
  }
  for (std::string_view section : {"cache.prefetch", "rafs.prefetch"}) {
    if (auto rest = under(section)) {
      for (auto [v2, v1] : kPrefetch) {
        // Compared in place: `"." + std::string(v2)` trips g++ 12's -Wrestrict false positive at -O3.
        if (rest->starts_with('.') && std::string_view(*rest).substr(1) == v2) return fmt::format("fs_prefetch.{}", v1);
      }
      return "fs_prefetch" + *rest;
    }
  }
  if (key == "rafs.mode") return "mode";
  if (key == "rafs.batch_size") return "amplify_io";
  return key;
}

Error decode_failure(const Decoder& d) { return Error(ErrorCode::kInvalidArgument, format_decode_error(d.error())); }

}  // namespace

void convert_legacy_backend(Decoder& d, const std::string& type, const std::string& type_path,
                            const Value& config, const std::string& config_path, BackendConfigV2& out) {
  if (!d.ok()) return;
  BackendConfigV2 b;
  b.type = type;
  if (type == "localfs") {
    decode_section(d, config, config_path, b.localfs);
  } else if (type == "oss") {
    decode_section(d, config, config_path, b.oss);
  } else if (type == "s3") {
    decode_section(d, config, config_path, b.s3);
  } else if (type == "registry") {
    decode_section(d, config, config_path, b.registry);
  } else if (type == "localdisk") {
    decode_section(d, config, config_path, b.localdisk);
  } else {
    d.fail(fmt::format("unsupported backend type `{}` in a legacy configuration (expected one of localfs, oss, s3, "
                       "registry, localdisk)",
                       type),
           type_path);
  }
  if (d.ok()) out = std::move(b);
}

void convert_legacy_cache(Decoder& d, const std::string& type, const std::string& type_path, const Value& config,
                          const std::string& config_path, CacheConfigV2& out) {
  if (!d.ok()) return;
  std::optional<FileCacheConfig> filecache;
  std::optional<FsCacheConfig> fscache;
  if (type == "blobcache" || type == "filecache") {
    decode_section(d, config, config_path, filecache);
  } else if (type == "fscache") {
    decode_section(d, config, config_path, fscache);
  } else if (!type.empty()) {
    // dummycache included: upstream's legacy conversion rejects it although
    // ConfigV2 accepts it (§10 #27); kept so that both paths accept the same.
    d.fail(fmt::format("unsupported cache type `{}` in a legacy configuration (expected blobcache, filecache, "
                       "fscache or empty{})",
                       type, type == "dummycache" ? "; dummycache is accepted only in ConfigV2" : ""),
           type_path);
  }
  if (!d.ok()) return;
  out.type = type;
  out.filecache = std::move(filecache);
  out.fscache = std::move(fscache);
}

Result<ConfigV2> to_config_v2(const RafsConfig& legacy) {
  json::Document none(Value(), {});
  Decoder d(none);
  ConfigV2 out;
  convert(d, legacy, out);
  if (!d.ok()) return tl::unexpected(decode_failure(d));
  return out;
}

// A problem inside `device` (its backend and cache `config` objects are
// typed only at conversion), if there is one.
std::optional<Error> device_problem(const json::Document& doc) {
  const Value& root = doc.root();
  if (!root.is_object() || !root.contains("device")) return std::nullopt;
  Decoder d(doc);
  RafsConfig partial;
  decode(d, root.at("device"), "/device", partial.device);
  ConfigV2 ignored;
  convert(d, partial, ignored);
  if (d.ok()) return std::nullopt;
  return decode_failure(d);
}

Result<ConfigV2> from_legacy_document(const json::Document& doc) {
  Decoder d(doc);
  RafsConfig legacy;
  decode(d, doc.root(), "", legacy);
  if (!d.ok() && d.error().path.empty() && d.error().reason.starts_with("missing field")) {
    // A missing key is found at the end of the object, after everything in
    // `device`: report a problem inside it first ({"dir": 5} is the caller's
    // first mistake, not the absent `mode`), as a decoder reading in document order would.
    if (auto inner = device_problem(doc)) return tl::unexpected(*inner);
  }
  ConfigV2 out;
  convert(d, legacy, out);
  if (!d.ok()) return tl::unexpected(decode_failure(d));
  std::vector<Problem> problems;
  for (Problem& p : validate(out)) {
    p.key = legacy_key(out, p.key);
    // cache.prefetch is a copy of rafs.prefetch: report each legacy key once.
    if (std::find(problems.begin(), problems.end(), p) == problems.end()) problems.push_back(std::move(p));
  }
  if (!problems.empty()) return fail(ErrorCode::kInvalidArgument, render(problems));
  return out;
}

Result<ConfigV2> localfs_dir_config(std::string_view dir) {
  std::string d(dir);
  Value legacy = {
      {"device",
       {{"backend", {{"type", "localfs"}, {"config", {{"dir", d}, {"readahead", true}}}}},
        {"cache", {{"type", "blobcache"}, {"config", {{"compressed", false}, {"work_dir", d}}}}}}},
      {"mode", "direct"},
      {"digest_validate", false},
      {"iostats_files", false}};
  return from_legacy_document(json::Document(std::move(legacy), {}));
}

}  // namespace nydus::config
