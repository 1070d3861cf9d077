// Generated images read back through the library and compared with their
// source tree: every compression x digest x chunk-size combination, files
// from 0 bytes to 64 MiB with holes, xattrs, hardlinks, symlinks, special
// files, multi-block directories, readdir cookies, concurrency.
#include "nydus/storage/builder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "nydus/storage/image.h"
#include "nydus/storage/walk.h"
#include "util/raw_client.h"

namespace nydus::storage {
namespace {

void write_at(const std::string& path, std::uint64_t off, std::size_t len, std::uint8_t seed) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0) << path;
  std::vector<std::uint8_t> buf(len);
  for (std::size_t i = 0; i < len; ++i) buf[i] = std::uint8_t((i * 31 + seed) ^ (i >> 9));
  ASSERT_EQ(::pwrite(fd, buf.data(), len, off_t(off)), ssize_t(len));
  ::close(fd);
}

void truncate_to(const std::string& path, std::uint64_t size) { ASSERT_EQ(::truncate(path.c_str(), off_t(size)), 0); }

// A tree exercising every kind of entry. `big` adds a 64 MiB sparse file.
void make_tree(const std::string& root, bool big) {
  namespace fs = std::filesystem;
  fs::create_directories(root + "/a/b/c");
  fs::create_directories(root + "/many");
  std::ofstream(root + "/empty").flush();
  write_at(root + "/small", 0, 100, 1);
  write_at(root + "/exact4k", 0, 4096, 2);
  write_at(root + "/a/b/c/deep", 0, 70000, 3);
  // Holes: data islands in a 3 MiB + 17 file.
  write_at(root + "/holes", 0, 10000, 4);
  write_at(root + "/holes", (2u << 20) + 123, 5000, 5);
  truncate_to(root + "/holes", (3u << 20) + 17);
  // Repeated content (dedup) and an all-zero tail.
  write_at(root + "/repeat", 0, 8192, 6);
  write_at(root + "/repeat", 8192, 8192, 6);
  truncate_to(root + "/repeat", 5 * 4096 + 1);
  if (big) {
    write_at(root + "/big", 1u << 20, 4096, 7);
    write_at(root + "/big", (40u << 20) + 5, 70000, 8);
    write_at(root + "/big", (64u << 20) - 100, 100, 9);
  }
  for (int i = 0; i < 300; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "/many/entry_with_a_fairly_long_name_%03d", i);
    write_at(root + name, 0, std::size_t(i), std::uint8_t(i));
  }
  fs::create_symlink("a/b", root + "/link");
  fs::create_symlink(std::string(3000, 'x'), root + "/longlink");
  ASSERT_EQ(::link((root + "/small").c_str(), (root + "/small_hl").c_str()), 0);
  ASSERT_EQ(::link((root + "/small").c_str(), (root + "/a/small_hl2").c_str()), 0);
  ASSERT_EQ(::mkfifo((root + "/fifo").c_str(), 0640), 0);
  if (::geteuid() == 0) {
    ASSERT_EQ(::mknod((root + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    ASSERT_EQ(::mknod((root + "/blk").c_str(), S_IFBLK | 0600, makedev(259, 300)), 0);
    ASSERT_EQ(::chown((root + "/exact4k").c_str(), 70000, 70001), 0);
    ASSERT_EQ(::lsetxattr((root + "/a").c_str(), "trusted.t", "tv", 2, 0), 0);
  }
  write_at(root + "/mod.pyc", 0, 10, 10);
  ::chmod((root + "/small").c_str(), 04755);
  ASSERT_EQ(::lsetxattr((root + "/small").c_str(), "user.foo", "bar", 3, 0), 0);
  std::string big_value(1000, 'v');
  ASSERT_EQ(::lsetxattr((root + "/a/b").c_str(), "user.big", big_value.data(), big_value.size(), 0), 0);
  ASSERT_EQ(::lsetxattr((root + "/a/b").c_str(), "user.empty", "", 0, 0), 0);
}

std::map<std::string, std::string> source_xattrs(const std::string& path) {
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

// Compares the image with the source tree: names, attributes, xattrs, link
// targets and every byte of every regular file.
void compare_with_source(const Image& im, const std::string& src, bool all_extended) {
  std::set<std::string> seen;
  auto w = walk(im, [&](const std::string& path, const InodeAttr& a) -> Result<void> {
    seen.insert(path);
    std::string sp = src + (path == "/" ? "" : path);
    struct stat st;
    EXPECT_EQ(::lstat(sp.c_str(), &st), 0) << sp;
    EXPECT_EQ(a.mode, st.st_mode) << path;
    EXPECT_EQ(a.uid, st.st_uid) << path;
    EXPECT_EQ(a.gid, st.st_gid) << path;
    EXPECT_EQ(a.nlink, st.st_nlink) << path;
    if (!S_ISDIR(st.st_mode)) {
      EXPECT_EQ(a.size, std::uint64_t(st.st_size)) << path;
    }
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      EXPECT_EQ(a.rdev, st.st_rdev) << path;
    }
    if (all_extended || path.ends_with(".pyc") || st.st_uid > 65535) {
      EXPECT_EQ(a.mtime, std::uint64_t(st.st_mtim.tv_sec)) << path;
      EXPECT_EQ(a.mtime_nsec, std::uint32_t(st.st_mtim.tv_nsec)) << path;
    }
    auto names = im.listxattr(a.ino);
    EXPECT_TRUE(names);
    std::map<std::string, std::string> got;
    for (const auto& n : *names) {
      auto v = im.getxattr(a.ino, n);
      EXPECT_TRUE(v) << path << " " << n;
      got[n] = v ? *v : "";
    }
    EXPECT_EQ(got, source_xattrs(sp)) << path;
    if (S_ISLNK(st.st_mode)) {
      auto t = im.readlink(a.ino);
      EXPECT_TRUE(t);
      EXPECT_EQ(*t, std::filesystem::read_symlink(sp).string()) << path;
    }
    if (S_ISREG(st.st_mode)) {
      std::ifstream in(sp, std::ios::binary);
      std::vector<std::uint8_t> want(1 << 20), got_buf(1 << 20);
      std::uint64_t off = 0;
      while (off < std::uint64_t(st.st_size)) {
        in.read(reinterpret_cast<char*>(want.data()), std::streamsize(want.size()));
        std::size_t n = std::size_t(in.gcount());
        auto r = im.read(a.ino, off, got_buf);
        EXPECT_TRUE(r) << path << ": " << r.error().to_string();
        if (!r) break;
        EXPECT_EQ(*r, n) << path;
        EXPECT_TRUE(std::equal(want.begin(), want.begin() + std::ptrdiff_t(n), got_buf.begin())) << path << " @" << off;
        off += n;
      }
      // Unaligned read crossing a chunk boundary.
      if (st.st_size > 5000) {
        auto r = im.read(a.ino, std::uint64_t(st.st_size) - 4999, 10000);
        EXPECT_TRUE(r && r->size() == 4999) << path;
      }
    }
    return {};
  });
  ASSERT_TRUE(w) << w.error().to_string();
  std::set<std::string> want{"/"};
  for (const auto& e : std::filesystem::recursive_directory_iterator(src)) {
    want.insert(e.path().string().substr(src.size()));
  }
  EXPECT_EQ(seen, want);
}

std::unique_ptr<Image> open_built(const BuildResult& r, bool validate) {
  auto be = std::make_shared<MemoryBackend>();
  be->add(r.blob_id, r.blob);
  ImageOptions o;
  o.backend = be;
  o.digest_validate = validate;
  auto im = Image::from_bytes(r.bootstrap, o);
  EXPECT_TRUE(im) << im.error().to_string();
  return im ? std::move(*im) : nullptr;
}

struct Combo {
  Compressor comp;
  DigestAlgo digest;
  std::uint32_t chunk;
  bool big;
};

TEST(Builder, EveryCombinationMatchesTheSource) {
  testutil::TempDir dir;
  make_tree(dir.file("src"), false);
  testutil::TempDir bigdir;
  make_tree(bigdir.file("src"), true);
  for (auto comp : {Compressor::kNone, Compressor::kLz4Block, Compressor::kZstd}) {
    for (auto digest : {DigestAlgo::kBlake3, DigestAlgo::kSha256}) {
      for (std::uint32_t chunk : {4096u, 1u << 20}) {
        // The 64 MiB sparse file in two combinations (4 KiB and 1 MiB chunks) keeps CI time down.
        bool big = (comp == Compressor::kZstd && digest == DigestAlgo::kBlake3 && chunk == (1u << 20)) ||
                   (comp == Compressor::kNone && digest == DigestAlgo::kSha256 && chunk == 4096);
        SCOPED_TRACE(std::string(to_string(comp)) + "/" + to_string(digest) + "/" + std::to_string(chunk) +
                     (big ? "/big" : ""));
        BuildOptions o;
        o.compressor = comp;
        o.digester = digest;
        o.chunk_size = chunk;
        o.chunk_info_v2 = chunk == 4096;
        o.ci_compressor = comp;
        const std::string src = big ? bigdir.file("src") : dir.file("src");
        auto r = build_image(src, o);
        ASSERT_TRUE(r) << r.error().to_string();
        EXPECT_EQ(r->bootstrap.size() % 4096, 0u);
        auto im = open_built(*r, true);
        ASSERT_TRUE(im);
        EXPECT_EQ(im->blobs().at(0).compressor, comp);
        EXPECT_EQ(im->blobs().at(0).digester, digest);
        compare_with_source(*im, src, false);
      }
    }
  }
}

TEST(Builder, ExtendedInodesKeepMtime) {
  testutil::TempDir dir;
  make_tree(dir.file("src"), false);
  BuildOptions o;
  o.force_extended = true;
  auto r = build_image(dir.file("src"), o);
  ASSERT_TRUE(r) << r.error().to_string();
  auto im = open_built(*r, false);
  ASSERT_TRUE(im);
  compare_with_source(*im, dir.file("src"), true);
}

TEST(Builder, FilesWrittenToDisk) {
  testutil::TempDir dir;
  make_tree(dir.file("src"), false);
  std::filesystem::create_directories(dir.file("blobs"));
  BuildOptions o;
  o.prefetch_paths = {"/a/b/c/deep", "/small"};
  auto r = build_image_files(dir.file("src"), o, dir.file("boot"), dir.file("blobs"));
  ASSERT_TRUE(r) << r.error().to_string();
  config::LocalFsConfig cfg;
  cfg.dir = dir.file("blobs");
  ImageOptions io;
  io.backend = std::shared_ptr<BlobBackend>(std::move(*LocalFsBackend::create(cfg)));
  auto im = Image::open(dir.file("boot"), io);
  ASSERT_TRUE(im) << im.error().to_string();
  EXPECT_EQ((*im)->prefetch_nids().size(), 2u);
  auto deep = (*im)->lookup((*im)->root_ino(), "a");
  ASSERT_TRUE(deep);
  compare_with_source(**im, dir.file("src"), false);
}

TEST(Builder, ReaddirCookiesResume) {
  testutil::TempDir dir;
  make_tree(dir.file("src"), false);
  auto r = build_image(dir.file("src"), BuildOptions{});
  ASSERT_TRUE(r);
  auto im = open_built(*r, false);
  auto many = im->lookup(im->root_ino(), "many");
  ASSERT_TRUE(many);
  EXPECT_GT(many->size, 3 * 4096u);  // several blocks
  std::vector<std::string> all;
  ASSERT_TRUE(im->readdir(many->ino, 0, [&](const DirEntry& e) {
    all.emplace_back(e.name);
    return true;
  }));
  ASSERT_EQ(all.size(), 302u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  // Page through three entries at a time.
  std::vector<std::string> paged;
  std::uint64_t cookie = 0;
  for (;;) {
    int n = 0;
    ASSERT_TRUE(im->readdir(many->ino, cookie, [&](const DirEntry& e) {
      paged.emplace_back(e.name);
      cookie = e.next_offset;
      return ++n < 3;
    }));
    if (n == 0) break;
  }
  EXPECT_EQ(paged, all);
  for (const auto& name : all) {
    if (name == "." || name == "..") continue;
    EXPECT_TRUE(im->lookup(many->ino, name)) << name;
  }
  EXPECT_FALSE(im->lookup(many->ino, "entry_with_a_fairly_long_name_300"));
  EXPECT_FALSE(im->lookup(many->ino, "0"));
  EXPECT_FALSE(im->lookup(many->ino, "zzz"));
  // Errors on the wrong kind of inode.
  auto small = im->lookup(im->root_ino(), "small");
  ASSERT_TRUE(small);
  EXPECT_EQ(im->lookup(small->ino, "x").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(im->readlink(small->ino).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(im->read(many->ino, 0, 1).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(im->getxattr(small->ino, "user.none").error().code(), ErrorCode::kNotFound);
  auto hl = im->lookup(im->root_ino(), "small_hl");
  ASSERT_TRUE(hl);
  EXPECT_EQ(hl->ino, small->ino);
  EXPECT_EQ(hl->nlink, 3u);
}

TEST(Builder, ConcurrentReadersAgree) {
  testutil::TempDir dir;
  make_tree(dir.file("src"), false);
  BuildOptions o;
  o.chunk_size = 4096;
  auto r = build_image(dir.file("src"), o);
  ASSERT_TRUE(r);
  auto im = open_built(*r, true);
  auto holes = im->lookup(im->root_ino(), "holes");
  ASSERT_TRUE(holes);
  auto whole = im->read(holes->ino, 0, holes->size);
  ASSERT_TRUE(whole);
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (std::uint64_t off = std::uint64_t(t) * 1000; off < holes->size; off += 37 * 4096 + 11) {
        auto p = im->read(holes->ino, off, 9000);
        if (!p || *p != whole->substr(off, p->size())) ++bad;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Builder, BadOptions) {
  testutil::TempDir dir;
  BuildOptions o;
  o.chunk_size = 3000;
  EXPECT_EQ(build_image(dir.path(), o).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(build_image(dir.file("missing"), BuildOptions{}));
  // An empty tree has no blob.
  auto r = build_image(dir.path(), BuildOptions{});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->blob_id.empty());
  auto im = Image::from_bytes(r->bootstrap, {});
  ASSERT_TRUE(im) << im.error().to_string();
  EXPECT_TRUE((*im)->blobs().empty());
}

}  // namespace
}  // namespace nydus::storage
