// The typed API model: one struct per operation (upstream's ApiRequest
// variants), the request bodies they carry, and the reply payload kinds.
//
// These are plain values shared by the router (which builds them from HTTP),
// the daemon (which executes them) and the client (which sends them). No
// transport types appear here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "nydus/api/error.h"
#include "nydus/config/blob_entry.h"
#include "nydus/config/config_v2.h"
#include "nydus/json.h"

namespace nydus::api {

// ---- Request bodies (contract §3) ----

struct DaemonConf {  // PUT /api/v{1,2}/daemon
  std::string log_level;
  bool operator==(const DaemonConf&) const = default;
};

struct ApiMountCmd {  // POST/PUT /api/v1/mount
  std::string source;
  std::string fs_type;  // "" when absent; the daemon rejects it
  std::string config;   // ConfigV2 / legacy config as JSON or TOML *text*
  std::optional<std::vector<std::string>> prefetch_files;
  bool operator==(const ApiMountCmd&) const = default;
};

struct BlobCacheEntry {  // PUT /api/v2/blobs
  std::string blob_type;  // JSON "type": "bootstrap" or "datablob"
  std::string blob_id;    // JSON "id"
  std::string domain_id;
  // Per-blob configuration objects (§3.3.1), decoded with the body.
  std::optional<config::BlobCacheEntryConfig> config;     // legacy (what nydus-snapshotter sends)
  std::optional<config::BlobCacheEntryConfigV2> config_v2;
  bool operator==(const BlobCacheEntry&) const = default;
};

struct BlobCacheObjectId {  // query of GET/DELETE /api/v2/blobs
  std::string domain_id;
  std::string blob_id;
  bool operator==(const BlobCacheObjectId&) const = default;
};

using ConfigMap = std::map<std::string, std::string>;  // PUT /api/v1/config

// ---- Operations (contract §2.0) ----

struct GetDaemonInfo {};
struct GetDaemonInfoV2 {};
struct ConfigureDaemon { DaemonConf conf; };
struct GetEvents {};
struct ExportFsBackendInfo { std::string mountpoint; };
struct Start {};
struct Exit {};
struct SendFuseFd {};
struct TakeoverFuseFd {};
struct Mount { std::string mountpoint; ApiMountCmd cmd; };
struct Remount { std::string mountpoint; ApiMountCmd cmd; };
struct Umount { std::string mountpoint; };
struct ExportFsGlobalMetrics { std::optional<std::string> id; };
struct ExportFsFilesMetrics { std::optional<std::string> id; bool latest_read_files = false; };
struct ExportFsAccessPatterns { std::optional<std::string> id; };
struct ExportBackendMetrics { std::optional<std::string> id; };
struct ExportBlobcacheMetrics { std::optional<std::string> id; };
struct ExportFsInflightMetrics {};
// GET /api/v1/metrics/prometheus (ours): every metric in the Prometheus text format.
struct ExportPrometheusMetrics { bool files = false; };
struct GetConfig { std::optional<std::string> id; };
struct UpdateConfig { std::optional<std::string> id; ConfigMap values; };
struct GetBlobObject { BlobCacheObjectId param; };
struct CreateBlobObject {
  BlobCacheEntry entry;
  config::BlobCacheEntryConfigV2 config;  // the entry's prepared configuration (§3.3.2)
};
struct DeleteBlobObject { BlobCacheObjectId param; };
struct DeleteBlobFile { std::string blob_id; };

using ApiRequest = std::variant<
    GetDaemonInfo, GetDaemonInfoV2, ConfigureDaemon, GetEvents, ExportFsBackendInfo, Start, Exit, SendFuseFd,
    TakeoverFuseFd, Mount, Remount, Umount, ExportFsGlobalMetrics, ExportFsFilesMetrics, ExportFsAccessPatterns,
    ExportBackendMetrics, ExportBlobcacheMetrics, ExportFsInflightMetrics, GetConfig, UpdateConfig, GetBlobObject,
    CreateBlobObject, DeleteBlobObject, DeleteBlobFile, ExportPrometheusMetrics>;

// Upstream's variant name, e.g. "GetDaemonInfo" (for logs).
std::string_view request_name(const ApiRequest& r);

// ---- Replies ----

enum class PayloadKind {
  kEmpty,             // 204
  kDaemonInfo,
  kEvents,
  kFsBackendInfo,
  kFsGlobalMetrics,
  kFsFilesMetrics,
  kFsFilesPatterns,
  kBackendMetrics,
  kBlobcacheMetrics,
  kInflightMetrics,
  kConfig,
  kBlobObjectList,
  kPrometheus,  // text exposition, not JSON
};

// A successful reply: its kind and its JSON text (for kPrometheus the exposition
// text), already serialised by the daemon, so the transport never re-encodes it.
struct ApiResponsePayload {
  PayloadKind kind = PayloadKind::kEmpty;
  std::string json;
  static ApiResponsePayload empty() { return {}; }
};

using ApiResult = Result<ApiResponsePayload, ApiError>;

}  // namespace nydus::api
