// Decoding ConfigV2 from JSON: keys, defaults and serde-style errors (§3, §7.2–§7.4).
#include "config/decode.h"

#include <gtest/gtest.h>

#include "nydus/config/parse.h"
#include "util/config_data.h"

namespace nydus::config {
namespace {

using testutil::read_config_data;

Result<ConfigV2> decode_json(std::string_view text) {
  auto doc = json::Document::parse(text);
  if (!doc) return fail(ErrorCode::kInvalidArgument, doc.error().to_key_message());
  return decode_document<ConfigV2>(*doc);
}

std::string error_of(std::string_view text) { return testutil::error_of(decode_json, text); }

TEST(DecodeTest, MinimalDocumentHasNoSections) {
  auto c = decode_json(R"({"version":2})");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(*c, ConfigV2{});
  EXPECT_EQ(c->id, "");
  EXPECT_FALSE(c->backend);
  EXPECT_FALSE(c->cache);
  EXPECT_FALSE(c->rafs);
  EXPECT_FALSE(c->overlay);
  EXPECT_TRUE(c->external_backends.empty());
}

TEST(DecodeTest, EveryBackendTypeWithItsKeys) {
  auto c = decode_json(read_config_data("every_backend.json"));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->id, "every-backend");
  const BackendConfigV2& b = *c->backend;
  EXPECT_EQ(b.type, "registry");
  EXPECT_EQ(*b.localdisk, (LocalDiskConfig{"/dev/vdb", true}));
  EXPECT_EQ(*b.localfs, (LocalFsConfig{"/blobs/one", "/blobs", {"/alt1", "/alt2"}}));

  const OssConfig& oss = *b.oss;
  EXPECT_EQ(oss.scheme, "http");
  EXPECT_EQ(oss.endpoint, "oss-cn-hangzhou.aliyuncs.com");
  EXPECT_EQ(oss.bucket_name, "images");
  EXPECT_EQ(oss.object_prefix, "nydus/");
  EXPECT_EQ(oss.access_key_id, "OSS-AKID-0001");
  EXPECT_EQ(oss.access_key_secret, "OSS-SECRET-0001");
  EXPECT_TRUE(oss.skip_verify);
  EXPECT_EQ(oss.timeout, 10u);
  EXPECT_EQ(oss.connect_timeout, 3u);
  EXPECT_EQ(oss.retry_limit, 4);
  EXPECT_EQ(oss.proxy, (ProxyConfig{"http://proxyuser:proxypass@p.example:8001", "http://p.example:8001/ping", false,
                                    10, true, 60, "http://sched.example:8002"}));
  EXPECT_EQ(oss.ca_cert_files, std::vector<std::string>{"/etc/ssl/oss-ca.pem"});

  // s3: keys not given take their defaults.
  const S3Config& s3 = *b.s3;
  EXPECT_EQ(s3.scheme, "https");
  EXPECT_EQ(s3.endpoint, "");
  EXPECT_EQ(s3.region, "us-east-1");
  EXPECT_EQ(s3.access_key_secret, "S3-SECRET-0002");
  EXPECT_EQ(s3.timeout, 5u);
  EXPECT_EQ(s3.connect_timeout, 5u);
  EXPECT_EQ(s3.retry_limit, 0);
  EXPECT_EQ(s3.proxy, ProxyConfig{});
  EXPECT_TRUE(s3.proxy.fallback);
  EXPECT_EQ(s3.proxy.check_interval, 5u);
  EXPECT_EQ(s3.proxy.check_pause_elapsed, 300u);

