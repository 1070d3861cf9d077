// FuseService: FsService over PseudoFs + FuseServer (see header).
#include "nydus/daemon/fuse_service.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "nydus/config/serialize.h"
#include "nydus/daemon/metrics_json.h"
#include "nydus/fs/passthrough_fs.h"
#include "nydus/storage/blob_backend.h"

namespace nydus::daemon {

std::string format_mounted_time(std::chrono::system_clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  long frac = static_cast<long>(ns % 1000000000);
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  std::string f = fmt::format("{:09d}", frac);
  while (f.size() > 1 && f.back() == '0') f.pop_back();
  return fmt::format("{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}.{} +00:00:00", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, f);
}

FuseService::FuseService(std::function<void(std::string)> on_error, FuseServiceOptions options)
    : options_(std::move(options)),
      on_error_(on_error),
      chunk_cache_(std::make_shared<storage::ChunkCache>(options_.chunk_cache_bytes)),
      started_{::time(nullptr), 0},
      started_ns_(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                  std::chrono::system_clock::now().time_since_epoch())
                                                  .count())),
      pseudo_(std::move(on_error)) {}

FuseService::~FuseService() { stop(); }

Result<void> FuseService::start(const std::string& mountpoint, unsigned threads) {
  std::lock_guard mlock(mount_mu_);
  std::optional<Inherited> inherited;
  {
    std::lock_guard lock(mu_);
    if (server_) return fail(ErrorCode::kAlreadyExists, "FUSE session already started at " + server_->mountpoint());
    inherited.swap(inherited_);
  }
  fs::FuseServerOptions o;
  o.threads = threads;
  o.entry_timeout = options_.entry_timeout;
  o.attr_timeout = options_.attr_timeout;
  o.kernel_cache = options_.kernel_cache;
  o.on_session_end = options_.on_session_end;
  if (inherited) return start_inherited(std::move(*inherited), o);
  auto s = fs::FuseServer::start(pseudo_, mountpoint, o);
  if (!s) return tl::unexpected(s.error());
  // The device of our own mount, to refuse sources inside it (see
  // check_not_on_own_mount). This stat is answered by our FUSE workers.
  struct stat st {};
  std::optional<dev_t> dev;
  if (::stat(mountpoint.c_str(), &st) == 0) dev = st.st_dev;  // also waits for INIT
  if (dev && options_.readahead_kb > 0) {
    if (auto r = fs::set_fuse_readahead(*dev, options_.readahead_kb); !r) {
      spdlog::warn("{}; sequential reads stay at 128 KiB requests", r.error().message());
    } else {
      spdlog::info("FUSE readahead at {} set to {} KiB", mountpoint, options_.readahead_kb);
    }
  }
  std::lock_guard lock(mu_);
  server_ = std::move(*s);
  own_dev_ = dev;
  return {};
}

Result<void> FuseService::start_inherited(Inherited in, const fs::FuseServerOptions& o) {
  const dev_t dev = makedev(static_cast<unsigned>(in.conn_id >> 20), static_cast<unsigned>(in.conn_id & 0xfffff));
  // The previous daemon has stopped (hot upgrade: exited; failover: dead), so
  // its node tables are final: new ids go after theirs. Before any worker runs.
  std::vector<std::shared_ptr<fs::PassthroughFs>> tables;
  {
    std::lock_guard lock(mu_);
    for (const auto& [mp, r] : records_) {
      if (r.passthrough) tables.push_back(r.passthrough);
    }
  }
  for (const auto& t : tables) t->adopt_node_table();
  prune_node_tables();
  auto s = fs::FuseServer::adopt(pseudo_, in.mountpoint, in.fd.release(), in.init, options_.failover_policy, in.conn_id, o);
  if (!s) return tl::unexpected(s.error());  // the descriptor is closed; the supervisor keeps the connection
  std::lock_guard lock(mu_);
  server_ = std::move(*s);
  own_dev_ = dev;  // no stat: the connection's id says it
  return {};
}


