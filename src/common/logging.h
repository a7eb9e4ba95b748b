// Logging: a thin layer over spdlog with fmt-style messages.
//
//   CAIRN_LOG_INFO("opened segment {} ({} bytes)", id, size);
//
// One process-wide logger named "cairn", also installed as spdlog's default logger. It exists
// from the first log call, writing to standard error at level info, so that logging works before
// InitLogging (and in tests that never call it). InitLogging then sets the level and points the
// output at standard error or a file. The CAIRN_LOG_* macros test the level before formatting
// their arguments, so a disabled level costs one relaxed atomic load.
//
// Thread-safety: the macros, SetLogLevel, GetLogLevel and FlushLogs may be called from any thread
// at any time. InitLogging may be called from any thread too: the logger object never changes,
// only the sink behind it, which is swapped under spdlog's sink mutex.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

#include "common/config.h"
#include "common/status.h"

namespace cairn {

// Severity, from most to least verbose.
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };

// Parses "trace", "debug", "info", "warn" (or "warning"), "error"; case-insensitive.
// Anything else is kConfigError.
Result<LogLevel> ParseLogLevel(std::string_view name);
// "trace", "debug", "info", "warn", "error".
std::string_view LogLevelName(LogLevel level);

// Sets the level from config.level and sends output to config.file (appended to, created when
// missing) or to standard error when config.file is empty. On error (unknown level: kConfigError;
// file cannot be opened: kIOError) the logger is left as it was.
Status InitLogging(const LogConfig& config);

// Changes the level at run time.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// Writes out whatever the sinks buffer. Messages at warn and above are flushed as they are logged.
void FlushLogs();

namespace log_internal {
// The process-wide logger; created on first use. Never null, never destroyed.
spdlog::logger* Logger();
}  // namespace log_internal

}  // namespace cairn

#define CAIRN_LOG_AT(spdlog_level, ...)                                                                              \
  do {                                                                                                               \
    ::spdlog::logger* _cairn_logger = ::cairn::log_internal::Logger();                                               \
    if (_cairn_logger->should_log(spdlog_level)) {                                                                   \
      _cairn_logger->log(::spdlog::source_loc{__FILE__, __LINE__, static_cast<const char*>(__func__)}, spdlog_level, \
                         __VA_ARGS__);                                                                               \
    }                                                                                                                \
  } while (0)

#define CAIRN_LOG_TRACE(...) CAIRN_LOG_AT(::spdlog::level::trace, __VA_ARGS__)
#define CAIRN_LOG_DEBUG(...) CAIRN_LOG_AT(::spdlog::level::debug, __VA_ARGS__)
#define CAIRN_LOG_INFO(...) CAIRN_LOG_AT(::spdlog::level::info, __VA_ARGS__)
#define CAIRN_LOG_WARN(...) CAIRN_LOG_AT(::spdlog::level::warn, __VA_ARGS__)
#define CAIRN_LOG_ERROR(...) CAIRN_LOG_AT(::spdlog::level::err, __VA_ARGS__)
