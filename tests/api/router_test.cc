// Route table, endpoint rules and error rendering (contract §1.6–§1.8, §2).
#include "nydus/api/router.h"

#include <gtest/gtest.h>

#include "nydus/api/query.h"

namespace nydus::api {
namespace {

HttpRequest req(std::string method, std::string target, std::string body = "") {
  return HttpRequest{std::move(method), std::move(target), std::move(body), 11};
}

// The upstream message text of whatever route() rejected the request with.
std::string rejection(const HttpRequest& r) {
  auto out = route(r);
  EXPECT_FALSE(out.has_value()) << r.method << " " << r.target;
  return out ? "" : out.error().message();
}

template <class T>
T routed_as(const HttpRequest& r, ErrorWrapper wrapper) {
  auto out = route(r);
  EXPECT_TRUE(out.has_value()) << r.method << " " << r.target << ": " << (out ? "" : out.error().message());
  if (!out) return T{};
  EXPECT_EQ(out->wrapper, wrapper) << r.target;
  EXPECT_TRUE(std::holds_alternative<T>(out->request)) << r.target << " got " << request_name(out->request);
  if (!std::holds_alternative<T>(out->request)) return T{};
  return std::get<T>(out->request);
}

TEST(RouterTest, EveryRouteOfTheTable) {
  routed_as<GetDaemonInfo>(req("GET", "/api/v1/daemon"), ErrorWrapper::kDaemonInfo);
  EXPECT_EQ(routed_as<ConfigureDaemon>(req("PUT", "/api/v1/daemon", R"~({"log_level":"debug"})~"),
                                       ErrorWrapper::kConfigure).conf.log_level, "debug");
  routed_as<GetEvents>(req("GET", "/api/v1/daemon/events"), ErrorWrapper::kEvents);
  EXPECT_EQ(routed_as<ExportFsBackendInfo>(req("GET", "/api/v1/daemon/backend?mountpoint=%2Fa"),
                                           ErrorWrapper::kFsBackendInfo).mountpoint, "/a");
  routed_as<Start>(req("PUT", "/api/v1/daemon/start"), ErrorWrapper::kConfigure);
  routed_as<Exit>(req("PUT", "/api/v1/daemon/exit"), ErrorWrapper::kConfigure);
  routed_as<SendFuseFd>(req("PUT", "/api/v1/daemon/fuse/sendfd"), ErrorWrapper::kUpgrade);
  routed_as<TakeoverFuseFd>(req("PUT", "/api/v1/daemon/fuse/takeover"), ErrorWrapper::kUpgrade);
  const std::string mount_body = R"~({"source":"/b","fs_type":"rafs","config":"{}","prefetch_files":["/x"]})~";
  auto m = routed_as<Mount>(req("POST", "/api/v1/mount?mountpoint=/snap", mount_body), ErrorWrapper::kMount);
  EXPECT_EQ(m.mountpoint, "/snap");
  EXPECT_EQ(m.cmd.source, "/b");
  EXPECT_EQ(m.cmd.fs_type, "rafs");
  EXPECT_EQ(m.cmd.config, "{}");
  ASSERT_TRUE(m.cmd.prefetch_files);
  EXPECT_EQ(m.cmd.prefetch_files->at(0), "/x");
  EXPECT_EQ(routed_as<Remount>(req("PUT", "/api/v1/mount?mountpoint=/s", mount_body), ErrorWrapper::kMount).mountpoint,
            "/s");
  EXPECT_EQ(routed_as<Umount>(req("DELETE", "/api/v1/mount?mountpoint=/s"), ErrorWrapper::kMount).mountpoint, "/s");
  EXPECT_EQ(routed_as<ExportFsGlobalMetrics>(req("GET", "/api/v1/metrics?id=/a"), ErrorWrapper::kGlobalMetrics).id,
            "/a");
  EXPECT_FALSE(routed_as<ExportFsGlobalMetrics>(req("GET", "/api/v1/metrics"), ErrorWrapper::kGlobalMetrics).id);
  auto files = routed_as<ExportFsFilesMetrics>(req("GET", "/api/v1/metrics/files?latest=true"),
                                               ErrorWrapper::kFsFilesMetrics);
  EXPECT_TRUE(files.latest_read_files);
  routed_as<ExportFsAccessPatterns>(req("GET", "/api/v1/metrics/pattern"), ErrorWrapper::kPattern);
  routed_as<ExportBackendMetrics>(req("GET", "/api/v1/metrics/backend"), ErrorWrapper::kBackendMetrics);
  routed_as<ExportBlobcacheMetrics>(req("GET", "/api/v1/metrics/blobcache"), ErrorWrapper::kBlobcacheMetrics);
  routed_as<ExportFsInflightMetrics>(req("GET", "/api/v1/metrics/inflight"), ErrorWrapper::kInflightMetrics);
  EXPECT_FALSE(routed_as<ExportPrometheusMetrics>(req("GET", "/api/v1/metrics/prometheus"),
                                                 ErrorWrapper::kGlobalMetrics).files);
  EXPECT_TRUE(routed_as<ExportPrometheusMetrics>(req("GET", "/api/v1/metrics/prometheus?files=true"),
                                                ErrorWrapper::kGlobalMetrics).files);
  EXPECT_EQ(routed_as<GetConfig>(req("GET", "/api/v1/config?id=%2F"), ErrorWrapper::kConfigure).id, "/");
  auto upd = routed_as<UpdateConfig>(req("PUT", "/api/v1/config", R"~({"registry_auth":"dXNlcjpwYXNz"})~"),
                                     ErrorWrapper::kConfigure);
  EXPECT_FALSE(upd.id);
  EXPECT_EQ(upd.values.at("registry_auth"), "dXNlcjpwYXNz");
  routed_as<GetDaemonInfoV2>(req("GET", "/api/v2/daemon"), ErrorWrapper::kDaemonInfo);
  routed_as<ConfigureDaemon>(req("PUT", "/api/v2/daemon", R"~({"log_level":"info"})~"), ErrorWrapper::kConfigure);
  auto get_blob = routed_as<GetBlobObject>(req("GET", "/api/v2/blobs?domain_id=d&blob_id=b"),
                                           ErrorWrapper::kGetBlobObjects);
  EXPECT_EQ(get_blob.param.domain_id, "d");
  EXPECT_EQ(get_blob.param.blob_id, "b");
  auto create = routed_as<CreateBlobObject>(
      req("PUT", "/api/v2/blobs", R"~({"type":"bootstrap","id":"b1","domain_id":"d","config_v2":{"version":2,"backend":{"type":"localfs",)~"
          R"~("localfs":{"dir":"/b"}},"cache":{"type":"fscache","fscache":{"work_dir":"/w"}},"metadata_path":"/m"}})~"),
      ErrorWrapper::kCreateBlobObject);
  EXPECT_EQ(create.entry.blob_type, "bootstrap");
  EXPECT_EQ(create.entry.blob_id, "b1");
  EXPECT_EQ(create.entry.domain_id, "d");
  ASSERT_TRUE(create.entry.config_v2);
  EXPECT_FALSE(create.entry.config);
  EXPECT_EQ(create.config.backend.type, "localfs");  // prepared (§3.3.2)
  EXPECT_EQ(create.config.metadata_path, "/m");
  auto del = routed_as<DeleteBlobObject>(req("DELETE", "/api/v2/blobs?domain_id="), ErrorWrapper::kDeleteBlobObject);
  EXPECT_EQ(del.param.domain_id, "");
  EXPECT_EQ(routed_as<DeleteBlobFile>(req("DELETE", "/api/v2/blobs?blob_id=b"), ErrorWrapper::kDeleteBlobFile).blob_id,
            "b");
}

TEST(RouterTest, UnknownPathsAreNoRouteWithoutNormalisation) {
  for (const char* t : {"/api/v1/daemon/", "/api/v1//daemon", "/api/v1/dae%6Don", "/API/v1/daemon", "/api/v3/daemon",
                        "/api/v1/daemons/x", "/"}) {
    auto out = route(req("GET", t));
    ASSERT_FALSE(out) << t;
    EXPECT_EQ(out.error().status(), 404u) << t;
    EXPECT_EQ(out.error().body(), R"~({"code":"NoRoute","message":"NoRoute"})~") << t;
  }
}

TEST(RouterTest, AbsoluteFormAndInvalidTargets) {
  routed_as<GetDaemonInfo>(req("GET", "http://localhost/api/v1/daemon"), ErrorWrapper::kDaemonInfo);
  for (const char* t : {"", "*", "api/v1/daemon", "https://h/api/v1/daemon", "http://x", "/api/v1/daemon?a=\"b\"",
                        "/api/v1/daemon?a=<b>", "/api/v1/d\xc3\xa9mon"}) {
    auto out = route(req("GET", t));
    ASSERT_FALSE(out) << t;
    EXPECT_EQ(out.error().status(), 400u) << t;
    EXPECT_EQ(out.error().message(), "BadRequest") << t;
  }
}

TEST(RouterTest, MethodAndBodyRulesAnswerBadRequest) {
  const std::vector<HttpRequest> bad = {
      req("POST", "/api/v1/daemon"), req("GET", "/api/v1/daemon", "{}"), req("PUT", "/api/v1/daemon"),
      req("DELETE", "/api/v1/daemon"), req("PUT", "/api/v1/daemon/events"), req("GET", "/api/v1/daemon/events", "x"),
      req("GET", "/api/v1/daemon/start"), req("PUT", "/api/v1/daemon/start", "{}"), req("POST", "/api/v1/daemon/exit"),
      req("GET", "/api/v1/daemon/fuse/sendfd"), req("PUT", "/api/v1/daemon/fuse/takeover", "{}"),
      req("POST", "/api/v1/metrics"), req("GET", "/api/v1/metrics", "{}"), req("PUT", "/api/v1/metrics/files"),
      req("DELETE", "/api/v1/metrics/pattern"), req("HEAD", "/api/v1/metrics/backend"),
      req("PATCH", "/api/v1/metrics/blobcache"), req("PUT", "/api/v1/metrics/inflight"),
      req("POST", "/api/v1/config", "{}"), req("PUT", "/api/v1/config"), req("GET", "/api/v1/config", "{}"),
      req("POST", "/api/v2/daemon"), req("GET", "/api/v2/blobs"), req("PUT", "/api/v2/blobs"),
      req("DELETE", "/api/v2/blobs"), req("DELETE", "/api/v2/blobs?domain_id=d", "{}"),
      req("POST", "/api/v2/blobs?domain_id=d", "{}"), req("GET", "/api/v1/mount?mountpoint=/a"),
      req("POST", "/api/v1/mount?mountpoint=/a"), req("PUT", "/api/v1/mount?mountpoint=/a"),
      req("DELETE", "/api/v1/mount?mountpoint=/a", "{}"), req("PUT", "/api/v1/daemon/backend?mountpoint=/"),
  };
  for (const auto& r : bad) {
    auto out = route(r);
    ASSERT_FALSE(out) << r.method << " " << r.target;
    EXPECT_EQ(out.error().status(), 400u) << r.method << " " << r.target;
    EXPECT_EQ(out.error().body(), R"~({"code":"BadRequest","message":"BadRequest"})~") << r.method << " " << r.target;
  }
}

TEST(RouterTest, MountpointIsCheckedBeforeMethodOnMountOnly) {
  const std::string qs = R"~(QueryString("'mountpoint' should be specified in query string"))~";
  EXPECT_EQ(rejection(req("GET", "/api/v1/mount")), qs);
  EXPECT_EQ(rejection(req("POST", "/api/v1/mount", "{}")), qs);
  // On /daemon/backend the method is checked first.
  EXPECT_EQ(rejection(req("PUT", "/api/v1/daemon/backend")), "BadRequest");
  EXPECT_EQ(rejection(req("GET", "/api/v1/daemon/backend")), qs);
  auto out = route(req("GET", "/api/v1/daemon/backend"));
  EXPECT_EQ(out.error().body(),
            R"~({"code":"InvalidArgument","message":"QueryString(\"'mountpoint' should be specified in query string\")"})~");
  // An empty value is a present parameter.
  EXPECT_EQ(routed_as<Umount>(req("DELETE", "/api/v1/mount?mountpoint="), ErrorWrapper::kMount).mountpoint, "");
}

TEST(RouterTest, ParseBodyErrorsCarryReasonAndPosition) {
  EXPECT_EQ(rejection(req("PUT", "/api/v1/daemon", "{}")),
            R"~(ParseBody(Error("missing field `log_level`", line: 1, column: 2)))~");
  EXPECT_EQ(rejection(req("PUT", "/api/v1/daemon", "not json")),
            R"~(ParseBody(Error("expected ident", line: 1, column: 2)))~");
  EXPECT_EQ(rejection(req("PUT", "/api/v1/daemon", " ")),
            R"~(ParseBody(Error("EOF while parsing a value", line: 1, column: 1)))~");
  EXPECT_EQ(rejection(req("PUT", "/api/v1/daemon", R"~({"log_level":1})~")),
            R"~(ParseBody(Error("invalid type: integer `1`, expected a string", line: 1, column: 15)))~");
  EXPECT_EQ(rejection(req("PUT", "/api/v1/daemon", R"~({"log_level":"info","log_level":"x"})~")),
            R"~(ParseBody(Error("duplicate field `log_level`", line: 1, column: 31)))~");
  auto trailing = rejection(req("PUT", "/api/v1/daemon", R"~({"log_level":"info"}  x)~"));
  EXPECT_EQ(trailing, R"~(ParseBody(Error("trailing characters", line: 1, column: 23)))~");
  EXPECT_EQ(rejection(req("POST", "/api/v1/mount?mountpoint=/", R"~({"source":"/b","config":{}})~")),
            R"~(ParseBody(Error("invalid type: map, expected a string", line: 1, column: 26)))~");
  EXPECT_EQ(rejection(req("POST", "/api/v1/mount?mountpoint=/", R"~({"source":"/b","config":"","prefetch_files":"/a"})~")),
            R"~(ParseBody(Error("invalid type: string \"/a\", expected a sequence", line: 1, column: 48)))~");
  EXPECT_EQ(rejection(req("PUT", "/api/v1/config", R"~({"registry_auth":1})~")),
            R"~(ParseBody(Error("invalid type: integer `1`, expected a string", line: 1, column: 19)))~");
  EXPECT_EQ(rejection(req("PUT", "/api/v1/config", R"~(["a"])~")),
            R"~(ParseBody(Error("invalid type: sequence, expected a map", line: 1, column: 5)))~");
  EXPECT_EQ(rejection(req("PUT", "/api/v2/blobs", R"~({"type":"bootstrap","id":"x","domain_id":null})~")),
            R"~(ParseBody(Error("invalid type: null, expected a string", line: 1, column: 45)))~");
  auto out = route(req("PUT", "/api/v1/daemon", "{}"));
  EXPECT_EQ(out.error().status(), 400u);
  EXPECT_EQ(out.error().code(), "InvalidArgument");
}

