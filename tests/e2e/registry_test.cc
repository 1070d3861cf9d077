// End-to-end: RAFS images pushed to a real registry (Debian's docker-registry,
// htpasswd auth, plain HTTP and TLS) through its upload API, mounted through
// POST /api/v1/mount with nydus-snapshotter's legacy configuration and
// compared with their source tree; registry failures as mount errors or EIO
// plus an event; credentials renewed through PUT /api/v1/config; no
// credential in any reply.
//
// Needs root and /dev/fuse, docker-registry, htpasswd and openssl (SKIP otherwise).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nydus/storage/builder.h"
#include "util/erofs_tree.h"
#include "util/nydusd_fuse_fixture.h"
#include "util/registry_server.h"

namespace nydus::testutil {
namespace {

using Json = nlohmann::json;
namespace stdfs = std::filesystem;

const std::string kRepo = "library/nydus-test";
const std::string kUser = "snapuser", kPass = "Sn4pPassw0rd";
const std::string kAuth = "c25hcHVzZXI6U240cFBhc3N3MHJk";  // base64 kUser:kPass

// nydus-snapshotter's legacy configuration for a registry image (registry-and-cache.md §1).
Json snapshotter_config(const std::string& scheme, const std::string& host, const std::string& repo,
                        const std::string& auth, const std::string& work_dir) {
  return Json{{"device",
               {{"backend",
                 {{"type", "registry"},
                  {"config",
                   {{"scheme", scheme}, {"host", host}, {"repo", repo}, {"auth", auth}, {"timeout", 5},
                    {"connect_timeout", 5}, {"retry_limit", 2}, {"skip_verify", false},
                    {"proxy", {{"fallback", false}}}, {"mirrors", Json::array()}}}}},
                {"cache", {{"type", "blobcache"}, {"config", {{"work_dir", work_dir}, {"disable_indexed_map", false}}}}}}},
              {"mode", "direct"},
              {"digest_validate", false},
              {"enable_xattr", true},
              {"iostats_files", false},
              {"amplify_io", 1048576},
              {"fs_prefetch", {{"enable", false}}}};
}

class RegistryE2eTest : public NydusdFuseFixture {
 protected:
  void SetUp() override {
    NydusdFuseFixture::SetUp();
    if (IsSkipped()) return;
    src_ = dir_.file("src");
    make_tree(src_);
    make_data_files(src_, 8ull << 20);
  }

  // Starts the registry; returns false (skip or failure recorded) if it cannot run.
  bool start_registry(bool tls) {
    std::string rdir = dir_.file(tls ? "registry-tls" : "registry");
    stdfs::create_directories(rdir);
    reg_ = std::make_unique<DockerRegistry>(rdir, kUser, kPass, tls);
    if (!reg_->skip_reason().empty()) return false;
    EXPECT_EQ(reg_->error(), "");
    return reg_->error().empty();
  }

  // Builds the image of `src` (src_ when empty; zstd, 1 MiB chunks) and pushes its blob; the bootstrap path.
  std::string build_and_push(const std::string& name, const std::string& src = "") {
    storage::BuildOptions o;
    o.compressor = storage::Compressor::kZstd;
    std::string boot = dir_.file(name + ".boot"), blobs = dir_.file(name + "-blobs");
    stdfs::create_directories(blobs);
    auto built = storage::build_image_files(src.empty() ? src_ : src, o, boot, blobs);
    EXPECT_TRUE(built) << built.error().to_string();
    if (!built) return "";
    EXPECT_EQ(push_blob(reg_->url(), kRepo, blobs + "/" + built->blob_id, reg_->curl_auth()), "");
    stdfs::remove_all(blobs);  // the registry is the only place the blob lives now
    return boot;
  }

  HttpReply mount(const std::string& mp, const std::string& boot, const Json& config) {
    std::string body = Json{{"source", boot}, {"fs_type", "rafs"}, {"config", config.dump()}}.dump();
    return call("POST", "/api/v1/mount?mountpoint=" + mp, body);
  }

  Json config(const std::string& auth = kAuth, const std::string& repo = kRepo, const std::string& cache = "cache") {
    std::string work = dir_.file(cache);
    stdfs::create_directories(work);
    return snapshotter_config(reg_->scheme(), reg_->host(), repo, auth, work);
  }

  void expect_same(const std::string& mp) {
    TreeCompare c;
    c.ino = false;
    c.mtime = false;
    c.data = true;
    EXPECT_GT(expect_same_tree(src_, mnt_ + mp, c), 300u);
  }

