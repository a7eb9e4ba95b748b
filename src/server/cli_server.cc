// `cairn server`: the S3 server on a data directory (gateway/server/server.h), alone (the
// embedded single node) or, with --cluster, as one node of a cluster (cluster/node.h).
//
// Configuration precedence: defaults, then `--config FILE` (TOML), then flags. Root credentials
// come from CAIRN_ROOT_ACCESS_KEY / CAIRN_ROOT_SECRET_KEY or from the data directory (generated
// at first start). SIGTERM and SIGINT stop the server gracefully: no new requests, requests in
// flight finish, then the storage is closed.
//
// Cluster mode: the cluster secret is loaded first (none, or a short one, and the server does
// not start); then etcd must answer (waiting up to 30 s); the storage opens (the data directory
// must belong to this node id, DATA/node.json); the listener starts; the node registers under its
// lease and runs the manager's loop. On SIGTERM it leaves first (its lease revoked: the cluster
// sees it gone at once, and another node takes the manager's office), then drains. Metadata and
// chunks live on the chains (cluster/chain_data.h): every node serves the same buckets, objects,
// users and keys; this node's engine keeps the blobs of its replicas.
//
// Thread-safety: see cli.h. Signals are blocked before any thread starts and taken with
// sigwait on main's thread.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cluster/chain_data.h"
#include "cluster/node.h"
#include "cluster/orphans.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/executor.h"
#include "common/logging.h"
#include "gateway/server/server.h"
#include "server/cli.h"

