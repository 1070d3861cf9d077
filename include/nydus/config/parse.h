// Turning configuration text into a validated ConfigV2 (contract §7.1).
//
// parse_config() accepts exactly what upstream accepts, trying in order:
//   1. JSON as ConfigV2: decodes -> returned if valid, else fails at once
//      with the validation problems (no fallback, as upstream);
//   2. TOML as ConfigV2 (§7.5), same rule;
//   3. JSON as legacy RafsConfig (§7.6), converted, then validated;
// and otherwise fails. All errors are kInvalidArgument (file access errors
// keep their own code) and name the key and reason:
//   "backend.localfs.dir: required when blob_file is empty"
//   "rafs: missing field `mode` at line 3 column 5"
//   "invalid JSON: expected `,` or `}` at line 1 column 14"
//   "invalid TOML: <toml++ description> at line 2 column 1"
// When every attempt fails, the error of the most plausible format is
// reported:
//   * the text is JSON whose root is an object with a "version" key, or whose
//     root is not an object -> the ConfigV2 (JSON) error;
//   * the text is JSON, root object without "version" -> the legacy error;
//   * the text is not JSON and starts with '{' -> the JSON syntax error;
//   * anything else -> the TOML error (syntax or decode).
// Several validation problems are joined by "; " (validate.h render()).
//
// Thread-safety: pure functions; parse_config_file reads the file once.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "nydus/config/config_v2.h"
#include "nydus/json.h"
#include "nydus/result.h"

namespace nydus::config {

// Upstream refuses configuration files larger than this (§7.1).
inline constexpr std::size_t kMaxConfigFileSize = 1 << 20;

// See the file comment. Validates with validate() (not the RAFS-mount rules).
Result<ConfigV2> parse_config(std::string_view text);

// Reads `path` (at most kMaxConfigFileSize bytes) and parse_config()s it.
// Errors: kNotFound / kIo from the OS ("read config /p: …"); kInvalidArgument
// "configuration file /p is larger than 1 MiB" for bigger files; then the
// errors of parse_config prefixed with the path.
Result<ConfigV2> parse_config_file(const std::string& path);

// Single-format entry points (each decodes and validates; no fallback).
Result<ConfigV2> parse_config_json(std::string_view text);
Result<ConfigV2> parse_config_toml(std::string_view text);
Result<ConfigV2> parse_legacy_config(std::string_view json_text);

// Parses TOML into a json::Document so that the JSON decoders apply: tables
// become objects, non-negative integers unsigned numbers, dates/times objects
// {"$__toml_private_datetime": "<text>"} (so they never pass as strings, like
// the Rust toml crate). Positions are where each value begins (1-based line
// and column). Errors: TOML syntax, including duplicate keys, as json::Error
// with toml++'s description and position; texts with more than 2048 '.'
// characters (toml++ overflows its stack on very deeply dotted keys) and
// trees deeper than json::kMaxDepth are refused. Never throws.
tl::expected<json::Document, json::Error> parse_toml_document(std::string_view text);

}  // namespace nydus::config
