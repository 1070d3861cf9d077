#include "nydus/daemon/runtime_config.h"

#include <gtest/gtest.h>

namespace nydus::daemon {
namespace {

TEST(RuntimeConfigTest, StoresUnderIdPrefix) {
  RuntimeConfigStore s;
  ASSERT_TRUE(s.update("/snap", {{"proxy_url", "http://p:1"}, {"dragonfly_scheduler_endpoint", "e"}}));
  ASSERT_TRUE(s.update(std::nullopt, {{"proxy_url", "http://q"}}));
  auto mine = s.get("/snap");
  EXPECT_EQ(mine, (api::ConfigMap{{"dragonfly_scheduler_endpoint", "e"}, {"proxy_url", "http://p:1"}}));
  auto all = s.get(std::nullopt);
  EXPECT_EQ(all.at("/snap:proxy_url"), "http://p:1");
  EXPECT_EQ(all.at(":proxy_url"), "http://q");
  EXPECT_TRUE(s.get("/other").empty());
  // "/s" is not a prefix match for "/snap".
  EXPECT_TRUE(s.get("/s").empty());
}

TEST(RuntimeConfigTest, UnknownKeyRejectsWholeUpdate) {
  RuntimeConfigStore s;
  auto r = s.update("/", {{"a_bad_key", "x"}, {"registry_auth", "dXNlcjpwYXNz"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("a_bad_key"), std::string::npos);
  EXPECT_TRUE(s.get(std::nullopt).empty());  // nothing applied (§10 #20)
}

TEST(RuntimeConfigTest, SecretsRedactedOnRead) {
  RuntimeConfigStore s;
  ASSERT_TRUE(s.update("/", {{"registry_auth", "dXNlcjpwYXNz"}, {"proxy_url", "http://user:pw@proxy:8080/x"}}));
  EXPECT_EQ(s.get("/").at("registry_auth"), "<redacted>");
  EXPECT_EQ(s.get("/").at("proxy_url"), "http://<redacted>@proxy:8080/x");
  EXPECT_EQ(s.get(std::nullopt).at("/:registry_auth"), "<redacted>");
  EXPECT_EQ(s.lookup("/", "registry_auth"), "dXNlcjpwYXNz");
  EXPECT_FALSE(s.lookup("/x", "registry_auth"));
  EXPECT_EQ(redact_url_credentials("http://proxy:80/a@b"), "http://proxy:80/a@b");
}

}  // namespace
}  // namespace nydus::daemon
