#include "cluster/node.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cluster/chain_data.h"
#include "common/logging.h"
#include "common/metrics.h"

namespace cairn::cluster {

namespace {

using Json = nlohmann::json;

// The shortest cluster secret accepted: 128 bits of a random one.
constexpr size_t kMinSecretBytes = 16;
// Pause between two attempts of Connect or Join while they wait.
constexpr std::chrono::milliseconds kRetryPause{500};

constexpr const char* kIsManagerGauge = "cairn_cluster_is_manager";
constexpr const char* kIsManagerHelp = "1 while this node holds the manager's office";
constexpr const char* kFencedGauge = "cairn_cluster_fenced";
constexpr const char* kFencedHelp = "1 while this node may not acknowledge writes (not joined, or its lease lapsed)";

}  // namespace

std::string StatusJson(const ClusterStatus& s) {
  Json nodes = Json::array();
  for (const RegisteredNode& n : s.nodes) {
    Json node = {{"id", n.info.id},           {"rpc", n.info.rpc_address}, {"s3", n.info.s3_address},
                 {"zone", n.info.zone},       {"targets", n.info.targets}, {"lease", n.lease}};
    if (n.info.quarantined_until_ms != 0) node["quarantined_until_ms"] = n.info.quarantined_until_ms;
    nodes.push_back(std::move(node));
  }
  Json peer_reports = Json::array();
  for (const PeerReport& r : s.peer_reports) {
    peer_reports.push_back({{"reporter", r.reporter}, {"target", r.target}, {"incarnation", r.incarnation}});
  }
  Json evictions = Json::array();
  for (const Eviction& e : s.evictions) {
    evictions.push_back({{"node", e.node}, {"lease", e.lease}, {"until_ms", e.until_ms}});
  }
  Json chains = Json::array();
  for (const Chain& c : s.chains) {
    Json members = Json::array();
    for (const ChainMember& m : c.members) {
      members.push_back({{"target", m.target},
                         {"state", m.state == ReplicaState::kServing ? "serving" : "syncing"},
                         {"incarnation", m.incarnation}});
    }
    chains.push_back({{"id", c.id}, {"version", c.version}, {"members", members}});
  }
  // Resync: every syncing member, and whether its copy is complete (reported, waiting for the
  // manager to mark it serving).
  Json resync = Json::array();
  for (const Chain& c : s.chains) {
    for (const ChainMember& m : c.members) {
      if (m.state != ReplicaState::kSyncing) continue;
      const bool reported = std::any_of(s.sync_reports.begin(), s.sync_reports.end(), [&](const SyncReport& r) {
        return r.chain == c.id && r.target == m.target && r.incarnation == m.incarnation && r.version == c.version;
      });
      resync.push_back({{"chain", c.id},
                        {"target", m.target},
                        {"incarnation", m.incarnation},
                        {"version", c.version},
                        {"copy", reported ? "complete" : "in progress"}});
    }
  }
  Json local = Json::array();
  for (const ReplicaStatus& r : s.local_replicas) {
    Json replica = {{"chain", r.chain},
                    {"version", r.version},
                    {"phase", r.phase},
                    {"fenced", r.fenced},
                    {"last_applied", r.last_applied},
                    {"committed", r.committed},
                    {"records", r.records},
                    {"digest", r.digest}};
    if (r.copy) {
      replica["copy"] = {{"version", r.copy->chain_version}, {"blobs", r.copy->blobs},
                         {"blobs_done", r.copy->blobs_done}, {"bytes", r.copy->bytes},
                         {"bytes_done", r.copy->bytes_done}, {"finished", r.copy->finished}};
    }
    local.push_back(std::move(replica));
  }
  const Json out = {
      {"mode", "cluster"},
      {"node", s.node},
      {"cluster", s.cluster},
      {"manager", s.manager ? Json(*s.manager) : Json(nullptr)},
      {"nodes", nodes},
      {"chains", chains},
      {"resync", resync},
      {"peer_reports", peer_reports},
      {"evictions", evictions},
      {"local_replicas", local},
      {"fenced", s.fenced},
      {"disk_failed", s.disk_failed},
      {"is_manager", s.is_manager},
      {"replicas", s.replicas},
      {"chain_count", s.chain_count},
      {"revision", s.revision},
  };
  return out.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<std::string> LoadClusterSecret(const std::string& file) {
  std::string secret;
  std::string source;
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      if (errno == ENOENT) return Status::NotFound("cluster secret file " + file + " does not exist");
      return Status::FromErrno(errno, "open cluster secret file " + file);
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return Status::IOError("read cluster secret file " + file);
    secret = text.str();
    // What `echo ... > file` adds is not part of the secret.
    if (secret.ends_with("\r\n")) {
      secret.resize(secret.size() - 2);
    } else if (secret.ends_with('\n')) {
      secret.pop_back();
    }
    source = file;
  } else {
    const char* env = std::getenv("CAIRN_CLUSTER_SECRET");
    if (env == nullptr || *env == '\0') {
      return Status::ConfigError(
          "cluster mode needs the cluster secret (the same on every node): --cluster-secret-file FILE or "
          "CAIRN_CLUSTER_SECRET; make one with: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > secret");
    }
    secret = env;
    source = "CAIRN_CLUSTER_SECRET";
  }
  if (secret.size() < kMinSecretBytes) {
    return Status::ConfigError("the cluster secret in " + source + " has " + std::to_string(secret.size()) +
                               " bytes; at least " + std::to_string(kMinSecretBytes) + " are needed");
  }
  return secret;
}

Node::Node(NodeOptions options, std::unique_ptr<EtcdClient> etcd)
    : options_(std::move(options)), prefix_("/cairn/" + options_.cluster_name + "/"), etcd_(std::move(etcd)) {
  replication::ChainClientOptions client;
  client.name = options_.node_id + "/s3";
  client.secret = options_.secret;
  // The calls go to the replicas' copy of the table while the node is joined.
  auto replicas = [this] {
    std::lock_guard<std::mutex> l(mu_);
    return replicas_;
  };
  client.view = [replicas](uint32_t chain) -> std::optional<replication::ChainView> {
    auto r = replicas();
    return r ? r->View(chain) : std::nullopt;
  };
  client.address = [replicas](uint32_t node) -> std::optional<replication::PeerAddress> {
    auto r = replicas();
    return r ? r->Address(node) : std::nullopt;
  };
  client.refresh = [replicas](uint32_t) {
    if (auto r = replicas()) r->RequestRefresh();
  };
  // After Leave, calls fail at once rather than wait for a table that will not come back.
  client.abandoned = [this] { return left_.load(); };
  chain_client_ = std::make_unique<replication::ChainClient>(std::move(client));
}

bool Node::ServesLocally(uint32_t chain) {
  std::shared_ptr<ReplicaService> replicas;
  {
    std::lock_guard<std::mutex> l(mu_);
    replicas = replicas_;
  }
  return replicas != nullptr && replicas->ServesLocally(chain);
}

Result<std::unique_ptr<Node>> Node::Connect(NodeOptions options) {
  if (options.etcd_endpoints.empty()) return Status::InvalidArgument("no etcd endpoint");
  if (options.node_id.empty()) return Status::InvalidArgument("a node needs an id");
  if (options.data_dir.empty()) return Status::InvalidArgument("a node needs a data directory");
  if (options.lease_ttl.count() < 1) return Status::InvalidArgument("the lease TTL must be at least 1 s");
  // Checked here rather than when the manager's loop starts, in the background.
  if (options.chain_count == 0 || options.chain_count > 120) {
    return Status::InvalidArgument("chain count must be in [1, 120]");
  }
  if (options.replicas == 0) return Status::InvalidArgument("replication factor must be at least 1");
  EtcdOptions eo;
  eo.endpoints = options.etcd_endpoints;
  const auto deadline = std::chrono::steady_clock::now() + options.start_timeout;
  Status last;
  for (int attempt = 0;; ++attempt) {
    auto client = EtcdClient::Connect(eo);
    if (client.ok()) return std::unique_ptr<Node>(new Node(std::move(options), std::move(*client)));
    last = client.status();
    // A malformed endpoint does not get better by waiting.
    if (last.IsInvalidArgument() || last.IsNotSupported()) return last;
    if (attempt == 0) {
      CAIRN_LOG_WARN("etcd does not answer yet ({}); trying for {} s", last.ToString(),
                     std::chrono::duration_cast<std::chrono::seconds>(options.start_timeout).count());
    }
    if (std::chrono::steady_clock::now() + kRetryPause >= deadline) break;
    std::this_thread::sleep_for(kRetryPause);
  }
  return Status::Timeout(
      "no etcd endpoint answered within " +
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(options.start_timeout).count()) +
      " s; last error: " + last.ToString());
}

