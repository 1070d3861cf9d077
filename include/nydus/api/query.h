// Query-string parsing with upstream's rules (contract §1.8).
//
// `application/x-www-form-urlencoded` pairs: split at `&`, key/value at the
// first `=`, `+` is a space, `%XX` decoded (invalid escapes kept literally),
// invalid UTF-8 replaced by U+FFFD, a key without `=` has an empty value, the
// first occurrence of a key wins, the fragment is ignored.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nydus::api {

class Query {
 public:
  // `raw` is the part after `?` (fragment included or not).
  static Query parse(std::string_view raw);

  // The first value of `key`, or nullopt if the key is absent.
  std::optional<std::string> get(std::string_view key) const;
  bool has(std::string_view key) const { return get(key).has_value(); }
  // Whether the first value of `key` was not valid UTF-8 once decoded, so
  // get() returns it with U+FFFD in place of the invalid bytes.
  bool lossy(std::string_view key) const;

  const std::vector<std::pair<std::string, std::string>>& pairs() const { return pairs_; }

 private:
  std::vector<std::pair<std::string, std::string>> pairs_;
  std::vector<bool> lossy_;  // per pair: the value had invalid UTF-8
};

// Decodes one form-urlencoded component ("+" -> " ", "%2F" -> "/", lossy UTF-8).
std::string form_decode(std::string_view s);

// Percent-encodes a query value for clients (everything but unreserved characters).
std::string form_encode(std::string_view s);

}  // namespace nydus::api
