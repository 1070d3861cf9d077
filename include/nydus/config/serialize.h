// Writing a ConfigV2 back as JSON (contract §7.7), e.g. for the `config` of
// each backend_collection entry of GET /api/v1/daemon (§4.1).
//
// Every field is emitted, std::optional as null, in upstream's key order. We
// emit the HEAD key set: top level `version, id, backend, external_backends,
// cache, rafs, overlay`; backend `type, localdisk, localfs, oss, s3,
// registry, http-proxy`. Inside sections the 0.2.0 order is kept and keys
// added at HEAD follow it (e.g. proxy `… use_http, check_pause_elapsed,
// dragonfly_scheduler_endpoint`; oss `… proxy, mirrors, ca_cert_files`;
// prefetch `… prefetch_all, stream_prefetch`). Output of kKeep parses back
// (parse_config) into an equal ConfigV2.
//
// Secrets::kScrub removes every credential (§10 #21, #22), going further than
// upstream, which only scrubs oss keys and registry auth/token:
//   * oss and s3 access_key_id / access_key_secret -> "";
//   * registry auth and registry_token -> null;
//   * filecache encryption_key -> "";
//   * userinfo ("user:pass@") replaced by "<redacted>@" in every URL or host value
//     (proxy url/ping_url/dragonfly_scheduler_endpoint, mirror host/ping_url,
//     oss/s3 endpoint, registry host/blob_redirected_host, http-proxy addr);
//   * mirror headers and external_backends patch/config entries whose key
//     looks like a credential (contains auth, token, secret, passw, credential,
//     cookie, key, case-insensitive) -> "<redacted>"; userinfo redacted in any
//     other value containing "://".
// ("<redacted>" is the marker GET /api/v1/config uses too, docs/api.md.)
//
// Strings are emitted as stored. A ConfigV2 built in memory (not parsed) may
// hold non-UTF-8 bytes (e.g. paths); dump with
// nlohmann::json::error_handler_t::replace to avoid a type_error.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "nydus/config/config_v2.h"

namespace nydus::config {

enum class Secrets {
  kKeep,   // everything as stored (internal state, tests)
  kScrub,  // credentials removed (anything shown to API clients or logs)
};

// ConfigV2 in §7.7 order.
nlohmann::ordered_json to_json(const ConfigV2& config, Secrets secrets);

// BlobCacheEntryConfigV2: `version, id, backend, cache, metadata_path,
// external_backends`, sections as above.
nlohmann::ordered_json to_json(const BlobCacheEntryConfigV2& config, Secrets secrets);

// Copies with every credential listed above removed (what kScrub emits).
ConfigV2 without_secrets(const ConfigV2& config);
BlobCacheEntryConfigV2 without_secrets(const BlobCacheEntryConfigV2& config);

// `url` with its userinfo replaced: "http://u:p@h:1/x" -> "http://<redacted>@h:1/x",
// "u:p@h/x" -> "<redacted>@h/x"; strings without userinfo are returned unchanged.
std::string redact_userinfo(std::string_view url);

// The replacement for secret values that have no upstream convention.
inline constexpr std::string_view kRedacted = "<redacted>";

// Whether a map key (header name, external backend option) names a
// credential, by the substring rule above.
bool looks_like_secret_key(std::string_view key);

}  // namespace nydus::config
