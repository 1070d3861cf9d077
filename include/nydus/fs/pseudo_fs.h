// PseudoFs: the FUSE root. A tree of pseudo directories whose leaves are
// mount points, each with a filesystem instance attached (upstream's Vfs +
// PseudoFs), and the dispatch of FUSE operations by node id.
//
// Node ids (u64): top byte = slot of the instance (0 = the pseudo tree
// itself), next 16 bits = the slot's epoch at attach time, low 40 bits = the
// instance-local inode number. Node id 1 (FUSE root) is the pseudo root, or the
// root of the instance attached at "/" when there is one. Every attach or
// swap of a slot takes a new epoch, so node ids the kernel still holds for a
// detached or replaced instance answer ESTALE (forget is a no-op for them)
// instead of reaching another instance. An epoch repeats only after 65536
// attaches of the same slot.
//
// Mount rules: mountpoints are absolute, normalised ("/a//b/" = "/a/b"; "."
// and ".." are refused). "/" may coexist with others; pseudo directories then
// shadow the root instance's entries of the same name, and the root listing
// is the instance's. Other mountpoints may not nest.
//
// File handles: the fh values the kernel holds are this process's handles;
// an unknown value (one a previous daemon handed out before a live upgrade or
// failover) is reopened from the request's node id on first use.
//
// Detach works like a lazy unmount: open files and directories of the old
// instance keep working until released; everything else of it answers ESTALE.
// After attach/swap/detach the kernel's cached entries for the mountpoint (and
// for "/" the root's children it has been told about) are invalidated through
// the Invalidator, outside every lock of this class.
//
// Metrics: operations on instance inodes are recorded in the instance's
// FsMetrics; operations on pseudo directories are not. Failed reads (and EIO
// from any operation) are reported to the error sink.
//
// Thread-safety: all methods may be called concurrently; the tree and slot
// table are guarded by a shared mutex held only to resolve ids.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "nydus/fs/filesystem.h"
#include "nydus/fs/fs_metrics.h"
#include "nydus/result.h"

namespace nydus::fs {

inline constexpr unsigned kSlotShift = 56;
inline constexpr unsigned kEpochShift = 40;
inline constexpr std::uint64_t kLocalMask = (std::uint64_t{1} << kEpochShift) - 1;
inline constexpr std::uint64_t kRootNode = 1;
// Instances attached at once (slots 1..255 of the node id's top byte).
inline constexpr unsigned kMaxInstances = 255;

// Tells the kernel to drop cached entries/attributes (FuseServer implements it).
class Invalidator {
 public:
  virtual ~Invalidator() = default;
  virtual void inval_entry(std::uint64_t parent, const std::string& name) = 0;
  virtual void inval_inode(std::uint64_t node) = 0;
};

struct Placement {
  unsigned slot = 0;
  std::uint16_t epoch = 0;
  // Node ids of the pseudo directories along the mountpoint, one per
  // component (placement_of); attach_at() re-creates missing ones with these
  // ids when free, so the ids the kernel holds for nested mountpoints'
  // directories survive whatever the restore order. Empty: new ids.
  std::vector<std::uint64_t> dirs{};
};

struct NodeEntry {
  std::uint64_t node = 0;  // 0: "." / ".." in listings (no lookup counted)
  struct stat attr {};
};

// Readdir sink: `plus` is set for readdirplus (a counted lookup unless node
// is 0). Returning false stops the listing; a plus entry not consumed is
// forgotten again by PseudoFs.
using NodeSink = std::function<bool(const DirEntry&, const NodeEntry* plus)>;

using ErrorSink = std::function<void(std::string)>;

class PseudoFs {
 public:
  explicit PseudoFs(ErrorSink on_error = {});
  ~PseudoFs();
  PseudoFs(const PseudoFs&) = delete;
  PseudoFs& operator=(const PseudoFs&) = delete;

  // "/a//b/" -> "/a/b". kInvalidArgument for relative paths, "." or "..", a
  // NUL byte, invalid UTF-8, a component over NAME_MAX or a path of PATH_MAX
  // bytes or more: names no client could reach or name again.
  static Result<std::string> normalize(std::string_view mountpoint);

  // Errors: kInvalidArgument (bad or nested path; all kMaxInstances slots
  // used: "too many filesystem instances: the limit is 255 per daemon"), kAlreadyExists.
  Result<void> attach(std::string_view mountpoint, std::shared_ptr<Filesystem> fs, std::shared_ptr<FsMetrics> metrics);
  // attach() at a given slot and epoch (live upgrade: the node ids the kernel
  // holds from the previous daemon stay valid). kAlreadyExists if the slot is
  // in use, kInvalidArgument for slot 0, > kMaxInstances or epoch 0.
  Result<void> attach_at(std::string_view mountpoint, std::shared_ptr<Filesystem> fs, std::shared_ptr<FsMetrics> metrics,
                         Placement at);
  // From now on a file handle this process never handed out is one the
  // kernel got from a previous daemon (live upgrade, failover): it is
  // reopened from its node id on first use instead of answering EBADF.
  // attach_at() calls it.
  void adopt_foreign_handles();
  // Replaces the instance in place (same slot, new epoch). kNotFound if none.
  Result<void> swap(std::string_view mountpoint, std::shared_ptr<Filesystem> fs, std::shared_ptr<FsMetrics> metrics);
  // kNotFound if nothing is attached there.
  Result<void> detach(std::string_view mountpoint);
  bool is_attached(std::string_view mountpoint) const;
  // Slot index of the instance at `mountpoint` (tests, diagnostics).
  std::optional<unsigned> slot_of(std::string_view mountpoint) const;
  // Slot and epoch of that instance: with an image inode they make its node ids.
  std::optional<Placement> placement_of(std::string_view mountpoint) const;

