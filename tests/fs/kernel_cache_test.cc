// Kernel caching per instance, through a real FUSE mount: RAFS instances
// (immutable) get long entry/attr timeouts, negative entries and keep_cache;
// passthrough instances and pseudo directories keep the short timeouts; the
// switch (FuseServerOptions::kernel_cache) turns it all off. Also the request
// sizes: 1 MiB (max_pages) from INIT, and readahead raised to use them.
// Requests that reach the daemon are counted with the instances' FsMetrics.
//
// Needs root and /dev/fuse; otherwise every test is skipped with the reason.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "nydus/fs/fuse_server.h"
#include "nydus/fs/passthrough_fs.h"
#include "nydus/fs/pseudo_fs.h"
#include "nydus/fs/rafs_fs.h"
#include "nydus/storage/builder.h"
#include "util/raw_client.h"

namespace nydus::fs {
namespace {

namespace stdfs = std::filesystem;
using testutil::TempDir;
constexpr std::size_t kBig = 4u << 20;
constexpr std::size_t kMiB = 1u << 20;

std::string fuse_unavailable() {
  if (::geteuid() != 0) return "needs root to mount FUSE";
  int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::string("cannot open /dev/fuse: ") + std::strerror(errno);
  ::close(fd);
  return {};
}

bool is_mountpoint(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.find(" " + path + " ") != std::string::npos) return true;
  return false;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Counts {
  std::uint64_t lookups, getattrs, reads;
  bool operator==(const Counts&) const = default;
};

Counts counts(const FsMetrics& m) {
  return {m.fop_hits(Fop::kLookup) + m.fop_errors(Fop::kLookup), m.fop_hits(Fop::kGetattr), m.fop_hits(Fop::kRead)};
}

std::ostream& operator<<(std::ostream& os, const Counts& c) {
  return os << "{lookups " << c.lookups << ", getattrs " << c.getattrs << ", reads " << c.reads << "}";
}

class KernelCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = fuse_unavailable(); !why.empty()) GTEST_SKIP() << why;
    mnt_ = dir_.file("mnt");
    stdfs::create_directories(mnt_);
    for (int v : {1, 2}) {
      const std::string src = dir_.file("src" + std::to_string(v));
      stdfs::create_directories(src + "/dir");
      std::ofstream(src + "/dir/file") << std::string(std::size_t(v) * 5000, char('a' + v));
    }
    std::ofstream(dir_.file("src1/big")) << std::string(kBig, 'b');
    std::ofstream(dir_.file("src2/only2")) << "2";
    std::ofstream(dir_.file("src2/dir/only2")) << "2";
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (!mnt_.empty() && is_mountpoint(mnt_)) {
      ::umount2(mnt_.c_str(), MNT_DETACH);
      ADD_FAILURE() << "mount left behind";
    }
  }

  // Short timeouts of 0: whatever is not cached long reaches the daemon every time.
  void start(bool kernel_cache) {
    FuseServerOptions o;
    o.threads = 2;
    o.entry_timeout = 0;
    o.attr_timeout = 0;
    o.kernel_cache = kernel_cache;
    auto s = FuseServer::start(pseudo_, mnt_, o);
    ASSERT_TRUE(s) << s.error().to_string();
    server_ = std::move(*s);
  }

  // A RAFS instance of source tree `v` (zstd, localfs blobs).
  std::shared_ptr<Filesystem> rafs(int v) {
    const std::string src = dir_.file("src" + std::to_string(v)), boot = dir_.file("boot" + std::to_string(v));
    const std::string blobs = dir_.file("blobs");
    stdfs::create_directories(blobs);
    auto b = storage::build_image_files(src, {}, boot, blobs);
    EXPECT_TRUE(b) << b.error().to_string();
    config::LocalFsConfig lc;
    lc.dir = blobs;
    auto be = storage::LocalFsBackend::create(lc);
    EXPECT_TRUE(be) << be.error().to_string();
    RafsOptions o;
    o.bootstrap = boot;
    o.image.backend = std::shared_ptr<storage::BlobBackend>(std::move(*be));
    auto fs = RafsFs::open(std::move(o));
    EXPECT_TRUE(fs) << fs.error().to_string();
    return fs ? *fs : nullptr;
  }

  std::shared_ptr<FsMetrics> attach(const std::string& mp, std::shared_ptr<Filesystem> fs) {
    auto m = std::make_shared<FsMetrics>(mp, FsMetricsOptions{});
    auto r = pseudo_.attach(mp, std::move(fs), m);
    EXPECT_TRUE(r) << r.error().to_string();
    return m;
  }

  // Stats `dir/file` and `dir/missing` and reads `dir/file` through a
  // descriptor of `dir` (no lookup of the mountpoint itself), twice; returns
  // the requests the second round sent to the daemon.
  Counts second_round(const std::string& dir, const FsMetrics& m) {
    int dfd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    EXPECT_GE(dfd, 0) << std::strerror(errno);
    Counts before{};
    for (int round = 0; round < 2; ++round) {
      if (round == 1) before = counts(m);
      struct stat st {};
      EXPECT_EQ(::fstatat(dfd, "file", &st, 0), 0) << std::strerror(errno);
      EXPECT_EQ(::fstatat(dfd, "missing", &st, 0), -1);
      EXPECT_EQ(errno, ENOENT);
      int fd = ::openat(dfd, "file", O_RDONLY | O_CLOEXEC);
      EXPECT_GE(fd, 0) << std::strerror(errno);
      char buf[8192];
      EXPECT_EQ(::read(fd, buf, sizeof buf), 5000);
      ::close(fd);
    }
    ::close(dfd);
    Counts after = counts(m);
    return {after.lookups - before.lookups, after.getattrs - before.getattrs, after.reads - before.reads};
  }

  TempDir dir_;
  std::string mnt_;
  PseudoFs pseudo_;
  std::unique_ptr<FuseServer> server_;
};

