// Damaged inputs give errors, never crashes: truncated and bit-flipped
// bootstraps (sample and generated), corrupt or truncated blobs, digest
// mismatches. Run under ASan+UBSan.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "nydus/storage/builder.h"
#include "nydus/storage/image.h"
#include "nydus/storage/walk.h"
#include "util/raw_client.h"

namespace nydus::storage {
namespace {

const std::string kFixture = std::string(NYDUS_SOURCE_DIR) + "/../shared/fixtures/rafs-v6";
const std::string kBlobId = "be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef";

std::vector<std::uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Opens and runs every operation; true if all succeeded.
bool exercise(std::vector<std::uint8_t> boot, std::shared_ptr<BlobBackend> be, bool read_data) {
  ImageOptions o;
  o.backend = std::move(be);
  o.digest_validate = true;
  auto im = Image::from_bytes(std::move(boot), o);
  if (!im) {
    EXPECT_FALSE(im.error().message().empty());
    return false;
  }
  bool ok = true;
  auto w = walk(**im, [&](const std::string&, const InodeAttr& a) -> Result<void> {
    ok &= bool((*im)->listxattr(a.ino));
    if (S_ISLNK(a.mode)) ok &= bool((*im)->readlink(a.ino));
    if (S_ISREG(a.mode) && read_data) {
      std::vector<std::uint8_t> buf(8192);
      ok &= bool((*im)->read(a.ino, 0, buf));
      ok &= bool((*im)->read(a.ino, a.size > 100 ? a.size - 100 : 0, buf));
    }
    return {};
  });
  (*im)->lookup((*im)->root_ino(), "lib.rs");
  (void)(*im)->super_block_info();
  return ok && bool(w);
}

std::shared_ptr<MemoryBackend> backend_with(const std::string& id, std::vector<std::uint8_t> blob) {
  auto be = std::make_shared<MemoryBackend>();
  be->add(id, std::move(blob));
  return be;
}

TEST(Corrupt, FixtureTruncatedAndBitFlipped) {
  if (::access((kFixture + "/rafs-v6-2.2.boot").c_str(), R_OK) != 0) GTEST_SKIP() << "sample image absent: " << kFixture;
  auto boot = slurp(kFixture + "/rafs-v6-2.2.boot");
  auto blob = slurp(kFixture + "/blobs/" + kBlobId);
  auto be = backend_with(kBlobId, blob);
  ASSERT_TRUE(exercise(boot, be, true));
  for (std::size_t len = 0; len < boot.size(); len += 509) {
    std::vector<std::uint8_t> t(boot.begin(), boot.begin() + std::ptrdiff_t(len));
    exercise(t, be, true);
  }
  int failures = 0;
  // Every byte of the superblock and tables, then a stride through inodes, dirents and the chunk table.
  for (std::size_t pos = 1024; pos < boot.size(); pos += (pos < 4608 ? 1 : 7)) {
    auto b = boot;
    b[pos] ^= std::uint8_t(1u << (pos % 8));
    failures += exercise(std::move(b), be, pos % 11 == 0) ? 0 : 1;
  }
  EXPECT_GT(failures, 0);
}

TEST(Corrupt, BlobDamage) {
  if (::access((kFixture + "/rafs-v6-2.2.boot").c_str(), R_OK) != 0) GTEST_SKIP() << "sample image absent: " << kFixture;
  auto boot = slurp(kFixture + "/rafs-v6-2.2.boot");
  auto blob = slurp(kFixture + "/blobs/" + kBlobId);
  auto read_lib = [&](std::vector<std::uint8_t> b) {
    ImageOptions o;
    o.backend = backend_with(kBlobId, std::move(b));
    o.digest_validate = true;
    auto im = Image::from_bytes(boot, o);
    EXPECT_TRUE(im);
    return (*im)->read(133, 0, 100);
  };
  ASSERT_TRUE(read_lib(blob));
  auto flipped = blob;
  flipped[1000] ^= 0x40;  // inside the zstd chunk of lib.rs
  auto r = read_lib(flipped);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt) << r.error().to_string();
  auto truncated = std::vector<std::uint8_t>(blob.begin(), blob.begin() + 9000);
  r = read_lib(truncated);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt) << r.error().to_string();
  auto bad_header = blob;
  bad_header[8314 + 32 + 12] ^= 1;  // ci_entries in the CI header
  r = read_lib(bad_header);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("ci_entries"), std::string::npos) << r.error().to_string();
}

