// TOML form of ConfigV2 (§7.5): every section, positions, TOML-specific types.

#include <gtest/gtest.h>

#include "nydus/config/parse.h"
#include "util/config_data.h"

namespace nydus::config {
namespace {

using testutil::read_config_data;

std::string error_of(std::string_view text) {
  return testutil::error_of([](std::string_view t) { return parse_config_toml(t); }, text);
}

TEST(TomlTest, EverySection) {
  auto c = parse_config_toml(read_config_data("full.toml"));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->id, "toml-full");
  const BackendConfigV2& b = *c->backend;
  EXPECT_EQ(b.type, "registry");
  const RegistryConfig& r = *b.registry;
  EXPECT_EQ(r.scheme, "http");
  EXPECT_EQ(r.host, "registry.example.com:5000");
  EXPECT_EQ(r.auth, "dXNlcjpwYXNz");
  EXPECT_EQ(r.registry_token, "TOML-TOKEN");
  EXPECT_TRUE(r.skip_verify);
  EXPECT_EQ(r.timeout, 20u);
  EXPECT_EQ(r.connect_timeout, 10u);
  EXPECT_EQ(r.retry_limit, 3);
  EXPECT_EQ(r.blob_url_scheme, "https");
  EXPECT_EQ(r.blob_redirected_host, "cdn.example.com");
  EXPECT_EQ(r.ca_cert_files, std::vector<std::string>{"/etc/ssl/ca.pem"});
  EXPECT_EQ(r.proxy, (ProxyConfig{"http://127.0.0.1:65001", "http://127.0.0.1:65001/server/ping", false, 7, true,
                                  120, "http://127.0.0.1:8002"}));
  ASSERT_EQ(r.mirrors.size(), 2u);
  EXPECT_EQ(r.mirrors[0], (MirrorConfig{"http://mirror-1.example",
                                        "",
                                        {{"X-Dragonfly-Registry", "https://registry.example.com"}},
                                        true,
                                        10,
                                        3}));
  EXPECT_EQ(r.mirrors[1], MirrorConfig{.host = "http://mirror-2.example"});
  EXPECT_EQ(*b.localfs, (LocalFsConfig{"", "/var/lib/blobs", {"/mnt/blobs"}}));
  EXPECT_EQ(*b.localdisk, (LocalDiskConfig{"/dev/nbd0", false}));
  EXPECT_EQ(*b.oss, (OssConfig{.endpoint = "oss.example.com", .bucket_name = "bucket"}));
  EXPECT_EQ(*b.s3, (S3Config{.endpoint = "s3.example.com", .region = "eu-west-1", .bucket_name = "bucket"}));
  EXPECT_EQ(*b.http_proxy, (HttpProxyConfig{.addr = "https://blobs.example.com", .path = "/v2/blobs"}));

  ASSERT_EQ(c->external_backends.size(), 1u);
  EXPECT_EQ(c->external_backends[0],
            (ExternalBackendConfig{"hub", {{"layer", "1"}}, {{"url", "https://hub.example.com"}}}));

  const CacheConfigV2& cache = *c->cache;
  EXPECT_EQ(cache.type, "blobcache");
  EXPECT_TRUE(cache.validate);
  EXPECT_EQ(cache.prefetch, (PrefetchConfigV2{true, 16, 2097152, 10485760, true, false}));
  EXPECT_EQ(*cache.filecache, FileCacheConfig{.work_dir = "/var/cache/nydus"});
  EXPECT_EQ(*cache.fscache, FsCacheConfig{.work_dir = "/var/cache/fscache"});

