// FuseServer: libfuse3 low-level glue. One fuse_lowlevel_ops table of thin
// callbacks: each asks PseudoFs for a value or an errno and replies once.
#define FUSE_USE_VERSION 35
#include "nydus/fs/fuse_server.h"
#include "nydus/fs/fuse_failover.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <sys/uio.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace nydus::fs {

namespace {

// The leading fields of the kernel's struct fuse_in_header (linux/fuse.h).
struct InHeader {
  std::uint32_t len;
  std::uint32_t opcode;
  std::uint64_t unique;
  std::uint64_t nodeid;
};

// Mount-table paths escape space, tab, newline and backslash as \ooo.
std::string unescape_mount_path(std::string_view p) {
  std::string out;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\' && i + 3 < p.size()) {
      out += static_cast<char>(((p[i + 1] - '0') << 6) | ((p[i + 2] - '0') << 3) | (p[i + 3] - '0'));
      i += 3;
    } else {
      out += p[i];
    }
  }
  return out;
}

struct MountEntry {
  std::string fstype, source;
};

// The topmost mount whose target is `target` (canonical), from /proc/self/mountinfo.
std::optional<MountEntry> mount_at(const std::string& target) {
  std::ifstream in("/proc/self/mountinfo");
  std::optional<MountEntry> found;
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root target options [optional…] - fstype source superoptions
    std::istringstream ss(line);
    std::string id, parent, dev, root, mp, opts, field;
    if (!(ss >> id >> parent >> dev >> root >> mp >> opts)) continue;
    while (ss >> field && field != "-") {
    }
    MountEntry e;
    if (!(ss >> e.fstype >> e.source)) continue;
    if (unescape_mount_path(mp) == target) found = std::move(e);  // later lines are mounted on top
  }
  return found;
}

// The errno of a mountpoint that cannot be used, 0 when it can. A dead FUSE
// connection may still answer stat(2) from the attribute cache (for up to the
// attr timeout after its daemon died); statfs(2) always reaches the
// connection, so it is what tells a stale mount from a live one.
int mountpoint_errno(const std::string& path, struct stat& st) {
  if (::stat(path.c_str(), &st) != 0) return errno;
  struct statfs sfs {};
  if (::statfs(path.c_str(), &sfs) != 0) return errno;
  return 0;
}

}  // namespace

bool is_fuse_mount_target(const std::string& path) {
  // Lexically only: stat(2) on a connection without a daemon would wait for one.
  std::string target = std::filesystem::absolute(path).lexically_normal().string();
  if (target.size() > 1 && target.back() == '/') target.pop_back();
  auto m = mount_at(target);
  return m && (m->fstype == "fuse" || m->fstype == "fuseblk" || m->fstype.rfind("fuse.", 0) == 0);
}

Result<void> prepare_mountpoint(const std::string& path, bool clean_stale) {
  struct stat st {};
  if (int err = mountpoint_errno(path, st); err != 0) {
    if (err != ENOTCONN) return fail(ErrorCode::kIo, fmt::format("cannot use mountpoint {}: {}", path, std::strerror(err)));
    std::string stale = fmt::format("mountpoint {} is a stale FUSE mount whose daemon is gone ({})", path, std::strerror(err));
    if (!clean_stale) return fail(ErrorCode::kIo, stale);
    if (::umount2(path.c_str(), MNT_DETACH) != 0) {
      return fail(ErrorCode::kIo, fmt::format("{}; unmounting it failed: {}", stale, std::strerror(errno)));
    }
    spdlog::warn("{}: lazily unmounted it", stale);
    return prepare_mountpoint(path, false);
  }
  if (!S_ISDIR(st.st_mode)) return fail(ErrorCode::kInvalidArgument, fmt::format("mountpoint {} is not a directory", path));
  std::error_code ec;
  std::string target = std::filesystem::canonical(path, ec).string();
  if (ec) return fail(ErrorCode::kIo, fmt::format("cannot use mountpoint {}: {}", path, ec.message()));
  if (auto m = mount_at(target); m && (m->fstype == "fuse" || m->fstype == "fuseblk" || m->fstype.rfind("fuse.", 0) == 0)) {
    return fail(ErrorCode::kAlreadyExists,
                fmt::format("mountpoint {} is already a live FUSE mount ({} type {}): another daemon serves it, and "
                            "mounting over it would hide its files",
                            path, m->source, m->fstype));
  }
  return {};
}

