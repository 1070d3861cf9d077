// UTF-8 checks for names that end up in JSON replies and kernel paths.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace nydus {

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points
// above U+10FFFF): what a JSON text, and so a key in an API reply, can carry.
bool is_valid_utf8(std::string_view s);
// `s` with every invalid UTF-8 sequence replaced by U+FFFD, as Rust's from_utf8_lossy.
std::string utf8_lossy(std::string_view s);

}  // namespace nydus