void FuseService::stop() {
  std::shared_ptr<fs::FuseServer> s;
  std::vector<std::shared_ptr<storage::Prefetcher>> prefetch;
  {
    std::lock_guard lock(mu_);
    s = std::move(server_);
    own_dev_.reset();
    for (auto& [mp, r] : records_) {
      if (r.prefetch) prefetch.push_back(r.prefetch);
    }
  }
  // Outside mu_: each stop waits for its workers' runs in flight.
  for (auto& p : prefetch) p->stop();
  if (!s) return;
  s->stop();  // joins workers outside mu_ so metrics readers never wait on it
  // The connection is unmounted: no successor will ask for these ids. (A
  // hot-upgrade exit never gets here: it leaves them to the successor.)
  std::vector<std::shared_ptr<fs::PassthroughFs>> tables;
  {
    std::lock_guard lock(mu_);
    for (auto& [mp, r] : records_) {
      if (r.passthrough) tables.push_back(r.passthrough);
    }
  }
  for (const auto& t : tables) t->discard_node_table();  // outside mu_: file system calls
}

bool FuseService::started() const {
  std::lock_guard lock(mu_);
  return server_ != nullptr;
}

bool FuseService::initialized() const {
  std::lock_guard lock(mu_);
  return server_ && server_->initialized();
}

int FuseService::fuse_fd() const {
  std::lock_guard lock(mu_);
  return server_ ? server_->fuse_fd() : -1;
}

Result<UpgradeState> FuseService::save_state() const {
  std::lock_guard lock(mu_);
  if (!server_ || !server_->initialized()) return fail(ErrorCode::kNotReady, "the FUSE session is not initialised");
  UpgradeState s;
  s.fuse_mountpoint = server_->mountpoint();
  if (own_dev_) s.fuse_conn_id = (std::uint64_t{major(*own_dev_)} << 20) | minor(*own_dev_);
  s.init = server_->init_params();
  for (const auto& [mp, r] : records_) {
    auto at = pseudo_.placement_of(mp);  // shared lock of the pseudo tree only, never I/O
    if (!at) return fail(ErrorCode::kInternal, "mount " + mp + " has no slot");
    SavedMount m{at->slot, at->epoch, r.request, r.info.mounted_time, {}, at->dirs};
    if (r.passthrough) m.node_table = r.passthrough->node_table();
    m.request.mountpoint = mp;
    s.mounts.push_back(std::move(m));
  }
  return s;
}

namespace {

// Upstream's wording for every RAFS load failure (contract §2.2.1), with our
// reason: 500 Other("RAFS failed to handle request, …"). kNotFound and
// kAlreadyExists would read as the mount table's sentences at the API
// (fs_service.h), and kUnsupported as a bare 501 Unsupported without the
// reason (an image feature or a backend type this daemon cannot serve is a
// problem of the request).
Error rafs_error(const Error& e) {
  ErrorCode code = e.code();
  if (code == ErrorCode::kNotFound || code == ErrorCode::kAlreadyExists || code == ErrorCode::kUnsupported) {
    code = ErrorCode::kInvalidArgument;
  }
  return Error(code, "RAFS failed to handle request, " + e.message());
}

// The host paths an instance reads: its source and, for RAFS, the localfs
// backend's blob file and directories and the cache's work_dir.
std::vector<std::string> host_paths_of(const MountRequest& req) {
  std::vector<std::string> paths{req.source};
  if (req.type != FsType::kRafs) return paths;
  const config::ConfigV2& c = req.config;
  if (c.backend && c.backend->localfs) {
    const config::LocalFsConfig& l = *c.backend->localfs;
    for (const std::string* p : {&l.blob_file, &l.dir}) paths.push_back(*p);
    paths.insert(paths.end(), l.alt_dirs.begin(), l.alt_dirs.end());
  }
  if (c.cache && c.cache->filecache) paths.push_back(c.cache->filecache->work_dir);
  return paths;
}

}  // namespace

