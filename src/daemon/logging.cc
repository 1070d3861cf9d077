#include "nydus/daemon/logging.h"

#include <algorithm>
#include <cctype>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace nydus::daemon {

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view text, bool allow_off) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "trace") return spdlog::level::trace;
  if (lower == "debug") return spdlog::level::debug;
  if (lower == "info") return spdlog::level::info;
  if (lower == "warn") return spdlog::level::warn;
  if (lower == "error") return spdlog::level::err;
  if (lower == "off" && allow_off) return spdlog::level::off;
  return std::nullopt;
}

Result<void> setup_logging(spdlog::level::level_enum level, const std::string& log_file, std::uint64_t rotate_bytes) {
  std::shared_ptr<spdlog::logger> logger;
  try {
    spdlog::sink_ptr sink;
    if (log_file.empty()) {
      sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    } else if (rotate_bytes == 0) {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file);
    } else {
      sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(log_file, rotate_bytes, kLogFilesKept);
    }
    // Not registered by name: set_default_logger replaces the previous one.
    logger = std::make_shared<spdlog::logger>("nydusd", std::move(sink));
  } catch (const spdlog::spdlog_ex& e) {
    return fail(ErrorCode::kIo, "cannot open log file " + log_file + ": " + e.what());
  }
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%f] %^%l%$ %v");
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::set_level(level);
  return {};
}

void set_log_level(spdlog::level::level_enum level) { spdlog::set_level(level); }

spdlog::level::level_enum log_level() { return spdlog::get_level(); }

}  // namespace nydus::daemon
