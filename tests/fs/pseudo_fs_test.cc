// PseudoFs + PassthroughFs without FUSE: node ids, the lookup/forget
// invariant, stale ids, mount-tree rules.
#include "nydus/fs/pseudo_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "nydus/fs/passthrough_fs.h"
#include "util/raw_client.h"

namespace nydus::fs {
namespace {

using testutil::TempDir;
namespace stdfs = std::filesystem;

class PseudoFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stdfs::create_directories(dir_.file("src/d"));
    std::ofstream(dir_.file("src/f")) << "data";
    ::link(dir_.file("src/f").c_str(), dir_.file("src/hard").c_str());
    for (int i = 0; i < 5; ++i) std::ofstream(dir_.file("src/d/" + std::to_string(i))) << i;
  }
  std::shared_ptr<PassthroughFs> fs() {
    auto p = PassthroughFs::create({dir_.file("src"), {}});
    EXPECT_TRUE(p);
    return *p;
  }
  std::shared_ptr<FsMetrics> metrics(const std::string& id = "/") { return std::make_shared<FsMetrics>(id, FsMetricsOptions{}); }
  TempDir dir_;
};

TEST_F(PseudoFsTest, NormalizesMountpoints) {
  EXPECT_EQ(*PseudoFs::normalize("/"), "/");
  EXPECT_EQ(*PseudoFs::normalize("//a//b/"), "/a/b");
  EXPECT_FALSE(PseudoFs::normalize("a"));
  EXPECT_FALSE(PseudoFs::normalize(""));
  EXPECT_FALSE(PseudoFs::normalize("/a/../b"));
  EXPECT_FALSE(PseudoFs::normalize("/./b"));
}

// Issue #11 item 12: names no path can reach, or no JSON reply can carry,
// are refused with the reason (and without echoing the bytes).
TEST_F(PseudoFsTest, UnreachableMountpointNamesAreRefused) {
  auto error_of = [](std::string_view mp) {
    auto r = PseudoFs::normalize(mp);
    EXPECT_FALSE(r) << mp;
    return r ? std::string() : r.error().message();
  };
  EXPECT_EQ(error_of(std::string_view("/a\0b", 4)), "mountpoint contains a NUL byte (%00): no path can reach it");
  EXPECT_EQ(error_of("/a\xFF"), "mountpoint is not valid UTF-8");
  EXPECT_EQ(error_of("/\xC0\xAF"), "mountpoint is not valid UTF-8");  // an overlong "/"
  // Named, not `"/" + std::string(…)`: a temporary on the right trips g++ 12's
  // -Wrestrict false positive at -O3.
  const std::string long_name(256, 'n'), huge_name(4096, 'n');
  EXPECT_EQ(error_of("/" + long_name), "mountpoint /" + long_name + " has a component longer than 255 bytes");
  EXPECT_EQ(error_of("/" + huge_name), "mountpoint is longer than 4095 bytes");
  EXPECT_EQ(*PseudoFs::normalize("/" + std::string(255, 'n') + "/\xC3\xA9"), "/" + std::string(255, 'n') + "/\xC3\xA9");
  PseudoFs p;
  EXPECT_EQ(p.attach(std::string_view("/a\0b", 4), fs(), metrics()).error().code(), ErrorCode::kInvalidArgument);
}

// Issue #11 item 12: the 256th instance names the limit.
TEST_F(PseudoFsTest, TheInstanceLimitIsNamed) {
  PseudoFs p;
  auto shared = fs();
  for (int i = 0; i < 255; ++i) ASSERT_TRUE(p.attach("/s" + std::to_string(i), shared, metrics())) << i;
  auto r = p.attach("/one-too-many", shared, metrics());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "too many filesystem instances: the limit is 255 per daemon");
  ASSERT_TRUE(p.detach("/s7"));
  EXPECT_TRUE(p.attach("/one-too-many", shared, metrics())) << "a freed slot is used again";
}

