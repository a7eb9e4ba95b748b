// The chain table's rebuild (cluster/placement.h): distinct nodes, zones, balance, minimal change,
// syncing tails for replacements, and lost chains reported.
#include "cluster/placement.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace cairn::cluster {
namespace {

std::vector<TargetInfo> Targets(int nodes, int zones = 0) {
  std::vector<TargetInfo> out;
  for (int n = 0; n < nodes; ++n) {
    const std::string node = "n" + std::to_string(n);
    out.push_back({node + "/0", node, zones > 0 ? "z" + std::to_string(n % zones) : ""});
  }
  return out;
}

std::string NodeOf(const std::string& target) { return target.substr(0, target.find('/')); }

void ExpectDistinctNodes(const RebuildResult& r) {
  for (const Chain& c : r.chains) {
    std::set<std::string> nodes;
    for (const ChainMember& m : c.members) EXPECT_TRUE(nodes.insert(NodeOf(m.target)).second) << "chain " << c.id;
  }
}

TEST(PlacementTest, ANewClusterGetsFullServingChainsOnDistinctNodesEvenlyHeaded) {
  const RebuildResult r = Rebuild({}, Targets(3), 64, 3);
  ASSERT_EQ(r.chains.size(), 64u);
  EXPECT_EQ(r.changed.size(), 64u);
  EXPECT_TRUE(r.lost.empty());
  EXPECT_TRUE(r.short_chains.empty());
  ExpectDistinctNodes(r);
  std::map<std::string, int> heads;
  for (const Chain& c : r.chains) {
    EXPECT_EQ(c.version, 1u);
    ASSERT_EQ(c.members.size(), 3u);
    for (const ChainMember& m : c.members) EXPECT_EQ(m.state, ReplicaState::kServing);
    ++heads[c.members[0].target];
  }
  for (const auto& [t, n] : heads) EXPECT_NEAR(n, 64 / 3, 2) << t;
}

TEST(PlacementTest, ReplicationFactorNeverExceedsTheNodes) {
  const RebuildResult r = Rebuild({}, Targets(2), 8, 3);
  for (const Chain& c : r.chains) EXPECT_EQ(c.members.size(), 2u);
  EXPECT_EQ(r.short_chains.size(), 8u);
  ExpectDistinctNodes(r);
}

TEST(PlacementTest, AFailedNodeLeavesItsChainsAndANewOneJoinsAsSyncingTail) {
  const RebuildResult first = Rebuild({}, Targets(4), 16, 3);
  std::vector<TargetInfo> live = Targets(4);
  live.erase(live.begin() + 1);  // n1 dies
  const RebuildResult second = Rebuild(first.chains, live, 16, 3);
  ExpectDistinctNodes(second);
  for (const Chain& c : second.chains) {
    const Chain& before = first.chains[c.id];
    bool had_n1 = false;
    for (const ChainMember& m : before.members) had_n1 |= NodeOf(m.target) == "n1";
    if (!had_n1) {
      EXPECT_EQ(c, before) << "an untouched chain keeps its version";
      continue;
    }
    EXPECT_EQ(c.version, before.version + 1);
    ASSERT_EQ(c.members.size(), 3u);
    // The survivors keep their order; the replacement is a syncing tail.
    EXPECT_EQ(c.members.back().state, ReplicaState::kSyncing);
    std::vector<std::string> survivors;
    for (const ChainMember& m : before.members) {
      if (NodeOf(m.target) != "n1") survivors.push_back(m.target);
    }
    EXPECT_EQ(c.members[0].target, survivors[0]);
    EXPECT_EQ(c.members[1].target, survivors[1]);
  }
}

TEST(PlacementTest, ZonesAreSpreadWhenThereAreEnough) {
  const RebuildResult r = Rebuild({}, Targets(6, 3), 30, 3);
  for (const Chain& c : r.chains) {
    std::set<std::string> zones;
    for (const ChainMember& m : c.members) zones.insert("z" + std::to_string(std::stoi(NodeOf(m.target).substr(1)) % 3));
    EXPECT_EQ(zones.size(), 3u) << "chain " << c.id;
  }
  // Two zones for three replicas: both zones used, still distinct nodes.
  const RebuildResult two = Rebuild({}, Targets(6, 2), 30, 3);
  ExpectDistinctNodes(two);
  for (const Chain& c : two.chains) {
    std::set<std::string> zones;
    for (const ChainMember& m : c.members) zones.insert("z" + std::to_string(std::stoi(NodeOf(m.target).substr(1)) % 2));
    EXPECT_EQ(zones.size(), 2u);
  }
}

TEST(PlacementTest, TheLastServingMemberStaysUntilItReturns) {
  const RebuildResult first = Rebuild({}, Targets(3), 4, 3);
  // Every node is gone (a cold restart longer than a lease): each chain keeps one serving member.
  const RebuildResult none = Rebuild(first.chains, {}, 4, 3);
  EXPECT_TRUE(none.lost.empty());
  for (const Chain& c : none.chains) {
    ASSERT_EQ(c.members.size(), 1u);
    EXPECT_EQ(c.members[0], first.chains[c.id].members[0]);
    EXPECT_EQ(c.version, first.chains[c.id].version + 1);
  }
  // The nodes return: each chain gets one syncing tail at a time, copying from the kept member.
  const RebuildResult back = Rebuild(none.chains, Targets(3), 4, 3);
  for (const Chain& c : back.chains) {
    ASSERT_EQ(c.members.size(), 2u);
    EXPECT_EQ(c.members[0].state, ReplicaState::kServing);
    EXPECT_EQ(c.members[1].state, ReplicaState::kSyncing);
  }
  ExpectDistinctNodes(back);
  // While it syncs, nothing more is added.
  const RebuildResult again = Rebuild(back.chains, Targets(3), 4, 3);
  EXPECT_TRUE(again.changed.empty());
}

TEST(PlacementTest, AChainWithoutAServingMemberIsReportedLostAndNotRefilled) {
  const Chain only_syncing{0, 3, {{"n1/0", ReplicaState::kSyncing}}};
  const RebuildResult r = Rebuild({only_syncing}, Targets(3), 1, 3);
  EXPECT_EQ(r.lost, std::vector<uint32_t>{0});
  EXPECT_EQ(r.chains[0], only_syncing);
}

TEST(PlacementTest, RebuildIsStableAndDeterministic) {
  const RebuildResult a = Rebuild({}, Targets(5), 32, 3);
  const RebuildResult b = Rebuild({}, Targets(5), 32, 3);
  EXPECT_EQ(a.chains, b.chains);
  const RebuildResult again = Rebuild(a.chains, Targets(5), 32, 3);
  EXPECT_EQ(again.chains, a.chains);
  EXPECT_TRUE(again.changed.empty());
}

// Members are incarnations: a node that restarted (a new lease) is removed and appended again as
// a syncing tail; its report of a complete copy under the current version makes it serving.
TEST(PlacementTest, ARestartedNodeResyncsAndIsPromotedOnItsReport) {
  std::vector<TargetInfo> live = Targets(3);
  for (size_t i = 0; i < live.size(); ++i) live[i].incarnation = 100 + i;
  const RebuildResult first = Rebuild({}, live, 4, 3);
  for (const Chain& c : first.chains) {
    for (const ChainMember& m : c.members) EXPECT_NE(m.incarnation, 0u);
  }
  live[2].incarnation = 900;  // n2 restarted
  const RebuildResult second = Rebuild(first.chains, live, 4, 3);
  EXPECT_EQ(second.changed.size(), 4u);
  for (const Chain& c : second.chains) {
    ASSERT_EQ(c.members.size(), 3u) << c.id;
    EXPECT_EQ(c.members.back().target, "n2/0");
    EXPECT_EQ(c.members.back().incarnation, 900u);
    EXPECT_EQ(c.members.back().state, ReplicaState::kSyncing);
    EXPECT_EQ(c.version, 2u);
  }
  // Reports: chain 0 under its current version, chain 1 under an old one, chain 2 by an old
  // incarnation; only chain 0 is promoted.
  const std::vector<SyncReport> reports = {{0, "n2/0", 900, 2}, {1, "n2/0", 900, 1}, {2, "n2/0", 102, 2}};
  const RebuildResult third = Rebuild(second.chains, live, 4, 3, reports);
  EXPECT_EQ(third.changed, std::vector<uint32_t>{0});
  EXPECT_EQ(third.chains[0].members.back().state, ReplicaState::kServing);
  EXPECT_EQ(third.chains[0].version, 3u);
  EXPECT_EQ(third.chains[1].members.back().state, ReplicaState::kSyncing);
  EXPECT_EQ(third.chains[2].members.back().state, ReplicaState::kSyncing);
}

// A cold restart of every node: nobody holds a live serving incarnation, so the kept serving
// member is taken back under its new incarnation instead of the chain staying lost.
TEST(PlacementTest, TheLastServingMemberIsTakenBackUnderItsNewIncarnation) {
  std::vector<TargetInfo> live = Targets(3);
  for (size_t i = 0; i < live.size(); ++i) live[i].incarnation = 100 + i;
  const RebuildResult first = Rebuild({}, live, 2, 3);
  const std::vector<TargetInfo> none;
  const RebuildResult down = Rebuild(first.chains, none, 2, 3);
  for (const Chain& c : down.chains) EXPECT_EQ(c.members.size(), 1u);  // the last serving one, kept
  EXPECT_TRUE(down.lost.empty());
  for (size_t i = 0; i < live.size(); ++i) live[i].incarnation = 500 + i;
  const RebuildResult back = Rebuild(down.chains, live, 2, 3);
  for (const Chain& c : back.chains) {
    ASSERT_EQ(c.members.size(), 2u) << c.id;
    EXPECT_EQ(c.members[0].state, ReplicaState::kServing);
    EXPECT_GE(c.members[0].incarnation, 500u);
    EXPECT_EQ(c.members[1].state, ReplicaState::kSyncing);  // the others resync from it, one at a time
  }
  EXPECT_TRUE(back.lost.empty());
}

}  // namespace
}  // namespace cairn::cluster
