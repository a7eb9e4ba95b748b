// Chain replication over real sockets and real disks: three ChainHosts on loopback in one
// process, the test playing the manager (it writes the chain views), clients writing and reading
// through ChainClient. A host destroyed mid-load is a crashed node; one started again on the
// same directory is a node that returns and resyncs.
#include "replication/chain_host.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/crc32c.h"
#include "replication/chain_client.h"
#include "test_util.h"

namespace cairn::replication {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSecret = "chain-host-test-secret-0123456789";

using test::WaitFor;

class Cluster {
 public:
  explicit Cluster(std::string root, size_t nodes = 3, ReplicaOptions replica = ChainHostOptions{}.replica)
      : root_(std::move(root)), replica_(replica) {
    for (NodeId n = 1; n <= nodes; ++n) StartNode(n, /*incarnation=*/1, /*bootstrap=*/true);
  }
  ~Cluster() {
    clients_.clear();
    hosts_.clear();
  }

  // Starts node `n` (again) on its directory with the chains in `chains_`.
  void StartNode(NodeId n, uint64_t incarnation, bool bootstrap) {
    ChainHostOptions options;
    options.node = n;
    options.name = "n" + std::to_string(n);
    options.secret = kSecret;
    options.data_dir = root_ + "/n" + std::to_string(n);
    options.replica = replica_;
    auto& blobs = blobs_[n];  // the node's engine: it survives the node's restarts
    if (!blobs) blobs = std::make_unique<MemoryBlobStore>();
    options.blobs = blobs.get();
    options.on_report = [this](const ManagerReport& report) {
      std::lock_guard lock(mu_);
      reports_.push_back(report);
    };
    auto host = ChainHost::Start(options);
    ASSERT_TRUE(host.ok()) << host.status();
    {
      std::lock_guard lock(mu_);
      peers_[n] = PeerAddress{options.name, (*host)->address()};
      incarnation_[n] = incarnation;
    }
    hosts_[n] = std::move(*host);
    for (ChainId c : chains_) {
      hosts_[n]->AddChain(c, incarnation,
                          bootstrap ? ChainHost::StartMode::kFounding : ChainHost::StartMode::kRestarted);
    }
    PublishPeers();
  }
  void KillNode(NodeId n) { hosts_.erase(n); }

  void PublishPeers() {
    std::map<NodeId, PeerAddress> peers;
    {
      std::lock_guard lock(mu_);
      peers = peers_;
    }
    for (auto& [n, host] : hosts_) host->SetPeers(peers);
  }

  // The manager's write: a new version of `chain` with these members (node, serving).
  void SetView(ChainId chain, const std::vector<std::pair<NodeId, bool>>& members) {
    ChainView view;
    {
      std::lock_guard lock(mu_);
      view.chain_id = chain;
      view.version = ++versions_[chain];
      for (const auto& [node, serving] : members) view.members.push_back({{node, incarnation_[node]}, serving});
      views_[chain] = view;
    }
    for (auto& [n, host] : hosts_) host->SetView(view);
  }
  std::optional<ChainView> View(ChainId chain) {
    std::lock_guard lock(mu_);
    auto it = views_.find(chain);
    if (it == views_.end()) return std::nullopt;
    return it->second;
  }

  ChainClient& Client(const std::string& name = "client", const std::string& secret = kSecret,
                      std::chrono::milliseconds deadline = 15s) {
    ChainClientOptions options;
    options.name = name;
    options.secret = secret;
    options.deadline = deadline;
    options.attempt_timeout = 500ms;
    options.view = [this](ChainId c) { return View(c); };
    options.address = [this](NodeId n) -> std::optional<PeerAddress> {
      std::lock_guard lock(mu_);
      auto it = peers_.find(n);
      if (it == peers_.end()) return std::nullopt;
      return it->second;
    };
    clients_.push_back(std::make_unique<ChainClient>(options));
    return *clients_.back();
  }

