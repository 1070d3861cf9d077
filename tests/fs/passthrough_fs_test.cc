// PassthroughFs resource bounds (issue #11 item 9): cached inodes hold no
// descriptor when file handles work, and descriptors at the top of the
// open-file limit stay free for the API server whatever FUSE clients do.
#include "nydus/fs/passthrough_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "util/raw_client.h"

namespace nydus::fs {
namespace {

using testutil::TempDir;
namespace stdfs = std::filesystem;

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : stdfs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

class PassthroughFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stdfs::create_directories(dir_.file("src/d"));
    for (int i = 0; i < kFiles; ++i) std::ofstream(dir_.file("src/d/" + std::to_string(i))) << i;
  }
  std::shared_ptr<PassthroughFs> fs(PassthroughOptions o = {}) {
    o.source = dir_.file("src");
    auto p = PassthroughFs::create(std::move(o));
    EXPECT_TRUE(p);
    return p ? *p : nullptr;
  }
  static constexpr int kFiles = 1000;
  TempDir dir_;
};

TEST_F(PassthroughFsTest, CachedInodesHoldNoDescriptors) {
  auto p = fs();
  ASSERT_TRUE(p);
  if (!p->uses_file_handles()) GTEST_SKIP() << "no file handles here (filesystem or CAP_DAC_READ_SEARCH)";
  auto d = p->lookup(p->root(), "d");
  ASSERT_TRUE(d);
  std::size_t before = open_fds();
  for (int i = 0; i < kFiles; ++i) {
    auto e = p->lookup(d->ino, std::to_string(i));
    ASSERT_TRUE(e) << i;
    ASSERT_TRUE(p->getattr(e->ino));
  }
  EXPECT_EQ(p->inode_count(), 2u + kFiles);
  EXPECT_LE(open_fds(), before + 2) << "one descriptor per cached inode";
  // Still fully usable through the handles.
  auto e = p->lookup(d->ino, "7");
  ASSERT_TRUE(e);
  auto fh = p->open(e->ino, O_RDONLY);
  ASSERT_TRUE(fh);
  char c = 0;
  ASSERT_EQ(*p->read(e->ino, *fh, &c, 1, 0), 1u);
  EXPECT_EQ(c, '7');
  p->release(e->ino, *fh);
}

TEST_F(PassthroughFsTest, TopOfTheOpenFileLimitStaysFree) {
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = open_fds() + 200;
  ASSERT_LE(low.rlim_cur, saved.rlim_max);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  struct Restore {
    rlimit lim;
    ~Restore() { ::setrlimit(RLIMIT_NOFILE, &lim); }
  } restore{saved};

  PassthroughOptions o;
  o.reserved_fds = 64;
  auto p = fs(o);
  ASSERT_TRUE(p);
  auto d = p->lookup(p->root(), "d");
  ASSERT_TRUE(d);
  // A client holding files open until opening fails.
  std::vector<std::pair<Ino, std::uint64_t>> held;
  int err = 0;
  for (int i = 0; i < kFiles && err == 0; ++i) {
    auto e = p->lookup(d->ino, std::to_string(i));
    if (!e) {
      err = e.error();
      break;
    }
    auto fh = p->open(e->ino, O_RDONLY);
    if (fh) held.emplace_back(e->ino, *fh);
    else err = fh.error();
  }
  EXPECT_EQ(err, EMFILE);
  // The reserve is there for everyone else (the API server's accept).
  std::vector<int> spare;
  for (int i = 0; i < 60; ++i) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << "reserve exhausted after " << i;
    spare.push_back(fd);
  }
  for (int fd : spare) ::close(fd);
  for (auto [ino, fh] : held) p->release(ino, fh);
}

// Handles decode only on their own mount: a filesystem mounted inside the
// source, and a file bind-mounted on its own, must still be served.
TEST_F(PassthroughFsTest, MountsInsideTheSourceAreServed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount";
  std::string sub = dir_.file("src/sub"), file = dir_.file("src/bound"), other = dir_.file("other");
  stdfs::create_directories(sub);
  std::ofstream(file) << "";
  std::ofstream(other) << "bound";
  ASSERT_EQ(::mount("tmpfs", sub.c_str(), "tmpfs", 0, "size=1m"), 0) << std::strerror(errno);
  struct Unmount {
    std::vector<std::string> paths;
    ~Unmount() {
      for (const auto& p : paths) ::umount2(p.c_str(), MNT_DETACH);
    }
  } unmount{{sub}};
  std::ofstream(sub + "/inner") << "inner";
  ASSERT_EQ(::mount(other.c_str(), file.c_str(), nullptr, MS_BIND, nullptr), 0) << std::strerror(errno);
  unmount.paths.push_back(file);

  auto p = fs();
  ASSERT_TRUE(p);
  auto read_all = [&p](Ino ino) {
    auto fh = p->open(ino, O_RDONLY);
    if (!fh) return std::string("open: ") + std::strerror(fh.error());
    std::string buf(64, '\0');
    auto n = p->read(ino, *fh, buf.data(), buf.size(), 0);
    p->release(ino, *fh);
    buf.resize(n ? *n : 0);
    return buf;
  };
  auto s = p->lookup(p->root(), "sub");
  ASSERT_TRUE(s);
  auto inner = p->lookup(s->ino, "inner");
  ASSERT_TRUE(inner);
  EXPECT_EQ(read_all(inner->ino), "inner");
  EXPECT_TRUE(p->getattr(s->ino));
  auto b = p->lookup(p->root(), "bound");
  ASSERT_TRUE(b);
  EXPECT_EQ(read_all(b->ino), "bound");
  EXPECT_EQ(p->getattr(b->ino)->st_size, 5);
}

}  // namespace
}  // namespace nydus::fs
