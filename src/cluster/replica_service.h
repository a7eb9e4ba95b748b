// ReplicaService: a node's chain replicas joined to the cluster (docs/design/cluster.md).
//
// It runs a ChainHost (replication/chain_host.h) on the node's RPC address and keeps it in step
// with etcd, every `poll` interval (sooner when a replica or a client asks for a refresh, or when
// a registration, a chain or an eviction changes in etcd: EtcdWaker):
//   - the peers: every registered node's name, RPC address and number (NodeNumber);
//   - the chain table: for every chain whose members name this node's target under its current
//     incarnation (its registration's lease), the replica is brought up (founding member at
//     version 1; the serving member taken back after a restart; otherwise a restarted replica
//     that resyncs) and handed each new version; a replica whose node registered again under a
//     new lease rejoins;
//   - fencing: the replicas are fenced whenever the node's Membership says it may not
//     acknowledge, and the table is re-read before they are unfenced;
//   - reports: a syncing replica's "copy complete" goes to etcd as `sync/<chain>/<target>`,
//     bound to the node's lease, where the manager finds it and marks the member serving; a
//     successor that stopped taking updates for `peer_timeout` goes there as
//     `reports/<node>/<target>` (peer_reports.h), and is withdrawn when it moves again;
//   - eviction: when the manager evicted this node's registration (`evict/<node>` naming its
//     current lease), the node fences itself and registers again (Membership::Relinquish);
//   - chains left: a chain whose table has named this node under no incarnation for
//     `forget_after` is forgotten (its replica and stored state; its blobs go with the local
//     extras' pass).
// It also offers a ChainClient over its copy of the table, for the node's own writes and reads.
//
// Thread-safety: every public method is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <future>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd.h"
#include "cluster/etcd_waker.h"
#include "cluster/manager.h"
#include "cluster/membership.h"
#include "replication/chain_client.h"
#include "replication/chain_host.h"

namespace cairn::cluster {

// A node's number in the replication layer, from its id: the first 4 bytes of SHA-256(id), never
// 0. ReplicaService refuses to run beside a registered node with the same number.
uint32_t NodeNumber(std::string_view node_id);

// The chain table and the peers as the replication layer names them, read from etcd.
struct ReplicationTable {
  std::map<uint32_t, replication::PeerAddress> peers;  // by node number
  std::map<uint32_t, replication::ChainView> views;    // by chain id
};
// Reads the registrations and the chain table under `prefix` (two reads). ConfigError when two
// registered nodes share a node number.
Result<ReplicationTable> ReadReplicationTable(EtcdClient* etcd, const std::string& prefix);

struct ReplicaServiceOptions {
  std::string prefix = "/cairn/default/";
  std::string node_id;
  std::string rpc_listen;  // "host:port"
  std::string secret;      // the cluster secret
  std::string data_dir;    // the replica store's directory
  std::chrono::milliseconds poll{250};
  std::chrono::milliseconds tick{20};
  // A chain successor that takes no update for this long is reported to the manager
  // (`reports/<node>/<target>`, peer_reports.h). Default 3 s.
  std::chrono::milliseconds peer_timeout{3000};
  // Local extras (SweepExtras): how often a pass runs, 0 for never; and the chain of a blob id
  // (needed when the interval is not 0).
  std::chrono::milliseconds extras_interval{0};
  std::function<uint32_t(const std::string& blob_id)> chain_of_blob;
  // A chain whose table has named this node under no incarnation for this long is forgotten here
  // (ChainHost::RemoveChain): its replica and stored state go. Default 60 s.
  std::chrono::milliseconds forget_after{60000};
  // Where the replicas keep their blobs (chunks); must outlive the service. Null: chains carry no
  // blobs here (chain_host.h).
  replication::BlobStore* blobs = nullptr;
  // The state machine of each chain; null (or a null answer): replication::KvStateMachine.
  std::function<const replication::StateMachine*(uint32_t chain)> machine_for;
};

// One chain as this node's replica sees it, for `cairn admin status` and /metrics.
struct ReplicaStatus {
  uint32_t chain = 0;
  uint64_t version = 0;
  std::string phase;  // "down", "idle", "syncing", "ready"
  bool fenced = false;
  uint64_t last_applied = 0;
  uint64_t committed = 0;  // as far as this replica knows
  uint64_t records = 0;
  // A digest of the applied state (every record, its sequence and value, and the last sequence):
  // replicas that agree byte for byte have equal digests. Hex.
  std::string digest;
  // Resync: set while this member is not yet serving, once its installed copy's blobs are being
  // copied (before that it waits for its predecessor's snapshot).
  std::optional<replication::BlobCopyProgress> copy;
};

class ReplicaService {
 public:
  // Opens the replica store and listens on the RPC address (before the node registers, so that
  // the registration can carry the bound address). `etcd` must outlive the service.
  static Result<std::unique_ptr<ReplicaService>> Start(EtcdClient* etcd, ReplicaServiceOptions options);
  // Stop()s.
  ~ReplicaService();
  ReplicaService(const ReplicaService&) = delete;
  ReplicaService& operator=(const ReplicaService&) = delete;

