#include "cluster/replica_service.h"

#include "cluster/peer_reports.h"
#include "common/crypto.h"
#include "common/logging.h"
#include "common/metrics.h"

namespace cairn::cluster {

using replication::ChainHost;
using replication::ChainView;
using replication::ManagerReport;

uint32_t NodeNumber(std::string_view node_id) {
  const crypto::Sha256Digest d = crypto::Sha256(node_id);
  const uint32_t n = (uint32_t{d[0]} << 24) | (uint32_t{d[1]} << 16) | (uint32_t{d[2]} << 8) | uint32_t{d[3]};
  return n == 0 ? 1 : n;
}

namespace {

// Whether `view` names `node` as a member, under any incarnation.
bool Names(const ChainView& view, replication::NodeId node) {
  return std::any_of(view.members.begin(), view.members.end(),
                     [node](const replication::Member& m) { return m.id.node == node; });
}

std::string_view PhaseName(replication::ChainReplica::Phase phase) {
  switch (phase) {
    case replication::ChainReplica::Phase::kDown:
      return "down";
    case replication::ChainReplica::Phase::kIdle:
      return "idle";
    case replication::ChainReplica::Phase::kSyncing:
      return "syncing";
    case replication::ChainReplica::Phase::kReady:
      return "ready";
  }
  return "?";
}

}  // namespace

Result<ReplicationTable> ReadReplicationTable(EtcdClient* etcd, const std::string& prefix) {
  ReplicationTable out;
  CAIRN_ASSIGN_OR_RETURN(EtcdRange nodes, etcd->GetPrefix(prefix + "nodes/"));
  for (const EtcdKv& kv : nodes.kvs) {
    const std::optional<RegisteredNode> n = DecodeNodeRecord(kv);
    if (!n || n->info.rpc_address.empty()) continue;
    const std::string& id = n->info.id;
    const uint32_t number = NodeNumber(id);
    if (auto it = out.peers.find(number); it != out.peers.end() && it->second.name != id) {
      return Status::ConfigError("nodes " + id + " and " + it->second.name + " have the same node number; rename one");
    }
    out.peers[number] = {id, n->info.rpc_address};
  }
  CAIRN_ASSIGN_OR_RETURN(EtcdRange stored, etcd->GetPrefix(prefix + "chains/"));
  CAIRN_ASSIGN_OR_RETURN(std::vector<Chain> chains, DecodeChainTable(prefix, stored.kvs));
  for (const Chain& chain : chains) {
    ChainView view;
    view.chain_id = chain.id;
    view.version = chain.version;
    for (const ChainMember& m : chain.members) {
      const std::string node = m.target.substr(0, m.target.find('/'));
      view.members.push_back({{NodeNumber(node), m.incarnation}, m.state == ReplicaState::kServing});
    }
    out.views[view.chain_id] = std::move(view);
  }
  return out;
}

ReplicaService::ReplicaService(EtcdClient* etcd, ReplicaServiceOptions options)
    : etcd_(etcd), options_(std::move(options)), target_(options_.node_id + "/0") {}

Result<std::unique_ptr<ReplicaService>> ReplicaService::Start(EtcdClient* etcd, ReplicaServiceOptions options) {
  std::unique_ptr<ReplicaService> service(new ReplicaService(etcd, std::move(options)));
  ReplicaService* self = service.get();
  replication::ChainHostOptions host;
  host.node = NodeNumber(self->options_.node_id);
  host.name = self->options_.node_id;
  host.listen = self->options_.rpc_listen;
  host.secret = self->options_.secret;
  host.data_dir = self->options_.data_dir;
  host.tick = self->options_.tick;
  host.blobs = self->options_.blobs;
  host.machine_for = self->options_.machine_for;
  host.on_report = [self](const ManagerReport& report) {
    std::lock_guard lock(self->mu_);
    self->reports_.push_back(report);
    self->refresh_ = true;
    self->cv_.notify_all();
  };
  host.on_refresh = [self](uint32_t) { self->RequestRefresh(); };
  CAIRN_ASSIGN_OR_RETURN(self->host_, ChainHost::Start(std::move(host)));

  replication::ChainClientOptions client;
  client.name = self->options_.node_id + "/client";
  client.secret = self->options_.secret;
  client.view = [self](uint32_t chain) { return self->View(chain); };
  client.address = [self](uint32_t node) { return self->Address(node); };
  client.refresh = [self](uint32_t) { self->RequestRefresh(); };
  self->client_ = std::make_unique<replication::ChainClient>(std::move(client));
  return service;
}

ReplicaService::~ReplicaService() { Stop(); }

void ReplicaService::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  extras_stop_ = true;  // a pass in progress ends at its next page
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (extras_thread_.joinable()) extras_thread_.join();
  if (waker_ != nullptr) waker_->Stop();
  std::unique_lock state(state_mu_);
  client_.reset();
  host_.reset();  // its tick asks the membership: gone before the membership is
  membership_ = nullptr;
}

