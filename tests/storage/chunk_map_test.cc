// The blob cache's chunk_map against registry-and-cache.md section 3. Files
// are checked and crafted here with plain byte arithmetic, not through the
// reader's records, so a shared mistake in ondisk.h cannot hide.
#include "nydus/storage/chunk_map.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "util/raw_client.h"

namespace nydus::storage {
namespace {

std::vector<std::uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void spit(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::uint32_t le32(const std::vector<std::uint8_t>& b, std::size_t off) {
  return std::uint32_t(b[off]) | std::uint32_t(b[off + 1]) << 8 | std::uint32_t(b[off + 2]) << 16 |
         std::uint32_t(b[off + 3]) << 24;
}

void put_le32(std::vector<std::uint8_t>& b, std::size_t off, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[off + std::size_t(i)] = std::uint8_t(v >> (8 * i));
}

// An upstream-style file: header, then the bitmap with the given chunks set.
std::vector<std::uint8_t> upstream_file(std::uint32_t chunks, const std::vector<std::uint32_t>& ready,
                                        bool all_ready = false) {
  std::vector<std::uint8_t> b(4096 + (chunks + 7) / 8, 0);
  put_le32(b, 0, 0x424D4150);
  put_le32(b, 4, 1);
  put_le32(b, 8, 0x434D4150);
  put_le32(b, 12, all_ready ? 0x4D4D4150 : 0);
  for (std::uint32_t i : ready) b[4096 + i / 8] |= std::uint8_t(1u << (7 - i % 8));
  return b;
}

TEST(ChunkMap, WrittenFileDecodesWithTheUpstreamLayout) {
  testutil::TempDir dir;
  const std::string path = dir.file("blob1.blob.data.chunk_map");
  const std::uint32_t chunks = 21;  // 3 bitmap bytes, the last one partly used
  {
    auto map = ChunkMap::open(path, chunks);
    ASSERT_TRUE(map) << map.error().message();
    EXPECT_FALSE((*map)->rebuilt());
    for (std::uint32_t i : {0u, 7u, 9u, 20u}) ASSERT_TRUE((*map)->set_ready(i));
    EXPECT_EQ((*map)->ready_count(), 4u);
    EXPECT_FALSE((*map)->all_ready());
  }
  auto b = slurp(path);
  ASSERT_EQ(b.size(), 4096u + 3u);
  EXPECT_EQ(le32(b, 0), 0x424D4150u);
  EXPECT_EQ(le32(b, 4), 1u);
  EXPECT_EQ(le32(b, 8), 0x434D4150u);
  EXPECT_EQ(le32(b, 12), 0u);
  for (std::size_t i = 16; i < 4096; ++i) ASSERT_EQ(b[i], 0) << "header byte " << i;
  EXPECT_EQ(b[4096], 0x81);  // chunks 0 and 7: most significant bit first
  EXPECT_EQ(b[4097], 0x40);  // chunk 9
  EXPECT_EQ(b[4098], 0x08);  // chunk 20 = bit 4 of byte 2
}

TEST(ChunkMap, AllReadyFlipsTheHeader) {
  testutil::TempDir dir;
  const std::string path = dir.file("b.blob.data.chunk_map");
  auto map = ChunkMap::open(path, 10);
  ASSERT_TRUE(map);
  for (std::uint32_t i = 0; i < 10; ++i) {
    EXPECT_EQ(le32(slurp(path), 12), 0u) << "all_ready before chunk " << i;
    ASSERT_TRUE((*map)->set_ready(i));
  }
  EXPECT_TRUE((*map)->all_ready());
  auto b = slurp(path);
  EXPECT_EQ(le32(b, 12), 0x4D4D4150u);
  EXPECT_EQ(b[4096], 0xFF);
  EXPECT_EQ(b[4097], 0xC0);
}

TEST(ChunkMap, OpensAnUpstreamFileAndKeepsItsBits) {
  testutil::TempDir dir;
  const std::string path = dir.file("b.blob.data.chunk_map");
  auto crafted = upstream_file(100, {0, 3, 64, 99});
  spit(path, crafted);
  auto map = ChunkMap::open(path, 100);
  ASSERT_TRUE(map) << map.error().message();
  EXPECT_FALSE((*map)->rebuilt());
  EXPECT_EQ((*map)->ready_count(), 4u);
  for (std::uint32_t i = 0; i < 100; ++i) {
    bool want = i == 0 || i == 3 || i == 64 || i == 99;
    EXPECT_EQ((*map)->is_ready(i), want) << "chunk " << i;
  }
  EXPECT_FALSE((*map)->is_ready(100));
  EXPECT_EQ(slurp(path), crafted);  // opening alone changes nothing
}

TEST(ChunkMap, UpstreamAllReadyMeansEveryChunk) {
  testutil::TempDir dir;
  const std::string path = dir.file("b.blob.data.chunk_map");
  spit(path, upstream_file(12, {}, /*all_ready=*/true));
  auto map = ChunkMap::open(path, 12);
  ASSERT_TRUE(map);
  EXPECT_TRUE((*map)->all_ready());
  EXPECT_TRUE((*map)->is_ready(11));
}

TEST(ChunkMap, UntrustedFilesAreDiscardedAndRebuilt) {
  struct Case {
    const char* name;
    std::size_t off;  // byte to corrupt, or SIZE_MAX to grow the file by one byte
  };
  for (Case c : {Case{"magic", 0}, Case{"version", 4}, Case{"magic2", 8}, Case{"all_ready", 12},
                 Case{"reserved", 2000}, Case{"size", SIZE_MAX}}) {
    SCOPED_TRACE(c.name);
    testutil::TempDir dir;
    const std::string path = dir.file("b.blob.data.chunk_map");
    auto bad = upstream_file(16, {1, 2, 3});
    if (c.off == SIZE_MAX) {
      bad.push_back(0);
    } else {
      bad[c.off] ^= 0x5A;
    }
    spit(path, bad);
    auto map = ChunkMap::open(path, 16);
    ASSERT_TRUE(map) << map.error().message();
    EXPECT_TRUE((*map)->rebuilt());
    EXPECT_EQ((*map)->ready_count(), 0u);
    EXPECT_FALSE((*map)->is_ready(1));
    EXPECT_EQ(slurp(path), upstream_file(16, {}));
  }
}

TEST(ChunkMap, WrongChunkCountIsRebuilt) {
  testutil::TempDir dir;
  const std::string path = dir.file("b.blob.data.chunk_map");
  spit(path, upstream_file(8, {0, 1}));
  auto map = ChunkMap::open(path, 9);  // same blob id, other chunk count: not this blob's map
  ASSERT_TRUE(map);
  EXPECT_TRUE((*map)->rebuilt());
  EXPECT_EQ((*map)->ready_count(), 0u);
  EXPECT_EQ(slurp(path).size(), 4096u + 2u);
}

TEST(ChunkMap, RefusesANonRegularFile) {
  testutil::TempDir dir;
  const std::string path = dir.file("b.blob.data.chunk_map");
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  auto map = ChunkMap::open(path, 4);  // O_NONBLOCK: returns instead of waiting for a writer
  ASSERT_FALSE(map);
  EXPECT_EQ(map.error().code(), ErrorCode::kInvalidArgument);
}

TEST(ChunkMap, OutOfRangeIsAnError) {
  testutil::TempDir dir;
  auto map = ChunkMap::open(dir.file("m"), 4);
  ASSERT_TRUE(map);
  EXPECT_FALSE((*map)->set_ready(4));
  EXPECT_EQ((*map)->ready_count(), 0u);
}

TEST(ChunkMap, ConcurrentSettersInOneByteAllReachTheFile) {
  testutil::TempDir dir;
  const std::string path = dir.file("m");
  const std::uint32_t chunks = 64;
  {
    auto map = ChunkMap::open(path, chunks);
    ASSERT_TRUE(map);
    std::vector<std::thread> threads;
    for (std::uint32_t t = 0; t < 8; ++t) {
      // Thread t sets bit t of every byte: all eight threads share every byte.
      threads.emplace_back([&m = **map, t] {
        for (std::uint32_t b = 0; b < 8; ++b) EXPECT_TRUE(m.set_ready(b * 8 + t));
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_TRUE((*map)->all_ready());
  }
  auto b = slurp(path);
  EXPECT_EQ(le32(b, 12), 0x4D4D4150u);
  for (std::size_t i = 4096; i < b.size(); ++i) EXPECT_EQ(b[i], 0xFF) << "byte " << i;
  auto reopened = ChunkMap::open(path, chunks);
  ASSERT_TRUE(reopened);
  EXPECT_EQ((*reopened)->ready_count(), chunks);
}

}  // namespace
}  // namespace nydus::storage