Result<void> set_fuse_readahead(dev_t dev, unsigned kb) {
  const std::string path = fmt::format("/sys/class/bdi/{}:{}/read_ahead_kb", major(dev), minor(dev));
  std::ofstream f(path);
  f << kb << '\n';
  f.flush();
  if (!f) return fail(ErrorCode::kIo, fmt::format("cannot set the FUSE readahead: writing {} failed", path));
  return {};
}

struct FuseServer::Worker {
  std::thread thread;
  mutable std::mutex mu;
  bool busy = false;         // guarded by mu
  InflightRequest current;   // guarded by mu
};

struct FuseServer::Ops {
  static FuseServer& self(fuse_req_t req) { return *static_cast<FuseServer*>(fuse_req_userdata(req)); }

  // Whether the kernel may cache `node` long (FuseServerOptions::kernel_cache).
  static bool cached(fuse_req_t req, std::uint64_t node) {
    return self(req).options_.kernel_cache && self(req).fs_.immutable(node);
  }
  static double attr_timeout(fuse_req_t req, bool cached) {
    const auto& o = self(req).options_;
    return cached ? o.immutable_timeout : o.attr_timeout;
  }
  // The name `e` in `parent` is cached long only when both are immutable: a
  // name in a pseudo directory comes and goes with mounts.
  static void fill_entry(fuse_req_t req, bool parent_cached, const NodeEntry& e, fuse_entry_param& p) {
    const auto& o = self(req).options_;
    bool c = cached(req, e.node);
    p.ino = e.node;
    p.attr = e.attr;
    p.attr_timeout = attr_timeout(req, c);
    p.entry_timeout = parent_cached && c ? o.immutable_timeout : o.entry_timeout;
  }

  static void reply_entry(fuse_req_t req, fuse_ino_t parent, const NodeEntry& e) {
    fuse_entry_param p{};
    fill_entry(req, cached(req, parent), e, p);
    fuse_reply_entry(req, &p);
  }

  static void init(void* userdata, fuse_conn_info* conn) {
    auto* server = static_cast<FuseServer*>(userdata);
    if (server->inherited_) {
      // The synthetic INIT of an inherited connection (adopt()): what the
      // kernel agreed with the previous daemon is what holds.
      const FuseInitParams& p = *server->inherited_;
      conn->capable = p.capable;
      conn->want = p.want;
      conn->max_write = p.max_write;
      conn->max_read = p.max_read;
      conn->max_readahead = p.max_readahead;
      conn->max_background = p.max_background;
      conn->congestion_threshold = p.congestion_threshold;
      conn->time_gran = p.time_gran;
      server->init_params_ = p;
      server->initialized_.store(true);
      return;
    }
    // Requests must arrive in memory so workers can read their headers (in-flight metrics).
    conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    server->init_params_ = {conn->proto_major, conn->proto_minor, conn->capable, conn->want,
                            conn->max_write, conn->max_read, conn->max_readahead, conn->max_background,
                            conn->congestion_threshold, conn->time_gran};
    server->initialized_.store(true);
    // libfuse answers max_pages = max_write / page size (FUSE_MAX_PAGES): 256 with its 1 MiB buffer.
    spdlog::info("FUSE INIT: protocol {}.{}, max_write {} (requests up to {} pages), max_readahead {}, "
                 "max_background {}, want 0x{:x}",
                 conn->proto_major, conn->proto_minor, conn->max_write, (conn->max_write + 4095) / 4096,
                 conn->max_readahead, conn->max_background, conn->want);
  }

