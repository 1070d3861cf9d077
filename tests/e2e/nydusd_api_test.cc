// End-to-end: the real nydusd binary over its real socket (contract §1, §2, §10).
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nydus/api/client.h"
#include "util/daemon_process.h"
#include "util/raw_client.h"

namespace nydus::testutil {
namespace {

using Json = nlohmann::json;

class NydusdTest : public ::testing::Test {
 protected:
  void start(std::vector<std::string> extra = {}) {
    sock_ = dir_.file("api.sock");
    std::vector<std::string> args = {"--apisock", sock_, "--log-level", "debug"};
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<DaemonProcess>(args, dir_.file("nydusd.log"));
    ASSERT_TRUE(daemon_->wait_for_socket(sock_)) << daemon_->log();
    // The file may be a stale socket from before: wait until the daemon accepts.
    eventually([&] { return static_cast<bool>(RawClient::connect(sock_)); });
    // The API answers while start-up runs (INIT until Mount and Start are
    // done), as upstream's: wait for the state the daemon settles in, as
    // nydus-snapshotter does.
    bool upgrade = std::find(extra.begin(), extra.end(), "--upgrade") != extra.end();
    std::string settled = upgrade ? "INIT" : "RUNNING";
    ASSERT_TRUE(eventually([&] {
      auto r = round_trip(sock_, "GET /api/v1/daemon HTTP/1.1\r\nHost: localhost\r\n\r\n");
      Json info = r ? Json::parse(r->body, nullptr, false) : Json();
      return info.is_object() && info.value("state", "") == settled;
    })) << daemon_->log();
  }

  // One request on a fresh connection.
  HttpReply call(const std::string& method, const std::string& target, const std::string& body = "") {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n";
    if (!body.empty()) req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    // A ceiling for a hang, not a latency check: a loaded CI machine under ASan can take seconds.
    auto r = round_trip(sock_, req, std::chrono::seconds(10));
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    return r.value_or(HttpReply{});
  }

  // Every response must be framed, say who we are, and carry JSON errors.
  void expect_well_formed(const HttpReply& r) {
    EXPECT_EQ(r.header("Server"), "Nydus API");
    if (r.status != 204) {
      EXPECT_EQ(r.header("Content-Length"), std::to_string(r.body.size()));
    } else {
      EXPECT_FALSE(r.header("Content-Length"));
      EXPECT_TRUE(r.body.empty());
    }
    if (r.status >= 400) {
      auto j = Json::parse(r.body, nullptr, false);
      ASSERT_TRUE(j.is_object()) << r.body;
      EXPECT_TRUE(j["code"].is_string()) << r.body;
      EXPECT_TRUE(j["message"].is_string()) << r.body;
    }
  }

