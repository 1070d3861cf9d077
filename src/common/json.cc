// Strict JSON parsing on top of nlohmann-json's SAX interface.
//
// nlohmann builds trees but does not say where a value sits in the text, and
// it silently keeps the last of two duplicated keys. serde-compatible errors
// need both. We feed the parser through an iterator that remembers how far
// the lexer has read; when a SAX event fires, that high-water mark is exactly
// the point just past the token (plus the one look-ahead character numbers
// need), which is where serde reports its errors too. The handler builds the
// tree itself, refuses duplicated keys, bounds the nesting depth and records
// the end position of every value under its JSON pointer.
#include "nydus/json.h"

#include <cctype>
#include <cinttypes>
#include <iterator>
#include <unordered_set>

#include <fmt/format.h>

namespace nydus::json {
namespace {

// A char iterator that publishes the furthest point the parser has consumed.
class CountingIterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  CountingIterator() = default;
  CountingIterator(const char* p, const char** high_water) : p_(p), hw_(high_water) {}
  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    ++p_;
    if (hw_ != nullptr && p_ > *hw_) *hw_ = p_;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const CountingIterator& o) const { return p_ == o.p_; }
  bool operator!=(const CountingIterator& o) const { return p_ != o.p_; }

 private:
  const char* p_ = nullptr;
  const char** hw_ = nullptr;
};

Position position_at(std::string_view text, std::size_t consumed) {
  Position pos{1, 0};
  for (std::size_t i = 0; i < consumed && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++pos.line;
      pos.column = 0;
    } else {
      ++pos.column;
    }
  }
  return pos;
}

class Builder : public nlohmann::json_sax<Value> {
 public:
  Builder(std::string_view text, const char** hw) : text_(text), hw_(hw) {}

  bool null() override { return put(Value(nullptr)); }
  bool boolean(bool v) override { return put(Value(v)); }
  bool number_integer(number_integer_t v) override { return put(Value(v)); }
  bool number_unsigned(number_unsigned_t v) override { return put(Value(v)); }
  bool number_float(number_float_t v, const string_t&) override { return put(Value(v)); }
  bool string(string_t& v) override { return put(Value(std::move(v))); }
  bool binary(binary_t&) override { return fail_here("binary values are not JSON"); }

  bool start_object(std::size_t) override { return open(Value::object()); }
  bool start_array(std::size_t) override { return open(Value::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& k) override {
    Frame& f = stack_.back();
    if (!f.keys.insert(k).second) return fail_here(fmt::format("duplicate field `{}`", k));
    f.pending_key = std::move(k);
    return true;
  }

  bool parse_error(std::size_t pos, const std::string& last_token, const nlohmann::detail::exception& ex) override {
    std::string what = ex.what();
    std::string reason;
    bool in_object = !stack_.empty() && stack_.back().value.is_object();
    bool in_array = !stack_.empty() && stack_.back().value.is_array();
    if (what.find("unexpected end of input") != std::string::npos) {
      reason = in_object ? "EOF while parsing an object" : in_array ? "EOF while parsing a list" : "EOF while parsing a value";
    } else if (what.find("expected end of input") != std::string::npos) {
      reason = "trailing characters";
    } else if (closes_after_comma(what, last_token)) {
      reason = "trailing comma";  // `{"a":1,}`: a close where a value or key was due
    } else if (in_object && what.find("object key") != std::string::npos) {
      reason = "key must be a string";
    } else if (in_object && what.find("object separator") != std::string::npos) {
      reason = "expected `:`";
    } else if (what.find("invalid literal") != std::string::npos) {
      // serde names a broken null/true/false an ident, anything else a missing value.
      std::string word = broken_word(last_token);
      char first = word.empty() ? '\0' : word.front();
      bool prefix = !word.empty() && (std::string_view("null").starts_with(word) ||
                                      std::string_view("true").starts_with(word) ||
                                      std::string_view("false").starts_with(word));
      if (pos >= text_.size() && prefix) {
        reason = "EOF while parsing a value";
      } else {
        reason = (first == 'n' || first == 't' || first == 'f') ? "expected ident" : "expected value";
      }
    } else if (what.find("invalid string") != std::string::npos) {
      reason = "invalid string: " + tail(what);
    } else if (what.find("invalid number") != std::string::npos) {
      reason = "invalid number";
    } else if (what.find("expected ']'") != std::string::npos || what.find("expected '}'") != std::string::npos) {
      reason = in_object ? "expected `,` or `}`" : "expected `,` or `]`";
    } else {
      reason = "expected value";
    }
    if (!error_) {
      // nlohmann counts the offending character itself; serde points at it too.
      error_ = Error{reason, position_at(text_, pos), current_path()};
    }
    return false;
  }

  std::optional<Error> error_;
  Value root_;
  std::unordered_map<std::string, Position> ends_;

 private:
  struct Frame {
    Value value;
    std::string path;
    std::unordered_set<std::string> keys;
    std::string pending_key;
    std::size_t next_index = 0;
  };

  // nlohmann's "last read" text ends with the broken literal: that word
  // (its last character is the one that broke it, or the literal's own first).
  static std::string broken_word(const std::string& last) {
    if (last.empty()) return "";
    std::size_t end = last.size() - 1;
    std::size_t i = end;
    while (i > 0 && std::isalpha(static_cast<unsigned char>(last[i - 1]))) --i;
    return i < end ? last.substr(i) : last.substr(end);
  }

  static bool closes_after_comma(const std::string& what, const std::string& last) {
    if (what.find("unexpected '}'") == std::string::npos && what.find("unexpected ']'") == std::string::npos) return false;
    std::size_t i = last.size() > 0 ? last.size() - 1 : 0;  // skip the close itself
    while (i > 0 && std::isspace(static_cast<unsigned char>(last[i - 1]))) --i;
    return i > 0 && last[i - 1] == ',';
  }

  static std::string tail(const std::string& what) {
    auto p = what.rfind(": ");
    return p == std::string::npos ? what : what.substr(p + 2);
  }

  Position here() const { return position_at(text_, static_cast<std::size_t>(*hw_ - text_.data())); }

  bool fail_here(std::string reason) {
    if (!error_) error_ = Error{std::move(reason), here(), current_path()};
    return false;
  }

  std::string current_path() const { return stack_.empty() ? std::string() : stack_.back().path; }

  // Path of the value about to be placed into the innermost container.
  std::string next_path() {
    if (stack_.empty()) return "";
    Frame& f = stack_.back();
    if (f.value.is_object()) return f.path + "/" + pointer_escape(f.pending_key);
    return f.path + "/" + std::to_string(f.next_index);
  }

  void place(Value v, const std::string& path) {
    ends_[path] = here();
    if (stack_.empty()) {
      root_ = std::move(v);
      return;
    }
    Frame& f = stack_.back();
    if (f.value.is_object()) {
      f.value[f.pending_key] = std::move(v);
    } else {
      f.value.push_back(std::move(v));
      ++f.next_index;
    }
  }

  bool put(Value v) {
    std::string path = next_path();
    place(std::move(v), path);
    return true;
  }

  bool open(Value container) {
    if (stack_.size() >= kMaxDepth) return fail_here("recursion limit exceeded");
    std::string path = next_path();
    stack_.push_back(Frame{std::move(container), std::move(path), {}, {}, 0});
    return true;
  }

  bool close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    place(std::move(f.value), f.path);
    return true;
  }