Node::~Node() { Leave(); }

Status Node::CheckClusterConfig() {
  // The chain count and the replication factor are the cluster's, not a node's: the first node
  // records them, and a node configured otherwise does not join (it would reshape the table
  // whenever it held the office, and send keys to other chains). So is the metadata layout: which
  // chains hold which metadata (chain_data.h), versioned so that a node of another layout stays
  // out rather than look for buckets where they are not.
  const std::string key = prefix_ + "config";
  const std::string mine =
      Json{{"replicas", options_.replicas}, {"chains", options_.chain_count}, {"metadata_layout", kMetadataLayout}}
          .dump();
  CAIRN_ASSIGN_OR_RETURN(EtcdTxnResult txn, etcd_->Txn({EtcdCompare::CreateRevision(key, EtcdCompare::Op::kEqual, 0)},
                                                       {EtcdOp::Put(key, mine)}, {EtcdOp::Get(key)}));
  if (txn.succeeded) return Status::OK();  // the first node: its settings are the cluster's
  if (txn.ranges.empty() || txn.ranges[0].kvs.empty()) return Status::Internal("etcd: the cluster config vanished");
  const Json theirs = Json::parse(txn.ranges[0].kvs[0].value, nullptr, false);
  if (theirs.is_discarded() || !theirs.is_object()) return Status::Corruption("etcd: malformed " + key);
  const uint64_t replicas = theirs.value("replicas", uint64_t{0});
  const uint64_t chains = theirs.value("chains", uint64_t{0});
  const uint64_t layout = theirs.value("metadata_layout", uint64_t{1});  // 1: all metadata on chain 0
  if (replicas != options_.replicas || chains != options_.chain_count) {
    return Status::ConfigError("cluster " + options_.cluster_name + " runs " + std::to_string(chains) + " chains of " +
                               std::to_string(replicas) + " replicas; this node is configured for " +
                               std::to_string(options_.chain_count) + " chains of " +
                               std::to_string(options_.replicas) + " (--chains, --replicas must match the cluster)");
  }
  if (layout != kMetadataLayout) {
    return Status::ConfigError("cluster " + options_.cluster_name + " keeps its metadata in layout " +
                               std::to_string(layout) + "; this version of cairn knows layout " +
                               std::to_string(kMetadataLayout) + " only (start a new cluster)");
  }
  return Status::OK();
}

