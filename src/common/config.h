// Configuration: every tunable of Cairn, with its default and whether it can change while the
// process runs. Values come from, in increasing precedence: the defaults written here, a TOML
// file (`--config FILE`), and command-line flags. docs/config.md lists the same fields.
//
// The structs are plain data so that every layer can read its own part without depending on the
// others. Thread-safety: read-only after start-up.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace CLI {
class App;
}

namespace cairn {

struct EngineConfig {
  // TOML [engine] table.
  // Maximum size of one segment file; a record larger than this gets a segment of its own.
  // Default 256 MiB. Takes effect at the next segment roll-over.
  uint64_t segment_size = 256ull << 20;
  // Write segments with O_DIRECT (batches padded to the device's alignment). Falls back to
  // buffered writes when the file system refuses O_DIRECT (tmpfs). Default true. Start-up only.
  bool direct_io = true;
  // Read chunks with O_DIRECT instead of through the page cache. Default false. Start-up only.
  bool direct_reads = false;
  // io back end: "auto" (io_uring, else psync), "io_uring", "psync". Default "auto". Start-up only.
  std::string io_backend = "auto";
  // Upper bound on the bytes one group commit writes before its fdatasync. Default 16 MiB
  // (measured: one writer with 16 x 1 MiB appends in flight ran ~20 % faster than with 8 MiB).
  uint64_t max_batch_bytes = 16ull << 20;
  // Write an index checkpoint after this many bytes of records since the last one; this bounds
  // the bytes rescanned when the engine reopens after a crash. Default 1 GiB.
  uint64_t checkpoint_interval_bytes = 1ull << 30;
  // Compact a sealed segment once its dead bytes pass this fraction of its size. Default 0.5.
  double compaction_dead_ratio = 0.5;
  // How often the background compactor looks for work, in milliseconds. Default 1000.
  uint64_t compaction_interval_ms = 1000;
  // Run the background compactor. Default true.
  bool background_compaction = true;
};

struct LogConfig {
  // TOML [log] table.
  // "trace", "debug", "info", "warn", "error". Default "info". Changes at run time via the admin
  // API once it exists.
  std::string level = "info";
  // Log file; empty means standard error. Default empty. Start-up only.
  std::string file;
};

struct ServerConfig {
  // TOML [server] table.
  // Address and port the S3 endpoint listens on. Default "127.0.0.1:9000". Start-up only.
  std::string listen = "127.0.0.1:9000";
  // Data directory. Default "./data". Start-up only.
  std::string data_dir = "./data";
};

struct ClusterConfig {
  // TOML [cluster] table; `cairn server` has a flag for each (docs/design/cluster.md). Every field
  // is start-up only.
  // etcd endpoints, comma-separated: "http://10.0.0.1:2379,http://10.0.0.2:2379". Default empty:
  // the embedded single node, no etcd, and the other fields of this table are not used.
  std::string etcd;
  // This node's id, unique in the cluster: 1 to 64 of [A-Za-z0-9._-]. Required in cluster mode.
  // The data directory remembers it (DATA/node.json) and refuses to serve another id.
  std::string node_id;
  // ADDRESS:PORT of the node's internal RPC endpoint (its chain replicas), as peers should dial
  // it: announced in the node's registration, so not 0.0.0.0. Required in cluster mode.
  std::string rpc;
  // The node's failure domain: the replicas of a chain go to distinct zones when enough exist.
  // Default empty (no zones). Same characters as node ids.
  std::string zone;
  // The cluster's name; its state lives under /cairn/<name>/ in etcd. Same rule as node ids.
  // Default "default".
  std::string name = "default";
  // A file holding the cluster secret (at least 16 bytes; one trailing newline is not part of
  // it). Default empty: the secret comes from CAIRN_CLUSTER_SECRET. Cluster mode needs one.
  std::string secret_file;
  // The node's etcd lease, in seconds: a node that stops renewing it (killed, cut off) leaves the
  // cluster this long after its last renewal, and fences itself a third of it earlier.
  // Default 3, in [1, 600].
  uint64_t lease_ttl_seconds = 3;
  // Replicas per chain. Default 3, at least 1. Give every node the same value: whichever node
  // holds the manager's office builds the chain table with its own.
  uint64_t replicas = 3;
  // Chains in the cluster. Default 64, in [1, 120]. Same on every node, as `replicas`.
  uint64_t chains = 64;
  // Orphaned chunks (written, but named by no record: a PUT that failed before its commit): the
  // node holding the manager's office looks for them every orphan_interval_seconds (default
  // 3600; 0: never) and drops those stored more than orphan_grace_seconds ago (default 86400, at
  // least 1), which must exceed the longest PUT or part upload (cluster/orphans.h). Every node
  // also deletes, at the same interval, the blobs of its engine no replica of its names at two
  // passes in a row (ReplicaService::SweepExtras).
  uint64_t orphan_interval_seconds = 3600;
  uint64_t orphan_grace_seconds = 86400;
  // A chain successor that takes no update for this long is reported by its predecessor; the
  // manager evicts the node its peers cannot reach (docs/design/cluster.md). Milliseconds,
  // default 3000, in [200, 600000].
  uint64_t peer_timeout_ms = 3000;
  // How long an evicted node gets no new chain, in seconds. Default 60, in [0, 86400].
  uint64_t eviction_quarantine_seconds = 60;
  // The RPC address registered for peers to dial, when it is not the one the node binds (a
  // proxy, a NAT). Default empty: the bound address.
  std::string rpc_advertise;
};

struct Config {
  EngineConfig engine;
  LogConfig log;
  ServerConfig server;
  ClusterConfig cluster;
};

// Parses a byte size: a plain integer ("65536") or an integer with a binary suffix, optionally
// separated by spaces: K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024; suffixes are
// case-insensitive, and "B" alone means bytes). "64KiB" is 65536. Fractions, negative numbers,
// decimal units ("KB") and values above 2^64-1 are errors (kConfigError).
Result<uint64_t> ParseByteSize(std::string_view text);
// Renders a byte size the way ParseByteSize reads it, with the largest binary suffix that divides
// it exactly: 268435456 becomes "256MiB", 1000 stays "1000".
std::string FormatByteSize(uint64_t bytes);

// Checks ranges and enumerations that the types alone do not: io_backend is one of "auto",
// "io_uring", "psync"; log.level is a known level; compaction_dead_ratio is within [0, 1];
// segment_size, max_batch_bytes, checkpoint_interval_bytes and compaction_interval_ms are
// positive; server.listen and server.data_dir are not empty; in cluster mode (cluster.etcd set),
// node_id, name and zone follow the id rule, rpc is set, and lease_ttl_seconds, replicas and
// chains are within their ranges; node_id and rpc are not set outside cluster mode. Returns
// kConfigError naming the key.
Status ValidateConfig(const Config& config);

// True for a valid node id (also the rule for cluster names and zones): 1 to 64 characters of
// [A-Za-z0-9._-].
bool IsValidNodeId(std::string_view id);

// Parses a TOML document. Unknown tables, unknown keys and values of the wrong type are errors
// (kConfigError, naming the key), so that a typo never silently falls back to a default. Keys
// that are absent keep their defaults. The result has passed ValidateConfig.
Result<Config> ParseConfig(std::string_view toml_text);
// Reads and parses a TOML file.
Result<Config> LoadConfigFile(const std::string& path);

// Registers a flag `name` whose value is a size read with ParseByteSize ("4096", "4KiB", "1M"),
// stored into *field; a value that does not parse is a CLI11 validation error.
void AddSizeFlag(CLI::App& app, const std::string& name, uint64_t* field, const std::string& help);

// Registers command-line flags for the engine fields (--segment-size, --direct-io, ...) on `app`,
// bound to `config`. Flags parsed after a file was loaded override the file's values; flags not
// given leave the field alone. Size flags take ParseByteSize strings; boolean flags also have a
// --no-... form. A bad value makes CLI::App::parse throw CLI::ValidationError, CLI11's own error
// path: the caller of parse catches CLI::ParseError as usual (app.exit(e)).
void AddEngineFlags(CLI::App& app, EngineConfig& config);

// Renders the configuration as TOML, every field present (used by `cairn config dump`).
std::string ConfigToToml(const Config& config);

}  // namespace cairn
