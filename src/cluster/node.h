// One node's part in the cluster, for `cairn server --cluster` (docs/design/cluster.md): it
// connects to etcd, joins (Membership: lease, registration bound to it, self-fencing), runs the
// manager's loop (Manager: every node campaigns; the office holder keeps the chain table), keeps
// its view of the cluster fresh, reports that view to `cairn admin status` and /metrics, and
// leaves.
//
//   auto node = Node::Connect(options);   // etcd answers (waits up to options.start_timeout)
//   (*node)->Join(s3_endpoint);           // registered; the manager's loop runs
//   ... (*node)->ReadStatus() ...         // from any thread
//   (*node)->Leave();                     // manager stopped, lease revoked: gone at once
//
// The view: every refresh_interval a thread reads the manager's office, the registrations and
// the chain table in one etcd transaction (one revision), then tells Membership that the table was
// re-read (after a lapse of its lease a node acknowledges again only once it has: LeaseGuard), and
// sets the cluster gauges of /metrics (cairn_cluster_nodes, cairn_cluster_chains,
// cairn_cluster_is_manager, cairn_cluster_fenced, cairn_lease_renewals_total). The same thread
// starts the manager's loop once the cluster has formed (NodeOptions::formation_wait).
//
// The node's replicas (ReplicaService: a ChainHost on the RPC address, following the table) run
// from Join to Leave, so the chains the manager builds are real: founding members start, members
// that return resync from their predecessor and are promoted, and the status shows each local
// replica's phase and a digest of its state.
//
// Not yet (issue 5): the S3 data path through chains. Nothing but tests and tools writes to the
// chains yet; the server refuses S3 requests in cluster mode (gateway/server/s3_service.h).
//
// Thread-safety: Connect, Join and Leave are called from one thread. ReadStatus, fenced and
// is_manager may be called from any thread at any time, also during Join and Leave.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd.h"
#include "cluster/manager.h"
#include "cluster/membership.h"
#include "cluster/peer_reports.h"
#include "cluster/placement.h"
#include "cluster/replica_service.h"
#include "common/result.h"
#include "replication/chain_client.h"

namespace cairn::cluster {

struct NodeOptions {
  std::vector<std::string> etcd_endpoints;  // required
  std::string cluster_name = "default";     // the etcd prefix is /cairn/<name>/
  std::string node_id;                      // required; the target is "<id>/0"
  std::string rpc_address;                  // where the node's replicas listen (ReplicaService)
  std::string zone;
  std::string data_dir;  // the replica store goes to <data_dir>/replicas
  // The cluster secret (LoadClusterSecret): the RPC's mutual authentication (net/handshake.h).
  std::string secret;
  std::chrono::seconds lease_ttl{3};
  uint32_t replicas = 3;
  uint32_t chain_count = 64;
  // Connect keeps trying this long while no etcd endpoint answers, and Join this long while the
  // node id is still registered under a live lease (this node's previous run, killed less than a
  // TTL ago) or etcd fails. Default 30 s.
  std::chrono::milliseconds start_timeout{30000};
  // How often the view is refreshed, and the manager's interval. Default 500 ms.
  std::chrono::milliseconds refresh_interval{500};
  // A node of a new cluster (no chain table in etcd yet) starts its manager's loop only once
  // `replicas` nodes have registered, or this long after it joined: nodes started together then
  // all found the table as serving members (a new chain has nothing to copy), rather than the
  // first one alone and the others appended as syncing tails, one at a time. Default 10 s.
  std::chrono::milliseconds formation_wait{10000};
  // Peer reports (peer_reports.h): a chain successor taking no update this long is reported.
  std::chrono::milliseconds peer_timeout{3000};
  // How long a node evicted on its peers' reports gets no new chain.
  std::chrono::milliseconds eviction_quarantine{60000};
  // The RPC address registered for peers, when not the bound one. Empty: the bound one.
  std::string rpc_advertise;
  // How often the node looks for local extras (ReplicaService::SweepExtras): blobs of its store no
  // replica here names at two passes in a row. 0: never (the default).
  std::chrono::milliseconds extras_interval{0};
  // Called once (on the refresh thread) when the node cannot go on: its replica store failed a
  // write. The server makes it leave (SIGTERM to itself: the lease is revoked, the manager
  // removes the node at once). Default: log only.
  std::function<void(const Status&)> on_fatal;
};

// The cluster as one etcd revision shows it, from this node's side.
struct ClusterStatus {
  std::string cluster;                 // its name
  std::string node;                    // this node's id
  std::optional<std::string> manager;  // the office holder; none while the office is empty
  std::vector<RegisteredNode> nodes;   // by id
  std::vector<Chain> chains;           // by id
  // Syncing members' reports that their copy is complete (`sync/<chain>/<target>`), until the
  // manager marks them serving.
  std::vector<SyncReport> sync_reports;
  // Peer reports (`reports/`) and evictions under way (`evict/`): peer_reports.h.
  std::vector<PeerReport> peer_reports;
  std::vector<Eviction> evictions;
  std::vector<ReplicaStatus> local_replicas;  // this node's replicas, by chain
  int64_t revision = 0;                       // the etcd revision read
  bool fenced = true;                         // this node may not acknowledge writes (not joined, lease lapsed)
  bool disk_failed = false;                   // this node's replica store failed a write (it leaves the cluster)
  bool is_manager = false;                    // this node's manager loop holds the office
  uint32_t replicas = 0;                      // as this node is configured
  uint32_t chain_count = 0;                   // as this node is configured
};

// The status as `GET /_cairn/admin/v1/status` answers it (docs/design/cluster.md):
// {"mode": "cluster", "node", "cluster", "manager" (id or null), "nodes": [{"id", "rpc", "s3",
// "zone", "targets", "lease", and "quarantined_until_ms" when set}], "chains": [{"id", "version",
// "members": [{"target", "state", "incarnation"}]}], "resync": [{"chain", "target", "incarnation",
// "version", "copy": "in progress" | "complete"}] (every syncing member), "peer_reports":
// [{"reporter", "target", "incarnation"}], "evictions": [{"node", "lease", "until_ms"}],
// "local_replicas": [{"chain", "version", "phase", "fenced", "last_applied", "committed",
// "records", "digest"}] (this node's replicas the table names), "fenced", "disk_failed",
// "is_manager", "replicas", "chain_count", "revision"}. A member's incarnation is the lease its
// node registered under when it was placed.
std::string StatusJson(const ClusterStatus& status);

// The cluster secret: the contents of `file` when it is not empty (one trailing newline dropped),
// else $CAIRN_CLUSTER_SECRET. ConfigError when there is none or it is shorter than 16 bytes;
// the file's own errors (NotFound, IOError) otherwise.
Result<std::string> LoadClusterSecret(const std::string& file);

class Node {
 public:
  // Connects to etcd, retrying until one endpoint answers or options.start_timeout passes
  // (then Timeout, with the last error). InvalidArgument for options that cannot work.
  static Result<std::unique_ptr<Node>> Connect(NodeOptions options);
  // Leave()s.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Registers the node (its S3 endpoint announced as `s3_address`) and starts the view's refresh,
  // which starts the manager's loop. Retries while the id is still held by a live lease, up to
  // start_timeout (then AlreadyExists: another process uses the id). ConfigError when the
  // cluster runs another chain count or replication factor. REQUIRES: called once.
  // `blobs` (may be null: no chunks here) must stay until Leave.
  Status Join(const std::string& s3_address, replication::BlobStore* blobs = nullptr);
  // Makes a Join in progress (or the next one) give up at its next wait, with Cancelled: a signal during start-up stops the node at once rather than after
  // the waits. Thread-safe.
  void CancelJoin();
  // Stops the refresh and the manager's loop, then revokes the lease: the registration, and the
  // office when this node held it, go at once. Idempotent.
  void Leave();