  static void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto e = self(req).fs_.lookup(parent, name);
    if (!e && e.error() == ENOENT && parent != FUSE_ROOT_ID && cached(req, parent)) {
      // A negative entry (node 0), as upstream's RAFS. Not in the FUSE root:
      // its node id survives a swap of "/", and only the names it answered
      // (a bounded set) are invalidated then; deeper ones go with their
      // parent's entry, and a mount appearing under a name invalidates it.
      fuse_entry_param p{};
      p.entry_timeout = self(req).options_.immutable_timeout;
      fuse_reply_entry(req, &p);
      return;
    }
    if (!e) {
      fuse_reply_err(req, e.error());
      return;
    }
    reply_entry(req, parent, *e);
  }

  static void forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    self(req).fs_.forget(ino, nlookup);
    fuse_reply_none(req);
  }

  static void forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    for (size_t i = 0; i < count; ++i) self(req).fs_.forget(forgets[i].ino, forgets[i].nlookup, true);
    fuse_reply_none(req);
  }

  static void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    auto st = self(req).fs_.getattr(ino);
    if (!st) {
      fuse_reply_err(req, st.error());
      return;
    }
    fuse_reply_attr(req, &*st, attr_timeout(req, cached(req, ino)));
  }

  static void readlink(fuse_req_t req, fuse_ino_t ino) {
    auto s = self(req).fs_.readlink(ino);
    if (!s) {
      fuse_reply_err(req, s.error());
      return;
    }
    fuse_reply_readlink(req, s->c_str());
  }

  static void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto fh = self(req).fs_.open(ino, fi->flags);
    if (!fh) {
      fuse_reply_err(req, fh.error());
      return;
    }
    fi->fh = *fh;
    fi->keep_cache = cached(req, ino);  // data that cannot change may outlive the open
    if (fuse_reply_open(req, fi) == -ENOENT) self(req).fs_.release(ino, *fh);  // interrupted
  }

  static void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    thread_local std::vector<char> buf;
    if (buf.size() < size) buf.resize(size);
    auto n = self(req).fs_.read(ino, fi->fh, buf.data(), size, off);
    if (!n) {
      fuse_reply_err(req, n.error());
      return;
    }
    fuse_reply_buf(req, buf.data(), *n);
  }

  static void release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    self(req).fs_.release(ino, fi->fh);
    fuse_reply_err(req, 0);
  }

  static void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    auto fh = self(req).fs_.opendir(ino);
    if (!fh) {
      fuse_reply_err(req, fh.error());
      return;
    }
    fi->fh = *fh;
    if (fuse_reply_open(req, fi) == -ENOENT) self(req).fs_.releasedir(ino, *fh);
  }

  static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
    thread_local std::vector<char> buf;
    if (buf.size() < size) buf.resize(size);
    size_t pos = 0;
    std::string name;
    const bool dir_cached = plus && cached(req, ino);
    auto r = self(req).fs_.readdir(ino, fi->fh, static_cast<std::uint64_t>(off), plus,
                                   [&](const DirEntry& de, const NodeEntry* e) {
                                     name.assign(de.name);
                                     size_t need;
                                     if (plus) {
                                       fuse_entry_param p{};
                                       if (e->node != 0) fill_entry(req, dir_cached, *e, p);
                                       else p.attr = e->attr;
                                       need = fuse_add_direntry_plus(req, buf.data() + pos, size - pos, name.c_str(), &p,
                                                                     static_cast<off_t>(de.next_off));
                                     } else {
                                       struct stat st {};
                                       st.st_ino = de.d_ino;
                                       st.st_mode = static_cast<mode_t>(de.d_type << 12);
                                       need = fuse_add_direntry(req, buf.data() + pos, size - pos, name.c_str(), &st,
                                                                static_cast<off_t>(de.next_off));
                                     }
                                     if (need > size - pos) return false;
                                     pos += need;
                                     return true;
                                   });
    if (!r && pos == 0) {
      fuse_reply_err(req, r.error());
      return;
    }
    fuse_reply_buf(req, buf.data(), pos);
  }
  static void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    do_readdir(req, ino, size, off, fi, false);
  }
  static void readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    do_readdir(req, ino, size, off, fi, true);
  }

  static void releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    self(req).fs_.releasedir(ino, fi->fh);
    fuse_reply_err(req, 0);
  }

  static void statfs(fuse_req_t req, fuse_ino_t ino) {
    auto sv = self(req).fs_.statfs(ino);
    if (!sv) {
      fuse_reply_err(req, sv.error());
      return;
    }
    fuse_reply_statfs(req, &*sv);
  }

  static void reply_sized(fuse_req_t req, const FsResult<std::string>& v, size_t size) {
    if (!v) fuse_reply_err(req, v.error());
    else if (size == 0) fuse_reply_xattr(req, v->size());
    else if (v->size() > size) fuse_reply_err(req, ERANGE);
    else fuse_reply_buf(req, v->data(), v->size());
  }
  static void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    reply_sized(req, self(req).fs_.getxattr(ino, name), size);
  }
  static void listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    reply_sized(req, self(req).fs_.listxattr(ino), size);
  }

  static void access(fuse_req_t req, fuse_ino_t ino, int mask) {
    auto r = self(req).fs_.access(ino, mask);
    fuse_reply_err(req, r ? 0 : r.error());
  }

  // Read-only by design: every write-type operation is refused.
  static void setattr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) { fuse_reply_err(req, EROFS); }
  static void mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { fuse_reply_err(req, EROFS); }
  static void mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { fuse_reply_err(req, EROFS); }
  static void unlink(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
  static void symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
  static void rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) {
    fuse_reply_err(req, EROFS);
  }
  static void link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }
  static void write(fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*) { fuse_reply_err(req, EROFS); }
  static void create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) { fuse_reply_err(req, EROFS); }
  static void setxattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) { fuse_reply_err(req, EROFS); }
  static void removexattr(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EROFS); }

  static fuse_lowlevel_ops table() {
    fuse_lowlevel_ops o{};
    o.init = init;
    o.lookup = lookup;
    o.forget = forget;
    o.forget_multi = forget_multi;
    o.getattr = getattr;
    o.readlink = readlink;
    o.open = open;
    o.read = read;
    o.release = release;
    o.opendir = opendir;
    o.readdir = readdir;
    o.readdirplus = readdirplus;
    o.releasedir = releasedir;
    o.statfs = statfs;
    o.getxattr = getxattr;
    o.listxattr = listxattr;
    o.access = access;
    o.setattr = setattr;
    o.mknod = mknod;
    o.mkdir = mkdir;
    o.unlink = unlink;
    o.rmdir = unlink;
    o.symlink = symlink;
    o.rename = rename;
    o.link = link;
    o.write = write;
    o.create = create;
    o.setxattr = setxattr;
    o.removexattr = removexattr;
    return o;
  }
};

