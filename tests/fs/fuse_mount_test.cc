// End-to-end tests of the fs layer through a real FUSE mount: PseudoFs +
// PassthroughFs served by FuseServer at a temporary directory.
//
// Needs root and /dev/fuse; otherwise every test is skipped with the reason.
// Every mount is torn down by FuseServer::stop() and, should a test abort
// midway, by MountGuard (umount2 MNT_DETACH).
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "nydus/fs/fuse_server.h"
#include "nydus/fs/passthrough_fs.h"
#include "nydus/fs/pseudo_fs.h"
#include "util/raw_client.h"

namespace nydus::fs {
namespace {

namespace stdfs = std::filesystem;
using testutil::TempDir;
using namespace std::chrono_literals;

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

struct MountGuard {
  std::string path;
  ~MountGuard() {
    if (!path.empty() && is_mountpoint(path)) ::umount2(path.c_str(), MNT_DETACH);
  }
};

void write_file(const std::string& path, const std::string& data, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary) << data;
  ::chmod(path.c_str(), mode);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string pattern(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// A source tree with regular files of several sizes and modes, a subdirectory,
// a symlink, a hard link and extended attributes.
void make_tree(const std::string& root, unsigned seed) {
  stdfs::create_directories(root + "/sub/deep");
  write_file(root + "/empty", "");
  write_file(root + "/small", "hello " + std::to_string(seed), 0640);
  write_file(root + "/big", pattern(300000 + seed, seed), 0755);
  write_file(root + "/sub/file", pattern(5000, seed + 1), 0600);
  write_file(root + "/sub/deep/x", pattern(70000, seed + 2), 0444);
  ::symlink("sub/file", (root + "/link").c_str());
  ::symlink("/nonexistent/target", (root + "/dangling").c_str());
  ::link((root + "/small").c_str(), (root + "/hardlink").c_str());
  ::chmod((root + "/sub").c_str(), 0750);
  std::string v = "value-" + std::to_string(seed);
  ::setxattr((root + "/small").c_str(), "user.test", v.data(), v.size(), 0);
  ::setxattr((root + "/sub").c_str(), "user.dir", "d", 1, 0);
}

std::map<std::string, std::string> xattrs_of(const std::string& path) {
  std::map<std::string, std::string> out;
  char names[4096];
  ssize_t n = ::llistxattr(path.c_str(), names, sizeof names);
  for (ssize_t i = 0; i < n;) {
    std::string name(names + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    if (name.rfind("user.", 0) != 0) continue;  // security.* labels differ between filesystems
    char val[4096];
    ssize_t m = ::lgetxattr(path.c_str(), name.c_str(), val, sizeof val);
    out[name] = m < 0 ? "<err>" : std::string(val, static_cast<std::size_t>(m));
  }
  return out;
}

// Compares every entry of `src` with the same path under `mnt`: type, mode,
// size, uid/gid, symlink target, bytes and user xattrs. Returns the count compared.
int compare_trees(const std::string& src, const std::string& mnt) {
  int count = 0;
  for (const auto& e : stdfs::recursive_directory_iterator(src)) {
    std::string rel = e.path().lexically_relative(src).string();
    std::string a = e.path().string(), b = mnt + "/" + rel;
    SCOPED_TRACE(rel);
    struct stat sa {}, sb {};
    EXPECT_EQ(::lstat(a.c_str(), &sa), 0);
    EXPECT_EQ(::lstat(b.c_str(), &sb), 0) << std::strerror(errno);
    EXPECT_EQ(sa.st_mode, sb.st_mode);
    EXPECT_EQ(sa.st_uid, sb.st_uid);
    EXPECT_EQ(sa.st_gid, sb.st_gid);
    EXPECT_EQ(sa.st_ino, sb.st_ino);
    if (S_ISREG(sa.st_mode)) {
      EXPECT_EQ(sa.st_size, sb.st_size);
      EXPECT_EQ(sa.st_nlink, sb.st_nlink);
      EXPECT_TRUE(read_all(a) == read_all(b));
    }
    if (S_ISLNK(sa.st_mode)) {
      EXPECT_EQ(stdfs::read_symlink(a), stdfs::read_symlink(b));
    } else {
      EXPECT_EQ(xattrs_of(a), xattrs_of(b));
    }
    ++count;
  }
  return count;
}

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : stdfs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

class FuseMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = fuse_unavailable(); !why.empty()) GTEST_SKIP() << why;
    mnt_ = dir_.file("mnt");
    stdfs::create_directories(mnt_);
    for (unsigned i = 1; i <= 3; ++i) make_tree(src(i), i);
    guard_.path = mnt_;
    FuseServerOptions o;
    o.threads = 4;
    o.entry_timeout = 60;  // long caches: counts below are exact, remount must invalidate
    o.attr_timeout = 60;
    auto s = FuseServer::start(pseudo_, mnt_, o);
    ASSERT_TRUE(s) << s.error().to_string();
    server_ = std::move(*s);
  }
  void TearDown() override {
    if (server_) server_->stop();
    if (!mnt_.empty()) {
      EXPECT_FALSE(is_mountpoint(mnt_)) << "mount left behind";
    }
  }

