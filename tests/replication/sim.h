// A deterministic simulation of one chain (docs/design/cluster.md, "Invariants the tests check").
//
// One seed drives everything through one std::mt19937_64: N nodes (3 to 5) each holding a
// ChainReplica of chain 1 (replication factor 3), a fake etcd with leases, a manager that keeps
// the chain table, a network that drops (1 to 8 %, or 30 % in a loss storm), delays (1-8 ms, 5 %
// of messages 15-60 ms, hence reordering), duplicates messages and cuts links (peer to peer,
// one-way too; client to node; node to etcd, one-way too; a whole node), disks that complete in
// order after 1-12 ms and sometimes stall, crashes (power loss: what is not durable is gone) and
// restarts, and 2 to 4 clients issuing puts, deletes and gets on 3 keys with timeouts and
// retries (a retry reuses the op id; a client refreshes its chain view after an error, from a
// watch up to 60 ms behind). There are no threads and no wall clock: time is simulated
// milliseconds, events run in (time, insertion order), so a seed replays exactly, trace included.
//
// The model of the cluster, scaled down from the design's defaults (TTL 3 s):
//   - a node keeps its lease alive every TTL/3 through its link to etcd, and fences itself at
//     (send time of the last keepalive that succeeded) + TTL - TTL/3; a keepalive answer carries
//     the chain table, so an unfenced node has re-read it. A node whose lease is gone (or that
//     restarts) registers a new lease: a new incarnation, never the member its old entry names;
//   - the manager removes members whose lease expired or was replaced, never the last serving
//     one; appends a live node as the syncing tail when the chain is short (one syncing member at
//     a time); marks it serving when it reports its sync done. Every change bumps the version,
//     and etcd's watch delivers the table to the nodes after a delay;
//   - peer reports (cluster/peer_reports.h): a node whose successor stalled for the peer timeout
//     reports it to etcd (refreshed every tick while it lasts, bound to the reporter's lease);
//     once the reports have not changed for a settle time the manager picks a node with the
//     cluster's own ChooseEviction and evicts it; the node, told in its next keepalive answer,
//     fences itself and registers again quarantined (no new chain for a while); a node that does
//     not act within two TTLs has its lease revoked, its members kept one TTL more. The manager
//     evicts only while another serving member is healthy, as the faults below;
//   - faults never take down the last healthy serving member (the design promises nothing when
//     all N replicas fail).
// After the active phase the network heals, crashed nodes restart, and the run continues until
// the system is quiescent (all nodes up, the chain full and serving, nothing in flight); then the
// invariants are checked:
//   durability     when the head answers a write, every live serving member of its chain version
//                  holds it on stable storage (checked at the moment of the answer);
//   lease          no node acknowledges a write or answers a read once its lease has expired in
//                  etcd, or, for a lease the manager revoked, once the manager stopped keeping its
//                  members (design invariant 5; checked at every such message);
//   acknowledged   every acknowledged write is in every serving replica's store, with its
//                  recorded result (design invariant 1);
//   agreement      the serving replicas' stores are equal (design invariants 2 and 6);
//   linearizable   every key's history as the clients saw it, plus a final read at every serving
//                  replica, is linearizable (design invariant 3);
//   no gap         no replica found a gap in the sequence (the protocol should make them
//                  impossible: a gap report means a bug);
//   quiescence     the system settles once faults stop (liveness).
//
// Header-only: each tests/<layer>/*_test.cc is built alone (tests/CMakeLists.txt).
// Thread-safety: one Simulation per thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/peer_reports.h"
#include "replication/chain.h"
#include "replication/linearizability.h"

namespace cairn::replication::test {

// The simulated chain's state machine: the key-value commands, each applied with a second key, so
// that every update has two mutations and the multi-key paths (priors per mutation, CRAQ versions
// of a key that is not an update's first) are exercised. A put of k writes "shadow/k" first and k
// second; a delete removes k first and "shadow/k" second. Since every update sets both atomically,
// at the end every key and its shadow hold the same value (checked).
class ShadowMachine final : public StateMachine {
 public:
  static const ShadowMachine& Instance() {
    static const ShadowMachine machine;
    return machine;
  }
  static std::string Shadow(const std::string& key) { return "shadow/" + key; }
  Outcome Execute(const KvReader& state, std::string_view command) const override {
    Outcome outcome = KvStateMachine::Instance().Execute(state, command);
    if (outcome.mutations.size() != 1) return outcome;
    KvMutation shadow{Shadow(outcome.mutations[0].key), outcome.mutations[0].value};
    if (shadow.value) {
      outcome.mutations.insert(outcome.mutations.begin(), std::move(shadow));
    } else {
      outcome.mutations.push_back(std::move(shadow));
    }
    return outcome;
  }
  Result<std::string> Query(const KvReader& committed, std::string_view query) const override {
    return KvStateMachine::Instance().Query(committed, query);
  }
};

struct SimOptions {
  uint64_t seed = 1;
  TestFaults faults;        // deliberate bugs in every replica
  bool keep_trace = false;  // keep the whole trace (the tail is always kept)
};

struct SimStats {
  int nodes = 0;
  int ops = 0;
  int ops_ok = 0;
  int ops_gave_up = 0;
  int crashes = 0;
  int partitions = 0;
  int view_changes = 0;
  int evictions = 0;
  int syncs = 0;
  int writes = 0;        // write operations invoked
  int results_kept = 0;  // operation results held at the end (the others were forgotten)
  int tombstones_kept = 0;  // tombstones held at the end (the others were purged)
  int64_t end_ms = 0;
  uint64_t events = 0;
  uint64_t lin_states = 0;
};

struct SimResult {
  bool ok = true;
  std::string invariant;  // the first invariant that failed
  std::string details;
  std::vector<std::string> trace_tail;
  std::vector<std::string> trace;  // everything, when SimOptions::keep_trace
  uint64_t trace_hash = 0;         // FNV-1a over every trace line
  SimStats stats;
};

// The deliberate bugs by name (CAIRN_SIM_BUG), for replaying the runs of ChainSimCatchesBugs.
inline std::optional<TestFaults> BugByName(std::string_view name) {
  TestFaults faults;
  if (name == "tail_acks_before_durable") {
    faults.tail_acks_before_durable = true;
  } else if (name == "head_replies_before_commit") {
    faults.head_replies_before_commit = true;
  } else if (name == "skip_version_check") {
    faults.skip_version_check = true;
  } else if (name == "read_dirty_locally") {
    faults.read_dirty_locally = true;
  } else if (name == "ignore_fence") {
    faults.ignore_fence = true;
  } else if (name == "sync_keeps_stale_state") {
    faults.sync_keeps_stale_state = true;
  } else {
    return std::nullopt;
  }
  return faults;
}

// The line a failing seed prints first; `bug` names the deliberate bug of the run, if any.
inline std::string FailureHeadline(uint64_t seed, const SimResult& result, std::string_view bug = {}) {
  std::string replay = "CAIRN_SIM_SEED=" + std::to_string(seed);
  if (!bug.empty()) replay += " CAIRN_SIM_BUG=" + std::string(bug);
  return "seed " + std::to_string(seed) + " failed: " + result.invariant + " (replay: " + replay + ")";
}

class Simulation {
 public:
  // Scaled-down cluster parameters, in simulated milliseconds.
  static constexpr ChainId kChain = 1;
  static constexpr size_t kReplicationFactor = 3;
  static constexpr int kMaxClients = 4;
  static constexpr int kKeys = 3;
  static constexpr int kMaxOpsPerKey = 40;
  static constexpr int64_t kLeaseTtl = 300;
  static constexpr int64_t kKeepalivePeriod = kLeaseTtl / 3;
  static constexpr int64_t kFenceMargin = kLeaseTtl / 3;
  static constexpr int64_t kTickPeriod = 20;
  static constexpr int64_t kManagerPeriod = 10;
  static constexpr int64_t kActiveMs = 2500;
  static constexpr int64_t kQuiesceLimitMs = 12000;
  static constexpr int64_t kOpDeadline = 1000;
  static constexpr int64_t kAttemptTimeout = 60;
  // Operation results are kept this long (ReplicaOptions::op_retention_ms), in the clients' clock:
  // simulated time plus kClockBase (a stamp of 0 means "unstamped").
  static constexpr uint64_t kOpRetention = 300;
  static constexpr int64_t kClockBase = 1'000'000;
  static constexpr int64_t kWatchLag = 60;
  // Peer reports: a successor stalled this many ticks is reported; the manager waits for the
  // reports to settle, and an evicted node gets no new chain for the quarantine.
  static constexpr uint32_t kPeerTimeoutTicks = 8;
  static constexpr int64_t kReportSettle = 40;
  static constexpr int64_t kReportFresh = 3 * kTickPeriod;
  static constexpr int64_t kQuarantine = 400;
  static constexpr double kDropRates[] = {0.01, 0.03, 0.08};
  static constexpr double kDuplicateRate = 0.02;
  static constexpr size_t kTraceTail = 40;

