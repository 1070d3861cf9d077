// Configuration text -> validated ConfigV2, in upstream's order (§7.1).
//
// Acceptance is exactly upstream's: the first format that decodes wins and
// its validation result is final. Upstream then reports one bare
// "invalid configuration"; we keep every attempt's error and pick the one
// matching what the text most plausibly is (rules in parse.h).
#include "nydus/config/parse.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include <fmt/format.h>

#include "config/decode.h"
#include "config/legacy.h"
#include "nydus/config/validate.h"

namespace nydus::config {
namespace {

Result<ConfigV2> validated(ConfigV2 config) {
  std::vector<Problem> problems = validate(config);
  if (!problems.empty()) return fail(ErrorCode::kInvalidArgument, render(problems));
  return config;
}

Error syntax_error(std::string_view format, const json::Error& e) {
  std::string text = fmt::format("invalid {}: {}", format, e.reason);
  if (e.position.line > 0) text += fmt::format(" at line {} column {}", e.position.line, e.position.column);
  return Error(ErrorCode::kInvalidArgument, std::move(text));
}

Result<ConfigV2> from_v2_document(const json::Document& doc) {
  auto config = decode_document<ConfigV2>(doc);
  if (!config) return config;
  return validated(std::move(*config));
}

bool starts_with_brace(std::string_view text) {
  std::size_t i = text.find_first_not_of(" \t\r\n");
  return i != std::string_view::npos && text[i] == '{';
}

// Reads at most limit + 1 bytes, so an oversized file is recognised without
// reading all of it (and /proc-like files without a size still work).
Result<std::string> read_limited(const std::string& path, std::size_t limit) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(os_error("read config " + path, errno));
  std::string data;
  char buf[16384];
  while (data.size() <= limit) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return tl::unexpected(os_error("read config " + path, err));
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (data.size() > limit) {
    return fail(ErrorCode::kInvalidArgument, fmt::format("configuration file {} is larger than 1 MiB", path));
  }
  return data;
}

}  // namespace

Result<ConfigV2> parse_config(std::string_view text) {
  // 1. JSON as ConfigV2.
  auto json_doc = json::Document::parse(text);
  std::optional<Error> v2_error;
  if (json_doc) {
    auto config = decode_document<ConfigV2>(*json_doc);
    if (config) return validated(std::move(*config));
    v2_error = config.error();
  }
  // 2. TOML as ConfigV2.
  std::optional<Error> toml_error;
  if (auto toml_doc = parse_toml_document(text)) {
    auto config = decode_document<ConfigV2>(*toml_doc);
    if (config) return validated(std::move(*config));
    toml_error = config.error();
  } else {
    toml_error = syntax_error("TOML", toml_doc.error());
  }
  // 3. JSON as legacy RafsConfig; then choose which failure to report.
  if (json_doc) {
    auto legacy = from_legacy_document(*json_doc);
    if (legacy) return legacy;
    const json::Value& root = json_doc->root();
    if (root.is_object() && !root.contains("version")) return legacy;
    return tl::unexpected(*v2_error);
  }
  if (starts_with_brace(text)) return tl::unexpected(syntax_error("JSON", json_doc.error()));
  return tl::unexpected(*toml_error);
}

Result<ConfigV2> parse_config_json(std::string_view text) {
  auto doc = json::Document::parse(text);
  if (!doc) return tl::unexpected(syntax_error("JSON", doc.error()));
  return from_v2_document(*doc);
}

Result<ConfigV2> parse_config_toml(std::string_view text) {
  auto doc = parse_toml_document(text);
  if (!doc) return tl::unexpected(syntax_error("TOML", doc.error()));
  return from_v2_document(*doc);
}

Result<ConfigV2> parse_legacy_config(std::string_view json_text) {
  auto doc = json::Document::parse(json_text);
  if (!doc) return tl::unexpected(syntax_error("JSON", doc.error()));
  return from_legacy_document(*doc);
}

Result<ConfigV2> parse_config_file(const std::string& path) {
  auto text = read_limited(path, kMaxConfigFileSize);
  if (!text) return tl::unexpected(text.error());
  auto config = parse_config(*text);
  if (!config) return tl::unexpected(config.error().with_context(fmt::format("config file {}", path)));
  return config;
}

}  // namespace nydus::config
