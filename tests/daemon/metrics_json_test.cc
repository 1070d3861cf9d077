// The §4.3–§4.9 renderers: byte-exact texts from given snapshots, key order
// as upstream's, and the snapshots of real FsMetrics and the sample image
// rendered as the routes answer.
#include "nydus/daemon/metrics_json.h"

#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace nydus::daemon {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> keys_of(const nlohmann::ordered_json& o) {
  std::vector<std::string> keys;
  for (auto it = o.begin(); it != o.end(); ++it) keys.push_back(it.key());
  return keys;
}

TEST(MetricsJson, GlobalIsByteExact) {
  fs::FsMetricsSnapshot m;
  m.id = "/snap";
  m.options.access_pattern = true;
  m.nr_opens = 2;
  m.data_read = 100;
  m.block_count_read[2] = 1;
  m.fop_hits[4] = 3;
  m.fop_errors[9] = 1;
  m.fop_cumulative_latency[4] = 300;
  m.read_latency_dist[1] = 1;
  EXPECT_EQ(global_metrics_json(m),
            R"~({"files_account_enabled":false,"access_pattern_enabled":true,"record_latest_read_files_enabled":false,)~"
            R"~("measure_latency":true,"id":"/snap","nr_opens":2,"data_read":100,"block_count_read":[0,0,1,0,0,0,0,0],)~"
            R"~("fop_hits":[0,0,0,0,3,0,0,0,0,0,0,0,0,0,0],"fop_errors":[0,0,0,0,0,0,0,0,0,1,0,0,0,0,0],)~"
            R"~("fop_cumulative_latency_total":[0,0,0,0,300,0,0,0,0,0,0,0,0,0,0],"read_latency_dist":[0,1,0,0,0,0,0,0]})~");
  m.id = "/bad\xff";  // never thrown on: replaced
  EXPECT_NE(global_metrics_json(m).find(R"("id":"/bad)"), std::string::npos);
}

// What FsMetrics counts, rendered as GET /api/v1/metrics answers it.
TEST(MetricsJson, GlobalKeysInContractOrder) {
  fs::FsMetrics m("/snap", {});
  m.record(fs::Fop::kLookup, 2, true);
  m.record(fs::Fop::kLookup, 2, false);
  m.record_read(2, 4096, true, 100, 300us);
  m.record_read(2, 4096, false, 0, 300us);  // failed reads: an error, nothing else
  m.opened();
  auto o = nlohmann::ordered_json::parse(global_metrics_json(m.snapshot()));
  EXPECT_EQ(keys_of(o), (std::vector<std::string>{"files_account_enabled", "access_pattern_enabled",
                                                  "record_latest_read_files_enabled", "measure_latency", "id",
                                                  "nr_opens", "data_read", "block_count_read", "fop_hits",
                                                  "fop_errors", "fop_cumulative_latency_total", "read_latency_dist"}));
  EXPECT_EQ(o["id"], "/snap");
  EXPECT_EQ(o["nr_opens"], 1);
  EXPECT_EQ(o["data_read"], 100);
  EXPECT_EQ(o["fop_hits"][9], 1);
  EXPECT_EQ(o["fop_errors"][9], 1);
  EXPECT_EQ(o["fop_hits"][4], 1);
  EXPECT_EQ(o["fop_errors"][4], 1);
  EXPECT_EQ(o["block_count_read"], (std::vector<int>{0, 0, 1, 0, 0, 0, 0, 0}));
  EXPECT_EQ(o["read_latency_dist"], (std::vector<int>{0, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(o["fop_cumulative_latency_total"][4], 300);
  EXPECT_EQ(o["fop_hits"].size(), 15u);
  // Disabled optional maps: {} / [] / [].
  EXPECT_EQ(files_metrics_json(m.files()), "{}");
  EXPECT_EQ(latest_read_files_json(m.take_latest_read_files()), "[]");
  EXPECT_EQ(access_patterns_json(m.access_patterns()), "[]");
}

TEST(MetricsJson, OptionalMapsOfFsMetrics) {
  fs::FsMetrics m("/", {true, true, true});
  for (std::uint64_t ino : {1, 2, 3, 5, 7, 8}) {
    m.file_seen(ino);
    m.record_read(ino, 10, true, 10, 1us);
  }
  m.record(fs::Fop::kGetattr, 5, false);
  m.record(fs::Fop::kGetattr, 99, true);  // never seen: global only
  EXPECT_EQ(latest_read_files_json(m.take_latest_read_files()), "[[1,3],[5],[7,8]]");
  EXPECT_EQ(latest_read_files_json(m.take_latest_read_files()), "[]");
  auto f = nlohmann::ordered_json::parse(files_metrics_json(m.files()));
  EXPECT_EQ(keys_of(f), (std::vector<std::string>{"1", "2", "3", "5", "7", "8"}));
  EXPECT_EQ(f["5"]["total_fops"], 2);
  EXPECT_EQ(f["5"]["fop_errors"][0], 1);
  EXPECT_EQ(f["5"]["data_read"], 10);
  EXPECT_EQ(keys_of(f["5"]),
            (std::vector<std::string>{"total_fops", "data_read", "block_count_read", "fop_hits", "fop_errors"}));
  auto p = nlohmann::ordered_json::parse(access_patterns_json(m.access_patterns()));
  ASSERT_EQ(p.size(), 6u);
  EXPECT_EQ(keys_of(p[0]), (std::vector<std::string>{"ino", "nr_read", "first_access_time_secs", "first_access_time_nanos"}));
}

TEST(MetricsJson, FilesPatternsAndLatestAreByteExact) {
  fs::FileMetricsSnapshot f;
  f.ino = 12;
  f.total_fops = 4;
  f.data_read = 4096;
  f.block_count_read[2] = 1;
  f.fop_hits[4] = 1;
  f.fop_errors[0] = 2;
  EXPECT_EQ(files_metrics_json({f}),
            R"~({"12":{"total_fops":4,"data_read":4096,"block_count_read":[0,0,1,0,0,0,0,0],)~"
            R"~("fop_hits":[0,0,0,0,1,0,0,0,0,0,0,0,0,0,0],"fop_errors":[2,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}})~");
  EXPECT_EQ(access_patterns_json({{7, 3, 1764316800, 5}}),
            R"~([{"ino":7,"nr_read":3,"first_access_time_secs":1764316800,"first_access_time_nanos":5}])~");
  EXPECT_EQ(latest_read_files_json({4}), "[[4]]");
  EXPECT_EQ(latest_read_files_json({1, 2, 4, 5, 6, 9}), "[[1,2],[4,6],[9]]");
  EXPECT_EQ(latest_read_files_json({}), "[]");
}

TEST(MetricsJson, BackendIsByteExact) {
  storage::BackendMetricsSnapshot m;
  m.backend_type = "registry";
  m.read_count = 3;
  m.read_errors = 1;
  m.read_amount_total = 1 << 20;
  m.read_cumulative_latency_millis_total = 42;
  m.read_cumulative_latency_millis_dist[7] = 42;
  m.read_count_block_size_dist[7] = 3;
  m.read_latency_sizes_dist[7][2] = 3;
  const std::string zeros = "[0,0,0,0,0,0,0,0]";
  std::string sizes = "[";
  for (int i = 0; i < 7; ++i) sizes += zeros + ",";
  sizes += "[0,0,3,0,0,0,0,0]]";
  EXPECT_EQ(backend_metrics_json(m),
            R"~({"backend_type":"registry","read_count":3,"read_errors":1,"read_amount_total":1048576,)~"
            R"~("read_cumulative_latency_millis_total":42,"read_cumulative_latency_millis_dist":[0,0,0,0,0,0,0,42],)~"
            R"~("read_count_block_size_dist":[0,0,0,0,0,0,0,3],"read_latency_sizes_dist":)~" +
                sizes + "}");
}

TEST(MetricsJson, BackendOfARealBackend) {
  storage::BackendMetrics metrics("localfs");
  metrics.record(4096, 1500, true);
  auto j = nlohmann::ordered_json::parse(backend_metrics_json(metrics.snapshot()));
  EXPECT_EQ(j["backend_type"], "localfs");
  EXPECT_EQ(j["read_count"], 1);
  EXPECT_EQ(j["read_latency_sizes_dist"].size(), 8u);
  EXPECT_EQ(j["read_latency_sizes_dist"][2][0], 1);  // 4 KiB, 1 ms
  EXPECT_FALSE(j.contains("id"));
}

TEST(MetricsJson, BlobcacheIsByteExact) {
  storage::BlobCacheStats s;
  s.enabled = true;
  s.store_path = "/var/lib/nydus/cache";
  s.underlying_files = {"/var/lib/nydus/cache/b1.blob.data"};
  s.total = 10;
  s.whole_hits = 6;
  s.partial_hits = 1;
  s.entries_count = 4;
  s.data_all_ready = true;
  storage::PrefetchStats p;
  p.data_amount = 8192;
  p.requests = 2;
  p.workers = 1;
  p.unmerged_chunks = 1;
  p.cumulative_millis = 30;
  p.begin_millis = 1764316800123;
  p.end_millis = 1764316801004;
  EXPECT_EQ(blobcache_metrics_json(s, p),
            R"~({"underlying_files":["/var/lib/nydus/cache/b1.blob.data"],"store_path":"/var/lib/nydus/cache",)~"
            R"~("partial_hits":1,"whole_hits":6,"total":10,"entries_count":4,"prefetch_data_amount":8192,)~"
            R"~("prefetch_requests_count":2,"prefetch_workers":1,"prefetch_unmerged_chunks":1,)~"
            R"~("prefetch_cumulative_time_millis":30,"prefetch_begin_time_secs":1764316800,)~"
            R"~("prefetch_begin_time_millis":123,"prefetch_end_time_secs":1764316801,"prefetch_end_time_millis":4,)~"
            R"~("buffered_backend_size":0,"data_all_ready":true})~");
}

TEST(MetricsJson, InflightIsByteExact) {
  EXPECT_EQ(inflight_json({{(1ull << 56) | 2, 15, 77, 1764316800}, {1, 1, 78, 1764316801}}),
            R"~([{"inode":72057594037927938,"opcode":15,"unique":77,"timestamp_secs":1764316800},)~"
            R"~({"inode":1,"opcode":1,"unique":78,"timestamp_secs":1764316801}])~");
  EXPECT_EQ(inflight_json({}), "[]");
}

TEST(MetricsJson, SuperBlockIsByteExact) {
  storage::SuperBlockInfo sb;
  sb.magic = 0xE0F5E1E2;
  sb.version = 0x600;
  sb.sb_size = 128;
  sb.root_inode = 36;
  sb.chunk_size = 1 << 20;
  sb.inodes_count = 5;
  sb.flags = 0x194;
  sb.blob_table_size = 256;
  sb.blob_table_offset = 8192;
  sb.prefetch_table_offset = 8448;
  sb.prefetch_table_entries = 2;
  sb.meta_blkaddr = 1;
  sb.root_nid = 36;
  sb.chunk_table_offset = 8456;
  sb.chunk_table_size = 160;
  EXPECT_EQ(super_block_info_json(sb, 1, 4294967296),
            R"~({"magic":3774210530,"version":1536,"sb_size":128,"root_inode":36,"chunk_size":1048576,)~"
            R"~("inodes_count":5,"flags":{"bits":404},"inode_table_entries":0,"inode_table_offset":0,)~"
            R"~("blob_table_size":256,"blob_table_offset":8192,"extended_blob_table_offset":0,)~"
            R"~("extended_blob_table_entries":0,"prefetch_table_offset":8448,"prefetch_table_entries":2,)~"
            R"~("attr_timeout":{"secs":1,"nanos":0},"entry_timeout":{"secs":4294967296,"nanos":0},)~"
            R"~("is_chunk_dict":false,"meta_blkaddr":1,"root_nid":36,"chunk_table_offset":8456,"chunk_table_size":160})~");
}

// The upstream sample image's super block as GET /api/v1/daemon/backend shows it.
TEST(MetricsJson, SuperBlockOfTheSampleImage) {
  const std::string boot = std::string(NYDUS_SOURCE_DIR) + "/../shared/fixtures/rafs-v6/rafs-v6-2.2.boot";
  if (::access(boot.c_str(), R_OK) != 0) GTEST_SKIP() << "sample image absent: " << boot;
  auto im = storage::Image::open(boot, {});
  ASSERT_TRUE(im) << im.error().to_string();
  auto j = nlohmann::ordered_json::parse(super_block_info_json((*im)->super_block_info(), 1, 1));
  EXPECT_EQ(j["version"], 0x600);
  EXPECT_EQ(j["root_nid"], 128);
  EXPECT_EQ(j["flags"]["bits"], 0x194);
  EXPECT_EQ(j["chunk_size"], 1 << 20);
  EXPECT_EQ(j.size(), 22u);  // every §4.9 key
}

}  // namespace
}  // namespace nydus::daemon
