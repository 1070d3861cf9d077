// The route table and the endpoint rules of contract §2.
//
// One table maps an exact path to an endpoint function; an endpoint looks at
// (method, body presence, query) in upstream's order and builds the typed
// request. Unknown path -> NoRoute before anything else; everything an
// endpoint rejects is a 400.
#include "nydus/api/router.h"

#include "nydus/api/body.h"
#include "nydus/api/query.h"
#include "nydus/config/blob_entry.h"

namespace nydus::api {
namespace {

using Outcome = Result<RoutedRequest, HttpError>;

struct Ctx {
  const HttpRequest& req;
  Query query;
  bool is(std::string_view method, bool body) const { return req.method == method && req.has_body() == body; }
};

tl::unexpected<HttpError> bad_request() { return tl::unexpected(HttpError::bad_request()); }

Outcome ok(ApiRequest r, ErrorWrapper w) { return RoutedRequest{std::move(r), w}; }

tl::unexpected<HttpError> missing(std::string_view name) {
  // Appended, not `"'" + std::string(name)`: that trips g++ 12's -Wrestrict false positive at -O3.
  std::string message = "'";
  message.append(name).append("' should be specified in query string");
  return tl::unexpected(HttpError::query_string(std::move(message)));
}

// The mountpoint, or a QueryString error when it is absent or not valid UTF-8
// once decoded: upstream would store it under a key with U+FFFD in place of
// the bytes, which no client could name again.
Result<std::string, HttpError> mountpoint_of(const Query& q) {
  auto mp = q.get("mountpoint");
  if (!mp) return missing("mountpoint");
  if (q.lossy("mountpoint")) {
    return tl::unexpected(HttpError::query_string("'mountpoint' must be valid UTF-8 once percent-decoded"));
  }
  return *mp;
}

template <class T, class Parse>
Result<T, HttpError> body_of(const Ctx& c, Parse&& parse) {
  auto r = parse(c.req.body);
  if (!r) return tl::unexpected(HttpError::parse_body(r.error()));
  return std::move(*r);
}

// ---- /api/v1 and /api/v2 daemon endpoints ----

Outcome daemon_info(const Ctx& c, bool v2) {
  if (c.is("GET", false)) {
    return v2 ? ok(GetDaemonInfoV2{}, ErrorWrapper::kDaemonInfo) : ok(GetDaemonInfo{}, ErrorWrapper::kDaemonInfo);
  }
  if (c.is("PUT", true)) {
    auto conf = body_of<DaemonConf>(c, parse_daemon_conf);
    if (!conf) return tl::unexpected(conf.error());
    return ok(ConfigureDaemon{*conf}, ErrorWrapper::kConfigure);
  }
  return bad_request();
}

Outcome daemon_v1(const Ctx& c) { return daemon_info(c, false); }
Outcome daemon_v2(const Ctx& c) { return daemon_info(c, true); }

Outcome events(const Ctx& c) {
  if (!c.is("GET", false)) return bad_request();
  return ok(GetEvents{}, ErrorWrapper::kEvents);
}

Outcome fs_backend(const Ctx& c) {
  if (!c.is("GET", false)) return bad_request();
  auto mp = mountpoint_of(c.query);
  if (!mp) return tl::unexpected(mp.error());
  return ok(ExportFsBackendInfo{*mp}, ErrorWrapper::kFsBackendInfo);
}

template <class Req, ErrorWrapper W>
Outcome put_no_body(const Ctx& c) {
  if (!c.is("PUT", false)) return bad_request();
  return ok(Req{}, W);
}

// ---- /api/v1/mount: the query is checked before the method (§2.2.0) ----

Outcome mount(const Ctx& c) {
  auto mp = mountpoint_of(c.query);
  if (!mp) return tl::unexpected(mp.error());
  if (c.is("POST", true) || c.is("PUT", true)) {
    auto cmd = body_of<ApiMountCmd>(c, parse_mount_cmd);
    if (!cmd) return tl::unexpected(cmd.error());
    if (c.req.method == "POST") return ok(Mount{*mp, std::move(*cmd)}, ErrorWrapper::kMount);
    return ok(Remount{*mp, std::move(*cmd)}, ErrorWrapper::kMount);
  }
  if (c.is("DELETE", false)) return ok(Umount{*mp}, ErrorWrapper::kMount);
  return bad_request();
}

// ---- metrics ----

template <class Req, ErrorWrapper W>
Outcome metrics_by_id(const Ctx& c) {
  if (!c.is("GET", false)) return bad_request();
  return ok(Req{c.query.get("id")}, W);
}

Outcome metrics_files(const Ctx& c) {
  if (!c.is("GET", false)) return bad_request();
  auto latest = c.query.get("latest");
  return ok(ExportFsFilesMetrics{c.query.get("id"), latest && *latest == "true"}, ErrorWrapper::kFsFilesMetrics);
}

// Ours, not upstream's: a path upstream does not route, so nothing that talks
// to upstream's nydusd can mistake it for one of its routes (docs/api.md).
Outcome metrics_prometheus(const Ctx& c) {
  if (!c.is("GET", false)) return bad_request();
  auto files = c.query.get("files");
  return ok(ExportPrometheusMetrics{files && *files == "true"}, ErrorWrapper::kGlobalMetrics);
}

Outcome metrics_inflight(const Ctx& c) {
  if (!c.is("GET", false)) return bad_request();
  return ok(ExportFsInflightMetrics{}, ErrorWrapper::kInflightMetrics);
}

// ---- /api/v1/config [HEAD] ----

Outcome config(const Ctx& c) {
  if (c.is("GET", false)) return ok(GetConfig{c.query.get("id")}, ErrorWrapper::kConfigure);
  if (c.is("PUT", true)) {
    auto map = body_of<ConfigMap>(c, parse_config_map);
    if (!map) return tl::unexpected(map.error());
    return ok(UpdateConfig{c.query.get("id"), std::move(*map)}, ErrorWrapper::kConfigure);
  }
  return bad_request();
}

// ---- /api/v2/blobs ----

Outcome blobs(const Ctx& c) {
  auto domain = c.query.get("domain_id");
  auto blob = c.query.get("blob_id");
  if (c.is("GET", false)) {
    if (!domain) return bad_request();
    return ok(GetBlobObject{{*domain, blob.value_or("")}}, ErrorWrapper::kGetBlobObjects);
  }
  if (c.is("PUT", true)) {
    auto entry = body_of<BlobCacheEntry>(c, parse_blob_cache_entry);
    if (!entry) return tl::unexpected(entry.error());
    // §3.3.2: prepared before the daemon sees it; a failure is a bare 400 BadRequest
    // (the reason is kept for the log).
    auto prepared = config::prepare_blob_entry_config(entry->config_v2, entry->config);
    if (!prepared) return tl::unexpected(HttpError::bad_request(prepared.error().message()));
    return ok(CreateBlobObject{std::move(*entry), std::move(*prepared)}, ErrorWrapper::kCreateBlobObject);
  }
  if (c.is("DELETE", false)) {
    if (domain) return ok(DeleteBlobObject{{*domain, blob.value_or("")}}, ErrorWrapper::kDeleteBlobObject);
    if (blob) return ok(DeleteBlobFile{*blob}, ErrorWrapper::kDeleteBlobFile);
  }
  return bad_request();
}

struct Route {
  std::string_view path;
  Outcome (*endpoint)(const Ctx&);
};

constexpr Route kRoutes[] = {
    {"/api/v1/daemon", daemon_v1},
    {"/api/v1/daemon/events", events},
    {"/api/v1/daemon/backend", fs_backend},
    {"/api/v1/daemon/start", put_no_body<Start, ErrorWrapper::kConfigure>},
    {"/api/v1/daemon/exit", put_no_body<Exit, ErrorWrapper::kConfigure>},
    {"/api/v1/daemon/fuse/sendfd", put_no_body<SendFuseFd, ErrorWrapper::kUpgrade>},
    {"/api/v1/daemon/fuse/takeover", put_no_body<TakeoverFuseFd, ErrorWrapper::kUpgrade>},
    {"/api/v1/mount", mount},
    {"/api/v1/metrics", metrics_by_id<ExportFsGlobalMetrics, ErrorWrapper::kGlobalMetrics>},
    {"/api/v1/metrics/files", metrics_files},
    {"/api/v1/metrics/pattern", metrics_by_id<ExportFsAccessPatterns, ErrorWrapper::kPattern>},
    {"/api/v1/metrics/backend", metrics_by_id<ExportBackendMetrics, ErrorWrapper::kBackendMetrics>},
    {"/api/v1/metrics/blobcache", metrics_by_id<ExportBlobcacheMetrics, ErrorWrapper::kBlobcacheMetrics>},
    {"/api/v1/metrics/inflight", metrics_inflight},
    {"/api/v1/metrics/prometheus", metrics_prometheus},
    {"/api/v1/config", config},
    {"/api/v2/daemon", daemon_v2},
    {"/api/v2/blobs", blobs},
};

// Bytes the URI parser upstream refuses anywhere in a request-target.
bool valid_uri_byte(unsigned char c) {
  if (c <= 0x20 || c >= 0x7f) return false;
  return c != '"' && c != '<' && c != '>' && c != '\\' && c != '^' && c != '`' && c != '{' && c != '}';
}

}  // namespace

std::optional<std::string_view> request_path(std::string_view target, std::string_view* query) {
  if (target.starts_with("http://")) {
    auto slash = target.find('/', 7);
    target = slash == std::string_view::npos ? std::string_view() : target.substr(slash);
  } else if (!target.starts_with("/")) {
    target = {};
  }
  if (target.empty()) return std::nullopt;
  for (unsigned char c : target) {
    if (!valid_uri_byte(c)) return std::nullopt;
  }
  auto end = target.find_first_of("?#");
  std::string_view path = target.substr(0, end);
  if (query != nullptr) {
    *query = {};
    if (end != std::string_view::npos && target[end] == '?') *query = target.substr(end + 1);
  }
  return path;
}

Result<RoutedRequest, HttpError> route(const HttpRequest& req) {
  std::string_view query;
  auto path = request_path(req.target, &query);
  if (!path) return tl::unexpected(HttpError::bad_request("invalid request URI"));
  for (const Route& r : kRoutes) {
    if (r.path == *path) {
      Ctx ctx{req, Query::parse(query)};
      return r.endpoint(ctx);
    }
  }
  return tl::unexpected(HttpError::no_route());
}

HttpResponse error_response(const HttpError& e) { return HttpResponse{e.status(), e.body(), false, {}, {}}; }

HttpResponse respond(ErrorWrapper wrapper, const ApiRequest& request, const ApiResult& result) {
  if (!result) return error_response(HttpError::wrap(wrapper, result.error()));
  if (!payload_fits(request, result->kind)) {
    return error_response(HttpError::wrap(wrapper, ApiError::payload_type()));
  }
  if (result->kind == PayloadKind::kEmpty) return HttpResponse{204, "", false, {}, {}};
  std::string type = result->kind == PayloadKind::kPrometheus ? "text/plain; version=0.0.4; charset=utf-8" : "";
  return HttpResponse{200, result->json, false, {}, std::move(type)};
}

}  // namespace nydus::api