  const RegistryConfig& r = *b.registry;
  EXPECT_EQ(r.host, "registry.example.com");
  EXPECT_EQ(r.repo, "library/ubuntu");
  EXPECT_EQ(r.auth, "cmVnaXN0cnk6c2VjcmV0");
  EXPECT_EQ(r.registry_token, "REGISTRY-TOKEN-0003");
  EXPECT_EQ(r.timeout, 30u);
  EXPECT_EQ(r.blob_url_scheme, "http");
  EXPECT_EQ(r.blob_redirected_host, "blobs.example.com");
  EXPECT_EQ(r.proxy.url, "http://127.0.0.1:65001");
  EXPECT_TRUE(r.proxy.fallback);  // partial proxy object: field defaults
  ASSERT_EQ(r.mirrors.size(), 1u);
  EXPECT_EQ(r.mirrors[0].host, "http://mirror.example");
  EXPECT_EQ(r.mirrors[0].headers.at("Authorization"), "Basic MIRROR-AUTH-0004");
  EXPECT_TRUE(r.mirrors[0].auth_through);
  EXPECT_EQ(r.mirrors[0].health_check_interval, 5u);
  EXPECT_EQ(r.mirrors[0].failure_limit, 5);

  EXPECT_EQ(*b.http_proxy, (HttpProxyConfig{"http://127.0.0.1:9090", "/ns/repo/blobs", true, 7, 8, 1, {}, {}}));

  ASSERT_EQ(c->external_backends.size(), 1u);
  EXPECT_EQ(c->external_backends[0].type, "hub");
  EXPECT_EQ(c->external_backends[0].patch.at("layer"), "sha256:aaa");
  EXPECT_EQ(c->external_backends[0].config.at("region"), "eu");

  const CacheConfigV2& cache = *c->cache;
  EXPECT_EQ(cache.type, "filecache");
  EXPECT_TRUE(cache.compressed);
  EXPECT_TRUE(cache.validate);
  EXPECT_EQ(cache.prefetch, (PrefetchConfigV2{true, 4, 262144, 1000000, true, true}));
  EXPECT_EQ(*cache.filecache,
            (FileCacheConfig{"/var/cache/nydus", true, true, true, "ENCRYPTION-KEY-0007"}));
  EXPECT_EQ(cache.fscache->work_dir, "/var/cache/fscache");

  EXPECT_EQ(*c->rafs, (RafsConfigV2{"cached", 65536, true, true, true, true, true,
                                    PrefetchConfigV2{true, 2, 131072, 0, false, false}}));
  EXPECT_EQ(*c->overlay, (OverlayConfig{"/overlay/upper", "/overlay/work"}));
}

TEST(DecodeTest, AbsentSectionDefaultsDifferFromFieldDefaults) {
  auto c = decode_json(R"({"version":2,"cache":{"type":""},"rafs":{}})");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->cache->prefetch, PrefetchConfigV2{});  // absent: all zero
  EXPECT_EQ(c->cache->prefetch.threads, 0u);
  EXPECT_EQ(c->rafs->mode, "direct");
  EXPECT_EQ(c->rafs->batch_size, 1048576u);  // HEAD default
  EXPECT_EQ(c->rafs->prefetch, PrefetchConfigV2{});

  auto p = decode_json(R"({"version":2,"cache":{"prefetch":{"enable":false}},"rafs":{"prefetch":{"enable":true}}})");
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->cache->prefetch, (PrefetchConfigV2{false, 8, 1048576, 0, false, false}));
  EXPECT_EQ(p->rafs->prefetch, (PrefetchConfigV2{true, 8, 1048576, 0, false, false}));
}

TEST(DecodeTest, CacheSectionsTakeFieldDefaults) {
  auto c = decode_json(R"({"version":2,"cache":{"type":"blobcache","filecache":{},"fscache":{}}})");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->cache->filecache->work_dir, ".");
  EXPECT_FALSE(c->cache->filecache->disable_indexed_map);
  EXPECT_EQ(c->cache->filecache->encryption_key, "");
  EXPECT_EQ(c->cache->fscache->work_dir, ".");
}

TEST(DecodeTest, UnknownKeysIgnoredAtEveryLevel) {
  auto c = decode_json(
      R"({"version":2,"extra":[1,{"a":null}],"backend":{"type":"localfs","localfs":{"dir":"/d","readahead":true,)"
      R"("readahead_sec":10}},"cache":{"type":"","unknown":1},"rafs":{"mode":"cached","x":{}}})");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->backend->localfs->dir, "/d");
  EXPECT_EQ(c->rafs->mode, "cached");
}

