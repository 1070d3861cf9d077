// FsMetrics: atomic counters plus optional per-file maps (see header).
#include "nydus/fs/fs_metrics.h"

#include <algorithm>

namespace nydus::fs {

struct FsMetrics::FileStats {
  std::atomic<std::uint64_t> total_fops{0};
  std::atomic<std::uint64_t> data_read{0};
  std::array<std::atomic<std::uint64_t>, kBucketCount> block_count_read{};
  std::array<std::atomic<std::uint64_t>, kFopCount> fop_hits{};
  std::array<std::atomic<std::uint64_t>, kFopCount> fop_errors{};
};

namespace {

template <std::size_t N>
std::array<std::uint64_t, N> load_all(const std::array<std::atomic<std::uint64_t>, N>& a) {
  std::array<std::uint64_t, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = a[i].load(std::memory_order_relaxed);
  return out;
}

void inc(std::atomic<std::uint64_t>& a, std::uint64_t n = 1) { a.fetch_add(n, std::memory_order_relaxed); }

}  // namespace

std::size_t size_bucket(std::uint64_t s) {
  constexpr std::uint64_t kKiB = 1024;
  if (s < kKiB) return 0;
  if (s < 4 * kKiB) return 1;
  if (s < 16 * kKiB) return 2;
  if (s < 64 * kKiB) return 3;
  if (s < 128 * kKiB) return 4;
  if (s < 512 * kKiB) return 5;
  if (s < 1024 * kKiB) return 6;
  return 7;
}

std::size_t latency_bucket(std::uint64_t t) {
  if (t <= 200) return 0;
  if (t <= 1000) return 1;
  if (t <= 20000) return 2;
  if (t <= 50000) return 3;
  if (t <= 500000) return 4;
  if (t <= 1000000) return 5;
  if (t <= 2000000) return 6;
  return 7;
}

FsMetrics::FsMetrics(std::string id, FsMetricsOptions options) : id_(std::move(id)), options_(options) {}
FsMetrics::~FsMetrics() = default;

std::shared_ptr<FsMetrics::FileStats> FsMetrics::file(std::uint64_t ino) const {
  std::shared_lock lock(files_mu_);
  auto it = files_.find(ino);
  return it == files_.end() ? nullptr : it->second;
}

void FsMetrics::file_seen(std::uint64_t ino) {
  if (!options_.files || ino == 0) return;
  if (file(ino)) return;
  std::unique_lock lock(files_mu_);
  files_.try_emplace(ino, std::make_shared<FileStats>());
}

void FsMetrics::file_forgotten(std::uint64_t ino) {
  if (options_.files) {
    std::unique_lock lock(files_mu_);
    files_.erase(ino);
  }
  if (options_.access_pattern) {
    std::lock_guard lock(pattern_mu_);
    patterns_.erase(ino);
  }
}

void FsMetrics::record(Fop fop, std::uint64_t ino, bool ok) {
  auto i = static_cast<std::size_t>(fop);
  inc(ok ? fop_hits_[i] : fop_errors_[i]);
  if (!options_.files || ino == 0) return;
  if (auto f = file(ino)) {
    inc(f->total_fops);
    inc(ok ? f->fop_hits[i] : f->fop_errors[i]);
  }
}

void FsMetrics::record_read(std::uint64_t ino, std::uint64_t requested, bool ok, std::uint64_t got,
                            std::chrono::nanoseconds latency) {
  record(Fop::kRead, ino, ok);
  if (!ok) return;
  auto micros = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(latency).count());
  std::size_t sb = size_bucket(requested);
  inc(data_read_, got);
  inc(block_count_read_[sb]);
  inc(fop_latency_[static_cast<std::size_t>(Fop::kRead)], micros);
  inc(read_latency_dist_[latency_bucket(micros)]);
  if (options_.files) {
    if (auto f = file(ino)) {
      inc(f->data_read, got);
      inc(f->block_count_read[sb]);
    }
  }
  if (options_.latest_read_files) {
    std::lock_guard lock(latest_mu_);
    latest_.insert(ino);
  }
  if (options_.access_pattern) {
    std::lock_guard lock(pattern_mu_);
    AccessPattern& p = patterns_[ino];
    if (p.nr_read++ == 0) {
      auto now = std::chrono::system_clock::now().time_since_epoch();
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(now);
      p.ino = ino;
      p.first_access_secs = static_cast<std::uint64_t>(secs.count());
      p.first_access_nanos =
          static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - secs).count());
    }
  }
}

std::uint64_t FsMetrics::fop_hits(Fop fop) const { return fop_hits_[static_cast<std::size_t>(fop)].load(); }
std::uint64_t FsMetrics::fop_errors(Fop fop) const { return fop_errors_[static_cast<std::size_t>(fop)].load(); }

FsMetricsSnapshot FsMetrics::snapshot() const {
  FsMetricsSnapshot s;
  s.id = id_;
  s.options = options_;
  std::int64_t opens = nr_opens_.load(std::memory_order_relaxed);
  s.nr_opens = static_cast<std::uint64_t>(opens < 0 ? 0 : opens);
  s.data_read = data_read_.load(std::memory_order_relaxed);
  s.block_count_read = load_all(block_count_read_);
  s.fop_hits = load_all(fop_hits_);
  s.fop_errors = load_all(fop_errors_);
  s.fop_cumulative_latency = load_all(fop_latency_);
  s.read_latency_dist = load_all(read_latency_dist_);
  return s;
}

std::vector<FileMetricsSnapshot> FsMetrics::files() const {
  std::vector<FileMetricsSnapshot> out;
  if (!options_.files) return out;
  std::shared_lock lock(files_mu_);
  out.reserve(files_.size());
  for (const auto& [ino, f] : files_) {
    out.push_back({ino, f->total_fops.load(std::memory_order_relaxed), f->data_read.load(std::memory_order_relaxed),
                   load_all(f->block_count_read), load_all(f->fop_hits), load_all(f->fop_errors)});
  }
  lock.unlock();
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.ino < b.ino; });
  return out;
}

std::vector<std::uint64_t> FsMetrics::take_latest_read_files() {
  std::set<std::uint64_t> inos;
  {
    std::lock_guard lock(latest_mu_);
    inos.swap(latest_);
  }
  return {inos.begin(), inos.end()};
}

std::vector<AccessPattern> FsMetrics::access_patterns() const {
  std::vector<AccessPattern> out;
  std::lock_guard lock(pattern_mu_);
  out.reserve(patterns_.size());
  for (const auto& [ino, p] : patterns_) out.push_back(p);
  return out;
}

}  // namespace nydus::fs
