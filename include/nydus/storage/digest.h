// Chunk digests: BLAKE3-256 and SHA-256 over the uncompressed chunk bytes
// (RAFS superblock flags HASH_BLAKE3 / HASH_SHA256, blob-table digest algo
// 0 = blake3, 1 = sha256).
//
// SHA-256 comes from OpenSSL (EVP); BLAKE3 is the project's own portable
// implementation (blake3.h), since Debian 12 packages no BLAKE3 library.
//
// sha256 fails (kInternal) when OpenSSL cannot provide SHA-256, e.g. under a
// provider configuration without it: a digest left unset would silently read
// as a mismatch, or name a blob by zeros.
//
// Thread-safety: free functions, safe to call from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "nydus/result.h"

namespace nydus::storage {

using Digest = std::array<std::uint8_t, 32>;

// On-disk values of the blob table's digest field.
enum class DigestAlgo : std::uint32_t { kBlake3 = 0, kSha256 = 1 };

// "blake3" / "sha256".
const char* to_string(DigestAlgo algo);

Result<Digest> sha256(std::span<const std::uint8_t> data);
Digest blake3(std::span<const std::uint8_t> data);
Result<Digest> compute_digest(DigestAlgo algo, std::span<const std::uint8_t> data);

// Lower-case hex of any byte range.
std::string to_hex(std::span<const std::uint8_t> bytes);

}  // namespace nydus::storage
