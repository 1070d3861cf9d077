// The upstream sample image (../shared/fixtures/rafs-v6, read in place):
// parse, tree, nids, file bytes vs the README's sha256/blake3, digest
// validation, the blob.meta cache, metrics and the §4.9 summary.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "nydus/storage/digest.h"
#include "nydus/storage/image.h"
#include "util/raw_client.h"

namespace nydus::storage {
namespace {

const std::string kDir = std::string(NYDUS_SOURCE_DIR) + "/../shared/fixtures/rafs-v6";
const std::string kBoot = kDir + "/rafs-v6-2.2.boot";
const std::string kBlobId = "be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef";

#define REQUIRE_FIXTURE()                                                                 \
  if (::access(kBoot.c_str(), R_OK) != 0) GTEST_SKIP() << "sample image absent: " << kBoot

std::unique_ptr<Image> open_fixture(bool validate = true, std::string meta_dir = "") {
  config::LocalFsConfig cfg;
  cfg.dir = kDir + "/blobs";
  auto be = LocalFsBackend::create(cfg);
  EXPECT_TRUE(be);
  ImageOptions o;
  o.backend = std::shared_ptr<BlobBackend>(std::move(*be));
  o.digest_validate = validate;
  o.blob_meta_dir = std::move(meta_dir);
  auto im = Image::open(kBoot, o);
  EXPECT_TRUE(im) << im.error().to_string();
  return im ? std::move(*im) : nullptr;
}

std::string read_all(const Image& im, std::uint64_t ino) {
  auto a = im.getattr(ino);
  EXPECT_TRUE(a);
  std::string out;
  // Odd-sized reads cross chunk boundaries.
  for (std::uint64_t off = 0; off < a->size; off += 3001) {
    auto r = im.read(ino, off, 3001);
    EXPECT_TRUE(r) << r.error().to_string();
    if (!r) break;
    out += *r;
  }
  return out;
}

std::string sha_hex(const std::string& s) {
  return to_hex(sha256({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}).value());
}
std::string b3_hex(const std::string& s) {
  return to_hex(blake3({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}));
}

TEST(Fixture, SuperblockAndBlobs) {
  REQUIRE_FIXTURE();
  auto im = open_fixture();
  ASSERT_TRUE(im);
  const auto& sb = im->super_block();
  EXPECT_TRUE(sb.rafs);
  EXPECT_EQ(sb.root_nid, 128);
  EXPECT_EQ(sb.flags, 0x194u);
  EXPECT_EQ(sb.chunk_size, 1u << 20);
  ASSERT_EQ(im->blobs().size(), 1u);
  const auto& b = im->blobs()[0];
  EXPECT_EQ(b.blob_id, kBlobId);
  EXPECT_EQ(b.chunk_count, 2u);
  EXPECT_EQ(b.compressor, Compressor::kZstd);
  EXPECT_EQ(b.digester, DigestAlgo::kBlake3);
  EXPECT_EQ(b.ci_offset, 8314u);
  EXPECT_EQ(b.uncompressed_size, 36864u);
  EXPECT_EQ(b.device_blocks, 9u);
  // §4.9 values (the daemon renders them: tests/daemon/metrics_json_test.cc).
  const SuperBlockInfo info = im->super_block_info();
  EXPECT_EQ(info.magic, 0xE0F5E1E2u);
  EXPECT_EQ(info.version, 0x600u);
  EXPECT_EQ(info.sb_size, 128u);
  EXPECT_EQ(info.root_nid, 128u);
  EXPECT_EQ(info.root_inode, 128u);
  EXPECT_EQ(info.flags, 0x194u);
  EXPECT_EQ(info.chunk_size, 1u << 20);
  EXPECT_EQ(info.inodes_count, sb.inodes);
  EXPECT_EQ(info.prefetch_table_entries, sb.prefetch_table_size / 4);
}

TEST(Fixture, TreeAndHashes) {
  REQUIRE_FIXTURE();
  auto im = open_fixture();
  ASSERT_TRUE(im);
  std::vector<std::string> names;
  auto rd = im->readdir(im->root_ino(), 0, [&](const DirEntry& e) {
    names.emplace_back(e.name);
    return true;
  });
  ASSERT_TRUE(rd);
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "lib.rs", "sync_io.rs"}));
  auto root = im->getattr(128);
  ASSERT_TRUE(root);
  EXPECT_TRUE(S_ISDIR(root->mode));
  EXPECT_EQ(root->size, 67u);

  struct Want { const char* name; std::uint64_t nid, size; const char* sha, *b3; };
  const Want want[] = {
      {"lib.rs", 133, 16931, "1810eba864521293bb0d6b55a3c82318d4d89f294ed761c456d9088a17de0c69",
       "f7e2735f1c6ae9cde91e537416b09d8bb71b306a421d19cc1012a51f93a7fe69"},
      {"sync_io.rs", 136, 13400, "e629ab260ff0dc02a24648a3e0dd8c13a5daf233d535c330e3201925f5eeff96",
       "812465bcc9e88393598311dc5fc93abaeccef0185bcd99f9701d17ebdf9adc3f"}};
  for (const auto& w : want) {
    auto a = im->lookup(im->root_ino(), w.name);
    ASSERT_TRUE(a) << a.error().to_string();
    EXPECT_EQ(a->ino, w.nid);
    EXPECT_EQ(a->size, w.size);
    EXPECT_TRUE(S_ISREG(a->mode));
    std::string data = read_all(*im, a->ino);
    EXPECT_EQ(sha_hex(data), w.sha) << w.name;
    EXPECT_EQ(b3_hex(data), w.b3) << w.name;
  }
  auto miss = im->lookup(im->root_ino(), "nope");
  ASSERT_FALSE(miss);
  EXPECT_EQ(miss.error().code(), ErrorCode::kNotFound);
}

