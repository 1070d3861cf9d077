// FuseService: the FsService of a FUSE daemon (nydusd with --mountpoint).
//
// Owns the pseudo-filesystem (instances attached at paths inside it), the FUSE
// session serving it at a host mountpoint, and the metrics registry keyed by
// instance mountpoint. Instances: `passthrough_fs` serves the host directory
// in `source` read-only; `rafs` serves the RAFS v6 / EROFS bootstrap in
// `source` (fs/rafs_fs.h) with blobs from the configured backend, read
// directly (no blob cache yet: a `cache` section is validated, and its
// `work_dir` keeps `<blob_id>.blob.meta` chunk-info files when it exists).
// Digests are verified when `rafs.validate` or `cache.validate` is set.
//
// Metrics registry (differs from upstream, §10 #24): an entry is created at
// mount, replaced at remount and removed at umount, so "no id" queries work
// again once a single instance is left. Counting rules: fs/fs_metrics.h.
//
// Remount swaps in a new instance of `source` (for RAFS: the new bootstrap
// and configuration; a new inode space and fresh metrics); files already open
// keep reading the old one until closed.
//
// Lifecycle: construct, start(mountpoint, threads) mounts FUSE (mounts through
// the API may happen before or after), stop() unmounts (also run by the
// destructor). Instances may be attached before start(): they are served once
// the session runs.
//
// Thread-safety: every method may be called from any thread (FsService rules);
// mount/remount/umount are serialised among themselves; metrics and info
// methods never wait for I/O or for a mount in progress.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "nydus/daemon/fs_service.h"
#include "nydus/daemon/supervisor.h"
#include "nydus/daemon/upgrade_state.h"
#include "nydus/fs/filesystem.h"
#include "nydus/fs/fs_metrics.h"
#include "nydus/fs/fuse_server.h"
#include "nydus/fs/passthrough_fs.h"
#include "nydus/fs/pseudo_fs.h"
#include "nydus/fs/rafs_fs.h"
#include "nydus/storage/prefetch.h"

namespace nydus::daemon {

struct FuseServiceOptions {
  double entry_timeout = 1.0;  // seconds the kernel caches names
  double attr_timeout = 1.0;   // seconds the kernel caches attributes
  // Long kernel caching of RAFS instances (FuseServerOptions::kernel_cache;
  // nydusd --rafs-kernel-cache).
  bool kernel_cache = true;
  // Kernel readahead of the FUSE mount in KiB, set after INIT (fs::set_fuse_readahead;
  // nydusd --fuse-readahead-kb); 0 keeps the kernel's 128 KiB.
  unsigned readahead_kb = fs::kDefaultReadaheadKb;
  // Decoded chunks kept in memory, shared by every RAFS instance (a chunk is
  // fetched and decompressed once for the FUSE requests inside it).
  std::size_t chunk_cache_bytes = 16u << 20;
  // Test hook for passthrough instances: runs before each read, a non-zero
  // errno fails it (may block, to hold a request in flight).
  std::function<int(fs::Ino)> before_read;
  // The kernel ended the FUSE session while it was served (FuseServerOptions::on_session_end).
  std::function<void(const std::string&)> on_session_end;
  // Applied when an inherited connection starts (--failover-policy, contract §6.4).
  fs::FailoverPolicy failover_policy = fs::FailoverPolicy::kResend;
  // Directory of the passthrough instances' node tables (fs/passthrough_fs.h,
  // docs/upgrade.md), owned by this daemon and its successors; empty: none
  // (passthrough inode numbers then do not survive an upgrade or failover).
  std::string node_table_dir;
};

// "YYYY-MM-DD HH:MM:SS.F +00:00:00" (UTC; F = nanoseconds without trailing zeros, at least one digit).
std::string format_mounted_time(std::chrono::system_clock::time_point t);

class FuseService final : public FsService {
 public:
  // `on_error` receives data-plane error texts (e.g. for EventRing::push); may be empty.
  explicit FuseService(std::function<void(std::string)> on_error, FuseServiceOptions options = {});
  ~FuseService() override;
  FuseService(const FuseService&) = delete;
  FuseService& operator=(const FuseService&) = delete;

  // Mounts FUSE at the host directory `mountpoint` with `threads` workers.
  // Errors: kAlreadyExists (started), kInvalidArgument (threads 0), kIo (mount failed).
  Result<void> start(const std::string& mountpoint, unsigned threads);
  // Unmounts FUSE and joins the workers; attached instances stay attached. Idempotent.
  void stop();
  bool started() const;
  // True once the kernel's FUSE_INIT has been answered.
  bool initialized() const;
  // The session's /dev/fuse descriptor (owned by the service), -1 when not started.
  int fuse_fd() const;
  // What a successor needs to serve this connection (docs/upgrade.md).
  // kNotReady before the kernel's FUSE_INIT.
  Result<UpgradeState> save_state() const;
  // Takeover (docs/upgrade.md): re-creates every saved mount at its saved
  // slot and epoch and keeps `fd` (the /dev/fuse descriptor of the saved
  // connection) for the next start(), which then serves that connection
  // instead of mounting. All or nothing: on error no mount is left and the
  // descriptor is closed. Returns the number of mounts restored.
  // Errors: kAlreadyExists (a session is served or a takeover is pending),
  // kCorrupt (a saved mountpoint not normalised), a mount's own error.
  Result<std::size_t> restore(const UpgradeState& state, UniqueFd fd);
  // Hot-upgrade exit: fs::FuseServer::handover (no unmount). False when a
  // request is still unanswered after `limit`; the process must then _exit.
  bool handover(std::chrono::milliseconds limit);
  // True when `req` is identical to a mount restored by takeover (the
  // snapshotter re-issues every mount after an upgrade, §6.6 C.8).
  bool same_as_restored(const MountRequest& req) const override;
  // Removes node tables in node_table_dir that no current mount uses (left by
  // a daemon that died without a successor, or by mounts made after the last
  // sendfd). Run at a fresh start and once an inherited connection is served.
  void prune_node_tables() const;