// A file served from our own mount would be read by a FUSE worker through
// this same session: every worker can end up waiting for itself (a deadlock
// of the whole daemon). st_dev identifies the FUSE superblock, whatever
// symlinks or bind mounts lead there.
Result<void> FuseService::check_not_on_own_mount(const MountRequest& req) const {
  std::optional<dev_t> own;
  std::string mountpoint;
  {
    std::lock_guard lock(mu_);
    if (!server_ || !own_dev_) return {};
    own = own_dev_;
    mountpoint = server_->mountpoint();
  }
  for (const std::string& path : host_paths_of(req)) {
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0 || st.st_dev != *own) continue;
    return fail(ErrorCode::kInvalidArgument,
                path + " is inside this daemon's own mount " + mountpoint + "; it cannot serve itself");
  }
  return {};
}

Result<std::shared_ptr<fs::Filesystem>> FuseService::make_instance(const MountRequest& req, const std::string& mp,
                                                                  const std::string& table, bool resume) const {
  if (auto r = check_not_on_own_mount(req); !r) {
    return tl::unexpected(req.type == FsType::kRafs ? rafs_error(r.error()) : r.error());
  }
  if (req.type == FsType::kRafs) {
    auto r = make_rafs(req, mp);
    if (!r) return tl::unexpected(r.error());
    return std::shared_ptr<fs::Filesystem>(std::move(*r));
  }
  fs::PassthroughOptions o;
  o.source = req.source;
  o.before_read = options_.before_read;
  o.node_table = table;
  o.resume_node_table = resume;
  auto p = fs::PassthroughFs::create(std::move(o));
  if (!p) {
    // A bad source is the caller's mistake, not a mountpoint with nothing mounted (fs_service.h).
    if (p.error().code() == ErrorCode::kNotFound) return fail(ErrorCode::kInvalidArgument, p.error().message());
    return tl::unexpected(p.error());
  }
  return std::shared_ptr<fs::Filesystem>(std::move(*p));
}

Result<std::shared_ptr<fs::RafsFs>> FuseService::make_rafs(const MountRequest& req, const std::string& mp) const {
  const config::ConfigV2& c = req.config;
  if (!c.backend) return tl::unexpected(rafs_error(Error(ErrorCode::kInvalidArgument, "no backend configured")));
  auto backend = storage::create_backend(*c.backend);
  if (!backend) return tl::unexpected(rafs_error(backend.error()));
  std::shared_ptr<storage::BlobBackend> shared_backend = std::move(*backend);
  fs::RafsOptions o;
  o.bootstrap = req.source;
  o.image.backend = shared_backend;
  o.image.chunk_cache = chunk_cache_;
  o.image.digest_validate = (c.rafs && c.rafs->validate) || (c.cache && c.cache->validate);
  if (c.cache && c.cache->filecache && (c.cache->type == "blobcache" || c.cache->type == "filecache")) {
    std::error_code ec;
    if (std::filesystem::is_directory(c.cache->filecache->work_dir, ec)) {
      o.image.blob_meta_dir = c.cache->filecache->work_dir;
      o.image.blob_cache_dir = c.cache->filecache->work_dir;
      o.image.blob_cache_compressed = c.cache->compressed;  // `.blob.raw` instead of `.blob.data`
      o.image.blob_caches = blob_caches_;
      o.image.amplify_io = c.rafs ? c.rafs->batch_size : config::kDefaultBatchSize;
    }
  }
  o.enable_xattr = c.rafs && c.rafs->enable_xattr;
  o.start_time = started_;
  if (on_error_) {
    o.on_error = [sink = on_error_, mp](std::string text) { sink(mp + ": " + text); };
  }
  o.image.on_cache_error = [sink = on_error_, mp](std::string text) {
    spdlog::warn("{}: {}", mp, text);
    if (sink) sink(mp + ": " + text);
  };
  auto fs = fs::RafsFs::open(std::move(o));
  if (!fs) return tl::unexpected(rafs_error(fs.error()));
  // A remote blob is asked for its size now, so that a wrong host,
  // credentials or repository is a mount error with the reason rather than
  // EIO on the first read.
  // A blob whole in the blob cache needs no backend: it mounts with the registry away.
  if (c.backend->type != "localfs") {
    const auto& blobs = (*fs)->image().blobs();
    for (std::uint32_t i = 0; i < blobs.size(); ++i) {
      if ((*fs)->image().blob_cached(i)) continue;
      if (auto s = shared_backend->blob_size(blobs[i].blob_id); !s) return tl::unexpected(rafs_error(s.error()));
    }
  }
  return std::move(*fs);
}