  PeerAddress Peer(NodeId n) {
    std::lock_guard lock(mu_);
    return peers_.at(n);
  }

  std::vector<ManagerReport> Reports() {
    std::lock_guard lock(mu_);
    return reports_;
  }

  ChainHost& host(NodeId n) { return *hosts_.at(n); }
  MemoryBlobStore& blobs(NodeId n) { return *blobs_.at(n); }
  // A node whose disk was replaced: its replica store and its blobs are gone.
  void WipeNode(NodeId n) {
    hosts_.erase(n);
    std::filesystem::remove_all(root_ + "/n" + std::to_string(n));
    blobs_.erase(n);
  }
  std::vector<ChainId> chains_ = {1};

 private:
  std::string root_;
  ReplicaOptions replica_;
  std::mutex mu_;
  std::map<NodeId, PeerAddress> peers_;
  std::map<NodeId, uint64_t> incarnation_;
  std::map<ChainId, uint64_t> versions_;
  std::map<ChainId, ChainView> views_;
  std::vector<ManagerReport> reports_;
  std::map<NodeId, std::unique_ptr<MemoryBlobStore>> blobs_;  // outlive their hosts
  std::map<NodeId, std::unique_ptr<ChainHost>> hosts_;
  std::vector<std::unique_ptr<ChainClient>> clients_;
};

std::string ValueFor(const std::string& key, size_t size = 100) {
  std::string out;
  out.reserve(size);
  while (out.size() < size) out += key + "|";
  out.resize(size);
  return out;
}

// Waits until every listed node's replica of `chain` is quiescent and returns their applied
// states.
std::vector<StoreState> Settled(Cluster& cluster, ChainId chain, const std::vector<NodeId>& nodes) {
  std::vector<StoreState> out;
  for (NodeId n : nodes) {
    std::optional<ReplicaInfo> info;
    EXPECT_TRUE(WaitFor([&] {
      info = cluster.host(n).Inspect(chain);
      return info && info->quiescent && info->durable.store == info->applied;
    })) << "node "
        << n << " did not settle";
    if (info) out.push_back(info->applied);
  }
  return out;
}

TEST(ChainHost, WritesReachEveryReplicaDurably) {
  test::TempDir dir;
  Cluster cluster(dir.path());
  cluster.SetView(1, {{1, true}, {2, true}, {3, true}});
  ChainClient& client = cluster.Client();
  for (int i = 0; i < 200; ++i) {
    const std::string key = "k" + std::to_string(i);
    auto written = client.Write(1, key, ValueFor(key));
    ASSERT_TRUE(written.ok()) << written.status();
    EXPECT_FALSE(KvStateMachine::Existed(written->result));
  }
  auto deleted = client.Write(1, "k7", std::nullopt);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(KvStateMachine::Existed(deleted->result));
  for (int i = 0; i < 200; ++i) {
    const std::string key = "k" + std::to_string(i);
    auto read = client.Read(1, key);
    ASSERT_TRUE(read.ok()) << read.status();
    if (i == 7) {
      EXPECT_FALSE(read->value.has_value());
    } else {
      EXPECT_EQ(read->value, ValueFor(key));
    }
  }
  auto states = Settled(cluster, 1, {1, 2, 3});
  ASSERT_EQ(states.size(), 3u);
  EXPECT_EQ(states[0].last_seq, 201u);
  EXPECT_EQ(states[0], states[1]);
  EXPECT_EQ(states[0], states[2]);
}

TEST(ChainHost, RetriedOperationAppliesOnce) {
  test::TempDir dir;
  Cluster cluster(dir.path());
  cluster.SetView(1, {{1, true}, {2, true}, {3, true}});
  ChainClient& client = cluster.Client();
  auto first = client.Write(1, "a", std::string("1"), /*op=*/42);
  ASSERT_TRUE(first.ok()) << first.status();
  auto retry = client.Write(1, "a", std::string("1"), /*op=*/42);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->seq, first->seq);
  auto states = Settled(cluster, 1, {1, 2, 3});
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states[0].last_seq, 1u);
}

