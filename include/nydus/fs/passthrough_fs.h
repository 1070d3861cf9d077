// PassthroughFs: serves a host directory (read-only) as a filesystem instance.
//
// Design (libfuse passthrough_ll, with file handles): each known inode holds
// the kernel's file handle of its file (name_to_handle_at), found relative to
// its parent, and each operation opens a descriptor from it for its own
// duration (open_by_handle_at). So the tree is tracked by identity, not by
// path strings (renames in the source do not confuse it), and no descriptor is
// held per cached inode: `ls -l` of a directory larger than the open-file
// limit works. Where handles are unavailable (a filesystem that cannot export
// them, no CAP_DAC_READ_SEARCH), inodes hold an O_PATH descriptor as
// passthrough_ll does. A file deleted from the source while cached answers
// ESTALE with handles (a pinned descriptor would still reach it).
// Descriptors are never taken from the top `reserved_fds` of RLIMIT_NOFILE
// (read at create()): past that, operations fail with EMFILE and the API
// server still has descriptors to accept with.
// Inodes are keyed by (st_dev, st_ino) so hard links share one node;
// instance-local inode numbers are assigned sequentially from 2 (root is 1)
// and never reused, except with a node table (below). Attributes are the source's, st_ino included. Data is
// read with pread() on a descriptor opened from the inode at open().
// Symbolic links report no extended attributes (O_PATH descriptors of links
// cannot be used for xattr calls).
//
// Node table (live upgrade and failover, docs/upgrade.md): with
// `node_table` set and file handles available, every id handed to the kernel
// is first written to that file as a fixed-size record (id, file handle,
// st_dev/st_ino, type), so a successor daemon, even after kill -9, resolves
// the ids the kernel still holds from the file alone (open_by_handle_at). An
// id unknown in memory is looked up there on first use. Forgotten ids are
// cleared in the file and reused, so the file stays as large as the most ids
// ever held at once. Layout and checks: passthrough_fs.cc.
//
// Thread-safety: all methods may be called concurrently; the inode tables
// are guarded by one mutex held only for map updates, never across I/O.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "nydus/fs/filesystem.h"
#include "nydus/result.h"

namespace nydus::fs {

struct PassthroughOptions {
  std::string source;  // directory to serve
  // Test hook run before every read; a non-zero errno fails the read with it.
  // May block (tests use it to hold a request in flight).
  std::function<int(Ino)> before_read;
  // Descriptor numbers at the top of RLIMIT_NOFILE this instance never takes
  // (at most half the limit), left for the API server and the daemon.
  std::size_t reserved_fds = 64;
  // Node table file (see above); empty: ids live in this process only.
  std::string node_table{};
  // Open the existing `node_table` of a previous daemon (takeover) instead of
  // creating it: create() then fails (kCorrupt, kNotFound, kUnsupported) when
  // it is not a usable table. A new table that cannot be made is logged and
  // the instance runs without one.
  bool resume_node_table = false;
};

class PassthroughFs final : public Filesystem {
 public:
  // Errors: kNotFound (no such source), kInvalidArgument (not a directory),
  // kIo; with resume_node_table, the table's errors (see PassthroughOptions).
  static Result<std::shared_ptr<PassthroughFs>> create(PassthroughOptions options);
  ~PassthroughFs() override;

  Ino root() const override { return kRootIno; }
  FsResult<Entry> lookup(Ino parent, std::string_view name) override;
  // True when the inode was freed.
  bool forget(Ino ino, std::uint64_t nlookup) override;
  FsResult<struct stat> getattr(Ino ino) override;
  FsResult<std::string> readlink(Ino ino) override;
  FsResult<std::uint64_t> open(Ino ino, int flags) override;
  FsResult<std::size_t> read(Ino ino, std::uint64_t fh, char* buf, std::size_t size, off_t off) override;
  void release(Ino ino, std::uint64_t fh) override;
  FsResult<std::uint64_t> opendir(Ino ino) override;
  FsResult<void> readdir(Ino ino, std::uint64_t fh, std::uint64_t off, const DirSink& sink) override;
  void releasedir(Ino ino, std::uint64_t fh) override;
  FsResult<struct statvfs> statfs(Ino ino) override;
  FsResult<std::string> getxattr(Ino ino, const char* name) override;
  FsResult<std::string> listxattr(Ino ino) override;
  FsResult<void> access(Ino ino, int mask) override;

