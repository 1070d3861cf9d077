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
#include <string_view>
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

// ---- Reply payload kinds ----

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

// ---- Operations (contract §2.0) ----
//
// Each operation carries its traits next to its declaration: upstream's
// variant name (logs), whether it runs on the daemon's worker (state
// transitions and filesystem work) or inline on the I/O thread (answers from
// memory), and the payload kind of a successful reply. traits_of() reads them
// for any ApiRequest; nothing else lists the operations again.

enum class Runs { kInline, kWorker };

struct OpTraits {
  std::string_view name;
  Runs runs = Runs::kInline;
  PayloadKind reply = PayloadKind::kEmpty;
  bool reply_may_be_empty = false;  // a 204 also fits (no data yet)
};

struct GetDaemonInfo {
  static constexpr OpTraits traits{"GetDaemonInfo", Runs::kInline, PayloadKind::kDaemonInfo};
};
struct GetDaemonInfoV2 {
  static constexpr OpTraits traits{"GetDaemonInfoV2", Runs::kInline, PayloadKind::kDaemonInfo};
};
struct ConfigureDaemon {
  static constexpr OpTraits traits{"ConfigureDaemon", Runs::kInline, PayloadKind::kEmpty};
  DaemonConf conf;
};
struct GetEvents {
  static constexpr OpTraits traits{"GetEvents", Runs::kInline, PayloadKind::kEvents};
};
struct ExportFsBackendInfo {
  static constexpr OpTraits traits{"ExportFsBackendInfo", Runs::kInline, PayloadKind::kFsBackendInfo};
  std::string mountpoint;
};
struct Start {
  static constexpr OpTraits traits{"Start", Runs::kWorker, PayloadKind::kEmpty};
};
// Answered inline, acting only after its 204 has left (§10 #17).
struct Exit {
  static constexpr OpTraits traits{"Exit", Runs::kInline, PayloadKind::kEmpty};
};
struct SendFuseFd {
  static constexpr OpTraits traits{"SendFuseFd", Runs::kWorker, PayloadKind::kEmpty};
};
struct TakeoverFuseFd {
  static constexpr OpTraits traits{"TakeoverFuseFd", Runs::kWorker, PayloadKind::kEmpty};
};
struct Mount {
  static constexpr OpTraits traits{"Mount", Runs::kWorker, PayloadKind::kEmpty};
  std::string mountpoint;
  ApiMountCmd cmd;
};
struct Remount {
  static constexpr OpTraits traits{"Remount", Runs::kWorker, PayloadKind::kEmpty};
  std::string mountpoint;
  ApiMountCmd cmd;
};
struct Umount {
  static constexpr OpTraits traits{"Umount", Runs::kWorker, PayloadKind::kEmpty};
  std::string mountpoint;
};
struct ExportFsGlobalMetrics {
  static constexpr OpTraits traits{"ExportFsGlobalMetrics", Runs::kInline, PayloadKind::kFsGlobalMetrics};
  std::optional<std::string> id;
};
struct ExportFsFilesMetrics {
  static constexpr OpTraits traits{"ExportFsFilesMetrics", Runs::kInline, PayloadKind::kFsFilesMetrics};
  std::optional<std::string> id;
  bool latest_read_files = false;
};
struct ExportFsAccessPatterns {
  static constexpr OpTraits traits{"ExportFsAccessPatterns", Runs::kInline, PayloadKind::kFsFilesPatterns};
  std::optional<std::string> id;
};
struct ExportBackendMetrics {
  static constexpr OpTraits traits{"ExportBackendMetrics", Runs::kInline, PayloadKind::kBackendMetrics};
  std::optional<std::string> id;
};
struct ExportBlobcacheMetrics {
  static constexpr OpTraits traits{"ExportBlobcacheMetrics", Runs::kInline, PayloadKind::kBlobcacheMetrics};
  std::optional<std::string> id;
};
struct ExportFsInflightMetrics {
  static constexpr OpTraits traits{"ExportFsInflightMetrics", Runs::kInline, PayloadKind::kInflightMetrics, true};
};
// GET /api/v1/metrics/prometheus (ours): every metric in the Prometheus text format.
struct ExportPrometheusMetrics {
  static constexpr OpTraits traits{"ExportPrometheusMetrics", Runs::kInline, PayloadKind::kPrometheus};
  bool files = false;
};
struct GetConfig {
  static constexpr OpTraits traits{"GetConfig", Runs::kInline, PayloadKind::kConfig};
  std::optional<std::string> id;
};
struct UpdateConfig {
  static constexpr OpTraits traits{"UpdateConfig", Runs::kInline, PayloadKind::kEmpty};
  std::optional<std::string> id;
  ConfigMap values;
};
struct GetBlobObject {
  static constexpr OpTraits traits{"GetBlobObject", Runs::kInline, PayloadKind::kBlobObjectList};
  BlobCacheObjectId param;
};
struct CreateBlobObject {
  static constexpr OpTraits traits{"CreateBlobObject", Runs::kWorker, PayloadKind::kEmpty};
  BlobCacheEntry entry;
  config::BlobCacheEntryConfigV2 config;  // the entry's prepared configuration (§3.3.2)
};
struct DeleteBlobObject {
  static constexpr OpTraits traits{"DeleteBlobObject", Runs::kWorker, PayloadKind::kEmpty};
  BlobCacheObjectId param;
};
struct DeleteBlobFile {
  static constexpr OpTraits traits{"DeleteBlobFile", Runs::kWorker, PayloadKind::kEmpty};
  std::string blob_id;
};

using ApiRequest = std::variant<
    GetDaemonInfo, GetDaemonInfoV2, ConfigureDaemon, GetEvents, ExportFsBackendInfo, Start, Exit, SendFuseFd,
    TakeoverFuseFd, Mount, Remount, Umount, ExportFsGlobalMetrics, ExportFsFilesMetrics, ExportFsAccessPatterns,
    ExportBackendMetrics, ExportBlobcacheMetrics, ExportFsInflightMetrics, GetConfig, UpdateConfig, GetBlobObject,
    CreateBlobObject, DeleteBlobObject, DeleteBlobFile, ExportPrometheusMetrics>;

// The traits of the operation `r` holds.
const OpTraits& traits_of(const ApiRequest& r);
// Upstream's variant name, e.g. "GetDaemonInfo" (for logs).
inline std::string_view request_name(const ApiRequest& r) { return traits_of(r).name; }
// Whether a successful reply of `kind` fits the operation `r`.
bool payload_fits(const ApiRequest& r, PayloadKind kind);

// ---- Replies ----

// A successful reply: its kind and its JSON text (for kPrometheus the exposition
// text), already serialised by the daemon, so the transport never re-encodes it.
struct ApiResponsePayload {
  PayloadKind kind = PayloadKind::kEmpty;
  std::string json;
  static ApiResponsePayload empty() { return {}; }
};

using ApiResult = Result<ApiResponsePayload, ApiError>;

}  // namespace nydus::api
