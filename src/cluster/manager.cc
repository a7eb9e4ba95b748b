#include "cluster/manager.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "cluster/membership.h"
#include "cluster/peer_reports.h"
#include "common/logging.h"
#include "io/clock.h"

namespace cairn::cluster {

std::string ChainKey(const ManagerOptions& options, uint32_t id) {
  return options.prefix + "chains/" + std::to_string(id);
}

Result<std::vector<Chain>> DecodeChainTable(std::string_view prefix, const std::vector<EtcdKv>& kvs,
                                            uint32_t chain_count, std::map<uint32_t, int64_t>* mod_revisions) {
  const std::string chains_prefix = std::string(prefix) + "chains/";
  std::vector<Chain> out;
  for (const EtcdKv& kv : kvs) {
    if (!kv.key.starts_with(chains_prefix)) continue;
    const std::string id_text = kv.key.substr(chains_prefix.size());
    char* end = nullptr;
    const unsigned long id = std::strtoul(id_text.c_str(), &end, 10);
    if (id_text.empty() || *end != '\0' || id >= chain_count) continue;
    CAIRN_ASSIGN_OR_RETURN(Chain c, DecodeChain(static_cast<uint32_t>(id), kv.value));
    if (mod_revisions != nullptr) (*mod_revisions)[c.id] = kv.mod_revision;
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(), [](const Chain& a, const Chain& b) { return a.id < b.id; });
  return out;
}

std::string EncodeChain(const Chain& chain) {
  nlohmann::json members = nlohmann::json::array();
  for (const ChainMember& m : chain.members) {
    members.push_back({{"target", m.target},
                       {"state", m.state == ReplicaState::kServing ? "serving" : "syncing"},
                       {"incarnation", m.incarnation}});
  }
  return nlohmann::json{{"version", chain.version}, {"members", members}}.dump();
}

Result<Chain> DecodeChain(uint32_t id, std::string_view json) {
  const auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("version") || !j["version"].is_number_unsigned() ||
      !j.contains("members") || !j["members"].is_array()) {
    return Status::Corruption("chain " + std::to_string(id) + ": malformed record");
  }
  Chain c;
  c.id = id;
  c.version = j["version"].get<uint64_t>();
  for (const auto& m : j["members"]) {
    if (!m.is_object() || !m.contains("target") || !m["target"].is_string() || !m.contains("state") ||
        !m["state"].is_string()) {
      return Status::Corruption("chain " + std::to_string(id) + ": malformed member");
    }
    const std::string state = m["state"].get<std::string>();
    if (state != "serving" && state != "syncing") return Status::Corruption("chain member state " + state);
    uint64_t incarnation = 0;
    if (m.contains("incarnation")) {
      if (!m["incarnation"].is_number_unsigned()) return Status::Corruption("chain member incarnation");
      incarnation = m["incarnation"].get<uint64_t>();
    }
    c.members.push_back({m["target"].get<std::string>(),
                         state == "serving" ? ReplicaState::kServing : ReplicaState::kSyncing, incarnation});
  }
  return c;
}

std::string SyncKey(const ManagerOptions& options, uint32_t chain, std::string_view target) {
  return options.prefix + "sync/" + std::to_string(chain) + "/" + std::string(target);
}

std::string EncodeSyncReport(const SyncReport& report) {
  return nlohmann::json{{"state", "done"}, {"incarnation", report.incarnation}, {"version", report.version}}.dump();
}

Result<SyncReport> DecodeSyncReport(const ManagerOptions& options, std::string_view key, std::string_view json) {
  const std::string prefix = options.prefix + "sync/";
  if (key.substr(0, prefix.size()) != prefix) return Status::Corruption("sync report key");
  const std::string_view rest = key.substr(prefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return Status::Corruption("sync report key");
  SyncReport report;
  const std::string chain_text(rest.substr(0, slash));
  char* end = nullptr;
  report.chain = static_cast<uint32_t>(std::strtoul(chain_text.c_str(), &end, 10));
  if (*end != '\0') return Status::Corruption("sync report chain");
  report.target = std::string(rest.substr(slash + 1));
  const auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("incarnation") || !j["incarnation"].is_number_unsigned() ||
      !j.contains("version") || !j["version"].is_number_unsigned()) {
    return Status::Corruption("sync report");
  }
  report.incarnation = j["incarnation"].get<uint64_t>();
  report.version = j["version"].get<uint64_t>();
  return report;
}

