// Validation rules of §7.2–§7.4: every invalid variant names its key.
#include "nydus/config/validate.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>

#include <gtest/gtest.h>

namespace nydus::config {
namespace {

ConfigV2 valid_config() {
  ConfigV2 c;
  c.backend = BackendConfigV2{.type = "localfs", .localfs = LocalFsConfig{.dir = "/blobs"}};
  c.cache = CacheConfigV2{.type = "blobcache", .filecache = FileCacheConfig{.work_dir = "/cache"}};
  c.rafs = RafsConfigV2{};
  return c;
}

std::string problems_of(const BackendConfigV2& b) { return render(validate_backend(b)); }
std::string problems_of(const CacheConfigV2& c) { return render(validate_cache(c)); }
std::string problems_of(const RafsConfigV2& r) { return render(validate_rafs(r)); }

TEST(ValidateTest, ValidConfigHasNoProblems) {
  EXPECT_TRUE(validate(valid_config()).empty());
  EXPECT_TRUE(validate_for_rafs_mount(valid_config()).empty());
  EXPECT_TRUE(validate(ConfigV2{}).empty());  // no sections: upstream accepts
}

TEST(ValidateTest, VersionMustBeTwo) {
  ConfigV2 c = valid_config();
  c.version = 1;
  EXPECT_EQ(validate(c), (std::vector<Problem>{{"version", "must be 2, got 1"}}));
}

TEST(ValidateTest, BackendTypeAndSection) {
  EXPECT_EQ(problems_of(BackendConfigV2{}),
            "backend.type: must not be empty (expected one of localfs, localdisk, oss, s3, registry, http-proxy)");
  EXPECT_EQ(problems_of(BackendConfigV2{.type = "ftp"}),
            "backend.type: unsupported backend type `ftp` (expected one of localfs, localdisk, oss, s3, registry, "
            "http-proxy)");
  // The section named by type must be present; others do not count.
  EXPECT_EQ(problems_of(BackendConfigV2{.type = "oss", .localfs = LocalFsConfig{.dir = "/d"}}),
            "backend.oss: section required when type is `oss`");
  for (std::string type : {"localfs", "localdisk", "s3", "registry", "http-proxy"}) {
    EXPECT_EQ(problems_of(BackendConfigV2{.type = type}),
              "backend." + type + ": section required when type is `" + type + "`");
  }
}

TEST(ValidateTest, BackendRequiredValues) {
  EXPECT_EQ(problems_of(BackendConfigV2{.type = "localfs", .localfs = LocalFsConfig{}}),
            "backend.localfs.dir: required when blob_file is empty");
  EXPECT_EQ(problems_of(BackendConfigV2{.type = "localfs", .localfs = LocalFsConfig{.blob_file = "/b"}}), "");
  EXPECT_EQ(problems_of(BackendConfigV2{.type = "localdisk", .localdisk = LocalDiskConfig{}}),
            "backend.localdisk.device_path: must not be empty");
  EXPECT_EQ(problems_of(BackendConfigV2{.type = "oss", .oss = OssConfig{}}),
            "backend.oss.endpoint: must not be empty; backend.oss.bucket_name: must not be empty");
  // s3: endpoint may be empty.
  EXPECT_EQ(problems_of(BackendConfigV2{.type = "s3", .s3 = S3Config{}}),
            "backend.s3.region: must not be empty; backend.s3.bucket_name: must not be empty");
  EXPECT_EQ(problems_of(BackendConfigV2{.type = "s3", .s3 = S3Config{.region = "r", .bucket_name = "b"}}), "");
  EXPECT_EQ(problems_of(BackendConfigV2{.type = "registry", .registry = RegistryConfig{.host = "h"}}),
            "backend.registry.repo: must not be empty");
}

TEST(ValidateTest, HttpProxyAddress) {
  auto with_addr = [](std::string addr) {
    return problems_of(BackendConfigV2{.type = "http-proxy", .http_proxy = HttpProxyConfig{.addr = addr}});
  };
  EXPECT_EQ(with_addr(""), "backend.http-proxy.addr: must not be empty");
  EXPECT_EQ(with_addr("http://127.0.0.1:80"), "");
  EXPECT_EQ(with_addr("https://proxy"), "");
  EXPECT_EQ(with_addr("127.0.0.1:80"),
            "backend.http-proxy.addr: must start with http:// or https://, or be the absolute path of an existing "
            "Unix socket, got `127.0.0.1:80`");
  EXPECT_NE(with_addr("/nonexistent/nydus-test.sock"), "");

  // An existing Unix socket path is accepted.
  std::string path = testing::TempDir() + "nydus-validate-" + std::to_string(::getpid()) + ".sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(with_addr(path), "");
  ::close(fd);
  ::unlink(path.c_str());
}

TEST(ValidateTest, CacheTypes) {
  EXPECT_EQ(problems_of(CacheConfigV2{}), "");
  EXPECT_EQ(problems_of(CacheConfigV2{.type = "dummycache"}), "");
  EXPECT_EQ(problems_of(CacheConfigV2{.type = "blobcache"}),
            "cache.filecache: section required when type is `blobcache`");
  EXPECT_EQ(problems_of(CacheConfigV2{.type = "filecache", .filecache = FileCacheConfig{.work_dir = ""}}),
            "cache.filecache.work_dir: must not be empty");
  EXPECT_EQ(problems_of(CacheConfigV2{.type = "fscache", .filecache = FileCacheConfig{}}),
            "cache.fscache: section required when type is `fscache`");
  EXPECT_EQ(problems_of(CacheConfigV2{.type = "fscache", .fscache = FsCacheConfig{.work_dir = ""}}),
            "cache.fscache.work_dir: must not be empty");
  EXPECT_EQ(problems_of(CacheConfigV2{.type = "memcache"}),
            "cache.type: unsupported cache type `memcache` (expected blobcache, filecache, fscache, dummycache or "
            "empty)");
}

TEST(ValidateTest, PrefetchLimitsApplyOnlyWhenEnabled) {
  CacheConfigV2 c{.prefetch = PrefetchConfigV2{.enable = false, .threads = 0, .batch_size = 1ull << 40}};
  EXPECT_EQ(problems_of(c), "");
  c.prefetch.enable = true;
  EXPECT_EQ(problems_of(c),
            "cache.prefetch.batch_size: must be at most 268435456 when prefetch is enabled, got 1099511627776; "
            "cache.prefetch.threads: must be between 1 and 1024 when prefetch is enabled, got 0");
  c.prefetch = PrefetchConfigV2{.enable = true, .threads = 1025, .batch_size = kMaxBatchSize};
  EXPECT_EQ(problems_of(c), "cache.prefetch.threads: must be between 1 and 1024 when prefetch is enabled, got 1025");
  c.prefetch.threads = 1024;
  EXPECT_EQ(problems_of(c), "");
}

TEST(ValidateTest, RafsRules) {
  EXPECT_EQ(problems_of(RafsConfigV2{}), "");
  EXPECT_EQ(problems_of(RafsConfigV2{.mode = "cached"}), "");
  EXPECT_EQ(problems_of(RafsConfigV2{.mode = "lazy", .batch_size = kMaxBatchSize + 1}),
            "rafs.mode: must be `direct` or `cached`, got `lazy`; "
            "rafs.batch_size: must be at most 268435456, got 268435457");
  EXPECT_EQ(problems_of(RafsConfigV2{.prefetch = PrefetchConfigV2{.enable = true, .threads = 0}}),
            "rafs.prefetch.threads: must be between 1 and 1024 when prefetch is enabled, got 0");
}

TEST(ValidateTest, AllProblemsOfAllSectionsInKeyOrder) {
  ConfigV2 c = valid_config();
  c.version = 3;
  c.backend->localfs->dir.clear();
  c.cache->filecache->work_dir.clear();
  c.rafs->mode = "x";
  EXPECT_EQ(render(validate(c)),
            "version: must be 2, got 3; backend.localfs.dir: required when blob_file is empty; "
            "cache.filecache.work_dir: must not be empty; rafs.mode: must be `direct` or `cached`, got `x`");
}

TEST(ValidateTest, RafsMountNeedsCacheAndRafs) {
  ConfigV2 c = valid_config();
  c.cache.reset();
  c.rafs.reset();
  EXPECT_TRUE(validate(c).empty());
  EXPECT_EQ(render(validate_for_rafs_mount(c)),
            "cache: section required for a RAFS mount; rafs: section required for a RAFS mount");
  c = valid_config();
  c.overlay = OverlayConfig{};
  EXPECT_EQ(render(validate_for_rafs_mount(c)),
            "overlay.upper_dir: must not be empty; overlay.work_dir: must not be empty");
}

TEST(ValidateTest, PrefixAndRendering) {
  EXPECT_EQ(render(validate_cache(CacheConfigV2{.type = "x"}, "")),
            "type: unsupported cache type `x` (expected blobcache, filecache, fscache, dummycache or empty)");
  EXPECT_EQ((Problem{"", "whole"}).to_string(), "whole");
  EXPECT_EQ(render({}), "");
}

}  // namespace
}  // namespace nydus::config