  Json events() { return Json::parse(call("GET", "/api/v1/daemon/events").body); }
  std::uint64_t backend_reads(const std::string& mp) {
    return Json::parse(call("GET", "/api/v1/metrics/backend?id=" + mp).body)["read_count"].get<std::uint64_t>();
  }

  std::string src_;
  std::unique_ptr<DockerRegistry> reg_;
};

#define REGISTRY_OR_SKIP(tls)                                                     \
  do {                                                                            \
    if (!start_registry(tls)) {                                                   \
      if (reg_ && !reg_->skip_reason().empty()) GTEST_SKIP() << reg_->skip_reason(); \
      return;                                                                     \
    }                                                                             \
  } while (0)

TEST_F(RegistryE2eTest, PushedImageMountsWithTheSnapshotterConfigAndEqualsItsSource) {
  if (IsSkipped()) return;
  REGISTRY_OR_SKIP(false);
  std::string boot = build_and_push("img");
  start();
  auto r = mount("/snap-1", boot, config());
  ASSERT_EQ(r.status, 204u) << r.body;
  expect_same("/snap-1");
  auto be = Json::parse(call("GET", "/api/v1/metrics/backend?id=/snap-1").body);
  EXPECT_EQ(be["backend_type"], "registry");
  EXPECT_GT(be["read_count"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(be["read_errors"], 0);
  EXPECT_EQ(events()["total_errors"], 0);
  auto info = call("GET", "/api/v1/daemon").body;
  EXPECT_EQ(info.find(kAuth), std::string::npos);
  EXPECT_NE(Json::parse(info)["backend_collection"]["/snap-1"].dump().find(reg_->host()), std::string::npos);
}

TEST_F(RegistryE2eTest, TlsWithCaCertFilesOrSkipVerify) {
  if (IsSkipped()) return;
  REGISTRY_OR_SKIP(true);
  std::string boot = build_and_push("img");
  start();
  auto untrusted = mount("/untrusted", boot, config());
  EXPECT_EQ(untrusted.status, 500u) << untrusted.body;
  EXPECT_NE(untrusted.body.find("certificate"), std::string::npos) << untrusted.body;
  Json c = config();
  c["device"]["backend"]["config"]["ca_cert_files"] = Json::array({reg_->ca_file()});
  auto r = mount("/ca", boot, c);
  ASSERT_EQ(r.status, 204u) << r.body;
  expect_same("/ca");
  c = config();
  c["device"]["backend"]["config"]["skip_verify"] = true;
  r = mount("/skip", boot, c);
  ASSERT_EQ(r.status, 204u) << r.body;
  EXPECT_EQ(slurp(mnt_ + "/skip/a/b/mid"), slurp(src_ + "/a/b/mid"));
}

TEST_F(RegistryE2eTest, RegistryFailuresAreMountErrorsWithTheReasonAndNoCredential) {
  if (IsSkipped()) return;
  REGISTRY_OR_SKIP(false);
  std::string boot = build_and_push("img");
  start();
  const std::string wrong = "c25hcHVzZXI6d3Jvbmc=";  // snapuser:wrong
  auto bad_auth = mount("/bad-auth", boot, config(wrong));
  EXPECT_EQ(bad_auth.status, 500u);
  EXPECT_NE(bad_auth.body.find("401"), std::string::npos) << bad_auth.body;
  EXPECT_EQ(bad_auth.body.find(wrong), std::string::npos) << bad_auth.body;
  auto no_repo = mount("/no-repo", boot, config(kAuth, "library/absent"));
  EXPECT_EQ(no_repo.status, 500u);
  EXPECT_NE(no_repo.body.find("404"), std::string::npos) << no_repo.body;
  Json c = config();
  c["device"]["backend"]["config"]["host"] = "127.0.0.1:" + std::to_string(free_port());
  auto unreachable = mount("/unreachable", boot, c);
  EXPECT_EQ(unreachable.status, 500u);
  EXPECT_NE(unreachable.body.find("onnect"), std::string::npos) << unreachable.body;
  for (const auto& body : {bad_auth.body, no_repo.body, unreachable.body}) EXPECT_EQ(body.find(kAuth), std::string::npos);
}

TEST_F(RegistryE2eTest, RegistryKilledMidReadGivesEioThenRecoversAfterRestart) {
  if (IsSkipped()) return;
  REGISTRY_OR_SKIP(false);
  std::string boot = build_and_push("img");
  start();
  Json c = config();
  c["device"]["backend"]["config"]["retry_limit"] = 0;
  ASSERT_EQ(mount("/snap", boot, c).status, 204u);
  EXPECT_EQ(slurp(mnt_ + "/snap/a/b/mid"), slurp(src_ + "/a/b/mid"));
  reg_->kill();
  std::vector<std::string> files;
  for (const auto& e : stdfs::recursive_directory_iterator(src_ + "/data")) {
    if (e.is_regular_file() && e.file_size() > 4096) files.push_back(e.path().lexically_relative(src_).string());
  }
  ASSERT_FALSE(files.empty());
  int fd = ::open((mnt_ + "/snap/" + files.back()).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[4096];
  errno = 0;
  EXPECT_EQ(::pread(fd, buf, sizeof(buf), 0), -1);
  EXPECT_EQ(errno, EIO);
  ::close(fd);
  auto ev = events();
  EXPECT_GT(ev["total_errors"].get<int>(), 0);
  EXPECT_NE(ev.dump().find("registry: "), std::string::npos) << ev.dump();
  EXPECT_EQ(ev.dump().find(kAuth), std::string::npos);
  reg_->restart();
  ASSERT_EQ(reg_->error(), "");
  expect_same("/snap");
}

TEST_F(RegistryE2eTest, RenewedRegistryAuthReachesTheLiveBackend) {
  if (IsSkipped()) return;
  REGISTRY_OR_SKIP(false);
  std::string boot = build_and_push("img");
  start();
  Json c = config();
  c["device"]["backend"]["config"]["retry_limit"] = 0;
  ASSERT_EQ(mount("/snap", boot, c).status, 204u);
  // Credentials revoked and replaced: the old ones now fail, the renewed ones work.
  auto put = call("PUT", "/api/v1/config?id=/snap", Json{{"registry_auth", "c25hcHVzZXI6d3Jvbmc="}}.dump());
  EXPECT_EQ(put.status, 204u) << put.body;
  int fd = ::open((mnt_ + "/snap/a/b/mid").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[16];
  errno = 0;
  EXPECT_EQ(::pread(fd, buf, sizeof(buf), 0), -1);
  EXPECT_EQ(errno, EIO);
  ::close(fd);
  put = call("PUT", "/api/v1/config?id=/snap", Json{{"registry_auth", kAuth}}.dump());
  EXPECT_EQ(put.status, 204u) << put.body;
  expect_same("/snap");
  auto get = call("GET", "/api/v1/config?id=/snap");
  EXPECT_EQ(get.body.find(kAuth), std::string::npos) << get.body;
}

// Issue #16's acceptance: an image read once through a blob cache mounts
// again from the same work_dir with the registry stopped and reads completely.
TEST_F(RegistryE2eTest, ReadOnceThenMountedAgainFromTheCacheWithTheRegistryStopped) {
  if (IsSkipped()) return;
  REGISTRY_OR_SKIP(false);
  std::string boot = build_and_push("img");
  start();
  ASSERT_EQ(mount("/first", boot, config()).status, 204u);
  expect_same("/first");
  EXPECT_GT(backend_reads("/first"), 0u);
  ASSERT_EQ(call("DELETE", "/api/v1/mount?mountpoint=/first").status, 204u);
  reg_->kill();
  auto r = mount("/second", boot, config());
  ASSERT_EQ(r.status, 204u) << r.body;
  expect_same("/second");
  EXPECT_EQ(backend_reads("/second"), 0u);
  EXPECT_EQ(events()["total_errors"], 0) << events().dump();
  auto bc = Json::parse(call("GET", "/api/v1/metrics/blobcache?id=/second").body);
  EXPECT_EQ(bc["data_all_ready"], true) << bc.dump();
}

// Issue #16's acceptance: a sequential read of a 64 MiB zstd image (1 MiB
// chunks) from the registry makes at most half the backend requests with
// amplify_io 1 MiB that it makes with amplify_io 0.
TEST_F(RegistryE2eTest, AmplifiedSequentialReadHalvesTheRegistryRequests) {
  if (IsSkipped()) return;
  REGISTRY_OR_SKIP(false);
  const std::string big = dir_.file("big");
  stdfs::create_directories(big);
  std::string text;
  {
    std::mt19937 rng(64);
    std::vector<std::string> words;
    for (int i = 0; i < 400; ++i) {
      std::string w(3 + rng() % 8, 'a');
      for (char& ch : w) ch = char('a' + rng() % 26);
      words.push_back(w);
    }
    text.reserve(64 << 20);
    while (text.size() < (64u << 20)) text += words[rng() % words.size()] + (rng() % 12 ? " " : "\n");
    text.resize(64 << 20);
    std::ofstream(big + "/text.txt", std::ios::binary) << text;
  }
  std::string boot = build_and_push("big", big);
  start();
  Json off = config(kAuth, kRepo, "cache-off");
  off["amplify_io"] = 0;
  ASSERT_EQ(mount("/off", boot, off).status, 204u);
  ASSERT_EQ(mount("/on", boot, config(kAuth, kRepo, "cache-on")).status, 204u);
  EXPECT_TRUE(slurp(mnt_ + "/off/text.txt") == text);
  EXPECT_TRUE(slurp(mnt_ + "/on/text.txt") == text);
  const std::uint64_t unamplified = backend_reads("/off"), amplified = backend_reads("/on");
  EXPECT_GE(unamplified, 64u);  // one request per chunk
  EXPECT_LE(amplified * 2, unamplified) << amplified << " requests amplified, " << unamplified << " not";
}

// A full work_dir (a 64 KiB tmpfs) under a registry mount: every file reads
// right from the registry, and nydusd reports the cache failure as one event.
TEST_F(RegistryE2eTest, FullWorkDirIsOneEventAndEveryFileStillReads) {
  if (IsSkipped()) return;
  REGISTRY_OR_SKIP(false);
  std::string boot = build_and_push("img");
  const std::string tiny = dir_.file("tiny");
  stdfs::create_directories(tiny);
  if (::mount("tmpfs", tiny.c_str(), "tmpfs", 0, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
  }
  struct Detach {
    std::string dir;
    ~Detach() { ::umount2(dir.c_str(), MNT_DETACH); }
  } detach{tiny};
  start();
  Json c = config();
  c["device"]["cache"]["config"]["work_dir"] = tiny;
  ASSERT_EQ(mount("/full", boot, c).status, 204u);
  expect_same("/full");
  auto ev = events();
  int cache_events = 0;
  for (const auto& e : ev["errors"]) cache_events += e.get<std::string>().find("blob cache") != std::string::npos;
  EXPECT_EQ(cache_events, 1) << ev.dump();
  EXPECT_NE(ev.dump().find(std::strerror(ENOSPC)), std::string::npos) << ev.dump();
  EXPECT_EQ(ev.dump().find(kAuth), std::string::npos);
  EXPECT_EQ(call("DELETE", "/api/v1/mount?mountpoint=/full").status, 204u);
}

// Bearer tokens and redirects to an object store through the mount (the fake
// registry): a hundred readers of one cold file get its bytes, the token is
// fetched once, the store never sees an Authorization header.
TEST_F(RegistryE2eTest, HundredColdReadersThroughBearerAuthAndRedirects) {
  if (IsSkipped()) return;
  std::string blobs = dir_.file("fake-blobs");
  stdfs::create_directories(blobs);
  std::string boot = dir_.file("fake.boot");
  auto built = storage::build_image_files(src_, {}, boot, blobs);
  ASSERT_TRUE(built) << built.error().to_string();
  FakeRegistry fake(dir_.path(), blobs, {"--auth", "bearer", "--expires-in", "600", "--repo", kRepo});
  if (!fake.skip_reason().empty()) GTEST_SKIP() << fake.skip_reason();
  ASSERT_TRUE(fake.up()) << fake.log();
  fake.control({{"redirect", true}});
  start();
  std::string work = dir_.file("cache");
  stdfs::create_directories(work);
  auto r = mount("/snap", boot, snapshotter_config("http", fake.host(), kRepo, "", work));
  ASSERT_EQ(r.status, 204u) << r.body;
  const std::string file = "data/text_3m";  // three 1 MiB chunks
  const std::string want = slurp(src_ + "/" + file);
  ASSERT_EQ(want.size(), 3u << 20);
  std::vector<std::thread> readers;
  std::atomic<int> good{0};
  for (int i = 0; i < 100; ++i) {
    readers.emplace_back([&] { good += slurp(mnt_ + "/snap/" + file) == want ? 1 : 0; });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(good.load(), 100);
  expect_same("/snap");
  auto s = fake.stats();
  EXPECT_EQ(s["token_fetches"], 1);
  EXPECT_EQ(s["auth_on_redirect"], 0);
  EXPECT_GT(s["redirected_gets"].get<int>(), 0);
  EXPECT_EQ(events()["total_errors"], 0);
}

}  // namespace
}  // namespace nydus::testutil
