// Form-urlencoded query parsing (contract §1.8).
#include "nydus/api/query.h"

#include <cstdint>

#include "nydus/utf8.h"

namespace nydus::api {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// `%XX` and `+` decoded; the bytes may be any, valid UTF-8 or not.
std::string percent_decode(std::string_view s) {
  std::string bytes;
  bytes.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      bytes += ' ';
    } else if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      bytes += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      bytes += c;
    }
  }
  return bytes;
}

}  // namespace

std::string form_decode(std::string_view s) { return utf8_lossy(percent_decode(s)); }

std::string form_encode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

Query Query::parse(std::string_view raw) {
  Query q;
  if (auto hash = raw.find('#'); hash != std::string_view::npos) raw = raw.substr(0, hash);
  while (!raw.empty()) {
    auto amp = raw.find('&');
    std::string_view part = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (part.empty()) continue;
    auto eq = part.find('=');
    std::string key = form_decode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? std::string() : percent_decode(part.substr(eq + 1));
    bool lossy = !is_valid_utf8(value);
    if (lossy) value = utf8_lossy(value);
    q.pairs_.emplace_back(std::move(key), std::move(value));
    q.lossy_.push_back(lossy);
  }
  return q;
}

bool Query::lossy(std::string_view key) const {
  for (std::size_t i = 0; i < pairs_.size(); ++i) {
    if (pairs_[i].first == key) return lossy_[i];
  }
  return false;
}

std::optional<std::string> Query::get(std::string_view key) const {
  for (const auto& [k, v] : pairs_) {
    if (k == key) return v;
  }
  return std::nullopt;
}

}  // namespace nydus::api