void Node::CancelJoin() {
  {
    std::lock_guard<std::mutex> l(join_mu_);
    join_cancelled_ = true;
  }
  join_cv_.notify_all();
}

bool Node::JoinPause() {
  std::unique_lock<std::mutex> l(join_mu_);
  return join_cv_.wait_for(l, kRetryPause, [this] { return join_cancelled_.load(); });
}

Status Node::Join(const std::string& s3_address, replication::BlobStore* blobs) {
  const Status cancelled = Status::Cancelled("joining was cancelled");
  if (join_cancelled_) return cancelled;
  const auto config_deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  for (Status s = CheckClusterConfig(); !s.ok(); s = CheckClusterConfig()) {
    if (!s.IsIOError() && !s.IsTimeout()) return s;  // etcd's hiccups are waited out, as below
    if (std::chrono::steady_clock::now() + kRetryPause >= config_deadline) return s;
    if (JoinPause()) return cancelled;
  }
  MembershipOptions mo;
  mo.prefix = prefix_;
  mo.ttl = options_.lease_ttl;
  // A third of the TTL, as the design's default (1 s of 3 s): acknowledging stops that long
  // before etcd could expire the lease.
  mo.margin = std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease_ttl) / 3;
  // The replicas listen first: the registration carries the address they are bound to.
  ReplicaServiceOptions ro;
  ro.prefix = prefix_;
  ro.node_id = options_.node_id;
  ro.rpc_listen = options_.rpc_address;
  ro.secret = options_.secret;
  ro.data_dir = options_.data_dir + "/replicas";
  ro.blobs = blobs;
  ro.peer_timeout = options_.peer_timeout;
  ro.extras_interval = options_.extras_interval;
  ro.chain_of_blob = [chain_count = options_.chain_count](const std::string& id) -> uint32_t {
    const auto chunk = engine::ChunkId::FromString(id);
    return chunk ? ChainOfChunk(*chunk, chain_count) : 0;
  };
  ro.machine_for = [metadata_chains = MetadataChains(options_.chain_count)](
                       uint32_t chain) -> const replication::StateMachine* {
    return chain < metadata_chains ? &MetaStateMachine::Instance() : nullptr;
  };
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<ReplicaService> replicas, ReplicaService::Start(etcd_.get(), ro));
  const NodeInfo info{options_.node_id,
                      options_.rpc_advertise.empty() ? replicas->rpc_address() : options_.rpc_advertise, s3_address,
                      options_.zone,
                      {options_.node_id + "/0"}};

  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  std::unique_ptr<Membership> membership;
  for (int attempt = 0;; ++attempt) {
    auto joined = Membership::Join(etcd_.get(), info, mo);
    if (joined.ok()) {
      membership = std::move(*joined);
      break;
    }
    const Status& s = joined.status();
    // AlreadyExists: the id is held by a live lease. After a kill -9 that is this node's previous
    // run until its lease expires (one TTL); otherwise another process has the id, and waiting
    // ends in the same error.
    if (!s.IsAlreadyExists() && !s.IsIOError() && !s.IsTimeout()) return s;
    if (attempt == 0) {
      CAIRN_LOG_WARN("node {}: cannot register yet ({}); trying for {} s", options_.node_id, s.ToString(),
                     std::chrono::duration_cast<std::chrono::seconds>(options_.start_timeout).count());
    }
    if (std::chrono::steady_clock::now() + kRetryPause >= deadline) return s;
    if (JoinPause()) return cancelled;
  }

  CAIRN_LOG_INFO("node {}: joined cluster {} (lease {}, target {}/0)", options_.node_id, options_.cluster_name,
                 membership->lease_id(), options_.node_id);
  replicas->Run(membership.get());
  std::lock_guard<std::mutex> l(mu_);
  membership_ = std::move(membership);
  replicas_ = std::move(replicas);
  joined_at_ = std::chrono::steady_clock::now();
  stopping_ = false;
  refresher_ = std::thread([this] { RefreshLoop(); });
  return Status::OK();
}

