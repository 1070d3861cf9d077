// BLAKE3 (hash mode, extendable output), written from the BLAKE3
// specification (github.com/BLAKE3-team/BLAKE3-specs): 1 KiB chunks of 64-byte
// blocks compressed with the 7-round function, chunk chaining values merged
// in a binary tree whose shape is fixed by the input length, the root node
// compressed with the ROOT flag. Portable C++, no SIMD; checked against the
// official test vectors (tests/storage/blake3_test.cc).
//
// Thread-safety: a Blake3Hasher is used by one thread at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace nydus::storage {

class Blake3Hasher {
 public:
  Blake3Hasher();

  // Feeds more input; any split of the input gives the same result.
  void update(std::span<const std::uint8_t> data);

  // Writes out.size() bytes of output (32 is the standard hash; longer is
  // the extendable output). Does not change the hasher state.
  void finalize(std::span<std::uint8_t> out) const;

 private:
  struct ChunkState {
    std::array<std::uint32_t, 8> cv;
    std::uint64_t counter = 0;
    std::array<std::uint8_t, 64> block{};
    std::uint8_t block_len = 0;
    std::uint8_t blocks_compressed = 0;
    std::size_t len() const { return 64u * blocks_compressed + block_len; }
  };
  void push_cv(std::array<std::uint32_t, 8> cv, std::uint64_t total_chunks);

  ChunkState chunk_;
  std::array<std::array<std::uint32_t, 8>, 54> stack_{};  // subtree chaining values
  std::size_t stack_len_ = 0;
};

}  // namespace nydus::storage
