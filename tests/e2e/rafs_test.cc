// End-to-end: nydusd serving RAFS images over FUSE. The sample image through
// the API with the snapshotter's legacy configuration (bytes against the
// published hashes); generated images in every compression x digest x chunk
// size combination against their source tree; our mount against the kernel's
// EROFS mount of the same bootstrap (metadata, and bytes through the
// uncompressed cache image); remount; --bootstrap at start-up; damaged images
// and blobs as mount errors or EIO plus an event.
//
// Needs root and /dev/fuse (SKIP otherwise); the kernel comparisons also need
// EROFS and loop devices, mkfs.erofs for its images.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nydus/storage/builder.h"
#include "nydus/storage/digest.h"
#include "util/erofs_tree.h"
#include "util/nydusd_fuse_fixture.h"

namespace nydus::testutil {
namespace {

using Json = nlohmann::json;
namespace stdfs = std::filesystem;

const std::string kFixture = std::string(NYDUS_SOURCE_DIR) + "/../shared/fixtures/rafs-v6";
const std::string kSampleBlob = "be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef";

std::string sha256_of(const std::string& bytes) {
  return storage::to_hex(
      storage::sha256(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size())).value());
}

// The legacy configuration nydus-snapshotter writes for a fusedev daemon (contract §3.2).
std::string snapshotter_config(const std::string& blob_dir, const std::string& work_dir, bool validate) {
  return Json{{"device",
               {{"backend", {{"type", "localfs"}, {"config", {{"dir", blob_dir}}}}},
                {"cache", {{"type", "blobcache"}, {"config", {{"work_dir", work_dir}}}}}}},
              {"mode", "direct"},
              {"digest_validate", validate},
              {"iostats_files", false},
              {"enable_xattr", true},
              {"fs_prefetch", {{"enable", false}}}}
      .dump();
}

// A ConfigV2 text for a generated image.
std::string v2_config(const std::string& blob_dir, bool validate) {
  return Json{{"version", 2},
              {"backend", {{"type", "localfs"}, {"localfs", {{"dir", blob_dir}}}}},
              {"cache", {{"type", ""}}},
              {"rafs", {{"mode", "direct"}, {"validate", validate}, {"enable_xattr", true}}}}
      .dump();
}

class RafsE2eTest : public NydusdFuseFixture {
 protected:
  HttpReply mount(const std::string& mp, const std::string& boot, const std::string& config, bool remount = false) {
    std::string body = Json{{"source", boot}, {"fs_type", "rafs"}, {"config", config}}.dump();
    return call(remount ? "PUT" : "POST", "/api/v1/mount?mountpoint=" + mp, body);
  }
  Json events() { return Json::parse(call("GET", "/api/v1/daemon/events").body); }
};

TEST_F(RafsE2eTest, KernelCacheSwitchedOffGivesRafsTheShortTimeouts) {
  if (::access((kFixture + "/rafs-v6-2.2.boot").c_str(), R_OK) != 0) GTEST_SKIP() << "sample image absent: " << kFixture;
  start({"--rafs-kernel-cache", "false"});
  auto r = mount("/snap", kFixture + "/rafs-v6-2.2.boot", v2_config(kFixture + "/blobs", false));
  ASSERT_EQ(r.status, 204u) << r.body;
  EXPECT_EQ(sha256_of(slurp(mnt_ + "/snap/lib.rs")), "1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69");
  auto sb = Json::parse(call("GET", "/api/v1/daemon/backend?mountpoint=/snap").body);
  EXPECT_EQ(sb["attr_timeout"]["secs"], 1);
  EXPECT_EQ(sb["entry_timeout"]["secs"], 1);
}

TEST_F(RafsE2eTest, SampleImageMountsWithTheSnapshotterConfig) {
  if (::access((kFixture + "/rafs-v6-2.2.boot").c_str(), R_OK) != 0) GTEST_SKIP() << "sample image absent: " << kFixture;
  start();
  std::string work = dir_.file("cache");
  stdfs::create_directories(work);
  auto r = mount("/snap-1", kFixture + "/rafs-v6-2.2.boot", snapshotter_config(kFixture + "/blobs", work, true));
  ASSERT_EQ(r.status, 204u) << r.body;
  EXPECT_EQ(sha256_of(slurp(mnt_ + "/snap-1/lib.rs")), "1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69");
  EXPECT_EQ(sha256_of(slurp(mnt_ + "/snap-1/sync_io.rs")), "e629ab260ff0dc02a24648a3e0dd8c13a5daf233d535c330e3201925f5eeff96");
  struct stat st {};
  ASSERT_EQ(::stat((mnt_ + "/snap-1/lib.rs").c_str(), &st), 0);
  EXPECT_EQ(st.st_ino, 133u);
  EXPECT_EQ(st.st_size, 16931);
  // The chunk-info array is kept beside the blob cache.
  EXPECT_TRUE(stdfs::exists(work + "/" + kSampleBlob + ".blob.meta"));

  auto info = Json::parse(call("GET", "/api/v1/daemon").body);
  EXPECT_EQ(info["backend_collection"]["/snap-1"]["backend_type"], "Rafs");
  EXPECT_EQ(info["backend_collection"]["/snap-1"]["config"]["backend"]["localfs"]["dir"], kFixture + "/blobs");
  auto sb = Json::parse(call("GET", "/api/v1/daemon/backend?mountpoint=/snap-1").body);
  EXPECT_EQ(sb["version"], 0x600);
  EXPECT_EQ(sb["root_nid"], 128);
  EXPECT_EQ(sb["flags"]["bits"], 0x194);
  EXPECT_EQ(sb["chunk_size"], 1 << 20);
  // RAFS nodes are cached by the kernel until invalidated (docs/fuse.md "Kernel caching").
  EXPECT_EQ(sb["attr_timeout"]["secs"], std::uint64_t{1} << 32);
  EXPECT_EQ(sb["entry_timeout"]["secs"], std::uint64_t{1} << 32);
  auto be = Json::parse(call("GET", "/api/v1/metrics/backend?id=/snap-1").body);
  EXPECT_EQ(be["backend_type"], "localfs");
  EXPECT_GE(be["read_count"].get<std::uint64_t>(), 2u);
  EXPECT_EQ(be["read_errors"], 0);
  auto fsm = Json::parse(call("GET", "/api/v1/metrics?id=/snap-1").body);
  EXPECT_EQ(fsm["data_read"].get<std::uint64_t>(), 16931u + 13400u);
  EXPECT_EQ(call("GET", "/api/v1/metrics/blobcache?id=/snap-1").status, 200u);  // blobcache: counters (blobcache_test)
  EXPECT_EQ(events()["total_errors"], 0);

  EXPECT_EQ(call("DELETE", "/api/v1/mount?mountpoint=/snap-1").status, 204u);
  EXPECT_FALSE(stdfs::exists(mnt_ + "/snap-1/lib.rs"));
}

TEST_F(RafsE2eTest, GeneratedImagesEqualTheirSourceInEveryCombination) {
  const std::string src = dir_.file("src");
  make_tree(src);
  make_data_files(src, 64ull << 20);
  start();
  int n = 0;
  for (auto comp : {storage::Compressor::kNone, storage::Compressor::kLz4Block, storage::Compressor::kZstd}) {
    for (auto digest : {storage::DigestAlgo::kBlake3, storage::DigestAlgo::kSha256}) {
      for (std::uint32_t chunk : {4096u, 1u << 20}) {
        std::string name = std::string(storage::to_string(comp)) + "-" + storage::to_string(digest) + "-" +
                           std::to_string(chunk);
        SCOPED_TRACE(name);
        storage::BuildOptions o;
        o.compressor = comp;
        o.digester = digest;
        o.chunk_size = chunk;
        o.chunk_info_v2 = (n % 2) == 1;
        o.ci_compressor = (n % 3) == 0 ? storage::Compressor::kZstd : storage::Compressor::kNone;
        std::string boot = dir_.file(name + ".boot"), blobs = dir_.file("blobs");
        stdfs::create_directories(blobs);
        auto built = storage::build_image_files(src, o, boot, blobs);
        ASSERT_TRUE(built) << built.error().to_string();
        auto r = mount("/" + name, boot, v2_config(blobs, true));
        ASSERT_EQ(r.status, 204u) << r.body;
        TreeCompare c;
        c.ino = false;    // the image's nids, not the source's inode numbers
        c.mtime = false;  // compact inodes: the daemon's start time (nydus rule)
        c.data = true;
        EXPECT_GT(expect_same_tree(src, mnt_ + "/" + name, c), 300u);
        EXPECT_EQ(call("DELETE", "/api/v1/mount?mountpoint=/" + name).status, 204u);
        ++n;
      }
    }
  }
  EXPECT_EQ(n, 12);
  EXPECT_EQ(events()["total_errors"], 0);
}

// Our FUSE view of a bootstrap against the kernel's EROFS view of the same bootstrap.
class KernelCompareTest : public RafsE2eTest {
 protected:
  void SetUp() override {
    RafsE2eTest::SetUp();
    if (IsSkipped()) return;
    if (auto why = kernel_erofs_unavailable(); !why.empty()) GTEST_SKIP() << "kernel EROFS comparison not run: " << why;
  }
};

TEST_F(KernelCompareTest, GeneratedImagesMetadataAndBytes) {
  const std::string src = dir_.file("src");
  make_tree(src);
  make_data_files(src, 8ull << 20);
  start();
  for (auto comp : {storage::Compressor::kNone, storage::Compressor::kZstd}) {
    for (bool extended : {false, true}) {
      std::string name = std::string(storage::to_string(comp)) + (extended ? "-extended" : "-compact");
      SCOPED_TRACE(name);
      storage::BuildOptions o;
      o.compressor = comp;
      o.force_extended = extended;
      o.chunk_size = extended ? 4096 : 1 << 20;
      o.cache_image = true;
      std::string boot = dir_.file(name + ".boot"), blobs = dir_.file("blobs"), cache = dir_.file(name + ".cache");
      stdfs::create_directories(blobs);
      auto built = storage::build_image_files(src, o, boot, blobs);
      ASSERT_TRUE(built) << built.error().to_string();
      {
        std::ofstream f(cache, std::ios::binary);
        f.write(reinterpret_cast<const char*>(built->cache_image.data()), std::streamsize(built->cache_image.size()));
      }
      auto r = mount("/" + name, boot, v2_config(blobs, false));
      ASSERT_EQ(r.status, 204u) << r.body;
      LoopDevice loop(cache);
      ASSERT_FALSE(loop.dev().empty());
      KernelMount km(boot, dir_.file("k-" + name), ",device=" + loop.dev());
      ASSERT_TRUE(km.ok()) << km.error();
      TreeCompare c;
      c.mtime = extended;  // compact: the kernel shows build time, nydusd its start time
      c.data = true;       // the kernel reads the uncompressed cache image
      c.dir_size = true;
      EXPECT_GT(expect_same_tree(mnt_ + "/" + name, dir_.file("k-" + name), c), 300u);
    }
  }
}

TEST_F(KernelCompareTest, MkfsErofsImages) {
  int rc = 0;
  shell("command -v mkfs.erofs", &rc);
  if (rc != 0) GTEST_SKIP() << "mkfs.erofs (erofs-utils) not installed";
  const std::string src = dir_.file("src");
  make_tree(src);
  make_data_files(src, 4ull << 20);
  std::string out = shell("mkfs.erofs -T0 '" + dir_.file("flat.img") + "' '" + src + "'", &rc);
  ASSERT_EQ(rc, 0) << out;
  out = shell("mkfs.erofs -T0 --chunksize=4096 --blobdev='" + dir_.file("blob.img") + "' '" + dir_.file("meta.img") +
                  "' '" + src + "'",
              &rc);
  ASSERT_EQ(rc, 0) << out;
  start();
  auto flat_cfg = Json{{"version", 2},
                       {"backend", {{"type", "localfs"}, {"localfs", {{"dir", dir_.path()}}}}},
                       {"cache", {{"type", ""}}},
                       {"rafs", {{"enable_xattr", true}}}}
                      .dump();
  ASSERT_EQ(mount("/flat", dir_.file("flat.img"), flat_cfg).status, 204u);
  auto blob_cfg = Json{{"version", 2},
                       {"backend", {{"type", "localfs"}, {"localfs", {{"blob_file", dir_.file("blob.img")}}}}},
                       {"cache", {{"type", ""}}},
                       {"rafs", {{"enable_xattr", true}}}}
                      .dump();
  ASSERT_EQ(mount("/chunked", dir_.file("meta.img"), blob_cfg).status, 204u);
  TreeCompare c;
  c.data = true;
  c.dir_size = true;
  {
    KernelMount km(dir_.file("flat.img"), dir_.file("k-flat"));
    ASSERT_TRUE(km.ok()) << km.error();
    EXPECT_GT(expect_same_tree(mnt_ + "/flat", dir_.file("k-flat"), c), 300u);
  }
  LoopDevice loop(dir_.file("blob.img"));
  ASSERT_FALSE(loop.dev().empty());
  KernelMount km(dir_.file("meta.img"), dir_.file("k-chunked"), ",device=" + loop.dev());
  ASSERT_TRUE(km.ok()) << km.error();
  EXPECT_GT(expect_same_tree(mnt_ + "/chunked", dir_.file("k-chunked"), c), 300u);
  // And both equal the source (inode numbers and directory sizes aside).
  TreeCompare s;
  s.ino = false;
  s.data = true;
  s.mtime = false;
  EXPECT_GT(expect_same_tree(src, mnt_ + "/flat", s), 300u);
}

TEST_F(RafsE2eTest, RemountSwapsTheBootstrap) {
  const std::string a = dir_.file("a"), b = dir_.file("b");
  stdfs::create_directories(a);
  stdfs::create_directories(b);
  std::ofstream(a + "/file") << "version one";
  std::ofstream(b + "/file") << "version two, longer";
  std::ofstream(b + "/added") << "new";
  std::string blobs = dir_.file("blobs");
  stdfs::create_directories(blobs);
  ASSERT_TRUE(storage::build_image_files(a, {}, dir_.file("a.boot"), blobs));
  ASSERT_TRUE(storage::build_image_files(b, {}, dir_.file("b.boot"), blobs));
  start();
  ASSERT_EQ(mount("/r", dir_.file("a.boot"), v2_config(blobs, true)).status, 204u);
  EXPECT_EQ(slurp(mnt_ + "/r/file"), "version one");
  int held = ::open((mnt_ + "/r/file").c_str(), O_RDONLY);
  ASSERT_GE(held, 0);
  auto before = Json::parse(call("GET", "/api/v1/daemon").body)["backend_collection"]["/r"]["mounted_time"];
  struct stat old_st {};
  ASSERT_EQ(::stat((mnt_ + "/r/file").c_str(), &old_st), 0);
  auto r = mount("/r", dir_.file("b.boot"), v2_config(blobs, true), true);
  ASSERT_EQ(r.status, 204u) << r.body;
  struct stat new_st {};
  ASSERT_EQ(::stat((mnt_ + "/r/file").c_str(), &new_st), 0);
  // Compact inodes have no mtime: both images show the daemon's start, to the second, as upstream.
  EXPECT_EQ(new_st.st_mtim.tv_sec, old_st.st_mtim.tv_sec);
  EXPECT_EQ(new_st.st_mtim.tv_nsec, 0);
  EXPECT_EQ(slurp(mnt_ + "/r/file"), "version two, longer");
  EXPECT_EQ(slurp(mnt_ + "/r/added"), "new");
  char buf[64] = {};
  EXPECT_EQ(::pread(held, buf, sizeof buf, 0), 11) << "a file open before the swap keeps reading the old image";
  EXPECT_EQ(std::string(buf), "version one");
  ::close(held);
  auto after = Json::parse(call("GET", "/api/v1/daemon").body)["backend_collection"]["/r"]["mounted_time"];
  EXPECT_NE(before, after);
  // A remount to a bad bootstrap changes nothing.
  std::ofstream(dir_.file("bad.boot")) << std::string(5000, 'z');
  EXPECT_EQ(mount("/r", dir_.file("bad.boot"), v2_config(blobs, true), true).status, 500u);
  EXPECT_EQ(slurp(mnt_ + "/r/added"), "new");
}

TEST_F(RafsE2eTest, BootstrapAtStartUp) {
  const std::string src = dir_.file("src");
  stdfs::create_directories(src + "/d");
  std::ofstream(src + "/d/x") << "served from start-up";
  std::string blobs = dir_.file("blobs");
  stdfs::create_directories(blobs);
  ASSERT_TRUE(storage::build_image_files(src, {}, dir_.file("img.boot"), blobs));
  // --config in TOML, the image at a virtual mountpoint.
  std::ofstream(dir_.file("c.toml")) << "version = 2\n[backend]\ntype = \"localfs\"\n[backend.localfs]\ndir = \"" << blobs
                                     << "\"\n[cache]\ntype = \"blobcache\"\n[cache.filecache]\nwork_dir = \"" << dir_.path()
                                     << "\"\n[rafs]\nvalidate = true\n";
  start({"--bootstrap", dir_.file("img.boot"), "--config", dir_.file("c.toml"), "--virtual-mountpoint", "/img"});
  EXPECT_EQ(slurp(mnt_ + "/img/d/x"), "served from start-up");
  auto info = Json::parse(call("GET", "/api/v1/daemon").body);
  EXPECT_EQ(info["backend_collection"]["/img"]["backend_type"], "Rafs");
  EXPECT_EQ(info["backend_collection"]["/img"]["config"]["rafs"]["validate"], true);
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(), 0) << daemon_->log();

