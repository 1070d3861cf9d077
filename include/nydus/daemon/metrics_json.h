// The JSON of the metrics and backend-info routes (contract §4.3–§4.9),
// rendered from the typed snapshots fs and storage return. Field names and
// order are upstream's; every text is compact, with invalid UTF-8 replaced
// rather than thrown on. FuseService answers the routes with these, and
// Prometheus reads the same texts (daemon/prometheus.h), so both views agree.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nydus/fs/fs_metrics.h"
#include "nydus/fs/fuse_server.h"
#include "nydus/storage/blob_backend.h"
#include "nydus/storage/image.h"
#include "nydus/storage/prefetch.h"

namespace nydus::daemon {

// §4.3 `GET /api/v1/metrics`.
std::string global_metrics_json(const fs::FsMetricsSnapshot& m);
// §4.4 `GET /api/v1/metrics/files`: an object keyed by inode ({} when none).
std::string files_metrics_json(const std::vector<fs::FileMetricsSnapshot>& files);
// §4.4 with latest=true: runs of consecutive inodes of ascending `inos`,
// [start] or [start, end], e.g. [[1,3],[5]].
std::string latest_read_files_json(const std::vector<std::uint64_t>& inos);
// §4.5 `GET /api/v1/metrics/pattern`.
std::string access_patterns_json(const std::vector<fs::AccessPattern>& patterns);
// §4.6 `GET /api/v1/metrics/backend` (no "id").
std::string backend_metrics_json(const storage::BackendMetricsSnapshot& m);
// §4.7 `GET /api/v1/metrics/blobcache`; `prefetch` zero for an instance without prefetch.
std::string blobcache_metrics_json(const storage::BlobCacheStats& cache, const storage::PrefetchStats& prefetch);
// §4.8 `GET /api/v1/metrics/inflight`.
std::string inflight_json(const std::vector<fs::InflightRequest>& reqs);
// §4.9 `GET /api/v1/daemon/backend`; timeouts in whole seconds.
std::string super_block_info_json(const storage::SuperBlockInfo& sb, std::uint64_t attr_timeout_secs,
                                  std::uint64_t entry_timeout_secs);

}  // namespace nydus::daemon
