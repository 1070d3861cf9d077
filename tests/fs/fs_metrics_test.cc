// FsMetrics: buckets, counting rules (§10 #26), snapshots of §4.3–§4.5
// (their JSON: tests/daemon/metrics_json_test.cc).
#include "nydus/fs/fs_metrics.h"

#include <gtest/gtest.h>

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

TEST(FsMetrics, GlobalCountingRules) {
  FsMetrics m("/snap", {});
  m.record(Fop::kLookup, 2, true);
  m.record(Fop::kLookup, 2, false);
  m.record_read(2, 4096, true, 100, 300us);
  m.record_read(2, 4096, false, 0, 300us);  // failed reads: an error, nothing else
  m.opened();
  const FsMetricsSnapshot s = m.snapshot();
  EXPECT_EQ(s.id, "/snap");
  EXPECT_FALSE(s.options.files);
  EXPECT_EQ(s.nr_opens, 1u);
  EXPECT_EQ(s.data_read, 100u);
  EXPECT_EQ(s.fop_hits[9], 1u);
  EXPECT_EQ(s.fop_errors[9], 1u);
  EXPECT_EQ(s.fop_hits[4], 1u);
  EXPECT_EQ(s.fop_errors[4], 1u);
  EXPECT_EQ(s.block_count_read, (std::array<std::uint64_t, kBucketCount>{0, 0, 1, 0, 0, 0, 0, 0}));
  EXPECT_EQ(s.read_latency_dist, (std::array<std::uint64_t, kBucketCount>{0, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(s.fop_cumulative_latency[4], 300u);
  EXPECT_TRUE(m.files().empty());
  EXPECT_TRUE(m.take_latest_read_files().empty());
  EXPECT_TRUE(m.access_patterns().empty());
}

TEST(FsMetrics, NrOpensNeverBelowZero) {
  FsMetrics m("/", {});
  m.released();
  EXPECT_EQ(m.snapshot().nr_opens, 0u);
  m.opened();
  EXPECT_EQ(m.snapshot().nr_opens, 0u);  // the stray release is still owed
}

TEST(FsMetrics, OptionalMaps) {
  FsMetrics m("/", {true, true, true});
  for (std::uint64_t ino : {1, 2, 3, 5, 7, 8}) {
    m.file_seen(ino);
    m.record_read(ino, 10, true, 10, 1us);
  }
  m.record(Fop::kGetattr, 5, false);
  m.record(Fop::kGetattr, 99, true);  // never seen: global only
  EXPECT_EQ(m.take_latest_read_files(), (std::vector<std::uint64_t>{1, 2, 3, 5, 7, 8}));
  EXPECT_TRUE(m.take_latest_read_files().empty());
  auto f = m.files();
  ASSERT_EQ(f.size(), 6u);
  std::vector<std::uint64_t> inos;
  for (const auto& e : f) inos.push_back(e.ino);
  EXPECT_EQ(inos, (std::vector<std::uint64_t>{1, 2, 3, 5, 7, 8}));  // ascending
  EXPECT_EQ(f[3].ino, 5u);
  EXPECT_EQ(f[3].total_fops, 2u);
  EXPECT_EQ(f[3].fop_errors[0], 1u);
  EXPECT_EQ(f[3].data_read, 10u);
  auto p = m.access_patterns();
  ASSERT_EQ(p.size(), 6u);
  EXPECT_EQ(p[0].ino, 1u);
  EXPECT_EQ(p[0].nr_read, 1u);
  EXPECT_GT(p[0].first_access_secs, 1600000000u);
}

}  // namespace
}  // namespace nydus::fs
