// PassthroughFs: inodes as kernel file handles (or pinned O_PATH descriptors)
// over a host directory (see header).
#include "nydus/fs/passthrough_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace nydus::fs {

// A kernel file handle (name_to_handle_at) and the mount it decodes on.
struct PassthroughFs::FileHandle {
  int type = 0;
  std::vector<unsigned char> bytes;
  int mount_id = -1;
  int mount_fd = -1;  // borrowed from PassthroughFs::mount_fds_ (closed with the instance)
};

struct PassthroughFs::Inode {
  Inode(int f, FileHandle h, dev_t d, ino_t i, mode_t m) : fd(f), handle(std::move(h)), dev(d), ino(i), mode(m) {}
  ~Inode() {
    if (fd >= 0) ::close(fd);
  }
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;
  const int fd;         // pinned O_PATH descriptor, or -1 when `handle` is set
  const FileHandle handle;  // re-opened per operation: no descriptor held while cached
  const dev_t dev;
  const ino_t ino;
  const mode_t mode;     // file type bits
  std::uint64_t nlookup = 0;  // guarded by PassthroughFs::mu_
  std::atomic<bool> persisted{false};  // its node table record is written
};

// A descriptor for the duration of one operation: the pinned one (borrowed)
// or one opened from the inode's file handle (owned).
class PassthroughFs::NodeFd {
 public:
  NodeFd(int fd, bool owned) : fd_(fd), owned_(owned) {}
  NodeFd(NodeFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)), owned_(o.owned_) {}
  NodeFd(const NodeFd&) = delete;
  NodeFd& operator=(const NodeFd&) = delete;
  NodeFd& operator=(NodeFd&&) = delete;
  ~NodeFd() {
    if (owned_ && fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
  bool owned_;
};

struct PassthroughFs::DirHandle {
  std::mutex mu;
  DIR* dp = nullptr;             // guarded by mu
  std::uint64_t offset = 0;      // guarded by mu
  struct dirent* entry = nullptr;  // guarded by mu: read but not yet consumed
  ~DirHandle() {
    if (dp) ::closedir(dp);
  }
};

namespace {

std::string proc_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// Descriptor numbers at or above this stay free for the API server and the
// daemon: a FUSE client that makes us hold many files gets EMFILE, the
// management socket still accepts.
int fd_ceiling(std::size_t reserve) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return INT32_MAX;
  auto limit = static_cast<std::size_t>(std::min<rlim_t>(lim.rlim_cur, INT32_MAX));
  return static_cast<int>(std::max(limit - std::min(limit, reserve), limit / 2));
}

// Node table file: a header, then one record per id at a fixed place
// (id 2 is the first record; the root, id 1, is the source itself). Host
// byte order: the file never leaves the machine, and a reboot ends the FUSE
// connection it serves. Records are 256 bytes and aligned, so none spans two
// pages and a killed writer cannot leave half of one; each carries its id and
// a checksum, so a torn, misplaced or foreign record reads as absent (ESTALE).
constexpr char kTableMagic[8] = {'N', 'Y', 'D', 'U', 'S', 'P', 'T', 'N'};
constexpr std::uint32_t kTableVersion = 1;
constexpr std::size_t kRecordSize = 256;
constexpr std::size_t kTableHeader = kRecordSize;
constexpr std::uint32_t kLiveRecord = 0x5254504e;  // "NPTR"; 0: cleared or never written
// Record fields: u32 live | u32 handle type | u32 handle bytes | i32 mount id |
// u64 id | u64 st_dev | u64 st_ino | u32 mode | u32 0 | handle (128) | ... | u64 checksum.
constexpr std::size_t kHandleAt = 48;
constexpr std::size_t kSumAt = kRecordSize - 8;
static_assert(kHandleAt + MAX_HANDLE_SZ <= kSumAt);

// Far beyond any id handed out; keeps every record offset in range.
constexpr std::uint64_t kMaxRecordId = std::uint64_t{1} << 48;

off_t record_offset(std::uint64_t id) { return static_cast<off_t>(kTableHeader + (id - 2) * kRecordSize); }

std::uint64_t record_sum(const unsigned char* rec) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (std::size_t i = 0; i < kSumAt; ++i) h = (h ^ rec[i]) * 0x100000001b3ull;
  return h;
}