// Issue #11 item 5: plain READDIR entries of a pseudo directory carry the
// inode number stat shows (glibc skips d_ino 0 as deleted).
TEST_F(PseudoFsTest, PseudoListingEntriesCarryTheirInodeNumbers) {
  PseudoFs p;
  ASSERT_TRUE(p.attach("/x/mounted", fs(), metrics()));
  ASSERT_TRUE(p.attach("/x/sub/deeper", fs(), metrics()));
  auto x = p.lookup(kRootNode, "x");
  ASSERT_TRUE(x);
  auto fh = p.opendir(x->node);
  ASSERT_TRUE(fh);
  std::map<std::string, std::uint64_t> inos;
  ASSERT_TRUE(p.readdir(x->node, *fh, 0, false, [&](const DirEntry& de, const NodeEntry*) {
    inos[std::string(de.name)] = de.d_ino;
    return true;
  }));
  p.releasedir(x->node, *fh);
  ASSERT_EQ(inos.size(), 4u);
  for (const auto& [name, ino] : inos) EXPECT_NE(ino, 0u) << name;
  struct stat src {};
  ASSERT_EQ(::stat(dir_.file("src").c_str(), &src), 0);
  EXPECT_EQ(inos["mounted"], src.st_ino) << "the instance root's inode, as stat shows it";
  EXPECT_EQ(inos["sub"], p.lookup(x->node, "sub")->attr.st_ino);
}

TEST_F(PseudoFsTest, MountTreeRules) {
  PseudoFs p;
  ASSERT_TRUE(p.attach("/a/b", fs(), metrics()));
  EXPECT_EQ(p.attach("/a/b", fs(), metrics()).error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(p.attach("/a/b/c", fs(), metrics()).error().code(), ErrorCode::kInvalidArgument);  // inside a mount
  EXPECT_EQ(p.attach("/a", fs(), metrics()).error().code(), ErrorCode::kInvalidArgument);      // above a mount
  ASSERT_TRUE(p.attach("/", fs(), metrics()));  // root coexists with others
  EXPECT_EQ(p.swap("/x", fs(), metrics()).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(p.detach("/a").error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(p.detach("/a/b"));
  EXPECT_FALSE(p.is_attached("/a/b"));
  // The pseudo directory "a" is gone with its last mount; "/" now resolves in the root instance.
  auto e = p.lookup(kRootNode, "a");
  EXPECT_FALSE(e);
  EXPECT_EQ(e.error(), ENOENT);
}

TEST_F(PseudoFsTest, NodeIdsCarrySlotAndEpochAndGoStale) {
  PseudoFs p;
  auto inst = fs();
  ASSERT_TRUE(p.attach("/s", inst, metrics("/s")));
  unsigned slot = *p.slot_of("/s");
  auto dir = p.lookup(kRootNode, "s");
  ASSERT_TRUE(dir);
  EXPECT_EQ(dir->node >> kSlotShift, slot);
  EXPECT_EQ(dir->node & kLocalMask, PassthroughFs::kRootIno);
  auto f = p.lookup(dir->node, "f");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->node >> kSlotShift, slot);
  EXPECT_EQ(inst->lookup_count(f->node & kLocalMask), 1u);
  auto h = p.lookup(dir->node, "hard");  // hard link: same instance inode
  ASSERT_TRUE(h);
  EXPECT_EQ(h->node, f->node);
  EXPECT_EQ(inst->lookup_count(f->node & kLocalMask), 2u);
  p.forget(f->node, 2);
  EXPECT_EQ(inst->lookup_count(f->node & kLocalMask), 0u);
  EXPECT_EQ(p.getattr(f->node).error(), ESTALE);  // freed at zero
  EXPECT_EQ(inst->inode_count(), 1u);             // only the pinned root
  p.forget(dir->node, 5);                        // the root is never freed
  EXPECT_TRUE(p.getattr(dir->node));

  auto f2 = p.lookup(dir->node, "f");
  ASSERT_TRUE(f2);
  ASSERT_TRUE(p.swap("/s", fs(), metrics("/s")));
  EXPECT_EQ(*p.slot_of("/s"), slot);
  EXPECT_EQ(p.getattr(f2->node).error(), ESTALE);  // old epoch
  EXPECT_EQ(p.lookup(f2->node, "x").error(), ESTALE);
  p.forget(f2->node, 1);  // harmless
  auto dir2 = p.lookup(kRootNode, "s");
  ASSERT_TRUE(dir2);
  EXPECT_NE(dir2->node, dir->node);
  ASSERT_TRUE(p.detach("/s"));
  EXPECT_EQ(p.getattr(dir2->node).error(), ESTALE);
  EXPECT_EQ(p.getattr(0xdead).error(), ESTALE);  // unknown pseudo id
}

TEST_F(PseudoFsTest, ReaddirPlusCountsLookupsAndForgetsUnconsumedEntries) {
  PseudoFs p;
  auto inst = fs();
  ASSERT_TRUE(p.attach("/", inst, metrics()));
  auto d = p.lookup(kRootNode, "d");
  ASSERT_TRUE(d);
  auto fh = p.opendir(d->node);
  ASSERT_TRUE(fh);
  int taken = 0;
  std::vector<std::uint64_t> nodes;
  auto r = p.readdir(d->node, *fh, 0, true, [&](const DirEntry& de, const NodeEntry* e) {
    if (taken == 4) return false;  // "buffer full" on the 5th entry
    ++taken;
    if (de.name != "." && de.name != "..") nodes.push_back(e->node);
    return true;
  });
  ASSERT_TRUE(r);
  p.releasedir(d->node, *fh);
  ASSERT_EQ(nodes.size(), 2u);
  // Counted: d (1) + 2 consumed entries; the refused one was forgotten again.
  EXPECT_EQ(inst->inode_count(), 1u + 1u + 2u);
  for (auto n : nodes) EXPECT_EQ(inst->lookup_count(n & kLocalMask), 1u);
}

// Issue #11 item 8: passthrough inode numbers are never reused, so per-file
// metrics kept after a forget multiplied with every forget/lookup cycle.
TEST_F(PseudoFsTest, PerFileMetricsFollowTheInodesLife) {
  PseudoFs p;
  auto m = std::make_shared<FsMetrics>("/", FsMetricsOptions{.files = true, .access_pattern = true});
  ASSERT_TRUE(p.attach("/", fs(), m));
  auto d = p.lookup(kRootNode, "d");
  ASSERT_TRUE(d);
  auto entries = [&m] { return m->files().size(); };
  for (int cycle = 0; cycle < 10; ++cycle) {
    std::vector<std::uint64_t> nodes;
    for (int i = 0; i < 5; ++i) {
      auto e = p.lookup(d->node, std::to_string(i));
      ASSERT_TRUE(e);
      nodes.push_back(e->node);
      auto fh = p.open(e->node, O_RDONLY);
      ASSERT_TRUE(fh);
      char c = 0;
      ASSERT_TRUE(p.read(e->node, *fh, &c, 1, 0));
      p.release(e->node, *fh);
    }
    EXPECT_EQ(entries(), 2u + 5u);  // root, d, the five files
    for (auto n : nodes) p.forget(n, 1);  // the kernel dropping its cache
    EXPECT_EQ(entries(), 2u) << "cycle " << cycle;
    EXPECT_EQ(m->access_patterns().size(), 0u);
  }
}

TEST_F(PseudoFsTest, PseudoDirectoriesListMountpoints) {
  PseudoFs p;
  ASSERT_TRUE(p.attach("/x/one", fs(), metrics()));
  ASSERT_TRUE(p.attach("/x/two", fs(), metrics()));
  auto x = p.lookup(kRootNode, "x");
  ASSERT_TRUE(x);
  EXPECT_TRUE(S_ISDIR(x->attr.st_mode));
  auto fh = p.opendir(x->node);
  ASSERT_TRUE(fh);
  std::vector<std::string> names;
  ASSERT_TRUE(p.readdir(x->node, *fh, 0, false, [&](const DirEntry& de, const NodeEntry*) {
    names.emplace_back(de.name);
    return true;
  }));
  p.releasedir(x->node, *fh);
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "one", "two"}));
  EXPECT_EQ(p.open(x->node, O_RDONLY).error(), EISDIR);
  EXPECT_EQ(p.access(x->node, W_OK).error(), EROFS);
}

