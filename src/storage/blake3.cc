// BLAKE3 from its specification. Input is split into 1024-byte chunks; each
// chunk is compressed block by block (64 bytes) starting from the key words
// (IV in hash mode), flags CHUNK_START on the first block and CHUNK_END on the
// last. Chunk chaining values are merged pairwise (PARENT flag) as soon as a
// completed subtree allows it, which the number of trailing zero bits of the
// chunk count tells; the last node is compressed with ROOT, and its output
// blocks (counter 0, 1, …) form the extendable output.
#include "nydus/storage/blake3.h"

#include <cstring>

namespace nydus::storage {
namespace {

constexpr std::array<std::uint32_t, 8> kIv = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                                              0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};
constexpr std::uint32_t kChunkStart = 1, kChunkEnd = 2, kParent = 4, kRoot = 8;
constexpr std::size_t kChunkLen = 1024, kBlockLen = 64;
constexpr int kPerm[16] = {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8};

inline std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

inline void g(std::uint32_t* s, int a, int b, int c, int d, std::uint32_t mx, std::uint32_t my) {
  s[a] = s[a] + s[b] + mx;
  s[d] = rotr(s[d] ^ s[a], 16);
  s[c] = s[c] + s[d];
  s[b] = rotr(s[b] ^ s[c], 12);
  s[a] = s[a] + s[b] + my;
  s[d] = rotr(s[d] ^ s[a], 8);
  s[c] = s[c] + s[d];
  s[b] = rotr(s[b] ^ s[c], 7);
}

// The compression function; returns all 16 output words.
std::array<std::uint32_t, 16> compress(const std::array<std::uint32_t, 8>& cv, const std::uint8_t block[64],
                                       std::uint64_t counter, std::uint32_t block_len, std::uint32_t flags) {
  std::uint32_t m[16];
  for (int i = 0; i < 16; ++i) {
    m[i] = std::uint32_t(block[4 * i]) | std::uint32_t(block[4 * i + 1]) << 8 |
           std::uint32_t(block[4 * i + 2]) << 16 | std::uint32_t(block[4 * i + 3]) << 24;
  }
  std::uint32_t s[16] = {cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
                         kIv[0], kIv[1], kIv[2], kIv[3], std::uint32_t(counter),
                         std::uint32_t(counter >> 32), block_len, flags};
  for (int round = 0; round < 7; ++round) {
    g(s, 0, 4, 8, 12, m[0], m[1]);
    g(s, 1, 5, 9, 13, m[2], m[3]);
    g(s, 2, 6, 10, 14, m[4], m[5]);
    g(s, 3, 7, 11, 15, m[6], m[7]);
    g(s, 0, 5, 10, 15, m[8], m[9]);
    g(s, 1, 6, 11, 12, m[10], m[11]);
    g(s, 2, 7, 8, 13, m[12], m[13]);
    g(s, 3, 4, 9, 14, m[14], m[15]);
    std::uint32_t p[16];
    for (int i = 0; i < 16; ++i) p[i] = m[kPerm[i]];
    std::memcpy(m, p, sizeof m);
  }
  std::array<std::uint32_t, 16> out;
  for (int i = 0; i < 8; ++i) {
    out[i] = s[i] ^ s[i + 8];
    out[i + 8] = s[i + 8] ^ cv[i];
  }
  return out;
}

std::array<std::uint32_t, 8> first8(const std::array<std::uint32_t, 16>& w) {
  std::array<std::uint32_t, 8> r;
  std::memcpy(r.data(), w.data(), 32);
  return r;
}

// A node whose compression is deferred until we know whether it is the root.
struct Output {
  std::array<std::uint32_t, 8> cv;
  std::uint8_t block[64];
  std::uint64_t counter;
  std::uint32_t block_len;
  std::uint32_t flags;
  std::array<std::uint32_t, 8> chaining_value() const { return first8(compress(cv, block, counter, block_len, flags)); }
};

Output parent_output(const std::array<std::uint32_t, 8>& l, const std::array<std::uint32_t, 8>& r) {
  Output o{kIv, {}, 0, kBlockLen, kParent};
  for (int i = 0; i < 8; ++i) {
    for (int b = 0; b < 4; ++b) {
      o.block[4 * i + b] = std::uint8_t(l[i] >> (8 * b));
      o.block[32 + 4 * i + b] = std::uint8_t(r[i] >> (8 * b));
    }
  }
  return o;
}

}  // namespace

Blake3Hasher::Blake3Hasher() { chunk_.cv = kIv; }

void Blake3Hasher::push_cv(std::array<std::uint32_t, 8> cv, std::uint64_t total_chunks) {
  // Merge completed subtrees: one merge per trailing zero bit of the count.
  while ((total_chunks & 1) == 0) {
    cv = parent_output(stack_[--stack_len_], cv).chaining_value();
    total_chunks >>= 1;
  }
  stack_[stack_len_++] = cv;
}

void Blake3Hasher::update(std::span<const std::uint8_t> data) {
  while (!data.empty()) {
    if (chunk_.len() == kChunkLen) {
      // The chunk is full and more input follows: it is not the root.
      std::uint32_t flags = kChunkEnd | (chunk_.blocks_compressed == 0 ? kChunkStart : 0);
      auto cv = first8(compress(chunk_.cv, chunk_.block.data(), chunk_.counter, chunk_.block_len, flags));
      std::uint64_t total = chunk_.counter + 1;
      push_cv(cv, total);
      chunk_ = ChunkState{};
      chunk_.cv = kIv;
      chunk_.counter = total;
    }
    if (chunk_.block_len == kBlockLen) {
      std::uint32_t flags = chunk_.blocks_compressed == 0 ? kChunkStart : 0;
      chunk_.cv = first8(compress(chunk_.cv, chunk_.block.data(), chunk_.counter, kBlockLen, flags));
      ++chunk_.blocks_compressed;
      chunk_.block.fill(0);
      chunk_.block_len = 0;
    }
    std::size_t want = std::min(kBlockLen - chunk_.block_len, data.size());
    std::memcpy(chunk_.block.data() + chunk_.block_len, data.data(), want);
    chunk_.block_len = std::uint8_t(chunk_.block_len + want);
    data = data.subspan(want);
  }
}

void Blake3Hasher::finalize(std::span<std::uint8_t> out) const {
  Output o{chunk_.cv, {}, chunk_.counter, chunk_.block_len,
           kChunkEnd | (chunk_.blocks_compressed == 0 ? kChunkStart : 0u)};
  std::memcpy(o.block, chunk_.block.data(), 64);
  for (std::size_t i = stack_len_; i > 0; --i) o = parent_output(stack_[i - 1], o.chaining_value());
  std::uint64_t counter = 0;
  std::size_t pos = 0;
  while (pos < out.size()) {
    auto words = compress(o.cv, o.block, counter++, o.block_len, o.flags | kRoot);
    for (int i = 0; i < 16 && pos < out.size(); ++i) {
      for (int b = 0; b < 4 && pos < out.size(); ++b) out[pos++] = std::uint8_t(words[i] >> (8 * b));
    }
  }
}

}  // namespace nydus::storage
