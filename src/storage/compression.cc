// Chunk codecs. lz4_block is the raw LZ4 block format with the output size
// known from the CI entry (LZ4_decompress_safe must produce exactly that
// many bytes); zstd is one frame decoded with a per-thread context and must
// also produce exactly the expected size.
#include "nydus/storage/compression.h"

#include <lz4.h>
#include <zstd.h>

#include <memory>

namespace nydus::storage {
namespace {

struct DctxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

ZSTD_DCtx* thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DctxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}

}  // namespace

const char* to_string(Compressor c) {
  switch (c) {
    case Compressor::kNone: return "none";
    case Compressor::kLz4Block: return "lz4_block";
    case Compressor::kGzip: return "gzip";
    case Compressor::kZstd: return "zstd";
  }
  return "unknown";
}

Result<Compressor> parse_compressor(std::string_view name) {
  if (name == "none") return Compressor::kNone;
  if (name == "lz4_block" || name == "lz4") return Compressor::kLz4Block;
  if (name == "zstd") return Compressor::kZstd;
  if (name == "gzip") return Compressor::kGzip;
  return fail(ErrorCode::kInvalidArgument, "unknown compressor `" + std::string(name) + "`");
}

Result<void> decompress(Compressor c, std::span<const std::uint8_t> in, std::span<std::uint8_t> out) {
  switch (c) {
    case Compressor::kNone:
      if (in.size() != out.size()) {
        return fail(ErrorCode::kCorrupt, "uncompressed chunk of " + std::to_string(in.size()) +
                                             " bytes, expected " + std::to_string(out.size()));
      }
      std::copy(in.begin(), in.end(), out.begin());
      return {};
    case Compressor::kLz4Block: {
      if (in.size() > INT32_MAX || out.size() > INT32_MAX) return fail(ErrorCode::kCorrupt, "lz4 chunk too large");
      int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data()), reinterpret_cast<char*>(out.data()),
                                  int(in.size()), int(out.size()));
      if (n < 0 || std::size_t(n) != out.size()) {
        return fail(ErrorCode::kCorrupt, "lz4_block decompression failed (got " + std::to_string(n) +
                                             " bytes, expected " + std::to_string(out.size()) + ")");
      }
      return {};
    }
    case Compressor::kZstd: {
      ZSTD_DCtx* ctx = thread_dctx();
      if (ctx == nullptr) return fail(ErrorCode::kInternal, "ZSTD_createDCtx failed");
      std::size_t n = ZSTD_decompressDCtx(ctx, out.data(), out.size(), in.data(), in.size());
      if (ZSTD_isError(n)) {
        return fail(ErrorCode::kCorrupt, std::string("zstd decompression failed: ") + ZSTD_getErrorName(n));
      }
      if (n != out.size()) {
        return fail(ErrorCode::kCorrupt, "zstd chunk decompressed to " + std::to_string(n) + " bytes, expected " +
                                             std::to_string(out.size()));
      }
      return {};
    }
    case Compressor::kGzip: break;
  }
  return fail(ErrorCode::kUnsupported, std::string("compression `") + to_string(c) + "` is not supported");
}

Result<std::vector<std::uint8_t>> compress(Compressor c, std::span<const std::uint8_t> in) {
  switch (c) {
    case Compressor::kNone: return std::vector<std::uint8_t>(in.begin(), in.end());
    case Compressor::kLz4Block: {
      if (in.size() > LZ4_MAX_INPUT_SIZE) return fail(ErrorCode::kInvalidArgument, "lz4 input too large");
      std::vector<std::uint8_t> out(LZ4_compressBound(int(in.size())));
      int n = LZ4_compress_default(reinterpret_cast<const char*>(in.data()), reinterpret_cast<char*>(out.data()),
                                   int(in.size()), int(out.size()));
      if (n <= 0 && !in.empty()) return fail(ErrorCode::kInternal, "LZ4_compress_default failed");
      out.resize(std::size_t(n < 0 ? 0 : n));
      return out;
    }
    case Compressor::kZstd: {
      std::vector<std::uint8_t> out(ZSTD_compressBound(in.size()));
      std::size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
      if (ZSTD_isError(n)) return fail(ErrorCode::kInternal, std::string("zstd: ") + ZSTD_getErrorName(n));
      out.resize(n);
      return out;
    }
    case Compressor::kGzip: break;
  }
  return fail(ErrorCode::kUnsupported, std::string("compression `") + to_string(c) + "` is not supported");
}

}  // namespace nydus::storage