bool ReplicaService::disk_failed() {
  std::shared_lock state(state_mu_);
  return host_ != nullptr && host_->disk_failed();
}

void ReplicaService::Run(Membership* membership) {
  membership_ = membership;
  waker_ = std::make_unique<EtcdWaker>(etcd_, options_.prefix, [this](const EtcdWatchEvent& event) {
    const std::string_view key = std::string_view(event.kv.key).substr(options_.prefix.size());
    if (key.starts_with("chains/") || key.starts_with("nodes/") || key.starts_with("evict/")) RequestRefresh();
  });
  host_->SetMayAcknowledge([membership] { return membership->MayAcknowledge(); });
  thread_ = std::thread([this] { Loop(); });
  if (options_.extras_interval.count() > 0 && options_.chain_of_blob && options_.blobs != nullptr) {
    extras_thread_ = std::thread([this] { ExtrasLoop(); });
  }
}

void ReplicaService::ExtrasLoop() {
  metrics::Counter* dropped = metrics::Registry::Default().GetCounter(
      "cairn_local_extra_blobs_dropped_total",
      "Blobs of this node's store that no replica here named at two passes in a row, deleted");
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait_for(lock, options_.extras_interval, [this] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    auto pass = SweepExtras();
    if (!pass.ok()) {
      CAIRN_LOG_WARN("node {}: local extras: {}", options_.node_id, pass.status().ToString());
    } else if (pass->dropped > 0) {
      dropped->Increment(pass->dropped);
      CAIRN_LOG_INFO("node {}: deleted {} local blobs no replica here names ({} unnamed of {})", options_.node_id,
                     pass->dropped, pass->unnamed, pass->blobs);
    }
    lock.lock();
  }
}

Result<ReplicaService::ExtrasPass> ReplicaService::SweepExtras() {
  std::lock_guard pass_lock(extras_mu_);
  std::shared_lock state(state_mu_);
  if (host_ == nullptr || membership_ == nullptr || options_.blobs == nullptr || !options_.chain_of_blob) {
    return Status::Cancelled("the replicas are stopped");
  }
  if (!membership_->MayAcknowledge()) {
    extra_candidates_.clear();  // a gap: start over, two passes from now
    return Status::Busy("the node may not acknowledge now; no pass");
  }
  std::vector<std::pair<replication::ChainId, std::string>> stored;
  options_.blobs->ForEach([&](const std::string& id) { stored.emplace_back(options_.chain_of_blob(id), id); });
  // The chains whose table names this node under no incarnation (or that the table does not
  // have): it holds nothing they need.
  std::set<replication::ChainId> left;
  {
    const uint32_t self = NodeNumber(options_.node_id);
    std::lock_guard lock(mu_);
    if (views_.empty()) return Status::Busy("no chain table yet; no pass");
    for (const auto& [chain, id] : stored) {
      auto view = views_.find(chain);
      if (view == views_.end() || !Names(view->second, self)) left.insert(chain);
    }
  }
  ExtrasPass pass;
  pass.blobs = stored.size();
  auto unnamed = host_->UnnamedBlobs(stored, left, /*drop=*/false, &extras_stop_);
  if (!unnamed) return Status::Timeout("the replicas did not answer");
  pass.unnamed = unnamed->size();
  std::vector<std::pair<replication::ChainId, std::string>> again;
  std::set<std::string> now;
  for (auto& blob : *unnamed) {
    if (extra_candidates_.count(blob.second) != 0) {
      again.push_back(blob);
    } else {
      now.insert(blob.second);
    }
  }
  if (!again.empty()) {
    if (extras_stop_) return Status::Cancelled("stopping");
    // Fenced meanwhile: its view of the table may be old; start over.
    if (!membership_->MayAcknowledge()) {
      extra_candidates_.clear();
      return Status::Busy("the node may not acknowledge now; nothing deleted");
    }
    // Checked once more on the replicas' thread, and deleted from there.
    auto dropped = host_->UnnamedBlobs(again, left, /*drop=*/true, &extras_stop_);
    if (!dropped) return Status::Timeout("the replicas did not answer");
    pass.dropped = dropped->size();
  }
  extra_candidates_ = std::move(now);
  return pass;
}