Manager::Manager(EtcdClient* etcd, std::string node_id, std::function<int64_t()> lease, ManagerOptions options)
    : etcd_(etcd),
      node_id_(std::move(node_id)),
      lease_(std::move(lease)),
      options_(std::move(options)),
      election_(etcd, options_.prefix, node_id_),
      waker_(etcd, options_.prefix, [this](const EtcdWatchEvent& event) {
        const std::string_view key = std::string_view(event.kv.key).substr(options_.prefix.size());
        if (key.starts_with("chains/") || key.starts_with("config")) return;  // its own writes
        if (!is_manager_.load() && key != "manager") return;  // only the office matters to others
        {
          std::lock_guard<std::mutex> l(mu_);
          woken_ = true;
        }
        cv_.notify_all();
      }) {}

Result<std::unique_ptr<Manager>> Manager::Start(EtcdClient* etcd, std::string node_id, std::function<int64_t()> lease,
                                                ManagerOptions options) {
  if (options.chain_count == 0 || options.chain_count > 120) {
    return Status::InvalidArgument("chain count must be in [1, 120]");
  }
  if (options.replicas == 0) return Status::InvalidArgument("replication factor must be at least 1");
  std::unique_ptr<Manager> m(new Manager(etcd, std::move(node_id), std::move(lease), std::move(options)));
  m->thread_ = std::thread([p = m.get()] { p->Loop(); });
  return m;
}

Manager::~Manager() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  waker_.Stop();
}

void Manager::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    l.unlock();
    bool etcd_answered = true;  // the watch is (re)opened only then: opening one waits on etcd
    if (!election_.is_manager()) {
      // A read while the office is held; a campaign (a write every node would repeat every
      // interval) only when it is empty.
      auto holder = election_.CurrentManager();
      if (!holder.ok()) {
        etcd_answered = false;
        CAIRN_LOG_WARN("manager: reading the office: {}", holder.status().ToString());
      } else if (holder->empty() || *holder == node_id_) {
        auto won = election_.Campaign(lease_());
        if (!won.ok()) {
          etcd_answered = false;
          CAIRN_LOG_WARN("manager: campaign: {}", won.status().ToString());
        } else if (*won) {
          CAIRN_LOG_INFO("manager: {} holds the office (term {})", node_id_, election_.term());
        }
      }
    }
    is_manager_.store(election_.is_manager());  // before the round: its writes show the office held
    if (election_.is_manager()) {
      if (Status s = Round(); !s.ok()) {
        etcd_answered = false;
        CAIRN_LOG_WARN("manager: {}", s.ToString());
      }
    }
    is_manager_.store(election_.is_manager());
    if (etcd_answered) waker_.Ensure();
    l.lock();
    // A change wakes the loop, but rounds stay at least 20 ms apart.
    cv_.wait_for(l, std::chrono::milliseconds(20), [&] { return stopping_; });
    cv_.wait_for(l, options_.interval, [&] { return stopping_ || woken_; });
    woken_ = false;
  }
}

