#include "nydus/daemon/prometheus.h"

#include <gtest/gtest.h>

namespace nydus::daemon {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(PrometheusLabelTest, EscapesBackslashQuoteAndNewline) {
  EXPECT_EQ(prometheus_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(prometheus_label_value("/snap-1"), "/snap-1");
  EXPECT_EQ(prometheus_label_value(""), "");
}

TEST(PrometheusRenderTest, MountpointLabelIsEscaped) {
  PrometheusInput in;
  in.instances.push_back({"/we\"ird\\\nmp", R"({"data_read":5})", std::nullopt, std::nullopt, std::nullopt});
  std::string text = render_prometheus(in);
  EXPECT_TRUE(has_line(text, "nydusd_fuse_read_bytes_total{id=\"/we\\\"ird\\\\\\nmp\"} 5")) << text;
}

TEST(PrometheusRenderTest, HistogramIsCumulativeWithSumAndCount) {
  PrometheusInput in;
  in.instances.push_back({"/a",
                          R"({"read_latency_dist":[1,2,0,0,0,0,0,3],
                              "fop_cumulative_latency_total":[0,0,0,0,2500000,0,0,0,0,0,0,0,0,0,0]})",
                          std::nullopt, std::nullopt, std::nullopt});
  std::string text = render_prometheus(in);
  EXPECT_TRUE(has_line(text, "# TYPE nydusd_fuse_read_latency_seconds histogram")) << text;
  EXPECT_TRUE(has_line(text, "nydusd_fuse_read_latency_seconds_bucket{id=\"/a\",le=\"0.0002\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "nydusd_fuse_read_latency_seconds_bucket{id=\"/a\",le=\"0.001\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "nydusd_fuse_read_latency_seconds_bucket{id=\"/a\",le=\"+Inf\"} 6")) << text;
  EXPECT_TRUE(has_line(text, "nydusd_fuse_read_latency_seconds_sum{id=\"/a\"} 2.5")) << text;
  EXPECT_TRUE(has_line(text, "nydusd_fuse_read_latency_seconds_count{id=\"/a\"} 6")) << text;
}

TEST(PrometheusRenderTest, OneHelpAndTypePerFamilyAcrossInstances) {
  PrometheusInput in;
  in.instances.push_back({"/a", R"({"data_read":1})", std::nullopt, std::nullopt, std::nullopt});
  in.instances.push_back({"/b", R"({"data_read":2})", std::nullopt, std::nullopt, std::nullopt});
  std::string text = render_prometheus(in);
  auto first = text.find("# TYPE nydusd_fuse_read_bytes_total counter");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(text.find("# TYPE nydusd_fuse_read_bytes_total", first + 1), std::string::npos);
  EXPECT_TRUE(has_line(text, "nydusd_fuse_read_bytes_total{id=\"/a\"} 1"));
  EXPECT_TRUE(has_line(text, "nydusd_fuse_read_bytes_total{id=\"/b\"} 2"));
}

TEST(PrometheusRenderTest, NothingMadeUpFromMissingOrMalformedJson) {
  PrometheusInput in;
  in.instances.push_back({"/a", "not json", R"({"read_count":"7"})", std::nullopt, std::nullopt});
  std::string text = render_prometheus(in);
  EXPECT_EQ(text.find("nydusd_fuse_read_bytes_total"), std::string::npos) << text;
  EXPECT_EQ(text.find("nydusd_backend_read_requests_total"), std::string::npos) << text;  // a string, not a u64
  EXPECT_EQ(text.find("nydusd_blobcache_"), std::string::npos) << text;
  EXPECT_EQ(text.find("nydusd_process_"), std::string::npos) << text;
}

TEST(PrometheusRenderTest, BlobCacheAndPerFileWhenPresent) {
  PrometheusInput in;
  in.instances.push_back({"/a", "{}", std::nullopt, R"({"whole_hits":4,"total":9,"entries_count":2})",
                          R"({"133":{"data_read":16931,"total_fops":3}})"});
  std::string text = render_prometheus(in);
  EXPECT_TRUE(has_line(text, "nydusd_blobcache_whole_hits_total{id=\"/a\"} 4")) << text;
  EXPECT_TRUE(has_line(text, "nydusd_blobcache_reads_total{id=\"/a\"} 9")) << text;
  EXPECT_TRUE(has_line(text, "nydusd_blobcache_entries{id=\"/a\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "nydusd_file_read_bytes_total{id=\"/a\",ino=\"133\"} 16931")) << text;
}

TEST(PrometheusRenderTest, InflightCountAndOldestAge) {
  PrometheusInput in;
  in.inflight = R"([{"inode":1,"opcode":15,"unique":2,"timestamp_secs":100},null,
                    {"inode":1,"opcode":15,"unique":4,"timestamp_secs":90}])";
  in.now_secs = 130;
  std::string text = render_prometheus(in);
  EXPECT_TRUE(has_line(text, "nydusd_fuse_inflight_requests 2")) << text;
  EXPECT_TRUE(has_line(text, "nydusd_fuse_inflight_oldest_age_seconds 40")) << text;

  in.inflight.reset();
  text = render_prometheus(in);
  EXPECT_TRUE(has_line(text, "nydusd_fuse_inflight_requests 0")) << text;
  EXPECT_TRUE(has_line(text, "nydusd_fuse_inflight_oldest_age_seconds 0")) << text;
}

// Timestamps are u64 seconds: read exactly, not through a double (2^64 - 1
// does not fit back into a u64, and above 2^53 a double loses seconds).
// Found by prometheus_fuzz as a float-cast-overflow.
TEST(PrometheusRenderTest, InflightTimestampsBeyondDoublePrecision) {
  PrometheusInput in;
  in.inflight = R"([{"inode":1,"opcode":15,"unique":2,"timestamp_secs":18446744073709551615}])";
  in.now_secs = 1000;
  std::string text = render_prometheus(in);
  EXPECT_TRUE(has_line(text, "nydusd_fuse_inflight_oldest_age_seconds 0")) << text;  // in the future: no age

  in.inflight = R"([{"inode":1,"opcode":15,"unique":2,"timestamp_secs":9007199254740993}])";
  in.now_secs = 9007199254740994;
  text = render_prometheus(in);
  EXPECT_TRUE(has_line(text, "nydusd_fuse_inflight_oldest_age_seconds 1")) << text;
}

TEST(PrometheusProcessTest, ReadsThisProcess) {
  auto s = read_process_stats();
  ASSERT_TRUE(s.has_value());
  EXPECT_GT(s->resident_bytes, 0u);
  EXPECT_GE(s->open_fds, 3u);  // stdin, stdout, stderr
}

}  // namespace
}  // namespace nydus::daemon
