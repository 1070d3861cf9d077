// Serialisation (§7.7): key order, secret scrubbing (§10 #21, #22), round trip.
#include "nydus/config/serialize.h"

#include <gtest/gtest.h>

#include "config/legacy.h"
#include "nydus/config/parse.h"
#include "util/config_data.h"

namespace nydus::config {
namespace {

using J = nlohmann::ordered_json;

using testutil::read_config_data;

ConfigV2 parsed(std::string_view text) {
  auto c = parse_config(text);
  EXPECT_TRUE(c) << c.error().message();
  return c ? *c : ConfigV2{};
}

std::vector<std::string> keys(const J& object) {
  std::vector<std::string> out;
  for (auto it = object.begin(); it != object.end(); ++it) out.push_back(it.key());
  return out;
}

using Keys = std::vector<std::string>;

// The §4.1 instance: a legacy registry + blobcache configuration.
constexpr std::string_view kObservedLegacy =
    R"({"device":{"backend":{"type":"registry","config":{"host":"h","repo":"r","auth":"dXNlcjpwYXNz",)"
    R"("registry_token":"tok"}},"cache":{"type":"blobcache","config":{"work_dir":"/c"}}},"mode":"direct"})";

TEST(SerializeTest, ObservedDaemonInfoConfigInHeadForm) {
  J out = to_json(parsed(kObservedLegacy), Secrets::kScrub);
  EXPECT_EQ(out.dump(),
            R"({"version":2,"id":"","backend":{"type":"registry","localdisk":null,"localfs":null,"oss":null,)"
            R"("s3":null,"registry":{"scheme":"https","host":"h","repo":"r","auth":null,"skip_verify":false,)"
            R"("timeout":5,"connect_timeout":5,"retry_limit":0,"registry_token":null,"blob_url_scheme":"",)"
            R"("blob_redirected_host":"","proxy":{"url":"","ping_url":"","fallback":true,"check_interval":5,)"
            R"("use_http":false,"check_pause_elapsed":300,"dragonfly_scheduler_endpoint":""},"mirrors":[],)"
            R"("ca_cert_files":[]},"http-proxy":null},"external_backends":[],"cache":{"type":"blobcache",)"
            R"("compressed":false,"validate":false,"prefetch":{"enable":false,"threads":0,"batch_size":0,)"
            R"("bandwidth_limit":0,"prefetch_all":true,"stream_prefetch":false},"filecache":{"work_dir":"/c",)"
            R"("disable_indexed_map":false,"enable_encryption":false,"enable_convergent_encryption":false,)"
            R"("encryption_key":""},"fscache":null},"rafs":{"mode":"direct","batch_size":1048576,)"
            R"("validate":false,"enable_xattr":false,"iostats_files":false,"access_pattern":false,)"
            R"("latest_read_files":false,"prefetch":{"enable":false,"threads":0,"batch_size":0,)"
            R"("bandwidth_limit":0,"prefetch_all":false,"stream_prefetch":false}},"overlay":null})");
}

// Without the keys added at HEAD (and with 0.2.0's default batch size) the
// output is byte for byte the `config` of the observed DaemonInfo (§4.1).
TEST(SerializeTest, ObservedDaemonInfoConfigIn020Form) {
  ConfigV2 c = parsed(kObservedLegacy);
  c.rafs->batch_size = 131072;
  J out = to_json(c, Secrets::kScrub);
  for (const char* key : {"external_backends", "overlay"}) out.erase(key);
  for (const char* key : {"localdisk", "http-proxy"}) out["backend"].erase(key);
  J& registry = out["backend"]["registry"];
  registry.erase("ca_cert_files");
  registry["proxy"].erase("check_pause_elapsed");
  registry["proxy"].erase("dragonfly_scheduler_endpoint");
  for (const char* key : {"enable_encryption", "enable_convergent_encryption", "encryption_key"}) {
    out["cache"]["filecache"].erase(key);
  }
  out["cache"]["prefetch"].erase("stream_prefetch");
  out["rafs"]["prefetch"].erase("stream_prefetch");
  EXPECT_EQ(
      out.dump(),
      R"({"version":2,"id":"","backend":{"type":"registry","localfs":null,"oss":null,"s3":null,"registry":{"scheme":"https","host":"h","repo":"r","auth":null,"skip_verify":false,"timeout":5,"connect_timeout":5,"retry_limit":0,"registry_token":null,"blob_url_scheme":"","blob_redirected_host":"","proxy":{"url":"","ping_url":"","fallback":true,"check_interval":5,"use_http":false},"mirrors":[]}},"cache":{"type":"blobcache","compressed":false,"validate":false,"prefetch":{"enable":false,"threads":0,"batch_size":0,"bandwidth_limit":0,"prefetch_all":true},"filecache":{"work_dir":"/c","disable_indexed_map":false},"fscache":null},"rafs":{"mode":"direct","batch_size":131072,"validate":false,"enable_xattr":false,"iostats_files":false,"access_pattern":false,"latest_read_files":false,"prefetch":{"enable":false,"threads":0,"batch_size":0,"bandwidth_limit":0,"prefetch_all":false}}})");
}

TEST(SerializeTest, KeyOrderOfEverySection) {
  J out = to_json(parsed(read_config_data("every_backend.json")), Secrets::kKeep);
  EXPECT_EQ(keys(out), (Keys{"version", "id", "backend", "external_backends", "cache", "rafs", "overlay"}));
  const J& b = out["backend"];
  EXPECT_EQ(keys(b), (Keys{"type", "localdisk", "localfs", "oss", "s3", "registry", "http-proxy"}));
  EXPECT_EQ(keys(b["localdisk"]), (Keys{"device_path", "disable_gpt"}));
  EXPECT_EQ(keys(b["localfs"]), (Keys{"blob_file", "dir", "alt_dirs"}));
  Keys store{"scheme", "endpoint", "bucket_name", "object_prefix", "access_key_id", "access_key_secret",
             "skip_verify", "timeout", "connect_timeout", "retry_limit", "proxy", "mirrors", "ca_cert_files"};
  EXPECT_EQ(keys(b["oss"]), store);
  store.insert(store.begin() + 2, "region");
  EXPECT_EQ(keys(b["s3"]), store);
  EXPECT_EQ(keys(b["registry"]),
            (Keys{"scheme", "host", "repo", "auth", "skip_verify", "timeout", "connect_timeout", "retry_limit",
                  "registry_token", "blob_url_scheme", "blob_redirected_host", "proxy", "mirrors", "ca_cert_files"}));
  EXPECT_EQ(keys(b["registry"]["proxy"]), (Keys{"url", "ping_url", "fallback", "check_interval", "use_http",
                                                "check_pause_elapsed", "dragonfly_scheduler_endpoint"}));
  EXPECT_EQ(keys(b["registry"]["mirrors"][0]),
            (Keys{"host", "ping_url", "headers", "auth_through", "health_check_interval", "failure_limit"}));
  EXPECT_EQ(keys(b["http-proxy"]), (Keys{"addr", "path", "skip_verify", "timeout", "connect_timeout", "retry_limit",
                                         "proxy", "ca_cert_files"}));
  EXPECT_EQ(keys(out["external_backends"][0]), (Keys{"type", "patch", "config"}));
  const J& cache = out["cache"];
  EXPECT_EQ(keys(cache), (Keys{"type", "compressed", "validate", "prefetch", "filecache", "fscache"}));
  Keys prefetch{"enable", "threads", "batch_size", "bandwidth_limit", "prefetch_all", "stream_prefetch"};
  EXPECT_EQ(keys(cache["prefetch"]), prefetch);
  EXPECT_EQ(keys(cache["filecache"]), (Keys{"work_dir", "disable_indexed_map", "enable_encryption",
                                            "enable_convergent_encryption", "encryption_key"}));
  EXPECT_EQ(keys(cache["fscache"]), (Keys{"work_dir"}));
  EXPECT_EQ(keys(out["rafs"]), (Keys{"mode", "batch_size", "validate", "enable_xattr", "iostats_files",
                                     "access_pattern", "latest_read_files", "prefetch"}));
  EXPECT_EQ(keys(out["rafs"]["prefetch"]), prefetch);
  EXPECT_EQ(keys(out["overlay"]), (Keys{"upper_dir", "work_dir"}));
}

TEST(SerializeTest, RoundTripGivesEqualConfig) {
  std::vector<ConfigV2> configs = {
      parsed(read_config_data("every_backend.json")), parsed(read_config_data("full.toml")),
      parsed(read_config_data("snapshotter_fusedev.json")), parsed(kObservedLegacy), *localfs_dir_config("/d")};
  for (const ConfigV2& c : configs) {
    std::string text = to_json(c, Secrets::kKeep).dump();
    auto again = parse_config(text);
    ASSERT_TRUE(again) << again.error().message() << "\n" << text;
    EXPECT_EQ(*again, c) << text;
    // Pretty-printed output parses too, and scrubbed output is still a valid config.
    EXPECT_TRUE(parse_config(to_json(c, Secrets::kKeep).dump(2)));
    EXPECT_TRUE(parse_config(to_json(c, Secrets::kScrub).dump()));
  }
}

TEST(SerializeTest, ScrubbedOutputHasNoSecret) {
  ConfigV2 c = parsed(read_config_data("every_backend.json"));
  std::string keep = to_json(c, Secrets::kKeep).dump();
  std::string scrubbed = to_json(c, Secrets::kScrub).dump();
  for (const char* secret : {"OSS-AKID-0001", "OSS-SECRET-0001", "S3-AKID-0002", "S3-SECRET-0002",
                             "cmVnaXN0cnk6c2VjcmV0", "REGISTRY-TOKEN-0003", "MIRROR-AUTH-0004", "EXT-PASS-0005",
                             "EXT-TOKEN-0006", "ENCRYPTION-KEY-0007", "proxyuser", "proxypass"}) {
    EXPECT_NE(keep.find(secret), std::string::npos) << secret;
    EXPECT_EQ(scrubbed.find(secret), std::string::npos) << secret;
  }
  J s = J::parse(scrubbed);
  EXPECT_EQ(s["backend"]["oss"]["access_key_id"], "");
  EXPECT_EQ(s["backend"]["s3"]["access_key_secret"], "");
  EXPECT_TRUE(s["backend"]["registry"]["auth"].is_null());
  EXPECT_TRUE(s["backend"]["registry"]["registry_token"].is_null());
  EXPECT_EQ(s["backend"]["oss"]["proxy"]["url"], "http://<redacted>@p.example:8001");
  EXPECT_EQ(s["backend"]["registry"]["mirrors"][0]["headers"]["Authorization"], "<redacted>");
  EXPECT_EQ(s["backend"]["registry"]["mirrors"][0]["headers"]["X-Dragonfly-Registry"], "https://registry.example.com");
  EXPECT_EQ(s["external_backends"][0]["config"]["endpoint"], "https://<redacted>@hub.example");
  EXPECT_EQ(s["external_backends"][0]["config"]["access_token"], "<redacted>");
  EXPECT_EQ(s["external_backends"][0]["config"]["region"], "eu");
  EXPECT_EQ(s["cache"]["filecache"]["encryption_key"], "");
  // Non-secret values are untouched.
  EXPECT_EQ(s["backend"]["registry"]["host"], "registry.example.com");
  EXPECT_EQ(s["cache"]["filecache"]["work_dir"], "/var/cache/nydus");

  std::string toml = to_json(parsed(read_config_data("full.toml")), Secrets::kScrub).dump();
  EXPECT_EQ(toml.find("TOML-TOKEN"), std::string::npos);
  EXPECT_EQ(toml.find("dXNlcjpwYXNz"), std::string::npos);
}

TEST(SerializeTest, WithoutSecretsCopiesAndKeepsTheRest) {
  ConfigV2 c = parsed(read_config_data("every_backend.json"));
  ConfigV2 s = without_secrets(c);
  EXPECT_EQ(c.backend->oss->access_key_id, "OSS-AKID-0001");  // input untouched
  EXPECT_EQ(s.backend->oss->access_key_id, "");
  s.backend->oss->access_key_id = c.backend->oss->access_key_id;
  s.backend->oss->access_key_secret = c.backend->oss->access_key_secret;
  s.backend->oss->proxy.url = c.backend->oss->proxy.url;
  s.backend->s3->access_key_id = c.backend->s3->access_key_id;
  s.backend->s3->access_key_secret = c.backend->s3->access_key_secret;
  s.backend->registry->auth = c.backend->registry->auth;
  s.backend->registry->registry_token = c.backend->registry->registry_token;
  s.backend->registry->mirrors = c.backend->registry->mirrors;
  s.cache->filecache->encryption_key = c.cache->filecache->encryption_key;
  s.external_backends = c.external_backends;
  EXPECT_EQ(s, c);  // nothing else changed
}

TEST(SerializeTest, BlobEntryConfig) {
  BlobCacheEntryConfigV2 e;
  e.id = "blob";
  e.backend = BackendConfigV2{.type = "oss", .oss = OssConfig{.endpoint = "e", .bucket_name = "b",
                                                              .access_key_id = "AK", .access_key_secret = "SK"}};
  e.cache = CacheConfigV2{.type = "fscache", .fscache = FsCacheConfig{.work_dir = "/w"}};
  e.metadata_path = "/m/image.boot";
  J out = to_json(e, Secrets::kScrub);
  EXPECT_EQ(keys(out), (Keys{"version", "id", "backend", "cache", "metadata_path", "external_backends"}));
  EXPECT_EQ(out["backend"]["oss"]["access_key_secret"], "");
  EXPECT_EQ(out["metadata_path"], "/m/image.boot");
  EXPECT_EQ(to_json(e, Secrets::kKeep)["backend"]["oss"]["access_key_secret"], "SK");
  EXPECT_TRUE(to_json(BlobCacheEntryConfigV2{}, Secrets::kKeep)["metadata_path"].is_null());
}

TEST(SerializeTest, RedactUserinfo) {
  EXPECT_EQ(redact_userinfo("http://user:pass@host:8080/path?q=a@b"), "http://<redacted>@host:8080/path?q=a@b");
  EXPECT_EQ(redact_userinfo("https://token@host"), "https://<redacted>@host");
  EXPECT_EQ(redact_userinfo("user:pass@registry.io/repo"), "<redacted>@registry.io/repo");
  EXPECT_EQ(redact_userinfo("http://host/a@b"), "http://host/a@b");
  EXPECT_EQ(redact_userinfo("/run/proxy@1.sock"), "/run/proxy@1.sock");
  EXPECT_EQ(redact_userinfo("http://a@b@host"), "http://<redacted>@host");
  EXPECT_EQ(redact_userinfo(""), "");
}

TEST(SerializeTest, SecretKeyNames) {
  for (const char* key : {"Authorization", "Proxy-Authorization", "X-Auth-Token", "access_key", "api-key",
                          "client_secret", "password", "Cookie", "credentials"}) {
    EXPECT_TRUE(looks_like_secret_key(key)) << key;
  }
  for (const char* key : {"X-Dragonfly-Registry", "region", "endpoint", "layer", "url"}) {
    EXPECT_FALSE(looks_like_secret_key(key)) << key;
  }
}

}  // namespace
}  // namespace nydus::config