FuseServer::FuseServer(PseudoFs& fs, std::string mountpoint, FuseServerOptions options)
    : fs_(fs), mountpoint_(std::move(mountpoint)), options_(std::move(options)) {}

Result<std::unique_ptr<FuseServer>> FuseServer::start(PseudoFs& fs, const std::string& mountpoint,
                                                        FuseServerOptions options) {
  if (options.threads == 0) return fail(ErrorCode::kInvalidArgument, "FUSE worker threads must be at least 1");
  std::unique_ptr<FuseServer> s(new FuseServer(fs, mountpoint, std::move(options)));
  if (auto r = s->new_session(); !r) return tl::unexpected(r.error());
  if (fuse_session_mount(s->se_, mountpoint.c_str()) != 0) {
    fuse_session_destroy(s->se_);
    s->se_ = nullptr;
    // libfuse only prints its reason: name the mountpoint's own problem when it has one.
    struct stat st {};
    if (int err = mountpoint_errno(mountpoint, st); err != 0) {
      return fail(ErrorCode::kIo, fmt::format("cannot mount FUSE at {}: {}", mountpoint, std::strerror(err)));
    }
    if (!S_ISDIR(st.st_mode)) return fail(ErrorCode::kIo, fmt::format("cannot mount FUSE at {}: not a directory", mountpoint));
    return fail(ErrorCode::kIo, fmt::format("cannot mount FUSE at {} (is /dev/fuse available?)", mountpoint));
  }
  if (auto r = s->launch(); !r) {
    fuse_session_unmount(s->se_);
    fuse_session_destroy(s->se_);
    s->se_ = nullptr;
    return tl::unexpected(r.error());
  }
  spdlog::info("FUSE mounted at {} with {} worker threads", mountpoint, s->options_.threads);
  return s;
}