  std::string src(unsigned i) const { return dir_.file("src" + std::to_string(i)); }

  std::shared_ptr<FsMetrics> attach(const std::string& mp, unsigned i, FsMetricsOptions mo = {},
                                    std::function<int(Ino)> hook = {}) {
    auto fs = PassthroughFs::create({src(i), std::move(hook)});
    EXPECT_TRUE(fs);
    auto m = std::make_shared<FsMetrics>(mp, mo);
    auto r = pseudo_.attach(mp, *fs, m);
    EXPECT_TRUE(r) << r.error().to_string();
    return m;
  }

  TempDir dir_;
  std::string mnt_;
  MountGuard guard_;
  std::vector<std::string> events_;
  std::mutex events_mu_;
  PseudoFs pseudo_{[this](std::string e) {
    std::lock_guard lock(events_mu_);
    events_.push_back(std::move(e));
  }};
  std::unique_ptr<FuseServer> server_;
};

TEST_F(FuseMountTest, TwoPassthroughInstancesMatchTheirSources) {
  attach("/snap-1", 1);
  attach("/a/b", 2);
  EXPECT_GE(server_->fuse_fd(), 0);
  EXPECT_EQ(names_in(mnt_), (std::set<std::string>{"a", "snap-1"}));
  EXPECT_TRUE(server_->initialized());  // the first request waited for INIT
  EXPECT_EQ(names_in(mnt_ + "/a"), (std::set<std::string>{"b"}));
  EXPECT_EQ(compare_trees(src(1), mnt_ + "/snap-1"), 10);
  EXPECT_EQ(compare_trees(src(2), mnt_ + "/a/b"), 10);
  EXPECT_EQ(names_in(src(1) + "/sub"), names_in(mnt_ + "/snap-1/sub"));
  EXPECT_EQ(read_all(mnt_ + "/snap-1/link"), read_all(src(1) + "/sub/file"));
  struct stat st {};
  EXPECT_EQ(::stat((mnt_ + "/snap-1/dangling").c_str(), &st), -1);
  char buf[16];
  EXPECT_EQ(::getxattr((mnt_ + "/snap-1/small").c_str(), "user.none", buf, sizeof buf), -1);
  EXPECT_EQ(errno, ENODATA);
  EXPECT_EQ(::getxattr((mnt_ + "/snap-1/small").c_str(), "user.test", buf, 2), -1);
  EXPECT_EQ(errno, ERANGE);
  EXPECT_EQ(::getxattr((mnt_ + "/snap-1/small").c_str(), "user.test", nullptr, 0), 7);
}

TEST_F(FuseMountTest, WritesAreRefusedWithErofs) {
  attach("/s", 1);
  EXPECT_EQ(::open((mnt_ + "/s/small").c_str(), O_WRONLY), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::open((mnt_ + "/s/new").c_str(), O_CREAT | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::mkdir((mnt_ + "/s/d").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::unlink((mnt_ + "/s/small").c_str()), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::setxattr((mnt_ + "/s/small").c_str(), "user.x", "1", 1, 0), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::mkdir((mnt_ + "/pseudo").c_str(), 0755), -1);
  struct statvfs sv {};
  ASSERT_EQ(::statvfs((mnt_ + "/s").c_str(), &sv), 0);
  EXPECT_TRUE(sv.f_flag & ST_RDONLY);
}

// Issue #11 item 5: the kernel asks for the first batch of a listing with
// READDIRPLUS and for later ones with READDIR; each entry of those needs its
// inode number too, or glibc skips it as deleted.
TEST_F(FuseMountTest, PseudoDirectoryListsEveryOneOfManyMountpoints) {
  constexpr unsigned kMounts = kMaxInstances;  // every slot; far more than one batch
  std::set<std::string> want;
  for (unsigned i = 0; i < kMounts; ++i) {
    std::string name = "snapshot-with-a-long-name-" + std::to_string(i);
    want.insert(name);
    attach("/many/" + name, 1 + i % 3);
  }
  for (int pass = 0; pass < 2; ++pass) {  // the second with every entry cached
    SCOPED_TRACE(pass);
    DIR* d = ::opendir((mnt_ + "/many").c_str());
    ASSERT_NE(d, nullptr) << std::strerror(errno);
    std::set<std::string> got;
    std::map<std::string, ino_t> inos;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      got.insert(name);
      inos[name] = e->d_ino;
      EXPECT_NE(e->d_ino, 0u) << name;
    }
    ::closedir(d);
    EXPECT_EQ(got.size(), want.size());
    EXPECT_EQ(got, want);
    for (const auto& [name, ino] : inos) {
      struct stat st {};
      ASSERT_EQ(::stat((mnt_ + "/many/" + name).c_str(), &st), 0) << name;
      EXPECT_EQ(st.st_ino, ino) << name << ": d_ino is what stat shows";
    }
  }
}

// Issue #11 item 4: an unmount from outside ends the session; the server
// says so once (it would otherwise go on as if serving) and stops cleanly.
TEST_F(FuseMountTest, UnmountFromOutsideIsReportedOnce) {
  server_->stop();
  server_.reset();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> ends;
  FuseServerOptions o;
  o.threads = 4;
  o.on_session_end = [&](const std::string& why) {
    std::lock_guard lock(mu);
    ends.push_back(why);
    cv.notify_all();
  };
  auto s = FuseServer::start(pseudo_, mnt_, o);
  ASSERT_TRUE(s) << s.error().to_string();
  server_ = std::move(*s);
  attach("/x", 1);
  EXPECT_EQ(read_all(mnt_ + "/x/small"), "hello 1");
  ASSERT_EQ(::umount2(mnt_.c_str(), 0), 0) << std::strerror(errno);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 60s, [&] { return !ends.empty(); })) << "the end of the session went unnoticed";
  }
  EXPECT_TRUE(server_->session_lost());
  server_->stop();  // joins workers that have all left; never hangs
  std::lock_guard lock(mu);
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_NE(ends[0].find("FUSE session at " + mnt_ + " ended by the kernel (No such device)"), std::string::npos)
      << ends[0];
}

