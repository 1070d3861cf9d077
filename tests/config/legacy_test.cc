// Legacy RafsConfig documents and their conversion to ConfigV2 (§7.6, §4.1).
#include "config/legacy.h"

#include <gtest/gtest.h>

#include "nydus/config/parse.h"
#include "util/config_data.h"

namespace nydus::config {
namespace {

using testutil::read_config_data;

std::string error_of(std::string_view text) {
  return testutil::error_of([](std::string_view t) { return parse_legacy_config(t); }, text);
}

// What nydus-snapshotter sends in the mount `config` string (§3.2).
TEST(LegacyTest, SnapshotterFusedevConfig) {
  auto c = parse_config(read_config_data("snapshotter_fusedev.json"));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->version, 2u);
  EXPECT_EQ(c->id, "");
  const RegistryConfig& r = *c->backend->registry;
  EXPECT_EQ(c->backend->type, "registry");
  EXPECT_EQ(r.scheme, "https");
  EXPECT_EQ(r.host, "ghcr.io");
  EXPECT_EQ(r.repo, "dragonflyoss/image-service/nginx");
  EXPECT_EQ(r.auth, "dXNlcjpwYXNzd29yZA==");
  EXPECT_FALSE(r.registry_token);
  EXPECT_TRUE(r.skip_verify);
  EXPECT_EQ(r.retry_limit, 2);
  EXPECT_EQ(r.proxy, (ProxyConfig{"http://127.0.0.1:65001", "http://127.0.0.1:65001/server/ping", true, 5, false,
                                  300, ""}));
  ASSERT_EQ(r.mirrors.size(), 1u);
  EXPECT_EQ(r.mirrors[0], (MirrorConfig{"http://127.0.0.1:65001",
                                        "http://127.0.0.1:65001/server/ping",
                                        {{"X-Dragonfly-Registry", "https://ghcr.io"}},
                                        false,
                                        5,
                                        5}));
  EXPECT_FALSE(c->backend->localfs);

  PrefetchConfigV2 prefetch{true, 8, 1048576, 0, true, false};
  EXPECT_EQ(*c->cache, (CacheConfigV2{"blobcache", false, false, prefetch,
                                      FileCacheConfig{"/var/lib/containerd-nydus/cache", false, false, false, ""},
                                      std::nullopt}));
  EXPECT_EQ(*c->rafs, (RafsConfigV2{"direct", 1048576, false, true, false, false, false, prefetch}));
  EXPECT_TRUE(c->external_backends.empty());
  EXPECT_FALSE(c->overlay);
}

// The instance behind the observed DaemonInfo example of §4.1.
TEST(LegacyTest, ObservedRegistryBlobcacheExample) {
  auto c = parse_legacy_config(
      R"({"device":{"backend":{"type":"registry","config":{"host":"h","repo":"r"}},)"
      R"("cache":{"type":"blobcache","config":{"work_dir":"/c"}}},"mode":"direct"})");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->backend->registry->proxy, ProxyConfig{});
  // Legacy blob prefetch: disabled, all zero, prefetch_all forced on (observed).
  EXPECT_EQ(c->cache->prefetch, (PrefetchConfigV2{false, 0, 0, 0, true, false}));
  EXPECT_EQ(c->cache->filecache->work_dir, "/c");
  // fs_prefetch absent: all zero, prefetch_all false.
  EXPECT_EQ(c->rafs->prefetch, PrefetchConfigV2{});
  EXPECT_EQ(c->rafs->batch_size, 1048576u);  // amplify_io absent: HEAD default
}

TEST(LegacyTest, ContractConversionExample) {
  auto c = parse_config(
      R"({"device":{"backend":{"type":"localfs","config":{"dir":"/d"}},"cache":{"type":"fscache","config":)"
      R"({"work_dir":"/w"}}},"mode":"direct","amplify_io":0,"fs_prefetch":{"enable":true,"threads_count":3,)"
      R"("merging_size":4096,"bandwidth_rate":100,"prefetch_all":false}})");
  ASSERT_TRUE(c) << c.error().message();
  PrefetchConfigV2 expected{true, 3, 4096, 100, false, false};
  EXPECT_EQ(c->rafs->batch_size, 0u);
  EXPECT_EQ(c->rafs->prefetch, expected);
  EXPECT_EQ(c->cache->prefetch, expected);
  EXPECT_EQ(c->cache->type, "fscache");
  EXPECT_EQ(c->cache->fscache->work_dir, "/w");
  EXPECT_FALSE(c->cache->filecache);
  EXPECT_EQ(c->backend->localfs->dir, "/d");
}

TEST(LegacyTest, FsPrefetchFieldDefaults) {
  auto c = parse_legacy_config(
      R"({"device":{"id":"/snap-1","backend":{"type":"localfs","config":{"blob_file":"/b"}}},"mode":"cached",)"
      R"("digest_validate":true,"iostats_files":true,"access_pattern":true,"latest_read_files":true,)"
      R"("fs_prefetch":{"enable":true}})");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->id, "/snap-1");
  EXPECT_EQ(c->rafs->prefetch, (PrefetchConfigV2{true, 8, 1048576, 0, true, false}));
  EXPECT_EQ(*c->rafs, (RafsConfigV2{"cached", 1048576, true, false, true, true, true, c->rafs->prefetch}));
  // No cache section -> cache type "" with no sub-section.
  EXPECT_EQ(c->cache->type, "");
  EXPECT_FALSE(c->cache->filecache);
}

