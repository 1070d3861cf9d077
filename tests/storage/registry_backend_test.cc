// The registry and http-proxy backends against tests/registry/fake_registry.py: ranges and
// sizes, Basic and Bearer auth (one token fetch shared by threads, refetched
// once when refused, POST then GET), redirects without Authorization,
// transient faults retried to the right bytes, persistent ones as clean
// errors, timeouts honoured, no secret in any error message.
#include "nydus/storage/registry_backend.h"
#include "nydus/storage/http_proxy_backend.h"

#include <stdlib.h>

#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "nydus/storage/digest.h"
#include "util/raw_client.h"
#include "util/registry_server.h"

namespace nydus::storage {
namespace {

using testutil::FakeRegistry;
const std::string kRepo = "test/repo";
const std::string kUserPass = "alice:wonderland";
const std::string kUserPassB64 = "YWxpY2U6d29uZGVybGFuZA==";

class RegistryBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    blobs_ = dir_.file("blobs");
    std::filesystem::create_directories(blobs_);
    std::mt19937 rng(42);
    bytes_.resize(3 * 1024 * 1024 + 123);
    for (auto& b : bytes_) b = std::uint8_t(rng());
    id_ = to_hex(sha256(bytes_).value());
    std::ofstream(blobs_ + "/" + id_, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes_.data()), std::streamsize(bytes_.size()));
  }

  // Starts the fake registry; false (and a skip/failure recorded) if it cannot run.
  bool serve(const std::vector<std::string>& args) {
    server_ = std::make_unique<FakeRegistry>(dir_.path(), blobs_, args);
    if (!server_->skip_reason().empty()) {
      skip_ = server_->skip_reason();
      return false;
    }
    EXPECT_TRUE(server_->up()) << server_->log();
    return server_->up();
  }

  config::RegistryConfig config() const {
    config::RegistryConfig c;
    c.scheme = "http";
    c.host = server_->host();
    c.repo = kRepo;
    c.retry_limit = 2;
    return c;
  }

  std::unique_ptr<RegistryBackend> backend(const config::RegistryConfig& c) {
    auto b = RegistryBackend::create(c);
    EXPECT_TRUE(b);
    return b ? std::move(*b) : nullptr;
  }

  // Reads [off, off+len) and checks the bytes; "" or the error text.
  std::string check_read(RegistryBackend& b, std::uint64_t off, std::size_t len) {
    std::vector<std::uint8_t> out(len);
    auto n = b.read(id_, off, out);
    if (!n) return n.error().message();
    std::size_t expect = off >= bytes_.size() ? 0 : std::min<std::size_t>(len, bytes_.size() - off);
    if (*n != expect) return "read " + std::to_string(*n) + " bytes, expected " + std::to_string(expect);
    if (!std::equal(out.begin(), out.begin() + std::ptrdiff_t(expect), bytes_.begin() + std::ptrdiff_t(off))) {
      return "wrong bytes";
    }
    return "";
  }

  testutil::TempDir dir_;
  std::string blobs_, id_, skip_;
  std::vector<std::uint8_t> bytes_;
  std::unique_ptr<FakeRegistry> server_;
};

#define SERVE_OR_SKIP(...)                        \
  do {                                            \
    if (!serve(__VA_ARGS__)) {                    \
      if (!skip_.empty()) GTEST_SKIP() << skip_;  \
      return;                                     \
    }                                             \
  } while (0)

TEST_F(RegistryBackendTest, SizeByHeadAndRangesByGet) {
  SERVE_OR_SKIP({});
  auto b = backend(config());
  auto size = b->blob_size(id_);
  ASSERT_TRUE(size) << size.error().message();
  EXPECT_EQ(*size, bytes_.size());
  EXPECT_EQ(check_read(*b, 0, 4096), "");
  EXPECT_EQ(check_read(*b, 1000, 1 << 20), "");
  EXPECT_EQ(check_read(*b, bytes_.size() - 100, 4096), "");  // short only at the blob's end
  EXPECT_EQ(b->metrics().read_count(), 3u);
  EXPECT_EQ(b->metrics().read_errors(), 0u);
  auto missing = b->blob_size(std::string(64, 'a'));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find("404"), std::string::npos) << missing.error().message();
}

TEST_F(RegistryBackendTest, BasicAuthAfterChallengeAndRenewedCredentials) {
  SERVE_OR_SKIP({"--auth", "basic", "--user", kUserPass});
  auto c = config();
  c.auth = "d3Jvbmc6d3Jvbmc=";  // wrong:wrong
  auto b = backend(c);
  auto size = b->blob_size(id_);
  ASSERT_FALSE(size);
  EXPECT_NE(size.error().message().find("401"), std::string::npos) << size.error().message();
  EXPECT_EQ(size.error().message().find("d3Jvbmc6d3Jvbmc="), std::string::npos);
  b->renew_credentials(kUserPassB64);  // PUT /api/v1/config registry_auth
  EXPECT_EQ(check_read(*b, 4096, 8192), "");
  EXPECT_EQ(b->blob_size(id_).value_or(0), bytes_.size());
}

