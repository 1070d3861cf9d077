// Every JSON request-body parser of the API, plus the payload parsers the
// client uses; the first byte picks the parser. None may crash, leak or
// accept a document that violates its schema silently.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nydus/api/body.h"
#include "nydus/api/payloads.h"
#include "nydus/api/router.h"

using namespace nydus::api;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 7) {
    case 0: (void)parse_daemon_conf(text); break;
    case 1: {
      auto cmd = parse_mount_cmd(text);
      if (cmd) (void)parse_mount_cmd(to_json(*cmd)).value();  // what we serialise must parse back
      break;
    }
    case 2: {
      auto e = parse_blob_cache_entry(text);
      if (e) (void)to_json(*e);
      break;
    }
    case 3: {
      auto m = parse_config_map(text);
      if (m && parse_config_map(to_json(*m)).value() != *m) __builtin_trap();
      break;
    }
    case 4: (void)parse_daemon_info(text); break;
    case 5: (void)parse_events(text); break;
    default: {
      // Through the router as a PUT body to each body-taking route.
      for (const char* target : {"/api/v1/daemon", "/api/v1/mount?mountpoint=/", "/api/v1/config", "/api/v2/blobs"}) {
        auto r = route(HttpRequest{"PUT", target, std::string(text), 11});
        if (!r) (void)r.error().body();
      }
    }
  }
  return 0;
}
