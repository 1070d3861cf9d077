// Where blob bytes come from. A BlobBackend reads byte ranges of a blob named
// by its id; the image reader (image.h) never opens blob files itself, so
// registry/OSS backends can be added later behind the same interface.
//
// LocalFsBackend (contract §7.2, `backend.localfs`): `blob_file`, when set,
// is the blob for every id; otherwise the blob is `<dir>/<blob_id>`, then
// `<alt_dir>/<blob_id>` for each of `alt_dirs` in order. Opened files are
// kept open (one fd per blob) for the backend's lifetime.
//
// Every backend counts its reads in BackendMetrics (contract §4.6).
//
// Thread-safety: every method of every backend here may be called from any
// number of threads at once.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nydus/config/backend_config.h"
#include "nydus/result.h"

namespace nydus::storage {

// §4.6 counters of one backend at one moment (the daemon renders them).
struct BackendMetricsSnapshot {
  std::string backend_type;
  std::uint64_t read_count = 0;
  std::uint64_t read_errors = 0;
  std::uint64_t read_amount_total = 0;
  std::uint64_t read_cumulative_latency_millis_total = 0;
  std::array<std::uint64_t, 8> read_cumulative_latency_millis_dist{};  // by size bucket
  std::array<std::uint64_t, 8> read_count_block_size_dist{};           // by size bucket
  std::array<std::array<std::uint64_t, 8>, 8> read_latency_sizes_dist{};  // [size bucket][latency bucket]
};

// Backend read counters, §4.6. Updated with relaxed atomics.
class BackendMetrics {
 public:
  explicit BackendMetrics(std::string backend_type) : backend_type_(std::move(backend_type)) {}

  // Records one read call of `requested` bytes that took `micros`.
  void record(std::uint64_t requested, std::uint64_t micros, bool ok);

  BackendMetricsSnapshot snapshot() const;

  const std::string& backend_type() const { return backend_type_; }
  std::uint64_t read_count() const { return read_count_.load(); }
  std::uint64_t read_errors() const { return read_errors_.load(); }
  std::uint64_t read_amount_total() const { return read_amount_total_.load(); }

  // Size bucket of §4.3 (0..7) and latency bucket of §4.6 in ms (0..7).
  static int size_bucket(std::uint64_t bytes);
  static int latency_bucket_ms(std::uint64_t millis);

 private:
  std::string backend_type_;
  std::atomic<std::uint64_t> read_count_{0}, read_errors_{0}, read_amount_total_{0};
  std::atomic<std::uint64_t> latency_total_ms_{0};
  std::array<std::atomic<std::uint64_t>, 8> latency_dist_ms_{};
  std::array<std::atomic<std::uint64_t>, 8> count_by_size_{};
  std::array<std::array<std::atomic<std::uint64_t>, 8>, 8> latency_sizes_{};
};

// Whether a blob id can name a file in a directory (a blob, a `.blob.meta`):
// not empty, no '/' or NUL, not "." or "..". Blob ids come from images: the
// image parser refuses RAFS blob ids that fail this, and the localfs backend
// checks every id it is given before building a path.
bool is_safe_blob_id(std::string_view id);

class BlobBackend {
 public:
  virtual ~BlobBackend() = default;

  // Reads up to out.size() bytes at `offset` of blob `blob_id`; returns the
  // count read (short only at the blob's end). kNotFound: no such blob;
  // kIo: the read failed.
  virtual Result<std::size_t> read(const std::string& blob_id, std::uint64_t offset,
                                   std::span<std::uint8_t> out) = 0;
  // Size of the blob in bytes. kNotFound / kIo as above.
  virtual Result<std::uint64_t> blob_size(const std::string& blob_id) = 0;

  virtual const BackendMetrics& metrics() const = 0;

  // New credentials (base64 "user:pass") for a remote backend, used from the
  // next request on; backends without credentials ignore them.
  virtual void renew_credentials(const std::string& /*auth*/) {}
};

// Blobs from host files. A blob must be a regular file (kIo otherwise: a FIFO
// or a device is never read); files are opened without blocking and outside
// the lock that readers share, then kept open.
class LocalFsBackend final : public BlobBackend {
 public:
  // kInvalidArgument when neither `blob_file` nor `dir` is set.
  static Result<std::unique_ptr<LocalFsBackend>> create(const config::LocalFsConfig& cfg);
  ~LocalFsBackend() override;

  Result<std::size_t> read(const std::string& blob_id, std::uint64_t offset,
                           std::span<std::uint8_t> out) override;
  Result<std::uint64_t> blob_size(const std::string& blob_id) override;
  const BackendMetrics& metrics() const override { return metrics_; }

 private:
  explicit LocalFsBackend(config::LocalFsConfig cfg) : cfg_(std::move(cfg)), metrics_("localfs") {}
  Result<int> fd_of(const std::string& blob_id);

  const config::LocalFsConfig cfg_;
  BackendMetrics metrics_;
  std::mutex mu_;
  std::map<std::string, int> fds_;  // guarded by mu_; closed in the destructor
};

// Blobs held in memory (tests, fuzzing, the builder's self-check).
class MemoryBackend final : public BlobBackend {
 public:
  MemoryBackend() : metrics_("memory") {}
  // Not thread-safe against concurrent reads: add blobs before sharing.
  void add(std::string blob_id, std::vector<std::uint8_t> bytes) { blobs_[std::move(blob_id)] = std::move(bytes); }

  Result<std::size_t> read(const std::string& blob_id, std::uint64_t offset,
                           std::span<std::uint8_t> out) override;
  Result<std::uint64_t> blob_size(const std::string& blob_id) override;
  const BackendMetrics& metrics() const override { return metrics_; }

 private:
  std::map<std::string, std::vector<std::uint8_t>> blobs_;
  BackendMetrics metrics_;
};

// The backend a ConfigV2 `backend` section names: `localfs`, `registry`
// (registry_backend.h), `http-proxy` (http_proxy_backend.h); other types give kUnsupported, a missing section
// kInvalidArgument.
Result<std::unique_ptr<BlobBackend>> create_backend(const config::BackendConfigV2& cfg);

}  // namespace nydus::storage
