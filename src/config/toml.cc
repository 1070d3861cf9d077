// TOML text -> json::Document, so that one set of decoders serves both forms.
//
// toml++ parses (and rejects duplicate keys); we then copy its node tree into
// an nlohmann value and record where each node begins under its JSON pointer,
// which gives decode errors a line and column in the TOML source. Integers
// that are not negative become unsigned JSON numbers: the decoders accept
// only unsigned numbers for unsigned fields, exactly as for JSON text.
//
// Nesting. toml++ bounds the nesting of arrays and inline tables (256), but
// not of dotted keys (`a.b.c…` or `[a.b.c…]`), each component of which opens
// a table; its parser and destructors recurse per level and overflow the
// stack somewhere past 20,000 levels (a 40 KiB line). Telling key dots from
// dots inside strings would need a second TOML lexer that must agree with
// toml++ on every malformed input, so we count every '.' instead: a text with
// more than kMaxTomlDots of them is refused before toml++ sees it. Real
// configurations have a few dozen. Our own copy is recursive too and refuses
// trees deeper than json::kMaxDepth, like the JSON reader.
#include <algorithm>
#include <sstream>
#include <string>
#include <unordered_map>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "nydus/config/parse.h"

namespace nydus::config {
namespace {

constexpr std::size_t kMaxTomlDots = 2048;

json::Position position_of(const toml::source_position& p) { return json::Position{p.line, p.column}; }

class Converter {
 public:
  // Returns false (with error_ set) when the tree is too deep.
  bool convert(const toml::node& node, const std::string& path, std::size_t depth, json::Value& out) {
    ends_[path] = position_of(node.source().begin);
    if (depth > json::kMaxDepth) {
      error_ = json::Error{"recursion limit exceeded", position_of(node.source().begin), path};
      return false;
    }
    switch (node.type()) {
      case toml::node_type::table: {
        out = json::Value::object();
        for (auto&& [key, child] : *node.as_table()) {
          std::string k(key.str());
          json::Value v;
          if (!convert(child, path + "/" + json::pointer_escape(k), depth + 1, v)) return false;
          out[k] = std::move(v);
        }
        return true;
      }
      case toml::node_type::array: {
        out = json::Value::array();
        const toml::array& arr = *node.as_array();
        for (std::size_t i = 0; i < arr.size(); ++i) {
          json::Value v;
          if (!convert(arr[i], path + "/" + std::to_string(i), depth + 1, v)) return false;
          out.push_back(std::move(v));
        }
        return true;
      }
      case toml::node_type::string:
        out = node.as_string()->get();
        return true;
      case toml::node_type::integer: {
        std::int64_t n = node.as_integer()->get();
        out = n >= 0 ? json::Value(static_cast<std::uint64_t>(n)) : json::Value(n);
        return true;
      }
      case toml::node_type::floating_point:
        out = node.as_floating_point()->get();
        return true;
      case toml::node_type::boolean:
        out = node.as_boolean()->get();
        return true;
      default: {
        // date, time, date-time: never a string, as with the Rust toml crate.
        std::ostringstream text;
        if (auto* date = node.as_date()) text << *date;
        if (auto* time = node.as_time()) text << *time;
        if (auto* date_time = node.as_date_time()) text << *date_time;
        out = json::Value::object({{"$__toml_private_datetime", text.str()}});
        return true;
      }
    }
  }

  std::unordered_map<std::string, json::Position> ends_;
  std::optional<json::Error> error_;
};

}  // namespace

tl::expected<json::Document, json::Error> parse_toml_document(std::string_view text) {
  if (auto dots = static_cast<std::size_t>(std::count(text.begin(), text.end(), '.')); dots > kMaxTomlDots) {
    return tl::unexpected(json::Error{
        fmt::format("{} '.' characters, more than the {} accepted (guards against deeply dotted keys)", dots,
                    kMaxTomlDots),
        json::Position{0, 0}, ""});
  }
  try {
    toml::table root = toml::parse(text);
    Converter conv;
    json::Value value;
    if (!conv.convert(root, "", 0, value)) return tl::unexpected(*conv.error_);
    return json::Document(std::move(value), std::move(conv.ends_));
  } catch (const toml::parse_error& e) {
    return tl::unexpected(json::Error{std::string(e.description()), position_of(e.source().begin), ""});
  } catch (const std::exception& e) {
    // Allocation failures and the like; never let them cross the header.
    return tl::unexpected(json::Error{e.what(), json::Position{0, 0}, ""});
  }
}

}  // namespace nydus::config
