// RafsFs over generated images and the sample image, without FUSE: nydus's
// attribute rules, the Filesystem operations, xattrs on and off, and errors
// (missing blob, corrupt chunk, digest mismatch) as EIO with a reported reason.
#include "nydus/fs/rafs_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "nydus/storage/builder.h"
#include "nydus/storage/digest.h"
#include "util/raw_client.h"

namespace nydus::fs {
namespace {

using testutil::TempDir;
namespace stdfs = std::filesystem;

struct Built {
  storage::BuildResult result;
  std::shared_ptr<storage::MemoryBackend> backend = std::make_shared<storage::MemoryBackend>();
};

class RafsFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.file("src");
    stdfs::create_directories(src_ + "/d");
    ::chmod(src_.c_str(), 0700);
    std::ofstream(src_ + "/d/hello") << "hello, rafs\n";
    {
      std::ofstream f(src_ + "/big", std::ios::binary);
      for (int i = 0; i < 300000; ++i) f << i << '\n';
    }
    stdfs::create_symlink("d/hello", src_ + "/link");
    ASSERT_EQ(::lsetxattr((src_ + "/d/hello").c_str(), "user.k", "v", 1, 0), 0);
  }

  Built build(storage::BuildOptions o = {}) {
    Built b;
    auto r = storage::build_image(src_, o);
    EXPECT_TRUE(r) << r.error().to_string();
    b.result = std::move(*r);
    return b;
  }

  std::shared_ptr<RafsFs> open(std::vector<std::uint8_t> boot, std::shared_ptr<storage::BlobBackend> be,
                               RafsOptions o = {}) {
    o.image.backend = std::move(be);
    o.bootstrap = "test.boot";
    o.on_error = [this](std::string t) { events_.push_back(std::move(t)); };
    auto im = storage::Image::from_bytes(std::move(boot), o.image);
    EXPECT_TRUE(im) << im.error().to_string();
    if (!im) return nullptr;
    return RafsFs::from_image(std::move(*im), std::move(o));
  }

  std::shared_ptr<RafsFs> open(Built& b, RafsOptions o = {}) {
    b.backend->add(b.result.blob_id, b.result.blob);
    return open(b.result.bootstrap, b.backend, std::move(o));
  }

  static std::string read_all(RafsFs& fs, Ino ino, std::size_t size) {
    std::string out(size + 100, '\0');
    auto n = fs.read(ino, 0, out.data(), out.size(), 0);
    EXPECT_TRUE(n) << (n ? 0 : n.error());
    out.resize(n ? *n : 0);
    return out;
  }

  static std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  TempDir dir_;
  std::string src_;
  std::vector<std::string> events_;
};

