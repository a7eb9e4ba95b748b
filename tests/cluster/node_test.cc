// A node's part in the cluster (cluster/node.h) against a real etcd: the cluster secret's rules,
// bounded waits for etcd and for an id held by a live lease, a new cluster formed with every node
// serving, the status as one revision shows it, leaving at once, and the gauges of /metrics.
#include "cluster/node.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cluster/etcd.h"
#include "cluster/etcd_harness.h"
#include "common/metrics.h"
#include "test_util.h"

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (value == nullptr) {
      ::unsetenv(name);
    } else {
      ::setenv(name, value, 1);
    }
  }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(ClusterSecretTest, FromFileOrEnvironmentAndLongEnough) {
  test::TempDir dir;
  const std::string file = dir.path() + "/secret";
  std::ofstream(file) << "0123456789abcdef0123\n";
  auto secret = LoadClusterSecret(file);
  ASSERT_OK(secret);
  EXPECT_EQ(*secret, "0123456789abcdef0123");  // the newline is not part of it

  std::ofstream(file, std::ios::trunc) << "0123456789abcde\n";  // 15 bytes
  EXPECT_TRUE(LoadClusterSecret(file).status().IsConfigError());
  EXPECT_TRUE(LoadClusterSecret(dir.path() + "/absent").status().IsNotFound());

  {
    ScopedEnv env("CAIRN_CLUSTER_SECRET", nullptr);
    Status none = LoadClusterSecret("").status();
    EXPECT_TRUE(none.IsConfigError()) << none;
    EXPECT_NE(none.message().find("CAIRN_CLUSTER_SECRET"), std::string::npos) << none;
  }
  {
    ScopedEnv env("CAIRN_CLUSTER_SECRET", "from-the-environment");
    auto from_env = LoadClusterSecret("");
    ASSERT_OK(from_env);
    EXPECT_EQ(*from_env, "from-the-environment");
  }
  {
    ScopedEnv env("CAIRN_CLUSTER_SECRET", "short");
    EXPECT_TRUE(LoadClusterSecret("").status().IsConfigError());
  }
}

TEST(NodeConnectTest, GivesUpOnAnUnreachableEtcdWithinItsWait) {
  const test::DeadEndpoint dead;
  ASSERT_FALSE(dead.url().empty());
  NodeOptions o;
  o.etcd_endpoints = {dead.url()};
  o.node_id = "n1";
  o.data_dir = "/nonexistent-unused";
  o.start_timeout = 1500ms;
  const auto start = Clock::now();
  auto node = Node::Connect(o);
  const auto took = Clock::now() - start;
  ASSERT_FALSE(node.ok());
  EXPECT_TRUE(node.status().IsTimeout()) << node.status();
  EXPECT_LT(took, 5s);
}

class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(etcd_.Start()); }

  test::TempDir dir_;
  int started_ = 0;

  NodeOptions Options(const std::string& id) {
    NodeOptions o;
    o.etcd_endpoints = {etcd_.endpoint()};
    o.cluster_name = "nodetest";
    o.node_id = id;
    o.rpc_address = "127.0.0.1:0";
    // Every node started gets its own directory (two runs of one id are two processes' disks).
    o.data_dir = dir_.path() + "/" + id + "-" + std::to_string(++started_);
    o.secret = "node-test-cluster-secret";
    o.zone = "z-" + id;
    o.lease_ttl = 2s;
    o.replicas = 3;
    o.chain_count = 6;
    o.start_timeout = 5s;
    o.refresh_interval = 100ms;
    return o;
  }

  std::unique_ptr<Node> Start(const NodeOptions& o) {
    auto node = Node::Connect(o);
    EXPECT_OK(node);
    if (!node.ok()) return nullptr;
    EXPECT_OK((*node)->Join("http://127.0.0.1:9/" + o.node_id));
    return std::move(*node);
  }

  // Waits (bounded) until pred(status read through `node`) holds; the last status read.
  template <typename Pred>
  ClusterStatus StatusEventually(const Node& node, Pred pred, std::chrono::milliseconds limit = 10s) {
    const auto deadline = Clock::now() + limit;
    ClusterStatus last;
    while (Clock::now() < deadline) {
      auto s = node.ReadStatus();
      if (s.ok()) {
        last = *s;
        if (pred(last)) return last;
      }
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "condition not met within the limit; last status:\n" << StatusJson(last);
    return last;
  }

  template <typename Pred>
  static bool Eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return pred();
  }

  static std::set<std::string> Nodes(const Chain& c) {
    std::set<std::string> out;
    for (const ChainMember& m : c.members) out.insert(m.target.substr(0, m.target.find('/')));
    return out;
  }

  test::EtcdHarness etcd_;
};

TEST_F(NodeTest, NodesStartedTogetherFormATableOfServingMembers) {
  // Joined one after another, slower than a manager's round: the table still waits for all three.
  auto n1 = Start(Options("n1"));
  std::this_thread::sleep_for(300ms);
  auto n2 = Start(Options("n2"));
  std::this_thread::sleep_for(300ms);
  auto n3 = Start(Options("n3"));
  ASSERT_TRUE(n1 && n2 && n3);
  const ClusterStatus s = StatusEventually(
      *n2, [](const ClusterStatus& st) { return st.chains.size() == 6 && st.manager.has_value() && !st.fenced; });
  ASSERT_EQ(s.nodes.size(), 3u);
  for (const Chain& c : s.chains) {
    EXPECT_EQ(Nodes(c), (std::set<std::string>{"n1", "n2", "n3"}));
    for (const ChainMember& m : c.members) EXPECT_EQ(m.state, ReplicaState::kServing) << StatusJson(s);
  }
  EXPECT_EQ(s.node, "n2");
  EXPECT_EQ(s.cluster, "nodetest");
  EXPECT_EQ(s.nodes[0].info.s3_address, "http://127.0.0.1:9/n1");
  EXPECT_EQ(s.nodes[0].info.targets, std::vector<std::string>{"n1/0"});
  EXPECT_GT(s.nodes[0].lease, 0);
  EXPECT_TRUE(Eventually([&] { return n1->is_manager() + n2->is_manager() + n3->is_manager() == 1; }));

  // The JSON the admin API answers.
  const auto j = nlohmann::json::parse(StatusJson(s));
  EXPECT_EQ(j["mode"], "cluster");
  EXPECT_EQ(j["manager"], *s.manager);
  EXPECT_EQ(j["nodes"].size(), 3u);
  EXPECT_EQ(j["chains"].size(), 6u);
  EXPECT_EQ(j["chains"][0]["members"][0]["state"], "serving");
  EXPECT_TRUE(j["resync"].is_array());
  EXPECT_EQ(j["fenced"], false);
}

