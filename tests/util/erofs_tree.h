// Helpers for tests that compare filesystem trees: a varied source tree,
// kernel EROFS mounts (the independent oracle for image metadata and, with
// the uncompressed cache image as `device=`, data) and a tree comparison that
// works on any two mounted or plain directories.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace nydus::testutil {

// Runs `cmd` through /bin/sh; stdout and stderr together.
std::string shell(const std::string& cmd, int* rc = nullptr);

// Empty if kernel EROFS mounts can run here (root, EROFS, loop devices,
// mount/losetup), else why not.
std::string kernel_erofs_unavailable();

// `mount -t erofs -o loop,ro<extra>` of `image` at `dir`, undone at scope end.
class KernelMount {
 public:
  KernelMount(const std::string& image, const std::string& dir, const std::string& extra_opts = "");
  ~KernelMount();
  KernelMount(const KernelMount&) = delete;
  KernelMount& operator=(const KernelMount&) = delete;
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_, error_;
  bool ok_ = false;
};

// A read-only loop device over `file`, detached at scope end; dev() empty on failure.
class LoopDevice {
 public:
  explicit LoopDevice(const std::string& file);
  ~LoopDevice();
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  const std::string& dev() const { return dev_; }

 private:
  std::string dev_;
};

std::map<std::string, std::string> xattrs_of(const std::string& path);

// The standard varied tree: empty and small files, a 3 MiB file ending in a
// hole, 300 entries in one directory, symlinks (one 3000 bytes long), a
// hardlink, a fifo, char and block devices, a uid/gid above 65535, inline and
// large xattrs, setuid bits. Needs root (devices, chown).
void make_tree(const std::string& root);

// Files for data tests: sizes from 0 to `max_size` with holes (leading,
// inner and trailing), chunk-boundary sizes and incompressible data.
void make_data_files(const std::string& root, std::uint64_t max_size);

struct TreeCompare {
  bool ino = true;     // st_ino
  bool owner = true;   // st_uid / st_gid
  bool mtime = true;   // st_mtime (seconds)
  bool xattrs = true;
  bool data = false;   // regular files' bytes
  bool dir_size = false;  // st_size of directories (image layout: only between two views of one image)
};

// Expects (gtest) the same names, types, modes, sizes, nlink, rdev, link
// targets, and what `c` selects, under `a` and `b`. Returns the entries compared.
std::size_t expect_same_tree(const std::string& a, const std::string& b, TreeCompare c);

}  // namespace nydus::testutil