Result<void> FuseServer::new_session() {
  // No subtype: the type column reads `fuse`, as upstream's.
  std::string opts = fmt::format("ro,default_permissions,allow_other,fsname={}", options_.fsname);
  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  fuse_opt_add_arg(&args, "nydusd");
  fuse_opt_add_arg(&args, "-o");
  fuse_opt_add_arg(&args, opts.c_str());
  static const fuse_lowlevel_ops ops = Ops::table();
  se_ = fuse_session_new(&args, &ops, sizeof(ops), this);
  fuse_opt_free_args(&args);
  if (!se_) return fail(ErrorCode::kIo, "cannot create FUSE session");
  return {};
}

namespace {

// Unique of the synthetic FUSE_INIT fed to an adopted session. Kernel request
// ids are even; its reply is swallowed by adopted_writev, never written.
constexpr std::uint64_t kSyntheticInitUnique = 0xFFFF'FFFF'FFFF'FFF1ull;

ssize_t adopted_read(int fd, void* buf, size_t len, void*) { return ::read(fd, buf, len); }

ssize_t adopted_writev(int fd, struct iovec* iov, int count, void*) {
  // The kernel already got its INIT reply from the previous daemon.
  if (count > 0 && iov[0].iov_len >= sizeof(fuse_out_header)) {
    fuse_out_header h;
    std::memcpy(&h, iov[0].iov_base, sizeof h);
    if (h.unique == kSyntheticInitUnique) {
      ssize_t total = 0;
      for (int i = 0; i < count; ++i) total += static_cast<ssize_t>(iov[i].iov_len);
      return total;
    }
  }
  return ::writev(fd, iov, count);
}

}  // namespace

