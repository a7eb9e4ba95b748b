#include "cluster/manager_election.h"

namespace cairn::cluster {

ManagerElection::ManagerElection(EtcdClient* etcd, std::string prefix, std::string node_id)
    : etcd_(etcd), prefix_(std::move(prefix)), node_id_(std::move(node_id)) {}

Result<bool> ManagerElection::Campaign(int64_t lease) {
  const std::string k = key();
  CAIRN_ASSIGN_OR_RETURN(EtcdTxnResult r,
                         etcd_->Txn({EtcdCompare::CreateRevision(k, EtcdCompare::Op::kEqual, 0)},
                                    {EtcdOp::Put(k, node_id_, lease), EtcdOp::Get(k)}, {EtcdOp::Get(k)}));
  term_ = 0;
  if (r.ranges.empty() || r.ranges.back().kvs.empty()) return false;  // vacated meanwhile: try again later
  const EtcdKv& holder = r.ranges.back().kvs.front();
  // Won now, or held already by this node under the same lease (a campaign repeated after a
  // restart of the loop): either way the term is the key's creation.
  if (holder.value == node_id_ && holder.lease == lease) term_ = holder.create_revision;
  return term_ != 0;
}

Result<std::string> ManagerElection::CurrentManager() {
  CAIRN_ASSIGN_OR_RETURN(EtcdRange r, etcd_->Get(key()));
  return r.kvs.empty() ? std::string() : r.kvs.front().value;
}

Result<ManagerElection::Outcome> ManagerElection::FencedTxn(const std::vector<EtcdCompare>& compares,
                                                            const std::vector<EtcdOp>& ops) {
  if (term_ == 0) return Outcome::kLostOffice;
  std::vector<EtcdCompare> all;
  all.push_back(EtcdCompare::CreateRevision(key(), EtcdCompare::Op::kEqual, term_));
  all.insert(all.end(), compares.begin(), compares.end());
  CAIRN_ASSIGN_OR_RETURN(EtcdTxnResult r, etcd_->Txn(all, ops, {EtcdOp::Get(key())}));
  if (r.succeeded) return Outcome::kApplied;
  // Which comparison failed? The office is checked from the same snapshot the transaction saw.
  const bool office_held = !r.ranges.empty() && !r.ranges.back().kvs.empty() &&
                           r.ranges.back().kvs.front().create_revision == term_;
  if (!office_held) {
    term_ = 0;
    return Outcome::kLostOffice;
  }
  return Outcome::kStale;
}

}  // namespace cairn::cluster