  explicit Simulation(const SimOptions& options) : options_(options), rng_(options.seed) {}

  SimResult Run() {
    Setup();
    while (!queue_.empty() && !stopped_) {
      Event event = queue_.top();
      queue_.pop();
      now_ = event.time;
      ++stamp_;
      event.run();
    }
    if (!stopped_ && result_.ok) Fail("quiescence", "the event queue ran dry");
    result_.stats.end_ms = now_;
    result_.stats.events = stamp_;
    result_.stats.nodes = static_cast<int>(nodes_.size());
    result_.trace_tail.assign(trace_tail_.begin(), trace_tail_.end());
    result_.trace_hash = trace_hash_;
    return std::move(result_);
  }

 private:
  struct Event {
    int64_t time;
    uint64_t order;
    std::function<void()> run;
    bool operator>(const Event& other) const { return time != other.time ? time > other.time : order > other.order; }
  };

  struct Node {
    NodeId id = 0;
    std::unique_ptr<ChainReplica> replica;
    bool up = true;
    uint64_t boot = 0;         // changes at every restart: stale disk completions are dropped
    uint64_t incarnation = 1;  // the lease this process holds or is registering
    bool has_lease = true;
    int64_t last_ok_sent = 0;  // send time of the last keepalive (or grant) that succeeded
    int64_t disk_free_at = 0;  // durable writes complete in order
    bool fetch_in_flight = false;
    int64_t faulted_until = -1;  // a node fault (crash, etcd cut, isolation) is active until then
    int64_t quarantined_until = 0;  // registered with the next grant after an eviction
  };

  struct EtcdLease {
    uint64_t incarnation = 1;
    int64_t expiry = 0;
    int64_t quarantined_until = 0;
  };

  // `reports/<reporter>`: the reporter (under its incarnation) saw `target` stall, at `at`.
  struct SimReport {
    uint64_t reporter_incarnation = 0;
    MemberId target;
    int64_t at = 0;
  };
  struct SimEviction {
    NodeId node = 0;
    uint64_t incarnation = 0;
    int64_t since = 0;
    int64_t until = 0;  // the quarantine's end
  };

  struct HistoryOp {
    int client = 0;
    int key = 0;
    RegisterOp::Kind kind = RegisterOp::Kind::kGet;
    std::string value;
    OpId op_id = 0;
    uint64_t invoke = 0;
    int64_t invoke_ms = 0;
    uint64_t response = kNoResponse;
    int64_t response_ms = 0;
    bool gave_up = false;
    WriteResult result;
    Record read;
  };

  struct Client {
    int id = 0;
    ChainView view;
    bool active = false;
    size_t op = 0;  // index in history_
    uint64_t request_id = 0;
    uint64_t generation = 0;
    int64_t deadline = 0;
    uint32_t next_op = 0;
  };

  // ---- Plumbing ----

  void At(int64_t time, std::function<void()> run) { queue_.push(Event{time, next_order_++, std::move(run)}); }