TEST_F(RafsFsTest, OperationsMatchTheSourceTree) {
  auto b = build();
  auto fs = open(b, RafsOptions{.enable_xattr = true});
  ASSERT_TRUE(fs);
  const Ino root = fs->root();
  EXPECT_EQ(root, fs->image().root_ino() + 1);  // local 0 is reserved: nid + 1

  auto d = fs->lookup(root, "d");
  ASSERT_TRUE(d);
  EXPECT_TRUE(S_ISDIR(d->attr.st_mode));
  EXPECT_EQ(d->attr.st_ino + 1, d->ino);  // st_ino is the nid, as the kernel reports it
  auto hello = fs->lookup(d->ino, "hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->attr.st_size, 12);
  EXPECT_EQ(read_all(*fs, hello->ino, 12), "hello, rafs\n");

  auto big = fs->lookup(root, "big");
  ASSERT_TRUE(big);
  EXPECT_EQ(read_all(*fs, big->ino, std::size_t(big->attr.st_size)), slurp(src_ + "/big"));
  // A read across a chunk boundary, and past the end.
  std::string part(10, '\0');
  auto n = fs->read(big->ino, 0, part.data(), part.size(), (1 << 20) - 5);
  ASSERT_TRUE(n);
  EXPECT_EQ(part, slurp(src_ + "/big").substr((1 << 20) - 5, 10));
  EXPECT_EQ(*fs->read(big->ino, 0, part.data(), part.size(), big->attr.st_size + 1), 0u);

  EXPECT_EQ(fs->lookup(root, "missing").error(), ENOENT);
  EXPECT_EQ(fs->lookup(hello->ino, "x").error(), ENOTDIR);
  auto link = fs->lookup(root, "link");
  ASSERT_TRUE(link);
  EXPECT_EQ(*fs->readlink(link->ino), "d/hello");
  EXPECT_EQ(fs->readlink(hello->ino).error(), EINVAL);

  EXPECT_EQ(fs->open(d->ino, O_RDONLY).error(), EISDIR);
  EXPECT_EQ(fs->open(hello->ino, O_RDWR).error(), EROFS);
  EXPECT_EQ(fs->opendir(hello->ino).error(), ENOTDIR);
  EXPECT_EQ(fs->access(hello->ino, W_OK).error(), EROFS);
  EXPECT_TRUE(fs->access(hello->ino, R_OK));

  std::vector<std::string> names;
  std::uint64_t resume = 0;
  ASSERT_TRUE(fs->readdir(root, 0, 0, [&](const DirEntry& e) {
    names.emplace_back(e.name);
    if (names.size() == 3) {
      resume = e.next_off;
      return false;
    }
    return true;
  }));
  ASSERT_TRUE(fs->readdir(root, 0, resume, [&](const DirEntry& e) {
    names.emplace_back(e.name);
    return true;
  }));
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "big", "d", "link"}));

  EXPECT_EQ(*fs->getxattr(hello->ino, "user.k"), "v");
  EXPECT_EQ(fs->getxattr(hello->ino, "user.none").error(), ENODATA);
  EXPECT_EQ(*fs->listxattr(hello->ino), std::string("user.k\0", 7));

  auto sv = fs->statfs(root);
  ASSERT_TRUE(sv);
  EXPECT_EQ(sv->f_bsize, 4096u);
  EXPECT_EQ(sv->f_files, b.result.inodes);
  EXPECT_TRUE(events_.empty());
}

TEST_F(RafsFsTest, NydusAttributeRules) {
  auto b = build();
  struct stat src_st {};
  ASSERT_EQ(::lstat((src_ + "/d/hello").c_str(), &src_st), 0);
  // With EXPLICIT_UID_GID (the generator sets it) owners are the image's.
  {
    auto fs = open(b, RafsOptions{.owner_uid = 4242, .owner_gid = 4343});
    auto root = fs->getattr(fs->root());
    ASSERT_TRUE(root);
    EXPECT_EQ(root->st_mode, S_IFDIR | 0755u) << "root permission bits are forced to 0755 (source has 0700)";
    auto hello = fs->lookup(fs->lookup(fs->root(), "d")->ino, "hello");
    EXPECT_EQ(hello->attr.st_uid, src_st.st_uid);
    EXPECT_EQ(hello->attr.st_gid, src_st.st_gid);
  }
  // Without it every inode is owned by the daemon (here: the configured owner),
  // and compact inodes' mtime 0 reads as the daemon's start time.
  auto boot = b.result.bootstrap;
  ASSERT_EQ(boot[1152] & 0x10, 0x10);
  boot[1152] &= std::uint8_t(~0x10);
  b.backend->add(b.result.blob_id, b.result.blob);
  RafsOptions o{.owner_uid = 4242, .owner_gid = 4343};
  o.start_time = {1700000000, 5};
  auto fs = open(boot, b.backend, o);
  ASSERT_TRUE(fs);
  auto hello = fs->lookup(fs->lookup(fs->root(), "d")->ino, "hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->attr.st_uid, 4242u);
  EXPECT_EQ(hello->attr.st_gid, 4343u);
  EXPECT_EQ(hello->attr.st_mtim.tv_sec, 1700000000);
  EXPECT_EQ(hello->attr.st_mtim.tv_nsec, 5);
  EXPECT_EQ(hello->attr.st_ctim.tv_sec, 1700000000);
  EXPECT_EQ(fs->getattr(fs->root())->st_uid, 4242u);
}

TEST_F(RafsFsTest, ExtendedInodesKeepTheirMtime) {
  storage::BuildOptions bo;
  bo.force_extended = true;
  auto b = build(bo);
  auto fs = open(b);
  struct stat src_st {};
  ASSERT_EQ(::lstat((src_ + "/big").c_str(), &src_st), 0);
  auto big = fs->lookup(fs->root(), "big");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->attr.st_mtim.tv_sec, src_st.st_mtim.tv_sec);
}

