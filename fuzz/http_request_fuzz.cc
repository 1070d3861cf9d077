// Raw bytes of one connection through the server's real parsing path:
// RequestReader (Beast parser, limits, Expect), then the router and the reply
// conversion. The first byte picks how the input is cut into reads, so
// requests split at arbitrary points are explored too.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "api/http/http_request_reader.h"
#include "nydus/api/router.h"

using namespace nydus::api;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  ++data;
  --size;
  // Small limits so the limit paths are reachable with small inputs.
  RequestReader reader(2048, 4096);
  std::size_t off = 0;
  bool dead = false;
  auto drain = [&](ParseEvent ev) {
    if (ev.kind == ParseEvent::Kind::kRequest) {
      auto routed = route(ev.request);
      if (routed) {
        (void)respond(routed->wrapper, routed->request, ApiResponsePayload::empty());
      } else {
        (void)error_response(routed.error()).body.size();
      }
    }
    if (ev.kind == ParseEvent::Kind::kError) dead = true;
  };
  while (off < size && !dead) {
    auto buf = reader.prepare();
    std::size_t n = std::min({chunk, size - off, buf.size()});
    std::memcpy(buf.data(), data + off, n);
    reader.commit(n);
    off += n;
    for (;;) {
      ParseEvent ev = reader.parse();
      if (ev.kind == ParseEvent::Kind::kNeedMore) break;
      drain(std::move(ev));
      if (dead) break;
    }
  }
  if (!dead) drain(reader.finish());
  return 0;
}