  int64_t Range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(rng_() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool Chance(double p) { return static_cast<double>(rng_() >> 11) * 0x1.0p-53 < p; }

  void Trace(const std::string& line) {
    std::string text = std::to_string(now_) + "ms " + line;
    for (unsigned char c : text) {
      trace_hash_ ^= c;
      trace_hash_ *= 1099511628211ull;
    }
    trace_hash_ ^= '\n';
    trace_hash_ *= 1099511628211ull;
    if (options_.keep_trace) result_.trace.push_back(text);
    trace_tail_.push_back(std::move(text));
    if (trace_tail_.size() > kTraceTail) trace_tail_.pop_front();
  }

  void Fail(const std::string& invariant, const std::string& details) {
    if (!result_.ok) return;
    result_.ok = false;
    result_.invariant = invariant;
    result_.details = details;
    Trace("FAILED: " + invariant);
    stopped_ = true;
  }

  static std::string Name(Endpoint endpoint) {
    return (endpoint.kind == Endpoint::Kind::kReplica ? "n" : "c") + std::to_string(endpoint.id);
  }
  static uint64_t LinkKey(Endpoint from, Endpoint to) {
    auto code = [](Endpoint e) { return (static_cast<uint64_t>(e.kind) << 31) | e.id; };
    return code(from) << 32 | code(to);
  }
  static std::string ViewText(const ChainView& view) {
    std::string out = "v" + std::to_string(view.version) + " [";
    for (const Member& member : view.members) {
      out += " n" + std::to_string(member.id.node) + "#" + std::to_string(member.id.incarnation) +
             (member.serving ? "" : "(syncing)");
    }
    return out + " ]";
  }

  Node& node(NodeId id) { return nodes_[id - 1]; }

  // ---- Setup ----

  void Setup() {
    // Each seed also picks its cluster: nodes, clients, message loss, disk speed.
    const int count = static_cast<int>(Range(3, 5));
    clients_count_ = static_cast<int>(Range(2, kMaxClients));
    drop_rate_ = kDropRates[Range(0, 2)];
    max_disk_latency_ = Range(2, 12);
    etcd_.resize(count + 1);
    table_.chain_id = kChain;
    table_.version = 1;
    for (int i = 1; i <= count; ++i) {
      Node n;
      n.id = static_cast<NodeId>(i);
      ReplicaOptions replica_options;
      replica_options.faults = options_.faults;
      replica_options.machine = &ShadowMachine::Instance();
      // Results are forgotten a few hundred simulated milliseconds after their write, a few per
      // update: every run forgets thousands, and late retries meet the refusal.
      replica_options.op_retention_ms = kOpRetention;
      replica_options.forget_batch = 4;
      replica_options.clock_ms = [this] { return static_cast<uint64_t>(kClockBase + now_); };
      replica_options.max_issued_age_ms = 2 * kOpDeadline;  // never for a retry within its deadline
      n.replica = std::make_unique<ChainReplica>(kChain, n.id, replica_options);
      if (static_cast<size_t>(i) <= kReplicationFactor) {
        n.replica->Bootstrap(1);
        table_.members.push_back(Member{MemberId{n.id, 1}, true});
      } else {
        n.replica->Start(1);  // a spare: appended (and synced) when a member leaves
      }
      etcd_[i] = EtcdLease{1, kLeaseTtl};
      nodes_.push_back(std::move(n));
    }
    table_history_.emplace_back(0, table_);
    Trace("start: " + std::to_string(count) + " nodes, table " + ViewText(table_));
    for (Node& n : nodes_) {
      const NodeId id = n.id;
      Drive(id, [&](ChainReplica& r) { return r.OnView(table_); });
      At(Range(1, kTickPeriod), [this, id] { Tick(id); });
      At(Range(1, kKeepalivePeriod), [this, id] { KeepaliveTick(id); });
    }
    At(kManagerPeriod, [this] { ManagerTick(); });
    At(Range(50, 300), [this] { InjectFault(); });
    for (int c = 1; c <= clients_count_; ++c) {
      Client client;
      client.id = c;
      client.view = table_;
      clients_.push_back(client);
      At(Range(1, 20), [this, c] { ClientNextOp(c); });
    }
    At(kActiveMs, [this] { EndActivePhase(); });
  }

  // ---- Nodes ----

  bool Fenced(const Node& n) const { return !n.has_lease || now_ >= n.last_ok_sent + kLeaseTtl - kFenceMargin; }

  template <class Input>
  void Drive(NodeId id, Input&& input) {
    Node& n = node(id);
    if (!n.up) return;
    n.replica->SetFenced(Fenced(n));
    Effects effects = input(*n.replica);
    Process(id, std::move(effects));
  }

  void Process(NodeId id, Effects effects) {
    Node& n = node(id);
    for (Outbound& send : effects.sends) {
      if (Answers(send.message) && !LeaseAlive(id, n.incarnation) && !Held(id, n.incarnation)) {
        Fail("lease", "n" + std::to_string(id) + "#" + std::to_string(n.incarnation) + " sent " +
                          Describe(send.message) + " to " + Name(send.to) + " after its lease expired in etcd");
        return;
      }
      if (send.to.kind == Endpoint::Kind::kClient) {
        if (const auto* reply = std::get_if<ClientWriteReply>(&send.message); reply && reply->status.ok()) {
          CheckDurableAtAck(id, *reply);
        }
      }
      Send(Endpoint::Replica(id), send.to, std::move(send.message));
    }
    for (const DiskWrite& write : effects.disk_writes) {
      const int64_t done = std::max(now_ + Range(1, max_disk_latency_), n.disk_free_at);
      n.disk_free_at = done;
      const uint64_t boot = n.boot;
      const uint64_t write_id = write.id;
      const std::string what = write.what;
      At(done, [this, id, boot, write_id, what] {
        if (!node(id).up || node(id).boot != boot) return;
        Trace("n" + std::to_string(id) + " durable " + what);
        Drive(id, [&](ChainReplica& r) { return r.OnDiskWriteDone(write_id); });
      });
    }
    for (const ManagerReport& report : effects.reports) {
      ToEtcd(id, [this, report] { OnReport(report); });
    }
    if (effects.refresh_view && !n.fetch_in_flight) {
      n.fetch_in_flight = true;
      const uint64_t boot = n.boot;
      ToEtcd(id, [this, id, boot] {
        const ChainView table = table_;
        FromEtcd(id, boot, Range(1, 5), [this, id, table] {
          node(id).fetch_in_flight = false;
          Drive(id, [&](ChainReplica& r) { return r.OnView(table); });
        });
      });
      // A fetch lost to a cut is given up after a while.
      At(now_ + 50, [this, id, boot] {
        if (node(id).boot == boot) node(id).fetch_in_flight = false;
      });
    }
  }

  // A message that acknowledges a write or shows a client data: never sent by a node whose lease
  // has expired (design invariant 5; the node fences itself before that moment).
  static bool Answers(const Message& message) {
    if (const auto* w = std::get_if<ClientWriteReply>(&message)) return w->status.ok();
    if (const auto* r = std::get_if<ClientReadReply>(&message)) return r->status.ok();
    if (const auto* v = std::get_if<VersionReply>(&message)) return v->status.ok();
    return std::holds_alternative<Ack>(message) || std::holds_alternative<Commit>(message) ||
           std::holds_alternative<SyncData>(message);
  }

  void Tick(NodeId id) {
    if (stopped_) return;
    At(now_ + kTickPeriod, [this, id] { Tick(id); });
    Drive(id, [](ChainReplica& r) { return r.OnTick(); });
    ReportStall(id);
  }

  // Peer reports: refreshed at etcd every tick while the successor stalls (a report not refreshed
  // is stale to the manager, as one withdrawn).
  void ReportStall(NodeId id) {
    Node& n = node(id);
    if (!n.up || Fenced(n)) return;
    const auto stall = n.replica->StalledSuccessor();
    if (!stall || stall->ticks < kPeerTimeoutTicks) return;
    const uint64_t incarnation = n.incarnation;
    const MemberId target = stall->successor;
    ToEtcd(id, [this, id, incarnation, target] {
      if (!LeaseAlive(id, incarnation)) return;
      auto it = reports_.find(id);
      if (it == reports_.end() || !(it->second.target == target)) {
        Trace("etcd: n" + std::to_string(id) + " reports n" + std::to_string(target.node) + "#" +
              std::to_string(target.incarnation));
      }
      reports_[id] = SimReport{incarnation, target, now_};
    });
  }

  // Durability at acknowledgement: the head answers only what every serving member of its
  // chain version holds on stable storage.
  void CheckDurableAtAck(NodeId head, const ClientWriteReply& reply) {
    const ChainView* view = node(head).replica->view();
    if (view == nullptr) return;
    for (const Member& member : view->members) {
      if (!member.serving) continue;
      Node& m = node(member.id.node);
      if (!m.up || m.incarnation != member.id.incarnation) continue;
      const DurableState& durable = m.replica->durable();
      // A serving member holds it in its store; a log of a sync still in progress does not count
      // (such a member is not serving yet).
      const bool held = durable.store.ops.contains(reply.op_id);
      if (!held) {
        Fail("durability at acknowledgement", "head n" + std::to_string(head) + " answered " + Describe(reply) +
                                                  " for op " + std::to_string(reply.op_id) + " while member n" +
                                                  std::to_string(member.id.node) + " of " + ViewText(*view) +
                                                  " does not hold it on stable storage");
        return;
      }
    }
  }

  // ---- Network ----

  bool Cut(Endpoint from, Endpoint to) const {
    auto it = cuts_.find(LinkKey(from, to));
    return it != cuts_.end() && it->second > now_;
  }

  void CutLink(Endpoint from, Endpoint to, int64_t until) {
    int64_t& entry = cuts_[LinkKey(from, to)];
    entry = std::max(entry, until);
  }

  void Send(Endpoint from, Endpoint to, Message message) {
    if (Cut(from, to)) return;
    if (Chance(storm_until_ > now_ ? 0.3 : drop_rate_)) return;
    const int copies = Chance(kDuplicateRate) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
      const int64_t delay = Chance(0.05) ? Range(15, 60) : Range(1, 8);
      At(now_ + delay, [this, from, to, message] { Deliver(from, to, message); });
    }
  }

