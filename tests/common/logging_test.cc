// Tests for common/logging: level names, logging before InitLogging, the file sink, and level
// filtering. The logger is process-wide, so each test restores standard error at info.
#include "common/logging.h"

#include <fstream>
#include <sstream>
#include <string>

#include "test_util.h"

namespace cairn {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class LoggingTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_OK(InitLogging(LogConfig{})); }

  // Points the logger at a fresh file in dir_ with `level`; returns the file's path.
  std::string LogToFile(const std::string& level) {
    LogConfig config;
    config.level = level;
    config.file = dir_.path() + "/cairn.log";
    EXPECT_OK(InitLogging(config));
    return config.file;
  }

  test::TempDir dir_;
};

TEST(LogLevelTest, ParsesNames) {
  EXPECT_EQ(*ParseLogLevel("trace"), LogLevel::kTrace);
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("info"), LogLevel::kInfo);
  EXPECT_EQ(*ParseLogLevel("warn"), LogLevel::kWarn);
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarn);
  EXPECT_EQ(*ParseLogLevel("ERROR"), LogLevel::kError);
  EXPECT_TRUE(ParseLogLevel("verbose").status().IsConfigError());
  EXPECT_TRUE(ParseLogLevel("").status().IsConfigError());
}

TEST(LogLevelTest, NamesRoundTrip) {
  for (LogLevel l : {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    EXPECT_EQ(*ParseLogLevel(LogLevelName(l)), l);
  }
}

TEST_F(LoggingTest, WorksBeforeInit) {
  // No InitLogging yet in this process (tests run in declaration order, this one first of the
  // fixture): the default logger writes to stderr at info.
  testing::internal::CaptureStderr();
  CAIRN_LOG_INFO("hello {} before init", 42);
  CAIRN_LOG_DEBUG("not shown {}", 1);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("hello 42 before init"), std::string::npos) << err;
  EXPECT_NE(err.find("[info]"), std::string::npos) << err;
  EXPECT_EQ(err.find("not shown"), std::string::npos) << err;
  EXPECT_EQ(GetLogLevel(), LogLevel::kInfo);
}

TEST_F(LoggingTest, FileSinkWritesALine) {
  const std::string path = LogToFile("info");
  CAIRN_LOG_INFO("segment {} sealed at {} bytes", 7, 4096);
  FlushLogs();
  const std::string text = ReadFile(path);
  EXPECT_NE(text.find("[info]"), std::string::npos) << text;
  EXPECT_NE(text.find("logging_test.cc:"), std::string::npos) << text;
  EXPECT_NE(text.find("segment 7 sealed at 4096 bytes\n"), std::string::npos) << text;
}

TEST_F(LoggingTest, LevelFilters) {
  const std::string path = LogToFile("warn");
  EXPECT_EQ(GetLogLevel(), LogLevel::kWarn);
  CAIRN_LOG_TRACE("trace line");
  CAIRN_LOG_DEBUG("debug line");
  CAIRN_LOG_INFO("info line");
  CAIRN_LOG_WARN("warn line");
  CAIRN_LOG_ERROR("error line {}", "x");
  SetLogLevel(LogLevel::kTrace);
  CAIRN_LOG_TRACE("trace after SetLogLevel");
  FlushLogs();
  const std::string text = ReadFile(path);
  EXPECT_EQ(text.find("trace line"), std::string::npos) << text;
  EXPECT_EQ(text.find("debug line"), std::string::npos) << text;
  EXPECT_EQ(text.find("info line"), std::string::npos) << text;
  EXPECT_NE(text.find("[warning] "), std::string::npos) << text;
  EXPECT_NE(text.find("warn line"), std::string::npos) << text;
  EXPECT_NE(text.find("[error] "), std::string::npos) << text;
  EXPECT_NE(text.find("error line x"), std::string::npos) << text;
  EXPECT_NE(text.find("trace after SetLogLevel"), std::string::npos) << text;
}

TEST_F(LoggingTest, ArgumentsNotEvaluatedBelowLevel) {
  LogToFile("error");
  int evaluations = 0;
  auto count = [&evaluations] { return ++evaluations; };
  CAIRN_LOG_INFO("value {}", count());
  EXPECT_EQ(evaluations, 0);
  CAIRN_LOG_ERROR("value {}", count());
  EXPECT_EQ(evaluations, 1);
}

TEST_F(LoggingTest, BadConfigLeavesLoggerAlone) {
  LogConfig bad_level;
  bad_level.level = "loud";
  EXPECT_TRUE(InitLogging(bad_level).IsConfigError());
  // spdlog creates missing parent directories, so the file goes under a regular file instead.
  const std::string blocker = dir_.path() + "/blocker";
  std::ofstream(blocker) << "x";
  LogConfig bad_file;
  bad_file.level = "debug";
  bad_file.file = blocker + "/cairn.log";
  EXPECT_TRUE(InitLogging(bad_file).IsIOError());
  EXPECT_EQ(GetLogLevel(), LogLevel::kInfo);
}

}  // namespace
}  // namespace cairn
