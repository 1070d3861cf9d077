// FuseServer: a FUSE session (libfuse3 low-level API) mounted at a host path,
// serving a PseudoFs with N worker threads.
//
// Workers run our own loop rather than fuse_session_loop_mt: each polls the
// (non-blocking) /dev/fuse descriptor and a stop eventfd, receives one request,
// records it in its in-flight slot (node id, opcode, unique, start time; §4.8)
// and processes it. So stop() never depends on the kernel waking a blocked
// read, and in-flight requests are visible per worker.
//
// The mount is read-only ("ro", plus EROFS from every write-type operation),
// with default_permissions (the kernel checks modes; FUSE_ACCESS is not sent)
// and allow_other. Like upstream nydusd, /proc/mounts shows fsname `rafs` and
// type `fuse` (no subtype): scripts and monitoring grep for that line.
//
// Session end: when the kernel ends the session while it is served (the mount
// removed from outside, e.g. `fusermount3 -u`, or the connection aborted
// through /sys/fs/fuse/connections), reading /dev/fuse fails with ENODEV. The
// first worker to see it logs an error and calls `on_session_end` once; all
// workers then exit. Nothing is reachable through the session any more; the
// owner decides what follows (nydusd shuts down, see docs/decisions.md).
//
// Lifetime: start() mounts and starts the workers; stop() (also run by the
// destructor) wakes and joins the workers, lazily unmounts, closes the session
// (requests still pending in the kernel then fail with ENOTCONN) and releases
// the handles the kernel can no longer release. The PseudoFs must outlive the
// server; one server per PseudoFs at a time.
//
// Live upgrade (docs/upgrade.md): adopt() serves a connection another daemon
// set up instead of mounting; handover() is the old daemon's exit, which
// leaves the mount and the kernel's queue to the successor.
//
// Thread-safety: inflight(), initialized(), session_lost(), fuse_fd() and the Invalidator
// methods may be called from any thread; stop() from one thread at a time.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "nydus/fs/pseudo_fs.h"
#include "nydus/result.h"

struct fuse_session;

namespace nydus::fs {

// Seconds the kernel may cache immutable instances' names and attributes:
// 2^32 s, upstream's RAFS default (rafs-format.md), i.e. until invalidated.
inline constexpr double kImmutableTimeout = 4294967296.0;

struct FuseServerOptions {
  unsigned threads = 4;        // worker threads, >= 1
  double entry_timeout = 1.0;  // seconds the kernel may cache names
  double attr_timeout = 1.0;   // seconds the kernel may cache attributes
  // Kernel caching of immutable instances (Filesystem::immutable(): RAFS).
  // On: their names and attributes are cached for `immutable_timeout`, a
  // failed lookup in one of their directories as a negative entry for as
  // long, and file data stays in the page cache across opens (keep_cache).
  // Off: every node gets the timeouts above and no keep_cache. Pseudo
  // directories and names in them always get the timeouts above.
  bool kernel_cache = true;
  double immutable_timeout = kImmutableTimeout;
  std::string fsname = "rafs";  // the source column of /proc/mounts
  // Called once, on the worker thread that noticed it, when the kernel ended
  // the session (see above), with the reason; never after stop(). Must not block.
  std::function<void(const std::string&)> on_session_end;
};

// What the kernel and this daemon agreed at FUSE_INIT. A successor serving
// the same connection (live upgrade, docs/upgrade.md) must stay within it.
struct FuseInitParams {
  std::uint32_t proto_major = 0;
  std::uint32_t proto_minor = 0;
  std::uint32_t capable = 0;  // libfuse FUSE_CAP_* flags the kernel offered
  std::uint32_t want = 0;     // … and those enabled
  std::uint32_t max_write = 0;
  std::uint32_t max_read = 0;
  std::uint32_t max_readahead = 0;
  std::uint32_t max_background = 0;
  std::uint32_t congestion_threshold = 0;
  std::uint32_t time_gran = 0;
  bool operator==(const FuseInitParams&) const = default;
};

// What to do, after taking over a connection, with requests the previous
// daemon read and never answered (contract §6.4; fs/fuse_failover.h).
enum class FailoverPolicy { kNone, kResend, kFlush };

struct InflightRequest {  // one element of §4.8
  std::uint64_t inode = 0;   // FUSE node id
  std::uint32_t opcode = 0;  // FUSE opcode (e.g. 15 = READ)
  std::uint64_t unique = 0;
  std::uint64_t timestamp_secs = 0;
};

// Checks a host directory before a FUSE session is mounted on it, so that
// start-up fails with the real cause instead of libfuse's generic one:
//   - stat fails with ENOTCONN: a stale FUSE mount whose daemon is gone. With
//     `clean_stale` it is lazily unmounted (logged) and the check repeated;
//     otherwise kIo naming ENOTCONN.
//   - any other stat failure: kIo naming the errno; not a directory: kInvalidArgument;
//   - the path is the target of a live FUSE mount (another daemon serves it;
//     mounting on top would hide its files): kAlreadyExists naming it.
// May block like stat(2) on a hung FUSE mount; call it before signals are blocked.
Result<void> prepare_mountpoint(const std::string& path, bool clean_stale);

// Sets the kernel readahead of the FUSE mount whose device is `dev` (its
// backing device info, /sys/class/bdi/<major>:<minor>/read_ahead_kb) to `kb`
// KiB. The kernel starts every FUSE mount at 128 KiB and FUSE_INIT can only
// lower it; sequential reads then reach the daemon as 128 KiB requests
// however large max_pages is. Call after INIT was answered (a stat of the
// mountpoint waits for it), or INIT lowers it again. Errors: kIo naming the file.
Result<void> set_fuse_readahead(dev_t dev, unsigned kb);
// nydusd's readahead: one request of max_pages (1 MiB with libfuse 3.14).
inline constexpr unsigned kDefaultReadaheadKb = 1024;
// Whether `path` (made absolute lexically, never stat'ed: a connection whose
// daemon is gone would block) is the target of a FUSE mount (failover detection, §6.4).
bool is_fuse_mount_target(const std::string& path);

class FuseServer final : public Invalidator {
 public:
  // Mounts `mountpoint` (an existing directory) and starts the workers.
  // Errors: kInvalidArgument (threads 0), kIo (session creation or mount failed; message names it).
  static Result<std::unique_ptr<FuseServer>> start(PseudoFs& fs, const std::string& mountpoint, FuseServerOptions options);
  ~FuseServer() override;
  FuseServer(const FuseServer&) = delete;
  FuseServer& operator=(const FuseServer&) = delete;