  void Deliver(Endpoint from, Endpoint to, const Message& message) {
    if (to.kind == Endpoint::Kind::kReplica) {
      if (!node(to.id).up) return;
      Trace(Name(from) + ">" + Name(to) + " " + Describe(message));
      Drive(to.id, [&](ChainReplica& r) { return r.OnMessage(from, message); });
    } else {
      Trace(Name(from) + ">" + Name(to) + " " + Describe(message));
      ClientReply(static_cast<int>(to.id), message);
    }
  }

  // ---- etcd, leases, the manager ----

  bool EtcdOutCut(NodeId id) const { return etcd_out_cut_.contains(id) && etcd_out_cut_.at(id) > now_; }
  bool EtcdInCut(NodeId id) const { return etcd_in_cut_.contains(id) && etcd_in_cut_.at(id) > now_; }

  // A request from node `id` that etcd handles on arrival.
  void ToEtcd(NodeId id, std::function<void()> at_etcd) {
    if (EtcdOutCut(id)) return;
    At(now_ + Range(1, 5), std::move(at_etcd));
  }
  // An answer or watch event from etcd to node `id` (the process started at `boot`).
  void FromEtcd(NodeId id, uint64_t boot, int64_t delay, std::function<void()> at_node) {
    if (EtcdInCut(id)) return;
    At(now_ + delay, [this, id, boot, at_node = std::move(at_node)] {
      if (node(id).up && node(id).boot == boot) at_node();
    });
  }

  bool LeaseAlive(NodeId id, uint64_t incarnation) const {
    return etcd_[id].incarnation == incarnation && now_ < etcd_[id].expiry;
  }
  // A lease the manager revoked (an eviction the node did not act on) whose members it still
  // keeps: the node may answer until it notices, as the table has not moved past it.
  bool Held(NodeId id, uint64_t incarnation) const {
    auto it = held_.find(id);
    return it != held_.end() && it->second.first == incarnation && now_ < it->second.second;
  }

  void KeepaliveTick(NodeId id) {
    if (stopped_) return;
    At(now_ + kKeepalivePeriod, [this, id] { KeepaliveTick(id); });
    Node& n = node(id);
    if (!n.up || !n.has_lease) return;
    const int64_t sent = now_;
    const uint64_t incarnation = n.incarnation;
    const uint64_t boot = n.boot;
    ToEtcd(id, [this, id, sent, incarnation, boot] {
      const bool ok = LeaseAlive(id, incarnation);
      if (ok) etcd_[id].expiry = now_ + kLeaseTtl;
      const ChainView table = table_;
      const int64_t evicted_until =
          eviction_ && eviction_->node == id && eviction_->incarnation == incarnation ? eviction_->until : 0;
      FromEtcd(id, boot, Range(1, 5), [this, id, sent, incarnation, ok, table, evicted_until] {
        Node& m = node(id);
        if (m.incarnation != incarnation || !m.has_lease) return;
        if (!ok) return LeaseLost(id);
        if (evicted_until != 0) {
          // Evicted: fenced from now on (no lease), then a new one, quarantined.
          Trace("n" + std::to_string(id) + " read its eviction; relinquishes #" + std::to_string(incarnation));
          m.quarantined_until = evicted_until;
          return LeaseLost(id);
        }
        m.last_ok_sent = std::max(m.last_ok_sent, sent);
        Drive(id, [&](ChainReplica& r) { return r.OnView(table); });
      });
    });
  }

  void LeaseLost(NodeId id) {
    Node& n = node(id);
    n.has_lease = false;
    n.incarnation = ++incarnations_;
    Trace("n" + std::to_string(id) + " lease lost; registers again as #" + std::to_string(n.incarnation));
    n.replica->Rejoin(n.incarnation);
    Grant(id, n.incarnation);
  }

