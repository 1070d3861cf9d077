// Chunk-info decoder: the first byte picks v1/v2 and the chunk count, the
// next 4096 bytes (if present) are checked as a CI header, the rest is
// decoded as a CI array and also fed to the decompressors with a small
// expected size.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "nydus/storage/blob_meta.h"

using namespace nydus::storage;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || size > (1 << 20)) return 0;
  BlobInfo b;
  b.blob_id = "fuzz";
  b.features = (data[0] & 1) ? kBlobFeatureChunkInfoV2 : 0;
  b.chunk_count = data[1];
  b.chunk_size = (data[0] & 2) ? 4096 : (1u << 24);
  b.compressed_size = (data[0] & 4) ? 65536 : 0;
  b.uncompressed_size = (data[0] & 8) ? 1 << 20 : 0;
  std::span<const std::uint8_t> rest(data + 2, size - 2);
  if (rest.size() >= kBlobMetaHeaderSize) (void)check_blob_meta_header(rest.first(kBlobMetaHeaderSize), b);
  (void)decode_chunk_infos(rest, b);
  std::vector<std::uint8_t> out(std::size_t(data[1]) * 64);
  (void)decompress(Compressor::kLz4Block, rest, out);
  (void)decompress(Compressor::kZstd, rest, out);
  return 0;
}
