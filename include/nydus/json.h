// Strict JSON reading with serde-compatible error reports.
//
// Request bodies and configuration documents follow the rules of upstream
// nydus (Rust serde): unknown fields are ignored, a duplicated field, a
// missing required field or a value of the wrong type is an error, and an
// error reads `<reason>` at `line: L, column: C`, where the position is the
// one serde reports (just past the offending token). This header gives both
// halves: Document::parse (syntax, duplicates, positions of every value) and
// ObjectReader (typed field access that records the first error).
//
// Typical decoder:
//   auto doc = json::Document::parse(text);          // syntax + duplicates
//   if (!doc) return doc.error();
//   json::Decoder d(*doc);
//   auto obj = d.root_object("struct DaemonConf");
//   obj.required("log_level", conf.log_level);
//   if (!d.ok()) return d.error();
//
// Thread-safety: a Document is immutable after parsing; a Decoder is used by
// one thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <tl/expected.hpp>

namespace nydus::json {

using Value = nlohmann::json;

// 1-based line, column as serde counts them (column = characters of the line consumed).
struct Position {
  std::size_t line = 1;
  std::size_t column = 0;
  bool operator==(const Position&) const = default;
};

struct Error {
  std::string reason;    // e.g. "missing field `log_level`"
  Position position;
  std::string path;      // JSON pointer of the offending value, e.g. "/backend/type"; "" = root

  // serde's Debug form: Error("<reason>", line: L, column: C)
  std::string to_debug() const;
  // "<path as dotted key>: <reason>" for configuration messages, e.g. "backend.type: …".
  std::string to_key_message() const;
};

// Nesting deeper than this is refused (serde's limit is also 128).
inline constexpr std::size_t kMaxDepth = 128;

class Document {
 public:
  // Parses `text` as exactly one JSON value (trailing non-space is an error).
  // Errors: syntax errors, duplicated keys, nesting deeper than kMaxDepth.
  static tl::expected<Document, Error> parse(std::string_view text);

  // Wraps a tree built elsewhere (e.g. from TOML) with the positions its source
  // gave; values without a recorded position report {line 0, column 0}.
  Document(Value root, std::unordered_map<std::string, Position> ends)
      : root_(std::move(root)), ends_(std::move(ends)) {}

  const Value& root() const { return root_; }
  // Where the value at JSON pointer `path` ends in the source text.
  Position end_of(const std::string& path) const;

 private:
  Value root_;
  std::unordered_map<std::string, Position> ends_;
};

class Decoder;

// Typed access to the fields of one JSON object. Every accessor records the
// first error in the owning Decoder and then leaves its output untouched, so
// decoders can be written straight-line and checked once at the end.
class ObjectReader {
 public:
  // Required field: missing -> "missing field `key`"; wrong type -> "invalid type: …".
  template <class T>
  void required(std::string_view key, T& out);
  // Optional field: absent keeps `out`; null is accepted only for std::optional<T>.
  template <class T>
  void optional(std::string_view key, T& out);
  // Nested object. Absent (or null when !required) -> nullopt.
  std::optional<ObjectReader> object(std::string_view key, std::string_view expected, bool required);
  // Raw access for fields whose shape depends on another field.
  const Value* find(std::string_view key) const;
  std::string child_path(std::string_view key) const;
  const std::string& path() const { return path_; }
  Decoder& decoder() const { return *decoder_; }

 private:
  friend class Decoder;
  ObjectReader(Decoder* d, const Value* v, std::string path) : decoder_(d), value_(v), path_(std::move(path)) {}
  Decoder* decoder_;
  const Value* value_;
  std::string path_;
};

class Decoder {
 public:
  explicit Decoder(const Document& doc) : doc_(&doc) {}

  bool ok() const { return !error_.has_value(); }
  const Error& error() const { return *error_; }

  // The root as an object; `expected` names it for type errors ("struct DaemonConf").
  std::optional<ObjectReader> root_object(std::string_view expected);
  // `v` (found at `path`) as an object.
  std::optional<ObjectReader> as_object(const Value& v, const std::string& path, std::string_view expected);

  // Records `reason` for the value at `path` unless an error is already recorded.
  void fail(std::string reason, const std::string& path);
  // serde's "invalid type: <what v is>, expected <expected>".
  void fail_type(const Value& v, const std::string& path, std::string_view expected);

  // Scalar readers used by ObjectReader; also usable on array elements.
  void read(const Value& v, const std::string& path, bool& out);
  void read(const Value& v, const std::string& path, std::string& out);
  void read(const Value& v, const std::string& path, std::uint8_t& out);
  void read(const Value& v, const std::string& path, std::uint16_t& out);
  void read(const Value& v, const std::string& path, std::uint32_t& out);
  void read(const Value& v, const std::string& path, std::uint64_t& out);
  void read(const Value& v, const std::string& path, std::vector<std::string>& out);
  void read(const Value& v, const std::string& path, std::map<std::string, std::string>& out);
  void read(const Value& v, const std::string& path, Value& out) { (void)path; out = v; }
  template <class T>
  void read(const Value& v, const std::string& path, std::optional<T>& out) {
    if (v.is_null()) {
      out.reset();
      return;
    }
    T tmp{};
    read(v, path, tmp);
    if (ok()) out = std::move(tmp);
  }

  Position end_of(const std::string& path) const { return doc_->end_of(path); }

 private:
  void read_unsigned(const Value& v, const std::string& path, std::uint64_t max, std::string_view type,
                     std::uint64_t& out);
  const Document* doc_;
  std::optional<Error> error_;
};

// JSON-pointer escaping of one key ("~" -> "~0", "/" -> "~1").
std::string pointer_escape(std::string_view key);

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
void ObjectReader::required(std::string_view key, T& out) {
  if (!decoder_->ok()) return;
  const Value* v = find(key);
  if (v == nullptr) {
    decoder_->fail("missing field `" + std::string(key) + "`", path_);
    return;
  }
  decoder_->read(*v, child_path(key), out);
}

template <class T>
void ObjectReader::optional(std::string_view key, T& out) {
  if (!decoder_->ok()) return;
  const Value* v = find(key);
  if (v == nullptr) return;
  if constexpr (!is_optional<T>::value) {
    // serde: `#[serde(default)]` fields still reject an explicit null.
    T tmp = out;
    decoder_->read(*v, child_path(key), tmp);
    if (decoder_->ok()) out = std::move(tmp);
  } else {
    decoder_->read(*v, child_path(key), out);
  }
}

}  // namespace nydus::json
