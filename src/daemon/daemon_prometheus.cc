// GET /api/v1/metrics/prometheus: the metrics routes' JSON of every instance,
// rendered by daemon/prometheus.cc. Answered on the I/O thread like the other
// metrics routes: every call below reads counters in memory, /proc included.
#include <chrono>

#include "nydus/daemon/daemon.h"
#include "nydus/daemon/prometheus.h"

namespace nydus::daemon {

namespace {
// A metrics JSON of one instance, or nullopt when it has none of that kind.
std::optional<std::string> if_present(Result<std::string> r) {
  if (!r) return std::nullopt;
  return std::move(*r);
}
}  // namespace

api::ApiResult Daemon::prometheus(bool files) {
  PrometheusInput in;
  if (fs_) {
    for (const MountInfo& m : fs_->mounts()) {
      auto global = fs_->global_metrics(m.mountpoint);
      if (!global) continue;  // unmounted since mounts() answered
      PrometheusInstance inst{m.mountpoint, std::move(*global), if_present(fs_->backend_metrics(m.mountpoint)),
                              if_present(fs_->blobcache_metrics(m.mountpoint)), std::nullopt};
      if (files) inst.files = if_present(fs_->files_metrics(m.mountpoint, false));
      in.instances.push_back(std::move(inst));
    }
    in.inflight = fs_->inflight_metrics();
  }
  in.now_secs = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  in.process = read_process_stats();
  api::ApiResponsePayload p;
  p.kind = api::PayloadKind::kPrometheus;
  p.json = render_prometheus(in);
  return p;
}

}  // namespace nydus::daemon
