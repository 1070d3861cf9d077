// FsMetrics: buckets, JSON shapes of §4.3–§4.5, counting rules (§10 #26).
#include "nydus/fs/fs_metrics.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace nydus::fs {
namespace {

using namespace std::chrono_literals;

TEST(FsMetrics, Buckets) {
  EXPECT_EQ(size_bucket(0), 0u);
  EXPECT_EQ(size_bucket(1023), 0u);
  EXPECT_EQ(size_bucket(1024), 1u);
  EXPECT_EQ(size_bucket(4096), 2u);
  EXPECT_EQ(size_bucket(65535), 3u);
  EXPECT_EQ(size_bucket(65536), 4u);
  EXPECT_EQ(size_bucket(131072), 5u);
  EXPECT_EQ(size_bucket(524288), 6u);
  EXPECT_EQ(size_bucket(1048576), 7u);
  EXPECT_EQ(latency_bucket(200), 0u);
  EXPECT_EQ(latency_bucket(201), 1u);
  EXPECT_EQ(latency_bucket(20000), 2u);
  EXPECT_EQ(latency_bucket(50000), 3u);
  EXPECT_EQ(latency_bucket(500000), 4u);
  EXPECT_EQ(latency_bucket(1000000), 5u);
  EXPECT_EQ(latency_bucket(2000000), 6u);
  EXPECT_EQ(latency_bucket(2000001), 7u);
}

TEST(FsMetrics, GlobalJsonKeysInContractOrder) {
  FsMetrics m("/snap", {});
  m.record(Fop::kLookup, 2, true);
  m.record(Fop::kLookup, 2, false);
  m.record_read(2, 4096, true, 100, 300us);
  m.record_read(2, 4096, false, 0, 300us);  // failed reads: an error, nothing else
  m.opened();
  std::string s = m.global_json();
  std::vector<std::string> keys;
  auto o = nlohmann::ordered_json::parse(s);
  for (auto it = o.begin(); it != o.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"files_account_enabled", "access_pattern_enabled",
                                            "record_latest_read_files_enabled", "measure_latency", "id", "nr_opens",
                                            "data_read", "block_count_read", "fop_hits", "fop_errors",
                                            "fop_cumulative_latency_total", "read_latency_dist"}));
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
  EXPECT_EQ(m.files_json(), "{}");
  EXPECT_EQ(m.take_latest_read_files_json(), "[]");
  EXPECT_EQ(m.access_patterns_json(), "[]");
}

TEST(FsMetrics, OptionalMaps) {
  FsMetrics m("/", {true, true, true});
  for (std::uint64_t ino : {1, 2, 3, 5, 7, 8}) {
    m.file_seen(ino);
    m.record_read(ino, 10, true, 10, 1us);
  }
  m.record(Fop::kGetattr, 5, false);
  m.record(Fop::kGetattr, 99, true);  // never seen: global only
  EXPECT_EQ(m.take_latest_read_files_json(), "[[1,3],[5],[7,8]]");
  EXPECT_EQ(m.take_latest_read_files_json(), "[]");
  auto f = nlohmann::ordered_json::parse(m.files_json());
  EXPECT_EQ(f.size(), 6u);
  EXPECT_EQ(f["5"]["total_fops"], 2);
  EXPECT_EQ(f["5"]["fop_errors"][0], 1);
  EXPECT_EQ(f["5"]["data_read"], 10);
  std::vector<std::string> keys;
  for (auto it = f["5"].begin(); it != f["5"].end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"total_fops", "data_read", "block_count_read", "fop_hits", "fop_errors"}));
  auto p = nlohmann::ordered_json::parse(m.access_patterns_json());
  ASSERT_EQ(p.size(), 6u);
  keys.clear();
  for (auto it = p[0].begin(); it != p[0].end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"ino", "nr_read", "first_access_time_secs", "first_access_time_nanos"}));
}

}  // namespace
}  // namespace nydus::fs