TEST(LegacyTest, BuiltInLocalfsDirConfig) {
  auto c = localfs_dir_config("/var/blobs");
  ASSERT_TRUE(c) << c.error().message();
  ConfigV2 expected;
  expected.backend = BackendConfigV2{.type = "localfs", .localfs = LocalFsConfig{.dir = "/var/blobs"}};
  expected.cache = CacheConfigV2{.type = "blobcache",
                                 .prefetch = PrefetchConfigV2{.prefetch_all = true},
                                 .filecache = FileCacheConfig{.work_dir = "/var/blobs"}};
  expected.rafs = RafsConfigV2{.mode = "direct"};
  EXPECT_EQ(*c, expected);

  // The same document as text (§7.6) parses to the same configuration.
  auto text = parse_config(
      R"({"device":{"backend":{"type":"localfs","config":{"dir":"/var/blobs","readahead":true}},)"
      R"("cache":{"type":"blobcache","config":{"compressed":false,"work_dir":"/var/blobs"}}},)"
      R"("mode":"direct","digest_validate":false,"iostats_files":false})");
  ASSERT_TRUE(text) << text.error().message();
  EXPECT_EQ(*text, expected);

  auto empty = localfs_dir_config("");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message(),
            "device.backend.config.dir: required when blob_file is empty; "
            "device.cache.config.work_dir: must not be empty");
}

TEST(LegacyTest, ConversionErrorsNameTheLegacyKey) {
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"localfs","config":{"dir":"/d"}},)"
                     R"("cache":{"type":"dummycache"}},"mode":"direct"})"),
            "device.cache.type: unsupported cache type `dummycache` in a legacy configuration (expected blobcache, "
            "filecache, fscache or empty; dummycache is accepted only in ConfigV2) at line 1 column 90");
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"http-proxy","config":{"addr":"http://x"}}},"mode":"direct"})"),
            "device.backend.type: unsupported backend type `http-proxy` in a legacy configuration (expected one of "
            "localfs, oss, s3, registry, localdisk) at line 1 column 41");
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"registry","config":{"host":"h"}}},"mode":"direct"})"),
            "device.backend.config: missing field `repo` at line 1 column 61");
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"oss","config":[]}},"mode":"direct"})"),
            "device.backend.config: invalid type: sequence, expected struct OssConfig at line 1 column 46");
  // A cache type that needs a section but has no `config` at all.
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"localfs","config":{"dir":"/d"}},)"
                     R"("cache":{"type":"blobcache"}},"mode":"direct"})"),
            "device.cache.config: invalid type: null, expected struct FileCacheConfig");
}

// Issue #11 item 12: the mistyped backend field is the caller's first
// mistake, not the `mode` that is missing after it.
TEST(LegacyTest, AProblemInsideDeviceComesBeforeAMissingKeyAfterIt) {
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"localfs","config":{"dir":5}}}})"),
            "device.backend.config.dir: invalid type: integer `5`, expected a string at line 1 column 57");
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"nope","config":{}}}})"),
            "device.backend.type: unsupported backend type `nope` in a legacy configuration (expected one of "
            "localfs, oss, s3, registry, localdisk) at line 1 column 35");
}

TEST(LegacyTest, DecodeErrors) {
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"localfs","config":{}}}})"),
            "missing field `mode` at line 1 column 53");
  EXPECT_EQ(error_of(R"({"mode":"direct"})"), "missing field `device` at line 1 column 17");
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"localfs"}},"mode":"direct"})"),
            "device.backend: missing field `config` at line 1 column 39");
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"localfs","config":{"dir":"/d"}}},"mode":"direct",)"
                     R"("fs_prefetch":{"threads_count":"8"}})"),
            "fs_prefetch.threads_count: invalid type: string \"8\", expected usize at line 1 column 113");
  EXPECT_EQ(error_of("{"), "invalid JSON: EOF while parsing an object at line 1 column 1");
}

TEST(LegacyTest, ValidationProblemsUseLegacyKeys) {
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"localfs","config":{}}},"mode":"direct"})"),
            "device.backend.config.dir: required when blob_file is empty");
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"registry","config":{"host":"","repo":"r"}}},"mode":"lazy",)"
                     R"("amplify_io":268435457})"),
            "device.backend.config.host: must not be empty; mode: must be `direct` or `cached`, got `lazy`; "
            "amplify_io: must be at most 268435456, got 268435457");
  // cache.prefetch is a copy of rafs.prefetch: reported once.
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"localfs","config":{"dir":"/d"}}},"mode":"direct",)"
                     R"("fs_prefetch":{"enable":true,"threads_count":0,"merging_size":268435457}})"),
            "fs_prefetch.merging_size: must be at most 268435456 when prefetch is enabled, got 268435457; "
            "fs_prefetch.threads_count: must be between 1 and 1024 when prefetch is enabled, got 0");
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"localfs","config":{"dir":"/d"}},"cache":{"type":"fscache",)"
                     R"("config":{"work_dir":""}}},"mode":"direct"})"),
            "device.cache.config.work_dir: must not be empty");
}

TEST(LegacyTest, StructConversionWithoutDocument) {
  RafsConfig legacy;
  legacy.device.backend = LegacyBackendConfig{"s3", json::Value({{"endpoint", ""}, {"region", "r"}})};
  legacy.mode = "direct";
  auto c = to_config_v2(legacy);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.error().message(), "device.backend.config: missing field `bucket_name`");

  legacy.device.backend.config["bucket_name"] = "b";
  legacy.device.cache = LegacyCacheConfig{"filecache", true, json::Value::object()};
  c = to_config_v2(legacy);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->backend->s3->bucket_name, "b");
  EXPECT_TRUE(c->cache->compressed);
  EXPECT_EQ(c->cache->filecache->work_dir, ".");
}

}  // namespace
}  // namespace nydus::config
