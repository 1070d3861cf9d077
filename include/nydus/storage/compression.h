// Chunk (de)compression for RAFS blobs: none, lz4_block (raw LZ4 block, no
// frame, liblz4) and zstd (one zstd frame, libzstd). gzip is only used by
// stargz/ZRAN images and is not supported.
//
// Thread-safety: free functions, safe to call concurrently; zstd contexts are
// kept per thread so the read path does not allocate one per chunk.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "nydus/result.h"

namespace nydus::storage {

// On-disk values of the blob table's compression fields.
enum class Compressor : std::uint32_t { kNone = 0, kLz4Block = 1, kGzip = 2, kZstd = 3 };

// "none", "lz4_block", "gzip", "zstd".
const char* to_string(Compressor c);
// Parses the names above (also "lz4"); kInvalidArgument otherwise.
Result<Compressor> parse_compressor(std::string_view name);

// Decompresses `in` into exactly out.size() bytes. kCorrupt when the input is
// malformed or does not decompress to exactly out.size() bytes; kUnsupported
// for gzip or an unknown algorithm.
Result<void> decompress(Compressor c, std::span<const std::uint8_t> in, std::span<std::uint8_t> out);

// Compresses `in` (used by the image builder). kNone returns a copy.
Result<std::vector<std::uint8_t>> compress(Compressor c, std::span<const std::uint8_t> in);

}  // namespace nydus::storage
