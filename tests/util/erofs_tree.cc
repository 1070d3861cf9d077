// Tree helpers for image tests (see erofs_tree.h).
#include "util/erofs_tree.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

namespace nydus::testutil {

namespace stdfs = std::filesystem;

std::string shell(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return "popen failed";
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = ::pclose(p);
  if (rc) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string kernel_erofs_unavailable() {
  if (::geteuid() != 0) return "not root";
  std::ifstream fsl("/proc/filesystems");
  std::stringstream ss;
  ss << fsl.rdbuf();
  if (ss.str().find("erofs") == std::string::npos) return "kernel has no EROFS (/proc/filesystems)";
  if (::access("/dev/loop-control", F_OK) != 0) return "no /dev/loop-control";
  int rc = 0;
  shell("command -v mount losetup", &rc);
  if (rc != 0) return "mount/losetup not installed";
  return "";
}

KernelMount::KernelMount(const std::string& image, const std::string& dir, const std::string& extra_opts) : dir_(dir) {
  stdfs::create_directories(dir);
  int rc = 0;
  std::string out = shell("mount -t erofs -o loop,ro" + extra_opts + " '" + image + "' '" + dir + "'", &rc);
  ok_ = rc == 0;
  if (!ok_) error_ = out + "\n" + shell("dmesg | tail -5");
}

KernelMount::~KernelMount() {
  if (ok_) shell("umount '" + dir_ + "'");
}

LoopDevice::LoopDevice(const std::string& file) {
  int rc = 0;
  dev_ = shell("losetup -f --show -r '" + file + "'", &rc);
  while (!dev_.empty() && dev_.back() == '\n') dev_.pop_back();
  if (rc != 0) dev_.clear();
}

LoopDevice::~LoopDevice() {
  if (!dev_.empty()) shell("losetup -d " + dev_);
}

std::map<std::string, std::string> xattrs_of(const std::string& path) {
  std::map<std::string, std::string> out;
  std::vector<char> names(65536);
  ssize_t n = ::llistxattr(path.c_str(), names.data(), names.size());
  for (ssize_t p = 0; p < n;) {
    std::string name(names.data() + p);
    p += ssize_t(name.size() + 1);
    std::vector<char> val(65536);
    ssize_t v = ::lgetxattr(path.c_str(), name.c_str(), val.data(), val.size());
    out[name] = v < 0 ? "<error " + std::to_string(errno) + ">" : std::string(val.data(), std::size_t(v));
  }
  return out;
}

void make_tree(const std::string& root) {
  stdfs::create_directories(root + "/a/b");
  stdfs::create_directories(root + "/many");
  ::chmod(root.c_str(), 0755);
  std::ofstream(root + "/empty").flush();
  std::ofstream(root + "/small") << "hello, erofs\n";
  {
    std::ofstream f(root + "/a/b/mid", std::ios::binary);
    for (int i = 0; i < 20000; ++i) f << i << ',';
  }
  for (int i = 0; i < 300; ++i) std::ofstream(root + "/many/entry_with_a_fairly_long_name_" + std::to_string(i)) << i;
  ASSERT_EQ(::truncate((root + "/a/b/mid").c_str(), 3 << 20), 0);  // a hole at the end
  stdfs::create_symlink("a/b/mid", root + "/link");
  stdfs::create_symlink(std::string(3000, 'y'), root + "/longlink");
  ASSERT_EQ(::link((root + "/small").c_str(), (root + "/a/hardlink").c_str()), 0);
  ASSERT_EQ(::mkfifo((root + "/fifo").c_str(), 0600), 0);
  ASSERT_EQ(::mknod((root + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::mknod((root + "/blk").c_str(), S_IFBLK | 0600, makedev(259, 300)), 0);
  ASSERT_EQ(::chown((root + "/a/b/mid").c_str(), 70000, 70001), 0);
  ASSERT_EQ(::lsetxattr((root + "/small").c_str(), "user.foo", "bar", 3, 0), 0);
  ASSERT_EQ(::lsetxattr((root + "/a").c_str(), "user.foo", "bar", 3, 0), 0);  // repeated: shared in mkfs.erofs
  ASSERT_EQ(::lsetxattr((root + "/a").c_str(), "trusted.t", "tv", 2, 0), 0);
  std::string big(600, 'v');
  ASSERT_EQ(::lsetxattr((root + "/a/b").c_str(), "user.big", big.data(), big.size(), 0), 0);
  ::chmod((root + "/small").c_str(), 04711);
}

namespace {

// Deterministic bytes that neither compress nor repeat.
void put_random(std::ofstream& f, std::uint64_t n, std::uint64_t seed) {
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  std::vector<char> buf(64 << 10);
  while (n > 0) {
    std::size_t m = std::size_t(std::min<std::uint64_t>(n, buf.size()));
    for (std::size_t i = 0; i < m; i += 8) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      for (std::size_t j = 0; j < 8 && i + j < m; ++j) buf[i + j] = char(x >> (8 * j));
    }
    f.write(buf.data(), std::streamsize(m));
    n -= m;
  }
}

void put_text(std::ofstream& f, std::uint64_t n) {
  std::string line = "the quick brown fox jumps over the lazy dog 0123456789\n";
  while (n > 0) {
    std::size_t m = std::size_t(std::min<std::uint64_t>(n, line.size()));
    f.write(line.data(), std::streamsize(m));
    n -= m;
  }
}

}  // namespace

void make_data_files(const std::string& root, std::uint64_t max_size) {
  stdfs::create_directories(root + "/data");
  ::chmod(root.c_str(), 0755);
  const std::string d = root + "/data/";
  std::ofstream(d + "zero").flush();
  for (std::uint64_t size : {1ull, 4095ull, 4096ull, 4097ull, 65536ull + 17, (1ull << 20) - 1, 1ull << 20, (1ull << 20) + 1}) {
    std::ofstream f(d + "rand_" + std::to_string(size), std::ios::binary);
    put_random(f, size, size);
  }
  {
    std::ofstream f(d + "text_3m", std::ios::binary);
    put_text(f, 3ull << 20);
  }
  // Sparse: a leading hole, data islands, an inner hole, a trailing hole.
  const std::string big = d + "sparse_big";
  {
    std::ofstream f(big, std::ios::binary);
    f.seekp(std::streamoff(max_size / 4 + 123));
    put_random(f, 1 << 20, 7);
    f.seekp(std::streamoff(max_size / 2));
    put_text(f, (1 << 20) + 5000);
  }
  ASSERT_EQ(::truncate(big.c_str(), off_t(max_size)), 0);
  const std::string head = d + "data_then_hole";
  {
    std::ofstream f(head, std::ios::binary);
    put_random(f, 10000, 9);
  }
  ASSERT_EQ(::truncate(head.c_str(), off_t(5 << 20)), 0);
}

namespace {

std::set<std::string> list_tree(const std::string& root) {
  std::set<std::string> out{"/"};
  std::error_code ec;
  for (auto it = stdfs::recursive_directory_iterator(root, ec); !ec && it != stdfs::recursive_directory_iterator();
       it.increment(ec)) {
    out.insert(it->path().string().substr(root.size()));
  }
  EXPECT_FALSE(ec) << root << ": " << ec.message();
  return out;
}

void expect_same_bytes(const std::string& a, const std::string& b, const std::string& rel) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  ASSERT_TRUE(fa && fb) << rel;
  std::vector<char> ba(1 << 20), bb(1 << 20);
  std::uint64_t off = 0;
  while (true) {
    fa.read(ba.data(), std::streamsize(ba.size()));
    fb.read(bb.data(), std::streamsize(bb.size()));
    std::size_t na = std::size_t(fa.gcount()), nb = std::size_t(fb.gcount());
    ASSERT_EQ(na, nb) << rel << ": lengths differ after offset " << off;
    for (std::size_t i = 0; i < na; ++i) {
      ASSERT_EQ(ba[i], bb[i]) << rel << ": bytes differ at offset " << off + i;
    }
    off += na;
    if (na < ba.size()) break;
  }
}

}  // namespace

std::size_t expect_same_tree(const std::string& a, const std::string& b, TreeCompare c) {
  auto names_a = list_tree(a), names_b = list_tree(b);
  EXPECT_EQ(names_a, names_b);
  std::size_t n = 0;
  for (const std::string& rel : names_a) {
    if (!names_b.count(rel)) continue;
    std::string pa = a + (rel == "/" ? "" : rel), pb = b + (rel == "/" ? "" : rel);
    struct stat sa {}, sb {};
    if (::lstat(pa.c_str(), &sa) != 0 || ::lstat(pb.c_str(), &sb) != 0) {
      ADD_FAILURE() << "lstat failed for " << rel << ": " << std::strerror(errno);
      continue;
    }
    ++n;
    EXPECT_EQ(sa.st_mode, sb.st_mode) << rel;
    EXPECT_EQ(sa.st_nlink, sb.st_nlink) << rel;
    if (!S_ISDIR(sa.st_mode) || c.dir_size) {
      EXPECT_EQ(sa.st_size, sb.st_size) << rel;
    }
    EXPECT_EQ(sa.st_rdev, sb.st_rdev) << rel;
    if (c.ino) {
      EXPECT_EQ(sa.st_ino, sb.st_ino) << rel;
    }
    if (c.owner) {
      EXPECT_EQ(sa.st_uid, sb.st_uid) << rel;
      EXPECT_EQ(sa.st_gid, sb.st_gid) << rel;
    }
    if (c.mtime) {
      EXPECT_EQ(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec) << rel;
    }
    if (c.xattrs) {
      EXPECT_EQ(xattrs_of(pa), xattrs_of(pb)) << rel;
    }
    if (S_ISLNK(sa.st_mode)) {
      EXPECT_EQ(stdfs::read_symlink(pa), stdfs::read_symlink(pb)) << rel;
    }
    if (c.data && S_ISREG(sa.st_mode)) expect_same_bytes(pa, pb, rel);
  }
  return n;
}

}  // namespace nydus::testutil
