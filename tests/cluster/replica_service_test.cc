// A node's replicas joined to the cluster (cluster/replica_service.h), against a real etcd: three
// nodes register, the manager builds the chains, every node's replicas follow the table; writes
// through any node's client reach every replica; a node that leaves is removed from its chains
// and writes go on; the node that returns (a new incarnation, its old disk) is appended as a
// syncing tail, copies its predecessor, reports through etcd, is promoted by the manager, and
// then holds what its peers hold.
#include "cluster/replica_service.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "cluster/etcd_harness.h"
#include "cluster/manager.h"
#include "cluster/membership.h"
#include "common/crc32c.h"
#include "replication/blob_store.h"
#include "replication/replica_store.h"
#include "test_util.h"

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kSecret = "replica-service-test-secret-0123";

using test::WaitFor;

class ReplicaServiceTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<ReplicaService> replicas;
    std::unique_ptr<Membership> membership;
    std::unique_ptr<Manager> manager;
  };

  void SetUp() override {
    ASSERT_OK(etcd_.Start());
    EtcdOptions o;
    o.endpoints = {etcd_.endpoint()};
    o.request_timeout = 1000ms;
    auto client = EtcdClient::Connect(o);
    ASSERT_OK(client);
    client_ = std::move(*client);
    mopts_.prefix = options_.prefix = "/cairn/rs/";
    mopts_.ttl = 2s;
    mopts_.margin = 600ms;
    options_.chain_count = 4;
    options_.replicas = 3;
    options_.interval = 100ms;
  }

  void StartNode(const std::string& id, replication::BlobStore* blobs = nullptr,
                 std::chrono::milliseconds forget_after = 60s) {
    Node node;
    ReplicaServiceOptions r;
    r.blobs = blobs;
    r.forget_after = forget_after;
    // Blob ids of these tests name their chain: "c<chain>-...".
    r.chain_of_blob = [](const std::string& blob) { return static_cast<uint32_t>(std::stoul(blob.substr(1))); };
    r.prefix = options_.prefix;
    r.node_id = id;
    r.rpc_listen = "127.0.0.1:0";
    r.secret = kSecret;
    r.data_dir = dir_.path() + "/" + id;
    r.poll = 100ms;
    auto replicas = ReplicaService::Start(client_.get(), r);
    ASSERT_OK(replicas);
    node.replicas = std::move(*replicas);
    auto membership =
        Membership::Join(client_.get(), NodeInfo{id, node.replicas->rpc_address(), "", "", {id + "/0"}}, mopts_);
    ASSERT_OK(membership);
    node.membership = std::move(*membership);
    node.replicas->Run(node.membership.get());
    Membership* m = node.membership.get();
    auto manager = Manager::Start(
        client_.get(), id, [m] { return m->lease_id(); }, options_);
    ASSERT_OK(manager);
    node.manager = std::move(*manager);
    nodes_[id] = std::move(node);
  }
  void StopNode(const std::string& id) {
    Node& n = nodes_.at(id);
    n.manager.reset();
    n.replicas.reset();
    n.membership.reset();
    nodes_.erase(id);
  }

  std::vector<Chain> Table() {
    auto r = client_->GetPrefix(options_.prefix + "chains/");
    if (!r.ok()) return {};
    auto table = DecodeChainTable(options_.prefix, r->kvs);
    return table.ok() ? std::move(*table) : std::vector<Chain>{};
  }
  bool AllChains(const std::function<bool(const Chain&)>& pred) {
    const auto t = Table();
    return t.size() == options_.chain_count && std::all_of(t.begin(), t.end(), pred);
  }
  static bool FullAndServing(const Chain& c) {
    return c.members.size() == 3 && std::all_of(c.members.begin(), c.members.end(),
                                                [](const ChainMember& m) { return m.state == ReplicaState::kServing; });
  }

  // Every listed node's replica of every chain: ready, at the same applied sequence, same records.
  bool Converged(const std::vector<std::string>& ids) {
    for (uint32_t chain = 0; chain < options_.chain_count; ++chain) {
      std::optional<std::pair<uint64_t, uint64_t>> first;
      for (const std::string& id : ids) {
        const auto replicas = nodes_.at(id).replicas->Replicas();
        auto it =
            std::find_if(replicas.begin(), replicas.end(), [&](const ReplicaStatus& r) { return r.chain == chain; });
        if (it == replicas.end() || it->phase != "ready" || it->committed != it->last_applied) return false;
        const std::pair<uint64_t, uint64_t> here{it->last_applied, it->records};
        if (first && *first != here) return false;
        first = here;
      }
    }
    return true;
  }

  test::EtcdHarness etcd_;
  test::TempDir dir_;
  std::unique_ptr<EtcdClient> client_;
  MembershipOptions mopts_;
  ManagerOptions options_;
  std::map<std::string, Node> nodes_;
};