  Result<void> mount(const MountRequest& req) override;
  Result<void> remount(const MountRequest& req) override;
  Result<void> umount(const std::string& mountpoint) override;
  bool is_mounted(const std::string& mountpoint) const override;
  std::vector<MountInfo> mounts() const override;
  std::uint64_t mounts_generation() const override;
  Result<std::string> global_metrics(const std::optional<std::string>& id) override;
  Result<std::string> files_metrics(const std::optional<std::string>& id, bool latest_read_files) override;
  Result<std::string> access_patterns(const std::optional<std::string>& id) override;
  Result<std::string> backend_metrics(const std::optional<std::string>& id) override;
  Result<std::string> blobcache_metrics(const std::optional<std::string>& id) override;
  std::optional<std::string> inflight_metrics() override;
  Result<std::string> backend_info(const std::string& mountpoint) override;
  void renew_credentials(const std::optional<std::string>& id, const std::string& auth) override;

 private:
  struct Record {
    MountInfo info;
    MountRequest request;  // as mounted, for the upgrade state
    std::shared_ptr<fs::FsMetrics> metrics;
    std::shared_ptr<fs::RafsFs> rafs;  // RAFS instances only
    std::shared_ptr<storage::Prefetcher> prefetch;  // RAFS with prefetch on and a blob cache
    bool restored = false;             // re-created by takeover
    std::shared_ptr<fs::PassthroughFs> passthrough{};  // passthrough instances only
  };
  struct Inherited {  // a connection received by takeover, served by the next start()
    UniqueFd fd;
    FuseInitParams init;
    std::string mountpoint;
    std::uint64_t conn_id = 0;
  };
  Result<void> start_inherited(Inherited in, const fs::FuseServerOptions& o);
  Result<void> restore_mount(const SavedMount& m);
  // `table`: the passthrough node table to create, or with `resume` to reopen.
  Result<std::shared_ptr<fs::Filesystem>> make_instance(const MountRequest& req, const std::string& mp,
                                                        const std::string& table = {}, bool resume = false) const;
  // A new node table path for a passthrough mount ("" without node_table_dir or for RAFS).
  std::string new_node_table(const MountRequest& req);
  // The restored passthrough instance: its saved table when usable (the ids
  // the kernel holds stay valid), else a new one at a new epoch of `at`.
  Result<std::shared_ptr<fs::Filesystem>> restore_passthrough(const SavedMount& m, const std::string& mp, fs::Placement& at);
  Result<std::shared_ptr<fs::RafsFs>> make_rafs(const MountRequest& req, const std::string& mp) const;
  // Starts the instance's prefetch when its configuration asks for it (null otherwise).
  std::shared_ptr<storage::Prefetcher> start_prefetch(const MountRequest& req, const std::shared_ptr<fs::RafsFs>& rafs,
                                                      const std::string& mp) const;
  void put_record(const MountRequest& req, const std::string& mp, const std::shared_ptr<fs::Filesystem>& inst,
                  std::shared_ptr<fs::FsMetrics> metrics);
  // kInvalidArgument when a path the instance would read is on our own FUSE mount.
  Result<void> check_not_on_own_mount(const MountRequest& req) const;
  // The record of `id`, or of the only instance when `id` is absent; kNotFound otherwise.
  Result<Record> find_record(const std::optional<std::string>& id) const;
  Result<std::shared_ptr<fs::FsMetrics>> find_metrics(const std::optional<std::string>& id) const;

  const FuseServiceOptions options_;
  const std::function<void(std::string)> on_error_;
  const std::shared_ptr<storage::ChunkCache> chunk_cache_;
  // Open blob cache files, shared by every mount of the same blob.
  const std::shared_ptr<storage::BlobCacheRegistry> blob_caches_ = std::make_shared<storage::BlobCacheRegistry>();
  // Shown as the mtime of RAFS inodes without one: the same for every
  // instance and across remounts (whole seconds, as upstream).
  const struct timespec started_;
  const std::uint64_t started_ns_;  // names this daemon's node tables
  fs::PseudoFs pseudo_;
  std::mutex mount_mu_;                          // serialises mount/remount/umount
  mutable std::mutex mu_;
  std::map<std::string, Record> records_;        // guarded by mu_; key: normalised mountpoint
  std::shared_ptr<fs::FuseServer> server_;       // guarded by mu_
  std::optional<dev_t> own_dev_;                 // guarded by mu_; st_dev of our mount while started
  std::optional<Inherited> inherited_;           // guarded by mu_; set by restore() until start()
  std::atomic<std::uint64_t> generation_{0};     // bumped under mu_ after records_ changes
  std::atomic<std::uint64_t> tables_made_{0};    // names new node tables
};

}  // namespace nydus::daemon