  // The bound RPC address.
  const std::string& rpc_address() const { return host_->address(); }
  // Starts following etcd; `membership` (the node's registration) must stay until Stop.
  void Run(Membership* membership);
  // Stops following etcd and closes the replicas (to them, a crash: the disk keeps what they
  // had); waits for status readers inside Replicas. Afterwards Replicas answers nothing and the
  // membership is no longer used. Idempotent.
  void Stop();

  // This node's replicas that the current table names (this node, its current incarnation);
  // with `digests`, each one's digest too (it hashes the whole state on the replicas' thread).
  std::vector<ReplicaStatus> Replicas(bool digests = true);
  // A client over this node's copy of the chain table. Valid until Stop.
  replication::ChainClient& client() { return *client_; }
  bool disk_failed();
  // Rounds of the loop completed (tests wait on it).
  uint64_t rounds() const { return rounds_.load(); }
  // Chains forgotten here since Start (`forget_after`; tests wait on it).
  uint64_t chains_forgotten() const { return chains_forgotten_.load(); }
  // This node's copy of the chain table and of the peers' addresses, for chain clients; a
  // refresh re-reads them now rather than at the next poll.
  std::optional<replication::ChainView> View(uint32_t chain);
  std::optional<replication::PeerAddress> Address(uint32_t node);
  void RequestRefresh();
  // Whether this node's copy of the table names it a serving member of `chain` under its current
  // registration: then its blob store holds every committed blob of the chain.
  bool ServesLocally(uint32_t chain);

  // One pass of the local extras' collection: the blobs of this node's blob store that no replica
  // here names (ChainHost::UnnamedBlobs: the blobs of chains whose table does not name this node
  // at all, and those its replicas' states do not name) and that were unnamed at the previous
  // pass too are deleted; the rest of the unnamed ones are remembered for the next pass. Two passes an
  // interval apart spare a blob in passage (written a moment before the update naming it is
  // applied, or a replica restarting). Nothing runs while the node may not acknowledge (not
  // joined, fenced). Runs every `extras_interval` on a thread of its own; tests call it directly.
  struct ExtrasPass {
    uint64_t blobs = 0;    // in the blob store
    uint64_t unnamed = 0;  // of those, named by no replica here
    uint64_t dropped = 0;  // of those, unnamed at the previous pass too: deleted
  };
  Result<ExtrasPass> SweepExtras();

 private:
  ReplicaService(EtcdClient* etcd, ReplicaServiceOptions options);
  void Loop();
  Status Round();

  EtcdClient* const etcd_;
  const ReplicaServiceOptions options_;
  const std::string target_;  // "<node>/0"
  Membership* membership_ = nullptr;
  // Replaced only by Stop, under state_mu_ held exclusively; Replicas holds it shared.
  std::shared_mutex state_mu_;
  std::unique_ptr<replication::ChainHost> host_;
  std::unique_ptr<replication::ChainClient> client_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                                   // GUARDED_BY(mu_)
  bool refresh_ = false;                                    // GUARDED_BY(mu_)
  std::vector<replication::ManagerReport> reports_;         // GUARDED_BY(mu_)
  std::map<uint32_t, replication::ChainView> views_;        // GUARDED_BY(mu_): the table, as views
  std::map<uint32_t, replication::PeerAddress> addresses_;  // GUARDED_BY(mu_): by node number
  std::map<uint32_t, uint64_t> held_;                       // loop only: chain -> incarnation it runs under
  std::map<uint32_t, uint64_t> delivered_;                  // loop only: chain -> version delivered
  std::map<uint32_t, uint64_t> reported_;                   // loop only: chain -> version reported synced
  // Loop only: since when the table names this node in no member of a chain; chains forgotten.
  std::map<uint32_t, std::chrono::steady_clock::time_point> absent_since_;
  std::set<uint32_t> forgotten_;
  std::map<uint32_t, std::future<bool>> removing_;  // loop only: RemoveChain under way
  // Loop only: the peer reports in etcd (target -> incarnation reported), and the lease they are
  // bound to (they vanish with it).
  std::map<std::string, uint64_t> peer_reports_;
  int64_t peer_reports_lease_ = 0;
  // Reports the successors that stall (peer reports), withdraws those that moved again.
  Status ReportStalls(const std::map<uint32_t, replication::PeerAddress>& peers, int64_t lease);
  std::atomic<uint64_t> rounds_{0};
  std::atomic<uint64_t> chains_forgotten_{0};
  // Wakes the loop when a registration, a chain or an eviction changes (a watch of the prefix).
  std::unique_ptr<EtcdWaker> waker_;
  std::thread thread_;
  std::set<std::string> extra_candidates_;  // SweepExtras only: unnamed at the last pass
  std::mutex extras_mu_;                    // one pass at a time
  std::atomic<bool> extras_stop_{false};    // Stop: a pass in progress ends
  void ExtrasLoop();
  std::thread extras_thread_;
};

}  // namespace cairn::cluster