// Issue #11 item 12: upstream would store such a mountpoint under a key with
// U+FFFD in place of the bytes, which no client could name again.
TEST(RouterTest, MountpointThatIsNotUtf8IsRefused) {
  const std::string qs = R"~(QueryString("'mountpoint' must be valid UTF-8 once percent-decoded"))~";
  EXPECT_EQ(rejection(req("POST", "/api/v1/mount?mountpoint=%2Fa%FF", "{}")), qs);
  EXPECT_EQ(rejection(req("DELETE", "/api/v1/mount?mountpoint=%2Fa%C3")), qs);
  EXPECT_EQ(rejection(req("GET", "/api/v1/daemon/backend?mountpoint=%ED%A0%80")), qs);  // a surrogate
  auto out = route(req("PUT", "/api/v1/mount?mountpoint=%FF", "{}"));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().status(), 400u);
  // Valid UTF-8 passes, U+FFFD itself included; other parameters keep upstream's lossy rule.
  EXPECT_EQ(routed_as<Umount>(req("DELETE", "/api/v1/mount?mountpoint=%2F%C3%A9%EF%BF%BD"), ErrorWrapper::kMount)
                .mountpoint,
            "/\xC3\xA9\xEF\xBF\xBD");
  EXPECT_EQ(routed_as<ExportFsGlobalMetrics>(req("GET", "/api/v1/metrics?id=%FF"), ErrorWrapper::kGlobalMetrics).id,
            "\xEF\xBF\xBD");
}