// Legacy `fs_prefetch` lands in rafs.prefetch (and a copy in cache.prefetch);
// v2 documents may set either: rafs.prefetch wins when both are enabled.
// Prefetch fills the blob cache, so without one it has nothing to do.
std::shared_ptr<storage::Prefetcher> FuseService::start_prefetch(const MountRequest& req,
                                                                 const std::shared_ptr<fs::RafsFs>& rafs,
                                                                 const std::string& mp) const {
  const config::ConfigV2& c = req.config;
  const config::PrefetchConfigV2* p = nullptr;
  if (c.rafs && c.rafs->prefetch.enable) {
    p = &c.rafs->prefetch;
  } else if (c.cache && c.cache->prefetch.enable) {
    p = &c.cache->prefetch;
  }
  if (!rafs || !p) return nullptr;
  if (!rafs->image().blob_cache_stats().enabled) {
    spdlog::info("{}: prefetch skipped: no blob cache (cache.type blobcache/filecache with a work_dir)", mp);
    return nullptr;
  }
  storage::PrefetchOptions o;
  o.threads = std::uint32_t(p->threads);
  o.batch_size = p->batch_size;
  o.bandwidth_limit = p->bandwidth_limit;
  o.prefetch_all = p->prefetch_all;
  o.files = req.prefetch_files;
  if (on_error_) o.on_error = [sink = on_error_, mp](std::string text) { sink(mp + ": " + text); };
  // The prefetcher keeps the instance (and so its image) alive while it runs.
  return storage::Prefetcher::start(std::shared_ptr<const storage::Image>(rafs, &rafs->image()), std::move(o));
}

namespace {

fs::FsMetricsOptions metrics_options(const config::ConfigV2& c) {
  fs::FsMetricsOptions o;
  if (c.rafs) {
    o.files = c.rafs->iostats_files;
    o.access_pattern = c.rafs->access_pattern;
    o.latest_read_files = c.rafs->latest_read_files;
  }
  return o;
}

MountInfo info_of(const MountRequest& req, const std::string& mp) {
  MountInfo info;
  info.mountpoint = mp;
  info.type = req.type;
  info.mounted_time = format_mounted_time(std::chrono::system_clock::now());
  if (req.type == FsType::kRafs) info.config = req.config;
  return info;
}

}  // namespace

// Records a new or swapped-in instance and starts its prefetch; a replaced
// instance's prefetch is stopped outside mu_.
void FuseService::put_record(const MountRequest& req, const std::string& mp, const std::shared_ptr<fs::Filesystem>& inst,
                             std::shared_ptr<fs::FsMetrics> metrics) {
  auto rafs = std::dynamic_pointer_cast<fs::RafsFs>(inst);
  auto prefetch = start_prefetch(req, rafs, mp);
  std::shared_ptr<storage::Prefetcher> old;
  std::shared_ptr<fs::PassthroughFs> swapped_out;
  {
    std::lock_guard lock(mu_);
    Record& rec = records_[mp];
    old = std::move(rec.prefetch);
    swapped_out = std::move(rec.passthrough);
    rec = Record{info_of(req, mp), req, std::move(metrics), std::move(rafs), std::move(prefetch), false,
                 std::dynamic_pointer_cast<fs::PassthroughFs>(inst)};
    ++generation_;
  }
  if (old) old->stop();
  if (swapped_out) swapped_out->discard_node_table();  // its ids are stale now (new epoch)
}

std::string FuseService::new_node_table(const MountRequest& req) {
  if (options_.node_table_dir.empty() || req.type != FsType::kPassthrough) return {};
  // Unique across the daemons of one node table directory: pid, start time, count.
  return fmt::format("{}/passthrough-{}-{}-{}.nodes", options_.node_table_dir, ::getpid(), started_ns_, tables_made_++);
}