TEST(ChainHost, StateSurvivesRestartFromDisk) {
  test::TempDir dir;
  DurableState before;
  StoreState before_applied;
  // Results are kept 5 ms: most are forgotten as the writes go, and the disk must agree.
  ReplicaOptions replica = ChainHostOptions{}.replica;
  replica.op_retention_ms = 5;
  {
    Cluster cluster(dir.path(), 3, replica);
    cluster.SetView(1, {{1, true}, {2, true}, {3, true}});
    ChainClient& client = cluster.Client();
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(client.Write(1, "k" + std::to_string(i % 20), ValueFor("v" + std::to_string(i))).ok());
      if (i % 10 == 0) std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(client.Write(1, "k3", std::nullopt).ok());
    Settled(cluster, 1, {1, 2, 3});
    before = cluster.host(2).Inspect(1)->durable;
    before_applied = cluster.host(2).Inspect(1)->applied;
  }
  EXPECT_EQ(before.store, before_applied) << "the disk differs from the replica's memory";
  EXPECT_LT(before.store.ops.size(), 51u) << "results older than 5 ms are forgotten";
  EXPECT_GT(before.store.stamp_ms, 0u);
  // Node 2 alone, on its directory: it holds what its replica had durably, ops included.
  ChainHostOptions options;
  options.node = 2;
  options.name = "n2";
  options.secret = kSecret;
  options.data_dir = dir.path() + "/n2";
  auto host = ChainHost::Start(options);
  ASSERT_TRUE(host.ok()) << host.status();
  (*host)->AddChain(1, /*incarnation=*/2, ChainHost::StartMode::kRestarted);
  auto info = (*host)->Inspect(1);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->durable.store, before.store);
  EXPECT_EQ(info->durable.store.last_seq, 51u);
  EXPECT_EQ(info->phase, ChainReplica::Phase::kIdle);  // serves nothing until appended and synced
}

TEST(ChainHost, WrongSecretCanNeitherWriteNorRead) {
  test::TempDir dir;
  Cluster cluster(dir.path());
  cluster.SetView(1, {{1, true}, {2, true}, {3, true}});
  ASSERT_TRUE(cluster.Client().Write(1, "kept", std::string("v")).ok());
  ChainClient& intruder = cluster.Client("intruder", "not-the-cluster-secret-at-all", 1500ms);
  EXPECT_FALSE(intruder.Write(1, "planted", std::string("x")).ok());
  EXPECT_FALSE(intruder.Read(1, "kept").ok());
  auto states = Settled(cluster, 1, {1, 2, 3});
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states[0].records.count("planted"), 0u);
}

// A client whose table has a stale address (node 1's name, node 2's address) does not take node 2
// for node 1: the handshake names who answers.
TEST(ChainHost, AClientTalksOnlyToTheNodeItNamed) {
  test::TempDir dir;
  Cluster cluster(dir.path());
  cluster.SetView(1, {{1, true}, {2, true}, {3, true}});
  ASSERT_TRUE(cluster.Client().Write(1, "k", std::string("v")).ok());
  ChainClientOptions options;
  options.name = "stale-client";
  options.secret = kSecret;
  options.deadline = 1500ms;
  options.attempt_timeout = 300ms;
  options.view = [&](ChainId c) { return cluster.View(c); };
  const PeerAddress wrong{"n1", cluster.Peer(2).rpc_address};
  options.address = [&](NodeId n) -> std::optional<PeerAddress> {
    if (n == 1) return wrong;
    return cluster.Peer(n);
  };
  ChainClient stale(options);
  EXPECT_FALSE(stale.ReadFrom(1, "k", 1).ok()) << "node 2 answered for node 1";
  auto from_2 = stale.ReadFrom(1, "k", 2);
  ASSERT_TRUE(from_2.ok()) << from_2.status();
  EXPECT_EQ(from_2->value, std::string("v"));
}

