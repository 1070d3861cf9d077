// The mount path of the API: request checks, configuration parsing and error
// mapping in front of a filesystem service (a fake one here).
#include <future>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nydus/api/router.h"
#include "nydus/daemon/daemon.h"

namespace nydus::daemon {
namespace {

class FakeFs : public FsService {
 public:
  Result<void> mount(const MountRequest& req) override {
    if (stuck.valid()) {
      entered.set_value();
      stuck.wait();
    }
    last = req;
    if (fail_with) return tl::unexpected(*fail_with);
    mounted[req.mountpoint] = req;
    ++generation;
    return {};
  }
  Result<void> remount(const MountRequest& req) override {
    last = req;
    mounted[req.mountpoint] = req;
    ++generation;
    return {};
  }
  Result<void> umount(const std::string& mp) override {
    // The service's own words; the daemon answers with the contract's (fs_service.h).
    if (!mounted.erase(mp)) return fail(ErrorCode::kNotFound, "nothing is mounted at " + mp);
    ++generation;
    return {};
  }
  bool is_mounted(const std::string& mp) const override { return mounted.count(mp) != 0; }
  std::uint64_t mounts_generation() const override { return generation; }
  std::vector<MountInfo> mounts() const override {
    std::vector<MountInfo> out;
    for (const auto& [mp, req] : mounted) {
      out.push_back({mp, req.type, "2026-11-25 08:31:35.5 +00:00:00",
                     req.type == FsType::kRafs ? std::optional<config::ConfigV2>(req.config) : std::nullopt});
    }
    return out;
  }
  Result<std::string> global_metrics(const std::optional<std::string>& id) override {
    if (id && !mounted.count(*id)) return fail(ErrorCode::kNotFound, "no counter");
    return std::string(R"~({"id":"/"})~");
  }
  Result<std::string> files_metrics(const std::optional<std::string>&, bool latest) override {
    return std::string(latest ? "[[1,2]]" : "{}");
  }
  Result<std::string> access_patterns(const std::optional<std::string>&) override { return std::string("[]"); }
  Result<std::string> backend_metrics(const std::optional<std::string>&) override {
    return fail(ErrorCode::kNotFound, "none");
  }
  Result<std::string> blobcache_metrics(const std::optional<std::string>&) override {
    return fail(ErrorCode::kNotFound, "none");
  }
  std::optional<std::string> inflight_metrics() override { return inflight; }
  Result<std::string> backend_info(const std::string& mp) override {
    if (!mounted.count(mp)) return fail(ErrorCode::kNotFound, "nothing is mounted at " + mp);
    return fail(ErrorCode::kInvalidArgument, mp + " is a passthrough instance, not RAFS");
  }

  std::map<std::string, MountRequest> mounted;
  std::optional<MountRequest> last;
  std::optional<Error> fail_with;
  std::optional<std::string> inflight;
  std::uint64_t generation = 0;
  // When valid, mount() signals `entered` and waits for it (a mount stuck in the kernel).
  std::shared_future<void> stuck;
  std::promise<void> entered;
};

struct Reply {
  unsigned status;
  std::string body;
  std::string message() const { return nlohmann::json::parse(body)["message"]; }
  std::string code() const { return nlohmann::json::parse(body)["code"]; }
};

class MountTest : public ::testing::Test {
 protected:
  Reply call(const std::string& method, const std::string& target, const std::string& body = "") {
    auto routed = api::route({method, target, body, 11});
    if (!routed) {
      auto r = api::error_response(routed.error());
      return {r.status, r.body};
    }
    std::promise<Reply> p;
    auto f = p.get_future();
    auto w = routed->wrapper;
    auto copy = routed->request;
    daemon_.handle(routed->request, [&, w, copy](api::ApiResult r, std::function<void()>) {
      auto http = api::respond(w, copy, r);
      p.set_value({http.status, http.body});
    });
    return f.get();
  }
  static std::string mount_body(const std::string& fs_type, const std::string& config_text,
                                const std::string& extra = "") {
    nlohmann::json j{{"source", "/images/boot"}, {"fs_type", fs_type}, {"config", config_text}};
    std::string s = j.dump();
    if (!extra.empty()) s.insert(s.size() - 1, "," + extra);
    return s;
  }

