// Logging set-up: one "cairn" logger whose only sink is a dist_sink, so that InitLogging can
// replace the real sink (stderr or file) while other threads log. The dist_sink's mutex
// serialises writes, so the child sinks are the unsynchronised (_st) kinds.
//
// Thread-safety: see logging.h. spdlog exceptions (a file that cannot be opened) are caught here
// and returned as a Status.
#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <array>
#include <cctype>
#include <memory>
#include <string>
#include <utility>

namespace cairn {
namespace {

// [2024-05-01 12:00:00.123456] [info] [4242] segment.cc:87 opened segment 3
constexpr const char* kPattern = "[%Y-%m-%d %H:%M:%S.%f] [%l] [%t] %s:%# %v";
constexpr const char* kLoggerName = "cairn";

struct LevelName {
  LogLevel level;
  std::string_view name;
  spdlog::level::level_enum spdlog_level;
};

constexpr std::array<LevelName, 5> kLevels = {{
    {LogLevel::kTrace, "trace", spdlog::level::trace},
    {LogLevel::kDebug, "debug", spdlog::level::debug},
    {LogLevel::kInfo, "info", spdlog::level::info},
    {LogLevel::kWarn, "warn", spdlog::level::warn},
    {LogLevel::kError, "error", spdlog::level::err},
}};

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  for (const LevelName& row : kLevels) {
    if (row.level == level) return row.spdlog_level;
  }
  return spdlog::level::info;
}

std::shared_ptr<spdlog::sinks::sink> MakeStderrSink() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_st>();
  sink->set_pattern(kPattern);
  return sink;
}

struct LoggerState {
  std::shared_ptr<spdlog::sinks::dist_sink_mt> dist;
  std::shared_ptr<spdlog::logger> logger;
};

LoggerState& State() {
  // Leaked on purpose: the logger must outlive every static destructor that might log.
  static LoggerState* const state = [] {
    auto* s = new LoggerState;
    s->dist = std::make_shared<spdlog::sinks::dist_sink_mt>();
    s->dist->set_level(spdlog::level::trace);
    s->dist->set_sinks({MakeStderrSink()});
    s->logger = std::make_shared<spdlog::logger>(kLoggerName, s->dist);
    s->logger->set_level(spdlog::level::info);
    s->logger->flush_on(spdlog::level::warn);
    spdlog::set_default_logger(s->logger);
    return s;
  }();
  return *state;
}

}  // namespace

Result<LogLevel> ParseLogLevel(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "warning") return LogLevel::kWarn;
  for (const LevelName& row : kLevels) {
    if (row.name == lower) return row.level;
  }
  return Status::ConfigError("unknown log level \"" + std::string(name) +
                             "\" (expected trace, debug, info, warn or error)");
}

std::string_view LogLevelName(LogLevel level) {
  for (const LevelName& row : kLevels) {
    if (row.level == level) return row.name;
  }
  return "info";
}

Status InitLogging(const LogConfig& config) {
  CAIRN_ASSIGN_OR_RETURN(LogLevel level, ParseLogLevel(config.level));
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (config.file.empty()) {
    sink = MakeStderrSink();
  } else {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_st>(config.file, /*truncate=*/false);
    } catch (const spdlog::spdlog_ex& e) {
      return Status::IOError("open log file " + config.file + ": " + e.what());
    }
    sink->set_pattern(kPattern);
  }
  LoggerState& state = State();
  state.logger->flush();
  state.dist->set_sinks({std::move(sink)});
  state.logger->set_level(ToSpdlog(level));
  return Status::OK();
}

void SetLogLevel(LogLevel level) { State().logger->set_level(ToSpdlog(level)); }

LogLevel GetLogLevel() {
  const spdlog::level::level_enum current = State().logger->level();
  for (const LevelName& row : kLevels) {
    if (row.spdlog_level == current) return row.level;
  }
  return LogLevel::kInfo;
}

void FlushLogs() { State().logger->flush(); }

namespace log_internal {
spdlog::logger* Logger() { return State().logger.get(); }
}  // namespace log_internal

}  // namespace cairn