TEST_F(ReplicaServiceTest, NodesFollowTheTableAndANodeThatReturnsResyncs) {
  StartNode("n1");
  StartNode("n2");
  StartNode("n3");
  // Formation takes a few manager rounds; on a loaded machine (ctest runs the end-to-end suites
  // beside this) it has been seen past 15 s.
  ASSERT_TRUE(WaitFor([&] { return AllChains(FullAndServing); }, 45s));

  std::map<std::string, std::string> acked;
  auto write_some = [&](const std::string& via, int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string key = "key" + std::to_string(i);
      const std::string value = "value" + std::to_string(i) + "@" + via;
      auto r = nodes_.at(via).replicas->client().Write(static_cast<uint32_t>(i) % options_.chain_count, key, value);
      ASSERT_TRUE(r.ok()) << r.status();
      acked[key] = value;
    }
  };
  write_some("n1", 0, 40);
  write_some("n3", 40, 60);
  ASSERT_TRUE(WaitFor([&] { return Converged({"n1", "n2", "n3"}); }));

  // n2 leaves: its chains go on with n1 and n3.
  StopNode("n2");
  ASSERT_TRUE(WaitFor([&] {
    return AllChains([](const Chain& c) {
      return c.members.size() == 2 &&
             std::none_of(c.members.begin(), c.members.end(), [](const ChainMember& m) { return m.target == "n2/0"; });
    });
  }));
  write_some("n1", 60, 100);

  // n2 returns on its old directory: appended as syncing tail, copies, reports, promoted.
  StartNode("n2");
  ASSERT_TRUE(WaitFor([&] { return AllChains(FullAndServing); }, 20s)) << "n2 was not promoted in every chain";
  write_some("n2", 100, 120);
  ASSERT_TRUE(WaitFor([&] { return Converged({"n1", "n2", "n3"}); }));

  for (const auto& [key, value] : acked) {
    const uint32_t chain = static_cast<uint32_t>(std::stoi(key.substr(3))) % options_.chain_count;
    for (const char* via : {"n1", "n2", "n3"}) {
      auto r = nodes_.at(via).replicas->client().Read(chain, key);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->value, value) << key << " via " << via;
    }
  }
}

// A node cut off from etcd fences its replicas on its lease's clock, though every etcd call of its
// refresh round is stuck: no read or write is answered until etcd is back.
TEST_F(ReplicaServiceTest, ANodeCutOffFromEtcdFencesItsReplicas) {
  options_.replicas = 1;
  options_.chain_count = 1;
  StartNode("n1");
  ASSERT_TRUE(WaitFor([&] { return AllChains([](const Chain& c) { return c.members.size() == 1; }); }));
  replication::ChainClient& client = nodes_.at("n1").replicas->client();
  ASSERT_TRUE(client.Write(0, "k", std::string("v")).ok());
  auto fenced = [&] {
    auto r = nodes_.at("n1").replicas->Replicas();
    return !r.empty() && r[0].fenced;
  };
  EXPECT_FALSE(fenced());
  etcd_.Pause();
  // Fenced before the lease could expire (TTL 2 s): TTL - margin after the last renewal.
  EXPECT_TRUE(WaitFor([&] { return fenced(); }, 2000ms)) << "still unfenced with etcd gone";
  EXPECT_FALSE(client.Read(0, "k").ok()) << "a fenced replica answered a read";
  etcd_.Resume();
  // Back: the lease may have expired meanwhile (a new incarnation, and the chain's only member
  // taken back) or not; either way the node serves again.
  ASSERT_TRUE(WaitFor([&] { return !fenced(); }, 20s));
  auto r = client.Read(0, "k");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->value, std::string("v"));
}

// The last serving member of a chain whose node lost its lease and registered again is taken
// back under the new incarnation, restarts from its disk, and serves what it held.
TEST_F(ReplicaServiceTest, TheLastServingMemberIsTakenBackAfterItsLeaseIsLost) {
  options_.replicas = 1;
  options_.chain_count = 2;
  StartNode("n1");
  ASSERT_TRUE(WaitFor([&] { return AllChains([](const Chain& c) { return c.members.size() == 1; }); }));
  replication::ChainClient& client = nodes_.at("n1").replicas->client();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.Write(i % 2, "k" + std::to_string(i), "v" + std::to_string(i)).ok());
  const int64_t old_lease = nodes_.at("n1").membership->lease_id();
  ASSERT_OK(client_->LeaseRevoke(old_lease));
  ASSERT_TRUE(WaitFor([&] { return nodes_.at("n1").membership->lease_id() != old_lease; }));
  const uint64_t incarnation = static_cast<uint64_t>(nodes_.at("n1").membership->lease_id());
  ASSERT_TRUE(WaitFor([&] {
    return AllChains([&](const Chain& c) {
      return c.members.size() == 1 && c.members[0].incarnation == incarnation &&
             c.members[0].state == ReplicaState::kServing;
    });
  })) << "the member was not taken back under its new incarnation";
  ASSERT_TRUE(WaitFor([&] {
    auto r = nodes_.at("n1").replicas->Replicas();
    return r.size() == 2 && r[0].phase == "ready" && r[1].phase == "ready";
  })) << "the replicas did not restart from their disk";
  for (int i = 0; i < 20; ++i) {
    auto r = client.Read(i % 2, "k" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->value, "v" + std::to_string(i));
  }
  ASSERT_TRUE(client.Write(0, "after", std::string("x")).ok());
}