TEST_F(NodeTest, LeavingIsSeenAtOnceAndTheOfficePassesOn) {
  std::map<std::string, std::unique_ptr<Node>> nodes;
  for (const char* id : {"n1", "n2", "n3"}) nodes[id] = Start(Options(id));
  ClusterStatus s = StatusEventually(
      *nodes["n1"], [](const ClusterStatus& st) { return st.chains.size() == 6 && st.manager.has_value(); });
  const std::string manager = *s.manager;
  nodes[manager]->Leave();
  EXPECT_TRUE(nodes[manager]->fenced());
  EXPECT_FALSE(nodes[manager]->is_manager());
  const std::string witness = manager == "n1" ? "n2" : "n1";
  // Revoked, not expired: gone without waiting for the TTL.
  auto now = nodes[witness]->ReadStatus();
  ASSERT_OK(now);
  EXPECT_EQ(now->nodes.size(), 2u);
  s = StatusEventually(*nodes[witness], [&](const ClusterStatus& st) {
    return st.manager.has_value() && *st.manager != manager &&
           std::none_of(st.chains.begin(), st.chains.end(), [&](const Chain& c) { return Nodes(c).count(manager); });
  });
  EXPECT_TRUE(Eventually([&] { return nodes[*s.manager]->is_manager(); }));
}

TEST_F(NodeTest, ANodeConfiguredForAnotherTableShapeDoesNotJoin) {
  auto n1 = Start(Options("n1"));
  ASSERT_NE(n1, nullptr);
  for (auto change : {+[](NodeOptions& o) { o.chain_count = 7; }, +[](NodeOptions& o) { o.replicas = 2; }}) {
    NodeOptions o = Options("n2");
    change(o);
    auto node = Node::Connect(o);
    ASSERT_OK(node);
    const Status s = (*node)->Join("http://127.0.0.1:9/n2");
    EXPECT_TRUE(s.IsConfigError()) << s;
  }
  EXPECT_OK(Start(Options("n3")) != nullptr ? Status::OK() : Status::Internal("n3 with the same shape must join"));
}

// A cluster formed by a version that kept all the metadata on chain 0 (its config records no
// metadata layout) is refused: this version would look for buckets on other chains.
TEST_F(NodeTest, ANodeOfAnotherMetadataLayoutDoesNotJoin) {
  EtcdOptions eo;
  eo.endpoints = {etcd_.endpoint()};
  auto etcd = EtcdClient::Connect(eo);
  ASSERT_OK(etcd);
  ASSERT_OK((*etcd)->Put("/cairn/nodetest/config", R"({"chains":6,"replicas":3})"));
  auto node = Node::Connect(Options("n1"));
  ASSERT_OK(node);
  const Status s = (*node)->Join("http://127.0.0.1:9/n1");
  EXPECT_TRUE(s.IsConfigError()) << s;
  EXPECT_NE(s.ToString().find("layout"), std::string::npos) << s;
}

TEST_F(NodeTest, AnIdHeldByALiveLeaseWaitsThenFails) {
  auto first = Start(Options("n1"));
  ASSERT_TRUE(first);
  NodeOptions o = Options("n1");
  o.start_timeout = 1500ms;
  auto second = Node::Connect(o);
  ASSERT_OK(second);
  const auto start = Clock::now();
  Status s = (*second)->Join("http://127.0.0.1:9/other");
  EXPECT_TRUE(s.IsAlreadyExists()) << s;
  EXPECT_GE(Clock::now() - start, 1s);
  EXPECT_TRUE((*second)->fenced());
}

TEST_F(NodeTest, AloneAfterTheFormationWaitTheTableIsShort) {
  NodeOptions o = Options("n1");
  o.formation_wait = 500ms;
  auto n1 = Start(o);
  ASSERT_TRUE(n1);
  const ClusterStatus s = StatusEventually(*n1, [](const ClusterStatus& st) { return st.chains.size() == 6; });
  for (const Chain& c : s.chains) EXPECT_EQ(Nodes(c), std::set<std::string>{"n1"});
  EXPECT_TRUE(Eventually([&] { return n1->is_manager(); }));

  // The gauges of /metrics follow the view.
  auto& reg = metrics::Registry::Default();
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline && reg.GetGauge("cairn_cluster_chains", "")->Value() != 6) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(reg.GetGauge("cairn_cluster_nodes", "")->Value(), 1);
  EXPECT_EQ(reg.GetGauge("cairn_cluster_chains", "")->Value(), 6);
  EXPECT_EQ(reg.GetGauge("cairn_cluster_is_manager", "")->Value(), 1);
  EXPECT_EQ(reg.GetGauge("cairn_cluster_fenced", "")->Value(), 0);
}

}  // namespace
}  // namespace cairn::cluster
