// Process logging (the one global: spdlog's default logger).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <spdlog/common.h>

#include "nydus/result.h"

namespace nydus::daemon {

// Case-insensitive trace|debug|info|warn|error, and "off" when `allow_off`
// (the API accepts it, the command line does not, as upstream).
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view text, bool allow_off);

// Logs to stderr, or to `log_file` (appending; created 0640) when non-empty.
Result<void> setup_logging(spdlog::level::level_enum level, const std::string& log_file);

void set_log_level(spdlog::level::level_enum level);
spdlog::level::level_enum log_level();

}  // namespace nydus::daemon
