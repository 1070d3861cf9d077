// Daemon: the API handler and the control-plane transitions (§2, §5).
#include "nydus/daemon/daemon.h"

#include <fcntl.h>

#include <condition_variable>
#include <thread>

#include <spdlog/spdlog.h>

#include "nydus/api/body.h"
#include "nydus/api/channel.h"
#include "nydus/config/parse.h"
#include "nydus/config/serialize.h"
#include "nydus/config/validate.h"
#include "nydus/daemon/logging.h"

namespace nydus::daemon {

using api::ApiError;
using api::ApiResponsePayload;
using api::ApiResult;
using api::DaemonError;
using api::PayloadKind;

// Runs slow requests one at a time, in arrival order, off the I/O thread.
class Daemon::Worker {
 public:
  Worker() : thread_([this] { run(); }) {}
  ~Worker() {
    tasks_.close();
    thread_.join();
  }
  void post(std::function<void()> task) {
    if (!tasks_.send(std::move(task))) spdlog::warn("daemon worker stopped; request dropped");
  }
  bool stop_within(std::chrono::milliseconds limit) {
    tasks_.close();
    std::unique_lock lock(mu_);
    return done_cv_.wait_for(lock, limit, [this] { return done_; });
  }

 private:
  void run() {
    while (auto task = tasks_.recv()) (*task)();
    std::lock_guard lock(mu_);
    done_ = true;
    done_cv_.notify_all();
  }
  api::Channel<std::function<void()>> tasks_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  bool done_ = false;  // guarded by mu_: run() has returned
  std::thread thread_;
};

namespace {

tl::unexpected<ApiError> abnormal(DaemonError e) { return tl::unexpected(ApiError::daemon_abnormal(std::move(e))); }

DaemonError from_transition(const Error& e) {
  if (e.code() == ErrorCode::kUnexpectedEvent) return DaemonError::unexpected_event(e.message());
  if (e.code() == ErrorCode::kUnsupported) return DaemonError::unsupported();
  if (e.code() == ErrorCode::kNotReady) return DaemonError::not_ready();
  return DaemonError::from(e);
}

ApiResult payload(PayloadKind kind, std::string json) { return ApiResponsePayload{kind, std::move(json)}; }

constexpr std::string_view kPassthroughTypes[] = {"passthrough", "passthroughfs", "passthrough_fs"};
// A service error as the daemon-side error of the contract (fs_service.h):
// the code picks HEAD's sentence for the two cases clients see most, whatever
// the service's own message says.
DaemonError daemon_error(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kUnsupported: return DaemonError::unsupported();
    case ErrorCode::kNotReady: return DaemonError::not_ready();
    case ErrorCode::kNotFound: return DaemonError::not_found();
    case ErrorCode::kAlreadyExists: return DaemonError::already_exists();
    default: return DaemonError::from(e);
  }
}

tl::unexpected<ApiError> mount_error(const Error& e) { return tl::unexpected(ApiError::mount(daemon_error(e))); }

}  // namespace

Daemon::Daemon(DaemonOptions options, std::shared_ptr<FsService> fs)
    : options_(std::move(options)),
      fs_(std::move(fs)),
      machine_([this](StateInput input, DaemonState from, DaemonState) -> Result<void> {
        if (input == StateInput::kTakeover) return restore();
        if (input == StateInput::kStart && options_.start_service) {
          if (auto r = options_.start_service(); !r) {
            return fail(r.error().code(), "failed to start service, " + r.error().message());
          }
        }
        if (input == StateInput::kStop && from == DaemonState::kReady && options_.stop_service) {
          options_.stop_service();
        }
        return {};
      }),
      events_(options_.events ? options_.events : std::make_shared<EventRing>()),
      worker_(std::make_unique<Worker>()) {}

Daemon::~Daemon() { worker_.reset(); }

Result<void> Daemon::start() {
  if (options_.upgrade) return {};  // wait in INIT for takeover
  if (auto r = machine_.fire(StateInput::kMount); !r) return tl::unexpected(r.error());
  if (auto r = machine_.fire(StateInput::kStart); !r) return tl::unexpected(r.error());
  return {};
}

void Daemon::shutdown() {
  DaemonState s = machine_.state();
  if (s == DaemonState::kStopped) return;
  if (s == DaemonState::kRunning) (void)machine_.fire(StateInput::kStop);
  if (auto r = machine_.fire(StateInput::kStop); !r) spdlog::warn("shutdown: {}", r.error().message());
}

bool Daemon::stop_worker(std::chrono::milliseconds limit) { return worker_->stop_within(limit); }