  // Registers node `id` under a new lease (incarnation), retrying until an answer comes back.
  void Grant(NodeId id, uint64_t incarnation) {
    Node& n = node(id);
    if (!n.up || n.incarnation != incarnation || n.has_lease || stopped_) return;
    const int64_t sent = now_;
    const uint64_t boot = n.boot;
    const int64_t quarantined_until = n.quarantined_until;
    ToEtcd(id, [this, id, sent, incarnation, boot, quarantined_until] {
      etcd_[id] = EtcdLease{incarnation, now_ + kLeaseTtl, quarantined_until};
      const ChainView table = table_;
      FromEtcd(id, boot, Range(1, 5), [this, id, sent, incarnation, table] {
        Node& m = node(id);
        if (m.incarnation != incarnation || m.has_lease) return;
        m.has_lease = true;
        m.last_ok_sent = sent;
        Drive(id, [&](ChainReplica& r) { return r.OnView(table); });
      });
    });
    At(now_ + kKeepalivePeriod, [this, id, incarnation] { Grant(id, incarnation); });
  }

  void OnReport(const ManagerReport& report) {
    if (report.kind == ManagerReport::Kind::kNeedsResync) {
      Fail("no gap", "n" + std::to_string(report.member.node) + " found a gap in the sequence at chain version " +
                         std::to_string(report.chain_version));
      return;
    }
    sync_done_.insert({report.member.node, report.member.incarnation});
  }

  void ManagerTick() {
    if (stopped_) return;
    At(now_ + kManagerPeriod, [this] { ManagerTick(); });
    ManageEvictions();
    ChainView next = table_;
    bool changed = false;
    // Members whose lease expired or was replaced leave (a revoked one only after its hold); the
    // last serving member never does.
    std::vector<Member> kept;
    int serving_kept = 0;
    for (const Member& member : next.members) {
      if (LeaseAlive(member.id.node, member.id.incarnation) || Held(member.id.node, member.id.incarnation)) {
        kept.push_back(member);
        serving_kept += member.serving ? 1 : 0;
      }
    }
    if (serving_kept == 0) {
      Fail("chain lost", "every serving member of " + ViewText(next) + " failed (the fault guard should prevent it)");
      return;
    }
    if (kept.size() != next.members.size()) {
      next.members = kept;
      changed = true;
    }
    // A syncing member that reported its copy complete serves.
    for (Member& member : next.members) {
      if (!member.serving && sync_done_.contains({member.id.node, member.id.incarnation})) {
        member.serving = true;
        changed = true;
        ++result_.stats.syncs;
      }
    }
    sync_done_.clear();
    // A short chain gets a live node as its syncing tail, one at a time.
    const bool syncing =
        std::any_of(next.members.begin(), next.members.end(), [](const Member& m) { return !m.serving; });
    if (!syncing && next.members.size() < kReplicationFactor) {
      std::vector<NodeId> candidates;
      for (NodeId id = 1; id <= nodes_.size(); ++id) {
        const bool member =
            std::any_of(next.members.begin(), next.members.end(), [&](const Member& m) { return m.id.node == id; });
        if (!member && now_ + kLeaseTtl / 2 < etcd_[id].expiry && etcd_[id].quarantined_until <= now_) {
          candidates.push_back(id);
        }
      }
      if (!candidates.empty()) {
        const NodeId id = candidates[rng_() % candidates.size()];
        next.members.push_back(Member{MemberId{id, etcd_[id].incarnation}, false});
        changed = true;
      }
    }
    if (!changed) return;
    ++next.version;
    table_ = next;
    table_history_.emplace_back(now_, table_);
    ++result_.stats.view_changes;
    Trace("manager: table " + ViewText(table_));
    for (Node& n : nodes_) {
      if (!n.up) continue;
      const NodeId id = n.id;
      const ChainView table = table_;
      FromEtcd(id, n.boot, Range(1, 20),
               [this, id, table] { Drive(id, [&](ChainReplica& r) { return r.OnView(table); }); });
    }
  }

  // The manager's side of peer reports (cluster/manager.cc, Evictions).
  void ManageEvictions() {
    if (eviction_) {
      const SimEviction& e = *eviction_;
      if (!LeaseAlive(e.node, e.incarnation)) {
        eviction_.reset();  // acted on, or the lease went
      } else if (now_ - e.since >= 2 * kLeaseTtl) {
        // The node has not acted: revoke its lease, keep its members one TTL more.
        Trace("manager: n" + std::to_string(e.node) + " did not act on its eviction; lease revoked");
        etcd_[e.node].expiry = now_;
        held_[e.node] = {e.incarnation, now_ + kLeaseTtl};
        eviction_.reset();
      }
      return;
    }
    std::vector<cluster::PeerReport> reports;
    std::string text;
    for (const auto& [reporter, report] : reports_) {
      if (now_ - report.at > kReportFresh || !LeaseAlive(reporter, report.reporter_incarnation)) continue;
      reports.push_back({"n" + std::to_string(reporter), "n" + std::to_string(report.target.node) + "/0",
                         report.target.incarnation});
      text += reports.back().reporter + ">" + reports.back().target + "#" + std::to_string(report.target.incarnation);
      text += " ";
    }
    if (text != reports_text_) {
      reports_text_ = text;
      reports_stable_since_ = now_;
    }
    if (reports.empty() || now_ - reports_stable_since_ < kReportSettle) return;
    std::vector<cluster::TargetInfo> live;
    for (const Node& n : nodes_) {
      if (LeaseAlive(n.id, etcd_[n.id].incarnation)) {
        live.push_back({"n" + std::to_string(n.id) + "/0", "n" + std::to_string(n.id), "", etcd_[n.id].incarnation});
      }
    }
    const std::optional<std::string> victim = cluster::ChooseEviction(reports, live);
    if (!victim) return;
    const NodeId id = static_cast<NodeId>(std::stoul(victim->substr(1)));
    if (!AnotherServingHealthy(id)) return;  // never the last healthy serving member, as the faults
    eviction_ = SimEviction{id, etcd_[id].incarnation, now_, now_ + kQuarantine};
    ++result_.stats.evictions;
    Trace("manager: evicts n" + std::to_string(id) + "#" + std::to_string(etcd_[id].incarnation) + " on reports " +
          text);
  }

  // ---- Faults ----

  // A node may fail only while another serving member of the table is healthy: up, its lease
  // fresh, its links to etcd whole, and itself not under a fault.
  bool MayFault(NodeId victim) const {
    int faulted = 0;
    for (const Node& n : nodes_) faulted += n.faulted_until > now_ || !n.up ? 1 : 0;
    if (faulted >= 2) return false;
    return AnotherServingHealthy(victim);
  }