// The loopback version of the design's failure story: kill -9 of a member under load, the manager
// removes it, writes go on; the node returns, is appended as syncing tail, copies its predecessor
// (a snapshot larger than one RPC frame), reports done, is marked serving; every replica then
// holds identical data and every acknowledged write is there.
TEST(ChainHost, KilledMemberLeavesReturnsAndResyncs) {
  test::TempDir dir;
  Cluster cluster(dir.path());
  cluster.SetView(1, {{1, true}, {2, true}, {3, true}});

  std::mutex acked_mu;
  std::map<std::string, std::optional<std::string>> acked;  // key -> last acknowledged value
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<uint64_t> acked_writes{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    ChainClient& client = cluster.Client("writer" + std::to_string(w));
    writers.emplace_back([&, w, &client = client] {
      for (int i = 0; !stop; ++i) {
        const std::string key = "w" + std::to_string(w) + "/" + std::to_string(i % 40);
        // Every fifth write is a delete; some values are large, so the snapshot spans frames.
        std::optional<std::string> value;
        if (i % 5 != 4) value = ValueFor(key + "#" + std::to_string(i), i % 7 == 0 ? 300 * 1024 : 200);
        auto written = client.Write(1, key, value);
        if (written.ok()) {
          std::lock_guard lock(acked_mu);
          acked[key] = value;
          ++acked_writes;
        } else {
          ++failures;
        }
      }
    });
  }
  auto acked_count = [&] { return acked_writes.load(); };
  ASSERT_TRUE(WaitFor([&] { return acked_count() >= 40; }));
  cluster.KillNode(3);
  cluster.SetView(1, {{1, true}, {2, true}});
  std::this_thread::sleep_for(300ms);
  const uint64_t during = acked_count();
  if (!WaitFor([&] { return acked_count() > during; })) {
    for (NodeId n : {1, 2}) {
      auto info = cluster.host(n).Inspect(1);
      ADD_FAILURE() << "node " << n << " phase " << static_cast<int>(info->phase) << " v" << info->version << " L"
                    << info->last_applied << " D" << info->durable_level << " E" << info->exposed_level;
    }
    stop = true;
    for (std::thread& t : writers) t.join();
    FAIL() << "writes did not continue without node 3";
  }

  cluster.StartNode(3, /*incarnation=*/2, /*bootstrap=*/false);
  cluster.SetView(1, {{1, true}, {2, true}, {3, false}});
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const ManagerReport& r : cluster.Reports()) {
          if (r.kind == ManagerReport::Kind::kSyncDone && r.member.node == 3) return true;
        }
        return false;
      },
      20s))
      << "node 3 never reported its sync done";
  cluster.SetView(1, {{1, true}, {2, true}, {3, true}});
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);

  auto states = Settled(cluster, 1, {1, 2, 3});
  ASSERT_EQ(states.size(), 3u);
  EXPECT_EQ(states[0], states[1]);
  EXPECT_EQ(states[0], states[2]) << "the resynced replica differs from its peers";
  size_t bytes = 0;
  for (const auto& [key, record] : states[2].records) bytes += record.value ? record.value->size() : 0;
  EXPECT_GT(bytes, size_t{net::kMaxFrameBody}) << "the snapshot should have needed more than one frame";
  // What the resynced replica holds on disk is what it serves: reopen its store.
  cluster.KillNode(3);
  {
    auto store = ReplicaStore::Open(dir.path() + "/n3");
    ASSERT_TRUE(store.ok()) << store.status();
    auto loaded = (*store)->LoadAll();
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(loaded->chains[1].store, states[2]) << "node 3's disk differs from its replica";
    EXPECT_EQ(loaded->complete.count(1), 1u);
  }
  cluster.SetView(1, {{1, true}, {2, true}});
  ChainClient& reader = cluster.Client("reader");
  std::lock_guard lock(acked_mu);
  for (const auto& [key, value] : acked) {
    auto it = states[2].records.find(key);
    if (value) {
      ASSERT_NE(it, states[2].records.end()) << key;
      EXPECT_EQ(it->second.value, value) << key;
    } else if (it != states[2].records.end()) {  // a delete: its tombstone, unless purged since
      EXPECT_FALSE(it->second.value.has_value()) << key;
    }
    auto read = reader.Read(1, key);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->value, value) << key;
  }
}