template <class T>
void put(unsigned char* rec, std::size_t at, T v) {
  std::memcpy(rec + at, &v, sizeof v);
}

template <class T>
T get(const unsigned char* rec, std::size_t at) {
  T v;
  std::memcpy(&v, rec + at, sizeof v);
  return v;
}

bool record_live(const unsigned char* rec, std::uint64_t id) {
  return get<std::uint32_t>(rec, 0) == kLiveRecord && get<std::uint64_t>(rec, 16) == id &&
         get<std::uint32_t>(rec, 8) <= MAX_HANDLE_SZ && get<std::uint64_t>(rec, kSumAt) == record_sum(rec);
}

bool pwrite_all(int fd, const void* buf, std::size_t n, off_t off) {
  auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
    off += w;
  }
  return true;
}

}  // namespace

std::optional<PassthroughFs::FileHandle> PassthroughFs::handle_of(int fd) {
  alignas(struct file_handle) unsigned char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
  auto* fh = reinterpret_cast<struct file_handle*>(buf);
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mount_id = -1;
  if (::name_to_handle_at(fd, "", fh, &mount_id, AT_EMPTY_PATH) != 0) return std::nullopt;
  FileHandle h;
  h.type = fh->handle_type;
  h.bytes.assign(fh->f_handle, fh->f_handle + std::min<unsigned>(fh->handle_bytes, MAX_HANDLE_SZ));
  h.mount_id = mount_id;
  return h;
}

int PassthroughFs::open_handle(const FileHandle& h, int flags) {
  alignas(struct file_handle) unsigned char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
  auto* fh = reinterpret_cast<struct file_handle*>(buf);
  fh->handle_bytes = static_cast<unsigned>(h.bytes.size());
  fh->handle_type = h.type;
  std::copy(h.bytes.begin(), h.bytes.end(), fh->f_handle);
  return ::open_by_handle_at(h.mount_fd, fh, flags | O_CLOEXEC);
}

PassthroughFs::PassthroughFs(PassthroughOptions options)
    : options_(std::move(options)), fd_ceiling_(fd_ceiling(options_.reserved_fds)) {}

PassthroughFs::~PassthroughFs() {
  if (table_fd_ >= 0) ::close(table_fd_);  // the file stays: a successor may need it
  inodes_.clear();  // before the mount descriptors their handles borrow
  for (auto& [id, fd] : mount_fds_) {
    if (fd >= 0) ::close(fd);
  }
}

int PassthroughFs::guard(int fd) const {
  if (fd >= fd_ceiling_) {
    ::close(fd);
    errno = EMFILE;
    return -1;
  }
  return fd;
}

int PassthroughFs::reopen(const Inode& node, int flags) const {
  if (node.fd >= 0) return guard(::open(proc_path(node.fd).c_str(), flags | O_CLOEXEC));
  return guard(open_handle(node.handle, flags));
}

FsResult<PassthroughFs::NodeFd> PassthroughFs::node_fd(const Inode& node) const {
  if (node.fd >= 0) return NodeFd(node.fd, false);
  int fd = guard(open_handle(node.handle, O_PATH));
  if (fd < 0) return fs_error(errno);
  return NodeFd(fd, true);
}

// A new inode for `fd` (an O_PATH descriptor, consumed): its file handle when
// handles work on its mount (the descriptor is then closed), else the
// descriptor pinned. Makes system calls: not under mu_.
std::shared_ptr<PassthroughFs::Inode> PassthroughFs::make_node(int fd, const struct stat& st) {
  auto pinned = [&] { return std::make_shared<Inode>(fd, FileHandle{}, st.st_dev, st.st_ino, st.st_mode & S_IFMT); };
  if (!use_handles_) return pinned();
  auto h = handle_of(fd);
  if (!h) return pinned();
  h->mount_fd = mount_fd_for(*h, fd, S_ISDIR(st.st_mode));
  if (h->mount_fd < 0) return pinned();
  ::close(fd);
  return std::make_shared<Inode>(-1, std::move(*h), st.st_dev, st.st_ino, st.st_mode & S_IFMT);
}