  // Another serving member of the table than `victim` is healthy: up, its lease fresh, its links
  // to etcd whole, itself not under a fault, and not being evicted.
  bool AnotherServingHealthy(NodeId victim) const {
    for (const Member& member : table_.members) {
      const NodeId id = member.id.node;
      if (id == victim || !member.serving) continue;
      if (eviction_ && eviction_->node == id) continue;  // about to leave
      const Node& n = nodes_[id - 1];
      if (!n.up || n.incarnation != member.id.incarnation || n.faulted_until > now_) continue;
      if (EtcdOutCut(id) || EtcdInCut(id)) continue;
      if (etcd_[id].incarnation == member.id.incarnation && etcd_[id].expiry >= now_ + kLeaseTtl / 2) return true;
    }
    return false;
  }

  void InjectFault() {
    if (stopped_ || now_ >= kActiveMs) return;
    At(now_ + Range(40, 400), [this] { InjectFault(); });
    const NodeId victim = static_cast<NodeId>(Range(1, static_cast<int64_t>(nodes_.size())));
    Node& v = node(victim);
    const int64_t roll = Range(0, 99);
    if (roll < 25) {
      if (!v.up || !MayFault(victim)) return;
      const int64_t back = now_ + Range(100, 800);
      v.up = false;
      v.faulted_until = back;
      ++v.boot;
      v.replica->Crash();
      ++result_.stats.crashes;
      Trace("FAULT crash n" + std::to_string(victim) + " until " + std::to_string(back));
      At(back, [this, victim] { Restart(victim); });
    } else if (roll < 45) {
      if (!v.up || !MayFault(victim)) return;
      const int64_t until = now_ + Range(100, 700);
      const int64_t mode = Range(0, 2);  // both ways, node->etcd only, etcd->node only
      if (mode != 2) etcd_out_cut_[victim] = until;
      if (mode != 1) etcd_in_cut_[victim] = until;
      v.faulted_until = until;
      ++result_.stats.partitions;
      Trace("FAULT etcd cut n" + std::to_string(victim) +
            (mode == 0   ? " both ways"
             : mode == 1 ? " outbound"
                         : " inbound") +
            " until " + std::to_string(until));
    } else if (roll < 65) {
      NodeId other = static_cast<NodeId>(Range(1, static_cast<int64_t>(nodes_.size())));
      if (other == victim) return;
      const int64_t until = now_ + Range(20, 300);
      CutLink(Endpoint::Replica(victim), Endpoint::Replica(other), until);
      const bool both = Chance(0.5);
      if (both) CutLink(Endpoint::Replica(other), Endpoint::Replica(victim), until);
      ++result_.stats.partitions;
      Trace("FAULT cut n" + std::to_string(victim) + (both ? "<>" : ">") + "n" + std::to_string(other) + " until " +
            std::to_string(until));
    } else if (roll < 75) {
      if (!v.up || !MayFault(victim)) return;
      const int64_t until = now_ + Range(100, 600);
      for (const Node& n : nodes_) {
        CutLink(Endpoint::Replica(victim), Endpoint::Replica(n.id), until);
        CutLink(Endpoint::Replica(n.id), Endpoint::Replica(victim), until);
      }
      for (int c = 1; c <= clients_count_; ++c) {
        CutLink(Endpoint::Replica(victim), Endpoint::Client(c), until);
        CutLink(Endpoint::Client(c), Endpoint::Replica(victim), until);
      }
      etcd_out_cut_[victim] = until;
      etcd_in_cut_[victim] = until;
      v.faulted_until = until;
      ++result_.stats.partitions;
      Trace("FAULT isolate n" + std::to_string(victim) + " until " + std::to_string(until));
    } else if (roll < 80) {
      // A slow disk: the node's durable writes stall.
      if (!v.up) return;
      v.disk_free_at = std::max(v.disk_free_at, now_) + Range(50, 400);
      Trace("FAULT slow disk n" + std::to_string(victim) + " until " + std::to_string(v.disk_free_at));
    } else if (roll < 90) {
      const int c = static_cast<int>(Range(1, clients_count_));
      const int64_t until = now_ + Range(50, 400);
      CutLink(Endpoint::Client(c), Endpoint::Replica(victim), until);
      CutLink(Endpoint::Replica(victim), Endpoint::Client(c), until);
      ++result_.stats.partitions;
      Trace("FAULT cut c" + std::to_string(c) + "<>n" + std::to_string(victim) + " until " + std::to_string(until));
    } else {
      storm_until_ = now_ + Range(50, 200);
      Trace("FAULT message loss storm until " + std::to_string(storm_until_));
    }
  }

  void Restart(NodeId id) {
    Node& n = node(id);
    if (n.up) return;
    n.up = true;
    n.has_lease = false;
    n.incarnation = ++incarnations_;
    n.disk_free_at = now_;
    n.fetch_in_flight = false;
    n.replica->Start(n.incarnation);
    Trace("restart n" + std::to_string(id) + " as #" + std::to_string(n.incarnation));
    Grant(id, n.incarnation);
  }

  void EndActivePhase() {
    Trace("active phase over: healing the network, restarting crashed nodes");
    cuts_.clear();
    etcd_out_cut_.clear();
    etcd_in_cut_.clear();
    storm_until_ = 0;
    for (Node& n : nodes_) {
      n.faulted_until = -1;
      if (!n.up) Restart(n.id);
    }
    At(now_ + 50, [this] { CheckQuiescence(); });
  }

  // ---- Clients ----

  Client& client(int id) { return clients_[id - 1]; }

  void ClientNextOp(int c) {
    Client& cl = client(c);
    if (stopped_ || now_ >= kActiveMs) return;
    std::vector<int> keys;
    for (int k = 0; k < kKeys; ++k) {
      if (ops_per_key_[k] < kMaxOpsPerKey) keys.push_back(k);
    }
    if (keys.empty()) return;
    HistoryOp op;
    op.client = c;
    op.key = keys[rng_() % keys.size()];
    const int64_t roll = Range(0, 99);
    op.kind = roll < 50 ? RegisterOp::Kind::kGet : roll < 85 ? RegisterOp::Kind::kPut : RegisterOp::Kind::kDelete;
    op.op_id = (static_cast<uint64_t>(c) << 32) | ++cl.next_op;
    if (op.kind == RegisterOp::Kind::kPut) op.value = "c" + std::to_string(c) + "." + std::to_string(cl.next_op);
    op.invoke = stamp_;
    op.invoke_ms = now_;
    ++ops_per_key_[op.key];
    ++result_.stats.ops;
    if (op.kind != RegisterOp::Kind::kGet) ++result_.stats.writes;
    cl.op = history_.size();
    history_.push_back(op);
    cl.active = true;
    cl.deadline = now_ + kOpDeadline;
    Trace("c" + std::to_string(c) + " invokes " + OpText(history_[cl.op]));
    Attempt(c);
  }