void FuseService::prune_node_tables() const {
  if (options_.node_table_dir.empty()) return;
  std::set<std::string> used;
  {
    std::lock_guard lock(mu_);
    for (const auto& [mp, r] : records_) {
      if (r.passthrough && !r.passthrough->node_table().empty()) used.insert(r.passthrough->node_table());
    }
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(options_.node_table_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("passthrough-", 0) != 0 || e.path().extension() != ".nodes" || used.count(e.path().string())) continue;
    std::filesystem::remove(e.path(), ec);
    spdlog::info("removed node table {}: no mount uses it", e.path().string());
  }
}

Result<void> FuseService::mount(const MountRequest& req) {
  auto mp = fs::PseudoFs::normalize(req.mountpoint);
  if (!mp) return tl::unexpected(mp.error());
  std::lock_guard mlock(mount_mu_);
  if (pseudo_.is_attached(*mp)) return fail(ErrorCode::kAlreadyExists, *mp + " is mounted already");
  auto inst = make_instance(req, *mp, new_node_table(req));
  if (!inst) return tl::unexpected(inst.error());
  auto metrics = std::make_shared<fs::FsMetrics>(*mp, metrics_options(req.config));
  if (auto r = pseudo_.attach(*mp, *inst, metrics); !r) return r;
  put_record(req, *mp, *inst, std::move(metrics));
  return {};
}

Result<void> FuseService::remount(const MountRequest& req) {
  auto mp = fs::PseudoFs::normalize(req.mountpoint);
  if (!mp) return tl::unexpected(mp.error());
  std::lock_guard mlock(mount_mu_);
  if (!pseudo_.is_attached(*mp)) return fail(ErrorCode::kNotFound, "nothing is mounted at " + *mp);
  auto inst = make_instance(req, *mp, new_node_table(req));
  if (!inst) return tl::unexpected(inst.error());
  auto metrics = std::make_shared<fs::FsMetrics>(*mp, metrics_options(req.config));
  if (auto r = pseudo_.swap(*mp, *inst, metrics); !r) return r;
  put_record(req, *mp, *inst, std::move(metrics));
  return {};
}

Result<void> FuseService::umount(const std::string& mountpoint) {
  auto mp = fs::PseudoFs::normalize(mountpoint);
  if (!mp) return tl::unexpected(mp.error());
  std::lock_guard mlock(mount_mu_);
  if (auto r = pseudo_.detach(*mp); !r) return r;
  std::shared_ptr<storage::Prefetcher> prefetch;
  std::shared_ptr<fs::PassthroughFs> passthrough;
  {
    std::lock_guard lock(mu_);
    if (auto it = records_.find(*mp); it != records_.end()) {
      prefetch = std::move(it->second.prefetch);
      passthrough = std::move(it->second.passthrough);
    }
    records_.erase(*mp);  // §10 #24: the instance's metrics go with it
    ++generation_;
  }
  // Outside mu_ (metrics readers), bounded by the runs in flight.
  if (prefetch) prefetch->stop();
  if (passthrough) passthrough->discard_node_table();  // unmounted: no successor needs its ids
  return {};
}

bool FuseService::is_mounted(const std::string& mountpoint) const {
  auto mp = fs::PseudoFs::normalize(mountpoint);
  if (!mp) return false;
  std::lock_guard lock(mu_);
  return records_.count(*mp) != 0;
}

std::uint64_t FuseService::mounts_generation() const { return generation_.load(); }

void FuseService::renew_credentials(const std::optional<std::string>& id, const std::string& auth) {
  std::optional<std::string> mp;
  if (id && !id->empty()) {
    auto n = fs::PseudoFs::normalize(*id);
    if (!n) return;
    mp = *n;
  }
  std::lock_guard lock(mu_);
  for (auto& [path, rec] : records_) {
    if (rec.rafs && (!mp || *mp == path)) rec.rafs->backend()->renew_credentials(auth);
  }
}

std::vector<MountInfo> FuseService::mounts() const {
  std::lock_guard lock(mu_);
  std::vector<MountInfo> out;
  for (const auto& [mp, r] : records_) out.push_back(r.info);
  return out;
}