namespace cairn::cli {
namespace {

// A cluster node re-reads users and keys this often (another node may have changed them).
constexpr std::chrono::milliseconds kIdentityRefresh{1000};
// Chunk writes a node keeps in flight to the chains, over all its connections.
constexpr size_t kChunkWriteThreads = 32;
// Set when the node's replica store failed (NodeOptions::on_fatal): the SIGTERM that follows
// leaves the cluster before draining.
std::atomic<bool> fatal{false};

struct ServerArgs {
  std::string config_file;
  std::string data_dir;
  std::string listen;
  std::vector<std::string> domains;
  std::string region = "us-east-1";
  int shutdown_grace_seconds = 30;
  // Cluster flags: each overrides the [cluster] table of the config file when given.
  ClusterConfig cluster;
  std::vector<std::pair<CLI::Option*, std::function<void(ClusterConfig&)>>> cluster_flags;
};

std::vector<std::string> SplitEndpoints(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = list.find(',', start);
    const std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "cairn server: %s\n", s.ToString().c_str());
  return 1;
}

int RunServer(const ServerArgs& args) {
  Config config;
  if (!args.config_file.empty()) {
    auto loaded = LoadConfigFile(args.config_file);
    if (!loaded.ok()) return Fail(loaded.status());
    config = *loaded;
  }
  if (!args.data_dir.empty()) config.server.data_dir = args.data_dir;
  if (!args.listen.empty()) config.server.listen = args.listen;
  for (const auto& [option, apply] : args.cluster_flags) {
    if (option->count() > 0) apply(config.cluster);
  }
  if (Status s = ValidateConfig(config); !s.ok()) return Fail(s);
  const ClusterConfig& cc = config.cluster;
  const bool cluster_mode = !cc.etcd.empty();

  // Cluster mode: refused before anything starts when the secret is missing, then etcd must
  // answer. The connect runs before the signals are blocked: Ctrl-C still ends its wait.
  std::unique_ptr<cluster::Node> node;
  std::optional<crypto::SealKey> seal_key;
  if (cluster_mode) {
    auto secret = cluster::LoadClusterSecret(cc.secret_file);
    if (!secret.ok()) return Fail(secret.status());
    // Access keys' secrets are sealed under a key every node derives alike from the cluster secret.
    const crypto::Sha256Digest derived = crypto::HmacSha256(*secret, "cairn access-key seal key v1");
    seal_key.emplace();
    std::copy(derived.begin(), derived.end(), seal_key->begin());
    cluster::NodeOptions no;
    no.etcd_endpoints = SplitEndpoints(cc.etcd);
    no.cluster_name = cc.name;
    no.node_id = cc.node_id;
    no.rpc_address = cc.rpc;
    no.zone = cc.zone;
    no.secret = std::move(*secret);
    no.lease_ttl = std::chrono::seconds(cc.lease_ttl_seconds);
    no.replicas = static_cast<uint32_t>(cc.replicas);
    no.chain_count = static_cast<uint32_t>(cc.chains);
    no.data_dir = config.server.data_dir;
    no.peer_timeout = std::chrono::milliseconds(cc.peer_timeout_ms);
    no.eviction_quarantine = std::chrono::seconds(cc.eviction_quarantine_seconds);
    no.rpc_advertise = cc.rpc_advertise;
    // Every orphan interval each node also deletes its local extras (blobs no replica of its names).
    no.extras_interval = std::chrono::seconds(cc.orphan_interval_seconds);
    // Fail-stop: a node whose replica store fails leaves the cluster the way SIGTERM makes it.
    no.on_fatal = [](const Status& why) {
      CAIRN_LOG_ERROR("leaving the cluster: {}", why.ToString());
      fatal.store(true);
      ::kill(::getpid(), SIGTERM);
    };
    if (no.etcd_endpoints.empty()) {
      return Fail(Status::ConfigError("--cluster: no etcd endpoint in \"" + cc.etcd + "\""));
    }
    std::printf("Cairn: node %s of cluster %s, connecting to etcd at %s\n", cc.node_id.c_str(), cc.name.c_str(),
                cc.etcd.c_str());
    std::fflush(stdout);
    auto connected = cluster::Node::Connect(std::move(no));
    if (!connected.ok()) return Fail(connected.status().WithContext("etcd at " + cc.etcd));
    node = std::move(*connected);
  }

  // Chunk buffers (1 MiB, and the engine's aligned copies) come and go with every PUT. A fixed
  // mmap threshold below their size maps them per use and unmaps them on free, so memory follows
  // the live buffers (about 21 MiB per streaming PUT) and goes back when traffic stops. The price,
  // measured: page faults and zeroing take a fifth of the server's CPU at 500 MB/s of PUTs; from
  // malloc's heap they would be reused warm (+50 % for one PUT stream) but fragmentation tripled
  // the peak RSS. A pool of chunk buffers is the fix that keeps both (docs/benchmarks.md).
  // A cluster node is the other way round: every chunk passes through several buffers per hop
  // (codec, frames, blob store), and mapping each one cost 64 MiB PUTs through three local nodes
  // half their throughput (interleaved, medians: 63 MB/s mapped, 112 MB/s from the heap) while
  // the peak RSS was lower from the heap (233 MB against 319 MB on node n1); so it keeps malloc's
  // default, and the maintenance loop's malloc_trim hands memory back when traffic stops.
  if (!cluster_mode) mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  mallopt(M_ARENA_MAX, 4);

  // Every thread started from here on inherits the blocked set, so the signals reach sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  // SIGUSR1 only wakes the thread that watches for signals while a node joins (below).
  sigset_t blocked = signals;
  sigaddset(&blocked, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
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
  // Cluster mode's data path: declared before the server, so that they outlive it.
  std::unique_ptr<ThreadPool> chunk_writes;
  if (cluster_mode) {
    options.node_id = cc.node_id;
    options.cluster_name = cc.name;
    chunk_writes = std::make_unique<ThreadPool>(kChunkWriteThreads);
    options.make_meta = [n = node.get(), chains = static_cast<uint32_t>(cc.chains)] {
      return cluster::NewChainMetaStore(&n->chain_client(), chains);
    };
    options.make_chunks = [n = node.get(), pool = chunk_writes.get(),
                           chains = static_cast<uint32_t>(cc.chains)](engine::Engine* engine) {
      // Chunks of the chains this node serves are read from its own engine.
      cluster::LocalBlobs local{engine, [n](replication::ChainId chain) { return n->ServesLocally(chain); }};
      return std::make_unique<cluster::ChainChunkStore>(&n->chain_client(), chains, pool, std::move(local));
    };
    options.seal_key = seal_key;
    options.identity_refresh = kIdentityRefresh;
    cluster::Node* const n = node.get();
    options.status = [n](bool digests) -> Result<std::string> {
      CAIRN_ASSIGN_OR_RETURN(cluster::ClusterStatus status, n->ReadStatus(digests));
      return cluster::StatusJson(status);
    };
  }

  auto server = gateway::server::Server::Open(options);
  if (!server.ok()) return Fail(server.status());
  if (Status s = (*server)->Start(); !s.ok()) return Fail(s);
  const std::string endpoint = (*server)->endpoint();
  std::unique_ptr<cluster::EngineBlobStore> blobs;  // gone before the server (and its engine)
  std::unique_ptr<cluster::OrphanSweeper> orphans;
  if (cluster_mode) {
    blobs = std::make_unique<cluster::EngineBlobStore>((*server)->engine());
    // Joining may wait (for etcd, or for this id's previous lease to expire): a SIGTERM or SIGINT
    // meanwhile cancels it, and the server stops at once.
    std::atomic<int> join_signal{0};
    std::thread watcher([&join_signal, &blocked, n = node.get()] {
      int sig = 0;
      sigwait(&blocked, &sig);
      if (sig == SIGUSR1) return;
      join_signal = sig;
      n->CancelJoin();
    });
    // After Start: the registration announces the address the listener really has.
    Status joined = node->Join(endpoint, blobs.get());
    pthread_kill(watcher.native_handle(), SIGUSR1);  // ignored when it has already returned
    watcher.join();
    if (join_signal != 0) {
      CAIRN_LOG_INFO("signal {} while joining: stopping", join_signal.load());
      node->Leave();
      blobs.reset();
      (*server)->Stop(std::chrono::milliseconds(0));
      return 0;
    }
    if (!joined.ok()) {
      (*server)->Stop(std::chrono::milliseconds(0));
      return Fail(joined.WithContext("joining cluster " + cc.name + " as node " + cc.node_id));
    }
    if (cc.orphan_interval_seconds > 0) {
      cluster::OrphanCollectorOptions oo;
      oo.grace = std::chrono::seconds(cc.orphan_grace_seconds);
      orphans = std::make_unique<cluster::OrphanSweeper>(node.get(), static_cast<uint32_t>(cc.chains),
                                                         std::chrono::seconds(cc.orphan_interval_seconds), oo);
    }
  }
  const std::string cred_file = config.server.data_dir + "/credentials";
  std::printf("Cairn S3 server listening on %s (data in %s)\n", endpoint.c_str(), config.server.data_dir.c_str());
  if (cluster_mode) {
    std::printf("  cluster %s: node %s, zone %s, RPC %s, etcd %s\n", cc.name.c_str(), cc.node_id.c_str(),
                cc.zone.empty() ? "(none)" : cc.zone.c_str(), cc.rpc.c_str(), cc.etcd.c_str());
    std::printf("  every node serves the cluster's buckets, users and keys; data is on %d replicas\n",
                static_cast<int>(cc.replicas));
  }
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
    std::printf(
        "  export AWS_ACCESS_KEY_ID=\"$CAIRN_ROOT_ACCESS_KEY\" AWS_SECRET_ACCESS_KEY=\"$CAIRN_ROOT_SECRET_KEY\"\n");
  }
  if (cluster_mode) {
    std::printf("  cairn admin --endpoint %s --region %s status\n", endpoint.c_str(), args.region.c_str());
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
  orphans.reset();  // a pass in progress ends first
  // A node whose replica store failed leaves at once: its replicas are fenced for good, and every
  // chain it belongs to waits for the manager to remove it, which its lease would delay.
  if (node && fatal.load()) node->Leave();
  // Otherwise the requests in flight finish first, while this node is still a member of its
  // chains (had it left first, their writes would wait for the chains to be rebuilt without it,
  // and fail when that took longer than their deadline); then the chunk writes still running and
  // the commits queued behind them. Then it leaves: the cluster learns at once, not a lease TTL
  // later. The engine closes only after that, since until then the replicas still write blobs
  // into it. The node object stays until the server is gone: the status answer reads through it.
  (*server)->Drain(std::chrono::seconds(args.shutdown_grace_seconds));
  chunk_writes.reset();  // its jobs' callbacks go to the server's blocking pool, which Quiesce runs
  (*server)->Quiesce();
  if (node) node->Leave();
  blobs.reset();
  (*server)->Stop(std::chrono::seconds(0));
  server->reset();
  node.reset();
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
  // Cluster mode (docs/design/cluster.md); each flag overrides its key of the [cluster] table.
  const auto cluster_flag = [&](const std::string& name, auto* field, const std::string& help,
                                void (*apply)(ClusterConfig&, const ClusterConfig&)) {
    CLI::Option* o = cmd->add_option(name, *field, help);
    args->cluster_flags.emplace_back(o, [args, apply](ClusterConfig& c) { apply(c, args->cluster); });
    return o;
  };
  cluster_flag("--cluster", &args->cluster.etcd,
               "Run as a cluster node: etcd endpoints http://HOST:PORT[,...] ([cluster] etcd)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.etcd = f.etcd; });
  cluster_flag("--node-id", &args->cluster.node_id, "This node's id, [A-Za-z0-9._-]{1,64} ([cluster] node_id)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.node_id = f.node_id; });
  cluster_flag("--rpc", &args->cluster.rpc, "ADDRESS:PORT of this node's internal RPC ([cluster] rpc)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.rpc = f.rpc; });
  cluster_flag("--zone", &args->cluster.zone, "Failure domain of this node ([cluster] zone)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.zone = f.zone; });
  cluster_flag("--cluster-name", &args->cluster.name,
               "Cluster name; its etcd prefix is /cairn/NAME/ (default \"default\", [cluster] name)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.name = f.name; });
  cluster_flag("--cluster-secret-file", &args->cluster.secret_file,
               "File with the cluster secret, >= 16 bytes (default $CAIRN_CLUSTER_SECRET, [cluster] secret_file)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.secret_file = f.secret_file; });
  cluster_flag("--lease-ttl", &args->cluster.lease_ttl_seconds,
               "Seconds of the node's etcd lease (default 3, [cluster] lease_ttl_seconds)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.lease_ttl_seconds = f.lease_ttl_seconds; })
      ->check(CLI::Range(1, 600));
  cluster_flag("--replicas", &args->cluster.replicas, "Replicas per chain (default 3, [cluster] replicas)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.replicas = f.replicas; })
      ->check(CLI::Range(1, 1000));
  cluster_flag("--chains", &args->cluster.chains, "Chains in the cluster (default 64, [cluster] chains)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.chains = f.chains; })
      ->check(CLI::Range(1, 120));
  cluster_flag("--orphan-interval", &args->cluster.orphan_interval_seconds,
               "Seconds between looks for orphaned chunks, 0: never (default 3600, [cluster] orphan_interval_seconds)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.orphan_interval_seconds = f.orphan_interval_seconds; })
      ->check(CLI::Range(uint64_t{0}, uint64_t{365} * 86400));
  cluster_flag("--orphan-grace", &args->cluster.orphan_grace_seconds,
               "Seconds an unnamed chunk is spared: longer than any PUT (default 86400, [cluster] orphan_grace_seconds)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.orphan_grace_seconds = f.orphan_grace_seconds; })
      ->check(CLI::Range(uint64_t{1}, uint64_t{365} * 86400));
  cluster_flag("--peer-timeout-ms", &args->cluster.peer_timeout_ms,
               "Milliseconds a chain successor may take no update before its peers report it (default 3000, "
               "[cluster] peer_timeout_ms)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.peer_timeout_ms = f.peer_timeout_ms; })
      ->check(CLI::Range(uint64_t{200}, uint64_t{600000}));
  cluster_flag("--eviction-quarantine", &args->cluster.eviction_quarantine_seconds,
               "Seconds a node evicted on its peers' reports gets no new chain (default 60, "
               "[cluster] eviction_quarantine_seconds)",
               [](ClusterConfig& c, const ClusterConfig& f) {
                 c.eviction_quarantine_seconds = f.eviction_quarantine_seconds;
               })
      ->check(CLI::Range(uint64_t{0}, uint64_t{86400}));
  cluster_flag("--rpc-advertise", &args->cluster.rpc_advertise,
               "ADDRESS:PORT peers dial for this node's RPC, when not --rpc (a proxy, a NAT; [cluster] rpc_advertise)",
               [](ClusterConfig& c, const ClusterConfig& f) { c.rpc_advertise = f.rpc_advertise; });
  cmd->callback([&action, args] { action = [args] { return RunServer(*args); }; });
}

}  // namespace cairn::cli