  const RafsConfigV2& rafs = *c->rafs;
  EXPECT_EQ(rafs, (RafsConfigV2{"direct", 524288, false, true, false, true, true,
                                PrefetchConfigV2{true, 4, 1048576, 0, false, false}}));
  EXPECT_EQ(*c->overlay, (OverlayConfig{"/run/upper", "/run/work"}));
}

TEST(TomlTest, UpstreamLocalfsDottedKeyForm) {
  // The document upstream's ConfigV2::new_localfs builds.
  auto c = parse_config_toml(R"(
        version = 2
        id = "id1"
        backend.type = "localfs"
        backend.localfs.dir = "/d"
        cache.type = "filecache"
        cache.compressed = false
        cache.validate = false
        cache.filecache.work_dir = "/d"
  )");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->id, "id1");
  EXPECT_EQ(c->backend->localfs->dir, "/d");
  EXPECT_EQ(c->cache->filecache->work_dir, "/d");
  EXPECT_FALSE(c->rafs);
}

TEST(TomlTest, DecodeErrorsCarryTomlPositions) {
  EXPECT_EQ(error_of("version = 2\n[cache.prefetch]\nthreads = 1\n"),
            "cache.prefetch: missing field `enable` at line 2 column 1");
  EXPECT_EQ(error_of("version = 2\n[backend]\ntype = \"registry\"\n[backend.registry]\nhost = \"h\"\n"),
            "backend.registry: missing field `repo` at line 4 column 1");
  EXPECT_EQ(error_of("version = -2\n"), "version: invalid value: integer `-2`, expected u32 at line 1 column 11");
  EXPECT_EQ(error_of("version = 2.0\n"), "version: invalid type: floating point `2`, expected u32 at line 1 column 11");
  EXPECT_EQ(error_of("version = 2\n[rafs]\nbatch_size = -1\n"),
            "rafs.batch_size: invalid value: integer `-1`, expected usize at line 3 column 14");
  EXPECT_EQ(error_of("version = 2\nid = 1979-05-27\n"),
            "id: invalid type: map, expected a string at line 2 column 6");
  EXPECT_EQ(error_of("version = 2\nrafs = [\"direct\"]\n"),
            "rafs: invalid type: sequence, expected struct RafsConfigV2 at line 2 column 8");
}

TEST(TomlTest, SyntaxErrorsIncludingDuplicates) {
  std::string dup = error_of("version = 2\n[rafs]\nmode = \"direct\"\nmode = \"cached\"\n");
  EXPECT_TRUE(dup.starts_with("invalid TOML: ")) << dup;
  EXPECT_NE(dup.find("mode"), std::string::npos) << dup;
  EXPECT_NE(dup.find(" at line 4 column "), std::string::npos) << dup;

  std::string table = error_of("version = 2\n[rafs]\n[rafs]\n");
  EXPECT_TRUE(table.starts_with("invalid TOML: ")) << table;
  EXPECT_NE(table.find("line 3"), std::string::npos) << table;
}

TEST(TomlTest, DeepNestingIsRefusedNotCrashing) {
  std::string dotted;
  for (int i = 0; i < 100000; ++i) dotted += "a.";
  dotted += "a = 1\n";
  EXPECT_EQ(error_of(dotted),
            "invalid TOML: 100000 '.' characters, more than the 2048 accepted (guards against deeply dotted keys)");

  std::string arrays = "x = " + std::string(200, '[') + std::string(200, ']') + "\n";
  EXPECT_EQ(error_of(arrays), "invalid TOML: recursion limit exceeded at line 1 column 133");

  std::string ok;
  for (int i = 0; i < 100; ++i) ok += "a.";
  EXPECT_EQ(error_of(ok + "a = 1\n"), "missing field `version` at line 1 column 1");
}

TEST(TomlTest, DocumentKeepsPositionsByJsonPointer) {
  auto doc = parse_toml_document("version = 2\n[backend.\"http-proxy\"]\naddr = \"http://x\"\n");
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->root()["backend"]["http-proxy"]["addr"], "http://x");
  EXPECT_TRUE(doc->root()["version"].is_number_unsigned());
  EXPECT_EQ(doc->end_of("/backend/http-proxy/addr"), (json::Position{3, 8}));
  EXPECT_EQ(doc->end_of("/version"), (json::Position{1, 11}));
}

}  // namespace
}  // namespace nydus::config
