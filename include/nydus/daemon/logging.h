// Process logging (the one global: spdlog's default logger).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/common.h>

#include "nydus/result.h"

namespace nydus::daemon {

// Case-insensitive trace|debug|info|warn|error, and "off" when `allow_off`
// (the API accepts it, the command line does not, as upstream).
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view text, bool allow_off);

// Old files kept by log rotation: <log>.1 (newest) .. <log>.5 (oldest).
inline constexpr std::size_t kLogFilesKept = 5;

// Logs to stderr, or to `log_file` (appending; created 0640) when non-empty.
// With `rotate_bytes` > 0 a log file that would grow past that size is
// renamed to <stem>.1<ext> (older ones shifted, the oldest of kLogFilesKept
// removed) and started afresh; 0 never rotates. No effect on stderr.
Result<void> setup_logging(spdlog::level::level_enum level, const std::string& log_file,
                           std::uint64_t rotate_bytes = 0);

void set_log_level(spdlog::level::level_enum level);
spdlog::level::level_enum log_level();

}  // namespace nydus::daemon
