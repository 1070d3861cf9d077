// SHA-256 that OpenSSL cannot provide is an error, not a zero digest. OpenSSL
// reads its configuration once, on first use, so each case runs in a fresh
// process (threadsafe death-test style re-executes the binary) whose
// configuration activates only the null provider.
#include "nydus/storage/digest.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "nydus/storage/builder.h"

namespace nydus::storage {
namespace {

constexpr char kNullProviderOnly[] =
    "openssl_conf = openssl_init\n"
    "[openssl_init]\nproviders = provider_sect\n"
    "[provider_sect]\nnull = null_sect\n"
    "[null_sect]\nactivate = 1\n";

// Points OPENSSL_CONF at an in-memory file; must run before OpenSSL's first use.
void use_null_provider_only() {
  int fd = ::memfd_create("openssl.cnf", 0);
  if (fd < 0 || ::write(fd, kNullProviderOnly, sizeof(kNullProviderOnly) - 1) != ssize_t(sizeof(kNullProviderOnly) - 1)) {
    std::_Exit(2);
  }
  ::setenv("OPENSSL_CONF", ("/proc/self/fd/" + std::to_string(fd)).c_str(), 1);
}

bool sha256_reports_the_failure() {
  const std::uint8_t abc[] = {'a', 'b', 'c'};
  auto d = sha256(abc);
  auto c = compute_digest(DigestAlgo::kSha256, abc);
  return !d && d.error().code() == ErrorCode::kInternal && !c;
}

TEST(DigestDeathTest, Sha256WithoutAProviderIsAnError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        use_null_provider_only();
        std::_Exit(sha256_reports_the_failure() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// The builder names the blob by its sha256: without SHA-256 it fails instead
// of naming the blob by 64 zeros.
TEST(DigestDeathTest, BuilderFailsWithoutSha256) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string src = std::string(NYDUS_SOURCE_DIR) + "/../shared/fixtures/rafs-v6";
  if (::access(src.c_str(), R_OK) != 0) GTEST_SKIP() << "fixture directory missing: " << src;
  EXPECT_EXIT(
      {
        use_null_provider_only();
        auto r = build_image(src, BuildOptions{});
        std::_Exit(!r && r.error().code() == ErrorCode::kInternal ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace nydus::storage
