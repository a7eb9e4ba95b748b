#include "cluster/membership.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "common/logging.h"

namespace cairn::cluster {

std::string Membership::NodeKey(const MembershipOptions& options, std::string_view node_id) {
  return options.prefix + "nodes/" + std::string(node_id);
}

Membership::Membership(EtcdClient* etcd, NodeInfo node, MembershipOptions options)
    : etcd_(etcd), node_(std::move(node)), options_(std::move(options)), guard_(options_.margin) {}

std::string EncodeNodeRecord(const NodeInfo& node, int64_t lease) {
  nlohmann::json j{{"id", node.id},     {"rpc", node.rpc_address}, {"s3", node.s3_address},
                   {"zone", node.zone}, {"targets", node.targets}, {"lease", lease}};
  if (node.quarantined_until_ms != 0) j["quarantined_until_ms"] = node.quarantined_until_ms;
  return j.dump();
}

std::optional<RegisteredNode> DecodeNodeRecord(const EtcdKv& kv) {
  const auto j = nlohmann::json::parse(kv.value, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_string()) return std::nullopt;
  const auto text = [&](const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
  };
  RegisteredNode n;
  n.info.id = j["id"].get<std::string>();
  n.info.rpc_address = text("rpc");
  n.info.s3_address = text("s3");
  n.info.zone = text("zone");
  if (j.contains("targets") && j["targets"].is_array()) {
    for (const auto& t : j["targets"]) {
      if (t.is_string()) n.info.targets.push_back(t.get<std::string>());
    }
  }
  if (j.contains("quarantined_until_ms") && j["quarantined_until_ms"].is_number_unsigned()) {
    n.info.quarantined_until_ms = j["quarantined_until_ms"].get<uint64_t>();
  }
  n.lease = kv.lease;
  return n;
}

Result<std::unique_ptr<Membership>> Membership::Join(EtcdClient* etcd, NodeInfo node, MembershipOptions options) {
  if (node.id.empty()) return Status::InvalidArgument("a node needs an id");
  if (options.margin >= options.ttl) return Status::InvalidArgument("the fencing margin must be below the lease TTL");
  std::unique_ptr<Membership> m(new Membership(etcd, std::move(node), std::move(options)));
  CAIRN_RETURN_IF_ERROR(m->Register());
  m->thread_ = std::thread([p = m.get()] { p->RenewLoop(); });
  return m;
}

Membership::~Membership() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (Status s = etcd_->LeaseRevoke(lease_id()); !s.ok() && !s.IsNotFound()) {
    CAIRN_LOG_WARN("node {}: revoking lease on leave: {}", node_.id, s.ToString());
  }
}

Status Membership::Register() {
  uint64_t token;
  {
    std::lock_guard<std::mutex> l(mu_);
    token = guard_.Sending(LeaseGuard::Clock::now());
  }
  NodeInfo node = node_;
  {
    std::lock_guard<std::mutex> l(mu_);
    node.quarantined_until_ms = quarantined_until_ms_;
  }
  CAIRN_ASSIGN_OR_RETURN(EtcdLease lease, etcd_->LeaseGrant(options_.ttl.count()));
  const std::string key = NodeKey(options_, node_.id);
  // Only one live node may hold an id: the key must be absent or left by an expired lease.
  auto txn = etcd_->Txn({EtcdCompare::CreateRevision(key, EtcdCompare::Op::kEqual, 0)},
                        {EtcdOp::Put(key, EncodeNodeRecord(node, lease.id), lease.id)}, {});
  if (!txn.ok() || !txn->succeeded) {
    (void)etcd_->LeaseRevoke(lease.id);
    if (!txn.ok()) return txn.status();
    return Status::AlreadyExists("node " + node_.id +
                                 " is registered under a live lease: another process, or this node's previous run "
                                 "(its lease expires within one TTL)");
  }
  std::lock_guard<std::mutex> l(mu_);
  lease_id_ = lease.id;
  guard_.Succeeded(token, std::chrono::seconds(lease.ttl_seconds));
  return Status::OK();
}

void Membership::RenewLoop() {
  const auto period = std::chrono::duration_cast<std::chrono::milliseconds>(options_.ttl) / 3;
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait_for(l, period, [&] { return stopping_ || relinquish_ != 0; });
    if (stopping_) break;
    const int64_t id = lease_id_;
    if (relinquish_ != 0) {
      // Evicted (Relinquish fenced the node already): the lease goes, with the registration and
      // every report bound to it, and the node comes back under a new one.
      const int64_t dropped = std::exchange(relinquish_, 0);
      if (dropped != id) continue;
      l.unlock();
      CAIRN_LOG_WARN("node {}: evicted by the manager under lease {}; registering again", node_.id, id);
      if (Status s = etcd_->LeaseRevoke(id); !s.ok() && !s.IsNotFound()) {
        CAIRN_LOG_WARN("node {}: revoking lease {}: {}", node_.id, id, s.ToString());
      }
      Status rejoin = Register();
      if (rejoin.ok()) {
        rejoins_.fetch_add(1);
      } else {
        CAIRN_LOG_WARN("node {}: registering again failed: {}", node_.id, rejoin.ToString());
      }
      l.lock();
      continue;
    }
    const uint64_t token = guard_.Sending(LeaseGuard::Clock::now());
    l.unlock();
    auto ttl = etcd_->LeaseKeepAlive(id);
    Status rejoin = Status::OK();
    if (!ttl.ok() && ttl.status().IsNotFound()) {
      // The lease expired (etcd was out of reach longer than the TTL): the registration went with
      // it; the node joins again with a new lease (and owes a re-read of the chain table).
      CAIRN_LOG_WARN("node {}: lease {} expired or was revoked; registering again", node_.id, id);
      {
        std::lock_guard<std::mutex> lost(mu_);
        guard_.Lost();
      }
      rejoin = Register();
      if (rejoin.ok()) rejoins_.fetch_add(1);
    }
    l.lock();
    if (ttl.ok()) {
      guard_.Succeeded(token, std::chrono::seconds(*ttl));
      renewals_.fetch_add(1);
    } else if (!ttl.status().IsNotFound()) {
      CAIRN_LOG_WARN("node {}: lease renewal failed: {}", node_.id, ttl.status().ToString());
    } else if (!rejoin.ok()) {
      CAIRN_LOG_WARN("node {}: registering again failed: {}", node_.id, rejoin.ToString());
    }
  }
}

bool Membership::MayAcknowledge() const {
  std::lock_guard<std::mutex> l(mu_);
  return guard_.MayAcknowledge(LeaseGuard::Clock::now());
}

void Membership::Relinquish(int64_t lease, uint64_t quarantined_until_ms) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (lease != lease_id_ || stopping_) return;
    guard_.Lost();
    relinquish_ = lease;
    quarantined_until_ms_ = quarantined_until_ms;
  }
  cv_.notify_all();
}

void Membership::TableRefreshed() {
  std::lock_guard<std::mutex> l(mu_);
  guard_.TableRefreshed();
}

int64_t Membership::lease_id() const {
  std::lock_guard<std::mutex> l(mu_);
  return lease_id_;
}

}  // namespace cairn::cluster