void Node::MaybeStartManager(const ClusterStatus& status) {
  if (manager_ != nullptr || membership_ == nullptr) return;
  const bool formed = !status.chains.empty() || status.nodes.size() >= options_.replicas ||
                      std::chrono::steady_clock::now() - joined_at_ >= options_.formation_wait;
  if (!formed) return;
  ManagerOptions mgr;
  mgr.prefix = prefix_;
  mgr.chain_count = options_.chain_count;
  mgr.replicas = options_.replicas;
  mgr.interval = options_.refresh_interval;
  mgr.lease_ttl = options_.lease_ttl;
  mgr.eviction_quarantine = options_.eviction_quarantine;
  Membership* const m = membership_.get();  // outlives the manager (Leave)
  auto manager = Manager::Start(
      etcd_.get(), options_.node_id, [m] { return m->lease_id(); }, mgr);
  if (!manager.ok()) {
    CAIRN_LOG_ERROR("node {}: the manager's loop does not start: {}", options_.node_id, manager.status().ToString());
    return;
  }
  manager_ = std::move(*manager);
}

void Node::Leave() {
  left_ = true;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  std::unique_ptr<Manager> manager;
  std::shared_ptr<ReplicaService> replicas;
  std::unique_ptr<Membership> membership;
  {
    std::lock_guard<std::mutex> l(mu_);
    manager = std::move(manager_);
    replicas = std::move(replicas_);
    membership = std::move(membership_);
  }
  if (membership == nullptr) return;
  // The manager's loop and the replicas go first: they use the membership's lease. All join
  // their threads and may wait on etcd, so they are destroyed outside mu_ (status readers see a
  // node that left).
  manager.reset();
  // Stopped before the membership goes (the service uses it); a status request still holding
  // the service gets nothing from it from now on.
  if (replicas != nullptr) replicas->Stop();
  replicas.reset();
  membership.reset();
  auto& reg = metrics::Registry::Default();
  reg.GetGauge(kIsManagerGauge, kIsManagerHelp)->Set(0);
  reg.GetGauge(kFencedGauge, kFencedHelp)->Set(1);
  CAIRN_LOG_INFO("node {}: left cluster {}", options_.node_id, options_.cluster_name);
}

