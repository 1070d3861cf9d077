// Request-targets and query strings: URI checks, path extraction, form
// decoding (percent escapes, '+', lossy UTF-8) and the whole route table.
#include <cstddef>
#include <cstdint>
#include <string>

#include "nydus/api/query.h"
#include "nydus/api/router.h"

using namespace nydus::api;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  Query q = Query::parse(text);
  for (const auto& [k, v] : q.pairs()) {
    // Decoded values are valid UTF-8 and survive an encode/decode round trip.
    if (form_decode(form_encode(v)) != v) __builtin_trap();
    (void)k;
  }
  std::string_view query;
  (void)request_path(text, &query);
  for (const char* method : {"GET", "PUT", "POST", "DELETE"}) {
    auto r = route(HttpRequest{method, text, "", 11});
    if (!r) (void)r.error().body();
  }
  return 0;
}
