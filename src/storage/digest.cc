// sha256 through OpenSSL's EVP interface, blake3 through blake3.cc.
#include "nydus/storage/digest.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include "nydus/storage/blake3.h"

namespace nydus::storage {

const char* to_string(DigestAlgo algo) { return algo == DigestAlgo::kSha256 ? "sha256" : "blake3"; }

Result<Digest> sha256(std::span<const std::uint8_t> data) {
  Digest d{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr) != 1 || len != d.size()) {
    char why[256] = "no OpenSSL error";
    if (unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, why, sizeof(why));
    ERR_clear_error();  // the queue is per thread: leave nothing for an unrelated caller
    return fail(ErrorCode::kInternal, std::string("sha256 unavailable: ") + why);
  }
  return d;
}

Digest blake3(std::span<const std::uint8_t> data) {
  Blake3Hasher h;
  h.update(data);
  Digest d{};
  h.finalize(d);
  return d;
}

Result<Digest> compute_digest(DigestAlgo algo, std::span<const std::uint8_t> data) {
  if (algo == DigestAlgo::kSha256) return sha256(data);
  return blake3(data);
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (auto b : bytes) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

}  // namespace nydus::storage