void Daemon::set_exit_handler(std::function<void()> cb) { exit_handler_ = std::move(cb); }

void Daemon::handle(api::ApiRequest request, api::ApiReply reply) {
  spdlog::debug("api request {}", api::request_name(request));
  if (std::holds_alternative<api::Exit>(request)) {
    // Exit answers at once and acts only after its 204 has left (§10 #17).
    ApiResult r = exit_daemon();
    std::function<void()> after;
    if (r && exit_handler_) after = exit_handler_;
    reply(std::move(r), std::move(after));
    return;
  }
  if (api::traits_of(request).runs == api::Runs::kInline) {
    reply(execute(request), {});
    return;
  }
  worker_->post([this, request = std::move(request), reply = std::move(reply)]() { reply(execute(request), {}); });
}

ApiResult Daemon::execute(const api::ApiRequest& request) {
  return std::visit(
      [this](const auto& r) -> ApiResult {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, api::GetDaemonInfo>) {
          return daemon_info(false);
        } else if constexpr (std::is_same_v<T, api::GetDaemonInfoV2>) {
          return daemon_info(true);
        } else if constexpr (std::is_same_v<T, api::ConfigureDaemon>) {
          return configure(r.conf);
        } else if constexpr (std::is_same_v<T, api::GetEvents>) {
          return payload(PayloadKind::kEvents, api::to_json(events_->snapshot()));
        } else if constexpr (std::is_same_v<T, api::ExportFsBackendInfo>) {
          return backend_info(r.mountpoint);
        } else if constexpr (std::is_same_v<T, api::Start>) {
          return start_service();
        } else if constexpr (std::is_same_v<T, api::Exit>) {
          return exit_daemon();
        } else if constexpr (std::is_same_v<T, api::SendFuseFd>) {
          return send_fuse_fd();
        } else if constexpr (std::is_same_v<T, api::TakeoverFuseFd>) {
          return takeover();
        } else if constexpr (std::is_same_v<T, api::Mount>) {
          return mount(r.mountpoint, r.cmd, false);
        } else if constexpr (std::is_same_v<T, api::Remount>) {
          return mount(r.mountpoint, r.cmd, true);
        } else if constexpr (std::is_same_v<T, api::Umount>) {
          return umount(r.mountpoint);
        } else if constexpr (std::is_same_v<T, api::ExportFsGlobalMetrics> ||
                             std::is_same_v<T, api::ExportFsFilesMetrics> ||
                             std::is_same_v<T, api::ExportFsAccessPatterns> ||
                             std::is_same_v<T, api::ExportBackendMetrics> ||
                             std::is_same_v<T, api::ExportBlobcacheMetrics> ||
                             std::is_same_v<T, api::ExportFsInflightMetrics>) {
          return metrics(r);
        } else if constexpr (std::is_same_v<T, api::ExportPrometheusMetrics>) {
          return prometheus(r.files);
        } else if constexpr (std::is_same_v<T, api::GetConfig>) {
          return get_config(r);
        } else if constexpr (std::is_same_v<T, api::UpdateConfig>) {
          return update_config(r);
        } else if constexpr (std::is_same_v<T, api::GetBlobObject> || std::is_same_v<T, api::CreateBlobObject> ||
                             std::is_same_v<T, api::DeleteBlobObject>) {
          // Blob-cache objects belong to a singleton (fscache) daemon.
          return abnormal(DaemonError::unsupported());
        } else if constexpr (std::is_same_v<T, api::DeleteBlobFile>) {
          return ApiResponsePayload::empty();  // a fusedev daemon has no cached blob files to cull
        } else {
          // Every operation has a branch above: a new one fails to compile here.
          static_assert(sizeof(T) == 0, "api::ApiRequest operation without a handler");
        }
      },
      request);
}

ApiResult Daemon::daemon_info(bool v2) const {
  // Read the keys before building: a change racing with the build leaves a
  // stale key behind, so the next call rebuilds.
  const DaemonState state = machine_.state();
  const std::uint64_t generation = (fs_ && !v2) ? fs_->mounts_generation() : 0;
  std::lock_guard lock(info_mu_);
  InfoCacheSlot& slot = info_cache_[v2 ? 1 : 0];
  if (!slot.valid || slot.state != state || slot.generation != generation) {
    slot.json = build_daemon_info(v2, state);
    slot.state = state;
    slot.generation = generation;
    slot.valid = true;
  }
  return payload(PayloadKind::kDaemonInfo, slot.json);
}