  TempDir dir_;
  std::string sock_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(NydusdTest, EveryRouteAnswersOverTheSocket) {
  start();
  struct Row {
    std::string method, target, body;
    unsigned status;
    std::string message;  // expected error message; "" for success
  };
  const std::string mount = R"~({"source":"/b","fs_type":"passthrough_fs","config":"{}"})~";
  const std::vector<Row> rows = {
      {"GET", "/api/v1/daemon", "", 200, ""},
      {"PUT", "/api/v1/daemon", R"~({"log_level":"info"})~", 204, ""},
      {"GET", "/api/v1/daemon/events", "", 200, ""},
      {"GET", "/api/v1/daemon/backend?mountpoint=%2F", "", 501, "FsBackendInfo(DaemonAbnormal(Unsupported))"},
      {"PUT", "/api/v1/daemon/start", "", 400, "Configure(DaemonAbnormal(UnexpectedEvent(\"Start\")))"},
      {"PUT", "/api/v1/daemon/fuse/sendfd", "", 503, "Upgrade(DaemonAbnormal(NotReady))"},
      {"PUT", "/api/v1/daemon/fuse/takeover", "", 400, "Upgrade(DaemonAbnormal(UnexpectedEvent(\"Takeover\")))"},
      {"POST", "/api/v1/mount?mountpoint=%2Fsnap", mount, 501, "Mount(DaemonAbnormal(Unsupported))"},
      {"PUT", "/api/v1/mount?mountpoint=%2Fsnap", mount, 501, "Mount(DaemonAbnormal(Unsupported))"},
      {"DELETE", "/api/v1/mount?mountpoint=%2Fsnap", "", 501, "Mount(DaemonAbnormal(Unsupported))"},
      {"GET", "/api/v1/metrics", "", 404, "GlobalMetrics(Metrics(Stats(NoCounter)))"},
      {"GET", "/api/v1/metrics/files?latest=true", "", 404, "FsFilesMetrics(Metrics(Stats(NoCounter)))"},
      {"GET", "/api/v1/metrics/pattern", "", 404, "Pattern(Metrics(Stats(NoCounter)))"},
      {"GET", "/api/v1/metrics/backend?id=x", "", 404, "BackendMetrics(Metrics(Stats(NoCounter)))"},
      {"GET", "/api/v1/metrics/blobcache", "", 404, "BlobcacheMetrics(Metrics(Stats(NoCounter)))"},
      {"GET", "/api/v1/metrics/inflight", "", 501, "InflightMetrics(DaemonAbnormal(Unsupported))"},
      {"GET", "/api/v1/config", "", 200, ""},
      {"PUT", "/api/v1/config?id=%2F", R"~({"proxy_url":"http://p"})~", 204, ""},
      {"GET", "/api/v2/daemon", "", 200, ""},
      {"PUT", "/api/v2/daemon", R"~({"log_level":"debug"})~", 204, ""},
      // §10 #2: upstream aborts the whole daemon here.
      {"GET", "/api/v2/blobs?domain_id=d", "", 501, "GetBlobObjects(DaemonAbnormal(Unsupported))"},
      {"PUT", "/api/v2/blobs", R"~({"type":"bootstrap","id":"b"})~", 400, "BadRequest"},  // no configuration
      {"PUT", "/api/v2/blobs",
       R"~({"type":"bootstrap","id":"b","config_v2":{"version":2,"backend":{"type":"localfs","localfs":{"dir":"/b"}},)~"
       R"~("cache":{"type":"fscache","fscache":{"work_dir":"/w"}}}})~",
       501, "CreateBlobObject(DaemonAbnormal(Unsupported))"},
      {"DELETE", "/api/v2/blobs?domain_id=d&blob_id=b", "", 501, "DeleteBlobObject(DaemonAbnormal(Unsupported))"},
      {"DELETE", "/api/v2/blobs?blob_id=b", "", 204, ""},
      // Error table of §1.7.
      {"GET", "/api/v1/nothing", "", 404, "NoRoute"},
      {"POST", "/api/v1/daemon", "", 400, "BadRequest"},
      {"GET", "/api/v1/mount", "", 400, "QueryString(\"'mountpoint' should be specified in query string\")"},
      {"PUT", "/api/v1/daemon", "{}", 400, "ParseBody(Error(\"missing field `log_level`\", line: 1, column: 2))"},
      {"PUT", "/api/v1/daemon", "not json", 400, "ParseBody(Error(\"expected ident\", line: 1, column: 2))"},
      {"PUT", "/api/v1/daemon", R"~({"log_level":1})~", 400,
       "ParseBody(Error(\"invalid type: integer `1`, expected a string\", line: 1, column: 15))"},
      {"PUT", "/api/v1/daemon", R"~({"log_level":"info","log_level":"x"})~", 400,
       "ParseBody(Error(\"duplicate field `log_level`\", line: 1, column: 31))"},
      {"PUT", "/api/v1/daemon", R"~({"log_level":"warning"})~", 500, "Configure(ResponsePayloadType)"},
      {"POST", "/api/v1/mount?mountpoint=/", R"~({"source":"/b","config":""})~", 500,
       "Mount(MountFilesystem(Other(\"invalid argument `only 'rafs' and 'passthrough_fs' are supported, but  was "
       "specified`\")))"},
  };
  for (const auto& row : rows) {
    auto r = call(row.method, row.target, row.body);
    SCOPED_TRACE(row.method + " " + row.target);
    EXPECT_EQ(r.status, row.status) << r.body;
    expect_well_formed(r);
    if (!row.message.empty()) {
      EXPECT_EQ(Json::parse(r.body, nullptr, false)["message"], row.message);
    }
  }
  // The daemon survived everything above.
  EXPECT_EQ(call("GET", "/api/v1/daemon").status, 200u);
  // The log level really changed (debug lines appear).
  EXPECT_NE(daemon_->log().find("api request GetDaemonInfo"), std::string::npos);
}

TEST_F(NydusdTest, DaemonInfoMatchesVersionOutput) {
  start({"--id", "d1", "--supervisor", dir_.file("sup.sock")});
  auto info = Json::parse(call("GET", "/api/v1/daemon").body);
  EXPECT_EQ(info["state"], "RUNNING");
  EXPECT_EQ(info["id"], "d1");
  EXPECT_EQ(info["supervisor"], dir_.file("sup.sock"));
  EXPECT_EQ(info["backend_collection"], Json::object());
  auto [rc, out] = run_command({nydusd_path(), "--version"});
  ASSERT_EQ(rc, 0);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("Git Commit:\\s*(.+)"))) << out;
  EXPECT_EQ(m[1].str(), info["version"]["git_commit"].get<std::string>());
  EXPECT_NE(out.find("Version: \t" + info["version"]["package_ver"].get<std::string>()), std::string::npos);
  EXPECT_NE(out.find("Rustc: \t\t"), std::string::npos);
  for (const char* k : {"package_ver", "git_commit", "build_time", "profile", "rustc"}) {
    EXPECT_FALSE(info["version"][k].get<std::string>().empty()) << k;
  }
}

// nydus-snapshotter always passes --log-rotation-size 100; flags kept only
// for compatibility say so in --help instead of being silently ignored.
TEST_F(NydusdTest, CompatibilityFlagsAreAcceptedAndDocumented) {
  start({"--log-file", dir_.file("own.log"), "--log-rotation-size", "100", "--failover-policy", "flush", "--writable"});
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/daemon").body)["state"], "RUNNING");
  EXPECT_TRUE(std::filesystem::exists(dir_.file("own.log")));
  auto [rc, out] = run_command({nydusd_path(), "--help"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("MiB, keeping 5 old files (0: never)"), std::string::npos) << out;
  for (const char* flag : {"--writable"}) {
    auto at = out.find(flag);
    ASSERT_NE(at, std::string::npos) << flag;
    std::string entry = out.substr(at, out.find("\n  -", at) - at);  // up to the next option
    EXPECT_NE(entry.find("no effect"), std::string::npos) << entry;
  }
}

TEST_F(NydusdTest, UpgradeModeStartsInInit) {
  start({"--upgrade"});
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/daemon").body)["state"], "INIT");
  auto t = call("PUT", "/api/v1/daemon/fuse/takeover");
  EXPECT_EQ(t.status, 500u);
  EXPECT_EQ(Json::parse(t.body)["message"], "Upgrade(DaemonAbnormal(UpgradeManager(\"MissingSupervisorPath\")))");
  // Transactional: still INIT, and takeover is judged again from INIT.
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/daemon").body)["state"], "INIT");
  EXPECT_EQ(call("PUT", "/api/v1/daemon/start").status, 400u);
}

TEST_F(NydusdTest, ExitFlushesItsReplyThenTheProcessEnds) {
  start();
  auto c = RawClient::connect(sock_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->send("GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\n\r\nPUT /api/v1/daemon/exit HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = c->read_reply();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200u);
  auto exit_reply = c->read_reply();
  ASSERT_TRUE(exit_reply) << c->last_error();
  EXPECT_EQ(exit_reply->status, 204u);
  EXPECT_EQ(daemon_->wait_exit(), 0);
  struct stat st {};
  EXPECT_NE(lstat(sock_.c_str(), &st), 0) << "socket left behind";
}

TEST_F(NydusdTest, SigtermExitsCleanlyAndRemovesTheSocket) {
  start();
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(), 0) << daemon_->log();
  struct stat st {};
  EXPECT_NE(lstat(sock_.c_str(), &st), 0);
}

TEST_F(NydusdTest, SigintToo) {
  start();
  daemon_->signal(SIGINT);
  EXPECT_EQ(daemon_->wait_exit(), 0) << daemon_->log();
}

TEST_F(NydusdTest, SocketIsPrivateAndNeverStolen) {
  start();
  struct stat st {};
  ASSERT_EQ(lstat(sock_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // §10 #30
  // A second daemon on the same live socket refuses to start and leaves the first alone (§10 #3).
  DaemonProcess second({"--apisock", sock_}, dir_.file("second.log"));
  auto rc = second.wait_exit();
  ASSERT_TRUE(rc);
  EXPECT_NE(*rc, 0);
  EXPECT_NE(second.log().find("in use"), std::string::npos) << second.log();
  EXPECT_EQ(call("GET", "/api/v1/daemon").status, 200u);
}

TEST_F(NydusdTest, RegularFileAtSocketPathIsLeftIntact) {
  std::string path = dir_.file("not-a-socket");
  { std::ofstream(path) << "precious"; }
  DaemonProcess d({"--apisock", path}, dir_.file("d.log"));
  auto rc = d.wait_exit();
  ASSERT_TRUE(rc);
  EXPECT_NE(*rc, 0);
  std::ifstream in(path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST_F(NydusdTest, BadConfigFileFailsStartUpNamingTheKey) {
  std::string cfg = dir_.file("bad.json");
  { std::ofstream(cfg) << R"~({"version":2,"backend":{"type":"localfs","localfs":{}}})~"; }
  DaemonProcess d({"--apisock", dir_.file("c.sock"), "--config", cfg}, dir_.file("c.log"));
  auto rc = d.wait_exit();
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, 1);
  EXPECT_NE(d.log().find("backend.localfs"), std::string::npos) << d.log();
  std::string good = dir_.file("good.toml");
  { std::ofstream(good) << "version = 2\n[backend]\ntype = \"localfs\"\n[backend.localfs]\ndir = \"/b\"\n"; }
  start({"--config", good});
  EXPECT_EQ(call("GET", "/api/v1/daemon").status, 200u);
}

TEST_F(NydusdTest, StaleSocketIsReplaced) {
  std::string path = dir_.file("api.sock");
  {
    // A socket file nobody listens on, as a crashed daemon leaves behind.
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);
  }
  start();
  EXPECT_EQ(call("GET", "/api/v1/daemon").status, 200u);
}

TEST_F(NydusdTest, TransportFixes) {
  start();
  // §10 #4: a request split across writes is buffered, answered once.
  {
    auto c = RawClient::connect(sock_);
    ASSERT_TRUE(c);
    c->send("GET /api/v1/dae");
    EXPECT_TRUE(c->stays_silent(std::chrono::milliseconds(150)));
    c->send("mon HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r = c->read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200u);
    EXPECT_TRUE(c->stays_silent(std::chrono::milliseconds(100)));
  }
  // Expect: 100-continue is honoured.
  {
    auto c = RawClient::connect(sock_);
    ASSERT_TRUE(c);
    std::string body = R"~({"log_level":"info"})~";
    c->send("PUT /api/v1/daemon HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n");
    auto cont = c->read_reply();
    ASSERT_TRUE(cont);
    EXPECT_EQ(cont->status, 100u);
    c->send(body);
    auto r = c->read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 204u);
  }
  // §10 #6: chunked bodies are decoded.
  {
    auto r = round_trip(sock_,
                        "PUT /api/v1/daemon HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5\r\n{\"log\r\nf\r\n_level\":\"info\"}\r\n0\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 204u) << r->body;
  }
  // §10 #6, #5: a bad request after a good one does not drop the good one's answer; errors are JSON.
  {
    auto c = RawClient::connect(sock_);
    ASSERT_TRUE(c);
    c->send("GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\n\r\nBOGUS\r\n\r\n");
    auto good = c->read_reply();
    ASSERT_TRUE(good);
    EXPECT_EQ(good->status, 200u);
    auto bad = c->read_reply();
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400u);
    expect_well_formed(*bad);
  }
  // §10 #7: an oversized body is refused once, without reading it, and the connection closes.
  {
    auto c = RawClient::connect(sock_);
    ASSERT_TRUE(c);
    c->send("PUT /api/v1/daemon HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n");
    auto r = c->read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413u);
    expect_well_formed(*r);
    EXPECT_TRUE(c->wait_closed());
  }
  // §10 #10: header section limit.
  {
    auto c = RawClient::connect(sock_);
    ASSERT_TRUE(c);
    std::string req = "GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 2000; ++i) req += "X-Filler-" + std::to_string(i) + ": " + std::string(40, 'a') + "\r\n";
    c->send(req + "\r\n");
    auto r = c->read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 431u);
    expect_well_formed(*r);
  }
  // §10 #9: a half-closed client still gets its answer.
  {
    auto c = RawClient::connect(sock_);
    ASSERT_TRUE(c);
    c->send("GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\n\r\n");
    c->shutdown_write();
    auto r = c->read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200u);
  }
  // Connection: close is honoured; otherwise keep-alive.
  {
    auto c = RawClient::connect(sock_);
    ASSERT_TRUE(c);
    c->send("GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\n\r\n");
    auto r = c->read_reply();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("Connection"), "keep-alive");
    c->send("GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto r2 = c->read_reply();
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->header("Connection"), "close");
    EXPECT_TRUE(c->wait_closed());
  }
}

// §10 #8: a burst of simultaneous connections is served completely.
TEST_F(NydusdTest, BurstOfConnectionsAllAnswered) {
  start();
  std::vector<RawClient> clients;
  for (int i = 0; i < 200; ++i) {
    auto c = RawClient::connect(sock_);
    ASSERT_TRUE(c) << i;
    clients.push_back(std::move(*c));
  }
  for (auto& c : clients) ASSERT_TRUE(c.send("GET /api/v1/daemon/events HTTP/1.1\r\nHost: x\r\n\r\n"));
  int ok = 0;
  for (auto& c : clients) {
    auto r = c.read_reply();
    if (r && r->status == 200) ++ok;
  }
  EXPECT_EQ(ok, 200);
}

// The snapshotter's liveness probe: an idle connection is never closed.
TEST_F(NydusdTest, IdleConnectionStaysOpen) {
  start();
  auto idle = RawClient::connect(sock_);
  ASSERT_TRUE(idle);
  EXPECT_TRUE(idle->stays_silent(std::chrono::milliseconds(1500)));
  EXPECT_EQ(call("GET", "/api/v1/daemon").status, 200u);
  EXPECT_TRUE(idle->send("GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = idle->read_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
}

TEST_F(NydusdTest, RuntimeConfigIsAtomicAndRedacted) {
  start();
  EXPECT_EQ(call("PUT", "/api/v1/config?id=%2F", R"~({"registry_auth":"dXNlcjpwYXNz","proxy_url":"http://u:p@h"})~").status,
            204u);
  auto bad = call("PUT", "/api/v1/config?id=%2F", R"~({"dragonfly_scheduler_endpoint":"x","bogus":"y"})~");
  EXPECT_EQ(bad.status, 500u);
  auto got = Json::parse(call("GET", "/api/v1/config?id=%2F").body);
  EXPECT_EQ(got, Json::parse(R"~({"registry_auth":"<redacted>","proxy_url":"http://<redacted>@h"})~"));  // §10 #20, #21
  auto all = call("GET", "/api/v1/config");
  EXPECT_EQ(all.body.find("dXNlcjpwYXNz"), std::string::npos);
}

TEST_F(NydusdTest, CurlWorksAsTheReadmeShows) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "curl is not installed";
  start();
  auto [rc, out] = run_command({"/usr/bin/curl", "-sS", "--unix-socket", sock_, "http://localhost/api/v1/daemon"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(Json::parse(out)["state"], "RUNNING");
  // curl sends Expect: 100-continue for large bodies; the answer must still be single and right.
  std::string big = R"~({"log_level":"info","pad":")~" + std::string(2000, 'x') + "\"}";
  auto [rc2, out2] = run_command({"/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", sock_,
                                  "-X", "PUT", "-H", "Expect: 100-continue", "-d", big, "http://localhost/api/v1/daemon"});
  ASSERT_EQ(rc2, 0) << out2;
  EXPECT_EQ(out2, "204");
}

TEST_F(NydusdTest, NydusctlCommands) {
  start();
  const std::string ctl = nydusctl_path();
  auto [rc, out] = run_command({ctl, "--sock", sock_, "info"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("Status:"), std::string::npos) << out;
  EXPECT_NE(out.find("\"RUNNING\""), std::string::npos) << out;
  auto [rc_raw, raw] = run_command({ctl, "--sock", sock_, "--raw", "info"});
  EXPECT_EQ(rc_raw, 0);
  EXPECT_EQ(Json::parse(raw)["state"], "RUNNING");
  auto [rc_set, set_out] = run_command({ctl, "--sock", sock_, "set", "log-level", "warn"});
  EXPECT_EQ(rc_set, 0) << set_out;
  auto [rc_bad, bad_out] = run_command({ctl, "--sock", sock_, "set", "log-level", "loud"});
  EXPECT_EQ(rc_bad, 1);
  EXPECT_NE(bad_out.find("Configure(ResponsePayloadType)"), std::string::npos) << bad_out;
  auto [rc_ev, ev_out] = run_command({ctl, "--sock", sock_, "events"});
  EXPECT_EQ(rc_ev, 0) << ev_out;
  EXPECT_NE(ev_out.find("0 errors"), std::string::npos) << ev_out;
  auto [rc_m, m_out] = run_command({ctl, "--sock", sock_, "metrics"});
  EXPECT_EQ(rc_m, 1);
  EXPECT_NE(m_out.find("NoCounter"), std::string::npos) << m_out;
  auto [rc_um, um_out] = run_command({ctl, "--sock", sock_, "umount", "-m", "/x"});
  EXPECT_EQ(rc_um, 1);
  EXPECT_NE(um_out.find("Unsupported"), std::string::npos) << um_out;
  auto [rc_b, b_out] = run_command({ctl, "--sock", sock_, "backend"});
  EXPECT_EQ(rc_b, 1) << b_out;
  auto [rc_dead, dead_out] = run_command({ctl, "--sock", dir_.file("nobody.sock"), "info"});
  EXPECT_EQ(rc_dead, 2);
  EXPECT_NE(dead_out.find("cannot connect"), std::string::npos) << dead_out;
}

TEST_F(NydusdTest, TypedClientCoversTheRoutes) {
  start();
  api::ApiClient c(sock_);
  auto info = c.daemon_info();
  ASSERT_TRUE(info) << info.error().to_string();
  EXPECT_EQ(info->state, "RUNNING");
  ASSERT_TRUE(c.daemon_info_v2());
  EXPECT_FALSE(c.daemon_info_v2()->backend_collection);
  EXPECT_TRUE(c.configure_daemon({"info"}));
  auto bad = c.configure_daemon({"nope"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().status, 500u);
  EXPECT_EQ(bad.error().code, "InvalidArgument");
  EXPECT_EQ(bad.error().message, "Configure(ResponsePayloadType)");
  ASSERT_TRUE(c.events());
  EXPECT_EQ(c.fs_backend_info("/").error().status, 501u);
  EXPECT_EQ(c.start().error().code, "UnexpectedEvent");
  EXPECT_EQ(c.send_fuse_fd().error().status, 503u);
  EXPECT_EQ(c.takeover().error().status, 400u);
  EXPECT_EQ(c.mount("/a", {"/b", "rafs", "{}", std::nullopt}).error().status, 501u);
  EXPECT_EQ(c.remount("/a", {"/b", "rafs", "{}", std::nullopt}).error().status, 501u);
  EXPECT_EQ(c.umount("/a").error().status, 501u);
  EXPECT_EQ(c.global_metrics().error().code, "NotFound");
  EXPECT_EQ(c.files_metrics("/a", true).error().status, 404u);
  EXPECT_EQ(c.access_patterns().error().status, 404u);
  EXPECT_EQ(c.backend_metrics().error().status, 404u);
  EXPECT_EQ(c.blobcache_metrics().error().status, 404u);
  EXPECT_EQ(c.inflight_metrics().error().status, 501u);
  EXPECT_TRUE(c.update_config(std::string("/"), {{"proxy_url", "http://p"}}));
  EXPECT_EQ(c.get_config(std::string("/"))->at("proxy_url"), "http://p");
  EXPECT_EQ(c.get_blob_objects({"d", ""}).error().status, 501u);
  EXPECT_EQ(c.create_blob_object({"bootstrap", "b", "", std::nullopt, std::nullopt}).error().status, 400u);
  config::BlobCacheEntryConfigV2 v2;
  v2.backend.type = "localfs";
  v2.backend.localfs = config::LocalFsConfig{};
  v2.backend.localfs->dir = "/blobs";
  v2.cache.type = "fscache";
  v2.cache.fscache = config::FsCacheConfig{"/w"};
  EXPECT_EQ(c.create_blob_object({"bootstrap", "b", "", std::nullopt, v2}).error().status, 501u);
  EXPECT_EQ(c.delete_blob_object({"d", "b"}).error().status, 501u);
  EXPECT_TRUE(c.delete_blob_file("b"));
  ASSERT_TRUE(c.exit());
  EXPECT_EQ(daemon_->wait_exit(), 0);
  auto gone = c.daemon_info();
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().status, 0u);
  EXPECT_EQ(gone.error().code, "ConnectionFailed");
}

}  // namespace
}  // namespace nydus::testutil
