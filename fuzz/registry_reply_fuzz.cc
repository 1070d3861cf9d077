// What a registry answers: the WWW-Authenticate parameter parser, the token
// reply parser, and ranged_reply/head_reply over a fuzzed HttpResponse.
//
// Layout: byte 0 status selector and flags, bytes 1-8 offset, 9-12 length,
// 13-16 the bytes the body window received; the rest is split at '\n' into
// challenge, Content-Range, Content-Length and the body (token JSON). As in
// HttpClient, the window never holds more than its length (on a 206 the
// excess sets window_overflow; a 200 body is the whole blob, cut to the range). Invariant: a ranged success returns at most `len` bytes,
// and a 206 success only with a Content-Range starting at `offset`.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "nydus/storage/http_client.h"
#include "storage/registry_parse.h"

using namespace nydus::storage;

namespace {

template <typename T>
T load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string_view next_line(std::string_view& rest) {
  auto nl = rest.find('\n');
  std::string_view line = rest.substr(0, nl);
  rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  return line;
}

// The FIRST of `bytes FIRST-LAST/TOTAL`, read independently of the client's parser.
std::optional<std::uint64_t> range_first(std::string_view v) {
  if (!v.starts_with("bytes ")) return std::nullopt;
  v.remove_prefix(6);
  std::uint64_t n = 0;
  std::size_t i = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) {
    if (n > (UINT64_MAX - std::uint64_t(v[i] - '0')) / 10) return std::nullopt;
    n = n * 10 + std::uint64_t(v[i] - '0');
  }
  if (i == 0 || i == v.size() || v[i] != '-') return std::nullopt;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 17 || size > (1 << 16)) return 0;
  static constexpr long kStatus[] = {200, 206, 206, 206, 401, 404, 429, 500};
  const std::uint8_t flags = data[0];
  const std::uint64_t offset = load<std::uint64_t>(data + 1);
  const std::size_t len = load<std::uint32_t>(data + 9);
  const std::uint64_t got = load<std::uint32_t>(data + 13);
  std::string_view rest(reinterpret_cast<const char*>(data + 17), size - 17);
  std::string_view challenge = next_line(rest);
  std::string_view range = next_line(rest);
  std::string_view length = next_line(rest);

  auto params = challenge_params(challenge);
  (void)params["realm"];
  if (auto t = parse_token_reply(std::string(rest)); t && t->token.empty()) std::abort();

  HttpResponse r;
  r.status = (flags & 0x80) ? long(flags & 0x7f) * 7 : kStatus[flags & 7];
  if (!(flags & 0x08)) r.headers["content-range"] = std::string(range);
  if (!(flags & 0x10)) r.headers["content-length"] = std::string(length);
  r.headers["www-authenticate"] = std::string(challenge);
  r.body = std::string(rest);
  r.window_bytes = std::min<std::uint64_t>(got, len);
  r.window_overflow = r.status == 206 && (got > len || (flags & 0x20));  // a 200 body is cut to the window by design

  bool transient = false;
  if (auto n = ranged_reply(r, offset, len, "fuzz", transient)) {
    if (*n > len || *n != r.window_bytes || r.window_overflow) std::abort();
    if (r.status == 206 && range_first(r.header("content-range")) != offset) std::abort();
    if (r.status != 206 && r.status != 200) std::abort();
  }
  if (auto n = head_reply(r, "fuzz", transient); n && r.status != 200) std::abort();
  return 0;
}