Status Manager::Round() {
  // The live targets, from the node registrations.
  CAIRN_ASSIGN_OR_RETURN(EtcdRange nodes, etcd_->GetPrefix(options_.prefix + "nodes/"));
  std::vector<TargetInfo> live;
  std::map<std::string, RegisteredNode> registered;
  for (const EtcdKv& kv : nodes.kvs) {
    const std::optional<RegisteredNode> n = DecodeNodeRecord(kv);
    if (!n) continue;
    // The registration's lease is the node's incarnation.
    for (const std::string& t : n->info.targets) {
      live.push_back({t, n->info.id, n->info.zone, static_cast<uint64_t>(n->lease)});
    }
    registered[n->info.id] = *n;
  }
  std::set<std::string> excluded;
  CAIRN_ASSIGN_OR_RETURN(const bool evicted, Evictions(live, registered, excluded));
  if (evicted) return Status::OK();
  // Syncing members' reports that their copy is complete.
  CAIRN_ASSIGN_OR_RETURN(EtcdRange sync, etcd_->GetPrefix(options_.prefix + "sync/"));
  std::vector<SyncReport> synced;
  for (const EtcdKv& kv : sync.kvs) {
    auto report = DecodeSyncReport(options_, kv.key, kv.value);
    if (report.ok()) synced.push_back(std::move(*report));
  }
  // The table as it stands, with the revision of each record.
  CAIRN_ASSIGN_OR_RETURN(EtcdRange stored, etcd_->GetPrefix(options_.prefix + "chains/"));
  std::map<uint32_t, int64_t> mod_revision;
  CAIRN_ASSIGN_OR_RETURN(std::vector<Chain> current,
                         DecodeChainTable(options_.prefix, stored.kvs, options_.chain_count, &mod_revision));
  const RebuildResult r = Rebuild(current, live, options_.chain_count, options_.replicas, synced, excluded);
  if (r.changed.empty()) return Status::OK();
  std::vector<EtcdCompare> compares;
  std::vector<EtcdOp> ops;
  for (uint32_t id : r.changed) {
    const std::string key = ChainKey(options_, id);
    auto it = mod_revision.find(id);
    compares.push_back(it == mod_revision.end() ? EtcdCompare::CreateRevision(key, EtcdCompare::Op::kEqual, 0)
                                                : EtcdCompare::ModRevision(key, EtcdCompare::Op::kEqual, it->second));
    ops.push_back(EtcdOp::Put(key, EncodeChain(r.chains[id])));
  }
  CAIRN_ASSIGN_OR_RETURN(ManagerElection::Outcome out, election_.FencedTxn(compares, ops));
  switch (out) {
    case ManagerElection::Outcome::kApplied:
      table_writes_.fetch_add(1);
      CAIRN_LOG_INFO("manager: {} chains changed ({} live targets, {} short, {} lost)", r.changed.size(), live.size(),
                     r.short_chains.size(), r.lost.size());
      break;
    case ManagerElection::Outcome::kStale:
      break;  // someone changed the table: read again next round
    case ManagerElection::Outcome::kLostOffice:
      CAIRN_LOG_WARN("manager: {} lost the office", node_id_);
      break;
  }
  return Status::OK();
}

