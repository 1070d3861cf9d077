// Request bodies <-> JSON, through the strict reader of nydus/json.h.
#include "nydus/api/body.h"

#include "nydus/config/serialize.h"

namespace nydus::api {
namespace {

template <class T, class Fn>
tl::expected<T, json::Error> decode_root(std::string_view body, std::string_view type_name, Fn&& fields) {
  auto doc = json::Document::parse(body);
  if (!doc) return tl::unexpected(doc.error());
  json::Decoder d(*doc);
  T out{};
  if (auto obj = d.root_object(type_name)) fields(*obj, out);
  if (!d.ok()) return tl::unexpected(d.error());
  return out;
}

// The legacy per-blob object as nydus-snapshotter writes it (clients only).
nlohmann::ordered_json legacy_entry_json(const config::BlobCacheEntryConfig& c) {
  nlohmann::ordered_json j;
  j["id"] = c.id;
  j["backend_type"] = c.backend_type;
  j["backend_config"] = nlohmann::ordered_json::parse(c.backend_config.dump());
  j["cache_type"] = c.cache_type;
  j["cache_config"] = nlohmann::ordered_json::parse(c.cache_config.dump());
  j["prefetch_config"] = {{"enable", c.prefetch_config.enable},
                          {"threads_count", c.prefetch_config.threads_count},
                          {"merging_size", c.prefetch_config.merging_size},
                          {"bandwidth_rate", c.prefetch_config.bandwidth_rate}};
  j["metadata_path"] = c.metadata_path ? nlohmann::ordered_json(*c.metadata_path) : nlohmann::ordered_json();
  return j;
}

std::string dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

tl::expected<DaemonConf, json::Error> parse_daemon_conf(std::string_view body) {
  return decode_root<DaemonConf>(body, "struct DaemonConf", [](json::ObjectReader& o, DaemonConf& c) {
    o.required("log_level", c.log_level);
  });
}

tl::expected<ApiMountCmd, json::Error> parse_mount_cmd(std::string_view body) {
  return decode_root<ApiMountCmd>(body, "struct ApiMountCmd", [](json::ObjectReader& o, ApiMountCmd& c) {
    o.required("source", c.source);
    o.optional("fs_type", c.fs_type);
    o.required("config", c.config);
    o.optional("prefetch_files", c.prefetch_files);
  });
}

tl::expected<BlobCacheEntry, json::Error> parse_blob_cache_entry(std::string_view body) {
  return decode_root<BlobCacheEntry>(body, "struct BlobCacheEntry", [](json::ObjectReader& o, BlobCacheEntry& e) {
    o.required("type", e.blob_type);
    o.required("id", e.blob_id);
    // Decoded here, with the body's positions, so errors inside them are ParseBody.
    config::decode_entry_configs(o, e.config, e.config_v2);
    o.optional("domain_id", e.domain_id);
  });
}

tl::expected<ConfigMap, json::Error> parse_config_map(std::string_view body) {
  auto doc = json::Document::parse(body);
  if (!doc) return tl::unexpected(doc.error());
  json::Decoder d(*doc);
  ConfigMap out;
  d.read(doc->root(), "", out);
  if (!d.ok()) return tl::unexpected(d.error());
  return out;
}

std::string to_json(const DaemonConf& c) { return dump({{"log_level", c.log_level}}); }

std::string to_json(const ApiMountCmd& c) {
  nlohmann::ordered_json j;
  j["source"] = c.source;
  j["fs_type"] = c.fs_type;
  j["config"] = c.config;
  j["prefetch_files"] = c.prefetch_files ? nlohmann::ordered_json(*c.prefetch_files) : nlohmann::ordered_json();
  return dump(j);
}

std::string to_json(const BlobCacheEntry& e) {
  nlohmann::ordered_json j;
  j["type"] = e.blob_type;
  j["id"] = e.blob_id;
  j["config"] = e.config ? legacy_entry_json(*e.config) : nlohmann::ordered_json();
  j["config_v2"] = e.config_v2 ? config::to_json(*e.config_v2, config::Secrets::kKeep) : nlohmann::ordered_json();
  j["domain_id"] = e.domain_id;
  return dump(j);
}

std::string to_json(const ConfigMap& m) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return dump(j);
}

}  // namespace nydus::api
