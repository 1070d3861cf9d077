// Request bodies <-> JSON, through the strict reader of nydus/json.h.
#include "nydus/api/body.h"

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
    // Both configuration objects are optional and may be null; their contents
    // are decoded by the config library when the entry is prepared.
    for (auto [key, out] : {std::pair{"config", &e.config}, std::pair{"config_v2", &e.config_v2}}) {
      const json::Value* v = o.find(key);
      if (v == nullptr || v->is_null()) continue;
      if (!v->is_object()) {
        o.decoder().fail_type(*v, o.child_path(key), key == std::string_view("config") ? "struct BlobCacheEntryConfig"
                                                                                       : "struct BlobCacheEntryConfigV2");
        return;
      }
      *out = *v;
    }
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
  j["config"] = e.config ? nlohmann::ordered_json::parse(e.config->dump()) : nlohmann::ordered_json();
  j["config_v2"] = e.config_v2 ? nlohmann::ordered_json::parse(e.config_v2->dump()) : nlohmann::ordered_json();
  j["domain_id"] = e.domain_id;
  return dump(j);
}

std::string to_json(const ConfigMap& m) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return dump(j);
}

}  // namespace nydus::api
