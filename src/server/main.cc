// The `cairn` binary: one executable with a subcommand per role (`cairn --help` lists them).
// Subcommands are registered by the cli_*.cc files (see cli.h); main parses, sets up logging and
// runs the chosen subcommand's action, whose return value is the exit code.
//
// Thread-safety: single-threaded until the chosen action starts its own threads.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "common/config.h"
#include "common/logging.h"
#include "server/cli.h"

int main(int argc, char** argv) {
  CLI::App app{"Cairn: an S3-compatible object store", "cairn"};
  app.require_subcommand(1);
  cairn::LogConfig log;
  app.add_option("--log-level", log.level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "warning", "error"}))
      ->capture_default_str();
  app.add_option("--log-file", log.file, "Log to this file instead of standard error");

  cairn::cli::CommandAction action;
  cairn::cli::AddAdminCommand(app, action);
  cairn::cli::AddBenchCommand(app, action);
  cairn::cli::AddServerCommand(app, action);
  cairn::cli::AddVersionCommand(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (cairn::Status s = cairn::InitLogging(log); !s.ok()) {
    std::cerr << "cairn: " << s << "\n";
    return 1;
  }
  if (!action) {
    std::cerr << app.help();
    return 1;
  }
  const int code = action();
  cairn::FlushLogs();
  return code;
}
