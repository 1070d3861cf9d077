// UTF-8 well-formedness (see header).
#include "nydus/utf8.h"

#include <cstdint>

namespace nydus {

namespace {

// Length of the well-formed UTF-8 sequence starting at s[i], 0 if there is none.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  auto c = static_cast<std::uint8_t>(s[i]);
  if (c < 0x80) return 1;
  std::size_t len = 0;
  std::uint32_t min = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    min = 0x10000;
  }
  if (len == 0 || i + len > s.size()) return 0;
  std::uint32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (std::size_t k = 1; k < len; ++k) {
    auto cc = static_cast<std::uint8_t>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string utf8_lossy(std::string_view s) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    if (std::size_t n = utf8_sequence(s, i); n != 0) {
      out.append(s, i, n);
      i += n;
      continue;
    }
    // One replacement per broken sequence: its lead byte and the continuation
    // bytes that belong to it.
    auto c = static_cast<std::uint8_t>(s[i]);
    std::size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    out += kReplacement;
    ++i;
    while (i < s.size() && (static_cast<std::uint8_t>(s[i]) & 0xC0) == 0x80 && len > 1) {
      ++i;
      --len;
    }
  }
  return out;
}

}  // namespace nydus