TEST(Fixture, ConcurrentReads) {
  REQUIRE_FIXTURE();
  auto im = open_fixture(true);
  ASSERT_TRUE(im);
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::uint64_t ino = (i + t) % 2 ? 133 : 136;
        auto r = im->read(ino, std::uint64_t(i * 97), 4096);
        auto whole = im->read(ino, 0, 1 << 20);
        if (!r || !whole || *r != whole->substr(std::size_t(i * 97), r->size())) ++bad;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Fixture, BlobMetaCacheWrittenAndReused) {
  REQUIRE_FIXTURE();
  testutil::TempDir dir;
  {
    auto im = open_fixture(true, dir.path());
    ASSERT_TRUE(im);
    ASSERT_TRUE(im->read(133, 0, 10));
  }
  std::string meta = dir.file(kBlobId + ".blob.meta");
  ASSERT_TRUE(std::filesystem::exists(meta));
  EXPECT_EQ(std::filesystem::file_size(meta), 8192u);  // CI array padded to 4 KiB + header
  // A second image reads the CI array from the cache, not the blob.
  auto mem = std::make_shared<MemoryBackend>();
  std::string blob_path = kDir + "/blobs/" + kBlobId;
  config::LocalFsConfig cfg;
  cfg.blob_file = blob_path;
  auto be = LocalFsBackend::create(cfg);
  ASSERT_TRUE(be);
  std::shared_ptr<LocalFsBackend> shared(std::move(*be));
  ImageOptions o;
  o.backend = shared;
  o.blob_meta_dir = dir.path();
  auto im = Image::open(kBoot, o);
  ASSERT_TRUE(im);
  auto r = (*im)->read(136, 0, 100);
  ASSERT_TRUE(r);
  EXPECT_EQ(shared->metrics().read_count(), 1u);  // only the chunk itself
  const BackendMetricsSnapshot m = shared->metrics().snapshot();
  EXPECT_EQ(m.backend_type, "localfs");
  EXPECT_EQ(m.read_count, 1u);
  EXPECT_EQ(m.read_errors, 0u);
  std::uint64_t by_size = 0;
  for (const auto& row : m.read_latency_sizes_dist)
    for (std::uint64_t n : row) by_size += n;
  EXPECT_EQ(by_size, 1u);
}

TEST(Fixture, MissingBlobIsAClearError) {
  REQUIRE_FIXTURE();
  testutil::TempDir dir;
  config::LocalFsConfig cfg;
  cfg.dir = dir.path();
  cfg.alt_dirs = {dir.path() + "/alt"};
  ImageOptions o;
  o.backend = std::shared_ptr<BlobBackend>(std::move(*LocalFsBackend::create(cfg)));
  auto im = Image::open(kBoot, o);
  ASSERT_TRUE(im);  // blobs are opened lazily
  auto r = (*im)->read(133, 0, 10);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find(kBlobId), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("alt"), std::string::npos) << r.error().message();
}

TEST(Fixture, AltDirFindsBlob) {
  REQUIRE_FIXTURE();
  testutil::TempDir dir;
  config::LocalFsConfig cfg;
  cfg.dir = dir.path();
  cfg.alt_dirs = {kDir + "/blobs"};
  ImageOptions o;
  o.backend = std::shared_ptr<BlobBackend>(std::move(*LocalFsBackend::create(cfg)));
  auto im = Image::open(kBoot, o);
  ASSERT_TRUE(im);
  auto r = (*im)->read(133, 0, 10);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->size(), 10u);
}

TEST(Backend, ConfigChecks) {
  EXPECT_FALSE(LocalFsBackend::create(config::LocalFsConfig{}));
  config::BackendConfigV2 c;
  c.type = "oss";
  auto b = create_backend(c);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), ErrorCode::kUnsupported);
  c.type = "registry";  // served, but needs its section
  b = create_backend(c);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), ErrorCode::kInvalidArgument);
  c.type = "localfs";
  EXPECT_FALSE(create_backend(c));
  c.localfs = config::LocalFsConfig{.blob_file = "", .dir = "/tmp", .alt_dirs = {}};
  EXPECT_TRUE(create_backend(c));
}

TEST(Backend, MetricBuckets) {
  EXPECT_EQ(BackendMetrics::size_bucket(0), 0);
  EXPECT_EQ(BackendMetrics::size_bucket(1024), 1);
  EXPECT_EQ(BackendMetrics::size_bucket(4096), 2);
  EXPECT_EQ(BackendMetrics::size_bucket(1 << 20), 7);
  EXPECT_EQ(BackendMetrics::latency_bucket_ms(1), 0);
  EXPECT_EQ(BackendMetrics::latency_bucket_ms(2), 1);
  EXPECT_EQ(BackendMetrics::latency_bucket_ms(2001), 7);
}

}  // namespace
}  // namespace nydus::storage