void ReplicaService::RequestRefresh() {
  {
    std::lock_guard lock(mu_);
    refresh_ = true;
  }
  cv_.notify_all();
}

std::optional<ChainView> ReplicaService::View(uint32_t chain) {
  std::lock_guard lock(mu_);
  auto it = views_.find(chain);
  if (it == views_.end()) return std::nullopt;
  return it->second;
}

bool ReplicaService::ServesLocally(uint32_t chain) {
  std::shared_lock state(state_mu_);
  if (membership_ == nullptr) return false;
  const uint32_t self = NodeNumber(options_.node_id);
  const uint64_t incarnation = static_cast<uint64_t>(membership_->lease_id());
  std::lock_guard lock(mu_);
  auto it = views_.find(chain);
  if (it == views_.end()) return false;
  return std::any_of(it->second.members.begin(), it->second.members.end(), [&](const replication::Member& m) {
    return m.id.node == self && m.id.incarnation == incarnation && m.serving;
  });
}

std::optional<replication::PeerAddress> ReplicaService::Address(uint32_t node) {
  std::lock_guard lock(mu_);
  auto it = addresses_.find(node);
  if (it == addresses_.end()) return std::nullopt;
  return it->second;
}

std::vector<ReplicaStatus> ReplicaService::Replicas(bool digests) {
  std::shared_lock state(state_mu_);
  if (host_ == nullptr || membership_ == nullptr) return {};
  const uint32_t self = NodeNumber(options_.node_id);
  const uint64_t incarnation = static_cast<uint64_t>(membership_->lease_id());
  std::map<uint32_t, ChainView> views;
  {
    std::lock_guard lock(mu_);
    views = views_;
  }
  // Filled on the replicas' thread: the states are hashed where they are, not copied.
  auto out = std::make_shared<std::vector<ReplicaStatus>>();
  const bool done =
      host_->VisitAll([out, views, self, incarnation, digests](uint32_t chain, const replication::ChainReplica& r) {
        auto view = views.find(chain);
        if (view == views.end() ||
            std::none_of(view->second.members.begin(), view->second.members.end(), [&](const replication::Member& m) {
              return m.id.node == self && m.id.incarnation == incarnation;
            })) {
          return;  // a replica this node no longer holds for the table
        }
        ReplicaStatus s{chain,
                        r.view_version(),
                        std::string(PhaseName(r.phase())),
                        r.fenced(),
                        r.last_applied(),
                        r.exposed_level(),
                        r.applied().records.size(),
                        ""};
        if (digests) {
          crypto::Sha256Hasher hasher;
          for (const auto& [key, record] : r.applied().records) {
            const std::string head = std::to_string(key.size()) + ":" + key + ":" + std::to_string(record.seq) + ":" +
                                     (record.value ? std::to_string(record.value->size()) : std::string("-")) + ":";
            hasher.Update(crypto::AsBytes(head));
            if (record.value) hasher.Update(crypto::AsBytes(*record.value));
          }
          for (const auto& [op, result] : r.applied().ops) {
            hasher.Update(crypto::AsBytes("op:" + std::to_string(op) + ":" + std::to_string(result.seq) + ":" +
                                          std::to_string(result.stamp_ms) + ":" +
                                          std::to_string(result.result.size()) + ":"));
            hasher.Update(crypto::AsBytes(result.result));
          }
          hasher.Update(crypto::AsBytes("last:" + std::to_string(r.applied().last_seq) + ":" +
                                        std::to_string(r.applied().stamp_ms)));
          s.digest = crypto::HexEncode(hasher.Finish());
        }
        out->push_back(std::move(s));
      });
  if (!done) return {};
  for (ReplicaStatus& s : *out) {
    auto view = views.find(s.chain);
    const bool serving = view != views.end() && std::any_of(view->second.members.begin(), view->second.members.end(),
                                                            [&](const replication::Member& m) {
                                                              return m.id.node == self && m.serving;
                                                            });
    if (!serving) s.copy = host_->CopyProgress(s.chain);
  }
  return std::move(*out);
}