TEST_F(KernelCacheTest, RafsNamesAttributesAndDataStayCached) {
  start(true);
  auto m = attach("/r", rafs(1));
  EXPECT_EQ(second_round(mnt_ + "/r/dir", *m), (Counts{0, 0, 0}));
}

TEST_F(KernelCacheTest, SwitchedOffEveryRafsRequestReachesTheDaemon) {
  start(false);
  auto m = attach("/r", rafs(1));
  Counts c = second_round(mnt_ + "/r/dir", *m);
  EXPECT_GE(c.lookups, 2u) << c;  // file and missing again
  EXPECT_GE(c.reads, 1u) << c;    // no keep_cache: the open dropped the pages
}

TEST_F(KernelCacheTest, PassthroughKeepsShortTimeoutsAndSeesChanges) {
  start(true);
  auto m = attach("/p", PassthroughFs::create({dir_.file("src1"), {}}).value());
  Counts c = second_round(mnt_ + "/p/dir", *m);
  EXPECT_GE(c.lookups, 2u) << c;
  EXPECT_GE(c.reads, 1u) << c;
  std::ofstream(dir_.file("src1/dir/file"), std::ios::trunc) << "changed";
  EXPECT_EQ(read_all(mnt_ + "/p/dir/file"), "changed");
  struct stat st {};
  ASSERT_EQ(::stat((mnt_ + "/p/dir/file").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 7);
}

// Long caching never hides a mount change: attach, swap and detach invalidate
// what the kernel holds, including a negative entry of the root instance.
TEST_F(KernelCacheTest, MountChangesAreSeenAtOnce) {
  start(true);
  attach("/", rafs(1));
  struct stat st {};
  EXPECT_EQ(::stat((mnt_ + "/x").c_str(), &st), -1);  // in the RAFS root at "/"
  EXPECT_EQ(::stat((mnt_ + "/only2").c_str(), &st), -1);
  EXPECT_EQ(::stat((mnt_ + "/dir/only2").c_str(), &st), -1);  // a negative entry
  EXPECT_EQ(::stat((mnt_ + "/a/c").c_str(), &st), -1);
  attach("/x", rafs(1));
  attach("/a/b", rafs(1));
  EXPECT_EQ(::stat((mnt_ + "/x/dir/file").c_str(), &st), 0) << std::strerror(errno);
  EXPECT_EQ(st.st_size, 5000);
  EXPECT_EQ(::stat((mnt_ + "/a/c").c_str(), &st), -1);  // pseudo /a: no negative entry kept
  attach("/a/c", rafs(2));
  EXPECT_EQ(::stat((mnt_ + "/a/c/dir/file").c_str(), &st), 0) << std::strerror(errno);
  EXPECT_EQ(st.st_size, 10000);

  ASSERT_TRUE(pseudo_.swap("/x", rafs(2), std::make_shared<FsMetrics>("/x", FsMetricsOptions{})));
  EXPECT_EQ(::stat((mnt_ + "/x/dir/file").c_str(), &st), 0) << std::strerror(errno);
  EXPECT_EQ(st.st_size, 10000);
  EXPECT_EQ(read_all(mnt_ + "/x/dir/file"), std::string(10000, 'c'));
  ASSERT_TRUE(pseudo_.detach("/x"));
  EXPECT_EQ(::stat((mnt_ + "/x/dir/file").c_str(), &st), -1);
  ASSERT_TRUE(pseudo_.swap("/", rafs(2), std::make_shared<FsMetrics>("/", FsMetricsOptions{})));
  EXPECT_EQ(::stat((mnt_ + "/dir/file").c_str(), &st), 0) << std::strerror(errno);
  EXPECT_EQ(st.st_size, 10000);
  EXPECT_EQ(::stat((mnt_ + "/only2").c_str(), &st), 0) << std::strerror(errno);
  EXPECT_EQ(::stat((mnt_ + "/dir/only2").c_str(), &st), 0) << std::strerror(errno);
}

// libfuse answers INIT with max_write 1 MiB and max_pages to match, so one
// 1 MiB O_DIRECT read is one FUSE READ; the kernel's readahead (128 KiB for
// every new FUSE mount) is what keeps buffered reads small, and raising it
// makes sequential reads arrive in requests of up to 1 MiB.
TEST_F(KernelCacheTest, MegabyteRequestsDirectAndThroughReadahead) {
  start(true);
  auto m = attach("/r", rafs(1));
  struct stat st {};
  ASSERT_EQ(::stat(mnt_.c_str(), &st), 0);  // answered after INIT
  EXPECT_EQ(server_->init_params().max_write, kMiB);

  const std::string big = mnt_ + "/r/big";
  void* mem = std::aligned_alloc(4096, kMiB);
  ASSERT_NE(mem, nullptr);
  std::unique_ptr<void, decltype(&std::free)> buf(mem, &std::free);
  int fd = ::open(big.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  std::uint64_t before = m->fop_hits(Fop::kRead);
  EXPECT_EQ(::pread(fd, buf.get(), kMiB, 0), ssize_t(kMiB));
  ::close(fd);
  EXPECT_EQ(m->fop_hits(Fop::kRead) - before, 1u);

  ASSERT_TRUE(set_fuse_readahead(st.st_dev, kDefaultReadaheadKb));
  std::string ra_kb = read_all(fmt::format("/sys/class/bdi/{}:{}/read_ahead_kb", major(st.st_dev), minor(st.st_dev)));
  EXPECT_EQ(ra_kb, "1024\n");
  fd = ::open(big.c_str(), O_RDONLY | O_CLOEXEC);  // nothing of it in the page cache yet
  ASSERT_GE(fd, 0) << std::strerror(errno);
  before = m->fop_hits(Fop::kRead);
  std::size_t total = 0;
  for (ssize_t n; (n = ::read(fd, buf.get(), kMiB)) > 0;) total += std::size_t(n);
  ::close(fd);
  EXPECT_EQ(total, kBig);
  // 128 KiB requests would be 32; allow the kernel's ramp-up, not 128 KiB steady state.
  EXPECT_LE(m->fop_hits(Fop::kRead) - before, 12u);
}

}  // namespace
}  // namespace nydus::fs
