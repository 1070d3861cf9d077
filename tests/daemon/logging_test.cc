// Log file set-up: plain appending, and size-based rotation with a bounded
// number of old files (nydusd --log-rotation-size).
#include "nydus/daemon/logging.h"

#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "util/raw_client.h"

namespace nydus::daemon {
namespace {

namespace stdfs = std::filesystem;

class LoggingTest : public ::testing::Test {
 protected:
  // Back to stderr, so that the log files are closed before dir_ goes.
  void TearDown() override { ASSERT_TRUE(setup_logging(spdlog::level::info, "")); }

  // `n` log lines of about 100 bytes each, flushed.
  static void write_lines(int n) {
    for (int i = 0; i < n; ++i) spdlog::info("line {:04} {}", i, std::string(80, 'x'));
    spdlog::default_logger()->flush();
  }
  std::string log(std::string_view name) const { return dir_.file(name); }

  testutil::TempDir dir_;
};

TEST_F(LoggingTest, RotatesPastTheSizeAndKeepsABoundedNumberOfOldFiles) {
  ASSERT_TRUE(setup_logging(spdlog::level::info, log("nydusd.log"), 1024));
  write_lines(200);  // ~20 KiB: about 20 rotations
  ASSERT_TRUE(stdfs::exists(log("nydusd.log")));
  EXPECT_LE(stdfs::file_size(log("nydusd.log")), 1024u);
  for (std::size_t i = 1; i <= kLogFilesKept; ++i) {
    std::string old = log("nydusd." + std::to_string(i) + ".log");
    ASSERT_TRUE(stdfs::exists(old)) << old;
    EXPECT_LE(stdfs::file_size(old), 1024u) << old;
    EXPECT_GT(stdfs::file_size(old), 512u) << old;
  }
  EXPECT_FALSE(stdfs::exists(log("nydusd." + std::to_string(kLogFilesKept + 1) + ".log")));
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : stdfs::directory_iterator(dir_.path())) ++files;
  EXPECT_EQ(files, kLogFilesKept + 1);
}

TEST_F(LoggingTest, ZeroNeverRotates) {
  ASSERT_TRUE(setup_logging(spdlog::level::info, log("nydusd.log"), 0));
  write_lines(200);
  EXPECT_GT(stdfs::file_size(log("nydusd.log")), 16u * 1024);
  EXPECT_FALSE(stdfs::exists(log("nydusd.1.log")));
}

// Set up twice in one process (a test, or a future re-open on SIGHUP): the
// second call must not fail on the logger name the first one used.
TEST_F(LoggingTest, SetUpTwice) {
  ASSERT_TRUE(setup_logging(spdlog::level::info, log("a.log")));
  ASSERT_TRUE(setup_logging(spdlog::level::info, log("b.log"), 4096));
  write_lines(1);
  EXPECT_GT(stdfs::file_size(log("b.log")), 0u);
}

}  // namespace
}  // namespace nydus::daemon