std::string Daemon::build_daemon_info(bool v2, DaemonState state) const {
  api::DaemonInfo info;
  info.version = options_.build;
  info.id = options_.id;
  info.supervisor = options_.supervisor;
  info.state = std::string(to_string(state));
  if (!v2) {
    nlohmann::ordered_json collection = nlohmann::ordered_json::object();
    if (fs_) {
      for (const MountInfo& m : fs_->mounts()) {
        nlohmann::ordered_json d;
        d["backend_type"] = m.type == FsType::kRafs ? "Rafs" : "PassthroughFs";
        d["mountpoint"] = m.mountpoint;
        d["mounted_time"] = m.mounted_time;
        d["config"] = m.config ? config::to_json(*m.config, config::Secrets::kScrub) : nlohmann::ordered_json();
        collection[m.mountpoint] = std::move(d);
      }
    }
    info.backend_collection = std::move(collection);
  }
  return api::to_json(info);
}

ApiResult Daemon::configure(const api::DaemonConf& conf) {
  auto level = parse_log_level(conf.log_level, true);
  if (!level) {
    spdlog::warn("invalid log level '{}'", conf.log_level);
    return tl::unexpected(ApiError::payload_type(ErrorCode::kInvalidArgument));
  }
  set_log_level(*level);
  spdlog::info("log level set to {}", conf.log_level);
  return ApiResponsePayload::empty();
}

ApiResult Daemon::get_config(const api::GetConfig& r) const {
  return payload(PayloadKind::kConfig, api::to_json(runtime_config_.get(r.id)));
}

ApiResult Daemon::update_config(const api::UpdateConfig& r) {
  if (auto res = runtime_config_.update(r.id, r.values); !res) {
    spdlog::warn("config update refused: {}", res.error().message());
    return tl::unexpected(ApiError::payload_type(ErrorCode::kInvalidArgument));
  }
  if (auto it = r.values.find("registry_auth"); fs_ && it != r.values.end()) fs_->renew_credentials(r.id, it->second);
  return ApiResponsePayload::empty();
}

ApiResult Daemon::start_service() {
  if (auto r = machine_.fire(StateInput::kStart); !r) return abnormal(from_transition(r.error()));
  return ApiResponsePayload::empty();
}

ApiResult Daemon::exit_daemon() {
  // §5.3: STOPPED -> nothing; INIT -> Stop; RUNNING -> Stop, Exit; otherwise Exit.
  DaemonState s = machine_.state();
  Result<DaemonState> r = s;
  if (s == DaemonState::kInit) {
    r = machine_.fire(StateInput::kStop);
  } else if (s == DaemonState::kRunning) {
    r = machine_.fire(StateInput::kStop);
    if (r) r = machine_.fire(StateInput::kExit);
  } else if (s != DaemonState::kStopped) {
    r = machine_.fire(StateInput::kExit);
  }
  if (!r) return abnormal(from_transition(r.error()));
  return ApiResponsePayload::empty();
}

ApiResult Daemon::takeover() {
  auto r = machine_.fire(StateInput::kTakeover);
  if (!r) {
    const Error& e = r.error();
    if (e.code() == ErrorCode::kUnexpectedEvent || e.code() == ErrorCode::kUnsupported) {
      return abnormal(from_transition(e));
    }
    return abnormal(DaemonError::upgrade_manager(e.message()));
  }
  return ApiResponsePayload::empty();
}

// The Takeover action (runs inside the transition, on the worker thread):
// state + descriptor from the supervisor, then every mount re-created. Any
// failure leaves the daemon in INIT with nothing restored.
Result<void> Daemon::restore() {
  // Restore needs the supervisor's saved state; without one there is nothing to take over.
  if (!options_.supervisor) return fail(ErrorCode::kInternal, "MissingSupervisorPath");
  if (!options_.restore_state) return fail(ErrorCode::kUnsupported, "this daemon has no FUSE service to restore");
  auto got = receive_from_supervisor(*options_.supervisor, options_.supervisor_timeout);
  if (!got) {
    spdlog::error("takeover: receiving the state from supervisor {} failed: {}", *options_.supervisor,
                  got.error().message());
    return fail(ErrorCode::kIo, "StorageBackendError(" + got.error().message() + ")");
  }
  auto state = decode_upgrade_state(got->bytes);
  if (!state) {
    spdlog::error("takeover: the state from supervisor {} is unusable: {}", *options_.supervisor, state.error().message());
    return fail(ErrorCode::kIo, "Restore(" + state.error().message() + ")");
  }
  auto restored = options_.restore_state(*state, std::move(got->fd));
  if (!restored) {
    spdlog::error("takeover: restoring failed: {}", restored.error().message());
    return fail(ErrorCode::kIo, "Restore(" + restored.error().message() + ")");
  }
  std::string done = fmt::format("state restored from supervisor {}: {} mount(s), {} bytes, FUSE connection {}",
                                 *options_.supervisor, *restored, got->bytes.size(), state->fuse_conn_id);
  spdlog::info("{}", done);
  events_->push(done);
  return {};
}

