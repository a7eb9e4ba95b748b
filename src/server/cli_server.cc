// `cairn server`: the single-node S3 server on a data directory (gateway/server/server.h).
//
// Configuration precedence: defaults, then `--config FILE` (TOML), then flags. Root credentials
// come from CAIRN_ROOT_ACCESS_KEY / CAIRN_ROOT_SECRET_KEY or from the data directory (generated
// at first start). SIGTERM and SIGINT stop the server gracefully: no new requests, requests in
// flight finish, then the storage is closed.
//
// Thread-safety: see cli.h. Signals are blocked before any thread starts and taken with
// sigwait on main's thread.
#include <malloc.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/logging.h"
#include "gateway/server/server.h"
#include "server/cli.h"

namespace cairn::cli {
namespace {

struct ServerArgs {
  std::string config_file;
  std::string data_dir;
  std::string listen;
  std::vector<std::string> domains;
  std::string region = "us-east-1";
  int shutdown_grace_seconds = 30;
};

int RunServer(const ServerArgs& args) {
  Config config;
  if (!args.config_file.empty()) {
    auto loaded = LoadConfigFile(args.config_file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "cairn server: %s\n", loaded.status().ToString().c_str());
      return 1;
    }
    config = *loaded;
  }
  if (!args.data_dir.empty()) config.server.data_dir = args.data_dir;
  if (!args.listen.empty()) config.server.listen = args.listen;
  if (Status s = ValidateConfig(config); !s.ok()) {
    std::fprintf(stderr, "cairn server: %s\n", s.ToString().c_str());
    return 1;
  }

  // Chunk buffers (1 MiB, and the engine's aligned copies) come and go with every PUT. A fixed
  // mmap threshold below their size maps them per use and unmaps them on free, so memory follows
  // the live buffers (about 21 MiB per streaming PUT) and goes back when traffic stops. The price,
  // measured: page faults and zeroing take a fifth of the server's CPU at 500 MB/s of PUTs; from
  // malloc's heap they would be reused warm (+50 % for one PUT stream) but fragmentation tripled
  // the peak RSS. A pool of chunk buffers is the fix that keeps both (docs/benchmarks.md).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_ARENA_MAX, 4);

  // Every thread started from here on inherits the blocked set, so the signals reach sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  gateway::server::ServerOptions options;
  options.config = config;
  options.region = args.region;
  if (!args.domains.empty()) options.domains = args.domains;
  bool generated = false;
  auto creds = gateway::server::LoadOrCreateRootCredentials(config.server.data_dir, &generated);
  if (!creds.ok()) {
    std::fprintf(stderr, "cairn server: %s\n", creds.status().ToString().c_str());
    return 1;
  }
  options.root = *creds;

  auto server = gateway::server::Server::Open(options);
  if (!server.ok()) {
    std::fprintf(stderr, "cairn server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  if (Status s = (*server)->Start(); !s.ok()) {
    std::fprintf(stderr, "cairn server: %s\n", s.ToString().c_str());
    return 1;
  }
  const std::string endpoint = (*server)->endpoint();
  const std::string cred_file = config.server.data_dir + "/credentials";
  std::printf("Cairn S3 server listening on %s (data in %s)\n", endpoint.c_str(), config.server.data_dir.c_str());
  std::printf("  access key: %s\n", options.root.access_key.c_str());
  if (generated) {
    std::printf("  secret key: %s\n", options.root.secret_key.c_str());
    std::printf("  (generated now and saved in %s, readable only by you; shown this once)\n", cred_file.c_str());
  } else if (std::getenv("CAIRN_ROOT_ACCESS_KEY") == nullptr) {
    std::printf("  secret key: in %s\n", cred_file.c_str());
  } else {
    std::printf("  secret key: from CAIRN_ROOT_SECRET_KEY\n");
  }
  std::printf("Try it:\n");
  if (std::getenv("CAIRN_ROOT_ACCESS_KEY") == nullptr) {
    std::printf("  set -a; . %s; set +a\n", cred_file.c_str());
  } else {
    std::printf("  export AWS_ACCESS_KEY_ID=\"$CAIRN_ROOT_ACCESS_KEY\" AWS_SECRET_ACCESS_KEY=\"$CAIRN_ROOT_SECRET_KEY\"\n");
  }
  std::printf("  aws --endpoint-url %s --region %s s3 mb s3://my-bucket\n", endpoint.c_str(), args.region.c_str());
  std::printf("  aws --endpoint-url %s --region %s s3 cp README.md s3://my-bucket/\n", endpoint.c_str(),
              args.region.c_str());
  std::printf("Give each person or program its own user and keys (with the root credentials loaded):\n");
  std::printf("  cairn admin --endpoint %s --region %s user create alice\n", endpoint.c_str(), args.region.c_str());
  std::printf("  cairn admin --endpoint %s --region %s key create alice\n", endpoint.c_str(), args.region.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  CAIRN_LOG_INFO("signal {}: shutting down (in-flight requests get {} s)", sig, args.shutdown_grace_seconds);
  (*server)->Stop(std::chrono::seconds(args.shutdown_grace_seconds));
  server->reset();
  return 0;
}

}  // namespace

void AddServerCommand(CLI::App& root, CommandAction& action) {
  auto args = std::make_shared<ServerArgs>();
  CLI::App* cmd = root.add_subcommand("server", "Run the S3 server on a data directory");
  cmd->add_option("--config", args->config_file, "TOML configuration file (docs/config.md)");
  cmd->add_option("--data", args->data_dir, "Data directory (default ./data, or [server] data_dir)");
  cmd->add_option("--listen", args->listen, "ADDRESS:PORT to listen on (default 127.0.0.1:9000)");
  cmd->add_option("--domain", args->domains,
                  "Base domain for virtual-host addressing, <bucket>.<domain> (repeatable; default localhost)");
  cmd->add_option("--region", args->region, "Region this server reports and signs for")->capture_default_str();
  cmd->add_option("--shutdown-grace", args->shutdown_grace_seconds,
                  "Seconds requests in flight get to finish after SIGTERM")
      ->capture_default_str();
  cmd->callback([&action, args] { action = [args] { return RunServer(*args); }; });
}

}  // namespace cairn::cli