TEST(Corrupt, DigestMismatchOnUncompressedChunk) {
  testutil::TempDir dir;
  std::filesystem::create_directories(dir.file("src"));
  std::ofstream(dir.file("src/f")) << std::string(10000, 'q');
  for (auto digest : {DigestAlgo::kBlake3, DigestAlgo::kSha256}) {
    BuildOptions o;
    o.compressor = Compressor::kNone;
    o.digester = digest;
    auto r = build_image(dir.file("src"), o);
    ASSERT_TRUE(r);
    auto blob = r->blob;
    blob[5] ^= 1;
    for (bool validate : {true, false}) {
      ImageOptions io;
      io.backend = backend_with(r->blob_id, blob);
      io.digest_validate = validate;
      auto im = Image::from_bytes(r->bootstrap, io);
      ASSERT_TRUE(im);
      auto f = (*im)->lookup((*im)->root_ino(), "f");
      ASSERT_TRUE(f);
      auto d = (*im)->read(f->ino, 0, 100);
      if (validate) {
        ASSERT_FALSE(d);
        EXPECT_NE(d.error().message().find("digest mismatch"), std::string::npos) << d.error().to_string();
      } else {
        EXPECT_TRUE(d);  // without validation the damage goes unnoticed, as upstream
      }
    }
  }
}

TEST(Corrupt, GeneratedImageBitFlips) {
  testutil::TempDir dir;
  std::filesystem::create_directories(dir.file("src/d/e"));
  std::ofstream(dir.file("src/d/e/f")) << std::string(20000, 'z') << "tail";
  std::ofstream(dir.file("src/g")) << "gg";
  std::filesystem::create_symlink("d/e/f", dir.file("src/l"));
  for (int i = 0; i < 40; ++i) std::ofstream(dir.file("src/d/n" + std::to_string(i))) << i;
  BuildOptions o;
  o.chunk_size = 4096;
  o.compressor = Compressor::kLz4Block;
  o.chunk_info_v2 = true;
  o.ci_compressor = Compressor::kZstd;
  auto r = build_image(dir.file("src"), o);
  ASSERT_TRUE(r) << r.error().to_string();
  auto be = backend_with(r->blob_id, r->blob);
  ASSERT_TRUE(exercise(r->bootstrap, be, true));
  for (std::size_t pos = 1024; pos < r->bootstrap.size(); pos += (pos < 4608 ? 1 : 13)) {
    auto b = r->bootstrap;
    b[pos] ^= 0xFF;
    exercise(std::move(b), be, pos % 7 == 0);
  }
  // Damaged blob: every 37th byte flipped in turn.
  for (std::size_t pos = 0; pos < r->blob.size(); pos += 37) {
    auto blob = r->blob;
    blob[pos] ^= 0x10;
    exercise(r->bootstrap, backend_with(r->blob_id, std::move(blob)), true);
  }
}

// An i_size near 2^64 once wrapped the chunk count to 0 and read chunk indexes past the image.
TEST(Corrupt, HugeFileSizeIsRefused) {
  testutil::TempDir dir;
  std::filesystem::create_directories(dir.file("src"));
  std::ofstream(dir.file("src/f")) << std::string(10000, 'q');
  BuildOptions o;
  o.chunk_size = 4096;
  o.force_extended = true;
  auto r = build_image(dir.file("src"), o);
  ASSERT_TRUE(r) << r.error().to_string();
  auto be = backend_with(r->blob_id, r->blob);
  auto good = Image::from_bytes(r->bootstrap, ImageOptions{});
  ASSERT_TRUE(good);
  auto f = (*good)->lookup((*good)->root_ino(), "f");
  ASSERT_TRUE(f);
  ASSERT_EQ(f->size, 10000u);
  for (std::uint64_t bad : {~std::uint64_t{0}, std::uint64_t{1} << 63, ~std::uint64_t{0} - 4095}) {
    auto boot = r->bootstrap;
    std::size_t at = 4096 + std::size_t(f->ino) * 32 + 8;  // meta_blkaddr 1; extended i_size
    ASSERT_EQ(boot[at] | boot[at + 1] << 8, 10000);
    for (int i = 0; i < 8; ++i) boot[at + std::size_t(i)] = std::uint8_t(bad >> (8 * i));
    ImageOptions io;
    io.backend = be;
    auto im = Image::from_bytes(boot, io);
    ASSERT_TRUE(im);
    EXPECT_EQ((*im)->getattr(f->ino).error().code(), ErrorCode::kCorrupt);
    std::vector<std::uint8_t> buf(4096);
    for (std::uint64_t off : {std::uint64_t{0}, bad - 4096, bad - 1}) {
      auto rd = (*im)->read(f->ino, off, buf);
      ASSERT_FALSE(rd);
      EXPECT_EQ(rd.error().code(), ErrorCode::kCorrupt) << rd.error().to_string();
    }
    EXPECT_FALSE(exercise(boot, be, true));
  }
}