Result<bool> Manager::Evictions(std::vector<TargetInfo>& live, const std::map<std::string, RegisteredNode>& registered,
                                std::set<std::string>& excluded) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point now = Clock::now();
  const uint64_t now_ms = io::SystemClock::Default()->WallMicros() / 1000;
  // Evicted nodes registered again with the end of their quarantine: no new chain before it.
  for (const auto& [node, registration] : registered) {
    if (registration.info.quarantined_until_ms > now_ms) excluded.insert(node);
  }
  CAIRN_ASSIGN_OR_RETURN(EtcdRange records, etcd_->GetPrefix(options_.prefix + "evict/"));
  auto lease_of = [&](const std::string& node) -> int64_t {
    auto it = registered.find(node);
    return it == registered.end() ? 0 : it->second.lease;
  };

  // Revoked leases: held until the node registered again (it marked the lease lost first, and
  // its replicas fence before their next input) or the hold ran out (its keepalives failed since
  // the revoke, so it fenced itself). A held node gets no new chain.
  for (auto it = holds_.begin(); it != holds_.end();) {
    const int64_t lease = lease_of(it->first);
    if (now >= it->second.until || (lease != 0 && lease != it->second.lease)) {
      it = holds_.erase(it);
      continue;
    }
    if (lease == 0) live.insert(live.end(), it->second.targets.begin(), it->second.targets.end());
    excluded.insert(it->first);
    ++it;
  }

  bool under_way = !holds_.empty();
  std::map<std::pair<std::string, int64_t>, Clock::time_point> pending;
  for (const EtcdKv& kv : records.kvs) {
    auto eviction = DecodeEviction(options_.prefix, kv);
    if (!eviction.ok()) {
      CAIRN_LOG_WARN("manager: {}", eviction.status().ToString());
      continue;
    }
    if (lease_of(eviction->node) != eviction->lease) {
      // Acted on (the node registered again, quarantined), or the node is gone: done, unless the
      // revoked lease is still held.
      if (holds_.count(eviction->node) != 0) continue;
      const std::string key = EvictionKey(options_.prefix, eviction->node);
      CAIRN_ASSIGN_OR_RETURN(ManagerElection::Outcome out,
                             election_.FencedTxn({EtcdCompare::ModRevision(key, EtcdCompare::Op::kEqual,
                                                                           eviction->mod_revision)},
                                                 {EtcdOp::Delete(key)}));
      if (out != ManagerElection::Outcome::kApplied) return false;
      continue;
    }
    // Still registered under the evicted lease: the node has not read its eviction yet. It gets
    // no new chain meanwhile.
    under_way = true;
    excluded.insert(eviction->node);
    const auto key = std::make_pair(eviction->node, eviction->create_revision);
    auto seen = pending_since_.find(key);
    const Clock::time_point since = seen == pending_since_.end() ? now : seen->second;
    pending[key] = since;
    if (now - since < 2 * options_.lease_ttl || holds_.count(eviction->node) != 0) continue;
    // Wedged, but its lease lives on: revoke it, and keep its chains until the node has fenced
    // itself whatever it does: its keepalives fail from the revoke on, so it stops within the
    // TTL etcd granted it, which may exceed the one asked for (etcd raises TTLs below its
    // minimum): two TTLs and 2 s more, counted from after the revoke.
    Hold hold{eviction->lease, {}, {}};
    for (const TargetInfo& t : live) {
      if (t.node == eviction->node) hold.targets.push_back(t);
    }
    CAIRN_ASSIGN_OR_RETURN(std::string holder, election_.CurrentManager());
    if (holder != node_id_) return false;  // no longer the manager: not ours to revoke
    if (Status st = etcd_->LeaseRevoke(eviction->lease); !st.ok() && !st.IsNotFound()) return st;
    hold.until = Clock::now() + 2 * options_.lease_ttl + std::chrono::seconds(2);
    CAIRN_LOG_WARN("manager: {} did not act on its eviction within {} ms; revoked its lease {}", eviction->node,
                   (2 * options_.lease_ttl).count(), eviction->lease);
    holds_[eviction->node] = std::move(hold);
  }
  pending_since_ = std::move(pending);
  if (under_way) {
    // One eviction at a time; the reports settle again once it is over.
    reports_seen_.clear();
    reports_stable_since_ = now;
    return false;
  }

  CAIRN_ASSIGN_OR_RETURN(EtcdRange report_kvs, etcd_->GetPrefix(options_.prefix + "reports/"));
  std::vector<PeerReport> reports;
  std::map<std::string, std::string> seen;
  for (const EtcdKv& kv : report_kvs.kvs) {
    auto report = DecodePeerReport(options_.prefix, kv);
    if (!report.ok()) continue;
    reports.push_back(std::move(*report));
    seen[kv.key] = kv.value;
  }
  // The reports of one cut arrive over a few rounds (each side's replicas notice on their own
  // ticks), and the first alone may name the wrong end: decide once they stopped changing.
  if (seen != reports_seen_) {
    reports_seen_ = std::move(seen);
    reports_stable_since_ = now;
  }
  if (reports.empty() || now - reports_stable_since_ < options_.report_settle) return false;
  const std::optional<std::string> victim = ChooseEviction(reports, live);
  if (!victim) return false;
  const int64_t lease = lease_of(*victim);
  if (lease == 0) return false;
  // No record is left here: each was deleted above, or is under way (and this round returned).
  const std::string key = EvictionKey(options_.prefix, *victim);
  const EtcdCompare unchanged = EtcdCompare::CreateRevision(key, EtcdCompare::Op::kEqual, 0);
  const Eviction eviction{*victim, lease,
                          now_ms + static_cast<uint64_t>(options_.eviction_quarantine.count())};
  CAIRN_ASSIGN_OR_RETURN(ManagerElection::Outcome out,
                         election_.FencedTxn({unchanged}, {EtcdOp::Put(key, EncodeEviction(eviction))}));
  if (out != ManagerElection::Outcome::kApplied) return false;
  evictions_.fetch_add(1);
  std::string by;
  for (const PeerReport& r : reports) {
    if (r.target.substr(0, r.target.find('/')) == *victim) by += (by.empty() ? "" : ", ") + r.reporter;
  }
  CAIRN_LOG_WARN("manager: evicted {} (lease {}): its peers cannot reach it{}", *victim, lease,
                 by.empty() ? std::string(" (it reports the others)") : " (reported by " + by + ")");
  return true;
}

}  // namespace cairn::cluster
