// nydusd: the Nydus image service daemon.
//
// Start-up reads as a list of passes (contract §1.1, §5.3, §9):
//   1. parse the upstream-compatible command line (or print --version);
//   2. set up logging and the open-file limit; check --config; detect a
//      failover (§6.4: behave as --upgrade); check the host mountpoint
//      (refuse a live FUSE mount, unmount a stale one);
//   3. block SIGINT/SIGTERM in every thread; they are read from a signalfd by
//      the main loop, so no work ever runs in signal context (§10 #16);
//   4. with --mountpoint, create the FUSE service; attach --shared-dir at "/"
//      and the RAFS image of --bootstrap (--config or --localfs-dir) at
//      --virtual-mountpoint;
//   5. bind the API socket, refusing to replace a live daemon's socket or a
//      non-socket file, before anything is mounted on the host (§10 #33);
//   6. run the daemon's start-up transitions: Mount, then Start, which mounts
//      FUSE and starts its workers (RUNNING); with --upgrade stay in INIT;
//   7. wait for a signal (graceful shutdown: unmount), an accepted PUT
//      /daemon/exit (its 204 already written; the FUSE workers answer what
//      they read, then FUSE stays mounted for a successor, §2.5) or
//      the kernel ending the FUSE session (unmounted from outside: graceful
//      shutdown, exit status 1; docs/decisions.md);
//   8. stop the API server, which removes the socket if it is still ours;
//      wait at most 2 s for a running mount request (exit status 1 without it).
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "nydus/api/service.h"
#include "nydus/config/parse.h"
#include "nydus/config/validate.h"
#include "nydus/daemon/daemon.h"
#include "nydus/daemon/fuse_service.h"
#include "nydus/daemon/logging.h"
#include "nydus/fs/fuse_failover.h"

namespace {

namespace daemon = nydus::daemon;  // a namespace-scope alias would clash with daemon(3)

struct Flags {
  std::string apisock;
  std::string id;
  std::string supervisor;
  std::string log_level = "info";
  std::string log_file;
  std::uint64_t log_rotation_size = 0;
  std::uint64_t rlimit_nofile = 1000000;
  bool upgrade = false;
  std::string mountpoint;
  std::string config;
  std::string bootstrap;
  std::string localfs_dir;
  std::string shared_dir;
  std::string prefetch_files;
  std::string virtual_mountpoint = "/";
  std::string failover_policy = "resend";
  unsigned thread_num = 4;
  bool writable = false;
  bool rafs_kernel_cache = true;
  unsigned fuse_readahead_kb = daemon::FuseServiceOptions{}.readahead_kb;
  bool version = false;
};

// How long PUT /daemon/exit waits for FUSE requests already read (a worker
// stuck in a hung backend is abandoned after it).
constexpr std::chrono::seconds kHandoverLimit{10};
// 1 TiB: far beyond any real log, and its byte count cannot overflow.
constexpr std::uint64_t kMaxLogRotationMiB = std::uint64_t{1} << 20;

void add_flags(CLI::App& app, Flags& f) {
  app.add_option("-A,--apisock", f.apisock, "Unix socket path of the management API");
  auto* id = app.add_option("--id", f.id, "Daemon id, reported in daemon info (requires --supervisor)");
  auto* sup = app.add_option("--supervisor", f.supervisor,
                             "Supervisor socket for live upgrade and failover (requires --id): PUT "
                             "/api/v1/daemon/fuse/sendfd saves the state and the FUSE connection there, PUT "
                             "/api/v1/daemon/fuse/takeover reads them back");
  id->needs(sup);
  sup->needs(id);
  app.add_option("-l,--log-level", f.log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}, CLI::ignore_case));
  app.add_option("-L,--log-file", f.log_file, "Log to this file instead of stderr");
  app.add_option("--log-rotation-size", f.log_rotation_size,
                 "Rotate --log-file when it reaches this size in MiB, keeping " +
                     std::to_string(daemon::kLogFilesKept) + " old files (0: never)")
      ->check(CLI::Range(std::uint64_t{0}, kMaxLogRotationMiB));
  app.add_option("--rlimit-nofile", f.rlimit_nofile, "Open-file limit to set (0: unchanged)");
  app.add_flag("--upgrade", f.upgrade, "Start in upgrade mode: wait in INIT for takeover");
  app.add_option("-M,--mountpoint", f.mountpoint, "FUSE mount point");
  auto* cfg = app.add_option("-C,--config", f.config, "Filesystem configuration file (JSON or TOML)");
  auto* boot = app.add_option("-B,--bootstrap", f.bootstrap, "RAFS bootstrap to mount at the virtual mountpoint");
  auto* localfs = app.add_option("-D,--localfs-dir", f.localfs_dir, "Blob directory for a localfs backend");
  auto* shared = app.add_option("-s,--shared-dir", f.shared_dir, "Directory to serve through passthrough_fs");
  auto* prefetch = app.add_option("--prefetch-files", f.prefetch_files,
                                  "File listing paths to prefetch, one a line (`/` = everything); needs fs_prefetch and a blob cache");
  boot->excludes(shared);
  localfs->excludes(cfg);
  prefetch->needs(boot);
  app.add_option("-m,--virtual-mountpoint", f.virtual_mountpoint, "Path inside the FUSE root for --bootstrap");
  app.add_option("--failover-policy", f.failover_policy,
                 "none|resend|flush: what to do, when a taken-over connection starts, with requests the previous "
                 "daemon read and never answered (resend: the kernel sends them again)")
      ->check(CLI::IsMember({"none", "resend", "flush"}));
  app.add_option("--thread-num,--fuse-threads", f.thread_num, "FUSE worker threads")->check(CLI::Range(1, 1024));
  app.add_option("--rafs-kernel-cache", f.rafs_kernel_cache,
                 "Let the kernel cache RAFS names, attributes and file data (page cache, charged to the "
                 "reader's cgroup) until umount: true|false")
      ->default_val(true);
  app.add_option("--fuse-readahead-kb", f.fuse_readahead_kb,
                 "Kernel readahead of the FUSE mount in KiB (0: the kernel's 128 KiB)")
      ->check(CLI::Range(0u, 65536u));
  app.add_flag("--writable", f.writable, "Accepted for compatibility; no effect: the service is read-only");
}