// Issue #14 item 4: a file handle is checked like a node id. The fh of a
// released file or directory, a forged one, or a directory's fh given to read
// (and the reverse) answers EBADF; none reaches freed or foreign memory.
TEST_F(PseudoFsTest, StaleOrForgedFileHandlesAnswerEbadf) {
  PseudoFs p;
  ASSERT_TRUE(p.attach("/x/one", fs(), metrics()));
  auto x = p.lookup(kRootNode, "x");
  ASSERT_TRUE(x);
  auto one = p.lookup(x->node, "one");
  ASSERT_TRUE(one);
  auto f = p.lookup(one->node, "f");
  ASSERT_TRUE(f);
  auto list = [&](std::uint64_t node, std::uint64_t fh) {
    return p.readdir(node, fh, 0, false, [](const DirEntry&, const NodeEntry*) { return true; });
  };
  char buf[8];

  auto fh = p.open(f->node, O_RDONLY);
  ASSERT_TRUE(fh);
  auto dir = p.opendir(x->node);
  ASSERT_TRUE(dir);
  auto inst_dir = p.opendir(one->node);
  ASSERT_TRUE(inst_dir);
  ASSERT_TRUE(p.read(f->node, *fh, buf, sizeof(buf), 0));
  EXPECT_EQ(p.read(x->node, *dir, buf, sizeof(buf), 0).error(), EBADF) << "a directory's fh";
  EXPECT_EQ(p.read(one->node, *inst_dir, buf, sizeof(buf), 0).error(), EBADF) << "an instance directory's fh";
  EXPECT_EQ(list(f->node, *fh).error(), EBADF) << "a file's fh";
  p.release(x->node, *dir);  // the wrong kind: ignored, the listing stays open
  ASSERT_TRUE(list(x->node, *dir));

  p.release(f->node, *fh);
  p.releasedir(x->node, *dir);
  p.releasedir(one->node, *inst_dir);
  EXPECT_EQ(p.read(f->node, *fh, buf, sizeof(buf), 0).error(), EBADF) << "released";
  EXPECT_EQ(list(x->node, *dir).error(), EBADF) << "released";
  EXPECT_EQ(list(one->node, *inst_dir).error(), EBADF) << "released";
  p.release(f->node, *fh);  // a second release is ignored
  p.releasedir(x->node, *dir);

  // A new open may reuse the slot, but not the fh.
  auto again = p.open(f->node, O_RDONLY);
  ASSERT_TRUE(again);
  EXPECT_NE(*again, *fh);
  EXPECT_EQ(p.read(f->node, *fh, buf, sizeof(buf), 0).error(), EBADF);
  EXPECT_TRUE(p.read(f->node, *again, buf, sizeof(buf), 0));
  for (std::uint64_t forged : {std::uint64_t{0}, std::uint64_t{1}, *again + 1, *again ^ (std::uint64_t{1} << 40),
                               ~std::uint64_t{0}}) {
    EXPECT_EQ(p.read(f->node, forged, buf, sizeof(buf), 0).error(), EBADF) << forged;
    EXPECT_EQ(list(x->node, forged).error(), EBADF) << forged;
    p.release(f->node, forged);
  }
  EXPECT_TRUE(p.read(f->node, *again, buf, sizeof(buf), 0)) << "forged releases left the real handle alone";
  p.release(f->node, *again);
}

