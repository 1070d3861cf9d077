// Host files an image reads (bootstrap, blobs, `<id>.blob.meta`) that are
// hostile or change under a live image: a FIFO never blocks an open, a file
// truncated after open never raises SIGBUS, an oversized chunk-info cache is
// never read. A blocked open would hang the test: each call runs under a
// guard that releases the FIFO (by opening its write end) after a generous
// bound and fails the test.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>

#include <gtest/gtest.h>

#include "nydus/storage/builder.h"
#include "nydus/storage/image.h"
#include "util/raw_client.h"
#include "util/sanitizer.h"

namespace nydus::storage {
namespace {

namespace stdfs = std::filesystem;

// Runs `f` on its own thread. If it is still running after the bound it is
// blocked opening `fifo`: a writer releases it, and the test fails.
template <class F>
auto guarded(const std::string& fifo, F f) -> decltype(f()) {
  auto fut = std::async(std::launch::async, std::move(f));
  if (fut.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    ADD_FAILURE() << "blocked opening the FIFO " << fifo;
    for (;;) {
      int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (w >= 0) ::close(w);
      if (fut.wait_for(std::chrono::milliseconds(100)) == std::future_status::ready) break;
    }
  }
  return fut.get();
}

class HostFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.file("src");
    blobs_ = dir_.file("blobs");
    work_ = dir_.file("work");
    for (const auto& d : {src_, blobs_, work_}) stdfs::create_directories(d);
    std::ofstream(src_ + "/a.txt") << "first file\n";
    stdfs::create_directories(src_ + "/sub");
    std::ofstream(src_ + "/sub/b.txt") << std::string(70000, 'b');
    boot_ = dir_.file("img.boot");
    auto built = build_image_files(src_, {}, boot_, blobs_);
    ASSERT_TRUE(built) << built.error().message();
    blob_id_ = built->blob_id;
  }

  std::shared_ptr<BlobBackend> localfs(const std::string& dir) {
    config::LocalFsConfig c;
    c.dir = dir;
    auto b = LocalFsBackend::create(c);
    EXPECT_TRUE(b);
    return std::shared_ptr<BlobBackend>(std::move(*b));
  }

  Result<std::unique_ptr<Image>> open_image(const std::string& meta_dir = "") {
    ImageOptions o;
    o.backend = localfs(blobs_);
    o.blob_meta_dir = meta_dir;
    return Image::open(boot_, o);
  }

  static Result<std::string> read_b(const Image& im) {
    auto sub = im.lookup(im.root_ino(), "sub");
    if (!sub) return tl::unexpected(sub.error());
    auto b = im.lookup(sub->ino, "b.txt");
    if (!b) return tl::unexpected(b.error());
    return im.read(b->ino, 0, 100000);
  }

  testutil::TempDir dir_;
  std::string src_, blobs_, work_, boot_, blob_id_;
};

// Issue #11 item 1: a mapped bootstrap truncated under a live image raised
// SIGBUS on the next access, killing every mount of the daemon.
TEST_F(HostFileTest, BootstrapTruncatedOrRewrittenAfterOpenKeepsTheOpenedContent) {
  auto im = open_image();
  ASSERT_TRUE(im) << im.error().message();
  ASSERT_EQ(::truncate(boot_.c_str(), 0), 0);
  std::vector<std::string> names;
  auto r = (*im)->readdir((*im)->root_ino(), 0, [&](const DirEntry& e) {
    names.emplace_back(e.name);
    return true;
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "a.txt", "sub"}));
  // `cp other.boot img.boot` truncates, then writes other content.
  std::ofstream(boot_, std::ios::binary | std::ios::trunc) << std::string(8192, '\xff');
  auto b = read_b(**im);
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(*b, std::string(70000, 'b'));
}

// Item 2: open() of a FIFO blocks until a writer appears.
TEST_F(HostFileTest, FifoOrDirectoryBootstrapIsRefusedWithoutBlocking) {
  std::string fifo = dir_.file("fifo.boot");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto im = guarded(fifo, [&] { return Image::open(fifo, {}); });
  ASSERT_FALSE(im);
  EXPECT_EQ(im.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(im.error().message().find("not a regular file"), std::string::npos) << im.error().message();
  auto dir = Image::open(src_, {});
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().code(), ErrorCode::kInvalidArgument) << dir.error().message();
  EXPECT_EQ(Image::open(dir_.file("absent.boot"), {}).error().code(), ErrorCode::kNotFound);
}

// Item 3: a blob that is a FIFO blocked LocalFsBackend's open (under its lock).
TEST_F(HostFileTest, FifoBlobIsAnErrorWithoutBlocking) {
  std::string fifo_dir = dir_.file("fifo-blobs");
  stdfs::create_directories(fifo_dir);
  std::string fifo = fifo_dir + "/" + blob_id_;
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto be = localfs(fifo_dir);
  std::vector<std::uint8_t> buf(16);
  auto r = guarded(fifo, [&] { return be->read(blob_id_, 0, buf); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kIo);
  EXPECT_NE(r.error().message().find("not a regular file"), std::string::npos) << r.error().message();
  // The regular blob beside it still reads.
  auto good = localfs(blobs_);
  auto n = good->read(blob_id_, 0, buf);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, buf.size());
}

// Item 3: a FIFO in work_dir where the chunk-info cache goes is ignored (the
// array comes from the blob) and replaced by the real cache file.
TEST_F(HostFileTest, FifoBlobMetaIsIgnoredWithoutBlocking) {
  std::string meta = work_ + "/" + blob_id_ + ".blob.meta";
  ASSERT_EQ(::mkfifo(meta.c_str(), 0600), 0);
  auto im = open_image(work_);
  ASSERT_TRUE(im) << im.error().message();
  auto b = guarded(meta, [&] { return read_b(**im); });
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(*b, std::string(70000, 'b'));
  struct stat st {};
  ASSERT_EQ(::stat(meta.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

// Item 7: a 3 GiB sparse `<id>.blob.meta` was read whole before its size was
// compared with what the blob's chunk count allows (4.1 GB RSS). Run in a
// child whose address space is capped 1 GiB above its current size, so
// reading it fails loudly instead of filling the machine.
TEST_F(HostFileTest, OversizedBlobMetaIsNeverRead) {
if (testutil::kAddressSanitizer) {
    GTEST_SKIP() << "ASan reserves terabytes of address space: RLIMIT_AS cannot bound it";
  }
}

}  // namespace
}  // namespace nydus::storage