TEST_F(FuseMountTest, RootInstanceRemountAndUmount) {
  attach("/", 1);
  EXPECT_EQ(read_all(mnt_ + "/small"), "hello 1");
  EXPECT_EQ(compare_trees(src(1), mnt_), 10);
  auto fs2 = PassthroughFs::create({src(2), {}});
  ASSERT_TRUE(fs2);
  ASSERT_TRUE(pseudo_.swap("/", *fs2, std::make_shared<FsMetrics>("/", FsMetricsOptions{})));
  EXPECT_EQ(read_all(mnt_ + "/small"), "hello 2");  // cached entries were invalidated
  EXPECT_EQ(compare_trees(src(2), mnt_), 10);
  ASSERT_TRUE(pseudo_.detach("/"));
  EXPECT_TRUE(names_in(mnt_).empty());
  struct stat st {};
  EXPECT_EQ(::stat((mnt_ + "/small").c_str(), &st), -1);
}

TEST_F(FuseMountTest, RemountSwapsAndUmountDetaches) {
  attach("/x", 1);
  std::string f = mnt_ + "/x/small";
  EXPECT_EQ(read_all(f), "hello 1");
  int keep = ::open((mnt_ + "/x/big").c_str(), O_RDONLY);  // an open file survives remount/umount
  ASSERT_GE(keep, 0);
  int dirfd = ::open((mnt_ + "/x/sub").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dirfd, 0);

  auto fs2 = PassthroughFs::create({src(2), {}});
  ASSERT_TRUE(fs2);
  ASSERT_TRUE(pseudo_.swap("/x", *fs2, std::make_shared<FsMetrics>("/x", FsMetricsOptions{})));
  EXPECT_EQ(read_all(f), "hello 2");
  EXPECT_EQ(compare_trees(src(2), mnt_ + "/x"), 10);
  // Inodes of the replaced instance are stale.
  struct stat st {};
  EXPECT_EQ(::fstatat(dirfd, "file", &st, 0), -1);
  EXPECT_TRUE(errno == ESTALE || errno == ENOENT) << std::strerror(errno);

  ASSERT_TRUE(pseudo_.detach("/x"));
  EXPECT_EQ(::stat(f.c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_TRUE(names_in(mnt_).empty());
  char buf[100];
  EXPECT_EQ(::pread(keep, buf, sizeof buf, 0), 100);  // lazy-unmount semantics for open files
  EXPECT_EQ(std::string(buf, 100), pattern(300001, 1).substr(0, 100));
  ::close(keep);
  ::close(dirfd);
  EXPECT_FALSE(pseudo_.detach("/x"));
}

TEST_F(FuseMountTest, ReadersUnaffectedByConcurrentMountUmount) {
  attach("/stable", 1);
  const std::string big = pattern(300001, 1), x = pattern(70000, 3);
  std::atomic<bool> done{false};
  std::atomic<int> errors{0}, reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      while (!done.load()) {
        if (t % 2 == 0) {
          if (read_all(mnt_ + "/stable/big") != big) errors++;
        } else {
          if (read_all(mnt_ + "/stable/sub/deep/x") != x) errors++;
          struct stat st {};
          if (::stat((mnt_ + "/stable/small").c_str(), &st) != 0) errors++;
          DIR* d = ::opendir((mnt_ + "/stable/sub").c_str());
          if (!d) errors++;
          else ::closedir(d);
        }
        reads++;
      }
    });
  }
  // At least 100 rounds, and more until the readers have done some reads
  // meanwhile: on a loaded machine 100 rounds can end before a reader's first.
  auto guard = std::chrono::steady_clock::now() + testutil::kHangGuard;
  for (int i = 0; i < 100 || (reads.load() < 8 && std::chrono::steady_clock::now() < guard); ++i) {
    auto fs = PassthroughFs::create({src(2 + i % 2), {}});
    if (!fs || !pseudo_.attach("/churn", *fs, std::make_shared<FsMetrics>("/churn", FsMetricsOptions{}))) {
      ADD_FAILURE() << "attach failed at round " << i;
      break;
    }
    if (i % 10 == 0) {
      EXPECT_EQ(read_all(mnt_ + "/churn/small"), "hello " + std::to_string(2 + i % 2));
    }
    if (!pseudo_.detach("/churn")) {
      ADD_FAILURE() << "detach failed at round " << i;
      break;
    }
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GE(reads.load(), 8);
  struct stat st {};
  EXPECT_EQ(::stat((mnt_ + "/churn").c_str(), &st), -1);
}

