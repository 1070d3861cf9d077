// Helpers for the configuration tests: the documents under tests/config/data
// and the error a parser returns for a text it must reject.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "nydus/result.h"

namespace nydus::testutil {

// The contents of tests/config/data/<name>. A file that cannot be read is a
// test failure, and the result is then empty.
std::string read_config_data(const std::string& name);

// The message of the error `parse(text)` returns. Accepting the text is a test
// failure (and the result is ""); so is an error whose code is not `code`,
// when given.
template <class Parse>
std::string error_of(Parse&& parse, std::string_view text, std::optional<ErrorCode> code = std::nullopt) {
  auto r = parse(text);
  EXPECT_FALSE(r.has_value()) << text;
  if (r) return "";
  if (code) {
    EXPECT_EQ(r.error().code(), *code) << text;
  }
  return r.error().message();
}

}  // namespace nydus::testutil