  static std::string KeyName(int key) { return "k" + std::to_string(key); }

  std::string OpText(const HistoryOp& op) const {
    switch (op.kind) {
      case RegisterOp::Kind::kPut:
        return "put " + KeyName(op.key) + "=" + op.value;
      case RegisterOp::Kind::kDelete:
        return "delete " + KeyName(op.key);
      case RegisterOp::Kind::kGet:
        return "get " + KeyName(op.key);
    }
    return "";
  }

  void Attempt(int c) {
    Client& cl = client(c);
    if (!cl.active || stopped_) return;
    const HistoryOp& op = history_[cl.op];
    const uint64_t generation = ++cl.generation;
    cl.request_id = ++next_request_;
    std::vector<NodeId> serving;
    for (const Member& member : cl.view.members) {
      if (member.serving) serving.push_back(member.id.node);
    }
    if (!cl.view.members.empty() && !serving.empty()) {
      if (op.kind == RegisterOp::Kind::kGet) {
        ClientRead read{cl.request_id, kChain, cl.view.version, KeyName(op.key)};
        Send(Endpoint::Client(c), Endpoint::Replica(serving[rng_() % serving.size()]), read);
      } else {
        ClientWrite write{cl.request_id, kChain, cl.view.version, op.op_id,
                          op.kind == RegisterOp::Kind::kPut ? KvStateMachine::Put(KeyName(op.key), op.value)
                                                            : KvStateMachine::Delete(KeyName(op.key))};
        write.issued_ms = static_cast<uint64_t>(kClockBase + op.invoke_ms);
        Send(Endpoint::Client(c), Endpoint::Replica(cl.view.members.front().id.node), write);
      }
    }
    At(now_ + kAttemptTimeout, [this, c, generation] {
      if (client(c).active && client(c).generation == generation) AttemptFailed(c);
    });
  }

  // The chain table as a gateway sees it through its watch: up to kWatchLag old.
  const ChainView& LaggedTable() {
    const int64_t as_of = now_ - Range(0, kWatchLag);
    auto it = std::upper_bound(table_history_.begin(), table_history_.end(), as_of,
                               [](int64_t t, const std::pair<int64_t, ChainView>& entry) { return t < entry.first; });
    return it == table_history_.begin() ? table_history_.front().second : std::prev(it)->second;
  }

  void AttemptFailed(int c) {
    Client& cl = client(c);
    // Gateways refresh their view of the chain table after an error, from their watch.
    if (const ChainView& table = LaggedTable(); table.version > cl.view.version) cl.view = table;
    const uint64_t generation = ++cl.generation;
    if (now_ >= cl.deadline) {
      HistoryOp& op = history_[cl.op];
      op.gave_up = true;
      cl.active = false;
      ++result_.stats.ops_gave_up;
      Trace("c" + std::to_string(c) + " gives up " + OpText(op));
      At(now_ + Range(0, 20), [this, c] { ClientNextOp(c); });
      return;
    }
    At(now_ + Range(2, 15), [this, c, generation] {
      if (client(c).active && client(c).generation == generation) Attempt(c);
    });
  }

  void ClientReply(int c, const Message& message) {
    Client& cl = client(c);
    if (!cl.active) return;
    HistoryOp& op = history_[cl.op];
    const Status* status = nullptr;
    if (const auto* w = std::get_if<ClientWriteReply>(&message)) {
      if (w->request_id != cl.request_id || op.kind == RegisterOp::Kind::kGet) return;
      status = &w->status;
      if (status->ok()) op.result = w->result;
    } else if (const auto* r = std::get_if<ClientReadReply>(&message)) {
      if (r->request_id != cl.request_id || op.kind != RegisterOp::Kind::kGet) return;
      status = &r->status;
      if (status->ok()) op.read = r->record;
    } else {
      return;
    }
    if (!status->ok()) return AttemptFailed(c);
    op.response = stamp_;
    op.response_ms = now_;
    cl.active = false;
    ++cl.generation;
    ++result_.stats.ops_ok;
    At(now_ + Range(0, 20), [this, c] { ClientNextOp(c); });
  }

  // ---- The end ----

  void CheckQuiescence() {
    if (stopped_) return;
    if (now_ > kActiveMs + kQuiesceLimitMs) {
      Fail("quiescence", "not quiescent " + std::to_string(kQuiesceLimitMs) + " ms after the faults stopped; table " +
                             ViewText(table_) + NodeStates());
      return;
    }
    At(now_ + 50, [this] { CheckQuiescence(); });
    for (const Client& cl : clients_) {
      if (cl.active) return;
    }
    if (table_.members.size() != std::min(kReplicationFactor, nodes_.size())) return;
    uint64_t last = 0;
    for (const Member& member : table_.members) {
      const Node& n = nodes_[member.id.node - 1];
      if (!member.serving || !n.up || Fenced(n) || n.incarnation != member.id.incarnation) return;
      const ChainReplica& r = *n.replica;
      if (r.view_version() != table_.version || !r.Quiescent()) return;
      if (last != 0 && r.last_applied() != last) return;
      last = r.last_applied();
    }
    Trace("quiescent: table " + ViewText(table_));
    CheckFinalState();
    stopped_ = true;
  }

  std::string NodeStates() const {
    std::string out;
    for (const Node& n : nodes_) {
      const ChainReplica& r = *n.replica;
      out += "\n  n" + std::to_string(n.id) + "#" + std::to_string(n.incarnation) + (n.up ? "" : " down") +
             (Fenced(n) ? " fenced" : "") + " phase " + std::to_string(static_cast<int>(r.phase())) + " view v" +
             std::to_string(r.view_version()) + " L" + std::to_string(r.last_applied()) + " D" +
             std::to_string(r.durable_level()) + " U" + std::to_string(r.acked_level()) +
             (r.Quiescent() ? " quiescent" : "");
    }
    return out;
  }

  static std::string RecordText(const Record& record) {
    return (record.value ? *record.value : std::string("absent")) + "@s" + std::to_string(record.seq);
  }

