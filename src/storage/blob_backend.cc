// Backends and their metrics. LocalFsBackend resolves a blob id to a file
// once (blob_file, else dir, else alt_dirs in order), keeps the fd, and reads
// with pread so concurrent readers never share a file position. Blobs must be
// regular files, opened without blocking (a FIFO would block open() forever).
#include "nydus/storage/blob_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "file_io.h"
#include "nydus/storage/http_proxy_backend.h"
#include "nydus/storage/registry_backend.h"

namespace nydus::storage {

bool is_safe_blob_id(std::string_view id) {
  return !id.empty() && id.find_first_of(std::string_view("/\0", 2)) == std::string_view::npos && id != "." &&
         id != "..";
}

namespace {

class ReadTimer {
 public:
  ReadTimer(BackendMetrics& m, std::uint64_t requested) : m_(m), requested_(requested) {}
  ~ReadTimer() {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start_);
    m_.record(requested_, std::uint64_t(us.count()), ok);
  }
  bool ok = false;

 private:
  BackendMetrics& m_;
  std::uint64_t requested_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

int BackendMetrics::size_bucket(std::uint64_t s) {
  constexpr std::uint64_t kKi = 1024;
  const std::uint64_t bounds[7] = {kKi, 4 * kKi, 16 * kKi, 64 * kKi, 128 * kKi, 512 * kKi, 1024 * kKi};
  for (int i = 0; i < 7; ++i) {
    if (s < bounds[i]) return i;
  }
  return 7;
}

int BackendMetrics::latency_bucket_ms(std::uint64_t ms) {
  const std::uint64_t bounds[7] = {1, 20, 50, 100, 500, 1000, 2000};
  for (int i = 0; i < 7; ++i) {
    if (ms <= bounds[i]) return i;
  }
  return 7;
}

void BackendMetrics::record(std::uint64_t requested, std::uint64_t micros, bool ok) {
  constexpr auto r = std::memory_order_relaxed;
  std::uint64_t ms = micros / 1000;
  int sb = size_bucket(requested), lb = latency_bucket_ms(ms);
  read_count_.fetch_add(1, r);
  if (!ok) read_errors_.fetch_add(1, r);
  read_amount_total_.fetch_add(requested, r);
  latency_total_ms_.fetch_add(ms, r);
  latency_dist_ms_[std::size_t(sb)].fetch_add(ms, r);
  count_by_size_[std::size_t(sb)].fetch_add(1, r);
  latency_sizes_[std::size_t(sb)][std::size_t(lb)].fetch_add(1, r);
}

BackendMetricsSnapshot BackendMetrics::snapshot() const {
  auto load = [](const std::array<std::atomic<std::uint64_t>, 8>& a) {
    std::array<std::uint64_t, 8> out{};
    for (std::size_t i = 0; i < a.size(); ++i) out[i] = a[i].load();
    return out;
  };
  BackendMetricsSnapshot s;
  s.backend_type = backend_type_;
  s.read_count = read_count_.load();
  s.read_errors = read_errors_.load();
  s.read_amount_total = read_amount_total_.load();
  s.read_cumulative_latency_millis_total = latency_total_ms_.load();
  s.read_cumulative_latency_millis_dist = load(latency_dist_ms_);
  s.read_count_block_size_dist = load(count_by_size_);
  for (std::size_t i = 0; i < latency_sizes_.size(); ++i) s.read_latency_sizes_dist[i] = load(latency_sizes_[i]);
  return s;
}

Result<std::unique_ptr<LocalFsBackend>> LocalFsBackend::create(const config::LocalFsConfig& cfg) {
  if (cfg.blob_file.empty() && cfg.dir.empty()) {
    return fail(ErrorCode::kInvalidArgument, "localfs backend: one of `blob_file` and `dir` must be set");
  }
  return std::unique_ptr<LocalFsBackend>(new LocalFsBackend(cfg));
}

LocalFsBackend::~LocalFsBackend() {
  for (auto& [id, fd] : fds_) ::close(fd);
}

// Opens outside mu_: FUSE workers wait on mu_ for every read, so a slow open
// (a file on a hung network filesystem) must stall only the read that needs
// it. Two racing opens of one blob keep the first fd and close the other.
Result<int> LocalFsBackend::fd_of(const std::string& blob_id) {
  {
    std::lock_guard lock(mu_);
    if (auto it = fds_.find(blob_id); it != fds_.end()) return it->second;
  }
  std::vector<std::string> candidates;
  if (!cfg_.blob_file.empty()) {
    candidates.push_back(cfg_.blob_file);
  } else {
    if (!is_safe_blob_id(blob_id)) return fail(ErrorCode::kNotFound, "localfs: invalid blob id `" + blob_id + "`");
    candidates.push_back(cfg_.dir + "/" + blob_id);
    for (const auto& d : cfg_.alt_dirs) candidates.push_back(d + "/" + blob_id);
  }
  std::string tried;
  for (const auto& path : candidates) {
    auto fd = open_regular_file(path, "blob");
    if (fd) {
      std::lock_guard lock(mu_);
      auto [it, inserted] = fds_.emplace(blob_id, fd->get());
      if (inserted) fd->release();
      return it->second;
    }
    // kIo, whatever the cause: to a reader, a blob that is not a regular file is an I/O error (EIO).
    if (fd.error().code() != ErrorCode::kNotFound) return fail(ErrorCode::kIo, "localfs: " + fd.error().message());
    tried += (tried.empty() ? "" : ", ") + path;
  }
  return fail(ErrorCode::kNotFound, "localfs: blob `" + blob_id + "` not found (tried " + tried + ")");
}

Result<std::size_t> LocalFsBackend::read(const std::string& blob_id, std::uint64_t offset,
                                         std::span<std::uint8_t> out) {
  ReadTimer t(metrics_, out.size());
  auto fd = fd_of(blob_id);
  if (!fd) return tl::unexpected(fd.error());
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(*fd, out.data() + done, out.size() - done, off_t(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return tl::unexpected(os_error("localfs: read blob " + blob_id, errno));
    }
    if (n == 0) break;
    done += std::size_t(n);
  }
  t.ok = true;
  return done;
}

Result<std::uint64_t> LocalFsBackend::blob_size(const std::string& blob_id) {
  auto fd = fd_of(blob_id);
  if (!fd) return tl::unexpected(fd.error());
  struct stat st;
  if (::fstat(*fd, &st) != 0) return tl::unexpected(os_error("localfs: stat blob " + blob_id, errno));
  return std::uint64_t(st.st_size);
}

Result<std::size_t> MemoryBackend::read(const std::string& blob_id, std::uint64_t offset,
                                        std::span<std::uint8_t> out) {
  auto it = blobs_.find(blob_id);
  if (it == blobs_.end()) {
    metrics_.record(out.size(), 0, false);
    return fail(ErrorCode::kNotFound, "blob `" + blob_id + "` not found");
  }
  const auto& b = it->second;
  std::size_t n = offset >= b.size() ? 0 : std::min<std::size_t>(out.size(), b.size() - offset);
  if (n) std::memcpy(out.data(), b.data() + offset, n);
  metrics_.record(out.size(), 0, true);
  return n;
}

Result<std::uint64_t> MemoryBackend::blob_size(const std::string& blob_id) {
  auto it = blobs_.find(blob_id);
  if (it == blobs_.end()) return fail(ErrorCode::kNotFound, "blob `" + blob_id + "` not found");
  return it->second.size();
}

Result<std::unique_ptr<BlobBackend>> create_backend(const config::BackendConfigV2& cfg) {
  if (cfg.type == "localfs") {
    if (!cfg.localfs) return fail(ErrorCode::kInvalidArgument, "backend type `localfs` without a `localfs` section");
    auto b = LocalFsBackend::create(*cfg.localfs);
    if (!b) return tl::unexpected(b.error());
    return std::unique_ptr<BlobBackend>(std::move(*b));
  }
  if (cfg.type == "registry") {
    if (!cfg.registry) return fail(ErrorCode::kInvalidArgument, "backend type `registry` without a `registry` section");
    auto b = RegistryBackend::create(*cfg.registry);
    if (!b) return tl::unexpected(b.error());
    return std::unique_ptr<BlobBackend>(std::move(*b));
  }
  if (cfg.type == "http-proxy") {
    if (!cfg.http_proxy) return fail(ErrorCode::kInvalidArgument, "backend type `http-proxy` without an `http-proxy` section");
    auto b = HttpProxyBackend::create(*cfg.http_proxy);
    if (!b) return tl::unexpected(b.error());
    return std::unique_ptr<BlobBackend>(std::move(*b));
  }
  return fail(ErrorCode::kUnsupported, "backend type `" + cfg.type + "` is not supported yet");
}

}  // namespace nydus::storage
