// `cairn bench ...`: workload generators. `cairn bench engine` drives one local engine
// (bench/engine_bench.h); `cairn bench s3` drives an S3 endpoint over HTTP (bench/s3_bench.h);
// later tiers (a whole cluster) become sibling subcommands.
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
#include "bench/s3_bench.h"
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

  cmd->add_option("--dir", o.dir, "Engine directory (created when missing; nothing outside it is touched)")->required();
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

struct S3BenchFlags {
  bench::S3BenchOptions options;
  std::string op = "put";
  bool no_cleanup = false;
  bool json = false;
};

int RunS3Bench(const S3BenchFlags& flags) {
  bench::S3BenchOptions options = flags.options;
  Result<bench::S3Op> op = bench::ParseS3Op(flags.op);
  if (!op.ok()) {
    std::cerr << "cairn bench s3: " << op.status() << "\n";
    return 1;
  }
  options.op = *op;
  options.cleanup = !flags.no_cleanup;
  Result<nlohmann::json> report = bench::RunS3Bench(options);
  if (!report.ok()) {
    std::cerr << "cairn bench s3: " << report.status() << "\n";
    return 1;
  }
  if (flags.json) {
    std::cout << report->dump() << std::endl;
  } else {
    std::cout << bench::FormatS3ReportTable(*report) << std::flush;
  }
  return 0;
}

void AddS3BenchCommand(CLI::App& bench, CommandAction& action) {
  CLI::App* cmd = bench.add_subcommand("s3", "Drive an S3 endpoint with PUT, GET, mixed, DELETE or LIST load");
  auto flags = std::make_shared<S3BenchFlags>();
  bench::S3BenchOptions& o = flags->options;

  cmd->add_option("--endpoint", o.endpoint, "http://host:port of the S3 server")->required();
  cmd->add_option("--access-key", o.access_key, "Access key id")->envname("AWS_ACCESS_KEY_ID")->required();
  cmd->add_option("--secret-key", o.secret_key, "Secret access key")->envname("AWS_SECRET_ACCESS_KEY")->required();
  cmd->add_option("--region", o.region, "SigV4 region")->capture_default_str();
  cmd->add_option("--bucket", o.bucket, "Bucket (created when missing)")->required();
  cmd->add_option("--op", flags->op, "put, get, mixed (70% GET / 30% PUT), delete or list")
      ->check(CLI::IsMember({"put", "get", "mixed", "delete", "list"}))
      ->capture_default_str();
  AddSizeFlag(*cmd, "--size", &o.size, "Object size, e.g. 4KiB or 64MiB");
  cmd->add_option("--concurrency", o.concurrency, "Worker threads, one connection each")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI::Option* duration =
      cmd->add_option("--duration", o.duration_s, "Seconds of measured run (default 10 unless --count)")
          ->check(CLI::PositiveNumber);
  CLI::Option* count = cmd->add_option("--count", o.count, "Operations in the measured run, over all workers")
                           ->check(CLI::PositiveNumber);
  duration->excludes(count);
  cmd->add_option("--keys", o.keys,
                  "Objects prefilled for get/mixed/delete (default: 1 GiB worth within [concurrency, 10000]; "
                  "delete: --count or 10000)");
  cmd->add_option("--prefill-keys", o.prefill_keys, "Objects of --size written before --op list")
      ->capture_default_str();
  cmd->add_option("--fill-concurrency", o.fill_concurrency,
                  "Connections that prefill and clean up (default max(concurrency, 16))");
  cmd->add_option("--prefix", o.prefix, "Key prefix (default bench/<random>/)");
  cmd->add_flag("--sign-payload", o.sign_payload, "Send the payload SHA-256 instead of UNSIGNED-PAYLOAD");
  cmd->add_flag("--content-md5", o.content_md5, "Send Content-MD5 with every PUT");
  cmd->add_flag("--no-cleanup", flags->no_cleanup, "Keep the objects the run created");
  cmd->add_option("--server-pid", o.server_pid,
                  "PID of a server on this machine: report its CPU time and RSS over the measured run");
  cmd->add_flag("--json", flags->json, "Print one JSON object instead of a table");

  cmd->callback([flags, &action] { action = [flags] { return RunS3Bench(*flags); }; });
}

}  // namespace

void AddBenchCommand(CLI::App& root, CommandAction& action) {
  CLI::App* bench = root.add_subcommand("bench", "Benchmarks and workload generators");
  bench->require_subcommand(1);
  AddEngineBenchCommand(*bench, action);
  AddS3BenchCommand(*bench, action);
}

}  // namespace cairn::cli