  // Borrowed; must outlive its registration. nullptr unregisters (waits for
  // an invalidation in progress).
  void set_invalidator(Invalidator* inv);

  // Releases every open file/directory handle (the FUSE session that held
  // them is gone and the kernel will not send their release). Also run by the destructor.
  void release_all_handles();

  // True when `node` is served by an immutable instance (Filesystem::immutable());
  // false for pseudo directories and unknown ids.
  bool immutable(std::uint64_t node) const;

  FsResult<NodeEntry> lookup(std::uint64_t parent, std::string_view name);
  void forget(std::uint64_t node, std::uint64_t nlookup, bool batch = false);
  FsResult<struct stat> getattr(std::uint64_t node);
  FsResult<std::string> readlink(std::uint64_t node);
  FsResult<std::uint64_t> open(std::uint64_t node, int flags);
  FsResult<std::size_t> read(std::uint64_t node, std::uint64_t fh, char* buf, std::size_t size, off_t off);
  void release(std::uint64_t node, std::uint64_t fh);
  FsResult<std::uint64_t> opendir(std::uint64_t node);
  FsResult<void> readdir(std::uint64_t node, std::uint64_t fh, std::uint64_t off, bool plus, const NodeSink& sink);
  void releasedir(std::uint64_t node, std::uint64_t fh);
  FsResult<struct statvfs> statfs(std::uint64_t node);
  FsResult<std::string> getxattr(std::uint64_t node, const char* name);
  FsResult<std::string> listxattr(std::uint64_t node);
  FsResult<void> access(std::uint64_t node, int mask);

 private:
  struct Instance;
  struct PseudoNode;
  struct Handle;
  struct Resolved;
  struct Invalidation;

  Resolved resolve(std::uint64_t node) const;
  std::uint64_t node_of(const Instance& inst, Ino ino) const;
  struct stat pseudo_attr(std::uint64_t local) const;
  // st_ino of `name` in pseudo directory `parent` (a pseudo child's id, or its
  // instance's root st_ino); 0 if there is no such child.
  std::uint64_t child_ino(std::uint64_t parent, std::string_view name) const;
  FsResult<NodeEntry> instance_root_entry(const std::shared_ptr<Instance>& inst, std::uint64_t node);
  void report(const Instance& inst, std::string_view op, Ino ino, int err, std::string_view extra = {});
  std::vector<Invalidation> invalidations_for(const std::string& mountpoint, const Instance* old) const;
  void run(const std::vector<Invalidation>& v);

  const ErrorSink on_error_;
  const struct timespec created_;

  mutable std::shared_mutex mu_;
  std::unordered_map<std::uint64_t, PseudoNode> nodes_;          // guarded by mu_; key: pseudo node id
  std::array<std::shared_ptr<Instance>, 256> slots_{};          // guarded by mu_; [0] unused
  std::array<std::uint16_t, 256> epochs_{};                      // guarded by mu_
  std::uint64_t next_pseudo_ = kRootNode + 1;                   // guarded by mu_
  unsigned next_slot_ = 1;                                       // guarded by mu_

  // FUSE file handles are checked like node ids: fh = generation << 32 | slot
  // index, and a slot takes a new generation when its handle is released, so
  // the fh of a released handle, a forged one, or a file handle given as a
  // directory's (or the reverse) answers EBADF instead of reaching memory. A
  // generation repeats only after 2^32 reuses of the same slot.
  struct HandleSlot {
    std::uint32_t generation = 1;
    std::shared_ptr<Handle> handle;  // null: free
  };
  std::uint64_t new_handle(std::shared_ptr<Handle> h);
  // The open handle `fh` names, if it is one and of the kind asked for.
  std::shared_ptr<Handle> find_handle(std::uint64_t fh, bool is_dir);
  // Same, and frees its slot.
  std::shared_ptr<Handle> take_handle(std::uint64_t fh, bool is_dir);

  std::uint64_t new_pseudo_id(std::uint64_t want);
  Result<void> attach_impl(std::string_view mountpoint, std::shared_ptr<Filesystem> fs,
                           std::shared_ptr<FsMetrics> metrics, std::optional<Placement> at);
  FsResult<std::shared_ptr<Handle>> handle_for(std::uint64_t node, std::uint64_t fh, bool dir);
  std::shared_ptr<Handle> take_released(std::uint64_t node, std::uint64_t fh, bool dir);
  std::uint64_t handle_node(const Handle& h) const;
  static void close_handle(std::shared_ptr<Handle> h);

  std::mutex handles_mu_;
  std::vector<HandleSlot> handle_slots_;     // guarded by handles_mu_
  std::vector<std::uint32_t> free_handles_;  // guarded by handles_mu_: free slot indexes
  // Handles the kernel got from a previous daemon, reopened on first use (handle_for).
  std::unordered_map<std::uint64_t, std::shared_ptr<Handle>> reopened_;  // guarded by handles_mu_
  bool foreign_handles_ = false;  // guarded by handles_mu_: see adopt_foreign_handles()

  std::mutex inval_mu_;
  Invalidator* invalidator_ = nullptr;  // guarded by inval_mu_
};

}  // namespace nydus::fs