TEST_F(FuseMountTest, MetricsCountRealOperationsExactly) {
  auto m = attach("/m", 1, FsMetricsOptions{true, true, true});
  const std::string d = mnt_ + "/m";
  struct stat st {};
  ASSERT_EQ(::stat(d.c_str(), &st), 0);                       // Lookup of the instance root: hit
  ASSERT_EQ(::stat((d + "/big").c_str(), &st), 0);            // Lookup hit (ino 2)
  EXPECT_EQ(::stat((d + "/missing").c_str(), &st), -1);       // Lookup error
  EXPECT_EQ(::stat((d + "/missing").c_str(), &st), -1);       // again: errors are not cached
  char buf[256];
  EXPECT_EQ(::readlink((d + "/link").c_str(), buf, sizeof buf), 8);  // Lookup hit + Readlink hit
  EXPECT_EQ(::getxattr((d + "/small").c_str(), "user.test", buf, sizeof buf), 7);  // Lookup + Getxattr hit
  EXPECT_EQ(::getxattr((d + "/small").c_str(), "user.none", buf, sizeof buf), -1);  // Getxattr error
  EXPECT_GT(::listxattr((d + "/small").c_str(), buf, sizeof buf), 0);                // Listxattr hit
  struct statvfs sv {};
  EXPECT_EQ(::statvfs((d + "/small").c_str(), &sv), 0);  // Statfs hit

  int fd = ::open((d + "/big").c_str(), O_RDONLY | O_DIRECT);  // Open hit; O_DIRECT: one FUSE read per pread
  ASSERT_GE(fd, 0) << std::strerror(errno);
  std::vector<char> data(20000);
  EXPECT_EQ(::pread(fd, data.data(), 100, 0), 100);      // bucket 0
  EXPECT_EQ(::pread(fd, data.data(), 4096, 4096), 4096);  // bucket 2
  EXPECT_EQ(::pread(fd, data.data(), 20000, 8192), 20000);  // bucket 3
  EXPECT_EQ(m->snapshot().nr_opens, 1u);
  ::close(fd);
  ASSERT_TRUE(testutil::eventually([&] { return m->fop_hits(Fop::kRelease) > 0; }));  // release is async

  const FsMetricsSnapshot j = m->snapshot();
  const std::vector<std::uint64_t> hits(j.fop_hits.begin(), j.fop_hits.end());
  const std::vector<std::uint64_t> errs(j.fop_errors.begin(), j.fop_errors.end());
  //                                   Getattr Readlink Open Release Read Statfs Getxattr Listxattr Opendir Lookup Readdir Readdirplus Access Forget BatchForget
  EXPECT_EQ(hits, (std::vector<std::uint64_t>{0, 1, 1, 1, 3, 1, 1, 1, 0, 4, 0, 0, 0, 0, 0}));
  EXPECT_EQ(errs, (std::vector<std::uint64_t>{0, 0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 0, 0}));
  EXPECT_EQ(j.nr_opens, 0u);
  EXPECT_EQ(j.data_read, 100u + 4096u + 20000u);
  EXPECT_EQ(j.block_count_read, (std::array<std::uint64_t, kBucketCount>{1, 0, 1, 1, 0, 0, 0, 0}));
  EXPECT_EQ(std::accumulate(j.read_latency_dist.begin(), j.read_latency_dist.end(), std::uint64_t{0}), 3u);
  EXPECT_EQ(j.id, "/m");
  EXPECT_TRUE(j.options.files);

  // Per file (instance inode numbers: root 1, then in lookup order: big 2, link 3, small 4).
  std::map<std::uint64_t, FileMetricsSnapshot> files;
  for (const auto& f : m->files()) files[f.ino] = f;
  ASSERT_TRUE(files.count(2) && files.count(4)) << files.size() << " files";
  EXPECT_EQ(files[2].data_read, 100u + 4096u + 20000u);
  EXPECT_EQ(files[2].fop_hits[4], 3u);
  EXPECT_EQ(files[2].fop_hits[2], 1u);
  EXPECT_EQ(files[4].fop_errors[6], 1u);  // §10 #26: failures are errors, not hits
  EXPECT_EQ(files[4].fop_hits[6], 1u);
  EXPECT_EQ(m->take_latest_read_files(), (std::vector<std::uint64_t>{2}));
  EXPECT_TRUE(m->take_latest_read_files().empty());
  auto pat = m->access_patterns();
  ASSERT_EQ(pat.size(), 1u);
  EXPECT_EQ(pat[0].ino, 2u);
  EXPECT_EQ(pat[0].nr_read, 3u);
  EXPECT_GT(pat[0].first_access_secs, 1600000000u);

  // Listing: one opendir; readdir or readdirplus (the kernel picks) at least once.
  DIR* dp = ::opendir(d.c_str());
  ASSERT_NE(dp, nullptr);
  int n = 0;
  while (::readdir(dp)) ++n;
  ::closedir(dp);
  EXPECT_EQ(n, 9);
  const FsMetricsSnapshot listed = m->snapshot();
  EXPECT_EQ(listed.fop_hits[8], 1u);
  EXPECT_GE(listed.fop_hits[10] + listed.fop_hits[11], 1u);
}

