// Fuzz target for the configuration entry points (library `config`).
//
// Feeds the input to every text entry point (parse_config, which tries JSON,
// TOML and legacy JSON, and the single-format ones) and, when it is JSON, to
// the blob-cache entry decoders and prepare_blob_entry_config as the API layer
// calls them. Beyond "no crash, no sanitizer report, no escaping exception",
// it checks two properties on every accepted configuration:
//   * round trip: parse(to_json(c, kKeep)) == c;
//   * scrubbing: without_secrets() leaves no oss/s3 key, registry auth/token
//     or filecache encryption key, and its JSON can be dumped.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "nydus/config/blob_entry.h"
#include "config/decode.h"
#include "nydus/config/parse.h"
#include "nydus/config/serialize.h"
#include "nydus/config/validate.h"

namespace {

using namespace nydus::config;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_secrets_gone(const BackendConfigV2& b) {
  if (b.oss) check(b.oss->access_key_id.empty() && b.oss->access_key_secret.empty());
  if (b.s3) check(b.s3->access_key_id.empty() && b.s3->access_key_secret.empty());
  if (b.registry) check(!b.registry->auth && !b.registry->registry_token);
}

void check_config(const ConfigV2& c) {
  (void)validate_for_rafs_mount(c);
  auto again = parse_config(to_json(c, Secrets::kKeep).dump());
  check(again.has_value() && *again == c);
  ConfigV2 scrubbed = without_secrets(c);
  if (scrubbed.backend) check_secrets_gone(*scrubbed.backend);
  if (scrubbed.cache && scrubbed.cache->filecache) check(scrubbed.cache->filecache->encryption_key.empty());
  (void)to_json(c, Secrets::kScrub).dump();
}

void check_blob_entry(std::string_view text) {
  auto doc = nydus::json::Document::parse(text);
  if (!doc) return;
  nydus::json::Decoder d(*doc);
  std::optional<BlobCacheEntryConfigV2> v2;
  std::optional<BlobCacheEntryConfig> legacy;
  if (auto o = d.root_object("struct BlobCacheEntry")) {
    decode_optional_field(*o, "config_v2", v2);
    decode_optional_field(*o, "config", legacy);
  }
  if (!d.ok()) return;
  auto prepared = prepare_blob_entry_config(v2, legacy);
  if (!prepared) return;
  check(validate_blob_entry(*prepared).empty());
  BlobCacheEntryConfigV2 scrubbed = without_secrets(*prepared);
  check_secrets_gone(scrubbed.backend);
  (void)to_json(*prepared, Secrets::kScrub).dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxConfigFileSize) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto c = parse_config(text)) check_config(*c);
  if (auto c = parse_config_toml(text)) check_config(*c);
  (void)parse_config_json(text);
  (void)parse_legacy_config(text);
  check_blob_entry(text);
  return 0;
}
