// FsMetrics: atomic counters plus optional per-file maps (see header).
#include "nydus/fs/fs_metrics.h"

#include <nlohmann/json.hpp>

namespace nydus::fs {

using ojson = nlohmann::ordered_json;

struct FsMetrics::FileStats {
  std::atomic<std::uint64_t> total_fops{0};
  std::atomic<std::uint64_t> data_read{0};
  std::array<std::atomic<std::uint64_t>, kBucketCount> block_count_read{};
  std::array<std::atomic<std::uint64_t>, kFopCount> fop_hits{};
  std::array<std::atomic<std::uint64_t>, kFopCount> fop_errors{};
};

namespace {

template <std::size_t N>
ojson array_of(const std::array<std::atomic<std::uint64_t>, N>& a) {
  ojson j = ojson::array();
  for (const auto& v : a) j.push_back(v.load(std::memory_order_relaxed));
  return j;
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
    Pattern& p = patterns_[ino];
    if (p.nr_read++ == 0) {
      auto now = std::chrono::system_clock::now().time_since_epoch();
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(now);
      p.first_secs = static_cast<std::uint64_t>(secs.count());
      p.first_nanos = static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - secs).count());
    }
  }
}

std::uint64_t FsMetrics::fop_hits(Fop fop) const { return fop_hits_[static_cast<std::size_t>(fop)].load(); }
std::uint64_t FsMetrics::fop_errors(Fop fop) const { return fop_errors_[static_cast<std::size_t>(fop)].load(); }

std::string FsMetrics::global_json() const {
  ojson j;
  j["files_account_enabled"] = options_.files;
  j["access_pattern_enabled"] = options_.access_pattern;
  j["record_latest_read_files_enabled"] = options_.latest_read_files;
  j["measure_latency"] = true;
  j["id"] = id_;
  std::int64_t opens = nr_opens_.load(std::memory_order_relaxed);
  j["nr_opens"] = static_cast<std::uint64_t>(opens < 0 ? 0 : opens);
  j["data_read"] = data_read_.load(std::memory_order_relaxed);
  j["block_count_read"] = array_of(block_count_read_);
  j["fop_hits"] = array_of(fop_hits_);
  j["fop_errors"] = array_of(fop_errors_);
  j["fop_cumulative_latency_total"] = array_of(fop_latency_);
  j["read_latency_dist"] = array_of(read_latency_dist_);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string FsMetrics::files_json() const {
  ojson j = ojson::object();
  if (options_.files) {
    std::shared_lock lock(files_mu_);
    std::map<std::uint64_t, const FileStats*> sorted;
    for (const auto& [ino, f] : files_) sorted.emplace(ino, f.get());
    for (const auto& [ino, f] : sorted) {
      ojson e;
      e["total_fops"] = f->total_fops.load(std::memory_order_relaxed);
      e["data_read"] = f->data_read.load(std::memory_order_relaxed);
      e["block_count_read"] = array_of(f->block_count_read);
      e["fop_hits"] = array_of(f->fop_hits);
      e["fop_errors"] = array_of(f->fop_errors);
      j[std::to_string(ino)] = std::move(e);
    }
  }
  return j.dump();
}

std::string FsMetrics::take_latest_read_files_json() {
  std::set<std::uint64_t> inos;
  {
    std::lock_guard lock(latest_mu_);
    inos.swap(latest_);
  }
  ojson j = ojson::array();
  for (auto it = inos.begin(); it != inos.end();) {
    std::uint64_t start = *it, end = start;
    for (++it; it != inos.end() && *it == end + 1; ++it) end = *it;
    j.push_back(start == end ? ojson::array({start}) : ojson::array({start, end}));
  }
  return j.dump();
}

std::string FsMetrics::access_patterns_json() const {
  ojson j = ojson::array();
  std::lock_guard lock(pattern_mu_);
  for (const auto& [ino, p] : patterns_) {
    ojson e;
    e["ino"] = ino;
    e["nr_read"] = p.nr_read;
    e["first_access_time_secs"] = p.first_secs;
    e["first_access_time_nanos"] = p.first_nanos;
    j.push_back(std::move(e));
  }
  return j.dump();
}

}  // namespace nydus::fs
