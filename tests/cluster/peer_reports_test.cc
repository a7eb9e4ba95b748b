// Peer reports and evictions (cluster/peer_reports.h): their etcd records, which node goes, and
// that an evicted node is kept out of new placements.
#include "cluster/peer_reports.h"

#include <gtest/gtest.h>

namespace cairn::cluster {
namespace {

const std::string kPrefix = "/cairn/t/";

// Nodes n1..n<count>, one target each, incarnation 10 + i.
std::vector<TargetInfo> Live(int count) {
  std::vector<TargetInfo> out;
  for (int i = 1; i <= count; ++i) {
    const std::string node = "n" + std::to_string(i);
    out.push_back({node + "/0", node, "", static_cast<uint64_t>(10 + i)});
  }
  return out;
}

// `reporter` reports node `target`'s target under its current incarnation in Live().
PeerReport Report(int reporter, int target) {
  return {"n" + std::to_string(reporter), "n" + std::to_string(target) + "/0", static_cast<uint64_t>(10 + target)};
}

TEST(PeerReports, RecordsRoundTrip) {
  const PeerReport report{"n1", "n3/0", 7587};
  EtcdKv kv{PeerReportKey(kPrefix, report.reporter, report.target), EncodePeerReport(report)};
  EXPECT_EQ(kv.key, "/cairn/t/reports/n1/n3/0");
  auto decoded = DecodePeerReport(kPrefix, kv);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, report);

  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"/cairn/t/reports/n1", "{\"incarnation\": 1}"},    // no target
           {"/cairn/t/reports//n3/0", "{\"incarnation\": 1}"},  // no reporter
           {"/cairn/t/reports/n1/n3/0", "{\"incarnation\": -1}"},
           {"/cairn/t/reports/n1/n3/0", "not json"},
           {"/cairn/u/reports/n1/n3/0", "{\"incarnation\": 1}"}}) {
    EXPECT_TRUE(DecodePeerReport(kPrefix, EtcdKv{key, value}).status().IsCorruption()) << key << " " << value;
  }

  const Eviction eviction{"n3", 7587, 1700000000000, 0, 0};
  EtcdKv ekv{EvictionKey(kPrefix, "n3"), EncodeEviction(eviction), 41, 42};
  auto back = DecodeEviction(kPrefix, ekv);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->node, "n3");
  EXPECT_EQ(back->lease, 7587);
  EXPECT_EQ(back->until_ms, 1700000000000u);
  EXPECT_EQ(back->create_revision, 41);
  EXPECT_EQ(back->mod_revision, 42);
  EXPECT_TRUE(DecodeEviction(kPrefix, EtcdKv{"/cairn/t/evict/", "{}"}).status().IsCorruption());
  EXPECT_TRUE(DecodeEviction(kPrefix, EtcdKv{"/cairn/t/evict/n3", "{\"lease\": 1}"}).status().IsCorruption());
}

TEST(PeerReports, NoReportsNoEviction) { EXPECT_EQ(ChooseEviction({}, Live(3)), std::nullopt); }

TEST(PeerReports, NodeCutOffFromItsPeersGoes) {
  // n3 cannot reach n1 and n2, nor they it: each reports the other side.
  EXPECT_EQ(ChooseEviction({Report(1, 3), Report(2, 3), Report(3, 1), Report(3, 2)}, Live(3)), "n3");
  // Only its peers' reports (n3's own never left it).
  EXPECT_EQ(ChooseEviction({Report(1, 3), Report(2, 3)}, Live(3)), "n3");
  // Only its own reports: it cannot reach two nodes that reach each other.
  EXPECT_EQ(ChooseEviction({Report(3, 1), Report(3, 2)}, Live(3)), "n3");
}

TEST(PeerReports, OneBrokenLinkEvictsOneEndOnly) {
  // n1 and n3 cannot reach each other, both report: one of them goes, the same every time.
  EXPECT_EQ(ChooseEviction({Report(3, 1), Report(1, 3)}, Live(3)), "n3");
  EXPECT_EQ(ChooseEviction({Report(1, 3), Report(3, 1)}, Live(3)), "n3");
  // One way only: the reported end goes.
  EXPECT_EQ(ChooseEviction({Report(2, 1)}, Live(3)), "n1");
}

TEST(PeerReports, ReportsThatDoNotCountAreIgnored) {
  std::vector<TargetInfo> live = Live(3);
  // The target registered again since (another incarnation): the report is about a node gone.
  PeerReport stale = Report(1, 3);
  stale.incarnation = 99;
  EXPECT_EQ(ChooseEviction({stale}, live), std::nullopt);
  // A reporter that is not live, a target not live, a node reporting itself.
  EXPECT_EQ(ChooseEviction({Report(4, 3)}, live), std::nullopt);
  EXPECT_EQ(ChooseEviction({Report(1, 4)}, live), std::nullopt);
  EXPECT_EQ(ChooseEviction({Report(2, 2)}, live), std::nullopt);
  // The stale report does not count towards n3's reporters: n3 is reported by n2 alone, and n2
  // by n3 alone, so one link (n2, n3) is broken and its target goes.
  EXPECT_EQ(ChooseEviction({stale, Report(2, 3), Report(3, 2)}, live), "n3");
}

TEST(PeerReports, EvictedNodeIsNotPlacedAgain) {
  // n3 evicted: it registered again, but the chains short of a member do not get it.
  const std::vector<TargetInfo> live = Live(4);
  RebuildResult first = Rebuild({}, live, 8, 3);
  std::vector<Chain> without_n3 = first.chains;
  for (Chain& c : without_n3) {
    std::erase_if(c.members, [](const ChainMember& m) { return m.target == "n3/0"; });
  }
  const RebuildResult r = Rebuild(without_n3, live, 8, 3, {}, {"n3"});
  for (const Chain& c : r.chains) {
    for (const ChainMember& m : c.members) EXPECT_NE(m.target, "n3/0") << "chain " << c.id;
    EXPECT_EQ(c.members.size(), 3u) << "chain " << c.id << ": n4 takes the place";
  }
  // With n4 evicted too, the chains run short rather than take either.
  const RebuildResult shorter = Rebuild(without_n3, live, 8, 3, {}, {"n3", "n4"});
  EXPECT_FALSE(shorter.short_chains.empty());
}

}  // namespace
}  // namespace cairn::cluster