  std::shared_ptr<FakeFs> fs_ = std::make_shared<FakeFs>();
  Daemon daemon_{DaemonOptions{}, fs_};
};

// The legacy configuration nydus-snapshotter sends (contract §3.2).
const char* kSnapshotterConfig =
    R"~({"device":{"backend":{"type":"localfs","config":{"dir":"/var/lib/blobs"}},)~"
    R"~("cache":{"type":"blobcache","config":{"work_dir":"/var/lib/cache"}}},"mode":"direct","digest_validate":false,)~"
    R"~("iostats_files":true,"enable_xattr":true,"fs_prefetch":{"enable":true,"threads_count":4}})~";

TEST_F(MountTest, SnapshotterMountReachesTheServiceWithConvertedConfig) {
  auto r = call("POST", "/api/v1/mount?mountpoint=%2Fsnap-1", mount_body("rafs", kSnapshotterConfig));
  ASSERT_EQ(r.status, 204u) << r.body;
  ASSERT_TRUE(fs_->last);
  EXPECT_EQ(fs_->last->mountpoint, "/snap-1");
  EXPECT_EQ(fs_->last->type, FsType::kRafs);
  EXPECT_EQ(fs_->last->source, "/images/boot");
  EXPECT_EQ(fs_->last->config.version, 2u);
  EXPECT_EQ(fs_->last->config.backend->type, "localfs");
  ASSERT_TRUE(fs_->last->config.rafs);
  EXPECT_TRUE(fs_->last->config.rafs->iostats_files);
  EXPECT_TRUE(fs_->last->config.rafs->prefetch.enable);
  // Shown in daemon info, in the serialised form, without secrets.
  auto info = nlohmann::json::parse(call("GET", "/api/v1/daemon").body);
  auto entry = info["backend_collection"]["/snap-1"];
  EXPECT_EQ(entry["backend_type"], "Rafs");
  EXPECT_EQ(entry["mountpoint"], "/snap-1");
  EXPECT_EQ(entry["mounted_time"], "2026-11-25 08:31:35.5 +00:00:00");
  EXPECT_EQ(entry["config"]["backend"]["localfs"]["dir"], "/var/lib/blobs");
  EXPECT_EQ(entry["config"]["cache"]["filecache"]["work_dir"], "/var/lib/cache");
}

// Daemon info is cached between requests; every mount change must show.
TEST_F(MountTest, DaemonInfoFollowsMountsAndState) {
  auto collection = [&] { return nlohmann::json::parse(call("GET", "/api/v1/daemon").body)["backend_collection"]; };
  auto state = [&] { return nlohmann::json::parse(call("GET", "/api/v1/daemon").body)["state"]; };
  EXPECT_TRUE(collection().empty());
  EXPECT_EQ(state(), "INIT");
  ASSERT_EQ(call("POST", "/api/v1/mount?mountpoint=/a", mount_body("passthrough_fs", "")).status, 204u);
  EXPECT_EQ(collection().size(), 1u);
  EXPECT_EQ(collection()["/a"]["backend_type"], "PassthroughFs");
  ASSERT_EQ(call("PUT", "/api/v1/mount?mountpoint=/a", mount_body("rafs", kSnapshotterConfig)).status, 204u);
  EXPECT_EQ(collection()["/a"]["backend_type"], "Rafs");
  ASSERT_EQ(call("DELETE", "/api/v1/mount?mountpoint=/a").status, 204u);
  EXPECT_TRUE(collection().empty());
  ASSERT_TRUE(daemon_.start());
  EXPECT_EQ(state(), "RUNNING");
  EXPECT_EQ(nlohmann::json::parse(call("GET", "/api/v2/daemon").body)["state"], "RUNNING");
}

// §10 #22: daemon info never shows credentials, whatever the backend.
TEST_F(MountTest, DaemonInfoScrubsEverySecret) {
  const std::string s3 =
      R"~({"version":2,"backend":{"type":"s3","s3":{"endpoint":"e","region":"r","bucket_name":"b",)~"
      R"~("access_key_id":"AKIDSECRET1","access_key_secret":"SKSECRET2","proxy":{"url":"http://u:SECRET3@p"}}},)~"
      R"~("cache":{"type":"blobcache","filecache":{"work_dir":"/c"}},"rafs":{"mode":"direct"}})~";
  ASSERT_EQ(call("POST", "/api/v1/mount?mountpoint=/s3", mount_body("rafs", s3)).status, 204u);
  const std::string registry =
      R"~({"version":2,"backend":{"type":"registry","registry":{"host":"h","repo":"r","auth":"dXNlcjpTRUNSRVQ0",)~"
      R"~("registry_token":"SECRET5"}},"cache":{"type":"blobcache","filecache":{"work_dir":"/c"}},"rafs":{"mode":"direct"}})~";
  ASSERT_EQ(call("POST", "/api/v1/mount?mountpoint=/reg", mount_body("rafs", registry)).status, 204u);
  auto body = call("GET", "/api/v1/daemon").body;
  for (const char* secret : {"AKIDSECRET1", "SKSECRET2", "SECRET3", "dXNlcjpTRUNSRVQ0", "SECRET5"}) {
    EXPECT_EQ(body.find(secret), std::string::npos) << secret << " leaked: " << body;
  }
  auto info = nlohmann::json::parse(body);
  EXPECT_EQ(info["backend_collection"]["/reg"]["config"]["backend"]["registry"]["auth"], nullptr);
  EXPECT_EQ(info["backend_collection"]["/s3"]["config"]["backend"]["s3"]["access_key_id"], "");
}

// Contract §2.1.6: credentials PUT under a mount's id before it is mounted
// reach that mount's registry backend; a configuration's own auth wins.
TEST_F(MountTest, StoredRegistryAuthFillsAMountWithoutCredentials) {
  auto registry = [](const std::string& auth) {
    return R"~({"version":2,"backend":{"type":"registry","registry":{"host":"h","repo":"r")~" + auth +
           R"~(}},"cache":{"type":"blobcache","filecache":{"work_dir":"/c"}},"rafs":{"mode":"direct"}})~";
  };
  ASSERT_EQ(call("PUT", "/api/v1/config?id=%2Fa", R"~({"registry_auth":"YTpwZXItbW91bnQ="})~").status, 204u);
  ASSERT_EQ(call("PUT", "/api/v1/config", R"~({"registry_auth":"YTpnbG9iYWw="})~").status, 204u);

  ASSERT_EQ(call("POST", "/api/v1/mount?mountpoint=%2Fa", mount_body("rafs", registry(""))).status, 204u);
  EXPECT_EQ(fs_->last->config.backend->registry->auth, "YTpwZXItbW91bnQ=");
  ASSERT_EQ(call("POST", "/api/v1/mount?mountpoint=%2Fb", mount_body("rafs", registry(""))).status, 204u);
  EXPECT_EQ(fs_->last->config.backend->registry->auth, "YTpnbG9iYWw=");
  ASSERT_EQ(call("POST", "/api/v1/mount?mountpoint=%2Fc", mount_body("rafs", registry(R"~(,"auth":"YTpvd24=")~"))).status,
            204u);
  EXPECT_EQ(fs_->last->config.backend->registry->auth, "YTpvd24=");
  // Not shown anywhere: daemon info scrubs the filled-in value like any other.
  EXPECT_EQ(call("GET", "/api/v1/daemon").body.find("YTpwZXItbW91bnQ="), std::string::npos);
}

TEST_F(MountTest, BadConfigurationNamesTheKey) {
  auto r = call("POST", "/api/v1/mount?mountpoint=/", mount_body("rafs", R"~({"version":2,"backend":{"type":"localfs","localfs":{}}})~"));
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(r.code(), "InvalidArgument");
  EXPECT_EQ(r.message().rfind("Mount(MountFilesystem(Other(\"invalid configuration, ", 0), 0u) << r.message();
  EXPECT_NE(r.message().find("backend.localfs"), std::string::npos) << r.message();
  EXPECT_FALSE(fs_->last);  // the service never saw it

  auto garbage = call("POST", "/api/v1/mount?mountpoint=/", mount_body("rafs", "not a config"));
  EXPECT_EQ(garbage.status, 500u);
  EXPECT_NE(garbage.message().find("invalid configuration"), std::string::npos);
  // A RAFS mount needs cache and rafs sections.
  auto no_rafs = call("POST", "/api/v1/mount?mountpoint=/",
                      mount_body("rafs", R"~({"version":2,"backend":{"type":"localfs","localfs":{"dir":"/b"}}})~"));
  EXPECT_EQ(no_rafs.status, 500u);
  EXPECT_NE(no_rafs.message().find("rafs"), std::string::npos) << no_rafs.message();
  EXPECT_FALSE(fs_->last);
  // TOML works too.
  auto toml = call("POST", "/api/v1/mount?mountpoint=/t",
                   mount_body("rafs", "version = 2\n[backend]\ntype = \"localfs\"\n[backend.localfs]\ndir = \"/b\"\n"
                                      "[cache]\ntype = \"blobcache\"\n[cache.filecache]\nwork_dir = \"/c\"\n[rafs]\nmode = \"direct\"\n"));
  EXPECT_EQ(toml.status, 204u) << toml.body;
}

TEST_F(MountTest, RequestChecksInUpstreamOrder) {
  auto relative = call("POST", "/api/v1/mount?mountpoint=/", mount_body("rafs", kSnapshotterConfig, R"~("prefetch_files":["/ok","rel"])~"));
  EXPECT_EQ(relative.status, 500u);
  EXPECT_NE(relative.message().find("invalid prefetch file list"), std::string::npos);
  ASSERT_EQ(call("POST", "/api/v1/mount?mountpoint=/", mount_body("passthrough_fs", "")).status, 204u);
  EXPECT_EQ(fs_->last->type, FsType::kPassthrough);
  auto again = call("POST", "/api/v1/mount?mountpoint=/", mount_body("passthrough", ""));
  EXPECT_EQ(again.status, 500u);
  EXPECT_EQ(again.code(), "AlreadyExists");
  EXPECT_EQ(again.message(), "Mount(MountFilesystem(Other(\"object or filesystem already exists\")))");
  auto remount_missing = call("PUT", "/api/v1/mount?mountpoint=/x", mount_body("passthroughfs", ""));
  EXPECT_EQ(remount_missing.code(), "NotFound");
  EXPECT_EQ(remount_missing.message(), "Mount(MountFilesystem(Other(\"object or filesystem doesn't exist\")))");
  EXPECT_EQ(call("PUT", "/api/v1/mount?mountpoint=/", mount_body("passthrough_fs", "")).status, 204u);
  EXPECT_EQ(call("DELETE", "/api/v1/mount?mountpoint=/").status, 204u);
  auto gone = call("DELETE", "/api/v1/mount?mountpoint=/");
  EXPECT_EQ(gone.status, 500u);
  EXPECT_EQ(gone.code(), "NotFound");
  EXPECT_EQ(gone.message(), "Mount(MountFilesystem(Other(\"object or filesystem doesn't exist\")))");
}

// The contract's sentences are the daemon's: a service reports the mount
// table's conditions by code, in its own words, and the API answers the same.
TEST_F(MountTest, MountTableErrorsAnswerTheContractsSentences) {
  fs_->fail_with = Error(ErrorCode::kAlreadyExists, "/ is mounted already");
  auto exists = call("POST", "/api/v1/mount?mountpoint=/", mount_body("passthrough_fs", ""));
  EXPECT_EQ(exists.status, 500u);
  EXPECT_EQ(exists.code(), "AlreadyExists");
  EXPECT_EQ(exists.message(), "Mount(MountFilesystem(Other(\"object or filesystem already exists\")))");
  fs_->fail_with = Error(ErrorCode::kNotFound, "nothing is attached at /");
  auto missing = call("POST", "/api/v1/mount?mountpoint=/", mount_body("passthrough_fs", ""));
  EXPECT_EQ(missing.status, 500u);
  EXPECT_EQ(missing.code(), "NotFound");
  EXPECT_EQ(missing.message(), "Mount(MountFilesystem(Other(\"object or filesystem doesn't exist\")))");
  // Other codes keep the service's message: it is the reason.
  fs_->fail_with = Error(ErrorCode::kInvalidArgument, "mountpoint / has mountpoints below it");
  auto other = call("POST", "/api/v1/mount?mountpoint=/", mount_body("passthrough_fs", ""));
  EXPECT_EQ(other.message(), "Mount(MountFilesystem(Other(\"mountpoint / has mountpoints below it\")))");
}

TEST_F(MountTest, ServiceErrorsMapToTheContract) {
  fs_->fail_with = Error(ErrorCode::kUnsupported, "rafs later");
  auto r = call("POST", "/api/v1/mount?mountpoint=/", mount_body("rafs", kSnapshotterConfig));
  EXPECT_EQ(r.status, 501u);
  EXPECT_EQ(r.message(), "Mount(MountFilesystem(Unsupported))");
  fs_->fail_with = Error(ErrorCode::kIo, "RAFS failed to handle request, bootstrap /images/boot: No such file");
  auto io = call("POST", "/api/v1/mount?mountpoint=/", mount_body("rafs", kSnapshotterConfig));
  EXPECT_EQ(io.status, 500u);
  EXPECT_EQ(io.code(), "IoError");
}

TEST_F(MountTest, MetricsAndBackendInfoThroughTheService) {
  ASSERT_EQ(call("POST", "/api/v1/mount?mountpoint=/", mount_body("passthrough_fs", "")).status, 204u);
  EXPECT_EQ(call("GET", "/api/v1/metrics").body, R"~({"id":"/"})~");
  auto missing = call("GET", "/api/v1/metrics?id=/nope");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(missing.message(), "GlobalMetrics(Metrics(Stats(NoCounter)))");
  EXPECT_EQ(call("GET", "/api/v1/metrics/files?latest=true").body, "[[1,2]]");
  EXPECT_EQ(call("GET", "/api/v1/metrics/pattern").body, "[]");
  EXPECT_EQ(call("GET", "/api/v1/metrics/backend").status, 404u);
  EXPECT_EQ(call("GET", "/api/v1/metrics/inflight").status, 204u);
  fs_->inflight = R"~([{"inode":1,"opcode":15,"unique":7,"timestamp_secs":1}])~";
  auto inflight = call("GET", "/api/v1/metrics/inflight");
  EXPECT_EQ(inflight.status, 200u);
  EXPECT_EQ(inflight.body, *fs_->inflight);
  auto passthrough = call("GET", "/api/v1/daemon/backend?mountpoint=/");
  EXPECT_EQ(passthrough.status, 500u);
  EXPECT_EQ(passthrough.message(), "FsBackendInfo(Metrics(Daemon(Other(\"filesystem type mismatch, expect RAFS\"))))");
  auto none = call("GET", "/api/v1/daemon/backend?mountpoint=/x");
  EXPECT_EQ(none.message(), "FsBackendInfo(Metrics(Daemon(Other(\"object or filesystem doesn't exist\"))))");
  EXPECT_EQ(none.code(), "NotFound");
}

// PUT /api/v2/blobs: decoded with the body, prepared before the daemon (contract §3.3.2).
TEST_F(MountTest, BlobEntriesArePreparedBeforeTheDaemon) {
  const std::string legacy_ok =
      R"~({"type":"bootstrap","id":"b1","domain_id":"d","config":{"id":"/snap","backend_type":"localfs",)~"
      R"~("backend_config":{"dir":"/blobs"},"cache_type":"fscache","cache_config":{"work_dir":"/w"},"metadata_path":"/m"}})~";
  auto ok = call("PUT", "/api/v2/blobs", legacy_ok);
  EXPECT_EQ(ok.status, 501u);  // prepared fine; a fusedev daemon has no blob manager
  EXPECT_EQ(ok.message(), "CreateBlobObject(DaemonAbnormal(Unsupported))");
  const std::string no_dir =
      R"~({"type":"bootstrap","id":"b1","config":{"backend_type":"localfs","backend_config":{},"cache_type":"fscache","cache_config":{"work_dir":"/w"}}})~";
  auto bad = call("PUT", "/api/v2/blobs", no_dir);
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(bad.body, R"~({"code":"BadRequest","message":"BadRequest"})~");
  const std::string dummy =
      R"~({"type":"bootstrap","id":"b1","config":{"backend_type":"localfs","backend_config":{"dir":"/b"},"cache_type":"dummycache","cache_config":{}}})~";
  EXPECT_EQ(call("PUT", "/api/v2/blobs", dummy).status, 400u);
  const std::string v2_bad_threads =
      R"~({"type":"bootstrap","id":"b1","config_v2":{"version":2,"backend":{"type":"localfs","localfs":{"dir":"/b"}},)~"
      R"~("cache":{"type":"fscache","fscache":{"work_dir":"/w"},"prefetch":{"enable":true,"threads":0}}}})~";
  EXPECT_EQ(call("PUT", "/api/v2/blobs", v2_bad_threads).status, 400u);
  const std::string missing_threads =
      R"~({"type":"bootstrap","id":"b1","config":{"backend_type":"localfs","backend_config":{"dir":"/b"},)~"
      R"~("cache_type":"fscache","cache_config":{"work_dir":"/w"},"prefetch_config":{"enable":true}}})~";
  auto parse = call("PUT", "/api/v2/blobs", missing_threads);
  EXPECT_EQ(parse.status, 400u);
  EXPECT_EQ(parse.message().rfind("ParseBody(Error(\"missing field `threads_count`\"", 0), 0u) << parse.message();
  auto none = call("PUT", "/api/v2/blobs", R"~({"type":"bootstrap","id":"b1"})~");
  EXPECT_EQ(none.status, 400u);
  EXPECT_EQ(none.message(), "BadRequest");
}

// Exit must not wait without bound for a mount stuck in a system call
// (issue #11 item 2): stop_worker reports it instead of blocking.
TEST_F(MountTest, StopWorkerIsBoundedWhileAMountIsStuck) {
  std::promise<void> release;
  fs_->stuck = release.get_future().share();
  auto routed = api::route({"POST", "/api/v1/mount?mountpoint=/m", mount_body("rafs", kSnapshotterConfig), 11});
  ASSERT_TRUE(routed);
  std::promise<bool> replied;
  daemon_.handle(routed->request, [&](api::ApiResult r, std::function<void()>) { replied.set_value(bool(r)); });
  fs_->entered.get_future().wait();
  EXPECT_FALSE(daemon_.stop_worker(std::chrono::milliseconds(100)));
  release.set_value();
  EXPECT_TRUE(replied.get_future().get());
  EXPECT_TRUE(daemon_.stop_worker(std::chrono::seconds(30)));  // hang guard
  // Stopped: later slow requests are dropped, never run.
  daemon_.handle(routed->request, [](api::ApiResult, std::function<void()>) { ADD_FAILURE() << "ran after stop"; });
}

}  // namespace
}  // namespace nydus::daemon