// Passthrough node tables (docs/upgrade.md) are needed only by a daemon that
// can be upgraded or failed over (--supervisor, and --apisock for sendfd);
// they live beside the API socket, in a directory of this daemon id that its
// successors (same id, their socket in the same directory) find again. ""
// (logged) when it cannot be made.
std::string node_table_dir(const Flags& f) {
  if (f.supervisor.empty() || f.apisock.empty()) return {};
  std::string id = f.id;
  std::replace(id.begin(), id.end(), '/', '_');
  std::filesystem::path dir = std::filesystem::path(f.apisock).parent_path() / ("nydusd-" + id + "-state");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || ::access(dir.c_str(), W_OK) != 0) {
    spdlog::warn("node table directory {} unusable ({}): passthrough inode numbers will not survive an upgrade",
                 dir.string(), ec ? ec.message() : std::strerror(errno));
    return {};
  }
  return dir.string();
}

void print_version(const nydus::api::BuildInfo& b) {
  // Upstream's exact layout: nydus-snapshotter reads `Git Commit:\s*(.+)`.
  std::printf("nydusd \rVersion: \t%s\nGit Commit: \t%s\nBuild Time: \t%s\nProfile: \t%s\nRustc: \t\t%s\n",
              b.package_ver.c_str(), b.git_commit.c_str(), b.build_time.c_str(), b.profile.c_str(), b.rustc.c_str());
}

void raise_nofile(std::uint64_t want) {
  if (want == 0) return;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  rlim_t target = std::min<rlim_t>(want, lim.rlim_max);
  if (target > lim.rlim_cur) {
    lim.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) spdlog::warn("cannot raise the open-file limit to {}", target);
  }
}

// Whether the FUSE mount at `path` waits for a daemon (its connection is
// alive: a supervisor holds it), rather than being dead (ENOTCONN at once) or
// served. statfs always reaches the connection, so it runs in a child that
// is killed (FUSE waits yield to SIGKILL, the request is withdrawn) if it
// has not returned within 250 ms (a dead connection answers at once; this
// wait is part of every failover's pause).
bool connection_waits_for_daemon(const std::string& path) {
  pid_t pid = fork();
  if (pid == 0) {
    struct statfs sfs {};
    _exit(::statfs(path.c_str(), &sfs) == 0 ? 0 : 1);
  }
  if (pid < 0) return true;  // cannot tell: take §6.4's word
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  pollfd p{pidfd, POLLIN, 0};
  bool returned = pidfd >= 0 && poll(&p, 1, 250) == 1;
  if (pidfd >= 0) close(pidfd);
  if (!returned) kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return !returned;
}