Result<std::unique_ptr<FuseServer>> FuseServer::adopt(PseudoFs& fs, const std::string& mountpoint, int fd,
                                                        const FuseInitParams& init, FailoverPolicy policy,
                                                        std::uint64_t conn_id, FuseServerOptions options) {
  struct FdGuard {
    int fd;
    ~FdGuard() {
      if (fd >= 0) ::close(fd);
    }
  } guard{fd};
  if (options.threads == 0) return fail(ErrorCode::kInvalidArgument, "FUSE worker threads must be at least 1");
  if (fd < 0) return fail(ErrorCode::kInvalidArgument, "no FUSE connection to adopt");
  if (init.proto_major != FUSE_KERNEL_VERSION || init.proto_minor == 0) {
    return fail(ErrorCode::kInvalidArgument,
                fmt::format("recorded FUSE protocol {}.{} cannot be served", init.proto_major, init.proto_minor));
  }
  std::unique_ptr<FuseServer> s(new FuseServer(fs, mountpoint, std::move(options)));
  s->inherited_ = init;
  if (auto r = s->new_session(); !r) return tl::unexpected(r.error());
  static const fuse_custom_io io{adopted_writev, adopted_read, nullptr, nullptr};
  if (fuse_session_custom_io(s->se_, &io, fd) != 0) {
    fuse_session_destroy(s->se_);
    s->se_ = nullptr;
    return fail(ErrorCode::kIo, "cannot attach the inherited FUSE connection to a session");
  }
  guard.fd = -1;  // the session owns it now
  // libfuse answers nothing before FUSE_INIT: replay the kernel's INIT with
  // the recorded parameters (Ops::init restores them, the reply is swallowed).
  struct {
    fuse_in_header h;
    fuse_init_in in;
  } msg{};
  msg.h.len = sizeof msg;
  msg.h.opcode = FUSE_INIT;
  msg.h.unique = kSyntheticInitUnique;
  msg.in.major = init.proto_major;
  msg.in.minor = init.proto_minor;
  msg.in.max_readahead = init.max_readahead;
  // Without it libfuse sizes its read buffer for 32 pages, and the kernel
  // refuses reads into a buffer smaller than its max_write (EINVAL).
  msg.in.flags = FUSE_MAX_PAGES;
  fuse_buf buf{};
  buf.size = sizeof msg;
  buf.mem = &msg;
  fuse_session_process_buf(s->se_, &buf);
  if (!s->initialized_.load() || fuse_session_exited(s->se_)) {
    fuse_session_destroy(s->se_);  // closes the descriptor; the supervisor still holds one
    s->se_ = nullptr;
    return fail(ErrorCode::kIo, "the FUSE session refused the recorded INIT parameters");
  }
  apply_failover_policy(fd, init, conn_id, policy);
  if (auto r = s->launch(); !r) {
    fuse_session_destroy(s->se_);
    s->se_ = nullptr;
    return tl::unexpected(r.error());
  }
  spdlog::info("FUSE connection {} at {} taken over (protocol {}.{}) with {} worker threads", conn_id, mountpoint,
               init.proto_major, init.proto_minor, s->options_.threads);
  return s;
}

bool FuseServer::handover(std::chrono::milliseconds limit) {
  if (stopped_.exchange(true)) return true;
  fs_.set_invalidator(nullptr);
  if (!se_) return true;
  // Workers leave at their next poll; one that has read a request answers it
  // first. Requests still queued in the kernel go to the successor.
  std::uint64_t one = 1;
  if (::write(stop_fd_, &one, sizeof one) < 0) spdlog::warn("FUSE handover: eventfd write failed");
  bool drained;
  {
    std::unique_lock lock(exit_mu_);
    drained = exit_cv_.wait_for(lock, limit, [this] { return running_ == 0; });
  }
  for (auto& w : workers_) {
    if (!w->thread.joinable()) continue;
    if (drained) w->thread.join();
    else w->thread.detach();  // stuck in a backend: the caller ends the process
  }
  if (!drained) {
    auto stuck = inflight();
    spdlog::error("FUSE handover at {}: {} request(s) still unanswered after {} ms, abandoned to the successor", mountpoint_,
                  stuck.size(), limit.count());
    return false;
  }
  // Our descriptor only: the supervisor and the successor hold the connection.
  fuse_session_destroy(se_);
  se_ = nullptr;
  ::close(stop_fd_);
  stop_fd_ = -1;
  spdlog::info("FUSE connection at {} handed over: every request read was answered, the mount stays", mountpoint_);
  return true;
}

Result<void> FuseServer::launch() {
  int fd = fuse_session_fd(se_);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return tl::unexpected(os_error("eventfd", errno));
  for (unsigned i = 0; i < options_.threads; ++i) workers_.push_back(std::make_unique<Worker>());
  running_ = options_.threads;
  for (auto& w : workers_) {
    Worker* wp = w.get();
    w->thread = std::thread([this, wp] { work(*wp); });
  }
  fs_.set_invalidator(this);
  return {};
}

FuseServer::~FuseServer() { stop(); }