// Upstream parity: an image that has xattrs shows them whatever enable_xattr says.
TEST_F(RafsFsTest, XattrsOfAnImageThatHasThemAreShownEvenWithXattrsOff) {
  auto b = build();
  auto fs = open(b);  // enable_xattr defaults to false, as in ConfigV2
  ASSERT_NE(fs->image().super_block().flags & 0x20, 0u) << "HAS_XATTR";
  auto hello = fs->lookup(fs->lookup(fs->root(), "d")->ino, "hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(*fs->getxattr(hello->ino, "user.k"), "v");
  EXPECT_EQ(*fs->listxattr(hello->ino), std::string("user.k\0", 7));
  EXPECT_EQ(fs->getxattr(hello->ino, "user.none").error(), ENODATA);
}

TEST_F(RafsFsTest, XattrsOffAndNoneInTheImageMeansNone) {
  ASSERT_EQ(::lremovexattr((src_ + "/d/hello").c_str(), "user.k"), 0);
  auto b = build();
  auto fs = open(b);
  ASSERT_EQ(fs->image().super_block().flags & 0x20, 0u) << "HAS_XATTR";
  auto hello = fs->lookup(fs->lookup(fs->root(), "d")->ino, "hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(fs->getxattr(hello->ino, "user.k").error(), ENODATA);
  EXPECT_EQ(*fs->listxattr(hello->ino), "");
}

TEST_F(RafsFsTest, MissingBlobIsEioWithAReason) {
  auto b = build();
  auto fs = open(b.result.bootstrap, std::make_shared<storage::MemoryBackend>());
  ASSERT_TRUE(fs);
  auto big = fs->lookup(fs->root(), "big");
  ASSERT_TRUE(big) << "metadata needs no blob";
  char buf[4096];
  EXPECT_EQ(fs->read(big->ino, 0, buf, sizeof buf, 0).error(), EIO);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_NE(events_[0].find("read at 0 size 4096 of inode " + std::to_string(big->attr.st_ino)), std::string::npos)
      << events_[0];
  EXPECT_NE(events_[0].find(b.result.blob_id), std::string::npos) << events_[0];
  EXPECT_EQ(fs->lookup(fs->root(), "nothing").error(), ENOENT);
  EXPECT_EQ(events_.size(), 1u) << "a missing name is not an error event";
}

// Issue #11 item 6: any local user can make reads fail; each failure used to
// log a warning and push an event (22 MiB of log in 5 s).
TEST_F(RafsFsTest, RepeatedFailuresAreRateLimitedAndCounted) {
  std::ostringstream log;
  struct Restore {
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
    ~Restore() { spdlog::set_default_logger(previous); }
  } restore;
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  auto now = std::chrono::steady_clock::time_point{};
  RafsOptions o;
  o.report_clock = [&now] { return now; };
  auto b = build();
  auto fs = open(b.result.bootstrap, std::make_shared<storage::MemoryBackend>(), o);
  ASSERT_TRUE(fs);
  auto big = fs->lookup(fs->root(), "big");
  ASSERT_TRUE(big);
  char buf[4096];
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(fs->read(big->ino, 0, buf, sizeof buf, 0).error(), EIO);
  const std::size_t budget = RateLimiter::Options{}.budget;
  EXPECT_EQ(events_.size(), budget);
  auto lines = [&log] {
    std::string text = log.str();
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  };
  EXPECT_EQ(lines(), budget);

  now += RateLimiter::Options{}.interval;
  EXPECT_EQ(fs->read(big->ino, 0, buf, sizeof buf, 0).error(), EIO);  // every read still fails
  ASSERT_EQ(events_.size(), budget + 1);
  EXPECT_NE(events_.back().find("(" + std::to_string(1000 - budget) + " similar messages suppressed)"),
            std::string::npos)
      << events_.back();
  EXPECT_EQ(lines(), budget + 1);
}

TEST_F(RafsFsTest, CorruptChunkAndDigestMismatchAreEio) {
  for (auto comp : {storage::Compressor::kZstd, storage::Compressor::kNone}) {
    SCOPED_TRACE(int(comp));
    events_.clear();
    storage::BuildOptions bo;
    bo.compressor = comp;
    auto b = build(bo);
    auto blob = b.result.blob;
    blob[100] ^= 0x5a;  // inside the first chunk of "big"
    auto be = std::make_shared<storage::MemoryBackend>();
    be->add(b.result.blob_id, blob);
    RafsOptions o;
    o.image.digest_validate = true;
    auto fs = open(b.result.bootstrap, be, o);
    ASSERT_TRUE(fs);
    Ino big = 0, hello = 0;
    big = fs->lookup(fs->root(), "big")->ino;
    hello = fs->lookup(fs->lookup(fs->root(), "d")->ino, "hello")->ino;
    std::vector<char> buf(1 << 20);
    bool big_failed = !fs->read(big, 0, buf.data(), buf.size(), 0);
    bool hello_failed = !fs->read(hello, 0, buf.data(), buf.size(), 0);
    EXPECT_TRUE(big_failed || hello_failed) << "the flipped byte must be caught";
    EXPECT_FALSE(events_.empty());
    for (const auto& e : events_) EXPECT_NE(e.find("inode"), std::string::npos) << e;
  }
}

TEST(RafsFsOpen, BadBootstrapsAreErrors) {
  TempDir dir;
  std::ofstream(dir.file("junk")) << std::string(8192, 'x');
  auto junk = RafsFs::open(RafsOptions{.bootstrap = dir.file("junk")});
  ASSERT_FALSE(junk);
  EXPECT_EQ(junk.error().code(), ErrorCode::kCorrupt);
  auto missing = RafsFs::open(RafsOptions{.bootstrap = dir.file("nope")});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST(RafsFsSample, FilesMatchTheirPublishedHashes) {
  const std::string fixture = std::string(NYDUS_SOURCE_DIR) + "/../shared/fixtures/rafs-v6";
  if (::access((fixture + "/rafs-v6-2.2.boot").c_str(), R_OK) != 0) GTEST_SKIP() << "sample image absent: " << fixture;
  config::LocalFsConfig lc;
  lc.dir = fixture + "/blobs";
  auto be = storage::LocalFsBackend::create(lc);
  ASSERT_TRUE(be);
  RafsOptions o;
  o.bootstrap = fixture + "/rafs-v6-2.2.boot";
  o.image.backend = std::shared_ptr<storage::BlobBackend>(std::move(*be));
  o.image.digest_validate = true;
  auto fs = RafsFs::open(o);
  ASSERT_TRUE(fs) << fs.error().to_string();
  const std::pair<const char*, const char*> want[] = {
      {"lib.rs", "1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69"},
      {"sync_io.rs", "e629ab260ff0dc02a24648a3e0dd8c13a5daf233d535c330e3201925f5eeff96"}};
  for (const auto& [name, sha] : want) {
    auto e = (*fs)->lookup((*fs)->root(), name);
    ASSERT_TRUE(e) << name;
    std::string bytes(std::size_t(e->attr.st_size), '\0');
    auto n = (*fs)->read(e->ino, 0, bytes.data(), bytes.size(), 0);
    ASSERT_TRUE(n);
    ASSERT_EQ(*n, bytes.size());
    auto d = storage::sha256(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size())).value();
    EXPECT_EQ(storage::to_hex(d), sha) << name;
  }
  EXPECT_EQ((*fs)->lookup((*fs)->root(), "lib.rs")->attr.st_ino, 133u);
}

}  // namespace
}  // namespace nydus::fs
