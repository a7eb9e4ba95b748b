// The manager's loop (docs/design/cluster.md, "The manager", "The chain table"): the node that
// holds the office keeps the chain table in etcd in step with the live nodes.
//
// Every node runs a Manager. While another node holds the office it campaigns now and then
// (ManagerElection, with the node's own lease: the office goes when the node's lease goes). The
// holder, every `interval`: reads the registered nodes and the chain table (two reads), computes
// Rebuild (placement.h), and writes the chains that changed in one fenced transaction: its term,
// and for each chain written the mod_revision it read (or its absence). A stale read makes it
// read again next round; a lost office makes it campaign again.
//
// Members are (target, incarnation) pairs, the incarnation being the lease of the node's
// registration; a syncing member that reported its copy complete (`sync/<chain>/<target>`) under
// the chain's current version is marked serving.
//
// Peer reports (peer_reports.h): every round it also reads `reports/` and `evict/`; when no
// eviction is under way it evicts the node ChooseEviction names (a fenced write of
// `evict/<node>`), keeps nodes registered as quarantined (and those being evicted) out of new
// placements, deletes the records acted on, and revokes the lease of an evicted node that has not
// acted on its record within two TTLs (holding its chains unchanged until it registers again or
// has surely fenced itself).
//
// Not yet: NeedsResync reports, operator changes to the replication factor.
//
// Besides the interval, the loop runs a round as soon as a registration, a report, an eviction, a
// sync report or the office changes (EtcdWaker: a watch of the prefix), at most every 20 ms.
//
// Thread-safety: the public methods are thread-safe; the loop runs on its own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "cluster/etcd.h"
#include "cluster/etcd_waker.h"
#include "cluster/manager_election.h"
#include "cluster/membership.h"
#include "cluster/placement.h"
#include "common/result.h"

namespace cairn::cluster {

struct ManagerOptions {
  std::string prefix = "/cairn/default/";
  uint32_t chain_count = 64;  // at most 120: one transaction writes every changed chain
  uint32_t replicas = 3;
  std::chrono::milliseconds interval{500};
  // The nodes' lease TTL (they all use the same): how long the manager waits on an evicted node.
  std::chrono::milliseconds lease_ttl{3000};
  // How long an evicted node gets no new chain (it registers again with the end of it).
  std::chrono::milliseconds eviction_quarantine{60000};
  // The peer reports must stay unchanged this long before the manager evicts on them.
  std::chrono::milliseconds report_settle{1000};
};

// A chain as stored in etcd: {"version": 3, "members": [{"target": "n1/0", "state": "serving"}]}.
std::string EncodeChain(const Chain& chain);
Result<Chain> DecodeChain(uint32_t id, std::string_view json);
std::string ChainKey(const ManagerOptions& options, uint32_t id);
// The chain records of a range read of `<prefix>chains/`, by id (etcd orders keys as bytes:
// "chains/10" before "chains/2"); records of ids >= `chain_count` are left out, unread. With
// `mod_revisions`, each chain's mod_revision too. Corruption for a record that does not decode.
Result<std::vector<Chain>> DecodeChainTable(std::string_view prefix, const std::vector<EtcdKv>& kvs,
                                            uint32_t chain_count = UINT32_MAX,
                                            std::map<uint32_t, int64_t>* mod_revisions = nullptr);
// A syncing member's completion report, `<prefix>sync/<chain>/<target>` (written by the member's
// node, bound to its lease): {"state": "done", "incarnation": 7587..., "version": 4}.
std::string SyncKey(const ManagerOptions& options, uint32_t chain, std::string_view target);
std::string EncodeSyncReport(const SyncReport& report);
Result<SyncReport> DecodeSyncReport(const ManagerOptions& options, std::string_view key, std::string_view json);

class Manager {
 public:
  // `lease` gives the node's current lease id (Membership::lease_id): the office is bound to it.
  static Result<std::unique_ptr<Manager>> Start(EtcdClient* etcd, std::string node_id, std::function<int64_t()> lease,
                                                ManagerOptions options);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  bool is_manager() const { return is_manager_.load(); }
  // Fenced transactions that changed the table, since Start.
  uint64_t table_writes() const { return table_writes_.load(); }
  // Nodes this manager evicted, since Start.
  uint64_t evictions() const { return evictions_.load(); }

 private:
  Manager(EtcdClient* etcd, std::string node_id, std::function<int64_t()> lease, ManagerOptions options);
  void Loop();
  // One round as the office holder. Error only for etcd failures.
  Status Round();
  // The eviction part of a round: reads the records and the reports, deletes the records acted on,
  // revokes the leases of evicted nodes that did not act, and evicts at most one node. Adds to `live` the
  // targets of revoked nodes still held, and fills `excluded` with the quarantined nodes. True
  // when it wrote an eviction (the round stops there: the table changes once the node acted).
  Result<bool> Evictions(std::vector<TargetInfo>& live, const std::map<std::string, RegisteredNode>& registered,
                         std::set<std::string>& excluded);

  EtcdClient* const etcd_;
  const std::string node_id_;
  const std::function<int64_t()> lease_;
  const ManagerOptions options_;
  ManagerElection election_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  bool woken_ = false;     // GUARDED_BY(mu_): something under the prefix changed since the round
  // Wakes the loop when a registration, report, eviction, sync report or the office changes.
  EtcdWaker waker_;
  std::atomic<bool> is_manager_{false};
  std::atomic<uint64_t> table_writes_{0};
  std::atomic<uint64_t> evictions_{0};
  // Loop only. An eviction record (by node and creation) first seen still pending, and when.
  std::map<std::pair<std::string, int64_t>, std::chrono::steady_clock::time_point> pending_since_;
  // Loop only. Nodes whose lease this manager revoked: their targets under that lease stay live
  // for the table until the deadline or until the node registered again.
  struct Hold {
    int64_t lease = 0;
    std::vector<TargetInfo> targets;
    std::chrono::steady_clock::time_point until;
  };
  std::map<std::string, Hold> holds_;
  // Loop only. The peer reports as last read (key -> value), and since when they are unchanged.
  std::map<std::string, std::string> reports_seen_;
  std::chrono::steady_clock::time_point reports_stable_since_{};
  std::thread thread_;
};

}  // namespace cairn::cluster