void FuseServer::work(Worker& w) {
  fuse_buf buf{};
  int fd = fuse_session_fd(se_);
  for (;;) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      session_ended(errno);
      break;
    }
    if (p[1].revents != 0 || fuse_session_exited(se_)) break;
    int res = fuse_session_receive_buf(se_, &buf);
    if (res == -EAGAIN || res == -EINTR) continue;
    if (res <= 0) {
      // 0: ENODEV, libfuse has marked the session exited (unmounted from
      // outside or aborted); other workers see that and leave quietly.
      session_ended(res == 0 ? ENODEV : -res);
      break;
    }
    bool in_mem = (buf.flags & FUSE_BUF_IS_FD) == 0 && static_cast<size_t>(res) >= sizeof(InHeader);
    if (in_mem) {
      InHeader h;
      std::memcpy(&h, buf.mem, sizeof h);
      auto now = std::chrono::system_clock::now().time_since_epoch();
      std::lock_guard lock(w.mu);
      w.busy = true;
      w.current = {h.nodeid, h.opcode, h.unique,
                   static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(now).count())};
    }
    fuse_session_process_buf(se_, &buf);
    if (in_mem) {
      std::lock_guard lock(w.mu);
      w.busy = false;
    }
  }
  std::free(buf.mem);
  std::lock_guard lock(exit_mu_);
  --running_;
  exit_cv_.notify_all();
}

void FuseServer::session_ended(int err) {
  if (stopped_.load() || lost_.exchange(true)) return;
  std::string why = fmt::format("FUSE session at {} ended by the kernel ({}): unmounted from outside or connection "
                                "aborted; nothing it served is reachable any more",
                                mountpoint_, std::strerror(err));
  spdlog::error("{}", why);
  if (options_.on_session_end) options_.on_session_end(why);
}

void FuseServer::stop() {
  if (stopped_.exchange(true)) return;
  fs_.set_invalidator(nullptr);
  if (!se_) return;
  // Workers first (they poll the stop eventfd, never block in read), then the
  // unmount: libfuse closes the /dev/fuse descriptor in fuse_session_unmount.
  fuse_session_exit(se_);
  std::uint64_t one = 1;
  if (::write(stop_fd_, &one, sizeof one) < 0) spdlog::warn("FUSE stop: eventfd write failed");
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  // Lazy as root; closing /dev/fuse aborts requests of busy files. libfuse
  // does not know the mountpoint of an inherited connection: unmount it here.
  if (inherited_) {
    if (::umount2(mountpoint_.c_str(), MNT_DETACH) != 0) {
      spdlog::warn("unmounting {} failed: {}", mountpoint_, std::strerror(errno));
    }
  } else {
    fuse_session_unmount(se_);
  }
  fuse_session_destroy(se_);
  se_ = nullptr;
  fs_.release_all_handles();  // their releases will never arrive
  ::close(stop_fd_);
  stop_fd_ = -1;
  spdlog::info("FUSE unmounted from {}", mountpoint_);
}

int FuseServer::fuse_fd() const { return se_ && !stopped_.load() ? fuse_session_fd(se_) : -1; }

std::vector<InflightRequest> FuseServer::inflight() const {
  std::vector<InflightRequest> out;
  for (const auto& w : workers_) {
    std::lock_guard lock(w->mu);
    if (w->busy) out.push_back(w->current);
  }
  return out;
}

void FuseServer::inval_entry(std::uint64_t parent, const std::string& name) {
  if (!initialized_.load() || stopped_.load()) return;
  fuse_lowlevel_notify_inval_entry(se_, parent, name.c_str(), name.size());  // -ENOENT: not cached
}

void FuseServer::inval_inode(std::uint64_t node) {
  if (!initialized_.load() || stopped_.load()) return;
  fuse_lowlevel_notify_inval_inode(se_, node, 0, 0);
}

}  // namespace nydus::fs