// A node that returns to a cluster whose chains are full without it is named in none: after
// `forget_after` it forgets them, replicas and stored state.
TEST_F(ReplicaServiceTest, ChainsANodeLeftAreForgotten) {
  for (const std::string id : {"n1", "n2", "n3", "n4"}) StartNode(id);
  ASSERT_TRUE(WaitFor([&] { return AllChains(FullAndServing); }));
  auto names = [](const Chain& c, const std::string& node) {
    return std::any_of(c.members.begin(), c.members.end(),
                       [&](const ChainMember& m) { return m.target == node + "/0"; });
  };
  const std::vector<Chain> formed = Table();
  ASSERT_TRUE(std::any_of(formed.begin(), formed.end(), [&](const Chain& c) { return names(c, "n4"); }))
      << "n4 should hold some chain";
  StopNode("n4");
  ASSERT_TRUE(WaitFor([&] { return AllChains([&](const Chain& c) { return FullAndServing(c) && !names(c, "n4"); }); },
                      30s));
  // Back on its directory, it loads what it held, but the table names it nowhere.
  StartNode("n4", nullptr, 300ms);
  ASSERT_TRUE(WaitFor([&] { return nodes_.at("n4").replicas->chains_forgotten() == options_.chain_count; }));
  EXPECT_TRUE(AllChains([&](const Chain& c) { return FullAndServing(c) && !names(c, "n4"); }));
  StopNode("n4");
  auto store = replication::ReplicaStore::Open(dir_.path() + "/n4");
  ASSERT_OK(store);
  auto loaded = (*store)->LoadAll();
  ASSERT_OK(loaded);
  EXPECT_TRUE(loaded->chains.empty()) << loaded->chains.size() << " chains still stored";
}

replication::Blob TestBlob(const std::string& id) {
  std::string bytes(1000, 'x');
  bytes += id;
  const uint32_t crc = crc32c::Value(bytes.data(), bytes.size());
  return replication::Blob(id, std::move(bytes), crc);
}

// Local extras: blobs of a node's store that none of its replicas names are deleted once two
// passes in a row found them unnamed; named blobs, and one unnamed at one pass only, stay.
TEST_F(ReplicaServiceTest, LocalExtrasGoAfterTwoPassesNamedBlobsStay) {
  std::map<std::string, replication::MemoryBlobStore> stores;
  for (const std::string id : {"n1", "n2", "n3"}) StartNode(id, &stores[id]);
  ASSERT_TRUE(WaitFor([&] { return AllChains(FullAndServing); }));
  ReplicaService& n1 = *nodes_.at("n1").replicas;
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK(n1.client().PutBlob(1, TestBlob("c1-named" + std::to_string(i))));
    ASSERT_OK(n1.client().PutBlob(2, TestBlob("c2-named" + std::to_string(i))));
  }
  ASSERT_TRUE(WaitFor([&] { return stores["n1"].size() == 8u; }));
  // Extras: one of a chain this node holds (its replica does not name it), one of a chain id no
  // replica here has.
  replication::MemoryBlobStore& store = stores["n1"];
  const replication::Blob extra = TestBlob("c1-extra"), stray = TestBlob("c9-stray");
  ASSERT_OK(store.PutMany({&extra, &stray}));
  ASSERT_TRUE(WaitFor([&] { return n1.SweepExtras().ok(); }));  // the first pass: candidates only
  EXPECT_EQ(store.size(), 10u);
  const replication::Blob late = TestBlob("c2-late");
  ASSERT_OK(store.PutMany({&late}));
  auto second = n1.SweepExtras();
  ASSERT_OK(second);
  EXPECT_EQ(second->blobs, 11u);
  EXPECT_EQ(second->unnamed, 3u);
  EXPECT_EQ(second->dropped, 2u);
  ASSERT_TRUE(WaitFor([&] { return store.size() == 9u; }));  // deleted by the node's disk thread
  std::vector<std::string> ids = store.Ids();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), "c1-extra"), 0);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), "c9-stray"), 0);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), "c2-late"), 1) << "unnamed at one pass only";
  auto third = n1.SweepExtras();
  ASSERT_OK(third);
  EXPECT_EQ(third->dropped, 1u);
  ASSERT_TRUE(WaitFor([&] { return store.size() == 8u; }));
  // Every named blob is still here and reads back through the chain.
  for (int i = 0; i < 4; ++i) {
    for (const std::string chain : {"c1", "c2"}) {
      const std::string id = chain + "-named" + std::to_string(i);
      auto bytes = n1.client().ReadBlob(chain == "c1" ? 1 : 2, id, 0, 1000);
      ASSERT_TRUE(bytes.ok()) << id << ": " << bytes.status();
    }
  }
  ids = store.Ids();
  EXPECT_EQ(ids.size(), 8u);
  for (const std::string& id : ids) EXPECT_NE(id.find("-named"), std::string::npos) << id;
}

}  // namespace
}  // namespace cairn::cluster