bool Node::fenced() const {
  std::lock_guard<std::mutex> l(mu_);
  return membership_ == nullptr || !membership_->MayAcknowledge();
}

bool Node::is_manager() const {
  std::lock_guard<std::mutex> l(mu_);
  return manager_ != nullptr && manager_->is_manager();
}

Result<ClusterStatus> Node::ReadStatus(bool digests) const {
  // One transaction, so that the office, the nodes, the table and the sync reports come from one
  // revision.
  CAIRN_ASSIGN_OR_RETURN(EtcdTxnResult txn,
                         etcd_->Txn({},
                                    {EtcdOp::Get(prefix_ + "manager"), EtcdOp::GetPrefix(prefix_ + "nodes/"),
                                     EtcdOp::GetPrefix(prefix_ + "chains/"), EtcdOp::GetPrefix(prefix_ + "sync/"),
                                     EtcdOp::GetPrefix(prefix_ + "reports/"), EtcdOp::GetPrefix(prefix_ + "evict/")},
                                    {}));
  if (txn.ranges.size() != 6) return Status::Internal("etcd answered a status read with the wrong number of ranges");
  ClusterStatus s;
  s.cluster = options_.cluster_name;
  s.node = options_.node_id;
  s.revision = txn.revision;
  s.replicas = options_.replicas;
  s.chain_count = options_.chain_count;
  if (!txn.ranges[0].kvs.empty()) s.manager = txn.ranges[0].kvs[0].value;
  for (const EtcdKv& kv : txn.ranges[1].kvs) {
    if (auto n = DecodeNodeRecord(kv)) s.nodes.push_back(std::move(*n));
  }
  CAIRN_ASSIGN_OR_RETURN(s.chains, DecodeChainTable(prefix_, txn.ranges[2].kvs));
  ManagerOptions keys;
  keys.prefix = prefix_;
  for (const EtcdKv& kv : txn.ranges[3].kvs) {
    if (auto r = DecodeSyncReport(keys, kv.key, kv.value); r.ok()) s.sync_reports.push_back(std::move(*r));
  }
  for (const EtcdKv& kv : txn.ranges[4].kvs) {
    if (auto r = DecodePeerReport(prefix_, kv); r.ok()) s.peer_reports.push_back(std::move(*r));
  }
  for (const EtcdKv& kv : txn.ranges[5].kvs) {
    if (auto e = DecodeEviction(prefix_, kv); e.ok()) s.evictions.push_back(std::move(*e));
  }
  s.fenced = fenced();
  s.is_manager = is_manager();
  std::shared_ptr<ReplicaService> replicas;
  {
    std::lock_guard<std::mutex> l(mu_);
    replicas = replicas_;
  }
  if (replicas != nullptr) {
    s.local_replicas = replicas->Replicas(digests);
    s.disk_failed = replicas->disk_failed();
  }
  return s;
}

