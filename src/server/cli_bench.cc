// `cairn bench ...`: workload generators. `cairn bench engine` drives one local engine
// (bench/engine_bench.h); later tiers (a whole cluster) become sibling subcommands.
//
// Engine settings come from, in increasing precedence: EngineConfig's defaults, `--config FILE`
// ([engine] table) and the engine flags (AddEngineFlags). The file is loaded by --config's own
// callback, which CLI11 runs before those of the options defined after it, so flags win.
//
// Thread-safety: see cli.h.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <string>

#include "bench/engine_bench.h"
#include "common/config.h"
#include "server/cli.h"

namespace cairn::cli {
namespace {

struct EngineBenchFlags {
  bench::EngineBenchOptions options;
  std::string workload = "append";
  bool json = false;
};

int RunEngineBench(const EngineBenchFlags& flags) {
  bench::EngineBenchOptions options = flags.options;
  Result<bench::Workload> workload = bench::ParseWorkload(flags.workload);
  if (!workload.ok()) {
    std::cerr << "cairn bench engine: " << workload.status() << "\n";
    return 1;
  }
  options.workload = *workload;
  Result<nlohmann::json> report = bench::RunEngineBench(options);
  if (!report.ok()) {
    std::cerr << "cairn bench engine: " << report.status() << "\n";
    return 1;
  }
  if (flags.json) {
    std::cout << report->dump() << std::endl;
  } else {
    std::cout << bench::FormatReportTable(*report) << std::flush;
  }
  return 0;
}

void AddEngineBenchCommand(CLI::App& bench, CommandAction& action) {
  CLI::App* cmd = bench.add_subcommand("engine", "Drive one local chunk engine with a named workload");
  auto flags = std::make_shared<EngineBenchFlags>();
  bench::EngineBenchOptions& o = flags->options;

  cmd->add_option("--dir", o.dir, "Engine directory (created when missing; nothing outside it is touched)")
      ->required();
  cmd->add_option("--workload", flags->workload, "append, read, mixed (70% reads) or reopen")
      ->check(CLI::IsMember({"append", "read", "mixed", "reopen"}))
      ->capture_default_str();
  AddSizeFlag(*cmd, "--size", &o.size, "Payload bytes per chunk, e.g. 4KiB");
  cmd->add_option("--concurrency", o.concurrency, "Worker threads")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--depth", o.depth, "Appends each worker keeps in flight (AppendAsync; append workload)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--duration", o.duration_s, "Seconds of measured run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--prefill", o.prefill,
                  "Chunks written before read/mixed (default: enough for max(1 GiB, 4 x concurrency chunks))");
  cmd->add_option("--count", o.count, "Chunks filled before the reopen measurement")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--fill-concurrency", o.fill_concurrency, "Threads writing prefill/reopen chunks")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "Print one JSON object instead of a table");
  // Defined before the engine flags: its callback must run first (see the file comment).
  cmd->add_option_function<std::string>(
      "--config",
      [flags](const std::string& path) {
        Result<Config> config = LoadConfigFile(path);
        if (!config.ok()) throw CLI::ValidationError("--config", config.status().ToString());
        flags->options.engine = config->engine;
      },
      "TOML configuration file; its [engine] table sets the engine flags' defaults");
  AddEngineFlags(*cmd, o.engine);

  cmd->callback([flags, &action] { action = [flags] { return RunEngineBench(*flags); }; });
}

}  // namespace

void AddBenchCommand(CLI::App& root, CommandAction& action) {
  CLI::App* bench = root.add_subcommand("bench", "Benchmarks and workload generators");
  bench->require_subcommand(1);
  AddEngineBenchCommand(*bench, action);
}

}  // namespace cairn::cli