  // Reads the cluster's state from etcd now (one transaction), with this node's replicas (and a
  // digest of each one's state when `digests`: it reads the whole state). IOError / Timeout when
  // etcd does not answer.
  Result<ClusterStatus> ReadStatus(bool digests = false) const;
  bool fenced() const;
  bool is_manager() const;

  const std::string& prefix() const { return prefix_; }
  // A client of the cluster's chains over this node's copy of the table (the S3 data path). It
  // lives as long as the node; before Join and after Leave it has no table, and its calls time out.
  replication::ChainClient& chain_client() { return *chain_client_; }
  // Whether this node is a serving member of `chain` under its current registration (its blob
  // store then holds every committed blob of the chain). False when not joined.
  bool ServesLocally(uint32_t chain);

 private:
  Node(NodeOptions options, std::unique_ptr<EtcdClient> etcd);
  void RefreshLoop();
  // Records this node's chain count and replication factor as the cluster's when it is the
  // first; ConfigError when the cluster's differ.
  Status CheckClusterConfig();
  // Starts the manager's loop when the cluster has formed. REQUIRES: mu_ held.
  void MaybeStartManager(const ClusterStatus& status);
  void PublishMetrics(const ClusterStatus& status);

  const NodeOptions options_;
  const std::string prefix_;
  const std::unique_ptr<EtcdClient> etcd_;

  // Replaced only by Join and Leave, under mu_; read under mu_ by the other methods.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<Membership> membership_;  // GUARDED_BY(mu_)
  std::unique_ptr<Manager> manager_;        // GUARDED_BY(mu_)
  // GUARDED_BY(mu_): the node's replicas, from Join to Leave; shared with status readers, which
  // may still hold it while Leave runs.
  std::shared_ptr<ReplicaService> replicas_;
  std::unique_ptr<replication::ChainClient> chain_client_;
  std::atomic<bool> join_cancelled_{false};
  std::atomic<bool> left_{false};  // Leave was called: the chain client's calls give up
  std::mutex join_mu_;
  std::condition_variable join_cv_;
  // Sleeps the pause between two attempts of Join; true when the join was cancelled.
  bool JoinPause();
  bool stopping_ = false;  // GUARDED_BY(mu_): the refresh thread ends
  std::thread refresher_;
  std::chrono::steady_clock::time_point joined_at_{};  // GUARDED_BY(mu_)
  uint64_t renewals_published_ = 0;                    // the refresh thread's own
  bool disk_failure_signalled_ = false;                // the refresh thread's own
};

}  // namespace cairn::cluster