Result<FuseService::Record> FuseService::find_record(const std::optional<std::string>& id) const {
  std::lock_guard lock(mu_);
  if (!id) {
    if (records_.size() != 1) return fail(ErrorCode::kNotFound, "no counter");
    return records_.begin()->second;
  }
  auto it = records_.find(*id);
  if (it == records_.end()) return fail(ErrorCode::kNotFound, "no counter");
  return it->second;
}

Result<std::shared_ptr<fs::FsMetrics>> FuseService::find_metrics(const std::optional<std::string>& id) const {
  auto r = find_record(id);
  if (!r) return tl::unexpected(r.error());
  return r->metrics;
}

Result<std::string> FuseService::global_metrics(const std::optional<std::string>& id) {
  auto m = find_metrics(id);
  if (!m) return tl::unexpected(m.error());
  return global_metrics_json((*m)->snapshot());
}

Result<std::string> FuseService::files_metrics(const std::optional<std::string>& id, bool latest_read_files) {
  auto m = find_metrics(id);
  if (!m) return tl::unexpected(m.error());
  return latest_read_files ? latest_read_files_json((*m)->take_latest_read_files()) : files_metrics_json((*m)->files());
}

Result<std::string> FuseService::access_patterns(const std::optional<std::string>& id) {
  auto m = find_metrics(id);
  if (!m) return tl::unexpected(m.error());
  return access_patterns_json((*m)->access_patterns());
}

// Backend counters exist for RAFS instances only (passthrough has no backend).
Result<std::string> FuseService::backend_metrics(const std::optional<std::string>& id) {
  auto r = find_record(id);
  if (!r) return tl::unexpected(r.error());
  if (!r->rafs || !r->rafs->backend()) return fail(ErrorCode::kNotFound, "no counter");
  return backend_metrics_json(r->rafs->backend()->metrics().snapshot());
}

// Contract §4.7, for RAFS instances with a blob cache (others: 404 NoCounter).
// Prefetch fields are 0 for an instance without prefetch (docs/api.md).
Result<std::string> FuseService::blobcache_metrics(const std::optional<std::string>& id) {
  auto r = find_record(id);
  if (!r) return tl::unexpected(r.error());
  if (!r->rafs) return fail(ErrorCode::kNotFound, "no counter");
  const storage::BlobCacheStats s = r->rafs->image().blob_cache_stats();
  if (!s.enabled) return fail(ErrorCode::kNotFound, "no counter");
  const storage::PrefetchStats p = r->prefetch ? r->prefetch->stats() : storage::PrefetchStats{};
  return blobcache_metrics_json(s, p);
}

std::optional<std::string> FuseService::inflight_metrics() {
  std::shared_ptr<fs::FuseServer> s;
  {
    std::lock_guard lock(mu_);
    s = server_;
  }
  if (!s) return std::nullopt;
  auto reqs = s->inflight();
  if (reqs.empty()) return std::nullopt;
  return inflight_json(reqs);
}

Result<std::string> FuseService::backend_info(const std::string& mountpoint) {
  auto mp = fs::PseudoFs::normalize(mountpoint);
  if (!mp) return fail(ErrorCode::kNotFound, "nothing is mounted at " + mountpoint);
  std::lock_guard lock(mu_);
  auto it = records_.find(*mp);
  if (it == records_.end()) return fail(ErrorCode::kNotFound, "nothing is mounted at " + *mp);
  if (!it->second.rafs) return fail(ErrorCode::kInvalidArgument, *mp + " is a passthrough instance, not RAFS");
  auto secs = [](double t) { return static_cast<std::uint64_t>(t); };
  // The timeouts the kernel is given for RAFS nodes (FuseServerOptions::kernel_cache).
  const bool k = options_.kernel_cache;
  return super_block_info_json(it->second.rafs->image().super_block_info(),
                               secs(k ? fs::kImmutableTimeout : options_.attr_timeout),
                               secs(k ? fs::kImmutableTimeout : options_.entry_timeout));
}