ApiResult Daemon::send_fuse_fd() {
  // Without an initialised FUSE session there is no connection to hand over (HEAD: 503 NotReady).
  if (!options_.fuse_ready || !options_.fuse_ready()) return abnormal(DaemonError::not_ready());
  // Upstream aborts here without a supervisor (§10 #13); we answer.
  if (!options_.supervisor) return abnormal(DaemonError::upgrade_manager("MissingSupervisorPath"));
  if (!options_.save_state) return abnormal(DaemonError::unsupported());
  auto state = options_.save_state();
  if (!state) return abnormal(DaemonError::upgrade_manager("SaveState(" + state.error().message() + ")"));
  // Our own reference to the connection, so it stays valid while it is sent.
  UniqueFd fd(options_.fuse_fd ? ::fcntl(options_.fuse_fd(), F_DUPFD_CLOEXEC, 0) : -1);
  if (!fd) return abnormal(DaemonError::upgrade_manager("StorageBackendError(NoEnoughFds)"));
  const auto bytes = encode_upgrade_state(*state);
  if (!bytes) return abnormal(DaemonError::upgrade_manager("SaveState(" + bytes.error().message() + ")"));
  if (auto r = send_to_supervisor(*options_.supervisor, *bytes, fd.get(), options_.supervisor_timeout); !r) {
    spdlog::error("sendfd: saving the state to supervisor {} failed: {}", *options_.supervisor, r.error().message());
    return abnormal(DaemonError::upgrade_manager("StorageBackendError(" + r.error().message() + ")"));
  }
  std::string saved = fmt::format("state saved to supervisor {}: {} mount(s), {} bytes, FUSE connection {}",
                                  *options_.supervisor, state->mounts.size(), bytes->size(), state->fuse_conn_id);
  spdlog::info("{}", saved);
  events_->push(saved);
  return ApiResponsePayload::empty();
}

// The checks of contract §2.2.1 in upstream's order: fs_type, service,
// existing mount, prefetch list, configuration; then the service mounts.
// Credentials stored with PUT /api/v1/config before the mount (the
// snapshotter's way of handing renewed basic auth to a daemon) fill a registry
// backend whose configuration carries none: under the mount's id first, then
// the daemon-wide entry. A configuration with its own `auth` keeps it: it is
// the newer, explicit instruction for this mount.
void Daemon::apply_stored_registry_auth(MountRequest& req) const {
  if (req.type != FsType::kRafs || !req.config.backend || req.config.backend->type != "registry") return;
  auto& registry = req.config.backend->registry;
  if (!registry || registry->auth) return;
  auto stored = runtime_config_.lookup(req.mountpoint, "registry_auth");
  if (!stored) stored = runtime_config_.lookup("", "registry_auth");
  if (stored && !stored->empty()) registry->auth = *stored;
}

ApiResult Daemon::mount(const std::string& mountpoint, const api::ApiMountCmd& cmd, bool remount) {
  std::optional<FsType> type;
  if (cmd.fs_type == "rafs") type = FsType::kRafs;
  for (auto t : kPassthroughTypes) {
    if (cmd.fs_type == t) type = FsType::kPassthrough;
  }
  if (!type) {
    return mount_error(Error(
        ErrorCode::kInvalidArgument,
        "invalid argument `only 'rafs' and 'passthrough_fs' are supported, but " + cmd.fs_type + " was specified`"));
  }
  if (!fs_) return abnormal(DaemonError::unsupported());
  bool mounted = fs_->is_mounted(mountpoint);
  if (!remount && mounted && !mount_reissued_after_takeover(mountpoint, cmd, *type)) {
    return tl::unexpected(ApiError::mount(DaemonError::already_exists()));
  }
  if (!remount && mounted) {
    spdlog::info("mount of {} at {} is identical to the one restored by takeover: kept as it is", cmd.source, mountpoint);
    return ApiResponsePayload::empty();
  }
  if (remount && !mounted) return tl::unexpected(ApiError::mount(DaemonError::not_found()));
  MountRequest req{mountpoint, *type, cmd.source, {}, cmd.prefetch_files.value_or(std::vector<std::string>{})};
  for (const auto& p : req.prefetch_files) {
    if (p.empty() || p.front() != '/') {
      return mount_error(Error(ErrorCode::kInvalidArgument, "invalid prefetch file list: `" + p + "` is not absolute"));
    }
  }
  // A passthrough instance needs no configuration; an empty text means defaults.
  if (!(*type == FsType::kPassthrough && cmd.config.empty())) {
    auto parsed = config::parse_config(cmd.config);
    if (!parsed) return mount_error(Error(ErrorCode::kInvalidArgument, "invalid configuration, " + parsed.error().message()));
    if (*type == FsType::kRafs) {
      if (auto problems = config::validate_for_rafs_mount(*parsed); !problems.empty()) {
        return mount_error(Error(ErrorCode::kInvalidArgument, "invalid configuration, " + config::render(problems)));
      }
    }
    req.config = std::move(*parsed);
  }
  apply_stored_registry_auth(req);
  auto r = remount ? fs_->remount(req) : fs_->mount(req);
  if (!r) return mount_error(r.error());
  spdlog::info("{} {} at {}", remount ? "remounted" : "mounted", cmd.source, mountpoint);
  return ApiResponsePayload::empty();
}

