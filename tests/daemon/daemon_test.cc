// The daemon's answers to every request, through the same conversion the server uses.
#include "nydus/daemon/daemon.h"

#include <future>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "nydus/api/router.h"

namespace nydus::daemon {
namespace {

struct Answer {
  api::HttpResponse http;
  bool has_on_sent = false;
};

Answer call(Daemon& d, const api::HttpRequest& req) {
  auto routed = api::route(req);
  if (!routed) return {api::error_response(routed.error()), false};
  std::promise<Answer> p;
  auto f = p.get_future();
  auto wrapper = routed->wrapper;
  auto copy = routed->request;
  d.handle(routed->request, [&, wrapper, copy](api::ApiResult r, std::function<void()> on_sent) {
    p.set_value(Answer{api::respond(wrapper, copy, r), static_cast<bool>(on_sent)});
  });
  return f.get();
}

api::HttpRequest req(std::string m, std::string t, std::string b = "") { return {std::move(m), std::move(t), std::move(b), 11}; }

DaemonOptions opts(bool upgrade = false, bool supervisor = false) {
  DaemonOptions o;
  o.upgrade = upgrade;
  if (supervisor) {
    o.id = "d1";
    o.supervisor = "/run/sup.sock";
  }
  o.build = {"v0.1.0", "0123456789abcdef0123456789abcdef01234567", "2026-11-25T00:00:00Z", "release", "GNU 12.2.0"};
  return o;
}

TEST(DaemonTest, InfoV1AndV2) {
  Daemon d(opts(false, true));
  ASSERT_TRUE(d.start());
  auto a = call(d, req("GET", "/api/v1/daemon"));
  EXPECT_EQ(a.http.status, 200u);
  EXPECT_EQ(a.http.body,
            R"~({"version":{"package_ver":"v0.1.0","git_commit":"0123456789abcdef0123456789abcdef01234567",)~"
            R"~("build_time":"2026-11-25T00:00:00Z","profile":"release","rustc":"GNU 12.2.0"},"id":"d1",)~"
            R"~("supervisor":"/run/sup.sock","state":"RUNNING","backend_collection":{}})~");
  auto b = call(d, req("GET", "/api/v2/daemon"));
  EXPECT_EQ(nlohmann::json::parse(b.http.body)["backend_collection"], nullptr);
  Daemon plain(opts());
  auto c = nlohmann::json::parse(call(plain, req("GET", "/api/v1/daemon")).http.body);
  EXPECT_EQ(c["id"], nullptr);
  EXPECT_EQ(c["supervisor"], nullptr);
  EXPECT_EQ(c["state"], "INIT");  // start() not called
}

TEST(DaemonTest, LogLevelReallyChanges) {
  Daemon d(opts());
  spdlog::set_level(spdlog::level::info);
  EXPECT_EQ(call(d, req("PUT", "/api/v1/daemon", R"~({"log_level":"DEBUG"})~")).http.status, 204u);
  EXPECT_EQ(spdlog::get_level(), spdlog::level::debug);
  EXPECT_EQ(call(d, req("PUT", "/api/v2/daemon", R"~({"log_level":"off"})~")).http.status, 204u);
  EXPECT_EQ(spdlog::get_level(), spdlog::level::off);
  for (const char* bad : {"warning", "", " info"}) {
    auto a = call(d, req("PUT", "/api/v1/daemon", std::string(R"~({"log_level":")~") + bad + "\"}"));
    EXPECT_EQ(a.http.status, 500u) << bad;
    EXPECT_EQ(a.http.body, R"~({"code":"InvalidArgument","message":"Configure(ResponsePayloadType)"})~");
  }
  EXPECT_EQ(spdlog::get_level(), spdlog::level::off);
  spdlog::set_level(spdlog::level::info);
}

TEST(DaemonTest, StartAndTakeoverFollowTheStateMachine) {
  Daemon running(opts());
  ASSERT_TRUE(running.start());
  EXPECT_EQ(running.state(), DaemonState::kRunning);
  auto a = call(running, req("PUT", "/api/v1/daemon/start"));
  EXPECT_EQ(a.http.status, 400u);
  EXPECT_EQ(a.http.body, R"~({"code":"UnexpectedEvent","message":"Configure(DaemonAbnormal(UnexpectedEvent(\"Start\")))"})~");
  auto t = call(running, req("PUT", "/api/v1/daemon/fuse/takeover"));
  EXPECT_EQ(t.http.status, 400u);
  EXPECT_EQ(nlohmann::json::parse(t.http.body)["message"], "Upgrade(DaemonAbnormal(UnexpectedEvent(\"Takeover\")))");

  Daemon upgrading(opts(true));
  ASSERT_TRUE(upgrading.start());
  EXPECT_EQ(upgrading.state(), DaemonState::kInit);
  auto s = call(upgrading, req("PUT", "/api/v1/daemon/start"));
  EXPECT_EQ(s.http.status, 400u);
  auto no_sup = call(upgrading, req("PUT", "/api/v1/daemon/fuse/takeover"));
  EXPECT_EQ(no_sup.http.status, 500u);
  EXPECT_EQ(nlohmann::json::parse(no_sup.http.body)["message"],
            "Upgrade(DaemonAbnormal(UpgradeManager(\"MissingSupervisorPath\")))");
  EXPECT_EQ(upgrading.state(), DaemonState::kInit);  // transactional: still INIT

  Daemon supervised(opts(true, true));
  ASSERT_TRUE(supervised.start());
  auto unsup = call(supervised, req("PUT", "/api/v1/daemon/fuse/takeover"));
  EXPECT_EQ(unsup.http.status, 501u);
  EXPECT_EQ(supervised.state(), DaemonState::kInit);
  auto sendfd = call(supervised, req("PUT", "/api/v1/daemon/fuse/sendfd"));
  EXPECT_EQ(sendfd.http.status, 503u);
  EXPECT_EQ(nlohmann::json::parse(sendfd.http.body)["message"], "Upgrade(DaemonAbnormal(NotReady))");
}

TEST(DaemonTest, ExitFromEachState) {
  int exits = 0;
  Daemon running(opts());
  running.set_exit_handler([&] { ++exits; });
  ASSERT_TRUE(running.start());
  auto a = call(running, req("PUT", "/api/v1/daemon/exit"));
  EXPECT_EQ(a.http.status, 204u);
  EXPECT_TRUE(a.has_on_sent);  // the process exits only after the 204 is written
  EXPECT_EQ(running.state(), DaemonState::kStopped);
  EXPECT_EQ(call(running, req("PUT", "/api/v1/daemon/exit")).http.status, 204u);  // STOPPED: nothing to do

  Daemon init(opts(true));
  ASSERT_TRUE(init.start());
  EXPECT_EQ(call(init, req("PUT", "/api/v1/daemon/exit")).http.status, 204u);
  EXPECT_EQ(init.state(), DaemonState::kStopped);
}

TEST(DaemonTest, ShutdownFromRunning) {
  Daemon d(opts());
  ASSERT_TRUE(d.start());
  d.shutdown();
  EXPECT_EQ(d.state(), DaemonState::kStopped);
  d.shutdown();  // idempotent
  EXPECT_EQ(d.state(), DaemonState::kStopped);
}

TEST(DaemonTest, NoFilesystemServiceAnswers) {
  Daemon d(opts());
  ASSERT_TRUE(d.start());
  struct Case {
    api::HttpRequest r;
    unsigned status;
    std::string message;
  };
  const std::string mount = R"~({"source":"/b","fs_type":"rafs","config":"{}"})~";
  const Case cases[] = {
      {req("GET", "/api/v1/daemon/backend?mountpoint=/"), 501, "FsBackendInfo(DaemonAbnormal(Unsupported))"},
      {req("POST", "/api/v1/mount?mountpoint=/", mount), 501, "Mount(DaemonAbnormal(Unsupported))"},
      {req("PUT", "/api/v1/mount?mountpoint=/", mount), 501, "Mount(DaemonAbnormal(Unsupported))"},
      {req("DELETE", "/api/v1/mount?mountpoint=/"), 501, "Mount(DaemonAbnormal(Unsupported))"},
      {req("POST", "/api/v1/mount?mountpoint=/", R"~({"source":"/b","config":"{}"})~"), 500,
       "Mount(MountFilesystem(Other(\"invalid argument `only 'rafs' and 'passthrough_fs' are supported, but  was "
       "specified`\")))"},
      {req("POST", "/api/v1/mount?mountpoint=/", R"~({"source":"/b","fs_type":"RAFS","config":"{}"})~"), 500,
       "Mount(MountFilesystem(Other(\"invalid argument `only 'rafs' and 'passthrough_fs' are supported, but RAFS was "
       "specified`\")))"},
      {req("GET", "/api/v1/metrics"), 404, "GlobalMetrics(Metrics(Stats(NoCounter)))"},
      {req("GET", "/api/v1/metrics?id=/"), 404, "GlobalMetrics(Metrics(Stats(NoCounter)))"},
      {req("GET", "/api/v1/metrics/files"), 404, "FsFilesMetrics(Metrics(Stats(NoCounter)))"},
      {req("GET", "/api/v1/metrics/pattern"), 404, "Pattern(Metrics(Stats(NoCounter)))"},
      {req("GET", "/api/v1/metrics/backend"), 404, "BackendMetrics(Metrics(Stats(NoCounter)))"},
      {req("GET", "/api/v1/metrics/blobcache"), 404, "BlobcacheMetrics(Metrics(Stats(NoCounter)))"},
      {req("GET", "/api/v1/metrics/inflight"), 501, "InflightMetrics(DaemonAbnormal(Unsupported))"},
      {req("GET", "/api/v2/blobs?domain_id=d"), 501, "GetBlobObjects(DaemonAbnormal(Unsupported))"},
      {req("PUT", "/api/v2/blobs",
           R"~({"type":"bootstrap","id":"b","config_v2":{"version":2,"backend":{"type":"localfs","localfs":)~"
           R"~({"dir":"/b"}},"cache":{"type":"fscache","fscache":{"work_dir":"/w"}}}})~"),
       501, "CreateBlobObject(DaemonAbnormal(Unsupported))"},
      {req("DELETE", "/api/v2/blobs?domain_id=d"), 501, "DeleteBlobObject(DaemonAbnormal(Unsupported))"},
  };
  for (const auto& c : cases) {
    auto a = call(d, c.r);
    EXPECT_EQ(a.http.status, c.status) << c.r.method << " " << c.r.target;
    auto j = nlohmann::json::parse(a.http.body);
    EXPECT_EQ(j["message"], c.message) << c.r.method << " " << c.r.target;
  }
  EXPECT_EQ(call(d, req("DELETE", "/api/v2/blobs?blob_id=b")).http.status, 204u);
}

TEST(DaemonTest, RuntimeConfigThroughApi) {
  Daemon d(opts());
  EXPECT_EQ(call(d, req("GET", "/api/v1/config")).http.body, "{}");
  EXPECT_EQ(call(d, req("PUT", "/api/v1/config?id=%2F", R"~({"registry_auth":"dXNlcjpwYXNz"})~")).http.status, 204u);
  EXPECT_EQ(call(d, req("GET", "/api/v1/config?id=/")).http.body, R"~({"registry_auth":"<redacted>"})~");
  auto bad = call(d, req("PUT", "/api/v1/config", R"~({"proxy_url":"http://p","nope":"x"})~"));
  EXPECT_EQ(bad.http.status, 500u);
  EXPECT_EQ(bad.http.body, R"~({"code":"InvalidArgument","message":"Configure(ResponsePayloadType)"})~");
  EXPECT_EQ(call(d, req("GET", "/api/v1/config")).http.body, R"~({"/:registry_auth":"<redacted>"})~");
  EXPECT_EQ(d.runtime_config().lookup("/", "registry_auth"), "dXNlcjpwYXNz");
}

TEST(DaemonTest, EventsReportTheRing) {
  Daemon d(opts());
  d.events().push("backend read failed");
  auto j = nlohmann::json::parse(call(d, req("GET", "/api/v1/daemon/events")).http.body);
  EXPECT_EQ(j["total_errors"], 1);
  EXPECT_TRUE(j["errors"][0].get<std::string>().ends_with(" - backend read failed"));
}

}  // namespace
}  // namespace nydus::daemon
