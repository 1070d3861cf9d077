// Prometheus rendering from arbitrary metrics JSON. Byte 0 picks which input
// (global, backend, blob cache, files, in-flight) gets the JSON text of the
// rest; non-JSON is skipped. Every line of the output must be a comment or
// `name[{labels}] value` with a metric name and a number the text format reads.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "nydus/daemon/prometheus.h"

using namespace nydus::daemon;

namespace {

bool name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

bool value_ok(std::string_view v) {
  if (v == "+Inf" || v == "-Inf" || v == "NaN") return true;
  if (v.empty() || v.find_first_not_of("0123456789.e+-") != std::string_view::npos) return false;
  std::string s(v);
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

// `name{k="v",...} value`, label values escaped (\\, \", \n).
bool sample_ok(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && name_char(line[i], i == 0)) ++i;
  if (i == 0) return false;
  if (i < line.size() && line[i] == '{') {
    bool quoted = false;
    for (++i; i < line.size(); ++i) {
      if (quoted && line[i] == '\\') {
        ++i;
      } else if (line[i] == '"') {
        quoted = !quoted;
      } else if (!quoted && line[i] == '}') {
        break;
      }
    }
    if (i >= line.size()) return false;
    ++i;
  }
  if (i >= line.size() || line[i] != ' ') return false;
  return value_ok(line.substr(i + 1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > (1 << 16)) return 0;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (nlohmann::json::parse(text, nullptr, false).is_discarded()) return 0;
  PrometheusInput in;
  PrometheusInstance inst;
  inst.id = (data[0] & 8) ? "/with \"quote\"\\\n" : "/";
  inst.global = "{}";
  switch (data[0] % 5) {
    case 0: inst.global = text; break;
    case 1: inst.backend = text; break;
    case 2: inst.blobcache = text; break;
    case 3: inst.files = text; break;
    default: in.inflight = text; break;
  }
  in.now_secs = data[0] & 0x10 ? 0 : 1'800'000'000;
  in.instances.push_back(std::move(inst));
  const std::string out = render_prometheus(in);
  std::string_view rest(out);
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    if (nl == std::string_view::npos) std::abort();  // every line ends with a newline
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) continue;
    if (!sample_ok(line)) std::abort();
  }
  return 0;
}
