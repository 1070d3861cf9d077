// A typed client for the nydusd API over its Unix socket (what nydusctl uses).
//
// One call per route. Each call opens a connection, sends one request and
// reads one response (so a client object holds no connection between calls).
// Success returns the decoded payload; failure a ClientError: for an HTTP
// error its status, code and message from the {"code","message"} body; for a
// transport failure (no daemon, timeout, garbage) status 0 and a description.
//
// Thread-safety: a client object may be used from several threads at once.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "nydus/api/payloads.h"
#include "nydus/api/types.h"

namespace nydus::api {

struct ClientError {
  unsigned status = 0;  // 0: the request did not get an HTTP answer
  std::string code;     // e.g. "NotFound"; "ConnectionFailed", "Timeout", "BadResponse" when status is 0
  std::string message;  // the daemon's message or the transport problem
  std::string to_string() const;
};

template <class T>
using ClientResult = tl::expected<T, ClientError>;

struct RawResponse {
  unsigned status = 0;
  std::string body;
};

class ApiClient {
 public:
  explicit ApiClient(std::string socket_path, std::chrono::milliseconds timeout = std::chrono::seconds(30))
      : socket_path_(std::move(socket_path)), timeout_(timeout) {}

  ClientResult<DaemonInfo> daemon_info();
  ClientResult<DaemonInfo> daemon_info_v2();
  ClientResult<void> configure_daemon(const DaemonConf& conf);
  ClientResult<EventsInfo> events();
  ClientResult<nlohmann::json> fs_backend_info(const std::string& mountpoint);
  ClientResult<void> start();
  ClientResult<void> exit();
  ClientResult<void> send_fuse_fd();
  ClientResult<void> takeover();

  ClientResult<void> mount(const std::string& mountpoint, const ApiMountCmd& cmd);
  ClientResult<void> remount(const std::string& mountpoint, const ApiMountCmd& cmd);
  ClientResult<void> umount(const std::string& mountpoint);

  ClientResult<nlohmann::json> global_metrics(const std::optional<std::string>& id = std::nullopt);
  ClientResult<nlohmann::json> files_metrics(const std::optional<std::string>& id = std::nullopt, bool latest = false);
  ClientResult<nlohmann::json> access_patterns(const std::optional<std::string>& id = std::nullopt);
  ClientResult<nlohmann::json> backend_metrics(const std::optional<std::string>& id = std::nullopt);
  ClientResult<nlohmann::json> blobcache_metrics(const std::optional<std::string>& id = std::nullopt);
  // nullopt when nothing is in flight (204).
  ClientResult<std::optional<nlohmann::json>> inflight_metrics();
  // The Prometheus text exposition; `files` adds per-file metrics where enabled.
  ClientResult<std::string> prometheus_metrics(bool files = false);

  ClientResult<ConfigMap> get_config(const std::optional<std::string>& id = std::nullopt);
  ClientResult<void> update_config(const std::optional<std::string>& id, const ConfigMap& values);

  ClientResult<nlohmann::json> get_blob_objects(const BlobCacheObjectId& param);
  ClientResult<void> create_blob_object(const BlobCacheEntry& entry);
  ClientResult<void> delete_blob_object(const BlobCacheObjectId& param);
  ClientResult<void> delete_blob_file(const std::string& blob_id);

  // Any request; HTTP errors are returned as responses, not ClientErrors.
  ClientResult<RawResponse> request(const std::string& method, const std::string& target, const std::string& body = "");

 private:
  ClientResult<RawResponse> expect(const std::string& method, const std::string& target, const std::string& body,
                                   unsigned success_status);
  ClientResult<nlohmann::json> get_json(const std::string& target);
  ClientResult<void> put_empty(const std::string& method, const std::string& target, const std::string& body = "");

  std::string socket_path_;
  std::chrono::milliseconds timeout_;
};

}  // namespace nydus::api