// Contract §6.4: a FUSE mount still at the mountpoint and a stale API socket
// (its daemon crashed) mean a failover: start as with --upgrade. A mount whose
// connection is already dead (nobody kept it) cannot be taken over; it takes
// the stale-mount path instead.
bool detect_failover(const Flags& f) {
  if (f.upgrade || f.mountpoint.empty() || f.apisock.empty() || f.supervisor.empty()) return false;
  if (!nydus::fs::is_fuse_mount_target(f.mountpoint)) return false;
  sockaddr_un addr{};
  if (f.apisock.size() >= sizeof(addr.sun_path)) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, f.apisock.data(), f.apisock.size());
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return false;
  bool refused = connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 && errno == ECONNREFUSED;
  close(s);
  return refused && connection_waits_for_daemon(f.mountpoint);
}

enum class Wake { kSignal, kExitRequested, kSessionLost };

// Waits until SIGINT/SIGTERM arrives on `sigfd`, or `exitfd` or `lostfd` is written.
Wake wait_for_stop(int sigfd, int exitfd, int lostfd) {
  pollfd fds[3] = {{sigfd, POLLIN, 0}, {exitfd, POLLIN, 0}, {lostfd, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("poll: {}", std::strerror(errno));
      return Wake::kSignal;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      if (read(sigfd, &si, sizeof(si)) == sizeof(si)) spdlog::info("received signal {}, shutting down", si.ssi_signo);
      return Wake::kSignal;
    }
    if (fds[1].revents & POLLIN) return Wake::kExitRequested;
    if (fds[2].revents & POLLIN) return Wake::kSessionLost;
  }
}

// The RAFS instance --bootstrap asks for: configuration from --config (the
// same rules as a mount through the API) or, with --localfs-dir, a localfs
// backend over that directory; prefetch list from --prefetch-files.
nydus::Result<daemon::MountRequest> rafs_mount_request(const Flags& f, const std::optional<nydus::config::ConfigV2>& cfg) {
  using nydus::Error;
  using nydus::ErrorCode;
  daemon::MountRequest req;
  req.mountpoint = f.virtual_mountpoint;
  req.type = daemon::FsType::kRafs;
  req.source = f.bootstrap;
  if (cfg) {
    if (auto problems = nydus::config::validate_for_rafs_mount(*cfg); !problems.empty()) {
      return tl::unexpected(Error(ErrorCode::kInvalidArgument, "invalid configuration " + f.config + ", " +
                                                                    nydus::config::render(problems)));
    }
    req.config = *cfg;
  } else if (!f.localfs_dir.empty()) {
    req.config.backend.emplace();
    req.config.backend->type = "localfs";
    req.config.backend->localfs.emplace();
    req.config.backend->localfs->dir = f.localfs_dir;
    req.config.cache.emplace();  // no cache
    req.config.rafs.emplace();
  } else {
    return tl::unexpected(Error(ErrorCode::kInvalidArgument, "--bootstrap needs --config or --localfs-dir"));
  }
  if (!f.prefetch_files.empty()) {
    std::ifstream in(f.prefetch_files);
    if (!in) return tl::unexpected(Error(ErrorCode::kInvalidArgument, "cannot read --prefetch-files " + f.prefetch_files));
    std::string line;
    while (std::getline(in, line)) {
      auto b = line.find_first_not_of(" \t\r");
      if (b == std::string::npos) continue;  // blank lines are skipped
      auto e = line.find_last_not_of(" \t\r");
      std::string path = line.substr(b, e - b + 1);
      if (path.front() != '/') {
        return tl::unexpected(Error(ErrorCode::kInvalidArgument, "invalid prefetch file list: `" + path + "` is not absolute"));
      }
      req.prefetch_files.push_back(std::move(path));
    }
  }
  return req;
}

}  // namespace

