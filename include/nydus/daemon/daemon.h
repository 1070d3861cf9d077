// The daemon behind the API: state machine, runtime configuration, events and
// the handler that answers every ApiRequest.
//
// This is nydusd's control plane. It does not own the socket (the API server
// does); filesystems are served by an optional FsService (fs_service.h). It
// validates mount requests (fs_type, prefetch list, configuration text) before
// the service sees them. Without a service, requests that need one answer the
// contract's "no service" errors (501 …(DaemonAbnormal(Unsupported))).
//
// Dispatch: handle() runs on the API server's I/O thread. Everything the
// daemon can answer from memory (info, events, metrics, config, log level)
// is answered inline; state transitions and filesystem work go to the
// daemon's worker thread so a slow one never stalls the I/O thread.
//
// Thread-safety: all public methods may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "nydus/api/payloads.h"
#include "nydus/api/service.h"
#include "nydus/daemon/events.h"
#include "nydus/daemon/fs_service.h"
#include "nydus/daemon/runtime_config.h"
#include "nydus/daemon/state_machine.h"
#include "nydus/daemon/supervisor.h"
#include "nydus/daemon/upgrade_state.h"

namespace nydus::daemon {

struct DaemonOptions {
  std::optional<std::string> id;          // --id
  std::optional<std::string> supervisor;  // --supervisor
  bool upgrade = false;                   // --upgrade: wait in INIT for takeover
  api::BuildInfo build;                   // reported in daemon info
  // Actions of the state machine (§5.2), all optional: Start runs
  // start_service (e.g. mount FUSE and start its workers); Stop from READY runs
  // stop_service (unmount). Exit runs neither, so FUSE stays mounted.
  std::function<Result<void>()> start_service;
  std::function<void()> stop_service;
  // Whether the FUSE session has completed the kernel's INIT (for sendfd).
  std::function<bool()> fuse_ready;
  // For sendfd (docs/upgrade.md): the state to hand over, and the /dev/fuse
  // descriptor (owned by the service; -1 without one).
  std::function<Result<UpgradeState>()> save_state;
  std::function<int()> fuse_fd;
  // For takeover: re-create the saved mounts and keep the received /dev/fuse
  // descriptor for the next Start; the number of mounts restored.
  std::function<Result<std::size_t>(const UpgradeState&, UniqueFd)> restore_state;
  // Bound on each supervisor transfer (a supervisor that never accepts,
  // reads or writes costs at most this).
  std::chrono::milliseconds supervisor_timeout = kSupervisorTimeout;
  // The events ring (GET /api/v1/daemon/events). Made before the services
  // that report into it, so they can share it; null: the daemon makes its own.
  std::shared_ptr<EventRing> events;
};

// The build information of this binary (also printed by `nydusd --version`).
api::BuildInfo build_info();

class Daemon : public api::ApiHandler {
 public:
  // `fs` may be null (API-only daemon).
  explicit Daemon(DaemonOptions options, std::shared_ptr<FsService> fs = nullptr);
  ~Daemon() override;  // stops the worker thread

  // Start-up inputs of §5.3: normal mode fires Mount then Start (-> RUNNING);
  // upgrade mode stays INIT. Errors: the failing transition's.
  Result<void> start();

  // Graceful shutdown for SIGTERM/SIGINT (§5.3): RUNNING -> Stop, Stop;
  // STOPPED -> nothing; otherwise Stop.
  void shutdown();

  // Stops taking slow requests (they are dropped from now on) and waits up to
  // `limit` for the queued and running ones. False if one is still running
  // after that, stuck in a system call (a mount source on a hung filesystem):
  // the caller must then end the process without destroying this Daemon,
  // whose destructor would wait for that request without bound.
  bool stop_worker(std::chrono::milliseconds limit);

  // `cb` runs (on the I/O thread, must not block) once an exit requested through
  // PUT /api/v1/daemon/exit has been accepted and its 204 written.
  void set_exit_handler(std::function<void()> cb);

  void handle(api::ApiRequest request, api::ApiReply reply) override;

  DaemonState state() const { return machine_.state(); }
  EventRing& events() { return *events_; }
  RuntimeConfigStore& runtime_config() { return runtime_config_; }

  class Worker;

 private:
  api::ApiResult daemon_info(bool v2) const;
  std::string build_daemon_info(bool v2, DaemonState state) const;
  api::ApiResult configure(const api::DaemonConf& conf);
  api::ApiResult get_config(const api::GetConfig& r) const;
  api::ApiResult update_config(const api::UpdateConfig& r);
  api::ApiResult start_service();
  api::ApiResult exit_daemon();
  api::ApiResult takeover();
  Result<void> restore();
  bool mount_reissued_after_takeover(const std::string& mountpoint, const api::ApiMountCmd& cmd, FsType type) const;
  api::ApiResult send_fuse_fd();
  api::ApiResult mount(const std::string& mountpoint, const api::ApiMountCmd& cmd, bool remount);
  void apply_stored_registry_auth(MountRequest& req) const;
  api::ApiResult umount(const std::string& mountpoint);
  api::ApiResult backend_info(const std::string& mountpoint);
  api::ApiResult metrics(const api::ApiRequest& r);
  api::ApiResult prometheus(bool files);
  api::ApiResult execute(const api::ApiRequest& r);

  const DaemonOptions options_;
  const std::shared_ptr<FsService> fs_;  // null: no filesystem service
  StateMachine machine_;
  const std::shared_ptr<EventRing> events_;  // never null
  RuntimeConfigStore runtime_config_;
  std::function<void()> exit_handler_;  // set before the API starts
  std::unique_ptr<Worker> worker_;

  // Daemon info is the most frequent request (supervisors poll it) and only
  // changes with the state or the mounts: keep the serialised text per
  // version, keyed by what it was built from.
  struct InfoCacheSlot {
    bool valid = false;
    DaemonState state = DaemonState::kInit;
    std::uint64_t generation = 0;
    std::string json;
  };
  mutable std::mutex info_mu_;
  mutable InfoCacheSlot info_cache_[2];  // [v2]; guarded by info_mu_
};

}  // namespace nydus::daemon