TEST(DecodeTest, NullAcceptedOnlyForOptionalKeys) {
  auto c = decode_json(R"({"version":2,"backend":null,"cache":null,"rafs":null,"overlay":null})");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_FALSE(c->backend);
  auto r = decode_json(R"({"version":2,"backend":{"type":"registry","registry":{"host":"h","repo":"r","auth":null}}})");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(r->backend->registry->auth);

  EXPECT_EQ(error_of(R"({"version":2,"cache":{"prefetch":null}})"),
            "cache.prefetch: invalid type: null, expected struct PrefetchConfigV2 at line 1 column 37");
  EXPECT_EQ(error_of(R"({"version":2,"id":null})"),
            "id: invalid type: null, expected a string at line 1 column 22");
  EXPECT_EQ(error_of(R"({"version":2,"external_backends":null})"),
            "external_backends: invalid type: null, expected a sequence at line 1 column 37");
}

TEST(DecodeTest, MissingRequiredKeysNameTheObject) {
  EXPECT_EQ(error_of("{}"), "missing field `version` at line 1 column 2");
  EXPECT_EQ(error_of(R"({"version":2,"backend":{}})"), "backend: missing field `type` at line 1 column 25");
  EXPECT_EQ(error_of(R"({"version":2,"backend":{"type":"oss","oss":{"endpoint":"e"}}})"),
            "backend.oss: missing field `bucket_name` at line 1 column 59");
  EXPECT_EQ(error_of(R"({"version":2,"backend":{"type":"s3","s3":{"bucket_name":"b"}}})"),
            "backend.s3: missing field `endpoint` at line 1 column 60");
  EXPECT_EQ(error_of(R"({"version":2,"backend":{"type":"registry","registry":{"host":"h"}}})"),
            "backend.registry: missing field `repo` at line 1 column 65");
  EXPECT_EQ(error_of(R"({"version":2,"backend":{"type":"http-proxy","http-proxy":{}}})"),
            "backend.http-proxy: missing field `addr` at line 1 column 59");
  EXPECT_EQ(error_of(R"({"version":2,"cache":{"prefetch":{"threads":1}}})"),
            "cache.prefetch: missing field `enable` at line 1 column 46");
  EXPECT_EQ(error_of(R"({"version":2,"overlay":{"upper_dir":"/u"}})"),
            "overlay: missing field `work_dir` at line 1 column 41");
  EXPECT_EQ(error_of(R"({"version":2,"external_backends":[{"config":{}}]})"),
            "external_backends.0: missing field `type` at line 1 column 47");
  EXPECT_EQ(error_of(
                R"({"version":2,"backend":{"type":"registry","registry":{"host":"h","repo":"r","mirrors":[{}]}}})"),
            "backend.registry.mirrors.0: missing field `host` at line 1 column 89");
}

TEST(DecodeTest, WrongTypesAreRejectedWithSerdeText) {
  EXPECT_EQ(error_of(R"({"version":"2"})"), "version: invalid type: string \"2\", expected u32 at line 1 column 14");
  EXPECT_EQ(error_of(R"({"version":2.0})"),
            "version: invalid type: floating point `2`, expected u32 at line 1 column 15");
  EXPECT_EQ(error_of(R"({"version":2,"rafs":{"batch_size":-1}})"),
            "rafs.batch_size: invalid value: integer `-1`, expected usize at line 1 column 37");
  EXPECT_EQ(error_of(R"({"version":2,"rafs":{"batch_size":"1"}})"),
            "rafs.batch_size: invalid type: string \"1\", expected usize at line 1 column 37");
  EXPECT_EQ(error_of(R"({"version":2,"backend":{"type":"oss","oss":{"endpoint":"e","bucket_name":"b",)"
                     R"("retry_limit":256}}})"),
            "backend.oss.retry_limit: invalid value: integer `256`, expected u8 at line 1 column 95");
  EXPECT_EQ(error_of(R"({"version":2,"cache":{"validate":"yes"}})"),
            "cache.validate: invalid type: string \"yes\", expected a boolean at line 1 column 38");
  EXPECT_EQ(error_of(R"({"version":2,"backend":{"type":"localfs","localfs":{"alt_dirs":"/a"}}})"),
            "backend.localfs.alt_dirs: invalid type: string \"/a\", expected a sequence at line 1 column 67");
  EXPECT_EQ(error_of(R"({"version":2,"external_backends":[{"type":"t","config":{"k":1}}]})"),
            "external_backends.0.config.k: invalid type: integer `1`, expected a string at line 1 column 62");
}

