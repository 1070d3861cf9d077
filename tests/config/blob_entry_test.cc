// Blob-cache entry configuration (§3.3.1) and prepare_configuration_info (§3.3.2).
#include "nydus/config/blob_entry.h"

#include <gtest/gtest.h>

#include "util/config_data.h"

namespace nydus::config {
namespace {

using testutil::read_config_data;

// What the API layer does with a BlobCacheEntry body: decode `config_v2` and
// `config` with its own Decoder. A decode error is 400 ParseBody.
struct Entry {
  std::optional<BlobCacheEntryConfigV2> v2;
  std::optional<BlobCacheEntryConfig> legacy;
};

tl::expected<Entry, json::Error> decode_entry(std::string_view body) {
  auto doc = json::Document::parse(body);
  if (!doc) return tl::unexpected(doc.error());
  json::Decoder d(*doc);
  Entry e;
  if (auto o = d.root_object("struct BlobCacheEntry")) decode_entry_configs(*o, e.legacy, e.v2);
  if (!d.ok()) return tl::unexpected(d.error());
  return e;
}

// prepare's error text for a body that decodes; "" when prepare succeeds.
std::string prepare_error(std::string_view body) {
  auto e = decode_entry(body);
  EXPECT_TRUE(e) << e.error().to_debug();
  if (!e) return "decode failed";
  auto r = prepare_blob_entry_config(e->v2, e->legacy);
  if (r) return "";
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  return r.error().message();
}

TEST(BlobEntryTest, SnapshotterFscacheEntry) {
  auto e = decode_entry(read_config_data("snapshotter_fscache_entry.json"));
  ASSERT_TRUE(e) << e.error().to_debug();
  ASSERT_TRUE(e->legacy);
  EXPECT_FALSE(e->v2);
  auto c = prepare_blob_entry_config(e->v2, e->legacy);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->version, 2u);
  EXPECT_EQ(c->id, "0a1b2c3d");
  EXPECT_EQ(c->metadata_path, "/var/lib/containerd-nydus/snapshots/12/fs/image/image.boot");
  EXPECT_EQ(c->backend.type, "registry");
  const RegistryConfig& r = *c->backend.registry;
  EXPECT_EQ(r.host, "index.docker.io");
  EXPECT_EQ(r.repo, "library/nginx");
  EXPECT_EQ(r.registry_token, "eyJhbGciOi.token");
  EXPECT_FALSE(r.proxy.fallback);
  EXPECT_EQ(r.retry_limit, 2);
  EXPECT_EQ(c->cache, (CacheConfigV2{.type = "fscache",
                                     .prefetch = PrefetchConfigV2{.prefetch_all = true},
                                     .fscache = FsCacheConfig{"/var/lib/containerd-nydus/cache"}}));
}

TEST(BlobEntryTest, LegacyPrefetchConfigMapping) {
  auto e = decode_entry(
      R"({"config":{"backend_type":"localfs","backend_config":{"dir":"/d"},"cache_type":"blobcache",)"
      R"("cache_config":{"work_dir":"/w"},"prefetch_config":{"enable":true,"threads_count":4,"merging_size":65536,)"
      R"("bandwidth_rate":10,"prefetch_all":false}}})");
  ASSERT_TRUE(e) << e.error().to_debug();
  EXPECT_EQ(e->legacy->prefetch_config, (BlobPrefetchConfig{true, 4, 65536, 10}));
  auto c = prepare_blob_entry_config(std::nullopt, e->legacy);
  ASSERT_TRUE(c) << c.error().message();
  // prefetch_all is forced on whatever the body says.
  EXPECT_EQ(c->cache.prefetch, (PrefetchConfigV2{true, 4, 65536, 10, true, false}));
  EXPECT_FALSE(c->cache.compressed);
  EXPECT_FALSE(c->cache.validate);
  EXPECT_EQ(c->cache.filecache->work_dir, "/w");
  EXPECT_FALSE(c->metadata_path);
}

// The observed cases of §3.3.2.
TEST(BlobEntryTest, ObservedBadRequests) {
  EXPECT_EQ(prepare_error(R"({"config":{"backend_type":"localfs","backend_config":{},"cache_type":"",)"
                          R"("cache_config":null}})"),
            "config.backend_config.dir: required when blob_file is empty");
  EXPECT_EQ(prepare_error(R"({"config":{"backend_type":"localfs","backend_config":{"dir":"/d"},)"
                          R"("cache_type":"dummycache","cache_config":{}}})"),
            "config.cache_type: unsupported cache type `dummycache` in a legacy configuration (expected "
            "blobcache, filecache, fscache or empty; dummycache is accepted only in ConfigV2)");
  EXPECT_EQ(prepare_error(R"({"config_v2":{"version":2,"backend":{"type":"localfs","localfs":{"dir":"/d"}},)"
                          R"("cache":{"type":"fscache","fscache":{"work_dir":"/w"},)"
                          R"("prefetch":{"enable":true,"threads":0}}}})"),
            "config_v2.cache.prefetch.threads: must be between 1 and 1024 when prefetch is enabled, got 0");
}

TEST(BlobEntryTest, IncompletePrefetchConfigIsAParseError) {
  auto e = decode_entry(R"({"config":{"backend_type":"localfs","backend_config":{"dir":"/d"},"cache_type":"",)"
                        R"("cache_config":{},"prefetch_config":{"enable":true}}})");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().to_debug(), "Error(\"missing field `threads_count`\", line: 1, column: 133)");
  EXPECT_EQ(e.error().path, "/config/prefetch_config");