  void CheckFinalState() {
    const auto& members = table_.members;
    const ChainReplica& first = *nodes_[members.front().id.node - 1].replica;
    // Agreement: every serving replica's store equals the first one's, and memory equals disk.
    for (const Member& member : members) {
      const ChainReplica& r = *nodes_[member.id.node - 1].replica;
      if (!(r.applied() == r.durable().store)) {
        return Fail("agreement",
                    "n" + std::to_string(member.id.node) + " applied state differs from its durable state");
      }
      if (!(r.durable().store == first.durable().store)) {
        return Fail("agreement", "stores differ: " + StoreText(first) + " vs " + StoreText(r));
      }
    }
    result_.stats.results_kept = static_cast<int>(first.durable().store.ops.size());
    for (const auto& [key, record] : first.durable().store.records) result_.stats.tombstones_kept += !record.value;
    // Atomicity of multi-key updates: every key holds what its shadow holds.
    for (int k = 0; k < kKeys; ++k) {
      const auto& records = first.durable().store.records;
      auto key = records.find(KeyName(k));
      auto shadow = records.find(ShadowMachine::Shadow(KeyName(k)));
      const std::optional<std::string> value = key == records.end() ? std::nullopt : key->second.value;
      const std::optional<std::string> shadowed = shadow == records.end() ? std::nullopt : shadow->second.value;
      if (value != shadowed) {
        return Fail("atomicity", KeyName(k) + " and its shadow differ: " + value.value_or("absent") + " vs " +
                                     shadowed.value_or("absent"));
      }
    }
    // Every acknowledged write is in every serving replica, with its recorded result unless that
    // was forgotten, which only a write stamped more than the retention later may do; and its key
    // holds it or a later version, or nothing when a delete of the key (purged since) followed.
    // (The values themselves are checked by the linearizability check below.)
    // A delete that may have applied after a write: acknowledged with a higher sequence, or never
    // answered (it may apply at any time).
    auto deleted_after = [&](const HistoryOp& write) {
      return std::any_of(history_.begin(), history_.end(), [&](const HistoryOp& d) {
        return d.kind == RegisterOp::Kind::kDelete && d.key == write.key &&
               (d.response == kNoResponse || d.result.seq > write.result.seq);
      });
    };
    for (const HistoryOp& op : history_) {
      if (op.kind == RegisterOp::Kind::kGet || op.response == kNoResponse) continue;
      for (const Member& member : members) {
        const StoreState& store = nodes_[member.id.node - 1].replica->durable().store;
        auto it = store.ops.find(op.op_id);
        auto record = store.records.find(KeyName(op.key));
        const bool forgotten = it == store.ops.end() && op.result.stamp_ms + kOpRetention < store.stamp_ms;
        const bool purged =
            record == store.records.end() && (op.kind == RegisterOp::Kind::kDelete || deleted_after(op));
        if ((it == store.ops.end() && !forgotten) || (it != store.ops.end() && !(it->second == op.result)) ||
            (record == store.records.end() && !purged) ||
            (record != store.records.end() && record->second.seq < op.result.seq)) {
          return Fail("acknowledged write lost", "n" + std::to_string(member.id.node) + " lacks acknowledged " +
                                                     OpText(op) + " (seq " + std::to_string(op.result.seq) + ")");
        }
      }
    }
    // Linearizability of each key's history, with a final read at every serving replica.
    for (int k = 0; k < kKeys; ++k) {
      std::vector<RegisterOp> ops;
      for (const HistoryOp& op : history_) {
        if (op.key != k) continue;
        RegisterOp r;
        r.kind = op.kind;
        r.value = op.value;
        r.invoke = op.invoke;
        r.response = op.response;
        r.existed = KvStateMachine::Existed(op.result.result);
        r.read = op.read.value;
        r.label = "c" + std::to_string(op.client) + " op" + std::to_string(op.op_id & 0xffffffffu) + " " +
                  std::to_string(op.invoke_ms) + "ms.." +
                  (op.response == kNoResponse ? "gave up" : std::to_string(op.response_ms) + "ms") +
                  (op.kind == RegisterOp::Kind::kGet ? "" : " s" + std::to_string(op.result.seq));
        ops.push_back(std::move(r));
      }
      uint64_t t = stamp_ + 1;
      for (const Member& member : members) {
        const StoreState& store = nodes_[member.id.node - 1].replica->durable().store;
        RegisterOp r;
        r.kind = RegisterOp::Kind::kGet;
        r.invoke = t++;
        r.response = t++;
        auto it = store.records.find(KeyName(k));
        if (it != store.records.end()) r.read = it->second.value;
        r.label = "final read at n" + std::to_string(member.id.node);
        ops.push_back(std::move(r));
      }
      LinearizabilityResult check = CheckRegisterHistory(std::move(ops));
      result_.stats.lin_states += check.states;
      if (check.inconclusive) return Fail("linearizable", KeyName(k) + ": the check gave up (too many states)");
      if (!check.ok) return Fail("linearizable", KeyName(k) + ": " + check.explanation);
    }
  }

  static std::string StoreText(const ChainReplica& r) {
    std::string out = "n" + std::to_string(r.node()) + "{last s" + std::to_string(r.durable().store.last_seq);
    for (const auto& [key, record] : r.durable().store.records) out += " " + key + "=" + RecordText(record);
    return out + " ops " + std::to_string(r.durable().store.ops.size()) + "}";
  }

  SimOptions options_;
  std::mt19937_64 rng_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  uint64_t next_order_ = 0;
  int64_t now_ = 0;
  uint64_t stamp_ = 0;
  bool stopped_ = false;
  SimResult result_;
  std::deque<std::string> trace_tail_;
  uint64_t trace_hash_ = 14695981039346656037ull;

  std::vector<Node> nodes_;
  std::vector<EtcdLease> etcd_;  // by node id
  ChainView table_;
  std::vector<std::pair<int64_t, ChainView>> table_history_;  // every table, with its time
  std::set<std::pair<NodeId, uint64_t>> sync_done_;
  uint64_t incarnations_ = 1;
  std::map<NodeId, SimReport> reports_;  // etcd's reports/, by reporter
  std::string reports_text_;             // the valid reports the manager last saw
  int64_t reports_stable_since_ = 0;
  std::optional<SimEviction> eviction_;  // etcd's evict/, at most one
  std::map<NodeId, std::pair<uint64_t, int64_t>> held_;  // revoked: incarnation kept until

  std::map<uint64_t, int64_t> cuts_;  // link -> cut until
  std::map<NodeId, int64_t> etcd_out_cut_;
  std::map<NodeId, int64_t> etcd_in_cut_;
  int64_t storm_until_ = 0;
  int clients_count_ = 3;
  double drop_rate_ = 0.03;
  int64_t max_disk_latency_ = 6;

  std::vector<Client> clients_;
  std::vector<HistoryOp> history_;
  int ops_per_key_[kKeys] = {};
  uint64_t next_request_ = 0;
};

inline SimResult RunSimulation(const SimOptions& options) { return Simulation(options).Run(); }

}  // namespace cairn::replication::test
