#include "nydus/api/payloads.h"

namespace nydus::api {

std::string dump_compact(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

nlohmann::ordered_json opt(const std::optional<std::string>& s) {
  return s ? nlohmann::ordered_json(*s) : nlohmann::ordered_json();
}

}  // namespace

std::string to_json(const DaemonInfo& info) {
  nlohmann::ordered_json v;
  v["package_ver"] = info.version.package_ver;
  v["git_commit"] = info.version.git_commit;
  v["build_time"] = info.version.build_time;
  v["profile"] = info.version.profile;
  v["rustc"] = info.version.rustc;
  nlohmann::ordered_json j;
  j["version"] = std::move(v);
  j["id"] = opt(info.id);
  j["supervisor"] = opt(info.supervisor);
  j["state"] = info.state;
  j["backend_collection"] = info.backend_collection ? *info.backend_collection : nlohmann::ordered_json();
  return dump_compact(j);
}

tl::expected<DaemonInfo, json::Error> parse_daemon_info(std::string_view text) {
  auto doc = json::Document::parse(text);
  if (!doc) return tl::unexpected(doc.error());
  json::Decoder d(*doc);
  DaemonInfo info;
  if (auto o = d.root_object("struct DaemonInfo")) {
    if (auto v = o->object("version", "struct BuildInfo", true)) {
      v->required("package_ver", info.version.package_ver);
      v->required("git_commit", info.version.git_commit);
      v->optional("build_time", info.version.build_time);
      v->optional("profile", info.version.profile);
      v->optional("rustc", info.version.rustc);
    }
    o->optional("id", info.id);
    o->optional("supervisor", info.supervisor);
    o->required("state", info.state);
    if (const json::Value* bc = o->find("backend_collection"); bc != nullptr && !bc->is_null()) {
      if (!bc->is_object()) {
        d.fail_type(*bc, o->child_path("backend_collection"), "a map");
      } else {
        info.backend_collection = nlohmann::ordered_json::parse(bc->dump());
      }
    }
  }
  if (!d.ok()) return tl::unexpected(d.error());
  return info;
}

std::string to_json(const EventsInfo& e) {
  nlohmann::ordered_json j;
  j["max_errors"] = e.max_errors;
  j["total_errors"] = e.total_errors;
  j["max_size"] = e.max_size;
  j["total_size"] = e.total_size;
  j["errors"] = e.errors;
  return dump_compact(j);
}

tl::expected<EventsInfo, json::Error> parse_events(std::string_view text) {
  auto doc = json::Document::parse(text);
  if (!doc) return tl::unexpected(doc.error());
  json::Decoder d(*doc);
  EventsInfo e;
  if (auto o = d.root_object("struct ErrorHolder")) {
    o->required("max_errors", e.max_errors);
    o->required("total_errors", e.total_errors);
    o->required("max_size", e.max_size);
    o->required("total_size", e.total_size);
    o->required("errors", e.errors);
  }
  if (!d.ok()) return tl::unexpected(d.error());
  return e;
}

}  // namespace nydus::api