  std::string_view text_;
  const char** hw_;
  std::vector<Frame> stack_;
};

std::string describe(const Value& v) {
  switch (v.type()) {
    case Value::value_t::null: return "null";
    case Value::value_t::boolean: return fmt::format("boolean `{}`", v.get<bool>() ? "true" : "false");
    case Value::value_t::number_integer: return fmt::format("integer `{}`", v.get<std::int64_t>());
    case Value::value_t::number_unsigned: return fmt::format("integer `{}`", v.get<std::uint64_t>());
    case Value::value_t::number_float: return fmt::format("floating point `{}`", v.get<double>());
    case Value::value_t::string: return fmt::format("string {}", v.dump());
    case Value::value_t::array: return "sequence";
    case Value::value_t::object: return "map";
    default: return "value";
  }
}

}  // namespace

std::string pointer_escape(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Error::to_debug() const {
  // serde's Debug of its error: the message is Rust-escaped inside quotes.
  std::string escaped;
  for (char c : reason) {
    switch (c) {
      case '"': escaped += "\\\""; break;
      case '\\': escaped += "\\\\"; break;
      case '\n': escaped += "\\n"; break;
      case '\r': escaped += "\\r"; break;
      case '\t': escaped += "\\t"; break;
      default: escaped += c;
    }
  }
  return fmt::format("Error(\"{}\", line: {}, column: {})", escaped, position.line, position.column);
}

std::string Error::to_key_message() const {
  std::string key;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t next = path.find('/', i + 1);
    std::string part = path.substr(i + 1, next == std::string::npos ? std::string::npos : next - i - 1);
    std::string unescaped;
    for (std::size_t j = 0; j < part.size(); ++j) {
      if (part[j] == '~' && j + 1 < part.size()) {
        unescaped += part[j + 1] == '1' ? '/' : '~';
        ++j;
      } else {
        unescaped += part[j];
      }
    }
    if (!key.empty()) key += '.';
    key += unescaped;
    if (next == std::string::npos) break;
    i = next;
  }
  if (key.empty()) return reason;
  return key + ": " + reason;
}

tl::expected<Document, Error> Document::parse(std::string_view text) {
  const char* hw = text.data();
  Builder builder(text, &hw);
  CountingIterator first(text.data(), &hw);
  CountingIterator last(text.data() + text.size(), nullptr);
  bool ok = Value::sax_parse(first, last, &builder, nlohmann::json::input_format_t::json, true);
  if (!ok || builder.error_) {
    if (builder.error_) return tl::unexpected(*builder.error_);
    return tl::unexpected(Error{"expected value", position_at(text, text.size()), ""});
  }
  return Document(std::move(builder.root_), std::move(builder.ends_));
}