TEST(RouterTest, QueryStringRules) {
  auto q = Query::parse("mountpoint=/a+b&x=%2Fabc&bad=%zz&ff=%FF&flag&empty=&dup=1&dup=2#frag=1");
  EXPECT_EQ(q.get("mountpoint"), "/a b");
  EXPECT_EQ(q.get("x"), "/abc");
  EXPECT_EQ(q.get("bad"), "%zz");
  EXPECT_EQ(q.get("ff"), "\xEF\xBF\xBD");
  EXPECT_EQ(q.get("flag"), "");
  EXPECT_EQ(q.get("empty"), "");
  EXPECT_EQ(q.get("dup"), "1");
  EXPECT_FALSE(q.get("frag"));
  EXPECT_FALSE(q.get("missing"));
  EXPECT_EQ(Query::parse("a=%").get("a"), "%");
  EXPECT_EQ(Query::parse("a=%4").get("a"), "%4");
  EXPECT_EQ(form_decode(form_encode("/a b/é?&=")), "/a b/é?&=");
  for (const char* v : {"TRUE", "1", "yes", "", "true%20", "True"}) {
    auto f = routed_as<ExportFsFilesMetrics>(req("GET", std::string("/api/v1/metrics/files?latest=") + v),
                                             ErrorWrapper::kFsFilesMetrics);
    EXPECT_FALSE(f.latest_read_files) << v;
  }
  auto mp = routed_as<Umount>(req("DELETE", "/api/v1/mount?mountpoint=a&mountpoint=b#x"), ErrorWrapper::kMount);
  EXPECT_EQ(mp.mountpoint, "a");
}

