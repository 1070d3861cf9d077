// End-to-end: prefetch through nydusd (docs/blobcache.md "Prefetch") with
// the snapshotter's legacy `fs_prefetch` section, localfs and a blob cache:
// prefetch_all fills the cache with no read (data_all_ready), after which
// every file reads correctly with no backend read; an unmount during a
// throttled prefetch returns and leaves no thread behind; --prefetch-files
// fills exactly the listed files' chunks; a bad chunk fails the prefetch of
// its blob once, never the mount or reads of other files; without a blob
// cache prefetch is skipped with a log line.
//
// Needs root and /dev/fuse (SKIP otherwise).
#include <dirent.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <cstring>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nydus/storage/blob_backend.h"
#include "nydus/storage/builder.h"
#include "nydus/storage/image.h"
#include "util/nydusd_fuse_fixture.h"
#include "util/sanitizer.h"
#include "util/wait.h"

namespace nydus::testutil {
namespace {

using Json = nlohmann::json;
namespace stdfs = std::filesystem;

std::size_t threads_of(pid_t pid) {
  std::size_t n = 0;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str())) {
    while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

std::uint64_t u64(const Json& j, const char* key) { return j.value(key, std::uint64_t{0}); }

class PrefetchE2eTest : public NydusdFuseFixture {
 protected:
  void SetUp() override {
    NydusdFuseFixture::SetUp();
    if (IsSkipped()) return;
    src_ = dir_.file("src");
    blobs_ = dir_.file("blobs");
    work_ = dir_.file("cache");
    for (const auto& d : {src_ + "/lib", blobs_, work_}) stdfs::create_directories(d);
    std::mt19937 rng(5);
    for (int i = 0; i < 6; ++i) {
      std::string body(90000 + 10000 * i, '\0');
      for (char& ch : body) ch = char(rng());
      files_["/lib/f" + std::to_string(i)] = body;
    }
    files_["/readme"] = "prefetched\n";
    for (const auto& [name, body] : files_) std::ofstream(src_ + name, std::ios::binary) << body;
    storage::BuildOptions bo;
    bo.chunk_size = 64 << 10;
    auto built = storage::build_image_files(src_, bo, boot(), blobs_);
    ASSERT_TRUE(built) << built.error().message();
    blob_id_ = built->blob_id;
    chunks_ = built->chunks;
  }

  std::string boot() const { return dir_.file("img.boot"); }

  // The snapshotter's stock configuration (registry-and-cache.md §1) over localfs.
  std::string config(const Json& fs_prefetch, bool validate = false) const {
    return Json{{"device",
                 {{"backend", {{"type", "localfs"}, {"config", {{"dir", blobs_}}}}},
                  {"cache", {{"type", "blobcache"}, {"config", {{"work_dir", work_}}}}}}},
                {"mode", "direct"},
                {"digest_validate", validate},
                {"fs_prefetch", fs_prefetch}}
        .dump();
  }
  HttpReply mount(const std::string& mp, const std::string& cfg, const Json& prefetch_files = nullptr) {
    Json body{{"source", boot()}, {"fs_type", "rafs"}, {"config", cfg}};
    if (!prefetch_files.is_null()) body["prefetch_files"] = prefetch_files;
    return call("POST", "/api/v1/mount?mountpoint=" + mp, body.dump());
  }
  Json blobcache(const std::string& id) {
    auto r = call("GET", "/api/v1/metrics/blobcache?id=" + id);
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.status == 200 ? Json::parse(r.body) : Json::object();
  }
  std::uint64_t backend_reads(const std::string& id) {
    return Json::parse(call("GET", "/api/v1/metrics/backend?id=" + id).body)["read_count"].get<std::uint64_t>();
  }
  // Ready chunks, by byte arithmetic on the chunk_map (registry-and-cache.md §3).
  std::set<std::uint32_t> ready_chunks() const {
    const std::string map = slurp(work_ + "/" + blob_id_ + ".blob.data.chunk_map");
    std::set<std::uint32_t> out;
    for (std::uint32_t i = 0; i < chunks_ && 4096 + i / 8 < map.size(); ++i) {
      if (std::uint8_t(map[4096 + i / 8]) & (1u << (7 - i % 8))) out.insert(i);
    }
    return out;
  }
  // Chunk indexes of `names`, from the bootstrap (no backend needed).
  std::set<std::uint32_t> chunks_of(const std::vector<std::string>& names) const {
    auto im = storage::Image::open(boot(), {});
    EXPECT_TRUE(im);
    std::set<std::uint32_t> out;
    for (const auto& name : names) {
      std::uint64_t ino = (*im)->root_ino();
      for (auto part : stdfs::path(name.substr(1))) ino = (*im)->lookup(ino, part.string())->ino;
      std::vector<storage::ChunkRef> refs;
      EXPECT_TRUE((*im)->file_chunks(ino, refs));
      for (const auto& r : refs) out.insert(r.index);
    }
    return out;
  }

  std::string src_, blobs_, work_, blob_id_;
  std::uint64_t chunks_ = 0;
  std::map<std::string, std::string> files_;
};

TEST_F(PrefetchE2eTest, PrefetchAllFillsTheCacheWithoutAReadThenServesEverything) {
  start();
  ASSERT_EQ(mount("/img", config({{"enable", true}, {"threads_count", 4}, {"merging_size", 1048576},
                                  {"prefetch_all", true}}))
                .status,
            204u);
  Json m;
  ASSERT_TRUE(eventually([&] {
    m = blobcache("/img");
    return m.value("data_all_ready", false) && u64(m, "prefetch_end_time_secs") > 0;
  })) << m.dump();
  EXPECT_EQ(m["total"], 0) << "no user read";
  EXPECT_GT(m["prefetch_data_amount"].get<std::uint64_t>(), 0u);
  // Runs of up to merging_size (1 MiB: 16 chunks of 64 KiB), one request each.
  EXPECT_GT(u64(m, "prefetch_requests_count"), 0u);
  EXPECT_LE(u64(m, "prefetch_requests_count"), (chunks_ + 15) / 16 + 1);
  EXPECT_EQ(m["prefetch_unmerged_chunks"], chunks_);
  EXPECT_EQ(m["prefetch_workers"], 0);
  EXPECT_GE(m["prefetch_end_time_secs"].get<std::uint64_t>(), m["prefetch_begin_time_secs"].get<std::uint64_t>());
  EXPECT_EQ(ready_chunks().size(), chunks_);

  stdfs::remove(blobs_ + "/" + blob_id_);
  const std::uint64_t before = backend_reads("/img");
  for (const auto& [name, body] : files_) EXPECT_TRUE(slurp(mnt_ + "/img" + name) == body) << name;
  EXPECT_EQ(backend_reads("/img"), before) << "every chunk came from the cache";
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/daemon/events").body)["total_errors"], 0);
}

TEST_F(PrefetchE2eTest, UmountDuringAThrottledPrefetchReturnsAndLeavesNoThread) {
  start();
  const std::size_t threads = threads_of(daemon_->pid());
  // 1 byte/s: after their first run (an incompressible 64 KiB chunk of the
  // mount's prefetch list) the workers wait for most of a day of tokens.
  ASSERT_EQ(mount("/img",
                  config({{"enable", true}, {"threads_count", 3}, {"merging_size", 65536}, {"bandwidth_rate", 1},
                          {"prefetch_all", false}}),
                  Json::array({"/lib"}))
                .status,
            204u);
  ASSERT_TRUE(eventually([&] { return u64(blobcache("/img"), "prefetch_requests_count") > 0; }));
  EXPECT_EQ(call("DELETE", "/api/v1/mount?mountpoint=/img").status, 204u);
  EXPECT_LT(ready_chunks().size(), chunks_);
  EXPECT_TRUE(eventually([&] { return threads_of(daemon_->pid()) == threads; }))
      << threads_of(daemon_->pid()) << " threads, " << threads << " before the mount";
}

TEST_F(PrefetchE2eTest, PrefetchFilesListFillsOnlyThoseFiles) {
  std::ofstream(dir_.file("list")) << "/lib/f1\n\n  /lib/f4  \n/not/there\n";
  std::ofstream(dir_.file("c.json")) << config({{"enable", true}, {"threads_count", 2}, {"prefetch_all", false}});
  start({"--bootstrap", boot(), "--config", dir_.file("c.json"), "--prefetch-files", dir_.file("list")});
  ASSERT_TRUE(eventually([&] { return u64(blobcache("/"), "prefetch_end_time_secs") > 0; }));
  const auto want = chunks_of({"/lib/f1", "/lib/f4"});
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(ready_chunks(), want);
  Json m = blobcache("/");
  EXPECT_GT(u64(m, "prefetch_requests_count"), 0u);
  EXPECT_LE(u64(m, "prefetch_requests_count"), want.size());
  EXPECT_EQ(m["prefetch_unmerged_chunks"], want.size());
  EXPECT_FALSE(m["data_all_ready"].get<bool>());
  EXPECT_EQ(slurp(mnt_ + "/lib/f1"), files_["/lib/f1"]);
}

TEST_F(PrefetchE2eTest, BadChunkFailsThePrefetchNotTheMountOrOtherReads) {
  // Chunk 0 overwritten in the blob: its digest no longer matches.
  std::string owner;
  for (const auto& [name, body] : files_) {
    if (chunks_of({name}).count(0)) owner = name;
  }
  ASSERT_FALSE(owner.empty());
  config::LocalFsConfig lc;
  lc.dir = blobs_;
  auto local = storage::LocalFsBackend::create(lc);
  ASSERT_TRUE(local);
  storage::ImageOptions io;
  io.backend = std::move(*local);
  auto im = storage::Image::open(boot(), io);
  ASSERT_TRUE(im);
  auto infos = (*im)->blob_chunks(0);
  ASSERT_TRUE(infos);
  {
    std::fstream blob(blobs_ + "/" + blob_id_, std::ios::in | std::ios::out | std::ios::binary);
    blob.seekp(std::streamoff((**infos)[0].compressed_offset));
    blob << std::string(std::min<std::size_t>(64, (**infos)[0].compressed_size), '\x5a');  // chunk 0 only
  }
  start();
  ASSERT_EQ(mount("/img", config({{"enable", true}, {"threads_count", 2}, {"prefetch_all", true}}, true)).status,
            204u);
  ASSERT_TRUE(eventually([&] { return u64(blobcache("/img"), "prefetch_end_time_secs") > 0; }));
  for (const auto& [name, body] : files_) {
    if (name == owner) continue;
    EXPECT_TRUE(slurp(mnt_ + "/img" + name) == body) << name;
  }
  auto events = Json::parse(call("GET", "/api/v1/daemon/events").body);
  std::size_t reports = 0;
  for (const auto& e : events["errors"]) reports += e.get<std::string>().find("prefetch") != std::string::npos;
  EXPECT_EQ(reports, 1u) << events.dump();
}

TEST_F(PrefetchE2eTest, WithoutABlobCachePrefetchIsSkippedWithALogLine) {
  start();
  const std::string v2 = Json{{"version", 2},
                              {"backend", {{"type", "localfs"}, {"localfs", {{"dir", blobs_}}}}},
                              {"cache", {{"type", "dummycache"}}},
                              {"rafs", {{"prefetch", {{"enable", true}, {"prefetch_all", true}}}}}}
                             .dump();
  auto r = mount("/img", v2);
  ASSERT_EQ(r.status, 204u) << r.body;
  EXPECT_EQ(slurp(mnt_ + "/img/readme"), files_["/readme"]);
  EXPECT_EQ(call("GET", "/api/v1/metrics/blobcache?id=/img").status, 404u);
  EXPECT_TRUE(eventually([&] { return daemon_->log().find("/img: prefetch skipped: no blob cache") != std::string::npos; }))
      << daemon_->log();
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/daemon/events").body)["total_errors"], 0);
}


// Prefetch's 1 MiB buffers (a run's compressed bytes, each decoded chunk) are
// freed once the chunk is on disk. glibc serves such sizes from per-thread
// arenas once a free has raised its dynamic mmap threshold, and keeps what
// eight workers freed: RSS grew by tens of MiB and stayed there (74 MiB peak
// for a 1 GiB image, docs/benchmarks.md). nydusd pins the threshold, so those
// buffers go back to the system: what stays is the 16 MiB chunk cache.
TEST_F(PrefetchE2eTest, PrefetchAllGivesItsBuffersBackToTheSystem) {
  if (testutil::kAddressSanitizer) {
    GTEST_SKIP() << "ASan's allocator keeps freed memory in quarantine and ignores mallopt: RSS says nothing here";
  }
  const std::string src = dir_.file("big-src"), blobs = dir_.file("big-blobs");
  stdfs::create_directories(src);
  stdfs::create_directories(blobs);
  std::mt19937_64 rng(11);
  std::string body(96 << 20, '\0');  // incompressible: every run is 1 MiB in, 1 MiB out
  for (std::size_t i = 0; i < body.size(); i += 8) {
    const std::uint64_t r = rng();
    std::memcpy(&body[i], &r, 8);
  }
  std::ofstream(src + "/big", std::ios::binary) << body;
  body = {};
  auto built = storage::build_image_files(src, {}, dir_.file("big.boot"), blobs);
  ASSERT_TRUE(built) << built.error().message();
  start();
  const pid_t pid = daemon_->pid();
  const std::uint64_t before = status_kib(pid, "VmRSS");
  const std::string cfg =
      Json{{"device",
            {{"backend", {{"type", "localfs"}, {"config", {{"dir", blobs}}}}},
             {"cache", {{"type", "blobcache"}, {"config", {{"work_dir", work_}}}}}}},
           {"mode", "direct"},
           {"fs_prefetch", {{"enable", true}, {"threads_count", 8}, {"merging_size", 1 << 20}, {"prefetch_all", true}}}}
          .dump();
  Json body_json{{"source", dir_.file("big.boot")}, {"fs_type", "rafs"}, {"config", cfg}};
  ASSERT_EQ(call("POST", "/api/v1/mount?mountpoint=/big", body_json.dump()).status, 204u);
  ASSERT_TRUE(eventually([&] {
    Json m = blobcache("/big");
    return m.value("data_all_ready", false) && u64(m, "prefetch_end_time_secs") > 0;
  }));
  const std::uint64_t after = status_kib(pid, "VmRSS");
  // The chunk cache (16 MiB) plus slack for the mount's own tables.
  EXPECT_LE(after, before + (16 << 10) + (8 << 10)) << "VmRSS " << before << " KiB before the mount, " << after
                                                     << " KiB after the prefetch, peak " << status_kib(pid, "VmHWM");
}

}  // namespace
}  // namespace nydus::testutil