Blob MakeBlob(const std::string& id, size_t size) {
  Blob blob{id, ValueFor(id, size), 0};
  blob.crc32c = crc32c::Value(blob.data().data(), blob.data().size());
  return blob;
}

TEST(ChainHost, BlobsAreStoredOnEveryReplicaReadFromAnyAndDeleted) {
  test::TempDir dir;
  Cluster cluster(dir.path());
  cluster.SetView(1, {{1, true}, {2, true}, {3, true}});
  ChainClient& client = cluster.Client();
  const Blob big = MakeBlob("big", 3u << 20);  // larger than one frame
  ASSERT_OK(client.PutBlob(1, big));
  for (int i = 0; i < 20; ++i) ASSERT_OK(client.PutBlob(1, MakeBlob("b" + std::to_string(i), 1000 + i)));
  for (NodeId n : {1, 2, 3}) {
    EXPECT_EQ(cluster.blobs(n).size(), 21u) << "node " << n;  // durable everywhere once acknowledged
    auto bytes = client.ReadBlobAt(n, 1, 1, "big", 1000, 2u << 20);
    ASSERT_OK(bytes);
    EXPECT_TRUE(*bytes == big.data().substr(1000, 2u << 20)) << "node " << n;
  }
  auto whole = client.ReadBlob(1, "b7", 0, 1007);
  ASSERT_OK(whole);
  EXPECT_EQ(*whole, MakeBlob("b7", 1007).data());
  EXPECT_TRUE(client.ReadBlob(1, "b7", 1000, 8).status().IsInvalidArgument());
  EXPECT_TRUE(client.ReadBlob(1, "nothing", 0, 1).status().IsNotFound());

  // Bytes that do not match their CRC are refused at the head, for good.
  Blob bad = MakeBlob("bad", 100);
  bad.crc32c ^= 1;
  EXPECT_TRUE(client.PutBlob(1, bad).status().IsCorruption());
  EXPECT_TRUE(client.ReadBlob(1, "bad", 0, 1).status().IsNotFound());

  // A damaged copy is never served: the reader goes on to another replica.
  cluster.blobs(1).Damage("b3");
  cluster.blobs(2).Damage("b3");
  for (int i = 0; i < 6; ++i) {
    auto bytes = client.ReadBlob(1, "b3", 0, 1003);
    ASSERT_OK(bytes);
    EXPECT_EQ(*bytes, MakeBlob("b3", 1003).data());
  }
  EXPECT_TRUE(client.ReadBlobAt(1, 1, 1, "b3", 0, 1003).status().IsCorruption());

  ASSERT_OK(client.DropBlobs(1, {"b0", "b1", "never-stored"}));
  for (NodeId n : {1, 2, 3}) {
    EXPECT_TRUE(WaitFor([&] { return cluster.blobs(n).size() == 19u; })) << "node " << n;
  }
  EXPECT_TRUE(client.ReadBlob(1, "b0", 0, 1).status().IsNotFound());
  // The state machine never sees the chain's blob keys.
  auto value = client.Read(1, BlobKey("b2"));
  ASSERT_OK(value);
  EXPECT_FALSE(value->value.has_value());
}

