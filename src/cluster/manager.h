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
// Not yet: peer reports, NeedsResync reports, operator changes to the replication factor.
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
#include <string>
#include <thread>

#include "cluster/etcd.h"
#include "cluster/manager_election.h"
#include "cluster/placement.h"
#include "common/result.h"

namespace cairn::cluster {

struct ManagerOptions {
  std::string prefix = "/cairn/default/";
  uint32_t chain_count = 64;  // at most 120: one transaction writes every changed chain
  uint32_t replicas = 3;
  std::chrono::milliseconds interval{500};
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

 private:
  Manager(EtcdClient* etcd, std::string node_id, std::function<int64_t()> lease, ManagerOptions options);
  void Loop();
  // One round as the office holder. Error only for etcd failures.
  Status Round();

  EtcdClient* const etcd_;
  const std::string node_id_;
  const std::function<int64_t()> lease_;
  const ManagerOptions options_;
  ManagerElection election_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::atomic<bool> is_manager_{false};
  std::atomic<uint64_t> table_writes_{0};
  std::thread thread_;
};

}  // namespace cairn::cluster
