// A node's membership in the cluster: its lease in etcd, kept alive, and its registration
// `<prefix>nodes/<id>` bound to that lease (docs/design/cluster.md, "What lives in etcd" and
// "Leases, failure detection and self-fencing").
//
// A background thread renews the lease every TTL/3 through the etcd client. Every attempt is
// reported to a LeaseGuard, which decides whether the node may acknowledge writes: it stops doing
// so before etcd could expire the lease (a node cut off from etcd fences itself), and after a gap
// it resumes only once the caller re-read the chain table (TableRefreshed). When the lease did
// expire (etcd answers NotFound), a new one is granted and the node registers again.
//
// Thread-safety: all public methods are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd.h"
#include "cluster/lease_guard.h"
#include "common/result.h"

namespace cairn::cluster {

struct NodeInfo {
  std::string id;  // unique in the cluster; [A-Za-z0-9._-]
  std::string rpc_address;
  std::string s3_address;
  std::string zone;
  std::vector<std::string> targets;  // "<id>/<disk index>"
  // A node evicted on its peers' reports registers again with the end of its quarantine (ms since
  // the Unix epoch): until then the manager gives it no new chain. 0: none.
  uint64_t quarantined_until_ms = 0;
};

// A registration as read from etcd; its lease is the node's incarnation.
struct RegisteredNode {
  NodeInfo info;
  int64_t lease = 0;
};

// The registration's JSON: {"id", "rpc", "s3", "zone", "targets", "lease"}, and
// "quarantined_until_ms" when set.
std::string EncodeNodeRecord(const NodeInfo& node, int64_t lease);
// Decodes a registration (its lease is the one etcd binds the key to); nullopt for a record this
// version cannot read.
std::optional<RegisteredNode> DecodeNodeRecord(const EtcdKv& kv);

struct MembershipOptions {
  std::string prefix = "/cairn/default/";  // the cluster's etcd prefix, ending in '/'
  std::chrono::seconds ttl{3};
  // Acknowledging stops this long before the earliest moment etcd could expire the lease.
  std::chrono::milliseconds margin{1000};
};

class Membership {
 public:
  // Grants the lease, registers the node (AlreadyExists when another live node has the id) and
  // starts the renewal thread. `etcd` must outlive the returned object.
  static Result<std::unique_ptr<Membership>> Join(EtcdClient* etcd, NodeInfo node, MembershipOptions options);
  // Stops renewing and revokes the lease, so the node leaves at once rather than after a TTL.
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  bool MayAcknowledge() const;
  // The chain table was read after the latest lease renewal (required to leave a fence).
  void TableRefreshed();
  // The manager evicted this node's registration under `lease` (peer_reports.h): when that is
  // still the current lease, the node stops acknowledging at once, and the renewal thread revokes
  // the lease and registers again under a new one, quarantined until `quarantined_until_ms`. A
  // stale lease is ignored.
  void Relinquish(int64_t lease, uint64_t quarantined_until_ms);
  int64_t lease_id() const;
  // Renewals and re-registrations so far, for /metrics and tests.
  uint64_t renewals() const { return renewals_.load(); }
  uint64_t rejoins() const { return rejoins_.load(); }

  // The registration key of a node.
  static std::string NodeKey(const MembershipOptions& options, std::string_view node_id);

 private:
  Membership(EtcdClient* etcd, NodeInfo node, MembershipOptions options);
  // Grants a lease and writes the registration bound to it.
  Status Register();
  void RenewLoop();

  EtcdClient* const etcd_;
  const NodeInfo node_;
  const MembershipOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  int64_t relinquish_ = 0;  // GUARDED_BY(mu_): a lease to drop, 0 for none
  uint64_t quarantined_until_ms_ = 0;  // GUARDED_BY(mu_): registered with every later registration
  LeaseGuard guard_;       // GUARDED_BY(mu_)
  int64_t lease_id_ = 0;   // GUARDED_BY(mu_)
  std::atomic<uint64_t> renewals_{0};
  std::atomic<uint64_t> rejoins_{0};
  std::thread thread_;
};

}  // namespace cairn::cluster
