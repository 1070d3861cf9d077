// Chunk codecs and chunk-info encoding: round trips, and malformed input
// giving errors.
#include "nydus/storage/blob_meta.h"

#include <gtest/gtest.h>

namespace nydus::storage {
namespace {

std::vector<std::uint8_t> sample(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::uint8_t((i * 7) % 13);
  return v;
}

TEST(Compression, RoundTripsAndErrors) {
  auto data = sample(100000);
  for (auto c : {Compressor::kNone, Compressor::kLz4Block, Compressor::kZstd}) {
    auto packed = compress(c, data);
    ASSERT_TRUE(packed) << to_string(c);
    std::vector<std::uint8_t> out(data.size());
    ASSERT_TRUE(decompress(c, *packed, out)) << to_string(c);
    EXPECT_EQ(out, data);
    // Wrong expected size.
    std::vector<std::uint8_t> small(data.size() - 1);
    auto r = decompress(c, *packed, small);
    ASSERT_FALSE(r) << to_string(c);
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt);
    // Garbage.
    if (c != Compressor::kNone) {
      std::vector<std::uint8_t> junk(packed->size(), 0xA5);
      EXPECT_FALSE(decompress(c, junk, out)) << to_string(c);
    }
  }
  std::vector<std::uint8_t> out(4);
  EXPECT_EQ(decompress(Compressor::kGzip, out, out).error().code(), ErrorCode::kUnsupported);
  EXPECT_FALSE(parse_compressor("brotli"));
  EXPECT_EQ(*parse_compressor("lz4_block"), Compressor::kLz4Block);
}

BlobInfo blob_with(std::uint32_t count, bool v2) {
  BlobInfo b;
  b.blob_id = "b";
  b.chunk_size = 1 << 24;
  b.chunk_count = count;
  b.features = kBlobFeatureAligned | (v2 ? kBlobFeatureChunkInfoV2 : 0);
  return b;
}

TEST(ChunkInfo, RoundTripV1AndV2) {
  for (bool v2 : {false, true}) {
    std::vector<ChunkInfo> in = {
        {0, 4828, 0, 16931, true},
        {4828, 2974, 20480, 13400, true},
        {(1ull << 39) + 5, (1 << 24) - 1, 1ull << 43, 1 << 24, true},
    };
    std::vector<std::uint8_t> bytes;
    for (const auto& c : in) encode_chunk_info(c, v2, bytes);
    EXPECT_EQ(bytes.size(), in.size() * (v2 ? 24 : 16));
    auto out = decode_chunk_infos(bytes, blob_with(3, v2));
    ASSERT_TRUE(out) << out.error().to_string();
    for (std::size_t i = 0; i < in.size(); ++i) {
      EXPECT_EQ((*out)[i].compressed_offset, in[i].compressed_offset);
      EXPECT_EQ((*out)[i].compressed_size, in[i].compressed_size);
      EXPECT_EQ((*out)[i].uncompressed_offset, in[i].uncompressed_offset);
      EXPECT_EQ((*out)[i].uncompressed_size, in[i].uncompressed_size);
      EXPECT_EQ((*out)[i].compressed, in[i].compressed);
    }
    // Too short, out of the blob.
    EXPECT_FALSE(decode_chunk_infos(std::span(bytes).first(bytes.size() - 1), blob_with(3, v2)));
    BlobInfo b = blob_with(3, v2);
    b.compressed_size = 100;
    EXPECT_EQ(decode_chunk_infos(bytes, b).error().code(), ErrorCode::kCorrupt);
  }
}

// Upstream's `compressed_data_size`, the size of a `.blob.raw`: the sample
// blob of rafs-format.md 1.12 (2.2, tar headers, CI at 8314) has 7802 bytes of data.
TEST(BlobInfo, CompressedDataSizeIsUpstreams) {
  BlobInfo b;
  b.compressed_size = 14554;
  b.ci_offset = 8314;
  b.ci_compressed_size = 32;
  b.ci_uncompressed_size = 32;
  EXPECT_EQ(compressed_data_size(b), 14554u) << "before 2.2 the whole blob";
  b.features = kBlobFeatureAligned | kBlobFeatureHasTarHeader | kBlobFeatureHasToc | kBlobFeatureCapTarToc;
  EXPECT_EQ(compressed_data_size(b), 7802u);
  b.features &= ~kBlobFeatureHasTarHeader;
  EXPECT_EQ(compressed_data_size(b), 8314u);
  b.ci_compressed_size = 0;  // no CI array: up to the end
  EXPECT_EQ(compressed_data_size(b), 14554u);
  b.features |= kBlobFeatureSeparate;
  b.ci_offset = 100;
  EXPECT_EQ(compressed_data_size(b), 14554u);
  b = BlobInfo{};
  b.features = kBlobFeatureCapTarToc | kBlobFeatureHasTarHeader;
  EXPECT_EQ(compressed_data_size(b), 0u) << "no underflow";
}

TEST(ChunkInfo, HeaderCheck) {
  BlobInfo b = blob_with(2, false);
  b.ci_offset = 8314;
  b.ci_compressed_size = 32;
  b.ci_uncompressed_size = 32;
  auto h = make_blob_meta_header(b);
  EXPECT_TRUE(check_blob_meta_header(h, b));
  auto bad = h;
  bad[4092] ^= 1;
  EXPECT_FALSE(check_blob_meta_header(bad, b));
  BlobInfo other = b;
  other.chunk_count = 3;
  EXPECT_FALSE(check_blob_meta_header(h, other));
  EXPECT_FALSE(check_blob_meta_header(std::span(h).first(100), b));
}

}  // namespace
}  // namespace nydus::storage