  // Serves a FUSE connection another daemon set up (live upgrade or failover,
  // docs/upgrade.md): `fd` (owned from now on, closed on error) is its
  // /dev/fuse descriptor, `init` what the kernel negotiated with that daemon
  // (the kernel sends no second FUSE_INIT). `policy` is applied before the
  // workers start, for requests the previous daemon read and never answered.
  // Nothing is mounted; stop() unmounts `mountpoint`.
  // Errors: kInvalidArgument (threads 0, no fd, a protocol we cannot serve), kIo.
  static Result<std::unique_ptr<FuseServer>> adopt(PseudoFs& fs, const std::string& mountpoint, int fd,
                                                   const FuseInitParams& init, FailoverPolicy policy,
                                                   std::uint64_t conn_id, FuseServerOptions options);
  // Unmounts and joins the workers; idempotent.
  void stop();
  // Hot-upgrade exit (old side): stops reading requests, waits up to `limit`
  // for every request a worker has read to be answered, and leaves the mount
  // and the kernel's queue to the successor. False when a worker is still
  // busy after `limit` (a hung backend): its threads are abandoned and the
  // caller must end the process without destroying the PseudoFs.
  bool handover(std::chrono::milliseconds limit);
  // True once the kernel's FUSE_INIT has been answered.
  bool initialized() const { return initialized_.load(); }
  // The FUSE_INIT parameters; meaningful once initialized().
  FuseInitParams init_params() const { return init_params_; }
  // True once the kernel has ended the session (see "Session end").
  bool session_lost() const { return lost_.load(); }
  // The /dev/fuse descriptor of the session (owned by the server), -1 after stop().
  int fuse_fd() const;
  const std::string& mountpoint() const { return mountpoint_; }
  // Requests being handled now, one per busy worker (never a null element, §10 #25).
  std::vector<InflightRequest> inflight() const;

  void inval_entry(std::uint64_t parent, const std::string& name) override;
  void inval_inode(std::uint64_t node) override;

  struct Worker;
  struct Ops;

 private:
  FuseServer(PseudoFs& fs, std::string mountpoint, FuseServerOptions options);
  Result<void> new_session();
  // Starts the workers on the session's descriptor.
  Result<void> launch();
  void work(Worker& w);
  // Reports the kernel's end of the session (errno `err`) once.
  void session_ended(int err);

  PseudoFs& fs_;
  const std::string mountpoint_;
  const FuseServerOptions options_;
  fuse_session* se_ = nullptr;
  int stop_fd_ = -1;
  FuseInitParams init_params_;  // written once before initialized_ is set, read after
  std::atomic<bool> initialized_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<bool> lost_{false};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::optional<FuseInitParams> inherited_;  // set by adopt() before the session exists
  std::mutex exit_mu_;
  std::condition_variable exit_cv_;
  unsigned running_ = 0;  // guarded by exit_mu_: workers not yet returned
};

}  // namespace nydus::fs