TEST_F(RegistryBackendTest, OneTokenFetchSharedByConcurrentFirstRequests) {
  SERVE_OR_SKIP({"--auth", "bearer", "--expires-in", "600"});
  auto b = backend(config());
  std::vector<std::thread> threads;
  std::vector<std::string> errors(16);
  for (std::size_t i = 0; i < errors.size(); ++i) {
    threads.emplace_back([&, i] { errors[i] = check_read(*b, i * 65536, 65536); });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  for (int i = 0; i < 20; ++i) EXPECT_EQ(check_read(*b, std::uint64_t(i) * 4096, 4096), "");
  EXPECT_EQ(b->token_fetches(), 1u);
  EXPECT_EQ(server_->stats()["token_fetches"], 1);
}

TEST_F(RegistryBackendTest, RefusedTokenIsFetchedAgainOnce) {
  SERVE_OR_SKIP({"--auth", "bearer", "--expires-in", "600"});
  auto b = backend(config());
  EXPECT_EQ(check_read(*b, 0, 4096), "");
  server_->control({{"expire_tokens", true}});  // the server forgets every token it issued
  EXPECT_EQ(check_read(*b, 4096, 4096), "");
  EXPECT_EQ(check_read(*b, 8192, 4096), "");
  EXPECT_EQ(b->token_fetches(), 2u);
  EXPECT_EQ(server_->stats()["token_fetches"], 2);
}

// A token is renewed shortly before its expires_in runs out, so the registry
// never has to refuse an expired one. Reads go on until the second fetch
// (hang guard 30 s); the only 401 is the first request's challenge.
TEST_F(RegistryBackendTest, TokenIsRenewedBeforeItExpires) {
  SERVE_OR_SKIP({"--auth", "bearer", "--expires-in", "5"});
  auto b = backend(config());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (b->token_fetches() < 2 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_EQ(check_read(*b, 0, 4096), "");
  }
  EXPECT_EQ(b->token_fetches(), 2u);
  auto s = server_->stats();
  EXPECT_EQ(s["token_fetches"], 2);
  EXPECT_EQ(s["unauthorized"], 1);
}

TEST_F(RegistryBackendTest, TokenByGetWhenPostIsRefusedAndGetRemembered) {
  SERVE_OR_SKIP({"--auth", "bearer", "--no-post-token", "--user", kUserPass});
  auto c = config();
  c.auth = kUserPassB64;
  auto b = backend(c);
  EXPECT_EQ(check_read(*b, 0, 4096), "");
  server_->control({{"expire_tokens", true}});
  EXPECT_EQ(check_read(*b, 0, 4096), "");
  auto s = server_->stats();
  EXPECT_EQ(s["token_fetches"], 2);
  EXPECT_EQ(s["token_posts"], 1);  // the second fetch went straight to GET
}

TEST_F(RegistryBackendTest, RedirectTargetGetsNoAuthorizationAndIsCachedPerBlob) {
  SERVE_OR_SKIP({"--auth", "bearer", "--expires-in", "600"});
  server_->control({{"redirect", true}});
  auto b = backend(config());
  EXPECT_EQ(b->blob_size(id_).value_or(0), bytes_.size());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(check_read(*b, std::uint64_t(i) * 100000, 100000), "");
  auto s = server_->stats();
  EXPECT_EQ(s["auth_on_redirect"], 0);
  EXPECT_EQ(s["redirected_gets"], 6);  // HEAD + 5 GETs at the store
  EXPECT_EQ(s["blob_gets"], 1);  // the first GET's Location served the other four
}

TEST_F(RegistryBackendTest, TransientFaultsAreRetriedToTheRightBytes) {
  SERVE_OR_SKIP({"--auth", "bearer", "--expires-in", "600"});
  auto b = backend(config());
  for (std::string fault : {"503", "429", "reset", "truncate", "bad_range", "full200", "huge_headers"}) {
    SCOPED_TRACE(fault);
    server_->control({{"faults", {fault}}});
    EXPECT_EQ(check_read(*b, 1 << 20, 300000), "");
  }
  server_->control({{"faults", {"503", "reset"}}});  // two in a row: retry_limit 2 covers them
  EXPECT_EQ(check_read(*b, 7, 1000), "");
  EXPECT_EQ(b->metrics().read_errors(), 0u);
}

TEST_F(RegistryBackendTest, PersistentFaultsAreCleanErrorsWithoutSecrets) {
  SERVE_OR_SKIP({"--auth", "bearer", "--expires-in", "600"});
  server_->control({{"redirect", true}});
  auto c = config();
  c.registry_token = "static-secret-token";
  auto b = backend(c);
  for (std::string fault : {"503", "truncate", "bad_range", "huge_headers"}) {
    SCOPED_TRACE(fault);
    server_->control({{"redirect", false}, {"faults", {fault, fault, fault}}});
    std::vector<std::uint8_t> out(4096);
    auto r = b->read(id_, 0, out);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kIo);
    const std::string& m = r.error().message();
    EXPECT_NE(m.find("after 3 attempts"), std::string::npos) << m;
    EXPECT_EQ(m.find("static-secret-token"), std::string::npos) << m;
    EXPECT_EQ(m.find("tok-"), std::string::npos) << m;
    if (fault == "huge_headers") {
      EXPECT_NE(m.find("response headers over"), std::string::npos) << m;
    }
  }
  EXPECT_GT(server_->stats()["token_fetches"].get<int>(), 0);  // the static token was refused: the challenge ran
  EXPECT_EQ(b->metrics().read_errors(), 4u);
}

