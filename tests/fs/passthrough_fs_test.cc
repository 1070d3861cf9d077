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


// Node tables (live upgrade and failover, docs/upgrade.md): a second instance
// resuming the first one's table, as a successor does after kill -9, resolves
// the ids the first one gave out from the file alone.
class NodeTableTest : public PassthroughFsTest {
 protected:
  std::shared_ptr<PassthroughFs> with_table(bool resume) {
    PassthroughOptions o;
    o.node_table = table_;
    o.resume_node_table = resume;
    return fs(o);
  }
  Result<std::shared_ptr<PassthroughFs>> resume() {
    PassthroughOptions o;
    o.source = dir_.file("src");
    o.node_table = table_;
    o.resume_node_table = true;
    return PassthroughFs::create(std::move(o));
  }
  std::string read_all(PassthroughFs& p, Ino ino) {
    auto fh = p.open(ino, O_RDONLY);
    if (!fh) return std::string("open: ") + std::strerror(fh.error());
    char buf[64];
    auto n = p.read(ino, *fh, buf, sizeof buf, 0);
    p.release(ino, *fh);
    return n ? std::string(buf, *n) : std::string("read: ") + std::strerror(n.error());
  }
  std::string table_ = dir_.file("pt.nodes");
};

TEST_F(NodeTableTest, IdsResolveInASuccessorFromTheFileAlone) {
  auto a = with_table(false);
  ASSERT_TRUE(a);
  if (!a->uses_file_handles()) GTEST_SKIP() << "no file handles here (filesystem or CAP_DAC_READ_SEARCH)";
  ASSERT_EQ(a->node_table(), table_);
  auto d = a->lookup(a->root(), "d");
  auto f3 = a->lookup(d->ino, "3");
  auto f7 = a->lookup(d->ino, "7");
  ASSERT_TRUE(d && f3 && f7);
  auto b = with_table(true);  // `a` stays as a killed daemon leaves it: nothing cleaned up
  ASSERT_TRUE(b);
  EXPECT_EQ(b->inode_count(), 1u);  // nothing loaded up front
  EXPECT_EQ(read_all(*b, f7->ino), "7");
  auto st = b->getattr(f3->ino);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->st_ino, f3->attr.st_ino);
  EXPECT_TRUE(S_ISDIR(b->getattr(d->ino)->st_mode));
  // A repeated lookup answers the id the kernel holds; a new file gets a new one.
  EXPECT_EQ(b->lookup(b->root(), "d")->ino, d->ino);
  EXPECT_EQ(b->lookup(d->ino, "3")->ino, f3->ino);
  auto f9 = b->lookup(d->ino, "9");
  ASSERT_TRUE(f9);
  EXPECT_NE(f9->ino, d->ino);
  EXPECT_NE(f9->ino, f3->ino);
  EXPECT_NE(f9->ino, f7->ino);
  // Ids never given out, and the root's, are not found in the table.
  EXPECT_EQ(b->getattr(f9->ino + 100).error(), ESTALE);
  EXPECT_EQ(b->getattr(Ino{1} << 50).error(), ESTALE);
}

TEST_F(NodeTableTest, ForgottenIdsAreClearedAndReusedSoTheFileStaysSmall) {
  auto a = with_table(false);
  ASSERT_TRUE(a);
  if (!a->uses_file_handles()) GTEST_SKIP() << "no file handles here (filesystem or CAP_DAC_READ_SEARCH)";
  auto d = a->lookup(a->root(), "d");
  ASSERT_TRUE(d);
  Ino first = 0;
  for (int i = 0; i < kFiles; ++i) {
    auto e = a->lookup(d->ino, std::to_string(i));
    ASSERT_TRUE(e) << i;
    if (i == 0) first = e->ino;
    EXPECT_EQ(e->ino, first) << "a forgotten id is reused";
    EXPECT_TRUE(a->forget(e->ino, 1));
  }
  EXPECT_LE(stdfs::file_size(table_), 4u * 256) << "header and two records";
  auto b = with_table(true);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->getattr(first).error(), ESTALE) << "forgotten: its record is cleared";
  EXPECT_TRUE(b->getattr(d->ino));
  b->adopt_node_table();
  EXPECT_EQ(b->lookup(d->ino, "5")->ino, first) << "the successor reuses cleared records too";
}

// The kernel forgets ids a successor never needed (it drops inodes it cached
// from the previous daemon): their records are cleared and reused too, or
// they would stay until unmount.
TEST_F(NodeTableTest, IdsForgottenBeforeTheSuccessorUsedThemAreCleared) {
  auto a = with_table(false);
  ASSERT_TRUE(a);
  if (!a->uses_file_handles()) GTEST_SKIP() << "no file handles here (filesystem or CAP_DAC_READ_SEARCH)";
  auto d = a->lookup(a->root(), "d");
  auto f5 = a->lookup(d->ino, "5");
  ASSERT_TRUE(d && f5);
  auto b = with_table(true);
  ASSERT_TRUE(b);
  b->adopt_node_table();
  EXPECT_FALSE(b->forget(f5->ino, 1)) << "not an inode of this process";
  EXPECT_FALSE(b->forget(f5->ino + 50, 1)) << "never given out: nothing to clear";
  EXPECT_EQ(with_table(true)->getattr(f5->ino).error(), ESTALE);
  EXPECT_EQ(b->lookup(d->ino, "6")->ino, f5->ino) << "the cleared id is reused";
  EXPECT_EQ(stdfs::file_size(table_), 256u * (f5->ino)) << "no record past the last id";
}

TEST_F(NodeTableTest, BadTablesAndRecordsAreCleanErrors) {
  EXPECT_FALSE(resume()) << "no table";
  std::ofstream(table_) << "";
  EXPECT_EQ(resume().error().code(), ErrorCode::kCorrupt) << "empty";
  std::ofstream(table_) << std::string(4096, '\xab');
  EXPECT_EQ(resume().error().code(), ErrorCode::kCorrupt) << "garbage";
  stdfs::remove(table_);

  auto a = with_table(false);
  ASSERT_TRUE(a);
  if (!a->uses_file_handles()) GTEST_SKIP() << "no file handles here (filesystem or CAP_DAC_READ_SEARCH)";
  auto d = a->lookup(a->root(), "d");
  std::vector<Ino> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(a->lookup(d->ino, std::to_string(i))->ino);
  // Record k of id 2 + k sits at 256 * (k + 1).
  auto patch = [&](Ino id, std::size_t at, char byte) {
    std::fstream f(table_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(256 * (id - 1) + at));
    f.put(byte);
  };
  patch(ids[0], 100, '\x5a');  // a flipped byte (inside the handle)
  {
    std::ifstream in(table_, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), {});
    std::ofstream out(table_, std::ios::in | std::ios::out | std::ios::binary);
    out.seekp(static_cast<std::streamoff>(256 * (ids[2] - 1)));
    out << all.substr(256 * (ids[1] - 1), 256);  // id 1's record at id 2's place
  }
  stdfs::resize_file(table_, 256 * ids[3] - 100);  // the last record cut short
  auto b = resume();
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ((*b)->getattr(ids[0]).error(), ESTALE);
  EXPECT_EQ(read_all(**b, ids[1]), "1");
  EXPECT_EQ((*b)->getattr(ids[2]).error(), ESTALE);
  EXPECT_EQ((*b)->getattr(ids[3]).error(), ESTALE);
  EXPECT_EQ((*b)->getattr(d->ino)->st_ino, d->attr.st_ino);
}

}  // namespace
}  // namespace nydus::fs