// Blob ids come from the image and name files (the blob, `<id>.blob.meta`): one that is a path is refused.
TEST(Corrupt, BlobIdThatIsAPathIsRefused) {
  testutil::TempDir dir;
  std::filesystem::create_directories(dir.file("src"));
  std::ofstream(dir.file("src/f")) << "data";
  auto r = build_image(dir.file("src"), BuildOptions{});
  ASSERT_TRUE(r) << r.error().to_string();
  std::string evil = "/../../../../../../../../../../../../../../../tmp/escaped-blob-id";
  evil.resize(64, 'x');
  auto boot = r->bootstrap;
  int replaced = 0;
  for (std::size_t i = 0; i + 64 <= boot.size(); ++i) {
    if (std::equal(r->blob_id.begin(), r->blob_id.end(), boot.begin() + std::ptrdiff_t(i))) {
      std::copy(evil.begin(), evil.end(), boot.begin() + std::ptrdiff_t(i));
      ++replaced;
    }
  }
  ASSERT_EQ(replaced, 2);  // blob table entry and device slot tag
  ImageOptions io;
  io.blob_meta_dir = dir.path();
  auto im = Image::from_bytes(boot, io);
  ASSERT_FALSE(im);
  EXPECT_NE(im.error().message().find("not a file name"), std::string::npos) << im.error().to_string();
  EXPECT_FALSE(is_safe_blob_id("a/b"));
  EXPECT_FALSE(is_safe_blob_id(".."));
  EXPECT_FALSE(is_safe_blob_id(std::string_view("a\0b", 3)));
  EXPECT_TRUE(is_safe_blob_id(r->blob_id));
}

// A blob shorter than its chunk-info array claims is refused before the array is read (or
// allocated: the fuzzer found 64 MiB allocated per read attempt from a hostile blob table).
TEST(Corrupt, ShortBlobIsCheckedBeforeReadingItsChunkInfo) {
  testutil::TempDir dir;
  std::filesystem::create_directories(dir.file("src"));
  std::ofstream(dir.file("src/f")) << std::string(10000, 'q');
  auto r = build_image(dir.file("src"), BuildOptions{});
  ASSERT_TRUE(r) << r.error().to_string();
  auto be = backend_with(r->blob_id, std::vector<std::uint8_t>(r->blob.begin(), r->blob.begin() + 100));
  ImageOptions io;
  io.backend = be;
  auto im = Image::from_bytes(r->bootstrap, io);
  ASSERT_TRUE(im);
  auto f = (*im)->lookup((*im)->root_ino(), "f");
  ASSERT_TRUE(f);
  auto d = (*im)->read(f->ino, 0, 100);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kCorrupt);
  EXPECT_NE(d.error().message().find("truncated (chunk-info array)"), std::string::npos) << d.error().to_string();
  EXPECT_EQ(be->metrics().read_count(), 0u) << "nothing read from a blob that cannot hold the array";
}

TEST(Corrupt, NotAnImage) {
  EXPECT_EQ(Image::from_bytes({}, {}).error().code(), ErrorCode::kCorrupt);
  EXPECT_EQ(Image::from_bytes(std::vector<std::uint8_t>(8192, 0), {}).error().code(), ErrorCode::kCorrupt);
  auto missing = Image::open("/nonexistent/boot", {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace nydus::storage