Result<std::size_t> FuseService::restore(const UpgradeState& state, UniqueFd fd) {
  std::lock_guard mlock(mount_mu_);
  {
    std::lock_guard lock(mu_);
    if (server_ || inherited_) return fail(ErrorCode::kAlreadyExists, "a FUSE connection is already served");
  }
  std::vector<std::string> attached;
  auto undo = [&] {
    for (const auto& mp : attached) (void)pseudo_.detach(mp);
    std::lock_guard lock(mu_);
    for (const auto& mp : attached) records_.erase(mp);
    ++generation_;
  };
  for (const SavedMount& m : state.mounts) {
    if (auto r = restore_mount(m); !r) {
      undo();
      return fail(r.error().code(), "restoring " + m.request.mountpoint + ": " + r.error().message());
    }
    attached.push_back(m.request.mountpoint);
  }
  std::lock_guard lock(mu_);
  inherited_ = Inherited{std::move(fd), state.init, state.fuse_mountpoint, state.fuse_conn_id};
  return attached.size();
}

// One saved mount at its saved slot and epoch, so the node ids the kernel
// holds keep naming the same files. Caller holds mount_mu_.
Result<void> FuseService::restore_mount(const SavedMount& m) {
  auto mp = fs::PseudoFs::normalize(m.request.mountpoint);
  if (!mp || *mp != m.request.mountpoint) return fail(ErrorCode::kCorrupt, "mountpoint is not normalised");
  fs::Placement at{m.slot, m.epoch, m.pseudo_dirs};
  auto inst = m.request.type == FsType::kPassthrough ? restore_passthrough(m, *mp, at) : make_instance(m.request, *mp);
  if (!inst) return tl::unexpected(inst.error());
  auto metrics = std::make_shared<fs::FsMetrics>(*mp, metrics_options(m.request.config));
  if (auto r = pseudo_.attach_at(*mp, *inst, metrics, at); !r) return r;
  auto rafs = std::dynamic_pointer_cast<fs::RafsFs>(*inst);
  // The predecessor's prefetch may not have finished: go on with what is
  // not in the shared blob cache yet (ready chunks are skipped).
  auto prefetch = rafs ? start_prefetch(m.request, rafs, *mp) : nullptr;
  Record rec{info_of(m.request, *mp), m.request, std::move(metrics), std::move(rafs), std::move(prefetch), true,
             std::dynamic_pointer_cast<fs::PassthroughFs>(*inst)};
  if (!m.mounted_time.empty()) rec.info.mounted_time = m.mounted_time;
  std::lock_guard lock(mu_);
  records_[*mp] = std::move(rec);
  ++generation_;
  return {};
}

Result<std::shared_ptr<fs::Filesystem>> FuseService::restore_passthrough(const SavedMount& m, const std::string& mp,
                                                                        fs::Placement& at) {
  if (!m.node_table.empty()) {
    auto inst = make_instance(m.request, mp, m.node_table, true);
    if (inst) return inst;
    spdlog::warn("takeover: {}: {}; its inode numbers start anew (the kernel's answer ESTALE)", mp,
                 inst.error().message());
  }
  // Without the table the old ids name nothing here: a new epoch makes them
  // answer ESTALE instead of naming other files.
  at.epoch = static_cast<std::uint16_t>(m.epoch == 0xffff ? 1 : m.epoch + 1);
  return make_instance(m.request, mp, new_node_table(m.request));
}

bool FuseService::handover(std::chrono::milliseconds limit) {
  std::shared_ptr<fs::FuseServer> s;
  {
    std::lock_guard lock(mu_);
    s = server_;
  }
  return !s || s->handover(limit);
}

bool FuseService::same_as_restored(const MountRequest& req) const {
  auto mp = fs::PseudoFs::normalize(req.mountpoint);
  if (!mp) return false;
  std::lock_guard lock(mu_);
  auto it = records_.find(*mp);
  if (it == records_.end() || !it->second.restored) return false;
  const MountRequest& had = it->second.request;
  using config::Secrets;
  return had.type == req.type && had.source == req.source && had.prefetch_files == req.prefetch_files &&
         config::to_json(had.config, Secrets::kKeep).dump() == config::to_json(req.config, Secrets::kKeep).dump();
}

}  // namespace nydus::daemon