// §6.6 C.8: after an upgrade the snapshotter re-issues every mount; one
// identical to what takeover restored succeeds without change (docs/upgrade.md).
bool Daemon::mount_reissued_after_takeover(const std::string& mountpoint, const api::ApiMountCmd& cmd, FsType type) const {
  MountRequest req{mountpoint, type, cmd.source, {}, cmd.prefetch_files.value_or(std::vector<std::string>{})};
  if (!(type == FsType::kPassthrough && cmd.config.empty())) {
    auto parsed = config::parse_config(cmd.config);
    if (!parsed) return false;
    req.config = std::move(*parsed);
  }
  return fs_->same_as_restored(req);
}

ApiResult Daemon::umount(const std::string& mountpoint) {
  if (!fs_) return abnormal(DaemonError::unsupported());
  if (auto r = fs_->umount(mountpoint); !r) return mount_error(r.error());
  spdlog::info("unmounted {}", mountpoint);
  return ApiResponsePayload::empty();
}

ApiResult Daemon::backend_info(const std::string& mountpoint) {
  if (!fs_) return abnormal(DaemonError::unsupported());
  auto r = fs_->backend_info(mountpoint);
  if (!r && r.error().code() == ErrorCode::kInvalidArgument) {
    return tl::unexpected(ApiError::metrics(DaemonError::fs_type_mismatch()));
  }
  if (!r) return tl::unexpected(ApiError::metrics(daemon_error(r.error())));
  return payload(PayloadKind::kFsBackendInfo, std::move(*r));
}

ApiResult Daemon::metrics(const api::ApiRequest& request) {
  if (std::holds_alternative<api::ExportFsInflightMetrics>(request)) {
    if (!fs_) return abnormal(DaemonError::unsupported());
    auto inflight = fs_->inflight_metrics();
    if (!inflight) return ApiResponsePayload::empty();
    return payload(PayloadKind::kInflightMetrics, std::move(*inflight));
  }
  // Without a service no instance is registered, so no id (or the lack of one) matches.
  if (!fs_) return tl::unexpected(ApiError::no_counter());
  auto result = std::visit(
      [this](const auto& r) -> std::pair<Result<std::string>, PayloadKind> {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, api::ExportFsGlobalMetrics>) {
          return {fs_->global_metrics(r.id), PayloadKind::kFsGlobalMetrics};
        } else if constexpr (std::is_same_v<T, api::ExportFsFilesMetrics>) {
          return {fs_->files_metrics(r.id, r.latest_read_files), PayloadKind::kFsFilesMetrics};
        } else if constexpr (std::is_same_v<T, api::ExportFsAccessPatterns>) {
          return {fs_->access_patterns(r.id), PayloadKind::kFsFilesPatterns};
        } else if constexpr (std::is_same_v<T, api::ExportBackendMetrics>) {
          return {fs_->backend_metrics(r.id), PayloadKind::kBackendMetrics};
        } else if constexpr (std::is_same_v<T, api::ExportBlobcacheMetrics>) {
          return {fs_->blobcache_metrics(r.id), PayloadKind::kBlobcacheMetrics};
        } else {
          return {fail(ErrorCode::kInternal, "not a metrics request"), PayloadKind::kEmpty};
        }
      },
      request);
  if (!result.first) {
    if (result.first.error().code() == ErrorCode::kNotFound) return tl::unexpected(ApiError::no_counter());
    return tl::unexpected(ApiError::metrics(daemon_error(result.first.error())));
  }
  return payload(result.second, std::move(*result.first));
}

}  // namespace nydus::daemon