int main(int argc, char** argv) {
  namespace daemon = nydus::daemon;
  // Chunk buffers (1 MiB by default) are allocated and freed by many threads.
  // glibc raises its mmap threshold after the first such free and then keeps
  // freed buffers in per-thread arenas: prefetch workers left tens of MiB
  // resident. A fixed threshold returns every buffer >= 128 KiB to the system
  // (docs/robustness.md "Memory").
  ::mallopt(M_MMAP_THRESHOLD, 128 << 10);
  Flags flags;
  CLI::App app{"nydusd: the Nydus image service daemon (management API over a Unix socket)", "nydusd"};
  add_flags(app, flags);
  app.add_flag("-V,--version", flags.version, "Print version information and exit");
  // `nydusd fuse …` is the same as `nydusd …`.
  auto* fuse_cmd = app.add_subcommand("fuse", "Serve over FUSE (the default)");
  fuse_cmd->fallthrough();
  app.require_subcommand(0, 1);
  CLI11_PARSE(app, argc, argv);

  const nydus::api::BuildInfo build = daemon::build_info();
  if (flags.version) {
    print_version(build);
    return 0;
  }

  auto level = daemon::parse_log_level(flags.log_level, false);
  if (auto r = daemon::setup_logging(level.value_or(spdlog::level::info), flags.log_file,
                                     flags.log_rotation_size << 20);  // MiB, as upstream
      !r) {
    std::cerr << "nydusd: " << r.error().message() << "\n";
    return 1;
  }
  raise_nofile(flags.rlimit_nofile);
  signal(SIGPIPE, SIG_IGN);  // a client vanishing mid-reply must never kill the daemon

  if (!flags.shared_dir.empty() && flags.mountpoint.empty()) {
    spdlog::error("--shared-dir needs --mountpoint");
    return 1;
  }
  if (!flags.bootstrap.empty() && flags.mountpoint.empty()) {
    spdlog::error("--bootstrap needs --mountpoint");
    return 1;
  }
  if (!flags.localfs_dir.empty() && flags.bootstrap.empty()) {
    spdlog::error("--localfs-dir needs --bootstrap");
    return 1;
  }
  // The configuration is checked at start-up so a bad file fails here, naming the key.
  std::optional<nydus::config::ConfigV2> config;
  if (!flags.config.empty()) {
    auto cfg = nydus::config::parse_config_file(flags.config);
    if (!cfg) {
      spdlog::error("invalid configuration {}: {}", flags.config, cfg.error().message());
      return 1;
    }
    config = std::move(*cfg);
  }
  std::optional<daemon::MountRequest> rafs_mount;
  if (!flags.bootstrap.empty()) {
    auto req = rafs_mount_request(flags, config);
    if (!req) {
      spdlog::error("cannot serve {}: {}", flags.bootstrap, req.error().message());
      return 1;
    }
    rafs_mount = std::move(*req);
  }

  if (detect_failover(flags)) {
    spdlog::warn("failover: {} is still a FUSE mount and API socket {} is stale; waiting in INIT for takeover",
                 flags.mountpoint, flags.apisock);
    flags.upgrade = true;
  }
  // A live FUSE mount is refused (stacking on it would hide its files) and a
  // stale one, left by a crashed daemon, is lazily unmounted. With
  // --supervisor a stale mount is left (and refused) for the takeover path;
  // --upgrade mounts nothing. Before signals are blocked: a hung FUSE mount
  // can stall stat(2), and SIGTERM must still end that.
  if (!flags.mountpoint.empty() && !flags.upgrade) {
    if (auto r = nydus::fs::prepare_mountpoint(flags.mountpoint, flags.supervisor.empty()); !r) {
      spdlog::error("{}", r.error().message());
      return 1;
    }
  }

  // Signals are consumed from a signalfd by the main loop; block them before any thread starts.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  int sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
  int exitfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int lostfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);  // written by the FUSE worker that saw the session end
  if (sigfd < 0 || exitfd < 0 || lostfd < 0) {
    spdlog::error("cannot create signal/event descriptors: {}", std::strerror(errno));
    return 1;
  }

  daemon::DaemonOptions options;
  if (!flags.id.empty()) options.id = flags.id;
  if (!flags.supervisor.empty()) options.supervisor = flags.supervisor;
  options.upgrade = flags.upgrade;
  options.build = build;

  // Data-plane errors (from FUSE workers) go to the daemon's events ring. It
  // is made first and shared, so it outlives every service that reports into it.
  auto events = std::make_shared<daemon::EventRing>();
  options.events = events;
  std::shared_ptr<daemon::FuseService> fuse;
  if (!flags.mountpoint.empty()) {
    auto push_event = [events](std::string text) { events->push(text); };
    daemon::FuseServiceOptions fo;
    fo.kernel_cache = flags.rafs_kernel_cache;
    fo.readahead_kb = flags.fuse_readahead_kb;
    fo.failover_policy = *nydus::fs::parse_failover_policy(flags.failover_policy);  // checked by CLI11
    fo.node_table_dir = node_table_dir(flags);
    fo.on_session_end = [push_event, lostfd](const std::string& why) {
      push_event(why);
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = write(lostfd, &one, sizeof(one));
    };
    fuse = std::make_shared<daemon::FuseService>(push_event, std::move(fo));
    options.start_service = [fuse, mp = flags.mountpoint, threads = flags.thread_num] { return fuse->start(mp, threads); };
    options.stop_service = [fuse] { fuse->stop(); };
    options.fuse_ready = [fuse] { return fuse->initialized(); };
    options.save_state = [fuse] { return fuse->save_state(); };
    options.fuse_fd = [fuse] { return fuse->fuse_fd(); };
    options.restore_state = [fuse](const daemon::UpgradeState& st, daemon::UniqueFd fd) {
      return fuse->restore(st, std::move(fd));
    };
    // In upgrade/failover mode takeover restores every instance, these included.
    if (!flags.shared_dir.empty() && !flags.upgrade) {
      daemon::MountRequest shared{"/", daemon::FsType::kPassthrough, flags.shared_dir, {}, {}};
      if (auto r = fuse->mount(shared); !r) {
        spdlog::error("cannot serve {}: {}", flags.shared_dir, r.error().message());
        return 1;
      }
    }
    if (rafs_mount && !flags.upgrade) {
      if (auto r = fuse->mount(*rafs_mount); !r) {
        spdlog::error("cannot serve {}: {}", flags.bootstrap, r.error().message());
        return 1;
      }
      spdlog::info("serving RAFS image {} at {}", flags.bootstrap, rafs_mount->mountpoint);
    }
  }
  daemon::Daemon d(options, fuse);
  d.set_exit_handler([exitfd] {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(exitfd, &one, sizeof(one));
  });
  std::unique_ptr<nydus::api::HttpServer> server;
  if (!flags.apisock.empty()) {
    nydus::api::HttpServerOptions http;
    http.socket_path = flags.apisock;
    auto s = nydus::api::HttpServer::start(http, nydus::api::make_api_http_handler(d));
    if (!s) {
      spdlog::error("cannot start the API server: {}", s.error().message());
      return 1;
    }
    server = std::move(*s);
    spdlog::info("API listening on {}", flags.apisock);
  }
  // A fresh start serves no previous daemon's connection, so node tables left
  // in its directory are garbage; only now, when the bind has refused a live
  // daemon's socket, is it sure none is using them.
  if (fuse && !flags.upgrade) fuse->prune_node_tables();
  if (auto r = d.start(); !r) {
    spdlog::error("start-up failed: {}", r.error().message());
    if (server) server->stop();
    return 1;
  }
  spdlog::info("nydusd {} ({}) {}, state {}", build.package_ver, build.git_commit,
               flags.mountpoint.empty() ? std::string("serving the API only") : "serving FUSE at " + flags.mountpoint,
               daemon::to_string(d.state()));

  Wake why = wait_for_stop(sigfd, exitfd, lostfd);
  // A lost session serves nothing and would answer mounts nothing can reach:
  // shut down like upstream (§5.3, a worker dying) so supervisors see it.
  if (why == Wake::kSessionLost) spdlog::error("the FUSE session at {} has ended, shutting down", flags.mountpoint);
  if (why != Wake::kExitRequested) d.shutdown();  // unmounts FUSE (RUNNING -> READY -> STOPPED)
  // Exit leaves the mount to a successor: answer every request already read,
  // leave the rest in the kernel's queue (docs/upgrade.md).
  bool handed_over = true;
  if (why == Wake::kExitRequested && fuse) handed_over = fuse->handover(kHandoverLimit);
  if (server) server->stop();
  server.reset();
  // A mount stuck in the kernel (its source on a hung filesystem) must not
  // hold up the exit: it is abandoned, and the destructors that would wait
  // for it are skipped.
  const bool worker_stopped = d.stop_worker(std::chrono::seconds(2));
  if (!worker_stopped) spdlog::error("a mount request is stuck in a system call; exiting without waiting for it");
  close(sigfd);
  close(exitfd);  // lostfd stays open: FUSE workers may still write it until the process ends
  spdlog::info("nydusd exited");
  spdlog::shutdown();
  if (!handed_over) spdlog::error("exiting with FUSE requests unanswered: the successor's failover policy decides");
  if (!worker_stopped || (why == Wake::kExitRequested && fuse)) {
    // PUT /daemon/exit leaves the FUSE mount for a successor to take over:
    // leave without running the service's destructor, which would unmount.
    std::fflush(nullptr);
    _exit(worker_stopped ? 0 : 1);
  }
  return why == Wake::kSessionLost ? 1 : 0;
}