TEST_F(FuseMountTest, ReadErrorsAreCountedAndReported) {
  auto m = attach("/e", 1, {}, [](Ino) { return EIO; });
  int fd = ::open((mnt_ + "/e/small").c_str(), O_RDONLY | O_DIRECT);
  ASSERT_GE(fd, 0);
  char buf[64];
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EIO);
  ::close(fd);
  EXPECT_EQ(m->fop_errors(Fop::kRead), 1u);
  EXPECT_EQ(m->fop_hits(Fop::kRead), 0u);
  EXPECT_EQ(m->snapshot().block_count_read, (std::array<std::uint64_t, kBucketCount>{}));
  std::lock_guard lock(events_mu_);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_NE(events_[0].find("/e: read inode 2"), std::string::npos) << events_[0];
  EXPECT_NE(events_[0].find("Input/output error"), std::string::npos) << events_[0];
}

TEST_F(FuseMountTest, InflightShowsARequestBlockedInTheSource) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  attach("/slow", 1, {}, [&](Ino) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
    return 0;
  });
  // Only the reads are ours: the kernel may have other requests in flight
  // (e.g. a lookup or getattr of the fresh mount) whenever it likes.
  auto reads_inflight = [&] {
    std::vector<InflightRequest> reads = server_->inflight();
    std::erase_if(reads, [](const InflightRequest& r) { return r.opcode != 15; });  // FUSE_READ
    return reads;
  };
  EXPECT_TRUE(reads_inflight().empty());
  std::thread reader([&] {
    int fd = ::open((mnt_ + "/slow/small").c_str(), O_RDONLY | O_DIRECT);
    char buf[16];
    EXPECT_EQ(::pread(fd, buf, sizeof buf, 0), 7);
    ::close(fd);
  });
  // Unblock and join the reader however this test ends.
  struct Finish {
    std::function<void()> f;
    ~Finish() { f(); }
  } finish{[&] {
    {
      std::lock_guard lock(mu);
      release = true;
    }
    cv.notify_all();
    if (reader.joinable()) reader.join();
  }};
  std::vector<InflightRequest> seen;
  ASSERT_TRUE(testutil::eventually([&] { return !(seen = reads_inflight()).empty(); }));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].inode >> kSlotShift, *pseudo_.slot_of("/slow"));
  EXPECT_EQ(seen[0].inode & kLocalMask, 2u);
  EXPECT_GT(seen[0].unique, 0u);
  EXPECT_GT(seen[0].timestamp_secs, 1600000000u);
  EXPECT_EQ(seen[0].opcode, 15u);  // its §4.8 JSON: tests/daemon/metrics_json_test.cc
  finish.f();
  finish.f = [] {};
  EXPECT_TRUE(testutil::eventually([&] { return reads_inflight().empty(); }));
}

}  // namespace
}  // namespace nydus::fs
