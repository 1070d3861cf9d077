// End-to-end: the on-disk blob cache through nydusd (docs/blobcache.md). The
// upstream sample image mounted with the snapshotter's legacy configuration
// (`cache.type: blobcache`) is read once; then, with the blobs gone from the
// backend, mounted again from the same work_dir and read completely. The
// chunk_map is checked by byte arithmetic against registry-and-cache.md §3.
//
// Needs root and /dev/fuse (SKIP otherwise).
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nydus/storage/digest.h"
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

std::string legacy_config(const std::string& blob_dir, const std::string& work_dir, bool compressed = false) {
  return Json{{"device",
               {{"backend", {{"type", "localfs"}, {"config", {{"dir", blob_dir}}}}},
                {"cache", {{"type", "blobcache"}, {"compressed", compressed}, {"config", {{"work_dir", work_dir}}}}}}},
              {"mode", "direct"},
              {"digest_validate", true},
              {"fs_prefetch", {{"enable", false}}}}
      .dump();
}

class BlobCacheE2eTest : public NydusdFuseFixture {
 protected:
  HttpReply mount(const std::string& mp, const std::string& config) {
    std::string body = Json{{"source", kFixture + "/rafs-v6-2.2.boot"}, {"fs_type", "rafs"}, {"config", config}}.dump();
    return call("POST", "/api/v1/mount?mountpoint=" + mp, body);
  }
  void expect_sample_files(const std::string& mp) {
    EXPECT_EQ(sha256_of(slurp(mnt_ + mp + "/lib.rs")), "1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69");
    EXPECT_EQ(sha256_of(slurp(mnt_ + mp + "/sync_io.rs")),
              "e629ab260ff0dc02a24648a3e0dd8c13a5daf233d535c330e3201925f5eeff96");
  }
};

std::uint32_t le32(const std::string& b, std::size_t off) {
  auto u = [&](std::size_t i) { return std::uint32_t(std::uint8_t(b[off + i])); };
  return u(0) | u(1) << 8 | u(2) << 16 | u(3) << 24;
}

TEST_F(BlobCacheE2eTest, ReadOnceThenMountedAgainWithoutTheBackend) {
  if (::access((kFixture + "/rafs-v6-2.2.boot").c_str(), R_OK) != 0) GTEST_SKIP() << "sample image absent: " << kFixture;
  start();
  const std::string work = dir_.file("cache"), empty = dir_.file("no-blobs");
  stdfs::create_directories(work);
  stdfs::create_directories(empty);
  auto r = mount("/first", legacy_config(kFixture + "/blobs", work));
  ASSERT_EQ(r.status, 204u) << r.body;
  expect_sample_files("/first");
  ASSERT_EQ(call("DELETE", "/api/v1/mount?mountpoint=/first").status, 204u);

  // Upstream's files, named by blob id.
  const std::string map = slurp(work + "/" + kSampleBlob + ".blob.data.chunk_map");
  ASSERT_GT(map.size(), 4096u);
  EXPECT_EQ(le32(map, 0), 0x424D4150u);
  EXPECT_EQ(le32(map, 4), 1u);
  EXPECT_EQ(le32(map, 8), 0x434D4150u);
  std::size_t bits = 0;
  for (std::size_t i = 4096; i < map.size(); ++i) bits += std::size_t(__builtin_popcount(std::uint8_t(map[i])));
  EXPECT_GE(bits, 1u);
  EXPECT_TRUE(stdfs::is_regular_file(work + "/" + kSampleBlob + ".blob.data"));

  r = mount("/second", legacy_config(empty, work));
  ASSERT_EQ(r.status, 204u) << r.body;
  expect_sample_files("/second");
  auto be = Json::parse(call("GET", "/api/v1/metrics/backend?id=/second").body);
  EXPECT_EQ(be["read_count"], 0) << be.dump();
  auto bc = call("GET", "/api/v1/metrics/blobcache?id=/second");
  ASSERT_EQ(bc.status, 200u) << bc.body;
  auto m = Json::parse(bc.body);
  for (const char* k : {"underlying_files", "store_path", "partial_hits", "whole_hits", "total", "entries_count",
                        "prefetch_data_amount", "prefetch_requests_count", "prefetch_workers",
                        "prefetch_unmerged_chunks", "prefetch_cumulative_time_millis", "prefetch_begin_time_secs",
                        "prefetch_begin_time_millis", "prefetch_end_time_secs", "prefetch_end_time_millis",
                        "buffered_backend_size", "data_all_ready"}) {
    EXPECT_TRUE(m.contains(k)) << k << " missing from " << bc.body;
  }
  EXPECT_FALSE(m.contains("id"));  // §4.7: upstream emits none
  EXPECT_EQ(m["store_path"], work);
  EXPECT_EQ(m["underlying_files"], Json::array({work + "/" + kSampleBlob + ".blob.data"}));
  EXPECT_GE(m["total"].get<std::uint64_t>(), 1u);
  EXPECT_EQ(m["whole_hits"], m["total"]) << "every chunk came from the cache";
  EXPECT_EQ(m["entries_count"], 1);
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/daemon/events").body)["total_errors"], 0);
  EXPECT_EQ(call("DELETE", "/api/v1/mount?mountpoint=/second").status, 204u);
}

// `cache.compressed`: the chunks as stored, in `<blob_id>.blob.raw`; the same
// round trip, served from it with the backend gone.
TEST_F(BlobCacheE2eTest, CompressedCacheServesTheImageWithoutTheBackend) {
  if (::access((kFixture + "/rafs-v6-2.2.boot").c_str(), R_OK) != 0) GTEST_SKIP() << "sample image absent: " << kFixture;
  start();
  const std::string work = dir_.file("cache"), empty = dir_.file("no-blobs");
  stdfs::create_directories(work);
  stdfs::create_directories(empty);
  auto r = mount("/first", legacy_config(kFixture + "/blobs", work, /*compressed=*/true));
  ASSERT_EQ(r.status, 204u) << r.body;
  expect_sample_files("/first");
  ASSERT_EQ(call("DELETE", "/api/v1/mount?mountpoint=/first").status, 204u);
  // Upstream's size: the chunk data before the 2.2 blob's tar header and CI array
  // (rafs-format.md 1.12), or upstream nydusd refuses the file.
  EXPECT_EQ(stdfs::file_size(work + "/" + kSampleBlob + ".blob.raw"), 7802u);
  EXPECT_TRUE(stdfs::is_regular_file(work + "/" + kSampleBlob + ".blob.data.chunk_map"));
  EXPECT_FALSE(stdfs::exists(work + "/" + kSampleBlob + ".blob.data"));

  r = mount("/second", legacy_config(empty, work, /*compressed=*/true));
  ASSERT_EQ(r.status, 204u) << r.body;
  expect_sample_files("/second");
  auto be = Json::parse(call("GET", "/api/v1/metrics/backend?id=/second").body);
  EXPECT_EQ(be["read_count"], 0) << be.dump();
  auto bc = call("GET", "/api/v1/metrics/blobcache?id=/second");
  ASSERT_EQ(bc.status, 200u) << bc.body;
  auto m = Json::parse(bc.body);
  EXPECT_EQ(m["underlying_files"], Json::array({work + "/" + kSampleBlob + ".blob.raw"}));
  EXPECT_EQ(m["whole_hits"], m["total"]) << "every chunk came from the cache";
  EXPECT_EQ(Json::parse(call("GET", "/api/v1/daemon/events").body)["total_errors"], 0);
  EXPECT_EQ(call("DELETE", "/api/v1/mount?mountpoint=/second").status, 204u);
}

}  // namespace
}  // namespace nydus::testutil
