// Prefetcher (see header and docs/blobcache.md "Prefetch").
#include "nydus/storage/prefetch.h"

#include <sys/stat.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <optional>
#include <set>
#include <system_error>

namespace nydus::storage {
namespace {

using Run = Prefetcher::Run;
using Clock = std::chrono::steady_clock;

std::uint64_t epoch_millis() {
  auto t = std::chrono::system_clock::now().time_since_epoch();
  return std::uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(t).count());
}

// Appends chunk `index` of `blob` to the last run when it directly follows
// it and the run stays within `batch` bytes; else starts a new run.
class RunBuilder {
 public:
  RunBuilder(std::vector<Run>& out, std::uint64_t batch) : out_(out), batch_(batch) {}
  void add(std::uint32_t blob, std::uint32_t index, std::uint64_t bytes) {
    if (open_) {
      Run& r = out_.back();
      if (r.blob == blob && r.first + r.count == index && bytes_ + bytes <= batch_) {
        ++r.count;
        bytes_ += bytes;
        return;
      }
    }
    out_.push_back(Run{blob, index, 1});
    bytes_ = bytes;
    open_ = true;
  }

 private:
  std::vector<Run>& out_;
  const std::uint64_t batch_;
  std::uint64_t bytes_ = 0;
  bool open_ = false;
};

using Report = std::function<void(std::optional<std::uint32_t> blob, const std::string& what)>;

// The chunks of the regular files at and under `ino` of at most `max_size`
// bytes, in the tree's breadth-first order (the builder's, so usually the
// blob's). Directories are entered once each and at most 4096 deep, so a
// corrupt tree cannot loop.
Result<void> collect(const Image& im, std::uint64_t ino, std::vector<ChunkRef>& out, std::set<std::uint64_t>& dirs,
                     int depth, const std::function<bool()>& stopping,
                     std::uint64_t max_size = std::numeric_limits<std::uint64_t>::max()) {
  auto a = im.getattr(ino);
  if (!a) return tl::unexpected(a.error());
  if (S_ISREG(a->mode)) return a->size <= max_size ? im.file_chunks(ino, out) : Result<void>{};
  if (!S_ISDIR(a->mode) || depth > 4096 || !dirs.insert(ino).second) return {};
  std::vector<std::uint64_t> children;
  auto r = im.readdir(ino, 0, [&](const DirEntry& e) {
    if (e.name != "." && e.name != "..") children.push_back(e.ino);
    return true;
  });
  if (!r) return r;
  for (std::uint64_t child : children) {
    if (stopping()) return {};
    if (auto c = collect(im, child, out, dirs, depth + 1, stopping, max_size); !c) return c;
  }
  return {};
}

Result<std::uint64_t> resolve(const Image& im, const std::string& path) {
  std::uint64_t ino = im.root_ino();
  for (std::size_t at = 0; at < path.size();) {
    std::size_t end = path.find('/', at);
    if (end == std::string::npos) end = path.size();
    if (end > at) {
      auto a = im.lookup(ino, std::string_view(path).substr(at, end - at));
      if (!a) return tl::unexpected(a.error());
      ino = a->ino;
    }
    at = end + 1;
  }
  return ino;
}

// The hinted inodes: `files` when given, else the prefetch table. Sets
// `all` when the hint means the whole image ("/" or the root alone).
std::vector<std::uint64_t> hinted_inodes(const Image& im, const PrefetchOptions& o, bool& all, const Report& report) {
  std::vector<std::uint64_t> inos;
  if (o.files.empty()) {
    const auto& table = im.prefetch_nids();
    if (table.size() == 1 && table[0] == im.root_ino()) all = true;
    else inos = table;
    return inos;
  }
  std::size_t missing = 0;
  std::string first_missing;
  for (const std::string& p : o.files) {
    auto ino = resolve(im, p);
    if (!ino) {
      if (missing++ == 0) first_missing = p;
      continue;
    }
    if (*ino == im.root_ino()) all = true;
    else inos.push_back(*ino);
  }
  if (missing > 0) {
    report(std::nullopt, std::to_string(missing) + " prefetch path(s) not in the image, first " + first_missing);
  }
  return inos;
}

// Turns chunk lists into runs, each chunk planned once: a chunk already in
// an earlier list is left out (and ends the run it would have joined).
class Planner {
 public:
  Planner(const Image& im, std::uint64_t batch, const Report& report)
      : im_(im), builder_(runs_, batch), report_(report), planned_(im.blobs().size()) {}

