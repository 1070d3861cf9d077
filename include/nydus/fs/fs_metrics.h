// Per-instance filesystem metrics (contract §4.3–§4.5), fed by real FUSE
// operations through PseudoFs. Read as plain snapshots; the daemon renders
// them as the routes' JSON (daemon/metrics_json.h).
//
// Semantics (documented in docs/fuse.md; differs from upstream, §10 #26):
//   * fop_hits counts successful operations, fop_errors failed ones, both
//     globally and per file;
//   * data_read, block_count_read (bucketed by requested size) and
//     read_latency_dist count successful reads only; fop_cumulative_latency_total
//     is kept for Read only (microseconds), as upstream;
//   * nr_opens: +1 per successful open, -1 per release of a file.
// Per-file stats, latest-read files and access patterns are kept only when
// enabled (config rafs.iostats_files / latest_read_files / access_pattern);
// otherwise their snapshots are empty and the hot path touches only
// atomic counters. Keys are instance-local inode numbers; a per-file entry
// lives from file_seen() until file_forgotten() (the instance freed the inode).
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace nydus::fs {

// Fop indexes of §4.3, in wire order.
enum class Fop : std::uint8_t {
  kGetattr, kReadlink, kOpen, kRelease, kRead, kStatfs, kGetxattr, kListxattr,
  kOpendir, kLookup, kReaddir, kReaddirplus, kAccess, kForget, kBatchForget,
};
inline constexpr std::size_t kFopCount = 15;
inline constexpr std::size_t kBucketCount = 8;

struct FsMetricsOptions {
  bool files = false;           // rafs.iostats_files
  bool access_pattern = false;  // rafs.access_pattern
  bool latest_read_files = false;  // rafs.latest_read_files
};

// §4.3 size bucket of a request of `size` bytes.
std::size_t size_bucket(std::uint64_t size);
// §4.3 latency bucket of `micros`.
std::size_t latency_bucket(std::uint64_t micros);

// §4.3 counters of one instance at one moment.
struct FsMetricsSnapshot {
  std::string id;
  FsMetricsOptions options;
  std::uint64_t nr_opens = 0;  // never below 0 (a release without its open counts nothing)
  std::uint64_t data_read = 0;
  std::array<std::uint64_t, kBucketCount> block_count_read{};
  std::array<std::uint64_t, kFopCount> fop_hits{};
  std::array<std::uint64_t, kFopCount> fop_errors{};
  std::array<std::uint64_t, kFopCount> fop_cumulative_latency{};  // microseconds; Read only
  std::array<std::uint64_t, kBucketCount> read_latency_dist{};
};

// §4.4 counters of one file (instance inode `ino`).
struct FileMetricsSnapshot {
  std::uint64_t ino = 0;
  std::uint64_t total_fops = 0;
  std::uint64_t data_read = 0;
  std::array<std::uint64_t, kBucketCount> block_count_read{};
  std::array<std::uint64_t, kFopCount> fop_hits{};
  std::array<std::uint64_t, kFopCount> fop_errors{};
};

// §4.5 first read of one file.
struct AccessPattern {
  std::uint64_t ino = 0;
  std::uint64_t nr_read = 0;
  std::uint64_t first_access_secs = 0;
  std::uint32_t first_access_nanos = 0;
};

class FsMetrics {
 public:
  FsMetrics(std::string id, FsMetricsOptions options);
  ~FsMetrics();

  const std::string& id() const { return id_; }
  const FsMetricsOptions& options() const { return options_; }

  // One operation on instance inode `ino` (0: none, e.g. forget batches).
  void record(Fop fop, std::uint64_t ino, bool ok);
  // A read of `requested` bytes that returned `got` bytes (ok) or failed.
  void record_read(std::uint64_t ino, std::uint64_t requested, bool ok, std::uint64_t got,
                   std::chrono::nanoseconds latency);
  // A per-file entry for `ino` exists from now on (lookup, readdirplus, root at mount).
  void file_seen(std::uint64_t ino);
  // `ino` was freed by its filesystem: its per-file entry and access pattern go
  // (instance inode numbers are not reused, so keeping them would grow without
  // bound as the kernel forgets and looks up again).
  void file_forgotten(std::uint64_t ino);
  void opened() { nr_opens_.fetch_add(1, std::memory_order_relaxed); }
  void released() { nr_opens_.fetch_sub(1, std::memory_order_relaxed); }

  // §4.3 global stats.
  FsMetricsSnapshot snapshot() const;
  // §4.4 per-file stats by ascending inode (empty when disabled).
  std::vector<FileMetricsSnapshot> files() const;
  // §4.4 latest=true: the inodes read since the previous call, ascending; clears the set.
  std::vector<std::uint64_t> take_latest_read_files();
  // §4.5 access patterns by ascending inode (empty when disabled).
  std::vector<AccessPattern> access_patterns() const;

  std::uint64_t fop_hits(Fop fop) const;
  std::uint64_t fop_errors(Fop fop) const;

 private:
  struct FileStats;
  std::shared_ptr<FileStats> file(std::uint64_t ino) const;

  const std::string id_;
  const FsMetricsOptions options_;
  std::atomic<std::int64_t> nr_opens_{0};
  std::atomic<std::uint64_t> data_read_{0};
  std::array<std::atomic<std::uint64_t>, kBucketCount> block_count_read_{};
  std::array<std::atomic<std::uint64_t>, kFopCount> fop_hits_{};
  std::array<std::atomic<std::uint64_t>, kFopCount> fop_errors_{};
  std::array<std::atomic<std::uint64_t>, kFopCount> fop_latency_{};
  std::array<std::atomic<std::uint64_t>, kBucketCount> read_latency_dist_{};

  mutable std::shared_mutex files_mu_;
  // shared_ptr: a record() still holding an entry outlives its erasure.
  std::unordered_map<std::uint64_t, std::shared_ptr<FileStats>> files_;  // guarded by files_mu_
  std::mutex latest_mu_;
  std::set<std::uint64_t> latest_;  // guarded by latest_mu_
  mutable std::mutex pattern_mu_;
  std::map<std::uint64_t, AccessPattern> patterns_;  // guarded by pattern_mu_
};

}  // namespace nydus::fs