  // --localfs-dir instead of --config, at "/".
  start({"--bootstrap", dir_.file("img.boot"), "--localfs-dir", blobs});
  EXPECT_EQ(slurp(mnt_ + "/d/x"), "served from start-up");
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait_exit(), 0) << daemon_->log();

  // A bad bootstrap or configuration stops start-up with a message.
  for (auto args : std::vector<std::vector<std::string>>{
           {"--bootstrap", dir_.file("nope.boot"), "--localfs-dir", blobs},
           {"--bootstrap", dir_.file("img.boot")},
           {"--bootstrap", dir_.file("img.boot"), "--config", dir_.file("c.toml"), "--prefetch-files", dir_.file("none")}}) {
    std::vector<std::string> full = {nydusd_path(), "--apisock", dir_.file("other.sock"), "--mountpoint", mnt_};
    full.insert(full.end(), args.begin(), args.end());
    auto [code, text] = run_command(full);
    EXPECT_EQ(code, 1) << text;
    EXPECT_NE(text.find("cannot serve"), std::string::npos) << text;
    EXPECT_FALSE(is_mounted(mnt_));
  }
}

// A backend this daemon cannot use is a load failure like any other: 500 with
// the reason, not a bare 501 Unsupported.
TEST_F(RafsE2eTest, UnservableBackendIsA500WithTheReason) {
  const std::string src = dir_.file("src"), blobs = dir_.file("blobs");
  stdfs::create_directories(src);
  stdfs::create_directories(blobs);
  std::ofstream(src + "/f") << "x";
  ASSERT_TRUE(storage::build_image_files(src, {}, dir_.file("img.boot"), blobs));
  start();
  std::string config = Json{{"version", 2},
                            {"backend", {{"type", "oss"}, {"oss", {{"endpoint", "oss.example"}, {"bucket_name", "b"}}}}},
                            {"cache", {{"type", ""}}},
                            {"rafs", {{"mode", "direct"}}}}
                           .dump();
  auto r = mount("/reg", dir_.file("img.boot"), config);
  EXPECT_EQ(r.status, 500u) << r.body;
  auto body = Json::parse(r.body);
  EXPECT_EQ(body["code"], "InvalidArgument") << r.body;
  EXPECT_NE(body["message"].get<std::string>().find("RAFS failed to handle request, backend type `oss`"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(call("GET", "/api/v1/daemon/backend?mountpoint=/reg").status, 500u);  // nothing mounted
}

TEST_F(RafsE2eTest, DamageIsAnErrorNeverACrash) {
  const std::string src = dir_.file("src");
  stdfs::create_directories(src);
  {
    std::ofstream f(src + "/data", std::ios::binary);
    for (int i = 0; i < 200000; ++i) f << i << '\n';
  }
  std::string blobs = dir_.file("blobs"), broken = dir_.file("broken"), empty = dir_.file("empty");
  for (const auto& d : {blobs, broken, empty}) stdfs::create_directories(d);
  storage::BuildOptions o;
  o.compressor = storage::Compressor::kNone;
  auto built = storage::build_image_files(src, o, dir_.file("img.boot"), blobs);
  ASSERT_TRUE(built);
  auto blob = built->blob;
  blob[4096 * 3 + 7] ^= 0x40;  // a byte inside the file's data
  {
    std::ofstream f(broken + "/" + built->blob_id, std::ios::binary);
    f.write(reinterpret_cast<const char*>(blob.data()), std::streamsize(blob.size()));
  }
  auto boot = built->bootstrap;
  {
    std::ofstream f(dir_.file("truncated.boot"), std::ios::binary);
    f.write(reinterpret_cast<const char*>(boot.data()), std::streamsize(boot.size() / 3));
  }
  start();
  auto bad = mount("/t", dir_.file("truncated.boot"), v2_config(blobs, true));
  EXPECT_EQ(bad.status, 500u);
  EXPECT_NE(Json::parse(bad.body)["message"].get<std::string>().find("RAFS failed to handle request"), std::string::npos)
      << bad.body;
  EXPECT_EQ(mount("/none", dir_.file("missing.boot"), v2_config(blobs, true)).status, 500u);

  // A missing blob: the mount works (metadata), the read fails with EIO and an event.
  ASSERT_EQ(mount("/noblob", dir_.file("img.boot"), v2_config(empty, true)).status, 204u);
  EXPECT_TRUE(stdfs::exists(mnt_ + "/noblob/data"));
  int fd = ::open((mnt_ + "/noblob/data").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[4096];
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EIO);
  ::close(fd);
  auto ev = events();
  ASSERT_GE(ev["total_errors"].get<int>(), 1) << ev.dump();
  std::string first = ev["errors"][0].dump();
  EXPECT_NE(first.find("/noblob"), std::string::npos) << first;
  EXPECT_NE(first.find(built->blob_id), std::string::npos) << first;

  // A corrupt chunk with validation on: EIO for the damaged range, the rest reads.
  ASSERT_EQ(mount("/corrupt", dir_.file("img.boot"), v2_config(broken, true)).status, 204u);
  fd = ::open((mnt_ + "/corrupt/data").c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) fd = ::open((mnt_ + "/corrupt/data").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<char> whole(built->blob.size());
  EXPECT_EQ(::pread(fd, whole.data(), whole.size(), 0), -1);
  EXPECT_EQ(errno, EIO);
  ::close(fd);
  ev = events();
  EXPECT_NE(ev.dump().find("digest"), std::string::npos) << ev.dump();
  // The daemon is still there and serving.
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/daemon").body)["state"], "RUNNING");
}

}  // namespace
}  // namespace nydus::testutil
