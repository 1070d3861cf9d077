// The kernel's EROFS driver as an independent oracle: generated RAFS v6
// bootstraps, mkfs.erofs images and the sample image are mounted with
// `mount -t erofs -o loop,ro` and their listing, modes, sizes, nlink,
// owners, rdev, mtimes, link targets, xattrs and inode numbers compared with
// this library's view of the same bootstrap. mkfs.erofs images are also read
// through the library (data from the flat image or the --blobdev blob) and
// compared byte for byte with their source tree.
//
// Needs root, loop devices and EROFS in /proc/filesystems; otherwise the
// tests SKIP and say why. A mount that fails when those exist is a failure.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "nydus/storage/builder.h"
#include "nydus/storage/image.h"
#include "nydus/storage/walk.h"
#include "util/raw_client.h"

namespace nydus::storage {
namespace {

std::string run(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return "popen failed";
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = ::pclose(p);
  if (rc) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// Empty if the kernel comparison can run here, else the reason.
std::string kernel_unavailable() {
  if (::geteuid() != 0) return "not root";
  std::ifstream fsl("/proc/filesystems");
  std::stringstream ss;
  ss << fsl.rdbuf();
  if (ss.str().find("erofs") == std::string::npos) return "kernel has no EROFS (/proc/filesystems)";
  if (::access("/dev/loop-control", F_OK) != 0) return "no /dev/loop-control";
  int rc = 0;
  run("command -v mount losetup", &rc);
  if (rc != 0) return "mount/losetup not installed";
  return "";
}

void write_file(const std::string& path, const std::vector<std::uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// A mount that is undone when the scope ends.
class Mount {
 public:
  Mount(const std::string& image, const std::string& dir, const std::string& extra_opts) : dir_(dir) {
    std::filesystem::create_directories(dir);
    int rc = 0;
    std::string out = run("mount -t erofs -o loop,ro" + extra_opts + " '" + image + "' '" + dir + "'", &rc);
    ok_ = rc == 0;
    if (!ok_) error_ = out + "\n" + run("dmesg | tail -5");
  }
  ~Mount() {
    if (ok_) run("umount '" + dir_ + "'");
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_, error_;
  bool ok_ = false;
};

class LoopDevice {
 public:
  explicit LoopDevice(const std::string& file) {
    int rc = 0;
    dev_ = run("losetup -f --show -r '" + file + "'", &rc);
    while (!dev_.empty() && dev_.back() == '\n') dev_.pop_back();
    if (rc != 0) dev_.clear();
  }
  ~LoopDevice() {
    if (!dev_.empty()) run("losetup -d " + dev_);
  }
  const std::string& dev() const { return dev_; }

 private:
  std::string dev_;
};

std::map<std::string, std::string> xattrs_of(const std::string& path) {
  std::map<std::string, std::string> out;
  char names[65536];
  ssize_t n = ::llistxattr(path.c_str(), names, sizeof names);
  for (ssize_t p = 0; p < n;) {
    std::string name(names + p);
    p += ssize_t(name.size() + 1);
    char val[65536];
    ssize_t v = ::lgetxattr(path.c_str(), name.c_str(), val, sizeof val);
    out[name] = std::string(val, std::size_t(v < 0 ? 0 : v));
  }
  return out;
}

// Our view vs the kernel's of every path.
void compare_with_kernel(const Image& im, const std::string& mnt) {
  std::size_t count = 0;
  std::set<std::string> ours;
  auto w = walk(im, [&](const std::string& path, const InodeAttr& a) -> Result<void> {
    ++count;
    ours.insert(path);
    std::string kp = mnt + (path == "/" ? "" : path);
    struct stat st;
    EXPECT_EQ(::lstat(kp.c_str(), &st), 0) << kp;
    EXPECT_EQ(a.ino, st.st_ino) << path;
    EXPECT_EQ(a.mode, st.st_mode) << path;
    EXPECT_EQ(a.size, std::uint64_t(st.st_size)) << path;
    EXPECT_EQ(a.nlink, st.st_nlink) << path;
    EXPECT_EQ(a.uid, st.st_uid) << path;
    EXPECT_EQ(a.gid, st.st_gid) << path;
    EXPECT_EQ(a.rdev, st.st_rdev) << path;
    EXPECT_EQ(a.mtime, std::uint64_t(st.st_mtim.tv_sec)) << path;
    std::map<std::string, std::string> got;
    auto names = im.listxattr(a.ino);
    EXPECT_TRUE(names) << path;
    for (const auto& n : names ? *names : std::vector<std::string>{}) got[n] = im.getxattr(a.ino, n).value_or("?");
    EXPECT_EQ(got, xattrs_of(kp)) << path;
    if (S_ISLNK(st.st_mode)) {
      EXPECT_EQ(im.readlink(a.ino).value_or("?"), std::filesystem::read_symlink(kp).string());
    }
    return {};
  });
  ASSERT_TRUE(w) << w.error().to_string();
  std::set<std::string> theirs{"/"};
  for (const auto& e : std::filesystem::recursive_directory_iterator(mnt)) theirs.insert(e.path().string().substr(mnt.size()));
  EXPECT_EQ(ours, theirs);
  EXPECT_GT(count, 1u);
}

void make_tree(const std::string& root) {
  namespace fs = std::filesystem;
  fs::create_directories(root + "/a/b");
  fs::create_directories(root + "/many");
  std::ofstream(root + "/empty").flush();
  std::ofstream(root + "/small") << "hello, erofs\n";
  {
    std::ofstream f(root + "/a/b/mid", std::ios::binary);
    for (int i = 0; i < 20000; ++i) f << i << ',';
  }
  for (int i = 0; i < 300; ++i) std::ofstream(root + "/many/entry_with_a_fairly_long_name_" + std::to_string(i)) << i;
  ASSERT_EQ(::truncate((root + "/a/b/mid").c_str(), 3 << 20), 0);  // a hole at the end
  fs::create_symlink("a/b/mid", root + "/link");
  fs::create_symlink(std::string(3000, 'y'), root + "/longlink");
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

void compare_data_with_source(const Image& im, const std::string& src) {
  auto w = walk(im, [&](const std::string& path, const InodeAttr& a) -> Result<void> {
    if (!S_ISREG(a.mode)) return {};
    std::ifstream in(src + path, std::ios::binary);
    std::string want((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto got = im.read(a.ino, 0, a.size + 10);
    EXPECT_TRUE(got) << path << ": " << got.error().to_string();
    EXPECT_TRUE(got && *got == want) << path;
    return {};
  });
  ASSERT_TRUE(w) << w.error().to_string();
}

TEST(Kernel, GeneratedImagesMatchKernelEROFS) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "kernel EROFS comparison not run: " << why;
  testutil::TempDir dir;
  make_tree(dir.file("src"));
  for (bool extended : {false, true}) {
    for (std::uint32_t chunk : {4096u, 1u << 20}) {
      SCOPED_TRACE((extended ? "extended/" : "compact/") + std::to_string(chunk));
      BuildOptions o;
      o.force_extended = extended;
      o.chunk_size = chunk;
      auto r = build_image(dir.file("src"), o);
      ASSERT_TRUE(r) << r.error().to_string();
      write_file(dir.file("boot"), r->bootstrap);
      auto im = Image::open(dir.file("boot"), {});
      ASSERT_TRUE(im) << im.error().to_string();
      Mount m(dir.file("boot"), dir.file("mnt"), "");
      ASSERT_TRUE(m.ok()) << "kernel refused the generated bootstrap: " << m.error();
      compare_with_kernel(**im, dir.file("mnt"));
    }
  }
}

TEST(Kernel, SampleImageMatchesKernelEROFS) {
  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "kernel EROFS comparison not run: " << why;
  std::string boot = std::string(NYDUS_SOURCE_DIR) + "/../shared/fixtures/rafs-v6/rafs-v6-2.2.boot";
  if (::access(boot.c_str(), R_OK) != 0) GTEST_SKIP() << "sample image absent: " << boot;
  testutil::TempDir dir;
  auto im = Image::open(boot, {});
  ASSERT_TRUE(im);
  Mount m(boot, dir.file("mnt"), "");
  ASSERT_TRUE(m.ok()) << m.error();
  compare_with_kernel(**im, dir.file("mnt"));
}

TEST(Kernel, MkfsErofsImages) {
  int rc = 0;
  run("command -v mkfs.erofs", &rc);
  if (rc != 0) GTEST_SKIP() << "mkfs.erofs (erofs-utils) not installed";
  if (::geteuid() != 0) GTEST_SKIP() << "not root: cannot create device nodes for the source tree";
  testutil::TempDir dir;
  make_tree(dir.file("src"));
  // Flat image (inline/plain files, shared xattrs) and chunked image with a blob device.
  std::string out = run("mkfs.erofs -T0 '" + dir.file("flat.img") + "' '" + dir.file("src") + "'", &rc);
  ASSERT_EQ(rc, 0) << out;
  out = run("mkfs.erofs -T0 --chunksize=4096 --blobdev='" + dir.file("blob.img") + "' '" + dir.file("meta.img") +
                "' '" + dir.file("src") + "'",
            &rc);
  ASSERT_EQ(rc, 0) << out;

  auto flat = Image::open(dir.file("flat.img"), {});
  ASSERT_TRUE(flat) << flat.error().to_string();
  EXPECT_FALSE((*flat)->super_block().rafs);
  compare_data_with_source(**flat, dir.file("src"));
  EXPECT_EQ((*flat)->getxattr((*flat)->lookup((*flat)->root_ino(), "a")->ino, "user.foo").value_or(""), "bar");

  config::LocalFsConfig cfg;
  cfg.blob_file = dir.file("blob.img");
  ImageOptions o;
  o.backend = std::shared_ptr<BlobBackend>(std::move(*LocalFsBackend::create(cfg)));
  auto chunked = Image::open(dir.file("meta.img"), o);
  ASSERT_TRUE(chunked) << chunked.error().to_string();
  ASSERT_EQ((*chunked)->blobs().size(), 1u);
  compare_data_with_source(**chunked, dir.file("src"));

  if (auto why = kernel_unavailable(); !why.empty()) GTEST_SKIP() << "kernel EROFS comparison not run: " << why;
  {
    Mount m(dir.file("flat.img"), dir.file("mnt1"), "");
    ASSERT_TRUE(m.ok()) << m.error();
    compare_with_kernel(**flat, dir.file("mnt1"));
  }
  LoopDevice loop(dir.file("blob.img"));
  ASSERT_FALSE(loop.dev().empty());
  Mount m(dir.file("meta.img"), dir.file("mnt2"), ",device=" + loop.dev());
  ASSERT_TRUE(m.ok()) << m.error();
  compare_with_kernel(**chunked, dir.file("mnt2"));
}

}  // namespace
}  // namespace nydus::storage
