// PseudoFs: mount tree, node-id encoding and per-instance dispatch (see header).
#include "nydus/fs/pseudo_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <climits>
#include <set>

#include <fmt/format.h>

#include "nydus/utf8.h"

namespace nydus::fs {

struct PseudoFs::Instance {
  std::shared_ptr<Filesystem> fs;
  std::shared_ptr<FsMetrics> metrics;
  std::string mountpoint;
  unsigned slot = 0;
  std::uint16_t epoch = 0;
  bool at_root = false;
  std::mutex names_mu;
  std::set<std::string> root_names;  // guarded by names_mu: root entries the kernel may cache (at_root only)
};

struct PseudoFs::PseudoNode {
  std::string name;
  std::uint64_t parent = 0;
  std::map<std::string, std::uint64_t, std::less<>> children;
  std::shared_ptr<Instance> inst;  // attached here, if any
};

// What a FUSE fh points at: an instance handle (keeps the instance alive) or a pseudo listing.
struct PseudoFs::Handle {
  std::shared_ptr<Instance> inst;
  Ino ino = 0;
  std::uint64_t fh = 0;
  bool is_dir = false;
  std::vector<std::string> pseudo_names;  // pseudo directory snapshot
};

struct PseudoFs::Resolved {
  int err = 0;                     // ESTALE when unknown
  std::shared_ptr<Instance> inst;  // null: pseudo node
  Ino ino = 0;                     // instance-local inode, or pseudo node id
};

struct PseudoFs::Invalidation {
  std::uint64_t parent = 0;  // 0: inode invalidation of `node`
  std::string name;
  std::uint64_t node = 0;
};

namespace {

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 1;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

template <class T>
FsResult<T> recorded(FsMetrics& m, Fop fop, Ino ino, FsResult<T> r) {
  m.record(fop, ino, r.has_value());
  return r;
}

}  // namespace

PseudoFs::PseudoFs(ErrorSink on_error) : on_error_(std::move(on_error)), created_([] {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}()) {
  nodes_[kRootNode] = PseudoNode{"", kRootNode, {}, nullptr};
}

PseudoFs::~PseudoFs() { release_all_handles(); }

std::uint64_t PseudoFs::new_handle(std::shared_ptr<Handle> h) {
  std::lock_guard lock(handles_mu_);
  std::uint32_t index;
  if (!free_handles_.empty()) {
    index = free_handles_.back();
    free_handles_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(handle_slots_.size());
    handle_slots_.emplace_back();
  }
  HandleSlot& slot = handle_slots_[index];
  slot.handle = std::move(h);
  return std::uint64_t{slot.generation} << 32 | index;
}

std::shared_ptr<PseudoFs::Handle> PseudoFs::find_handle(std::uint64_t fh, bool is_dir) {
  auto index = static_cast<std::uint32_t>(fh);
  std::lock_guard lock(handles_mu_);
  if (index >= handle_slots_.size()) return nullptr;
  const HandleSlot& slot = handle_slots_[index];
  if (!slot.handle || slot.generation != fh >> 32 || slot.handle->is_dir != is_dir) return nullptr;
  return slot.handle;
}

std::shared_ptr<PseudoFs::Handle> PseudoFs::take_handle(std::uint64_t fh, bool is_dir) {
  auto index = static_cast<std::uint32_t>(fh);
  std::lock_guard lock(handles_mu_);
  if (index >= handle_slots_.size()) return nullptr;
  HandleSlot& slot = handle_slots_[index];
  if (!slot.handle || slot.generation != fh >> 32 || slot.handle->is_dir != is_dir) return nullptr;
  ++slot.generation;
  free_handles_.push_back(index);
  return std::move(slot.handle);
}

// The handle (`node`, `fh`) names. A value this process never handed out,
// or one of another node, is a stale or forged handle (EBADF) unless this
// process serves a connection inherited from a previous daemon
// (adopt_foreign_handles): then it is a handle the kernel got from that
// daemon, reopened from the node id once and kept under that value until its
// release. RAFS reads and listings are stateless, so the new handle serves
// exactly what the old one did.
FsResult<std::shared_ptr<PseudoFs::Handle>> PseudoFs::handle_for(std::uint64_t node, std::uint64_t fh, bool dir) {
  if (auto h = find_handle(fh, dir); h && handle_node(*h) == node) return h;
  {
    std::lock_guard lock(handles_mu_);
    if (auto it = reopened_.find(fh); it != reopened_.end() && it->second->is_dir == dir && handle_node(*it->second) == node) {
      return it->second;
    }
    if (!foreign_handles_) return fs_error(EBADF);
  }
  auto raw = dir ? opendir(node) : open(node, O_RDONLY);  // registers a handle of this process
  if (!raw) return fs_error(raw.error());
  auto h = take_handle(*raw, dir);
  if (!h) return fs_error(EBADF);
  std::shared_ptr<Handle> replaced;
  {
    std::lock_guard lock(handles_mu_);
    auto& slot = reopened_[fh];
    replaced = std::move(slot);  // a racing reopen of the same value: closed once its readers let go
    slot = h;
  }
  if (replaced) close_handle(std::move(replaced));
  return h;
}

void PseudoFs::adopt_foreign_handles() {
  std::lock_guard lock(handles_mu_);
  foreign_handles_ = true;
}

std::uint64_t PseudoFs::handle_node(const Handle& h) const {
  if (!h.inst) return h.ino;
  return node_of(*h.inst, h.ino);
}

void PseudoFs::close_handle(std::shared_ptr<Handle> h) {
  if (!h || !h->inst) return;
  if (h->is_dir) {
    h->inst->fs->releasedir(h->ino, h->fh);
  } else {
    h->inst->fs->release(h->ino, h->fh);
    h->inst->metrics->released();
  }
}

// The handle the kernel releases as (`node`, `fh`): a handle of this process
// naming another node is not it (a previous daemon's value equal to ours).
std::shared_ptr<PseudoFs::Handle> PseudoFs::take_released(std::uint64_t node, std::uint64_t fh, bool dir) {
  if (auto h = find_handle(fh, dir); h && handle_node(*h) == node) return take_handle(fh, dir);
  std::lock_guard lock(handles_mu_);
  auto it = reopened_.find(fh);
  if (it == reopened_.end() || it->second->is_dir != dir || handle_node(*it->second) != node) return nullptr;
  auto h = std::move(it->second);
  reopened_.erase(it);
  return h;
}

void PseudoFs::release_all_handles() {
  std::vector<std::shared_ptr<Handle>> all;
  {
    std::lock_guard lock(handles_mu_);
    for (std::uint32_t i = 0; i < handle_slots_.size(); ++i) {
      HandleSlot& slot = handle_slots_[i];
      if (!slot.handle) continue;
      all.push_back(std::move(slot.handle));
      ++slot.generation;
      free_handles_.push_back(i);
    }
    for (auto& [fh, h] : reopened_) all.push_back(std::move(h));
    reopened_.clear();
  }
  for (auto& h : all) close_handle(std::move(h));
}

Result<std::string> PseudoFs::normalize(std::string_view mp) {
  // Checked first, and never echoed: such a name could not be sent back in a
  // JSON reply, nor reached through the kernel.
  if (mp.find('\0') != std::string_view::npos) {
    return fail(ErrorCode::kInvalidArgument, "mountpoint contains a NUL byte (%00): no path can reach it");
  }
  if (!is_valid_utf8(mp)) return fail(ErrorCode::kInvalidArgument, "mountpoint is not valid UTF-8");
  if (mp.size() >= PATH_MAX) {
    return fail(ErrorCode::kInvalidArgument, fmt::format("mountpoint is longer than {} bytes", PATH_MAX - 1));
  }
  if (mp.empty() || mp.front() != '/') return fail(ErrorCode::kInvalidArgument, fmt::format("mountpoint {} is not absolute", mp));
  std::string out;
  std::size_t i = 0;
  while (i < mp.size()) {
    while (i < mp.size() && mp[i] == '/') ++i;
    std::size_t j = mp.find('/', i);
    if (j == std::string_view::npos) j = mp.size();
    std::string_view c = mp.substr(i, j - i);
    if (c == "." || c == "..") return fail(ErrorCode::kInvalidArgument, fmt::format("mountpoint {} has . or ..", mp));
    if (c.size() > NAME_MAX) {
      return fail(ErrorCode::kInvalidArgument,
                  fmt::format("mountpoint {} has a component longer than {} bytes", mp, NAME_MAX));
    }
    if (!c.empty()) {
      out += '/';
      out += c;
    }
    i = j;
  }
  return out.empty() ? std::string("/") : out;
}

void PseudoFs::set_invalidator(Invalidator* inv) {
  std::lock_guard lock(inval_mu_);
  invalidator_ = inv;
}

void PseudoFs::run(const std::vector<Invalidation>& v) {
  std::lock_guard lock(inval_mu_);
  if (!invalidator_) return;
  for (const auto& i : v) {
    if (i.parent == 0) invalidator_->inval_inode(i.node);
    else invalidator_->inval_entry(i.parent, i.name);
  }
}

// Entries along the path (each component in its parent), and for "/" the root
// inode and the root names the old instance handed to the kernel. Caller holds mu_.
std::vector<PseudoFs::Invalidation> PseudoFs::invalidations_for(const std::string& mp, const Instance* old) const {
  std::vector<Invalidation> v;
  std::uint64_t cur = kRootNode;
  for (const auto& c : split(mp)) {
    v.push_back({cur, c, 0});
    const auto& n = nodes_.at(cur);
    auto it = n.children.find(c);
    if (it == n.children.end()) break;
    cur = it->second;
  }
  if (mp == "/") {
    v.push_back({0, {}, kRootNode});
    if (old) {
      std::lock_guard lock(const_cast<Instance*>(old)->names_mu);
      for (const auto& name : old->root_names) v.push_back({kRootNode, name, 0});
    }
  }
  return v;
}

Result<void> PseudoFs::attach(std::string_view mountpoint, std::shared_ptr<Filesystem> fs, std::shared_ptr<FsMetrics> metrics) {
  return attach_impl(mountpoint, std::move(fs), std::move(metrics), std::nullopt);
}

Result<void> PseudoFs::attach_at(std::string_view mountpoint, std::shared_ptr<Filesystem> fs,
                                 std::shared_ptr<FsMetrics> metrics, Placement at) {
  if (at.slot == 0 || at.slot > kMaxInstances || at.epoch == 0) {
    return fail(ErrorCode::kInvalidArgument, fmt::format("invalid slot {} epoch {}", at.slot, at.epoch));
  }
  adopt_foreign_handles();
  return attach_impl(mountpoint, std::move(fs), std::move(metrics), at);
}

Result<void> PseudoFs::attach_impl(std::string_view mountpoint, std::shared_ptr<Filesystem> fs,
                                   std::shared_ptr<FsMetrics> metrics, std::optional<Placement> at) {
  auto mp = normalize(mountpoint);
  if (!mp) return tl::unexpected(mp.error());
  std::vector<Invalidation> inval;
  {
    std::unique_lock lock(mu_);
    // Validate before creating anything: no mounted ancestor (other than "/"),
    // nothing mounted at or below the target (except below "/").
    auto comps = split(*mp);
    std::uint64_t cur = kRootNode;
    bool walked_all = true;
    for (std::size_t i = 0; i < comps.size(); ++i) {
      const auto& n = nodes_.at(cur);
      auto it = n.children.find(comps[i]);
      if (it == n.children.end()) {
        walked_all = false;
        break;
      }
      cur = it->second;
      if (nodes_.at(cur).inst && i + 1 < comps.size())
        return fail(ErrorCode::kInvalidArgument, fmt::format("mountpoint {} is inside mountpoint of another filesystem", *mp));
    }
    if (walked_all) {
      const auto& target = nodes_.at(cur);
      if (target.inst) return fail(ErrorCode::kAlreadyExists, fmt::format("mountpoint {} has a filesystem attached", *mp));
      if (cur != kRootNode && !target.children.empty())
        return fail(ErrorCode::kInvalidArgument, fmt::format("mountpoint {} has mountpoints below it", *mp));
    }
    unsigned slot = 0;
    if (at) {
      if (slots_[at->slot]) return fail(ErrorCode::kAlreadyExists, fmt::format("slot {} is in use", at->slot));
      slot = at->slot;
    }
    for (unsigned k = 0; k < kMaxInstances && slot == 0; ++k) {
      unsigned s = (next_slot_ - 1 + k) % kMaxInstances + 1;
      if (!slots_[s]) {
        slot = s;
        break;
      }
    }
    if (slot == 0) {
      return fail(ErrorCode::kInvalidArgument,
                  fmt::format("too many filesystem instances: the limit is {} per daemon", kMaxInstances));
    }
    if (!at) next_slot_ = slot % kMaxInstances + 1;
    // Create the pseudo directories.
    cur = kRootNode;
    for (std::size_t i = 0; i < comps.size(); ++i) {
      const auto& c = comps[i];
      auto& n = nodes_.at(cur);
      auto it = n.children.find(c);
      if (it != n.children.end()) {
        cur = it->second;
        continue;
      }
      std::uint64_t id = new_pseudo_id(at && i < at->dirs.size() ? at->dirs[i] : 0);
      n.children.emplace(c, id);
      nodes_[id] = PseudoNode{c, cur, {}, nullptr};
      cur = id;
    }
    auto inst = std::make_shared<Instance>();
    inst->fs = std::move(fs);
    inst->metrics = std::move(metrics);
    inst->mountpoint = *mp;
    inst->slot = slot;
    if (at) epochs_[slot] = at->epoch;  // the ids the kernel holds name this epoch
    else if (++epochs_[slot] == 0) epochs_[slot] = 1;
    inst->epoch = epochs_[slot];
    inst->at_root = (*mp == "/");
    inst->metrics->file_seen(inst->fs->root());
    nodes_.at(cur).inst = inst;
    slots_[slot] = inst;
    inval = invalidations_for(*mp, nullptr);
  }
  run(inval);
  return {};
}

Result<void> PseudoFs::swap(std::string_view mountpoint, std::shared_ptr<Filesystem> fs, std::shared_ptr<FsMetrics> metrics) {
  auto mp = normalize(mountpoint);
  if (!mp) return tl::unexpected(mp.error());
  std::vector<Invalidation> inval;
  {
    std::unique_lock lock(mu_);
    std::uint64_t cur = kRootNode;
    for (const auto& c : split(*mp)) {
      auto it = nodes_.at(cur).children.find(c);
      if (it == nodes_.at(cur).children.end()) return fail(ErrorCode::kNotFound, fmt::format("nothing is attached at {}", *mp));
      cur = it->second;
    }
    auto& node = nodes_.at(cur);
    if (!node.inst) return fail(ErrorCode::kNotFound, fmt::format("nothing is attached at {}", *mp));
    auto old = node.inst;
    auto inst = std::make_shared<Instance>();
    inst->fs = std::move(fs);
    inst->metrics = std::move(metrics);
    inst->mountpoint = *mp;
    inst->slot = old->slot;
    if (++epochs_[old->slot] == 0) epochs_[old->slot] = 1;
    inst->epoch = epochs_[old->slot];
    inst->at_root = old->at_root;
    inst->metrics->file_seen(inst->fs->root());
    node.inst = inst;
    slots_[inst->slot] = inst;
    inval = invalidations_for(*mp, old.get());
  }
  run(inval);
  return {};
}

Result<void> PseudoFs::detach(std::string_view mountpoint) {
  auto mp = normalize(mountpoint);
  if (!mp) return tl::unexpected(mp.error());
  std::vector<Invalidation> inval;
  std::shared_ptr<Instance> old;  // released outside the lock
  {
    std::unique_lock lock(mu_);
    std::uint64_t cur = kRootNode;
    for (const auto& c : split(*mp)) {
      auto it = nodes_.at(cur).children.find(c);
      if (it == nodes_.at(cur).children.end()) return fail(ErrorCode::kNotFound, fmt::format("nothing is attached at {}", *mp));
      cur = it->second;
    }
    auto& node = nodes_.at(cur);
    if (!node.inst) return fail(ErrorCode::kNotFound, fmt::format("nothing is attached at {}", *mp));
    old = std::move(node.inst);
    slots_[old->slot].reset();
    inval = invalidations_for(*mp, old.get());
    // Prune pseudo directories left empty.
    while (cur != kRootNode) {
      auto& n = nodes_.at(cur);
      if (n.inst || !n.children.empty()) break;
      std::uint64_t parent = n.parent;
      nodes_.at(parent).children.erase(n.name);
      nodes_.erase(cur);
      cur = parent;
    }
  }
  run(inval);
  return {};
}

bool PseudoFs::is_attached(std::string_view mountpoint) const { return slot_of(mountpoint).has_value(); }

std::optional<unsigned> PseudoFs::slot_of(std::string_view mountpoint) const {
  auto p = placement_of(mountpoint);
  if (!p) return std::nullopt;
  return p->slot;
}

std::optional<Placement> PseudoFs::placement_of(std::string_view mountpoint) const {
  auto mp = normalize(mountpoint);
  if (!mp) return std::nullopt;
  std::shared_lock lock(mu_);
  std::uint64_t cur = kRootNode;
  std::vector<std::uint64_t> dirs;
  for (const auto& c : split(*mp)) {
    auto it = nodes_.at(cur).children.find(c);
    if (it == nodes_.at(cur).children.end()) return std::nullopt;
    cur = it->second;
    dirs.push_back(cur);
  }
  const auto& n = nodes_.at(cur);
  if (!n.inst) return std::nullopt;
  return Placement{n.inst->slot, n.inst->epoch, std::move(dirs)};
}

// `want` when it is a free pseudo id (a restored one), else the next free one.
// Caller holds mu_ exclusively.
std::uint64_t PseudoFs::new_pseudo_id(std::uint64_t want) {
  const bool usable = want > kRootNode && (want >> kSlotShift) == 0 && nodes_.count(want) == 0;
  if (!usable) {
    while (nodes_.count(next_pseudo_) != 0) ++next_pseudo_;
    want = next_pseudo_;
  }
  next_pseudo_ = std::max(next_pseudo_, want + 1);
  return want;
}

PseudoFs::Resolved PseudoFs::resolve(std::uint64_t node) const {
  std::shared_lock lock(mu_);
  if (node == kRootNode) {
    const auto& root = nodes_.at(kRootNode);
    if (root.inst) return {0, root.inst, root.inst->fs->root()};
    return {0, nullptr, kRootNode};
  }
  unsigned slot = static_cast<unsigned>(node >> kSlotShift);
  if (slot == 0) {
    if (nodes_.count(node) == 0) return {ESTALE, nullptr, 0};
    return {0, nullptr, node};
  }
  const auto& inst = slots_[slot];
  auto epoch = static_cast<std::uint16_t>((node >> kEpochShift) & 0xffff);
  if (!inst || inst->epoch != epoch) return {ESTALE, nullptr, 0};
  return {0, inst, node & kLocalMask};
}

std::uint64_t PseudoFs::node_of(const Instance& inst, Ino ino) const {
  if (inst.at_root && ino == inst.fs->root()) return kRootNode;
  return (std::uint64_t{inst.slot} << kSlotShift) | (std::uint64_t{inst.epoch} << kEpochShift) | (ino & kLocalMask);
}

struct stat PseudoFs::pseudo_attr(std::uint64_t local) const {
  struct stat st {};
  st.st_ino = local;
  st.st_mode = S_IFDIR | 0755;
  st.st_nlink = 2;
  st.st_blksize = 4096;
  st.st_atim = st.st_mtim = st.st_ctim = created_;
  return st;
}

void PseudoFs::report(const Instance& inst, std::string_view op, Ino ino, int err, std::string_view extra) {
  if (!on_error_ || inst.fs->reports_own_errors()) return;
  on_error_(fmt::format("{}: {} inode {}{}: {}", inst.mountpoint, op, ino, extra, std::strerror(err)));
}

FsResult<NodeEntry> PseudoFs::instance_root_entry(const std::shared_ptr<Instance>& inst, std::uint64_t node) {
  auto attr = inst->fs->getattr(inst->fs->root());
  inst->metrics->record(Fop::kLookup, inst->fs->root(), attr.has_value());
  if (!attr) return fs_error(attr.error());
  return NodeEntry{node, *attr};
}

std::uint64_t PseudoFs::child_ino(std::uint64_t parent, std::string_view name) const {
  std::shared_ptr<Instance> inst;
  std::uint64_t id = 0;
  {
    std::shared_lock lock(mu_);
    auto it = nodes_.find(parent);
    if (it == nodes_.end()) return 0;
    auto c = it->second.children.find(name);
    if (c == it->second.children.end()) return 0;
    id = c->second;
    inst = nodes_.at(id).inst;
  }
  if (!inst) return pseudo_attr(id).st_ino;
  // What stat shows for the instance's root, as READDIRPLUS reports it.
  auto attr = inst->fs->getattr(inst->fs->root());
  return attr && attr->st_ino != 0 ? attr->st_ino : id;
}

FsResult<NodeEntry> PseudoFs::lookup(std::uint64_t parent, std::string_view name) {
  std::shared_ptr<Instance> child_inst;
  std::uint64_t child_pseudo = 0;
  Resolved r;
  {
    std::shared_lock lock(mu_);
    unsigned slot = static_cast<unsigned>(parent >> kSlotShift);
    if (parent == kRootNode || slot == 0) {
      auto it = nodes_.find(parent);
      if (it == nodes_.end()) return fs_error(ESTALE);
      if (auto c = it->second.children.find(name); c != it->second.children.end()) {
        child_pseudo = c->second;
        child_inst = nodes_.at(child_pseudo).inst;
      }
    }
  }
  if (child_inst) return instance_root_entry(child_inst, node_of(*child_inst, child_inst->fs->root()));
  if (child_pseudo != 0) return NodeEntry{child_pseudo, pseudo_attr(child_pseudo)};
  r = resolve(parent);
  if (r.err) return fs_error(r.err);
  if (!r.inst) return fs_error(ENOENT);
  auto e = r.inst->fs->lookup(r.ino, name);
  r.inst->metrics->record(Fop::kLookup, e ? e->ino : r.ino, e.has_value());
  if (!e) {
    if (e.error() == EIO) report(*r.inst, "lookup", r.ino, EIO);
    return fs_error(e.error());
  }
  r.inst->metrics->file_seen(e->ino);
  if (r.inst->at_root && r.ino == r.inst->fs->root()) {
    std::lock_guard lock(r.inst->names_mu);
    r.inst->root_names.emplace(name);
  }
  return NodeEntry{node_of(*r.inst, e->ino), e->attr};
}

void PseudoFs::forget(std::uint64_t node, std::uint64_t nlookup, bool batch) {
  auto r = resolve(node);
  if (r.err || !r.inst) return;  // pseudo nodes are not counted; stale ids have nothing left to free
  if (r.inst->fs->forget(r.ino, nlookup)) r.inst->metrics->file_forgotten(r.ino);
  r.inst->metrics->record(batch ? Fop::kBatchForget : Fop::kForget, 0, true);
}

bool PseudoFs::immutable(std::uint64_t node) const {
  auto r = resolve(node);
  return r.err == 0 && r.inst && r.inst->fs->immutable();
}

FsResult<struct stat> PseudoFs::getattr(std::uint64_t node) {
  auto r = resolve(node);
  if (r.err) return fs_error(r.err);
  if (!r.inst) return pseudo_attr(r.ino);
  return recorded(*r.inst->metrics, Fop::kGetattr, r.ino, r.inst->fs->getattr(r.ino));
}

FsResult<std::string> PseudoFs::readlink(std::uint64_t node) {
  auto r = resolve(node);
  if (r.err) return fs_error(r.err);
  if (!r.inst) return fs_error(EINVAL);
  return recorded(*r.inst->metrics, Fop::kReadlink, r.ino, r.inst->fs->readlink(r.ino));
}

FsResult<std::uint64_t> PseudoFs::open(std::uint64_t node, int flags) {
  auto r = resolve(node);
  if (r.err) return fs_error(r.err);
  if (!r.inst) return fs_error(EISDIR);
  auto fh = recorded(*r.inst->metrics, Fop::kOpen, r.ino, r.inst->fs->open(r.ino, flags));
  if (!fh) return fs_error(fh.error());
  r.inst->metrics->opened();
  auto h = std::make_shared<Handle>();
  h->inst = r.inst;
  h->ino = r.ino;
  h->fh = *fh;
  return new_handle(std::move(h));
}

FsResult<std::size_t> PseudoFs::read(std::uint64_t node, std::uint64_t fh, char* buf, std::size_t size, off_t off) {
  auto found = handle_for(node, fh, false);
  if (!found) return fs_error(found.error());
  const std::shared_ptr<Handle>& h = *found;
  auto start = std::chrono::steady_clock::now();
  auto n = h->inst->fs->read(h->ino, h->fh, buf, size, off);
  auto latency = std::chrono::steady_clock::now() - start;
  h->inst->metrics->record_read(h->ino, size, n.has_value(), n ? *n : 0, latency);
  if (!n) report(*h->inst, "read", h->ino, n.error(), fmt::format(" offset {} size {}", off, size));
  return n;
}

void PseudoFs::release(std::uint64_t node, std::uint64_t fh) {
  auto h = take_released(node, fh, false);
  if (!h || !h->inst) return;
  auto inst = h->inst;
  Ino ino = h->ino;
  close_handle(std::move(h));
  inst->metrics->record(Fop::kRelease, ino, true);
}

FsResult<std::uint64_t> PseudoFs::opendir(std::uint64_t node) {
  auto r = resolve(node);
  if (r.err) return fs_error(r.err);
  auto h = std::make_shared<Handle>();
  h->is_dir = true;
  if (!r.inst) {
    std::shared_lock lock(mu_);
    auto it = nodes_.find(r.ino);
    if (it == nodes_.end()) return fs_error(ESTALE);
    h->ino = r.ino;
    for (const auto& [name, id] : it->second.children) h->pseudo_names.push_back(name);
  } else {
    auto fh = recorded(*r.inst->metrics, Fop::kOpendir, r.ino, r.inst->fs->opendir(r.ino));
    if (!fh) return fs_error(fh.error());
    h->inst = r.inst;
    h->ino = r.ino;
    h->fh = *fh;
  }
  return new_handle(std::move(h));
}

FsResult<void> PseudoFs::readdir(std::uint64_t node, std::uint64_t fh, std::uint64_t off, bool plus, const NodeSink& sink) {
  auto found = handle_for(node, fh, true);
  if (!found) return fs_error(found.error());
  const std::shared_ptr<Handle>& h = *found;
  if (!h->inst) {
    // Pseudo listing: ".", "..", then the snapshot; offsets are positions.
    for (std::uint64_t i = off; i < h->pseudo_names.size() + 2; ++i) {
      std::string_view name = i == 0 ? "." : i == 1 ? ".." : std::string_view(h->pseudo_names[i - 2]);
      DirEntry de{name, i + 1, h->ino, DT_DIR};
      if (!plus && i >= 2) {
        // READDIR (the kernel's later batches): glibc skips d_ino 0 as deleted.
        de.d_ino = child_ino(node, name);
        if (de.d_ino == 0) continue;  // detached since opendir
      }
      if (!plus || i < 2) {
        NodeEntry dot{0, pseudo_attr(h->ino)};
        if (!sink(de, plus ? &dot : nullptr)) return {};
        continue;
      }
      auto e = lookup(node, name);
      if (!e) continue;  // detached since opendir
      de.d_ino = e->attr.st_ino;
      if (!sink(de, &*e)) {
        forget(e->node, 1);
        return {};
      }
    }
    return {};
  }
  Instance& inst = *h->inst;
  bool root_listing = inst.at_root && h->ino == inst.fs->root();
  int lookup_err = 0;
  auto res = inst.fs->readdir(h->ino, h->fh, off, [&](const DirEntry& de) {
    if (!plus) return sink(de, nullptr);
    if (de.name == "." || de.name == "..") {
      NodeEntry dot{};
      dot.attr.st_ino = de.d_ino;
      dot.attr.st_mode = static_cast<mode_t>(de.d_type << 12);
      return sink(de, &dot);
    }
    auto e = inst.fs->lookup(h->ino, de.name);
    if (!e) {
      lookup_err = e.error();
      return false;
    }
    inst.metrics->file_seen(e->ino);
    if (root_listing) {
      std::lock_guard lock(inst.names_mu);
      inst.root_names.emplace(de.name);
    }
    NodeEntry ne{node_of(inst, e->ino), e->attr};
    if (!sink(de, &ne)) {
      if (inst.fs->forget(e->ino, 1)) inst.metrics->file_forgotten(e->ino);
      return false;
    }
    return true;
  });
  bool ok = res.has_value() && lookup_err == 0;
  inst.metrics->record(plus ? Fop::kReaddirplus : Fop::kReaddir, h->ino, ok);
  if (!res) return res;
  if (lookup_err) return fs_error(lookup_err);
  return {};
}

void PseudoFs::releasedir(std::uint64_t node, std::uint64_t fh) { close_handle(take_released(node, fh, true)); }

FsResult<struct statvfs> PseudoFs::statfs(std::uint64_t node) {
  auto r = resolve(node);
  if (r.err) return fs_error(r.err);
  if (!r.inst) {
    struct statvfs sv {};
    sv.f_bsize = sv.f_frsize = 4096;
    sv.f_namemax = 255;
    sv.f_flag = ST_RDONLY;
    return sv;
  }
  return recorded(*r.inst->metrics, Fop::kStatfs, r.ino, r.inst->fs->statfs(r.ino));
}

FsResult<std::string> PseudoFs::getxattr(std::uint64_t node, const char* name) {
  auto r = resolve(node);
  if (r.err) return fs_error(r.err);
  if (!r.inst) return fs_error(ENODATA);
  return recorded(*r.inst->metrics, Fop::kGetxattr, r.ino, r.inst->fs->getxattr(r.ino, name));
}

FsResult<std::string> PseudoFs::listxattr(std::uint64_t node) {
  auto r = resolve(node);
  if (r.err) return fs_error(r.err);
  if (!r.inst) return std::string();
  return recorded(*r.inst->metrics, Fop::kListxattr, r.ino, r.inst->fs->listxattr(r.ino));
}

FsResult<void> PseudoFs::access(std::uint64_t node, int mask) {
  auto r = resolve(node);
  if (r.err) return fs_error(r.err);
  if (!r.inst) return (mask & W_OK) ? fs_error(EROFS) : FsResult<void>{};
  return recorded(*r.inst->metrics, Fop::kAccess, r.ino, r.inst->fs->access(r.ino, mask));
}

}  // namespace nydus::fs