  // `chunks` sorted by blob and index, so adjacent chunks share runs.
  void add(const std::vector<ChunkRef>& chunks, const std::function<bool()>& stopping) {
    for (const ChunkRef& c : chunks) {
      if (c.blob >= planned_.size() || (c.blob != loaded_ && !load(c.blob, stopping))) continue;
      if (infos_ && c.index < infos_->size()) add(c.blob, c.index);
    }
  }
  // Every chunk of every blob not planned yet, in blob order.
  void add_all(const std::function<bool()>& stopping) {
    for (std::uint32_t b = 0; b < planned_.size(); ++b) {
      if (!load(b, stopping)) continue;
      for (std::uint32_t i = 0; infos_ && i < infos_->size(); ++i) add(b, i);
    }
  }
  std::vector<Run> take() { return std::move(runs_); }

 private:
  bool load(std::uint32_t blob, const std::function<bool()>& stopping) {
    if (stopping()) return false;
    auto r = im_.blob_chunks(blob);
    infos_ = r ? *r : nullptr;
    loaded_ = blob;
    if (!r) report_(blob, r.error().message());
    if (infos_ && planned_[blob].size() != infos_->size()) planned_[blob].assign(infos_->size(), false);
    return infos_ != nullptr;
  }
  void add(std::uint32_t blob, std::uint32_t index) {
    if (planned_[blob][index]) return;
    planned_[blob][index] = true;
    builder_.add(blob, index, (*infos_)[index].compressed_size);
  }

  const Image& im_;
  std::vector<Run> runs_;
  RunBuilder builder_;
  const Report& report_;
  std::vector<std::vector<bool>> planned_;  // per blob, per chunk
  const std::vector<ChunkInfo>* infos_ = nullptr;
  std::optional<std::uint32_t> loaded_;
};

std::vector<ChunkRef> sorted(std::vector<ChunkRef> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// Hinted files' chunks first; then, when everything is asked for, the small
// files (a container's start reads many small files, while a huge file in
// front of them in the blob would hold them back), then the rest of every
// blob in blob order.
std::vector<Run> plan(const Image& im, const PrefetchOptions& o, const std::function<bool()>& stopping,
                      const Report& report) {
  bool all = o.prefetch_all;
  std::vector<ChunkRef> hinted;
  std::set<std::uint64_t> dirs;
  for (std::uint64_t ino : hinted_inodes(im, o, all, report)) {
    if (stopping()) return {};
    if (auto c = collect(im, ino, hinted, dirs, 0, stopping); !c) {
      report(std::nullopt, "prefetch list: inode " + std::to_string(ino) + ": " + c.error().message());
    }
  }
  Planner planner(im, o.batch_size, report);
  planner.add(sorted(std::move(hinted)), stopping);
  if (!all) return planner.take();
  std::vector<ChunkRef> small;
  std::set<std::uint64_t> walked;
  if (auto c = collect(im, im.root_ino(), small, walked, 0, stopping, o.small_file); !c) {
    report(std::nullopt, "prefetch of small files: " + c.error().message());  // the blob order below still covers them
  }
  planner.add(sorted(std::move(small)), stopping);
  planner.add_all(stopping);
  return stopping() ? std::vector<Run>{} : planner.take();
}

}  // namespace

std::unique_ptr<Prefetcher> Prefetcher::start(std::shared_ptr<const Image> image, PrefetchOptions options) {
  std::unique_ptr<Prefetcher> p(new Prefetcher(std::move(image), std::move(options)));
  try {
    p->main_ = std::thread([raw = p.get()] { raw->main(); });
  } catch (const std::system_error& e) {  // out of threads: no prefetch, the mount goes on
    p->report(std::nullopt, std::string("not started: ") + e.what());
    p->end_millis_.store(std::max<std::uint64_t>(epoch_millis(), 1), std::memory_order_release);
  }
  return p;
}

Prefetcher::Prefetcher(std::shared_ptr<const Image> image, PrefetchOptions options)
    : image_(std::move(image)),
      options_(std::move(options)),
      blob_failed_(new std::atomic<bool>[image_->blobs().size()]()),
      tokens_(double(options_.bandwidth_limit)),
      refilled_(Clock::now()) {}

Prefetcher::~Prefetcher() { stop(); }

void Prefetcher::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  std::lock_guard join(join_mu_);
  if (main_.joinable()) main_.join();
}

