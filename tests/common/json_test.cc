#include "nydus/json.h"

#include <gtest/gtest.h>

namespace nydus::json {
namespace {

struct Conf {
  std::string log_level;
  std::uint32_t n = 7;
  std::optional<std::string> opt;
  std::vector<std::string> list;
};

tl::expected<Conf, Error> decode(std::string_view text) {
  auto doc = Document::parse(text);
  if (!doc) return tl::unexpected(doc.error());
  Decoder d(*doc);
  Conf c;
  if (auto o = d.root_object("struct DaemonConf")) {
    o->required("log_level", c.log_level);
    o->optional("n", c.n);
    o->optional("opt", c.opt);
    o->optional("list", c.list);
  }
  if (!d.ok()) return tl::unexpected(d.error());
  return c;
}

std::string debug_of(std::string_view text) {
  auto r = decode(text);
  EXPECT_FALSE(r.has_value()) << text;
  return r ? "" : r.error().to_debug();
}

// The serde messages and positions listed in the wire contract (§1.7).
TEST(JsonTest, MissingFieldReportsEndOfObject) {
  EXPECT_EQ(debug_of("{}"), "Error(\"missing field `log_level`\", line: 1, column: 2)");
}

TEST(JsonTest, NotJsonIsExpectedIdent) {
  EXPECT_EQ(debug_of("not json"), "Error(\"expected ident\", line: 1, column: 2)");
}

TEST(JsonTest, WhitespaceOnlyIsEof) {
  EXPECT_EQ(debug_of(" "), "Error(\"EOF while parsing a value\", line: 1, column: 1)");
}

TEST(JsonTest, WrongTypeReportsAfterToken) {
  EXPECT_EQ(debug_of("{\"log_level\":1}"),
            "Error(\"invalid type: integer `1`, expected a string\", line: 1, column: 15)");
}

TEST(JsonTest, DuplicateKeyIsRejected) {
  EXPECT_EQ(debug_of("{\"log_level\":\"info\",\"log_level\":\"x\"}"),
            "Error(\"duplicate field `log_level`\", line: 1, column: 31)");
}

TEST(JsonTest, TrailingCharacters) {
  auto r = decode("{\"log_level\":\"info\"} x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "trailing characters");
}

TEST(JsonTest, UnknownFieldsIgnoredAndDefaultsKept) {
  auto r = decode("{\"log_level\":\"info\",\"other\":[1,2,{\"a\":null}]}");
  ASSERT_TRUE(r) << r.error().to_debug();
  EXPECT_EQ(r->log_level, "info");
  EXPECT_EQ(r->n, 7u);
  EXPECT_FALSE(r->opt);
}

TEST(JsonTest, NullOnlyForOptionalFields) {
  auto r = decode("{\"log_level\":\"info\",\"opt\":null}");
  ASSERT_TRUE(r);
  auto bad = decode("{\"log_level\":\"info\",\"n\":null}");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().reason, "invalid type: null, expected u32");
  EXPECT_EQ(bad.error().path, "/n");
}

TEST(JsonTest, IntegerRangeIsChecked) {
  auto r = decode("{\"log_level\":\"a\",\"n\":4294967296}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "invalid value: integer `4294967296`, expected u32");
  auto neg = decode("{\"log_level\":\"a\",\"n\":-1}");
  ASSERT_FALSE(neg);
  EXPECT_EQ(neg.error().reason, "invalid value: integer `-1`, expected u32");
  auto flt = decode("{\"log_level\":\"a\",\"n\":1.5}");
  ASSERT_FALSE(flt);
  EXPECT_EQ(flt.error().reason, "invalid type: floating point `1.5`, expected u32");
}

TEST(JsonTest, ArrayElementsAreTyped) {
  auto r = decode("{\"log_level\":\"a\",\"list\":[\"x\",2]}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().path, "/list/1");
  EXPECT_EQ(r.error().to_key_message(), "list.1: invalid type: integer `2`, expected a string");
}

TEST(JsonTest, RootMustBeObject) {
  EXPECT_EQ(debug_of("[\"debug\"]"),
            "Error(\"invalid type: sequence, expected struct DaemonConf\", line: 1, column: 9)");
}

TEST(JsonTest, PositionsCountLines) {
  auto r = decode("{\n  \"log_level\": true\n}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().position.line, 2u);
  EXPECT_EQ(r.error().position.column, 19u);
}

TEST(JsonTest, DeepNestingIsRefusedNotCrashing) {
  std::string deep(100000, '[');
  auto doc = Document::parse(deep);
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().reason, "recursion limit exceeded");
}

TEST(JsonTest, NestedDuplicatesAreRejected) {
  auto doc = Document::parse("{\"a\":{\"b\":1,\"b\":2}}");
  ASSERT_FALSE(doc);
  EXPECT_EQ(doc.error().reason, "duplicate field `b`");
  // Same key in sibling objects is fine.
  EXPECT_TRUE(Document::parse("[{\"b\":1},{\"b\":2}]"));
}

}  // namespace
}  // namespace nydus::json

namespace nydus::json {
namespace {

std::string reason_of(std::string_view text) {
  auto doc = Document::parse(text);
  EXPECT_FALSE(doc) << text;
  return doc ? "" : doc.error().reason;
}

// serde's wording for the common syntax errors.
TEST(JsonSyntaxTest, SerdeReasons) {
  EXPECT_EQ(reason_of("x"), "expected value");
  EXPECT_EQ(reason_of("nul"), "EOF while parsing a value");
  EXPECT_EQ(reason_of("tru x"), "expected ident");
  EXPECT_EQ(reason_of("{\"a\":1,}"), "trailing comma");
  EXPECT_EQ(reason_of("[1,]"), "trailing comma");
  EXPECT_EQ(reason_of("{version}"), "key must be a string");
  EXPECT_EQ(reason_of("{\"a\" 1}"), "expected `:`");
  EXPECT_EQ(reason_of("{\"a\":1"), "EOF while parsing an object");
  EXPECT_EQ(reason_of("[1"), "EOF while parsing a list");
  EXPECT_EQ(reason_of(""), "EOF while parsing a value");
}

}  // namespace
}  // namespace nydus::json
