// The manager's loop against a real etcd (cluster/manager.h), with nodes that register through
// Membership: the table is built on distinct nodes, follows nodes that leave and join, and passes
// to another node when the manager's node leaves.
#include "cluster/manager.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "cluster/etcd_harness.h"
#include "cluster/membership.h"
#include "cluster/peer_reports.h"
#include "test_util.h"

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(ChainCodecTest, RoundTripsAndRefusesMalformedRecords) {
  Chain c{5, 7, {{"n1/0", ReplicaState::kServing}, {"n2/0", ReplicaState::kSyncing}}};
  auto back = DecodeChain(5, EncodeChain(c));
  ASSERT_OK(back);
  EXPECT_EQ(*back, c);
  for (std::string_view bad : {"", "{}", "[]", R"({"version":-1,"members":[]})", R"({"version":1,"members":[{}]})",
                               R"({"version":1,"members":[{"target":"a","state":"odd"}]})"}) {
    EXPECT_TRUE(DecodeChain(1, bad).status().IsCorruption()) << bad;
  }
}

TEST(ChainCodecTest, SyncReportsRoundTrip) {
  ManagerOptions options;
  options.prefix = "/cairn/some-cluster-name-longer-than-sso/";
  const SyncReport report{7, "node-a/0", 6846493994506498341ull, 12};
  auto back = DecodeSyncReport(options, SyncKey(options, report.chain, report.target), EncodeSyncReport(report));
  ASSERT_OK(back);
  EXPECT_EQ(back->chain, report.chain);
  EXPECT_EQ(back->target, report.target);
  EXPECT_EQ(back->incarnation, report.incarnation);
  EXPECT_EQ(back->version, report.version);
  EXPECT_FALSE(DecodeSyncReport(options, "/cairn/other/sync/7/node-a/0", EncodeSyncReport(report)).ok());
  EXPECT_FALSE(DecodeSyncReport(options, SyncKey(options, 7, "n/0"), "{}").ok());
}

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(etcd_.Start());
    EtcdOptions o;
    o.endpoints = {etcd_.endpoint()};
    o.request_timeout = 1000ms;
    auto client = EtcdClient::Connect(o);
    ASSERT_OK(client);
    client_ = std::move(*client);
    mopts_.prefix = options_.prefix = "/cairn/mgr/";
    mopts_.ttl = 2s;
    mopts_.margin = 600ms;
    options_.chain_count = 12;
    options_.replicas = 3;
    options_.interval = 100ms;
  }

  std::unique_ptr<Membership> Join(const std::string& id) {
    auto m = Membership::Join(client_.get(), NodeInfo{id, "", "", "", {id + "/0"}}, mopts_);
    EXPECT_OK(m);
    return m.ok() ? std::move(*m) : nullptr;
  }
  std::unique_ptr<Manager> RunManager(const std::string& id, Membership* node) {
    auto m = Manager::Start(client_.get(), id, [node] { return node->lease_id(); }, options_);
    EXPECT_OK(m);
    return m.ok() ? std::move(*m) : nullptr;
  }

  std::vector<Chain> Table() {
    auto r = client_->GetPrefix(options_.prefix + "chains/");
    if (!r.ok()) return {};
    auto table = DecodeChainTable(options_.prefix, r->kvs);
    return table.ok() ? std::move(*table) : std::vector<Chain>{};
  }

  // Waits (bounded) until every chain of the table satisfies pred.
  template <typename Pred>
  bool TableEventually(Pred pred, std::chrono::milliseconds limit = 10s) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      const auto t = Table();
      if (t.size() == options_.chain_count && std::all_of(t.begin(), t.end(), pred)) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  static std::set<std::string> Nodes(const Chain& c) {
    std::set<std::string> out;
    for (const ChainMember& m : c.members) out.insert(m.target.substr(0, m.target.find('/')));
    return out;
  }

  test::EtcdHarness etcd_;
  std::unique_ptr<EtcdClient> client_;
  MembershipOptions mopts_;
  ManagerOptions options_;
};

TEST_F(ManagerTest, BuildsFollowsNodesAndFailsOver) {
  auto n1 = Join("n1"), n2 = Join("n2"), n3 = Join("n3");
  auto m1 = RunManager("n1", n1.get());
  auto m2 = RunManager("n2", n2.get());
  // One table of three-way chains on distinct nodes, all serving (a new cluster has nothing to copy).
  ASSERT_TRUE(TableEventually([](const Chain& c) {
    return Nodes(c) == std::set<std::string>{"n1", "n2", "n3"} &&
           std::all_of(c.members.begin(), c.members.end(),
                       [](const ChainMember& m) { return m.state == ReplicaState::kServing; });
  }));
  EXPECT_TRUE(m1->is_manager() != m2->is_manager());  // one office holder

  // n3 leaves: its chains go on without it (no other node to take its place).
  n3.reset();
  ASSERT_TRUE(TableEventually([](const Chain& c) { return Nodes(c) == std::set<std::string>{"n1", "n2"}; }));
  // n4 joins: it becomes the syncing tail of every chain.
  auto n4 = Join("n4");
  ASSERT_TRUE(TableEventually([](const Chain& c) {
    return c.members.size() == 3 && c.members.back().target == "n4/0" && c.members.back().state == ReplicaState::kSyncing;
  }));

  // The office holder's node leaves (its lease is revoked): the other node takes over and removes it.
  const bool first_was_n1 = m1->is_manager();
  if (first_was_n1) {
    m1.reset();
    n1.reset();
  } else {
    m2.reset();
    n2.reset();
  }
  const std::string gone = first_was_n1 ? "n1" : "n2";
  ASSERT_TRUE(TableEventually([&](const Chain& c) { return Nodes(c).count(gone) == 0 && !c.members.empty(); }));
  EXPECT_TRUE(first_was_n1 ? m2->is_manager() : m1->is_manager());
}