TEST(RouterTest, ErrorStatusTranslation) {
  struct Case {
    ErrorWrapper w;
    ApiError e;
    unsigned status;
    std::string message;
    std::string code;
  };
  const std::vector<Case> cases = {
      {ErrorWrapper::kDaemonInfo, ApiError::daemon_abnormal(DaemonError::not_ready()), 503,
       "DaemonInfo(DaemonAbnormal(NotReady))", "NotReady"},
      {ErrorWrapper::kUpgrade, ApiError::daemon_abnormal(DaemonError::not_ready()), 503,
       "Upgrade(DaemonAbnormal(NotReady))", "NotReady"},
      {ErrorWrapper::kConfigure, ApiError::daemon_abnormal(DaemonError::unexpected_event("Start")), 400,
       R"~(Configure(DaemonAbnormal(UnexpectedEvent("Start"))))~", "UnexpectedEvent"},
      {ErrorWrapper::kConfigure, ApiError::payload_type(ErrorCode::kInvalidArgument), 500,
       "Configure(ResponsePayloadType)", "InvalidArgument"},
      {ErrorWrapper::kGlobalMetrics, ApiError::no_counter(), 404, "GlobalMetrics(Metrics(Stats(NoCounter)))",
       "NotFound"},
      {ErrorWrapper::kFsBackendInfo, ApiError::daemon_abnormal(DaemonError::unsupported()), 501,
       "FsBackendInfo(DaemonAbnormal(Unsupported))", "Unsupported"},
      {ErrorWrapper::kMount, ApiError::mount(DaemonError::unsupported()), 501, "Mount(MountFilesystem(Unsupported))",
       "Unsupported"},
      {ErrorWrapper::kMount, ApiError::mount(DaemonError::other(ErrorCode::kAlreadyExists, "object or filesystem already exists")),
       500, R"~(Mount(MountFilesystem(Other("object or filesystem already exists"))))~", "AlreadyExists"},
      {ErrorWrapper::kFsBackendInfo, ApiError::metrics(DaemonError::other(ErrorCode::kNotFound, "object or filesystem doesn't exist")),
       500, R"~(FsBackendInfo(Metrics(Daemon(Other("object or filesystem doesn't exist")))))~", "NotFound"},
      {ErrorWrapper::kInflightMetrics, ApiError::metrics(DaemonError::unsupported()), 500,
       "InflightMetrics(Metrics(Daemon(Unsupported)))", "Unsupported"},
      {ErrorWrapper::kGetBlobObjects, ApiError::response_recv(), 500, "GetBlobObjects(ResponseRecv(RecvError))",
       "Internal"},
      {ErrorWrapper::kDaemonInfo, ApiError::request_send(), 500, "DaemonInfo(RequestSend(SendError { .. }))",
       "Internal"},
      {ErrorWrapper::kUpgrade, ApiError::daemon_abnormal(DaemonError::upgrade_manager("MissingSupervisorPath")), 500,
       R"~(Upgrade(DaemonAbnormal(UpgradeManager("MissingSupervisorPath"))))~", "Internal"},
      {ErrorWrapper::kMount, ApiError::mount(DaemonError::other(ErrorCode::kInvalidArgument,
           "invalid argument `only 'rafs' and 'passthrough_fs' are supported, but  was specified`")),
       500, R"~(Mount(MountFilesystem(Other("invalid argument `only 'rafs' and 'passthrough_fs' are supported, but  was specified`"))))~",
       "InvalidArgument"},
  };
  for (const auto& c : cases) {
    HttpError e = HttpError::wrap(c.w, c.e);
    EXPECT_EQ(e.status(), c.status) << c.message;
    EXPECT_EQ(e.message(), c.message);
    EXPECT_EQ(e.code(), c.code) << c.message;
    auto body = nlohmann::json::parse(e.body());
    EXPECT_EQ(body["message"], c.message);
    EXPECT_EQ(body["code"], c.code);
  }
}

TEST(RouterTest, RustDebugEscaping) {
  EXPECT_EQ(rust_debug_string("a\"b\\c\nd\te\x01"), "\"a\\\"b\\\\c\\nd\\te\\u{1}\"");
  DaemonError d = DaemonError::other(ErrorCode::kInternal, "FsTypeMismatch(\"to rafs\")");
  EXPECT_EQ(d.debug(), R"~(Other("FsTypeMismatch(\"to rafs\")"))~");
}

TEST(RouterTest, RespondChecksPayloadKinds) {
  // A reply of the wrong kind is a 500 ResponsePayloadType, never a crash (§10 #1).
  auto r = respond(ErrorWrapper::kDaemonInfo, GetDaemonInfo{}, ApiResponsePayload{PayloadKind::kEvents, "{}"});
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(r.body, R"~({"code":"Internal","message":"DaemonInfo(ResponsePayloadType)"})~");
  auto ok = respond(ErrorWrapper::kDaemonInfo, GetDaemonInfo{}, ApiResponsePayload{PayloadKind::kDaemonInfo, "{\"a\":1}"});
  EXPECT_EQ(ok.status, 200u);
  EXPECT_EQ(ok.body, "{\"a\":1}");
  auto empty = respond(ErrorWrapper::kConfigure, Start{}, ApiResponsePayload::empty());
  EXPECT_EQ(empty.status, 204u);
  EXPECT_EQ(empty.body, "");
  auto idle = respond(ErrorWrapper::kInflightMetrics, ExportFsInflightMetrics{}, ApiResponsePayload::empty());
  EXPECT_EQ(idle.status, 204u);
  auto prom = respond(ErrorWrapper::kGlobalMetrics, ExportPrometheusMetrics{},
                      ApiResponsePayload{PayloadKind::kPrometheus, "x 1\n"});
  EXPECT_EQ(prom.status, 200u);
  EXPECT_EQ(prom.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(ok.content_type, "");  // JSON
  auto bad_empty = respond(ErrorWrapper::kGlobalMetrics, ExportFsGlobalMetrics{}, ApiResponsePayload::empty());
  EXPECT_EQ(bad_empty.status, 500u);
  auto err = respond(ErrorWrapper::kGlobalMetrics, ExportFsGlobalMetrics{}, tl::unexpected(ApiError::no_counter()));
  EXPECT_EQ(err.status, 404u);
  EXPECT_EQ(err.body, R"~({"code":"NotFound","message":"GlobalMetrics(Metrics(Stats(NoCounter)))"})~");
}

}  // namespace
}  // namespace nydus::api