Position Document::end_of(const std::string& path) const {
  auto it = ends_.find(path);
  if (it == ends_.end()) return Position{0, 0};
  return it->second;
}

const Value* ObjectReader::find(std::string_view key) const {
  auto it = value_->find(key);
  if (it == value_->end()) return nullptr;
  return &*it;
}

std::string ObjectReader::child_path(std::string_view key) const { return path_ + "/" + pointer_escape(key); }

std::optional<ObjectReader> ObjectReader::object(std::string_view key, std::string_view expected, bool required) {
  if (!decoder_->ok()) return std::nullopt;
  const Value* v = find(key);
  if (v == nullptr) {
    if (required) decoder_->fail("missing field `" + std::string(key) + "`", path_);
    return std::nullopt;
  }
  if (v->is_null() && !required) return std::nullopt;
  return decoder_->as_object(*v, child_path(key), expected);
}

std::optional<ObjectReader> Decoder::root_object(std::string_view expected) {
  return as_object(doc_->root(), "", expected);
}

std::optional<ObjectReader> Decoder::as_object(const Value& v, const std::string& path, std::string_view expected) {
  if (!ok()) return std::nullopt;
  if (!v.is_object()) {
    fail_type(v, path, expected);
    return std::nullopt;
  }
  return ObjectReader(this, &v, path);
}

void Decoder::fail(std::string reason, const std::string& path) {
  if (error_) return;
  error_ = Error{std::move(reason), doc_->end_of(path), path};
}

void Decoder::fail_type(const Value& v, const std::string& path, std::string_view expected) {
  fail(fmt::format("invalid type: {}, expected {}", describe(v), expected), path);
}

void Decoder::read(const Value& v, const std::string& path, bool& out) {
  if (!ok()) return;
  if (!v.is_boolean()) return fail_type(v, path, "a boolean");
  out = v.get<bool>();
}

void Decoder::read(const Value& v, const std::string& path, std::string& out) {
  if (!ok()) return;
  if (!v.is_string()) return fail_type(v, path, "a string");
  out = v.get<std::string>();
}

void Decoder::read_unsigned(const Value& v, const std::string& path, std::uint64_t max, std::string_view type,
                            std::uint64_t& out) {
  if (!ok()) return;
  if (v.is_number_unsigned()) {
    std::uint64_t n = v.get<std::uint64_t>();
    if (n > max) return fail(fmt::format("invalid value: integer `{}`, expected {}", n, type), path);
    out = n;
    return;
  }
  if (v.is_number_integer()) {
    return fail(fmt::format("invalid value: integer `{}`, expected {}", v.get<std::int64_t>(), type), path);
  }
  fail_type(v, path, type);
}

void Decoder::read(const Value& v, const std::string& path, std::uint8_t& out) {
  std::uint64_t n = 0;
  read_unsigned(v, path, UINT8_MAX, "u8", n);
  if (ok()) out = static_cast<std::uint8_t>(n);
}

void Decoder::read(const Value& v, const std::string& path, std::uint16_t& out) {
  std::uint64_t n = 0;
  read_unsigned(v, path, UINT16_MAX, "u16", n);
  if (ok()) out = static_cast<std::uint16_t>(n);
}

void Decoder::read(const Value& v, const std::string& path, std::uint32_t& out) {
  std::uint64_t n = 0;
  read_unsigned(v, path, UINT32_MAX, "u32", n);
  if (ok()) out = static_cast<std::uint32_t>(n);
}

void Decoder::read(const Value& v, const std::string& path, std::uint64_t& out) {
  std::uint64_t n = 0;
  read_unsigned(v, path, UINT64_MAX, "u64", n);
  if (ok()) out = n;
}

void Decoder::read(const Value& v, const std::string& path, std::vector<std::string>& out) {
  if (!ok()) return;
  if (!v.is_array()) return fail_type(v, path, "a sequence");
  std::vector<std::string> tmp;
  tmp.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::string s;
    read(v[i], path + "/" + std::to_string(i), s);
    if (!ok()) return;
    tmp.push_back(std::move(s));
  }
  out = std::move(tmp);
}

void Decoder::read(const Value& v, const std::string& path, std::map<std::string, std::string>& out) {
  if (!ok()) return;
  if (!v.is_object()) return fail_type(v, path, "a map");
  std::map<std::string, std::string> tmp;
  for (auto it = v.begin(); it != v.end(); ++it) {
    std::string s;
    read(it.value(), path + "/" + pointer_escape(it.key()), s);
    if (!ok()) return;
    tmp.emplace(it.key(), std::move(s));
  }
  out = std::move(tmp);
}

}  // namespace nydus::json