TEST_F(PseudoFsTest, PassthroughRefusesWritesAndEscapes) {
  auto inst = fs();
  EXPECT_EQ(inst->open(PassthroughFs::kRootIno, O_RDWR).error(), EROFS);
  EXPECT_EQ(inst->lookup(PassthroughFs::kRootIno, "..").error(), ENOENT);
  EXPECT_EQ(inst->lookup(PassthroughFs::kRootIno, "a/b").error(), ENOENT);
  auto f = inst->lookup(PassthroughFs::kRootIno, "f");
  ASSERT_TRUE(f);
  EXPECT_EQ(inst->open(f->ino, O_WRONLY).error(), EROFS);
  EXPECT_EQ(inst->access(f->ino, W_OK).error(), EROFS);
  EXPECT_TRUE(inst->access(f->ino, R_OK));
  auto fh = inst->open(f->ino, O_RDONLY);
  ASSERT_TRUE(fh);
  char buf[16];
  EXPECT_EQ(*inst->read(f->ino, *fh, buf, sizeof buf, 0), 4u);
  EXPECT_EQ(*inst->read(f->ino, *fh, buf, sizeof buf, 100), 0u);
  inst->release(f->ino, *fh);
  EXPECT_EQ(inst->readlink(f->ino).error(), EINVAL);
  EXPECT_EQ(PassthroughFs::create({dir_.file("src/f"), {}}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(PassthroughFs::create({dir_.file("nope"), {}}).error().code(), ErrorCode::kNotFound);
}

// Live upgrade: a successor re-attaches each instance at its saved slot and
// epoch, so the node ids the kernel holds name the same inodes.
TEST_F(PseudoFsTest, AttachAtKeepsTheSavedSlotAndEpoch) {
  PseudoFs p;
  ASSERT_TRUE(p.attach_at("/s", fs(), metrics("/s"), Placement{7, 300}));
  auto at = p.placement_of("/s");
  ASSERT_TRUE(at);
  EXPECT_EQ(at->slot, 7u);
  EXPECT_EQ(at->epoch, 300u);
  auto dir = p.lookup(kRootNode, "s");
  ASSERT_TRUE(dir);
  EXPECT_EQ(dir->node, (std::uint64_t{7} << kSlotShift) | (std::uint64_t{300} << kEpochShift) | PassthroughFs::kRootIno);
  EXPECT_EQ(p.attach_at("/t", fs(), metrics("/t"), Placement{7, 1}).error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(p.attach_at("/t", fs(), metrics("/t"), Placement{0, 1}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(p.attach_at("/t", fs(), metrics("/t"), Placement{8, 0}).error().code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(p.attach("/t", fs(), metrics("/t")));  // ordinary attaches still find a free slot
  EXPECT_NE(*p.slot_of("/t"), 7u);
  ASSERT_TRUE(p.swap("/s", fs(), metrics("/s")));
  EXPECT_EQ(p.placement_of("/s")->epoch, 301u);  // later swaps go on from the saved epoch
}

// The ids of nested mountpoints' pseudo directories come from a counter in
// attach order; a restore in another order (the saved state's) must give the
// kernel's ids back through Placement::dirs.
TEST_F(PseudoFsTest, RestoredNestedMountpointsKeepTheirPseudoDirectoryIds) {
  PseudoFs p;
  ASSERT_TRUE(p.attach("/z/a", fs(), metrics("/z/a")));
  ASSERT_TRUE(p.attach("/b/c/d", fs(), metrics("/b/c/d")));
  ASSERT_TRUE(p.attach("/z/e", fs(), metrics("/z/e")));
  auto z = p.lookup(kRootNode, "z");
  auto b = p.lookup(kRootNode, "b");
  ASSERT_TRUE(z && b);
  auto c = p.lookup(b->node, "c");
  ASSERT_TRUE(c);
  auto at_a = p.placement_of("/z/a"), at_d = p.placement_of("/b/c/d"), at_e = p.placement_of("/z/e");
  ASSERT_TRUE(at_a && at_d && at_e);
  EXPECT_EQ(at_d->dirs.size(), 3u);

  PseudoFs q;  // restored in another order
  ASSERT_TRUE(q.attach_at("/z/e", fs(), metrics("/z/e"), *at_e));
  ASSERT_TRUE(q.attach_at("/b/c/d", fs(), metrics("/b/c/d"), *at_d));
  ASSERT_TRUE(q.attach_at("/z/a", fs(), metrics("/z/a"), *at_a));
  EXPECT_EQ(q.lookup(kRootNode, "z")->node, z->node);
  EXPECT_EQ(q.lookup(kRootNode, "b")->node, b->node);
  EXPECT_EQ(q.lookup(b->node, "c")->node, c->node);  // the kernel's id of /b reaches its child
  EXPECT_EQ(q.getattr(c->node)->st_ino, c->attr.st_ino);
  // A later attach takes an id none of the restored ones uses.
  ASSERT_TRUE(q.attach("/y/x", fs(), metrics("/y/x")));
  auto y = q.lookup(kRootNode, "y");
  ASSERT_TRUE(y);
  for (auto id : {z->node, b->node, c->node}) EXPECT_NE(y->node, id);
}

// A file handle the kernel got from a previous daemon (or one naming another
// node) is reopened from the request's node id, never used as this process's.
TEST_F(PseudoFsTest, ForeignFileHandlesAreReopenedByNodeId) {
  PseudoFs p;
  ASSERT_TRUE(p.attach("/s", fs(), metrics("/s")));
  p.adopt_foreign_handles();  // as after a takeover: the kernel holds a previous daemon's handles
  auto dir = p.lookup(kRootNode, "s");
  auto f = p.lookup(dir->node, "f");
  auto d = p.lookup(dir->node, "d");
  ASSERT_TRUE(f && d);
  auto d0 = p.lookup(d->node, "0");
  ASSERT_TRUE(d0);
  auto h0 = p.open(d0->node, O_RDONLY);  // a live handle of another node
  ASSERT_TRUE(h0);
  char buf[16] = {};
  auto n = p.read(f->node, *h0, buf, sizeof buf, 0);  // h0 is d/0's: must not read "0"
  ASSERT_TRUE(n);
  EXPECT_EQ(std::string(buf, *n), "data");
  auto m = p.read(f->node, 0x7f00deadbeef0ull, buf, sizeof buf, 0);  // never handed out
  ASSERT_TRUE(m);
  EXPECT_EQ(std::string(buf, *m), "data");
  p.release(f->node, 0x7f00deadbeef0ull);  // its release closes the reopened handle
  std::vector<std::string> names;
  auto listed = p.readdir(d->node, 0x7f00deadbeef8ull, 0, false, [&](const DirEntry& e, const NodeEntry*) {
    names.emplace_back(e.name);
    return true;
  });
  ASSERT_TRUE(listed);
  EXPECT_EQ(names.size(), 7u);  // ".", "..", 0..4
  p.releasedir(d->node, 0x7f00deadbeef8ull);
  p.release(f->node, *h0);  // the reopened handle of f, not d/0's own one
  EXPECT_EQ(std::string(buf, *p.read(d0->node, *h0, buf, sizeof buf, 0)), "0");
  p.release(d0->node, *h0);
}

}  // namespace
}  // namespace nydus::fs