// Peer reports (peer_reports.h): n3 keeps its lease but n1 and n2 report it. The manager writes
// its eviction under n3's lease; n3 relinquishes (as its ReplicaService would on reading the
// record) and registers again, quarantined; its old incarnation leaves every chain, the record is
// deleted, and the quarantined n3 gets no chain until its quarantine ends.
TEST_F(ManagerTest, EvictsTheNodeItsPeersReportAndQuarantinesIt) {
  options_.report_settle = 200ms;
  auto n1 = Join("n1"), n2 = Join("n2"), n3 = Join("n3");
  auto m1 = RunManager("n1", n1.get());
  ASSERT_TRUE(TableEventually([](const Chain& c) { return Nodes(c).size() == 3; }));
  const int64_t lease = n3->lease_id();
  const PeerReport report_a{"n1", "n3/0", static_cast<uint64_t>(lease)};
  const PeerReport report_b{"n2", "n3/0", static_cast<uint64_t>(lease)};
  ASSERT_OK(client_->Put(PeerReportKey(options_.prefix, "n1", "n3/0"), EncodePeerReport(report_a), n1->lease_id()));
  ASSERT_OK(client_->Put(PeerReportKey(options_.prefix, "n2", "n3/0"), EncodePeerReport(report_b), n2->lease_id()));

  std::optional<Eviction> eviction;
  const auto deadline = Clock::now() + 10s;
  while (!eviction && Clock::now() < deadline) {
    auto r = client_->Get(EvictionKey(options_.prefix, "n3"));
    ASSERT_OK(r);
    if (!r->kvs.empty()) {
      auto e = DecodeEviction(options_.prefix, r->kvs.front());
      ASSERT_OK(e);
      eviction = *e;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(eviction) << "no eviction written";
  EXPECT_EQ(eviction->lease, lease);
  EXPECT_EQ(m1->evictions(), 1u);
  // Until n3 acts, its chains keep it: it may still serve, so the table must not move past it.
  const std::vector<Chain> table = Table();
  EXPECT_TRUE(std::all_of(table.begin(), table.end(), [](const Chain& c) { return Nodes(c).size() == 3; }));

  // n3 acts: fenced at once, then a new lease and a quarantined registration.
  n3->Relinquish(lease, eviction->until_ms);
  EXPECT_FALSE(n3->MayAcknowledge());
  ASSERT_TRUE(TableEventually([](const Chain& c) { return Nodes(c) == std::set<std::string>{"n1", "n2"}; }));
  const auto registered = Clock::now() + 5s;
  while (n3->lease_id() == lease && Clock::now() < registered) std::this_thread::sleep_for(20ms);
  ASSERT_NE(n3->lease_id(), lease);
  auto reg = client_->Get(Membership::NodeKey(mopts_, "n3"));
  ASSERT_OK(reg);
  ASSERT_EQ(reg->kvs.size(), 1u);
  auto record = DecodeNodeRecord(reg->kvs.front());
  ASSERT_TRUE(record);
  EXPECT_EQ(record->info.quarantined_until_ms, eviction->until_ms);
  // The record is gone once acted on; the quarantined node stays out of the chains.
  const auto gone = Clock::now() + 5s;
  bool deleted = false;
  while (!deleted && Clock::now() < gone) {
    auto r = client_->Get(EvictionKey(options_.prefix, "n3"));
    ASSERT_OK(r);
    deleted = r->kvs.empty();
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(deleted);
  std::this_thread::sleep_for(500ms);  // several manager rounds
  for (const Chain& c : Table()) EXPECT_EQ(Nodes(c), (std::set<std::string>{"n1", "n2"})) << "chain " << c.id;
}

// A single broken link: n1 reports n3 and n3 reports n1. One end goes, not both.
TEST_F(ManagerTest, OneBrokenLinkEvictsOneNode) {
  options_.report_settle = 200ms;
  auto n1 = Join("n1"), n2 = Join("n2"), n3 = Join("n3");
  auto m1 = RunManager("n1", n1.get());
  ASSERT_TRUE(TableEventually([](const Chain& c) { return Nodes(c).size() == 3; }));
  ASSERT_OK(client_->Put(PeerReportKey(options_.prefix, "n1", "n3/0"),
                         EncodePeerReport({"n1", "n3/0", static_cast<uint64_t>(n3->lease_id())}), n1->lease_id()));
  ASSERT_OK(client_->Put(PeerReportKey(options_.prefix, "n3", "n1/0"),
                         EncodePeerReport({"n3", "n1/0", static_cast<uint64_t>(n1->lease_id())}), n3->lease_id()));
  const auto deadline = Clock::now() + 10s;
  while (m1->evictions() == 0 && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  ASSERT_EQ(m1->evictions(), 1u);
  std::this_thread::sleep_for(1s);  // the node has not acted: nothing more is evicted meanwhile
  EXPECT_EQ(m1->evictions(), 1u);
  auto r = client_->GetPrefix(options_.prefix + "evict/");
  ASSERT_OK(r);
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs.front().key, EvictionKey(options_.prefix, "n3"));
}

}  // namespace
}  // namespace cairn::cluster
