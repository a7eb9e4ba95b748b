#include "cluster/manager.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "cluster/membership.h"
#include "common/logging.h"

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
      election_(etcd, options_.prefix, node_id_) {}

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
}

void Manager::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    l.unlock();
    if (!election_.is_manager()) {
      // A read while the office is held; a campaign (a write every node would repeat every
      // interval) only when it is empty.
      auto holder = election_.CurrentManager();
      if (!holder.ok()) {
        CAIRN_LOG_WARN("manager: reading the office: {}", holder.status().ToString());
      } else if (holder->empty() || *holder == node_id_) {
        auto won = election_.Campaign(lease_());
        if (!won.ok()) {
          CAIRN_LOG_WARN("manager: campaign: {}", won.status().ToString());
        } else if (*won) {
          CAIRN_LOG_INFO("manager: {} holds the office (term {})", node_id_, election_.term());
        }
      }
    }
    is_manager_.store(election_.is_manager());  // before the round: its writes show the office held
    if (election_.is_manager()) {
      if (Status s = Round(); !s.ok()) CAIRN_LOG_WARN("manager: {}", s.ToString());
    }
    is_manager_.store(election_.is_manager());
    l.lock();
    cv_.wait_for(l, options_.interval, [&] { return stopping_; });
  }
}

Status Manager::Round() {
  // The live targets, from the node registrations.
  CAIRN_ASSIGN_OR_RETURN(EtcdRange nodes, etcd_->GetPrefix(options_.prefix + "nodes/"));
  std::vector<TargetInfo> live;
  for (const EtcdKv& kv : nodes.kvs) {
    const std::optional<RegisteredNode> n = DecodeNodeRecord(kv);
    if (!n) continue;
    // The registration's lease is the node's incarnation.
    for (const std::string& t : n->info.targets) {
      live.push_back({t, n->info.id, n->info.zone, static_cast<uint64_t>(n->lease)});
    }
  }
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
  const RebuildResult r = Rebuild(current, live, options_.chain_count, options_.replicas, synced);
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

}  // namespace cairn::cluster
