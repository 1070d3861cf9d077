// Storage backend sections of a ConfigV2 (wire contract §7.2).
//
// Plain aggregates whose member initialisers are the defaults a key takes
// when it is absent from a present section ("field defaults"). Member names
// equal the configuration keys, except `http_proxy` (key `http-proxy`) and
// the `type` keys, which are spelled `type` here too. Every struct compares
// with ==, which the round-trip tests rely on.
//
// Keys marked [HEAD] exist only in upstream nydus-api 0.4.x; `mirrors` exists
// only in 0.2.0 and is kept so that legacy snapshotter configurations survive
// a parse -> serialise round trip (see docs/config.md).
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nydus::config {

// Seconds; the default of every `timeout` / `connect_timeout` key.
inline constexpr std::uint32_t kDefaultHttpTimeout = 5;

// HTTP proxy in front of a remote backend (`<backend>.proxy`).
struct ProxyConfig {
  std::string url{};                           // e.g. a Dragonfly dfdaemon; "" = no proxy
  std::string ping_url{};                      // health-check endpoint
  bool fallback = true;                        // go direct when the proxy is unhealthy
  std::uint64_t check_interval = 5;            // seconds between health checks
  bool use_http = false;                       // talk plain http to the proxy
  std::uint64_t check_pause_elapsed = 300;     // [HEAD] seconds idle before health checks pause
  std::string dragonfly_scheduler_endpoint{};  // [HEAD]
  bool operator==(const ProxyConfig&) const = default;
};

// Registry mirror [0.2.0]. `host` is required.
struct MirrorConfig {
  std::string host{};                            // mirror URL, e.g. http://127.0.0.1:65001
  std::string ping_url{};
  std::map<std::string, std::string> headers{};  // sent to the mirror; may hold credentials
  bool auth_through = false;                     // forward auth requests through the mirror
  std::uint64_t health_check_interval = 5;       // seconds
  std::uint8_t failure_limit = 5;                // failures before the mirror is skipped
  bool operator==(const MirrorConfig&) const = default;
};

// `backend.localfs`: blobs are files in a directory (or one file).
struct LocalFsConfig {
  std::string blob_file{};              // one blob file; wins over `dir`
  std::string dir{};                    // directory holding blobs named by id
  std::vector<std::string> alt_dirs{};  // searched after `dir`
  bool operator==(const LocalFsConfig&) const = default;
};

// `backend.localdisk` [HEAD]: blobs on a block device or disk image.
struct LocalDiskConfig {
  std::string device_path{};        // validated non-empty
  bool disable_gpt = false;         // don't discover blobs from the GPT
  bool operator==(const LocalDiskConfig&) const = default;
};

// `backend.oss`. `endpoint` and `bucket_name` are required keys.
struct OssConfig {
  std::string scheme = "https";
  std::string endpoint{};
  std::string bucket_name{};
  std::string object_prefix{};               // prepended to every object key
  std::string access_key_id{};               // secret
  std::string access_key_secret{};           // secret
  bool skip_verify = false;                  // skip TLS certificate checks
  std::uint32_t timeout = kDefaultHttpTimeout;
  std::uint32_t connect_timeout = kDefaultHttpTimeout;
  std::uint8_t retry_limit = 0;
  ProxyConfig proxy{};
  std::vector<MirrorConfig> mirrors{};       // [0.2.0]
  std::vector<std::string> ca_cert_files{};  // [HEAD] extra trusted CAs (PEM files)
  bool operator==(const OssConfig&) const = default;
};

// `backend.s3`. `endpoint`, `region` and `bucket_name` are required keys.
struct S3Config {
  std::string scheme = "https";
  std::string endpoint{};                    // may be empty (AWS default endpoint)
  std::string region{};
  std::string bucket_name{};
  std::string object_prefix{};
  std::string access_key_id{};               // secret
  std::string access_key_secret{};           // secret
  bool skip_verify = false;
  std::uint32_t timeout = kDefaultHttpTimeout;
  std::uint32_t connect_timeout = kDefaultHttpTimeout;
  std::uint8_t retry_limit = 0;
  ProxyConfig proxy{};
  std::vector<MirrorConfig> mirrors{};       // [0.2.0]
  std::vector<std::string> ca_cert_files{};  // [HEAD]
  bool operator==(const S3Config&) const = default;
};

// `backend.registry`. `host` and `repo` are required keys.
struct RegistryConfig {
  std::string scheme = "https";
  std::string host{};                           // e.g. index.docker.io
  std::string repo{};                           // e.g. library/ubuntu
  std::optional<std::string> auth{};            // secret: base64("user:password")
  bool skip_verify = false;
  std::uint32_t timeout = kDefaultHttpTimeout;
  std::uint32_t connect_timeout = kDefaultHttpTimeout;
  std::uint8_t retry_limit = 0;
  std::optional<std::string> registry_token{};  // secret: bearer token
  std::string blob_url_scheme{};                // scheme for blob URLs (P2P workarounds)
  std::string blob_redirected_host{};           // fetch blobs from this host instead
  ProxyConfig proxy{};
  std::vector<MirrorConfig> mirrors{};          // [0.2.0]
  std::vector<std::string> ca_cert_files{};     // [HEAD]
  bool operator==(const RegistryConfig&) const = default;
};

// `backend."http-proxy"` [HEAD]: blobs served by a local HTTP server.
struct HttpProxyConfig {
  std::string addr{};               // http(s)://… or absolute Unix socket path
  std::string path{};               // URL path prefix, e.g. /ns/repo/blobs
  bool skip_verify = false;
  std::uint32_t timeout = kDefaultHttpTimeout;
  std::uint32_t connect_timeout = kDefaultHttpTimeout;
  std::uint8_t retry_limit = 0;
  ProxyConfig proxy{};
  std::vector<std::string> ca_cert_files{};
  bool operator==(const HttpProxyConfig&) const = default;
};

// `backend`: `type` names the section that must be present; other sections
// may be present too and are carried along (upstream does the same).
struct BackendConfigV2 {
  std::string type{};                           // localfs, localdisk, oss, s3, registry, http-proxy
  std::optional<LocalDiskConfig> localdisk{};
  std::optional<LocalFsConfig> localfs{};
  std::optional<OssConfig> oss{};
  std::optional<S3Config> s3{};
  std::optional<RegistryConfig> registry{};
  std::optional<HttpProxyConfig> http_proxy{};  // key `http-proxy`
  bool operator==(const BackendConfigV2&) const = default;
};

}  // namespace nydus::config