  auto null_prefetch = decode_entry(R"({"config":{"backend_type":"localfs","backend_config":{},"cache_type":"",)"
                                    R"("cache_config":{},"prefetch_config":null}})");
  ASSERT_FALSE(null_prefetch);
  EXPECT_EQ(null_prefetch.error().reason, "invalid type: null, expected struct BlobPrefetchConfig");

  auto missing = decode_entry(R"({"config":{"backend_type":"localfs","backend_config":{},"cache_type":""}})");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().reason, "missing field `cache_config`");
}

TEST(BlobEntryTest, ConfigV2WinsOverLegacy) {
  // The legacy object would fail conversion; it is ignored completely.
  EXPECT_EQ(prepare_error(R"({"config_v2":{"version":3,"backend":{"type":"localfs","localfs":{"dir":"/d"}}},)"
                          R"("config":{"backend_type":"ftp","backend_config":null,"cache_type":"x",)"
                          R"("cache_config":null}})"),
            "");
}

TEST(BlobEntryTest, NoConfigurationAtAll) {
  EXPECT_EQ(prepare_error(R"({"type":"bootstrap","id":"x"})"),
            "no configuration: neither `config_v2` nor `config` given");
  EXPECT_EQ(prepare_error(R"({"config_v2":null,"config":null})"),
            "no configuration: neither `config_v2` nor `config` given");
}

TEST(BlobEntryTest, ConfigV2DefaultsFailValidation) {
  // backend defaults to {type:""}: invalid; cache {type:""}: valid. Cache is checked first.
  EXPECT_EQ(prepare_error(R"({"config_v2":{"version":2}})"),
            "config_v2.backend.type: must not be empty (expected one of localfs, localdisk, oss, s3, registry, "
            "http-proxy)");
  EXPECT_EQ(prepare_error(R"({"config_v2":{"version":2,"cache":{"type":"fscache"},"backend":{"type":"oss",)"
                          R"("oss":{"endpoint":"","bucket_name":"b"}}}})"),
            "config_v2.cache.fscache: section required when type is `fscache`; "
            "config_v2.backend.oss.endpoint: must not be empty");
}

TEST(BlobEntryTest, LegacyConversionErrorsNameBodyKeys) {
  EXPECT_EQ(prepare_error(R"({"config":{"backend_type":"ftp","backend_config":{},"cache_type":"",)"
                          R"("cache_config":null}})"),
            "config.backend_type: unsupported backend type `ftp` in a legacy configuration (expected one of "
            "localfs, oss, s3, registry, localdisk)");
  EXPECT_EQ(prepare_error(R"({"config":{"backend_type":"registry","backend_config":{"repo":"r"},)"
                          R"("cache_type":"","cache_config":null}})"),
            "config.backend_config: missing field `host`");
  EXPECT_EQ(prepare_error(R"({"config":{"backend_type":"oss","backend_config":{"endpoint":"e",)"
                          R"("bucket_name":"b","timeout":"5"},"cache_type":"","cache_config":null}})"),
            "config.backend_config.timeout: invalid type: string \"5\", expected u32");
  EXPECT_EQ(prepare_error(R"({"config":{"backend_type":"localfs","backend_config":{"dir":"/d"},)"
                          R"("cache_type":"fscache","cache_config":null}})"),
            "config.cache_config: invalid type: null, expected struct FsCacheConfig");
  EXPECT_EQ(prepare_error(R"({"config":{"backend_type":"localfs","backend_config":{"dir":"/d"},)"
                          R"("cache_type":"fscache","cache_config":{"work_dir":""},)"
                          R"("prefetch_config":{"enable":true,"threads_count":0,"merging_size":0,)"
                          R"("bandwidth_rate":0}}})"),
            "config.cache_config.work_dir: must not be empty; "
            "config.prefetch_config.threads_count: must be between 1 and 1024 when prefetch is enabled, got 0");
}

TEST(BlobEntryTest, StructConversionAndValidation) {
  BlobCacheEntryConfig legacy{.id = "b1",
                              .backend_type = "localdisk",
                              .backend_config = json::Value({{"device_path", "/dev/sdb"}}),
                              .cache_type = "",
                              .cache_config = json::Value(),
                              .prefetch_config = {},
                              .metadata_path = "/m"};
  auto c = to_config_v2(legacy);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->backend.localdisk->device_path, "/dev/sdb");
  EXPECT_EQ(c->cache.type, "");
  EXPECT_TRUE(validate_blob_entry(*c).empty());
  c->backend.localdisk->device_path.clear();
  EXPECT_EQ(render(validate_blob_entry(*c)), "backend.localdisk.device_path: must not be empty");
}

}  // namespace
}  // namespace nydus::config