void ReplicaService::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    refresh_ = false;
    lock.unlock();
    const Status s = Round();
    if (!s.ok()) CAIRN_LOG_WARN("node {}: replicas: {}", options_.node_id, s.ToString());
    rounds_.fetch_add(1);
    if (s.ok()) waker_->Ensure();  // opening a watch waits on etcd: not while it fails
    lock.lock();
    cv_.wait_for(lock, options_.poll, [&] { return stopping_ || refresh_; });
  }
}

Status ReplicaService::Round() {
  const uint64_t incarnation = static_cast<uint64_t>(membership_->lease_id());
  const bool may_ack = membership_->MayAcknowledge();
  // Fenced before anything that may wait on etcd; unfenced only by a round that read the table.
  // (The host also checks the membership on every tick: this is the refresh, not the deadline.)
  if (!may_ack) host_->SetFenced(true);

  // Reports first: a completed sync waits for nothing else.
  std::vector<ManagerReport> reports;
  {
    std::lock_guard lock(mu_);
    reports.swap(reports_);
  }
  ManagerOptions names;
  names.prefix = options_.prefix;
  for (const ManagerReport& r : reports) {
    if (r.kind != ManagerReport::Kind::kSyncDone || r.member.incarnation != incarnation) continue;
    if (reported_[r.chain_id] == r.chain_version) continue;  // the replica repeats itself until promoted
    SyncReport report{r.chain_id, target_, r.member.incarnation, r.chain_version};
    auto put = etcd_->Put(SyncKey(names, r.chain_id, target_), EncodeSyncReport(report), membership_->lease_id());
    if (!put.ok()) {
      std::lock_guard lock(mu_);
      reports_.push_back(r);  // try again next round
      return put.status();
    }
    reported_[r.chain_id] = r.chain_version;
    CAIRN_LOG_INFO("node {}: chain {}: copy complete under version {}", options_.node_id, r.chain_id, r.chain_version);
  }

  // An eviction of this registration: the node stops now and comes back under a new lease.
  CAIRN_ASSIGN_OR_RETURN(EtcdRange evict, etcd_->Get(EvictionKey(options_.prefix, options_.node_id)));
  if (!evict.kvs.empty()) {
    auto eviction = DecodeEviction(options_.prefix, evict.kvs.front());
    if (eviction.ok() && eviction->lease == membership_->lease_id()) {
      // Fenced on the replicas' thread before the lease goes (a visit runs after the fence):
      // once the manager sees the registration gone, nothing here serves the old chains.
      host_->SetFenced(true);
      if (!host_->VisitAll([](uint32_t, const replication::ChainReplica&) {})) {
        return Status::Timeout("evicted, but the replicas did not fence in time; trying again");
      }
      membership_->Relinquish(eviction->lease, eviction->until_ms);
      return Status::OK();
    }
  }

  CAIRN_ASSIGN_OR_RETURN(ReplicationTable table, ReadReplicationTable(etcd_, options_.prefix));
  const std::map<uint32_t, replication::PeerAddress>& peers = table.peers;
  const std::map<uint32_t, ChainView>& views = table.views;
  host_->SetPeers(peers);
  {
    std::lock_guard lock(mu_);
    views_ = views;
    addresses_.clear();
    addresses_ = peers;
  }

  const uint32_t self = NodeNumber(options_.node_id);
  // A chain forgotten since the last round is no longer held: if the table names this node in it
  // again, the loop below adds it afresh and hands it the view.
  for (auto it = removing_.begin(); it != removing_.end();) {
    if (it->second.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      ++it;
      continue;
    }
    if (it->second.get()) {
      held_.erase(it->first);
      delivered_.erase(it->first);
      reported_.erase(it->first);
      absent_since_.erase(it->first);
      forgotten_.insert(it->first);
      chains_forgotten_.fetch_add(1);
    }
    it = removing_.erase(it);
  }
  for (const auto& [chain, view] : views) {
    const replication::Member* me = nullptr;
    for (const auto& m : view.members) {
      if (m.id.node == self && m.id.incarnation == incarnation) me = &m;
    }
    auto held = held_.find(chain);
    if (held == held_.end()) {
      if (me == nullptr) continue;  // not ours
      ChainHost::StartMode mode = ChainHost::StartMode::kRestarted;
      if (me->serving) mode = view.version == 1 ? ChainHost::StartMode::kFounding : ChainHost::StartMode::kRecovered;
      host_->AddChain(chain, incarnation, mode);
      held_[chain] = incarnation;
    } else if (held->second != incarnation) {
      host_->Rejoin(chain, incarnation);
      held->second = incarnation;
    } else if (me != nullptr && me->serving) {
      // Taken back as the chain's serving member after this node registered again (placement.h):
      // the replica restarts from its disk, complete. A ready replica ignores this.
      host_->Recover(chain, incarnation);
    }
    if (delivered_[chain] != view.version) {
      host_->SetView(view);
      delivered_[chain] = view.version;
    }
  }

  // Chains this node left long ago: forgotten, replica and stored state (one at a time). Only a
  // chain that is whole without this node: every member serving, on a registered node. A chain
  // whose other copies are away keeps this one, complete or not, on this disk.
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [chain, view] : views) {
    const bool named = Names(view, self);
    const bool whole = !view.members.empty() &&
                       std::all_of(view.members.begin(), view.members.end(), [&](const replication::Member& m) {
                         return m.serving && peers.count(m.id.node) != 0;
                       });
    if (named || !whole) {
      absent_since_.erase(chain);
      if (named) forgotten_.erase(chain);
      continue;
    }
    if (!may_ack || forgotten_.count(chain) != 0 || !removing_.empty()) continue;
    const auto since = absent_since_.try_emplace(chain, now).first->second;
    if (now - since >= options_.forget_after) removing_.emplace(chain, host_->RemoveChain(chain));
  }

  // Fenced unless the lease allows acknowledging; the table was just read, which is what the
  // membership needs to see before it lets the node acknowledge again after a gap.
  host_->SetFenced(!may_ack);
  membership_->TableRefreshed();
  if (may_ack) return ReportStalls(peers, membership_->lease_id());
  return Status::OK();
}