void Node::RefreshLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    l.unlock();
    auto status = ReadStatus(/*digests=*/false);
    l.lock();
    if (status.ok()) {
      // Only the replicas' own round tells the membership that the table was re-read: it is the
      // one that hands the new views to the replicas, and it unfences them only after a round
      // that began once the lease was renewed (replica_service.cc), so no table read before a
      // renewal ends a fence.
      status->fenced = membership_ == nullptr || !membership_->MayAcknowledge();
      if (replicas_ != nullptr && replicas_->disk_failed()) {
        status->disk_failed = true;
        if (!disk_failure_signalled_) {
          // Fail-stop: the node leaves (SIGTERM: its lease is revoked at once), so that the
          // manager removes it from its chains instead of them waiting on a disk that fails.
          CAIRN_LOG_ERROR("node {}: the replica store failed a write", options_.node_id);
          disk_failure_signalled_ = true;
          if (options_.on_fatal) options_.on_fatal(Status::IOError("the replica store failed a write"));
        }
      }
      MaybeStartManager(*status);
      PublishMetrics(*status);
    } else {
      CAIRN_LOG_WARN("node {}: reading the cluster's state: {}", options_.node_id, status.status().ToString());
    }
    cv_.wait_for(l, options_.refresh_interval, [&] { return stopping_; });
  }
}

// REQUIRES: mu_ held (membership_).
void Node::PublishMetrics(const ClusterStatus& s) {
  auto& reg = metrics::Registry::Default();
  reg.GetGauge("cairn_cluster_nodes", "Nodes registered in the cluster")->Set(static_cast<double>(s.nodes.size()));
  reg.GetGauge("cairn_cluster_chains", "Chains in the chain table")->Set(static_cast<double>(s.chains.size()));
  reg.GetGauge(kIsManagerGauge, kIsManagerHelp)->Set(s.is_manager ? 1 : 0);
  reg.GetGauge(kFencedGauge, kFencedHelp)->Set(s.fenced ? 1 : 0);
  size_t syncing_members = 0;
  for (const Chain& c : s.chains) {
    syncing_members += static_cast<size_t>(std::count_if(
        c.members.begin(), c.members.end(), [](const ChainMember& m) { return m.state == ReplicaState::kSyncing; }));
  }
  reg.GetGauge("cairn_resync_members", "Chain members still syncing (resync in progress), cluster-wide")
      ->Set(static_cast<double>(syncing_members));
  size_t local_syncing = 0, local_ready = 0;
  for (const ReplicaStatus& r : s.local_replicas) {
    if (r.phase == "syncing") ++local_syncing;
    if (r.phase == "ready") ++local_ready;
  }
  reg.GetGauge("cairn_replicas_syncing", "This node's replicas waiting for their predecessor's copy")
      ->Set(static_cast<double>(local_syncing));
  reg.GetGauge("cairn_replicas_ready", "This node's replicas holding a complete copy")
      ->Set(static_cast<double>(local_ready));
  uint64_t copy_bytes = 0, copy_bytes_done = 0, copy_blobs = 0, copy_blobs_done = 0;
  for (const ReplicaStatus& r : s.local_replicas) {
    if (!r.copy) continue;
    copy_bytes += r.copy->bytes;
    copy_bytes_done += r.copy->bytes_done;
    copy_blobs += r.copy->blobs;
    copy_blobs_done += r.copy->blobs_done;
  }
  reg.GetGauge("cairn_resync_copy_bytes", "Bytes of blobs the resyncs of this node's replicas must hold")
      ->Set(static_cast<double>(copy_bytes));
  reg.GetGauge("cairn_resync_copy_bytes_done", "Bytes of those blobs already in this node's blob store")
      ->Set(static_cast<double>(copy_bytes_done));
  reg.GetGauge("cairn_resync_copy_blobs", "Blobs the resyncs of this node's replicas must hold")
      ->Set(static_cast<double>(copy_blobs));
  reg.GetGauge("cairn_resync_copy_blobs_done", "Blobs of those already in this node's blob store")
      ->Set(static_cast<double>(copy_blobs_done));
  // Membership counts renewals itself; the counter follows it.
  metrics::Counter* renewed =
      reg.GetCounter("cairn_lease_renewals_total", "Successful renewals of this node's etcd lease");
  const uint64_t renewals = membership_ != nullptr ? membership_->renewals() : renewals_published_;
  if (renewals > renewals_published_) {
    renewed->Increment(renewals - renewals_published_);
    renewals_published_ = renewals;
  }
}

}  // namespace cairn::cluster
