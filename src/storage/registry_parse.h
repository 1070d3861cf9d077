// Parsers of what a registry's auth answers, used by RegistryBackend and
// exposed here (not in include/) only so the fuzz target can reach them.
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "nydus/result.h"

namespace nydus::storage {

// `key="value"` pairs of a WWW-Authenticate challenge's parameter list
// (values may be bare tokens); keys lower-cased, the last one wins.
std::map<std::string, std::string> challenge_params(std::string_view s);

struct TokenReply {
  std::string token;
  std::chrono::seconds life;
};

// The JSON body of a token endpoint: `token` or `access_token`, and
// `expires_in` (default 600 s, at most a year). kIo when there is no token.
Result<TokenReply> parse_token_reply(const std::string& body);

}  // namespace nydus::storage