TEST(DecodeTest, ArraysAreNotAcceptedAsStructs) {
  // serde would take ["cached"] as {"mode":"cached"}; we refuse (docs/config.md).
  EXPECT_EQ(error_of(R"({"version":2,"rafs":["cached"]})"),
            "rafs: invalid type: sequence, expected struct RafsConfigV2 at line 1 column 30");
  EXPECT_EQ(error_of("[2]"), "invalid type: sequence, expected struct ConfigV2 at line 1 column 3");
}

TEST(DecodeTest, DuplicateKeysAreSyntaxErrors) {
  auto doc = json::Document::parse(R"({"version":2,"backend":{"type":"a","type":"b"}})");
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().reason, "duplicate field `type`");
}

// The API layer decodes nested configuration objects with its own Decoder.
TEST(DecodeTest, NestedDecodeKeepsTheBodyPositions) {
  std::string body = R"({"type":"bootstrap","id":"x",
"config_v2":{"version":2,"backend":{"type":"localfs","localfs":{"dir":7}}}})";
  auto doc = json::Document::parse(body);
  ASSERT_TRUE(doc);
  json::Decoder d(*doc);
  std::optional<BlobCacheEntryConfigV2> v2;
  std::optional<BlobCacheEntryConfig> legacy;
  if (auto o = d.root_object("struct BlobCacheEntry")) {
    decode_optional_field(*o, "config_v2", v2);
    decode_optional_field(*o, "config", legacy);
  }
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().to_debug(), "Error(\"invalid type: integer `7`, expected a string\", line: 2, column: 72)");
  EXPECT_EQ(d.error().path, "/config_v2/backend/localfs/dir");
  EXPECT_FALSE(v2);
}

TEST(DecodeTest, BlobEntryV2DefaultsAndLegacyFieldsAreKeptRaw) {
  auto doc = json::Document::parse(
      R"({"config_v2":{"version":3},"config":{"backend_type":"localfs","backend_config":{"dir":"/d"},)"
      R"("cache_type":"","cache_config":null}})");
  ASSERT_TRUE(doc);
  json::Decoder d(*doc);
  std::optional<BlobCacheEntryConfigV2> v2;
  std::optional<BlobCacheEntryConfig> legacy;
  auto o = d.root_object("struct BlobCacheEntry");
  decode_optional_field(*o, "config_v2", v2);
  decode_optional_field(*o, "config", legacy);
  ASSERT_TRUE(d.ok()) << d.error().to_debug();
  EXPECT_EQ(v2->version, 3u);
  EXPECT_EQ(v2->backend, BackendConfigV2{});
  EXPECT_EQ(v2->cache, CacheConfigV2{});
  EXPECT_FALSE(v2->metadata_path);
  EXPECT_EQ(legacy->backend_config, json::Value({{"dir", "/d"}}));
  EXPECT_TRUE(legacy->cache_config.is_null());
  EXPECT_EQ(legacy->prefetch_config, BlobPrefetchConfig{});
}

TEST(DecodeTest, FormatDecodeErrorLeavesOutUnknownParts) {
  EXPECT_EQ(format_decode_error(json::Error{"missing field `x`", {0, 0}, "/a/b"}), "a.b: missing field `x`");
  EXPECT_EQ(format_decode_error(json::Error{"bad", {3, 5}, ""}), "bad at line 3 column 5");
}

}  // namespace
}  // namespace nydus::config
