// The manager's office (docs/design/cluster.md, "The manager"): one node at a time, elected
// through etcd, and every change it makes fenced by its term.
//
// Campaign: a transaction "if `<prefix>manager` does not exist, put it = my node id, bound to my
// lease". The **term** is that key's create_revision: etcd hands each revision out once, so no
// two managers ever share a term, and the key (with the term) vanishes with the lease.
//
// FencedTxn: every write of the manager is one transaction that also requires
// `create_revision(manager) == term`, plus the caller's own comparisons (typically "the keys I
// change still have the mod_revision I read"). A manager that lost its lease (paused past its
// TTL, cut off from etcd) keeps its old term; its writes then fail the fence instead of
// overwriting a newer manager's decisions. An etcd lock alone would not give this: the lock
// holder cannot know it lost the lock between checking and writing.
//
// Thread-safety: not thread-safe; the manager's loop owns it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/etcd.h"
#include "common/result.h"

namespace cairn::cluster {

class ManagerElection {
 public:
  ManagerElection(EtcdClient* etcd, std::string prefix, std::string node_id);

  // One attempt to take the office with `lease` (the node's lease). True when this node is the
  // manager now (also when it already was, with the same lease).
  Result<bool> Campaign(int64_t lease);
  // The node id of the current manager, or "" when the office is empty.
  Result<std::string> CurrentManager();

  bool is_manager() const { return term_ != 0; }
  // The create_revision of the manager key this node holds the office under; 0 when it does not.
  int64_t term() const { return term_; }

  enum class Outcome {
    kApplied,      // the ops were applied
    kStale,        // the caller's comparisons failed: re-read and decide again
    kLostOffice,   // this node is no longer the manager (is_manager() is false from now on)
  };
  // Applies `ops` atomically if this node still holds the office under its term and `compares`
  // hold. REQUIRES: is_manager().
  Result<Outcome> FencedTxn(const std::vector<EtcdCompare>& compares, const std::vector<EtcdOp>& ops);

  std::string key() const { return prefix_ + "manager"; }

 private:
  EtcdClient* const etcd_;
  const std::string prefix_;
  const std::string node_id_;
  int64_t term_ = 0;
};

}  // namespace cairn::cluster