Status ReplicaService::ReportStalls(const std::map<uint32_t, replication::PeerAddress>& peers, int64_t lease) {
  if (lease != peer_reports_lease_) {
    peer_reports_.clear();  // bound to the old lease: gone with it
    peer_reports_lease_ = lease;
  }
  const uint64_t ticks = std::max<uint64_t>(
      1, static_cast<uint64_t>(options_.peer_timeout.count() / std::max<int64_t>(1, options_.tick.count())));
  auto stalled = std::make_shared<std::map<replication::NodeId, uint64_t>>();  // node -> incarnation
  const bool visited = host_->VisitAll([stalled, ticks](uint32_t, const replication::ChainReplica& r) {
    if (auto stall = r.StalledSuccessor(); stall && stall->ticks >= ticks) {
      (*stalled)[stall->successor.node] = stall->successor.incarnation;
    }
  });
  if (!visited) return Status::OK();
  std::map<std::string, uint64_t> now;
  for (const auto& [node, incarnation] : *stalled) {
    auto peer = peers.find(node);
    if (peer != peers.end()) now[peer->second.name + "/0"] = incarnation;
  }
  for (const auto& [target, incarnation] : now) {
    auto it = peer_reports_.find(target);
    if (it != peer_reports_.end() && it->second == incarnation) continue;
    CAIRN_RETURN_IF_ERROR(etcd_->Put(PeerReportKey(options_.prefix, options_.node_id, target),
                                     EncodePeerReport({options_.node_id, target, incarnation}), lease)
                              .status());
    peer_reports_[target] = incarnation;
    CAIRN_LOG_WARN("node {}: reported {} to the manager: it took no update for {} ms", options_.node_id, target,
                   options_.peer_timeout.count());
  }
  for (auto it = peer_reports_.begin(); it != peer_reports_.end();) {
    if (now.count(it->first) != 0) {
      ++it;
      continue;
    }
    CAIRN_RETURN_IF_ERROR(etcd_->Delete(PeerReportKey(options_.prefix, options_.node_id, it->first)).status());
    CAIRN_LOG_INFO("node {}: withdrew its report of {}", options_.node_id, it->first);
    it = peer_reports_.erase(it);
  }
  return Status::OK();
}

}  // namespace cairn::cluster
