// The `cairn` command line: one binary, one subcommand per role (`server`, `admin`, `bench`,
// `version`). Each cli_<name>.cc registers its subcommand on the root CLI::App; main.cc parses the
// arguments and runs what the chosen subcommand left in its CommandAction.
//
// Parsing only records what to do: no subcommand starts work, opens files or creates threads
// from inside CLI11, so that errors in the arguments are reported before anything happens.
//
// Thread-safety: used from main's thread only.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace cairn::cli {

// The work a parsed subcommand asks for. Returns the process exit code: 0 on success, 1 after
// printing the failing Status to standard error.
using CommandAction = std::function<int()>;

// `cairn admin ...`: users and access keys of a running server (server/cli_admin.cc).
void AddAdminCommand(CLI::App& root, CommandAction& action);

// `cairn bench engine ...`: the engine workload generator (bench/engine_bench.h).
// Sets `action` when the subcommand is chosen. `action` must outlive the parse.
void AddBenchCommand(CLI::App& root, CommandAction& action);

// `cairn server ...`: the S3 server (gateway/server/server.h).
void AddServerCommand(CLI::App& root, CommandAction& action);

// `cairn version`: the version and the build.
void AddVersionCommand(CLI::App& root, CommandAction& action);

}  // namespace cairn::cli