// A readable descriptor that decodes handles of mount `h.mount_id`, or -1:
// the mount's filesystem cannot, or `fd` is not a directory through which a
// new mount (one inside the source) can be opened; its inodes stay pinned.
int PassthroughFs::mount_fd_for(const FileHandle& h, int fd, bool is_dir) {
  {
    std::lock_guard lock(mounts_mu_);
    if (auto it = mount_fds_.find(h.mount_id); it != mount_fds_.end()) return it->second;
  }
  if (!is_dir) return -1;  // a file bind-mounted on its own
  int mfd = guard(::open(proc_path(fd).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (mfd < 0) return -1;  // not remembered: a later lookup tries again
  FileHandle probe = h;
  probe.mount_fd = mfd;
  if (int pfd = open_handle(probe, O_PATH); pfd >= 0) {
    ::close(pfd);
  } else {
    ::close(mfd);
    mfd = -1;
  }
  std::lock_guard lock(mounts_mu_);
  auto [it, inserted] = mount_fds_.try_emplace(h.mount_id, mfd);
  if (!inserted && mfd >= 0) ::close(mfd);  // another lookup got there first
  return it->second;
}

Result<std::shared_ptr<PassthroughFs>> PassthroughFs::create(PassthroughOptions options) {
  int fd = ::open(options.source.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(os_error("open passthrough source " + options.source, errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return tl::unexpected(os_error("stat passthrough source " + options.source, err));
  }
  if (!S_ISDIR(st.st_mode)) {
    ::close(fd);
    return fail(ErrorCode::kInvalidArgument, "passthrough source " + options.source + " is not a directory");
  }
  std::shared_ptr<PassthroughFs> fs(new PassthroughFs(std::move(options)));
  auto root = std::make_shared<Inode>(fd, FileHandle{}, st.st_dev, st.st_ino, st.st_mode & S_IFMT);
  root->nlookup = 1;  // pinned: forget never frees the root
  fs->inodes_.emplace(kRootIno, root);
  fs->by_id_.emplace(std::make_pair(st.st_dev, st.st_ino), kRootIno);
  fs->enable_handles(fd);
  if (!fs->options_.node_table.empty()) {
    if (auto r = fs->open_node_table(); !r) return tl::unexpected(r.error());
  }
  return fs;
}

// A new table (or none, logged, when it cannot be made: serving matters more
// than surviving an upgrade), or the resumed one, checked.
Result<void> PassthroughFs::open_node_table() {
  const std::string& path = options_.node_table;
  if (!use_handles_) {
    if (options_.resume_node_table) return fail(ErrorCode::kUnsupported, "node table " + path + ": no file handles here");
    return {};
  }
  if (!options_.resume_node_table) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    unsigned char header[kTableHeader] = {};
    std::memcpy(header, kTableMagic, sizeof kTableMagic);
    put(header, 8, kTableVersion);
    put(header, 12, static_cast<std::uint32_t>(kRecordSize));
    if (fd < 0 || !pwrite_all(fd, header, sizeof header, 0)) {
      spdlog::warn("passthrough {}: node table {} cannot be written ({}); its inode numbers will not survive a "
                   "live upgrade or failover", options_.source, path, std::strerror(errno));
      if (fd >= 0) ::close(fd);
      return {};
    }
    table_fd_ = fd;
    table_path_ = path;
    return {};
  }
  int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(os_error("node table " + path, errno));
  struct stat st {};
  unsigned char header[kTableHeader] = {};
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= static_cast<off_t>(kTableHeader) &&
            ::pread(fd, header, sizeof header, 0) == static_cast<ssize_t>(sizeof header) &&
            std::memcmp(header, kTableMagic, sizeof kTableMagic) == 0 && get<std::uint32_t>(header, 8) == kTableVersion &&
            get<std::uint32_t>(header, 12) == kRecordSize;
  if (!ok) {
    ::close(fd);
    return fail(ErrorCode::kCorrupt, "node table " + path + " is not a version 1 table");
  }
  table_fd_ = fd;
  table_path_ = path;
  std::lock_guard lock(mu_);
  table_adopted_ = false;
  return {};
}

void PassthroughFs::adopt_node_table() {
  if (table_fd_ < 0) return;
  struct stat st {};
  if (::fstat(table_fd_, &st) != 0) return;
  // Whole records only; a partial tail is overwritten by the next id.
  const std::uint64_t records = static_cast<std::uint64_t>(st.st_size - std::min<off_t>(st.st_size, kTableHeader)) / kRecordSize;
  std::set<Ino> cleared;
  std::vector<unsigned char> buf(kRecordSize * 256);
  for (std::uint64_t first = 0; first < records;) {
    std::uint64_t n = std::min<std::uint64_t>(records - first, buf.size() / kRecordSize);
    ssize_t got = ::pread(table_fd_, buf.data(), n * kRecordSize, record_offset(first + 2));
    if (got <= 0) break;
    n = static_cast<std::uint64_t>(got) / kRecordSize;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (!record_live(buf.data() + i * kRecordSize, first + 2 + i)) cleared.insert(first + 2 + i);
    }
    first += n;
  }
  std::lock_guard lock(mu_);
  for (Ino id : cleared) {
    if (inodes_.count(id) == 0) free_ids_.insert(id);
  }
  next_ino_ = std::max<Ino>(next_ino_, records + 2);
  table_adopted_ = true;
}

void PassthroughFs::discard_node_table() {
  if (!table_path_.empty()) ::unlink(table_path_.c_str());
}

bool PassthroughFs::write_record(Ino ino, const unsigned char* rec) {
  if (pwrite_all(table_fd_, rec, kRecordSize, record_offset(ino))) return true;
  if (!table_warned_.exchange(true)) {
    spdlog::warn("passthrough {}: writing node table {} failed ({}); inode numbers handed out from now on may not "
                 "survive a live upgrade or failover", options_.source, table_path_, std::strerror(errno));
  }
  return false;
}

// Before the id reaches the kernel. Any lookup that finds the record not yet
// written writes it (the same bytes at the same place), so no reply waits for
// another thread and none is sent before its record is in the file.
void PassthroughFs::persist(Ino ino, Inode& node) {
  if (table_fd_ < 0 || node.fd >= 0 || node.persisted.load(std::memory_order_acquire)) return;
  unsigned char rec[kRecordSize] = {};
  put(rec, 0, kLiveRecord);
  put(rec, 4, static_cast<std::uint32_t>(node.handle.type));
  put(rec, 8, static_cast<std::uint32_t>(node.handle.bytes.size()));
  put(rec, 12, static_cast<std::int32_t>(node.handle.mount_id));
  put(rec, 16, static_cast<std::uint64_t>(ino));
  put(rec, 24, static_cast<std::uint64_t>(node.dev));
  put(rec, 32, static_cast<std::uint64_t>(node.ino));
  put(rec, 40, static_cast<std::uint32_t>(node.mode));
  std::memcpy(rec + kHandleAt, node.handle.bytes.data(), node.handle.bytes.size());
  put(rec, kSumAt, record_sum(rec));
  if (write_record(ino, rec)) node.persisted.store(true, std::memory_order_release);
}

// An id the kernel got from a previous daemon (or this one, before a FORGET
// freed it): its record, its handle opened, and the file checked to be the
// one recorded. Any doubt is nullptr (ESTALE), never another file.
std::shared_ptr<PassthroughFs::Inode> PassthroughFs::restore_node(Ino ino) {
  if (ino > kMaxRecordId) return nullptr;
  unsigned char rec[kRecordSize];
  if (::pread(table_fd_, rec, sizeof rec, record_offset(ino)) != static_cast<ssize_t>(sizeof rec)) return nullptr;
  if (!record_live(rec, ino)) return nullptr;
  FileHandle h;
  h.type = static_cast<int>(get<std::uint32_t>(rec, 4));
  h.bytes.assign(rec + kHandleAt, rec + kHandleAt + get<std::uint32_t>(rec, 8));
  h.mount_id = get<std::int32_t>(rec, 12);
  {
    std::lock_guard lock(mounts_mu_);
    auto it = mount_fds_.find(h.mount_id);
    if (it == mount_fds_.end() || it->second < 0) return nullptr;  // a mount inside the source not reached yet
    h.mount_fd = it->second;
  }
  int fd = guard(open_handle(h, O_PATH));
  if (fd < 0) return nullptr;
  struct stat st {};
  bool same = ::fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 &&
              static_cast<std::uint64_t>(st.st_ino) == get<std::uint64_t>(rec, 32) &&
              static_cast<std::uint64_t>(st.st_dev) == get<std::uint64_t>(rec, 24) &&
              (st.st_mode & S_IFMT) == get<std::uint32_t>(rec, 40);
  ::close(fd);
  if (!same) return nullptr;
  auto node = std::make_shared<Inode>(-1, std::move(h), st.st_dev, st.st_ino, st.st_mode & S_IFMT);
  node->persisted = true;
  // The kernel's lookup count is unknown: its FORGET (sent whole when it drops
  // the inode) frees the node.
  node->nlookup = 1;
  std::lock_guard lock(mu_);
  if (auto it = inodes_.find(ino); it != inodes_.end()) return it->second;  // restored meanwhile
  if (dying_.count(ino) || free_ids_.count(ino)) return nullptr;            // forgotten meanwhile
  inodes_.emplace(ino, node);
  by_id_.emplace(std::make_pair(node->dev, node->ino), ino);
  return node;
}

// File handles need filesystem support and CAP_DAC_READ_SEARCH (open_by_handle_at):
// probe both on the root, else every inode keeps a pinned descriptor.
void PassthroughFs::enable_handles(int root_fd) {
  auto h = handle_of(root_fd);
  int mfd = h ? ::open(proc_path(root_fd).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
  if (mfd >= 0) {
    h->mount_fd = mfd;
    int probe = open_handle(*h, O_PATH);
    if (probe >= 0) {
      ::close(probe);
      mount_fds_.emplace(h->mount_id, mfd);
      use_handles_ = true;
      return;
    }
    ::close(mfd);
  }
  spdlog::info("passthrough {}: no file handles ({}); inodes keep open descriptors while the kernel caches them",
               options_.source, std::strerror(errno));
}

std::shared_ptr<PassthroughFs::Inode> PassthroughFs::find(Ino ino) {
  {
    std::lock_guard lock(mu_);
    auto it = inodes_.find(ino);
    if (it != inodes_.end()) return it->second;
    if (table_fd_ < 0 || ino <= kRootIno || dying_.count(ino) || free_ids_.count(ino)) return nullptr;
  }
  return restore_node(ino);  // outside mu_: reads the table and opens the file
}

std::size_t PassthroughFs::inode_count() const {
  std::lock_guard lock(mu_);
  return inodes_.size();
}

std::uint64_t PassthroughFs::lookup_count(Ino ino) const {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? 0 : it->second->nlookup;
}

FsResult<Entry> PassthroughFs::lookup(Ino parent, std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos) return fs_error(ENOENT);
  auto dir = find(parent);
  if (!dir) return fs_error(ESTALE);
  auto dir_fd = node_fd(*dir);
  if (!dir_fd) return fs_error(dir_fd.error());
  std::string n(name);
  int fd = guard(::openat(dir_fd->get(), n.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (fd < 0) return fs_error(errno);
  Entry e;
  if (::fstatat(fd, "", &e.attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
    int err = errno;
    ::close(fd);
    return fs_error(err);
  }
  // Prepared before taking the lock; dropped (after it) when the inode is known already.
  auto node = make_node(fd, e.attr);
  if (!table_adopted_.load()) adopt_node_table();  // normally done before serving (FuseService)
  {
    std::lock_guard lock(mu_);
    auto key = std::make_pair(e.attr.st_dev, e.attr.st_ino);
    if (auto it = by_id_.find(key); it != by_id_.end()) {
      e.ino = it->second;  // hard link or repeated lookup: one node
      node = inodes_.at(e.ino);
      node->nlookup++;
    } else {
      if (!free_ids_.empty()) {
        e.ino = *free_ids_.begin();
        free_ids_.erase(free_ids_.begin());
      } else {
        e.ino = next_ino_++;
      }
      node->nlookup = 1;
      inodes_.emplace(e.ino, node);
      by_id_.emplace(key, e.ino);
    }
  }
  persist(e.ino, *node);  // outside mu_, before the reply
  return e;
}

bool PassthroughFs::forget(Ino ino, std::uint64_t nlookup) {
  if (ino == kRootIno) return false;
  bool known = true;
  {
    std::lock_guard lock(mu_);
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) {
      // An id a previous daemon gave out and this one never needed: the
      // kernel drops it now, so its record goes too (else it stayed until unmount).
      if (table_fd_ < 0 || !table_adopted_.load() || ino >= next_ino_ || dying_.count(ino) || free_ids_.count(ino)) {
        return false;
      }
      known = false;
    } else {
      auto& node = *it->second;
      node.nlookup = nlookup >= node.nlookup ? 0 : node.nlookup - nlookup;
      if (node.nlookup != 0) return false;
      // A restored id may share its file with one this process gave out since.
      if (auto b = by_id_.find(std::make_pair(node.dev, node.ino)); b != by_id_.end() && b->second == ino) by_id_.erase(b);
      inodes_.erase(it);  // a pinned descriptor closes when the last in-flight user lets go
      if (table_fd_ < 0) return true;
    }
    dying_.insert(ino);
  }
  // The record is cleared before the id can be reused: a late clear must
  // never land on the record of the id's next file.
  static constexpr unsigned char kCleared[kRecordSize] = {};
  bool cleared = write_record(ino, kCleared);
  std::lock_guard lock(mu_);
  dying_.erase(ino);
  if (cleared) free_ids_.insert(ino);  // else the id is left unused
  return known;
}

FsResult<struct stat> PassthroughFs::getattr(Ino ino) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  auto fd = node_fd(*node);
  if (!fd) return fs_error(fd.error());
  struct stat st {};
  if (::fstatat(fd->get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return fs_error(errno);
  return st;
}

FsResult<std::string> PassthroughFs::readlink(Ino ino) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  if (!S_ISLNK(node->mode)) return fs_error(EINVAL);
  auto fd = node_fd(*node);
  if (!fd) return fs_error(fd.error());
  std::string buf(PATH_MAX, '\0');
  ssize_t n = ::readlinkat(fd->get(), "", buf.data(), buf.size());
  if (n < 0) return fs_error(errno);
  buf.resize(static_cast<std::size_t>(n));
  return buf;
}

FsResult<std::uint64_t> PassthroughFs::open(Ino ino, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_APPEND | O_CREAT)) != 0) return fs_error(EROFS);
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  // O_DIRECT is the caller's cache choice, not a property the source must support (tmpfs does not).
  int fd = reopen(*node, flags & ~(O_NOFOLLOW | O_DIRECT | O_EXCL | O_NOCTTY));
  if (fd < 0) return fs_error(errno);
  return static_cast<std::uint64_t>(fd);
}

FsResult<std::size_t> PassthroughFs::read(Ino ino, std::uint64_t fh, char* buf, std::size_t size, off_t off) {
  if (options_.before_read) {
    if (int err = options_.before_read(ino); err != 0) return fs_error(err);
  }
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(static_cast<int>(fh), buf + done, size - done, off + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fs_error(errno);
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

void PassthroughFs::release(Ino, std::uint64_t fh) { ::close(static_cast<int>(fh)); }

FsResult<std::uint64_t> PassthroughFs::opendir(Ino ino) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  if (!S_ISDIR(node->mode)) return fs_error(ENOTDIR);
  int fd = reopen(*node, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return fs_error(errno);
  auto d = std::make_unique<DirHandle>();
  d->dp = ::fdopendir(fd);
  if (!d->dp) {
    int err = errno;
    ::close(fd);
    return fs_error(err);
  }
  return reinterpret_cast<std::uint64_t>(d.release());
}

FsResult<void> PassthroughFs::readdir(Ino, std::uint64_t fh, std::uint64_t off, const DirSink& sink) {
  auto* d = reinterpret_cast<DirHandle*>(fh);
  std::lock_guard lock(d->mu);
  if (off != d->offset) {
    ::seekdir(d->dp, static_cast<long>(off));
    d->entry = nullptr;
    d->offset = off;
  }
  for (;;) {
    if (!d->entry) {
      errno = 0;
      d->entry = ::readdir(d->dp);
      if (!d->entry) {
        if (errno != 0) return fs_error(errno);
        return {};
      }
    }
    DirEntry e{d->entry->d_name, static_cast<std::uint64_t>(d->entry->d_off), d->entry->d_ino, d->entry->d_type};
    if (!sink(e)) return {};
    d->offset = e.next_off;
    d->entry = nullptr;
  }
}

void PassthroughFs::releasedir(Ino, std::uint64_t fh) { delete reinterpret_cast<DirHandle*>(fh); }

FsResult<struct statvfs> PassthroughFs::statfs(Ino ino) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  auto fd = node_fd(*node);
  if (!fd) return fs_error(fd.error());
  struct statvfs sv {};
  if (::fstatvfs(fd->get(), &sv) != 0) return fs_error(errno);
  return sv;
}

FsResult<std::string> PassthroughFs::getxattr(Ino ino, const char* name) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  if (S_ISLNK(node->mode)) return fs_error(ENODATA);
  auto fd = node_fd(*node);
  if (!fd) return fs_error(fd.error());
  std::string path = proc_path(fd->get());
  for (;;) {
    ssize_t n = ::getxattr(path.c_str(), name, nullptr, 0);
    if (n < 0) return fs_error(errno);
    std::string value(static_cast<std::size_t>(n), '\0');
    ssize_t m = ::getxattr(path.c_str(), name, value.data(), value.size());
    if (m < 0 && errno == ERANGE) continue;  // grew in between
    if (m < 0) return fs_error(errno);
    value.resize(static_cast<std::size_t>(m));
    return value;
  }
}

FsResult<std::string> PassthroughFs::listxattr(Ino ino) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  if (S_ISLNK(node->mode)) return std::string();
  auto fd = node_fd(*node);
  if (!fd) return fs_error(fd.error());
  std::string path = proc_path(fd->get());
  for (;;) {
    ssize_t n = ::listxattr(path.c_str(), nullptr, 0);
    if (n < 0) return fs_error(errno);
    std::string names(static_cast<std::size_t>(n), '\0');
    ssize_t m = ::listxattr(path.c_str(), names.data(), names.size());
    if (m < 0 && errno == ERANGE) continue;
    if (m < 0) return fs_error(errno);
    names.resize(static_cast<std::size_t>(m));
    return names;
  }
}

FsResult<void> PassthroughFs::access(Ino ino, int mask) {
  auto node = find(ino);
  if (!node) return fs_error(ESTALE);
  if (mask & W_OK) return fs_error(EROFS);
  if (S_ISLNK(node->mode)) return {};
  auto fd = node_fd(*node);
  if (!fd) return fs_error(fd.error());
  if (::access(proc_path(fd->get()).c_str(), mask) != 0) return fs_error(errno);
  return {};
}

}  // namespace nydus::fs