bool Prefetcher::stopping() const {
  std::lock_guard lock(mu_);
  return stop_;
}

void Prefetcher::report(std::optional<std::uint32_t> blob, const std::string& what) {
  if (blob && (*blob >= image_->blobs().size() || blob_failed_[*blob].exchange(true))) return;
  if (!options_.on_error) return;
  std::string text = "prefetch: ";
  if (blob) text += "blob " + image_->blobs()[*blob].blob_id + " skipped: ";
  options_.on_error(text + what);
}

void Prefetcher::main() {
  begin_millis_.store(epoch_millis(), std::memory_order_relaxed);
  Report report = [this](std::optional<std::uint32_t> blob, const std::string& what) { this->report(blob, what); };
  try {
    runs_ = plan(*image_, options_, [this] { return stopping(); }, report);
  } catch (const std::exception& e) {  // bad_alloc on a huge image: no prefetch, no crash
    report(std::nullopt, std::string("planning failed: ") + e.what());
    runs_.clear();
  }
  std::vector<std::thread> helpers;
  const std::size_t want = std::min<std::size_t>(std::max<std::uint32_t>(options_.threads, 1), runs_.size());
  for (std::size_t k = 1; k < want && !stopping(); ++k) {
    try {
      helpers.emplace_back([this] { work(); });
    } catch (const std::system_error&) {
      break;  // out of threads: fewer workers
    }
  }
  work();
  for (auto& t : helpers) t.join();
  end_millis_.store(std::max<std::uint64_t>(epoch_millis(), 1), std::memory_order_release);
}

void Prefetcher::work() {
  workers_.fetch_add(1, std::memory_order_relaxed);
  for (;;) {
    const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= runs_.size()) break;
    const Run& run = runs_[i];
    if (blob_failed_[run.blob].load(std::memory_order_relaxed)) continue;
    if (!yield_to_readers() || !throttle()) break;
    const auto t0 = Clock::now();
    auto r = image_->cache_chunks(run.blob, run.first, run.count);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
    cumulative_micros_.fetch_add(std::uint64_t(us), std::memory_order_relaxed);
    if (!r) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      report(run.blob, r.error().message());
      continue;
    }
    if (r->fetched == 0) continue;
    requests_.fetch_add(r->requests, std::memory_order_relaxed);
    unmerged_.fetch_add(r->fetched, std::memory_order_relaxed);
    data_amount_.fetch_add(r->bytes, std::memory_order_relaxed);
    charge(r->bytes);
  }
  workers_.fetch_sub(1, std::memory_order_relaxed);
}

bool Prefetcher::yield_to_readers() {
  std::unique_lock lock(mu_);
  const auto until = Clock::now() + options_.max_yield;
  while (!stop_ && image_->reads_in_flight() > 0 && Clock::now() < until) {
    wake_.wait_for(lock, std::chrono::milliseconds(1));
  }
  return !stop_;
}

bool Prefetcher::throttle() {
  std::unique_lock lock(mu_);
  const double rate = double(options_.bandwidth_limit);
  while (!stop_) {
    if (rate == 0) return true;
    const auto now = Clock::now();
    tokens_ = std::min(rate, tokens_ + rate * std::chrono::duration<double>(now - refilled_).count());
    refilled_ = now;
    if (tokens_ >= 0) return true;
    // Capped (then re-checked) so that a deep debt never overflows a duration.
    const double secs = std::min(-tokens_ / rate, 3600.0);
    wake_.wait_for(lock, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs)));
  }
  return false;
}

void Prefetcher::charge(std::uint64_t bytes) {
  if (options_.bandwidth_limit == 0) return;
  std::lock_guard lock(mu_);
  tokens_ -= double(bytes);
}

PrefetchStats Prefetcher::stats() const {
  PrefetchStats s;
  s.data_amount = data_amount_.load(std::memory_order_relaxed);
  s.requests = requests_.load(std::memory_order_relaxed);
  s.unmerged_chunks = unmerged_.load(std::memory_order_relaxed);
  s.workers = workers_.load(std::memory_order_relaxed);
  s.cumulative_millis = cumulative_micros_.load(std::memory_order_relaxed) / 1000;
  s.begin_millis = begin_millis_.load(std::memory_order_relaxed);
  s.end_millis = end_millis_.load(std::memory_order_acquire);
  s.failures = failures_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace nydus::storage
