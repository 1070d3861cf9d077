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
#include "util/erofs_tree.h"
#include "util/raw_client.h"

namespace nydus::storage {
namespace {

using testutil::KernelMount;
using testutil::LoopDevice;
using testutil::make_tree;
using testutil::xattrs_of;

std::string run(const std::string& cmd, int* rc = nullptr) { return testutil::shell(cmd, rc); }
std::string kernel_unavailable() { return testutil::kernel_erofs_unavailable(); }

void write_file(const std::string& path, const std::vector<std::uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
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
      KernelMount m(dir.file("boot"), dir.file("mnt"), "");
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
  KernelMount m(boot, dir.file("mnt"), "");
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
    KernelMount m(dir.file("flat.img"), dir.file("mnt1"), "");
    ASSERT_TRUE(m.ok()) << m.error();
    compare_with_kernel(**flat, dir.file("mnt1"));
  }
  LoopDevice loop(dir.file("blob.img"));
  ASSERT_FALSE(loop.dev().empty());
  KernelMount m(dir.file("meta.img"), dir.file("mnt2"), ",device=" + loop.dev());
  ASSERT_TRUE(m.ok()) << m.error();
  compare_with_kernel(**chunked, dir.file("mnt2"));
}

}  // namespace
}  // namespace nydus::storage
