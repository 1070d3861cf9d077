// The filesystem service behind the mount and metrics routes.
//
// A daemon that serves filesystems (FUSE: the pseudo-filesystem root with
// instances attached at paths inside it) implements this interface; the
// daemon's API handler validates requests (fs_type, prefetch list, config),
// calls it, and turns its errors into the contract's Mount(…)/Metrics(…)
// answers. Without a service (API-only nydusd) those routes answer 501.
//
// Errors, by code, and how the API reports them (the daemon writes the
// contract's sentences; a service's own message only says what it found):
//   kAlreadyExists -> 500 Other("object or filesystem already exists")
//   kNotFound      -> 500 Other("object or filesystem doesn't exist") (metrics: 404 NoCounter)
//   kUnsupported   -> 501 MountFilesystem(Unsupported)
//   anything else  -> 500 Other("<message>")
//
// Thread-safety: every method may be called from any thread concurrently;
// mount/remount/umount are called from the daemon's worker thread, the
// metrics and info methods from the API I/O thread and must not block on I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nydus/config/config_v2.h"
#include "nydus/result.h"

namespace nydus::daemon {

enum class FsType { kRafs, kPassthrough };

struct MountRequest {
  std::string mountpoint;                   // path inside the pseudo-filesystem, e.g. "/" or "/snap-1"
  FsType type = FsType::kPassthrough;
  std::string source;                       // RAFS bootstrap file or passthrough directory
  config::ConfigV2 config;                  // parsed and validated
  std::vector<std::string> prefetch_files;  // absolute paths inside the image
};

struct MountInfo {  // one backend_collection entry (contract §4.1)
  std::string mountpoint;
  FsType type = FsType::kPassthrough;
  std::string mounted_time;  // "YYYY-MM-DD HH:MM:SS.F +00:00:00"
  std::optional<config::ConfigV2> config;  // RAFS only; serialised without secrets
};

class FsService {
 public:
  virtual ~FsService() = default;

  virtual Result<void> mount(const MountRequest& req) = 0;
  // Swaps the instance at req.mountpoint in place. kNotFound if nothing is mounted there.
  virtual Result<void> remount(const MountRequest& req) = 0;
  virtual Result<void> umount(const std::string& mountpoint) = 0;
  virtual bool is_mounted(const std::string& mountpoint) const = 0;
  virtual std::vector<MountInfo> mounts() const = 0;
  // True when `req` is identical to a mount that takeover restored: the
  // daemon then answers a re-issued mount with success, changing nothing.
  virtual bool same_as_restored(const MountRequest&) const { return false; }
  // A counter that changes (after the change is visible) whenever mounts()
  // would answer differently; lets the daemon cache what it builds from it.
  virtual std::uint64_t mounts_generation() const = 0;

  // Metrics as the JSON texts of contract §4.3–§4.7 (rendered by
  // daemon/metrics_json.h from the layers' snapshots). `id` selects the
  // instance by mountpoint; without it there must be exactly one
  // instance. kNotFound when no instance matches (-> 404 NoCounter).
  virtual Result<std::string> global_metrics(const std::optional<std::string>& id) = 0;
  virtual Result<std::string> files_metrics(const std::optional<std::string>& id, bool latest_read_files) = 0;
  virtual Result<std::string> access_patterns(const std::optional<std::string>& id) = 0;
  virtual Result<std::string> backend_metrics(const std::optional<std::string>& id) = 0;
  virtual Result<std::string> blobcache_metrics(const std::optional<std::string>& id) = 0;
  // In-flight FUSE requests (§4.8); nullopt when none (-> 204).
  virtual std::optional<std::string> inflight_metrics() = 0;
  // RAFS super-block summary (§4.9). kNotFound: nothing mounted; kInvalidArgument:
  // a passthrough instance (the API answers "filesystem type mismatch, expect RAFS").
  virtual Result<std::string> backend_info(const std::string& mountpoint) = 0;
  // New registry credentials (PUT /api/v1/config registry_auth, base64
  // user:pass) for the instance mounted at `id`, or every instance without
  // it; backends use them from their next request on. Must not block on I/O.
  virtual void renew_credentials(const std::optional<std::string>& /*id*/, const std::string& /*auth*/) {}
};

}  // namespace nydus::daemon
