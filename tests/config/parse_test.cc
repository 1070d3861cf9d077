// parse_config: §7.1 order of attempts, which error is reported, files.
#include "nydus/config/parse.h"

#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "nydus/config/validate.h"
#include "util/config_data.h"

namespace nydus::config {
namespace {

using testutil::read_config_data;

std::string error_of(std::string_view text) {
  return testutil::error_of([](std::string_view t) { return parse_config(t); }, text, ErrorCode::kInvalidArgument);
}

constexpr std::string_view kLegacyBody =
    R"("device":{"backend":{"type":"localfs","config":{"dir":"/d"}}},"mode":"direct")";

TEST(ParseTest, EachFormatIsAccepted) {
  auto json = parse_config(R"({"version":2,"backend":{"type":"localfs","localfs":{"dir":"/d"}}})");
  ASSERT_TRUE(json) << json.error().message();
  EXPECT_EQ(json->backend->localfs->dir, "/d");

  auto toml = parse_config("version = 2\nbackend.type = \"localfs\"\nbackend.localfs.dir = \"/d\"\n");
  ASSERT_TRUE(toml) << toml.error().message();
  EXPECT_EQ(*toml, *json);

  auto legacy = parse_config("{" + std::string(kLegacyBody) + "}");
  ASSERT_TRUE(legacy) << legacy.error().message();
  EXPECT_EQ(legacy->backend, json->backend);
  EXPECT_TRUE(legacy->cache);
  EXPECT_TRUE(legacy->rafs);
}

TEST(ParseTest, ValidationFailureOfJsonV2DoesNotFallBack) {
  // Valid as legacy too, but it decodes as ConfigV2 first, whose validation is final.
  EXPECT_EQ(error_of(R"({"version":2,"backend":{"type":"localfs","localfs":{}},)" + std::string(kLegacyBody) + "}"),
            "backend.localfs.dir: required when blob_file is empty");
}

// Upstream quirk kept (§7.1, §10 #27): a legacy document with a version key.
TEST(ParseTest, LegacyDocumentWithVersionKey) {
  EXPECT_EQ(error_of(R"({"version":1,)" + std::string(kLegacyBody) + "}"), "version: must be 2, got 1");
  auto v2 = parse_config(R"({"version":2,)" + std::string(kLegacyBody) + "}");
  ASSERT_TRUE(v2) << v2.error().message();
  EXPECT_EQ(*v2, ConfigV2{});  // legacy keys ignored: no sections
  EXPECT_EQ(render(validate_for_rafs_mount(*v2)),
            "cache: section required for a RAFS mount; rafs: section required for a RAFS mount");
  // A version that does not decode as u32 makes ConfigV2 fail, and legacy wins.
  auto legacy = parse_config(R"({"version":"1",)" + std::string(kLegacyBody) + "}");
  ASSERT_TRUE(legacy) << legacy.error().message();
  EXPECT_EQ(legacy->backend->localfs->dir, "/d");
}

TEST(ParseTest, JsonWithVersionReportsTheConfigV2Error) {
  EXPECT_EQ(error_of(R"({"version":2,"backend":{"type":1}})"),
            "backend.type: invalid type: integer `1`, expected a string at line 1 column 33");
  EXPECT_EQ(error_of(R"({"version":2,"rafs":{"mode":"direct","mode":"cached"}})"),
            "invalid JSON: duplicate field `mode` at line 1 column 43");
}

TEST(ParseTest, JsonWithoutVersionReportsTheLegacyError) {
  EXPECT_EQ(error_of(R"({"device":{}})"), "device: missing field `backend` at line 1 column 12");
  EXPECT_EQ(error_of("{}"), "missing field `device` at line 1 column 2");
  EXPECT_EQ(error_of(R"({"device":{"backend":{"type":"localfs","config":{}}},"mode":"direct"})"),
            "device.backend.config.dir: required when blob_file is empty");
}

TEST(ParseTest, JsonThatIsNotAnObjectReportsTheConfigV2Error) {
  EXPECT_EQ(error_of(R"("text")"), "invalid type: string \"text\", expected struct ConfigV2 at line 1 column 6");
  EXPECT_EQ(error_of("[2]"), "invalid type: sequence, expected struct ConfigV2 at line 1 column 3");
}

TEST(ParseTest, BrokenJsonReportsTheJsonSyntaxError) {
  // The syntax wording comes from json::Document (nydus/json.h); only our framing is asserted.
  std::string comma = error_of(R"({"version":2,})");
  EXPECT_TRUE(comma.starts_with("invalid JSON: ")) << comma;
  EXPECT_TRUE(comma.ends_with(" at line 1 column 14")) << comma;
  EXPECT_EQ(error_of("  {\"version\":2"), "invalid JSON: EOF while parsing an object at line 1 column 14");
}

TEST(ParseTest, OtherTextReportsTheTomlError) {
  EXPECT_EQ(error_of("version = 2\n[backend]\ntype = 1\n"),
            "backend.type: invalid type: integer `1`, expected a string at line 3 column 8");
  EXPECT_EQ(error_of("version = 2\n[rafs]\nmode = \"lazy\"\n"), "rafs.mode: must be `direct` or `cached`, got `lazy`");
  EXPECT_EQ(error_of(""), "missing field `version` at line 1 column 1");
  EXPECT_EQ(error_of("id = \"x\"\n"), "missing field `version` at line 1 column 1");
  std::string syntax = error_of("version = \n");
  EXPECT_TRUE(syntax.starts_with("invalid TOML: ")) << syntax;
  EXPECT_TRUE(syntax.ends_with(" at line 1 column 11")) << syntax;
}

TEST(ParseTest, SingleFormatEntryPoints) {
  EXPECT_TRUE(parse_config_json(R"({"version":2})"));
  EXPECT_TRUE(parse_config_json("version = 2").error().message().starts_with("invalid JSON: "));
  EXPECT_TRUE(parse_config_toml("version = 2"));
  EXPECT_TRUE(parse_config_toml(R"({"version":2})").error().message().starts_with("invalid TOML: "));
  EXPECT_EQ(parse_config_toml("version = 3").error().message(), "version: must be 2, got 3");
  EXPECT_TRUE(parse_legacy_config("{" + std::string(kLegacyBody) + "}"));
  EXPECT_EQ(parse_legacy_config(R"({"version":2})").error().message(), "missing field `device` at line 1 column 13");
}

class ParseFileTest : public testing::Test {
 protected:
  void TearDown() override { ::unlink(path_.c_str()); }
  void write(const std::string& content) {
    std::ofstream out(path_, std::ios::binary);
    out << content;
  }
  std::string path_ = testing::TempDir() + "nydus-config-" + std::to_string(::getpid()) + ".conf";
};

TEST_F(ParseFileTest, ReadsAndParses) {
  write(read_config_data("full.toml"));
  auto c = parse_config_file(path_);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->id, "toml-full");
}

TEST_F(ParseFileTest, ExactlyOneMebibyteIsAccepted) {
  std::string text = R"({"version":2})";
  text.resize(kMaxConfigFileSize, ' ');
  write(text);
  EXPECT_TRUE(parse_config_file(path_));
}

TEST_F(ParseFileTest, LargerFilesAreRefused) {
  std::string text = R"({"version":2})";
  text.resize(kMaxConfigFileSize + 1, ' ');
  write(text);
  auto c = parse_config_file(path_);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.error().message(), "configuration file " + path_ + " is larger than 1 MiB");
}

TEST_F(ParseFileTest, ErrorsNameTheFile) {
  write("version = 2\n[cache]\ntype = \"blobcache\"\n");
  auto c = parse_config_file(path_);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(),
            "config file " + path_ + ": cache.filecache: section required when type is `blobcache`");

  auto missing = parse_config_file("/nonexistent/nydus.json");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message(), "read config /nonexistent/nydus.json: No such file or directory");
}

}  // namespace
}  // namespace nydus::config