TEST_F(RegistryBackendTest, UnansweredRequestsEndWithinTimeoutTimesAttempts) {
  SERVE_OR_SKIP({});
  auto c = config();
  c.timeout = 1;
  c.retry_limit = 1;
  auto b = backend(c);
  server_->control({{"faults", {"hang", "hang"}}});
  auto start = std::chrono::steady_clock::now();
  std::vector<std::uint8_t> out(4096);
  auto r = b->read(id_, 0, out);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("timed out"), std::string::npos) << r.error().message();
  EXPECT_LT(took, std::chrono::seconds(30));  // hang guard: 2 x 1 s + backoff is the design
}

TEST_F(RegistryBackendTest, HundredConcurrentReadersOfOneColdRange) {
  SERVE_OR_SKIP({"--auth", "bearer", "--expires-in", "600"});
  auto b = backend(config());
  std::vector<std::thread> threads;
  std::vector<std::string> errors(100);
  for (std::size_t i = 0; i < errors.size(); ++i) {
    threads.emplace_back([&, i] { errors[i] = check_read(*b, 2 << 20, 1 << 20); });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(b->token_fetches(), 1u);
  EXPECT_EQ(b->metrics().read_count(), 100u);
}

TEST_F(RegistryBackendTest, UnreachableHostIsAClearError) {
  config::RegistryConfig c;
  c.scheme = "http";
  c.host = "127.0.0.1:" + std::to_string(testutil::free_port());
  c.repo = kRepo;
  c.auth = kUserPassB64;
  auto b = RegistryBackend::create(c);
  ASSERT_TRUE(b);
  auto r = (*b)->blob_size(id_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("HEAD http://" + c.host + "/v2/test/repo/blobs/sha256:"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(r.error().message().find(kUserPassB64), std::string::npos);
}

// NYDUS_HEADER_<Name> adds a header to registry requests, not to redirect targets.
TEST_F(RegistryBackendTest, EnvironmentHeadersGoToTheRegistryOnly) {
  SERVE_OR_SKIP({});
  ::setenv("NYDUS_HEADER_X_Nydus_Test", "on", 1);
  auto b = backend(config());
  ::unsetenv("NYDUS_HEADER_X_Nydus_Test");
  EXPECT_EQ(check_read(*b, 0, 4096), "");
  server_->control({{"redirect", true}});
  EXPECT_EQ(check_read(*b, 4096, 4096), "");
  auto s = server_->stats();
  EXPECT_EQ(s["test_header"], 2);
  EXPECT_EQ(s["redirected_gets"], 1);
  EXPECT_EQ(s["test_header_on_redirect"], 0);
}

// proxy: requests go through it while it is healthy; a failing proxy falls
// back to the registry (fallback) or fails the read (no fallback).
TEST_F(RegistryBackendTest, ProxyWhileHealthyElseFallbackOrError) {
  SERVE_OR_SKIP({});
  const std::string pdir = dir_.file("proxy");
  std::filesystem::create_directories(pdir);
  FakeRegistry proxy(pdir, blobs_, {"--repo", kRepo});
  ASSERT_TRUE(proxy.up()) << proxy.log();
  auto c = config();
  c.proxy.url = proxy.url();
  c.proxy.ping_url = proxy.url() + "/v2/";
  c.proxy.check_interval = 3600;  // one failure keeps it out for the whole test
  c.proxy.fallback = true;
  auto b = backend(c);
  EXPECT_EQ(check_read(*b, 0, 4096), "");
  EXPECT_EQ(proxy.stats()["blob_gets"], 1);
  EXPECT_EQ(proxy.stats()["proxied"], 1);  // a forward-proxy request naming the registry
  EXPECT_EQ(server_->stats()["blob_gets"], 0);
  proxy.control({{"faults", {"503"}}});
  EXPECT_EQ(check_read(*b, 4096, 4096), "");  // 503 from the proxy: straight to the registry
  EXPECT_EQ(check_read(*b, 8192, 4096), "");  // and it stays there while the proxy is out
  EXPECT_EQ(proxy.stats()["blob_gets"], 2);
  EXPECT_EQ(server_->stats()["blob_gets"], 2);

  auto pinged = config();  // the proxy works but its ping does not: not used
  pinged.proxy.url = proxy.url();
  pinged.proxy.ping_url = "http://127.0.0.1:" + std::to_string(testutil::free_port()) + "/ping";
  EXPECT_EQ(check_read(*backend(pinged), 0, 4096), "");
  EXPECT_EQ(proxy.stats()["blob_gets"], 2);
  EXPECT_EQ(server_->stats()["blob_gets"], 3);

  auto dead = config();
  dead.proxy.url = "http://127.0.0.1:" + std::to_string(testutil::free_port());
  dead.proxy.fallback = true;
  EXPECT_EQ(check_read(*backend(dead), 0, 4096), "");
  dead.proxy.fallback = false;
  std::vector<std::uint8_t> out(4096);
  auto r = backend(dead)->read(id_, 0, out);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("proxy"), std::string::npos) << r.error().message();
}

// proxy.use_http: an https registry is asked for through the proxy in plain
// http, so the proxy can serve it; without it curl tunnels TLS with CONNECT.
TEST_F(RegistryBackendTest, ProxyUseHttpAsksForHttpsOriginsInPlainHttp) {
  SERVE_OR_SKIP({});
  const std::string pdir = dir_.file("proxy");
  std::filesystem::create_directories(pdir);
  FakeRegistry proxy(pdir, blobs_, {"--repo", kRepo});
  ASSERT_TRUE(proxy.up()) << proxy.log();
  auto c = config();
  c.scheme = "https";
  c.host = "origin.invalid";  // reachable only through the proxy
  c.retry_limit = 0;
  c.proxy.url = proxy.url();
  c.proxy.fallback = false;
  c.proxy.use_http = true;
  EXPECT_EQ(check_read(*backend(c), 0, 4096), "");
  EXPECT_EQ(proxy.stats()["proxied"], 1);
  EXPECT_EQ(proxy.stats()["connects"], 0);

  c.proxy.use_http = false;
  std::vector<std::uint8_t> out(4096);
  EXPECT_FALSE(backend(c)->read(id_, 0, out));
  EXPECT_EQ(proxy.stats()["connects"], 1);
  EXPECT_EQ(proxy.stats()["proxied"], 1);
}

// http-proxy: the same checks without auth, over TCP and over a Unix socket.
TEST_F(RegistryBackendTest, HttpProxyOverTcpAndUnixSocket) {
  const std::string sock = dir_.file("store.sock");
  SERVE_OR_SKIP({"--unix-socket", sock});
  for (const std::string& addr : {server_->store_url() + "/", sock}) {
    SCOPED_TRACE(addr);
    config::HttpProxyConfig c;
    c.addr = addr;
    c.path = "blobs/";
    c.retry_limit = 1;
    auto b = HttpProxyBackend::create(c);
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ((*b)->blob_size(id_).value_or(0), bytes_.size());
    std::vector<std::uint8_t> out(100000);
    auto n = (*b)->read(id_, 12345, out);
    ASSERT_TRUE(n) << n.error().message();
    ASSERT_EQ(*n, out.size());
    EXPECT_TRUE(std::equal(out.begin(), out.end(), bytes_.begin() + 12345));
    auto missing = (*b)->blob_size(std::string(64, 'b'));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
    EXPECT_EQ((*b)->metrics().backend_type(), "http-proxy");
  }
  config::HttpProxyConfig bad;
  bad.addr = "relative/path";
  EXPECT_FALSE(HttpProxyBackend::create(bad));
}

TEST(RegistryBackendConfig, RefusesMissingHostRepoOrBadScheme) {
  config::RegistryConfig c;
  c.host = "h";
  EXPECT_FALSE(RegistryBackend::create(c));
  c.repo = "r";
  EXPECT_TRUE(RegistryBackend::create(c));
  c.scheme = "ftp";
  EXPECT_FALSE(RegistryBackend::create(c));
}

}  // namespace
}  // namespace nydus::storage