TEST(ChainHost, AReturningMemberCopiesTheBlobsItLacksBeforeItSyncs) {
  test::TempDir dir;
  Cluster cluster(dir.path());
  cluster.SetView(1, {{1, true}, {2, true}, {3, true}});
  ChainClient& client = cluster.Client();
  for (int i = 0; i < 10; ++i) ASSERT_OK(client.PutBlob(1, MakeBlob("old" + std::to_string(i), 5000 + i)));

  // Node 3 loses its disk; the chain goes on without it, storing and dropping blobs.
  cluster.WipeNode(3);
  cluster.SetView(1, {{1, true}, {2, true}});
  for (int i = 0; i < 10; ++i) ASSERT_OK(client.PutBlob(1, MakeBlob("new" + std::to_string(i), 7000 + i)));
  ASSERT_OK(client.DropBlobs(1, {"old0", "new0"}));
  ASSERT_OK(client.Write(1, "plain", std::string("value")));

  // It returns empty, is appended as the syncing tail, copies state and blobs, and reports.
  cluster.StartNode(3, /*incarnation=*/2, /*bootstrap=*/false);
  cluster.SetView(1, {{1, true}, {2, true}, {3, false}});
  ASSERT_OK(client.PutBlob(1, MakeBlob("during", 9000)));  // while it syncs
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const ManagerReport& r : cluster.Reports()) {
          if (r.kind == ManagerReport::Kind::kSyncDone && r.member.node == 3) return true;
        }
        return false;
      },
      20s));
  std::vector<std::string> expected;
  for (int i = 1; i < 10; ++i) expected.push_back("new" + std::to_string(i));
  for (int i = 1; i < 10; ++i) expected.push_back("old" + std::to_string(i));
  expected.push_back("during");
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(cluster.blobs(3).Ids(), expected);  // reported done only with every blob here
  // The copy's progress, as status and metrics show it: every blob the installed copy names,
  // old and new (the one written during the sync may be among them), with their bytes.
  auto progress = cluster.host(3).CopyProgress(1);
  ASSERT_TRUE(progress.has_value());
  EXPECT_TRUE(progress->finished);
  EXPECT_GE(progress->blobs, 18u);
  EXPECT_EQ(progress->blobs_done, progress->blobs);
  EXPECT_GE(progress->bytes, 9u * 5000 + 9u * 7000);
  EXPECT_EQ(progress->bytes_done, progress->bytes);
  EXPECT_FALSE(cluster.host(1).CopyProgress(1).has_value()) << "node 1 never resynced";

  cluster.SetView(1, {{1, true}, {2, true}, {3, true}});
  auto settled = Settled(cluster, 1, {1, 2, 3});
  ASSERT_EQ(settled.size(), 3u);
  EXPECT_EQ(settled[0], settled[2]);
  for (const std::string& id : expected) {
    auto bytes = client.ReadBlobAt(3, 1, cluster.View(1)->version, id, 0, 10);
    EXPECT_TRUE(bytes.ok()) << id << ": " << bytes.status();
  }
}

// A returning member whose own disk refuses the copied blobs stops taking part (fail-stop, as for
// any durable write it cannot make) instead of asking for the copy again and again.
TEST(ChainHost, AReturningMemberWhoseDiskRefusesTheCopyFailsStop) {
  test::TempDir dir;
  Cluster cluster(dir.path());
  cluster.SetView(1, {{1, true}, {2, true}, {3, true}});
  ChainClient& client = cluster.Client();
  for (int i = 0; i < 4; ++i) ASSERT_OK(client.PutBlob(1, MakeBlob("b" + std::to_string(i), 4000 + i)));
  cluster.WipeNode(3);
  cluster.SetView(1, {{1, true}, {2, true}});
  cluster.StartNode(3, /*incarnation=*/2, /*bootstrap=*/false);
  cluster.blobs(3).FailPuts();
  cluster.SetView(1, {{1, true}, {2, true}, {3, false}});
  EXPECT_TRUE(WaitFor([&] { return cluster.host(3).disk_failed(); }, 20s));
  for (const ManagerReport& r : cluster.Reports()) {
    EXPECT_FALSE(r.kind == ManagerReport::Kind::kSyncDone && r.member.node == 3) << "reported a copy it lacks";
  }
}

}  // namespace
}  // namespace cairn::replication