  // Inodes currently known (root included); for tests of the lookup/forget invariant.
  std::size_t inode_count() const;
  // Lookup count of `ino` (0 if unknown).
  std::uint64_t lookup_count(Ino ino) const;
  // Whether inodes are file handles (else pinned descriptors); for tests.
  bool uses_file_handles() const { return use_handles_; }

  // The node table in use ("" when none: not asked for, no file handles, or not writable).
  const std::string& node_table() const { return table_path_; }
  // After a takeover, once the previous daemon has stopped (it may have
  // written ids until then): reads the whole table so that new ids go after
  // the last one and cleared records are reused. Until then no id is handed out
  // by this instance. No-op without a table.
  void adopt_node_table();
  // Removes the table file (the instance was unmounted: no successor needs it).
  void discard_node_table();

  static constexpr Ino kRootIno = 1;

 private:
  struct Inode;
  struct DirHandle;
  class NodeFd;
  struct FileHandle;
  // The file handle of `fd` (an O_PATH descriptor); nullopt when its filesystem cannot export one.
  static std::optional<FileHandle> handle_of(int fd);
  // open_by_handle_at(h.mount_fd, h, flags | O_CLOEXEC).
  static int open_handle(const FileHandle& h, int flags);
  explicit PassthroughFs(PassthroughOptions options);
  // The inode of `ino`: in memory, else (with a node table) restored from its record.
  std::shared_ptr<Inode> find(Ino ino);
  std::shared_ptr<Inode> restore_node(Ino ino);
  Result<void> open_node_table();
  // Writes `node`'s record (id `ino`) unless already written; false on failure (logged once).
  void persist(Ino ino, Inode& node);
  bool write_record(Ino ino, const unsigned char* rec);
  void enable_handles(int root_fd);
  std::shared_ptr<Inode> make_node(int fd, const struct stat& st);
  int mount_fd_for(const FileHandle& h, int fd, bool is_dir);
  // `fd`, or -1/EMFILE (closing it) when it is in the reserved range.
  int guard(int fd) const;
  // A new descriptor of `node` opened with `flags` (O_CLOEXEC added), guarded.
  int reopen(const Inode& node, int flags) const;
  FsResult<NodeFd> node_fd(const Inode& node) const;

  const PassthroughOptions options_;
  const int fd_ceiling_;  // descriptors at or above it are refused (see reserved_fds)
  bool use_handles_ = false;  // set by create(), then constant
  mutable std::mutex mu_;
  std::unordered_map<Ino, std::shared_ptr<Inode>> inodes_;  // guarded by mu_
  std::map<std::pair<dev_t, ino_t>, Ino> by_id_;            // guarded by mu_
  Ino next_ino_ = kRootIno + 1;                             // guarded by mu_
  std::set<Ino> free_ids_;   // guarded by mu_: cleared table records, reused first
  std::set<Ino> dying_;      // guarded by mu_: forgotten, record being cleared
  // False from a resumed table until adopt_node_table(); set under mu_, read without it.
  std::atomic<bool> table_adopted_{true};
  int table_fd_ = -1;        // set by create(), then constant
  std::string table_path_;   // set by create(), then constant
  std::atomic<bool> table_warned_{false};
  mutable std::mutex mounts_mu_;
  // Mount id -> a readable descriptor on it (-1: its handles do not decode); guarded by mounts_mu_.
  std::unordered_map<int, int> mount_fds_;
};

}  // namespace nydus::fs
