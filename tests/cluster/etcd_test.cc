// EtcdClient against a real etcd (tests/cluster/etcd_harness.h): keys with binary bytes, prefix
// reads, transactions as the manager's fencing uses them, leases, watches, failover, timeouts
// and concurrent use. One etcd serves the whole suite; every test works under a prefix of its own.
#include "cluster/etcd.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/etcd_harness.h"
#include "test_util.h"

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;
using Cmp = EtcdCompare::Op;
using Clock = std::chrono::steady_clock;

// A key that holds the bytes JSON and C strings get wrong.
const std::string kBinary("k\0\xff\x01 \"\\/\n", 10);

class EtcdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    etcd_ = std::make_unique<test::EtcdHarness>();
    started_ = etcd_->Start();
  }
  static void TearDownTestSuite() { etcd_.reset(); }

  void SetUp() override {
    ASSERT_TRUE(started_.ok()) << "could not start etcd: " << started_;
    prefix_ = std::string("/cairn-test/") + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
    client_ = NewClient({etcd_->endpoint()});
    ASSERT_NE(client_, nullptr);
  }
  void TearDown() override { etcd_->Resume(); }

  static std::unique_ptr<EtcdClient> NewClient(std::vector<std::string> endpoints,
                                               std::chrono::milliseconds timeout = 2000ms) {
    EtcdOptions options;
    options.endpoints = std::move(endpoints);
    options.request_timeout = timeout;
    Result<std::unique_ptr<EtcdClient>> client = EtcdClient::Connect(std::move(options));
    EXPECT_OK(client);
    return client.ok() ? std::move(*client) : nullptr;
  }

  std::string Key(std::string_view name) const { return prefix_ + std::string(name); }

  // The value of `key`, or "<absent>".
  std::string Value(const std::string& key) {
    Result<EtcdRange> r = client_->Get(key);
    EXPECT_OK(r);
    if (!r.ok() || r->kvs.empty()) return "<absent>";
    return r->kvs[0].value;
  }

  // Polls until `key` is gone, for at most `limit`.
  bool WaitUntilAbsent(const std::string& key, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (Value(key) == "<absent>") return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  static inline std::unique_ptr<test::EtcdHarness> etcd_;
  static inline Status started_;
  std::string prefix_;
  std::unique_ptr<EtcdClient> client_;
};

// Collects what a watch reports.
struct WatchLog {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<EtcdWatchEvent> events;
  std::vector<Status> errors;

  std::function<void(const EtcdWatchEvent&)> OnEvent() {
    return [this](const EtcdWatchEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(e);
      cv.notify_all();
    };
  }
  std::function<void(const Status&)> OnError() {
    return [this](const Status& s) {
      std::lock_guard<std::mutex> lock(mu);
      errors.push_back(s);
      cv.notify_all();
    };
  }
  bool WaitForEvents(size_t n, std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, limit, [&] { return events.size() >= n; });
  }
  bool WaitForError(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, limit, [&] { return !errors.empty(); });
  }
};

TEST_F(EtcdTest, PutAndGetBinaryKeysAndValues) {
  const std::string key = Key(kBinary);
  const std::string value("\0\xff\xfe value \0", 11);
  Result<int64_t> first = client_->Put(key, value);
  ASSERT_OK(first);
  Result<EtcdRange> got = client_->Get(key);
  ASSERT_OK(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].key, key);
  EXPECT_EQ(got->kvs[0].value, value);
  EXPECT_EQ(got->kvs[0].create_revision, *first);
  EXPECT_EQ(got->kvs[0].mod_revision, *first);
  EXPECT_EQ(got->kvs[0].version, 1);
  EXPECT_EQ(got->kvs[0].lease, 0);
  EXPECT_EQ(got->revision, *first);

  Result<int64_t> second = client_->Put(key, "");  // the empty value, which etcd's JSON leaves out
  ASSERT_OK(second);
  EXPECT_GT(*second, *first);
  got = client_->Get(key);
  ASSERT_OK(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "");
  EXPECT_EQ(got->kvs[0].create_revision, *first);
  EXPECT_EQ(got->kvs[0].mod_revision, *second);
  EXPECT_EQ(got->kvs[0].version, 2);

  got = client_->Get(Key("missing"));
  ASSERT_OK(got);
  EXPECT_TRUE(got->kvs.empty());
  EXPECT_EQ(got->count, 0);
  EXPECT_GE(got->revision, *second);
}

TEST_F(EtcdTest, GetPrefixReturnsKeysInOrderAndHonoursLimit) {
  for (const char* name : {"b", "a", "c"}) ASSERT_OK(client_->Put(Key(name), name));
  ASSERT_OK(client_->Put(prefix_.substr(0, prefix_.size() - 1) + "0", "outside"));  // '/' + 1 == '0'

  Result<EtcdRange> all = client_->GetPrefix(prefix_);
  ASSERT_OK(all);
  ASSERT_EQ(all->kvs.size(), 3u);
  EXPECT_EQ(all->kvs[0].key, Key("a"));
  EXPECT_EQ(all->kvs[1].key, Key("b"));
  EXPECT_EQ(all->kvs[2].key, Key("c"));
  EXPECT_EQ(all->count, 3);
  EXPECT_FALSE(all->more);

  Result<EtcdRange> two = client_->GetPrefix(prefix_, /*limit=*/2);
  ASSERT_OK(two);
  ASSERT_EQ(two->kvs.size(), 2u);
  EXPECT_EQ(two->kvs[1].key, Key("b"));
  EXPECT_EQ(two->count, 3);
  EXPECT_TRUE(two->more);

  Result<EtcdRange> everything = client_->GetPrefix("", /*limit=*/1);
  ASSERT_OK(everything);
  EXPECT_GE(everything->count, 4);
  EXPECT_EQ(everything->kvs.size(), 1u);
}

TEST_F(EtcdTest, PrefixEndingInFfCoversItsKeysOnly) {
  const std::string ff = Key("\xff");
  ASSERT_OK(client_->Put(ff, "1"));
  ASSERT_OK(client_->Put(ff + std::string("\xff\x00", 2), "2"));
  ASSERT_OK(client_->Put(Key("\xfe"), "before"));
  Result<EtcdRange> r = client_->GetPrefix(ff);
  ASSERT_OK(r);
  ASSERT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->kvs[0].value, "1");
  EXPECT_EQ(r->kvs[1].value, "2");
}

TEST_F(EtcdTest, DeleteAndDeletePrefix) {
  ASSERT_OK(client_->Put(Key("x"), "1"));
  Result<int64_t> put = client_->Put(Key("dir/1"), "1");
  ASSERT_OK(put);
  ASSERT_OK(client_->Put(Key("dir/2"), "2"));

  Result<EtcdDeleted> one = client_->Delete(Key("x"));
  ASSERT_OK(one);
  EXPECT_EQ(one->deleted, 1);
  EXPECT_GT(one->revision, *put);
  EXPECT_EQ(Value(Key("x")), "<absent>");

  Result<EtcdDeleted> none = client_->Delete(Key("x"));
  ASSERT_OK(none);
  EXPECT_EQ(none->deleted, 0);

  Result<EtcdDeleted> dir = client_->DeletePrefix(Key("dir/"));
  ASSERT_OK(dir);
  EXPECT_EQ(dir->deleted, 2);
  Result<EtcdRange> left = client_->GetPrefix(prefix_);
  ASSERT_OK(left);
  EXPECT_TRUE(left->kvs.empty());
}

TEST_F(EtcdTest, EtcdRefusalsCarryTheirCode) {
  Result<EtcdRange> empty_key = client_->Get("");
  EXPECT_TRUE(empty_key.status().IsInvalidArgument()) << empty_key.status();
  EXPECT_NE(empty_key.status().message().find("key is not provided"), std::string::npos) << empty_key.status();

  // A key written twice in one branch.
  Result<EtcdTxnResult> twice = client_->Txn({}, {EtcdOp::Put(Key("k"), "1"), EtcdOp::Put(Key("k"), "2")}, {});
  EXPECT_TRUE(twice.status().IsInvalidArgument()) << twice.status();

  Result<int64_t> no_lease = client_->Put(Key("k"), "v", /*lease=*/12345);
  EXPECT_TRUE(no_lease.status().IsNotFound()) << no_lease.status();
}

TEST_F(EtcdTest, ConnectRefusesBadEndpoints) {
  EXPECT_TRUE(EtcdClient::Connect(EtcdOptions{}).status().IsInvalidArgument());
  EXPECT_TRUE(EtcdClient::Connect(EtcdOptions{{"https://127.0.0.1:2379"}}).status().IsNotSupported());
  EXPECT_TRUE(EtcdClient::Connect(EtcdOptions{{"127.0.0.1"}}).status().IsInvalidArgument());
  EXPECT_TRUE(EtcdClient::Connect(EtcdOptions{{"http://127.0.0.1:2379/v3"}}).status().IsInvalidArgument());
}

// The fencing pattern: read revision R, then write only if the key is still at R.
TEST_F(EtcdTest, TxnCompareAndSwapOnModRevision) {
  const std::string key = Key("chain");
  ASSERT_OK(client_->Put(key, "v1"));
  Result<EtcdRange> read = client_->Get(key);
  ASSERT_OK(read);
  const int64_t r = read->kvs.at(0).mod_revision;

  Result<EtcdTxnResult> swap =
      client_->Txn({EtcdCompare::ModRevision(key, Cmp::kEqual, r)}, {EtcdOp::Put(key, "v2")}, {EtcdOp::Get(key)});
  ASSERT_OK(swap);
  EXPECT_TRUE(swap->succeeded);
  EXPECT_GT(swap->revision, r);
  EXPECT_TRUE(swap->ranges.empty());
  EXPECT_EQ(Value(key), "v2");

  // The same write again, from the now stale read: refused, and the failure branch reads.
  Result<EtcdTxnResult> stale =
      client_->Txn({EtcdCompare::ModRevision(key, Cmp::kEqual, r)}, {EtcdOp::Put(key, "v3")}, {EtcdOp::Get(key)});
  ASSERT_OK(stale);
  EXPECT_FALSE(stale->succeeded);
  EXPECT_EQ(stale->revision, swap->revision);
  ASSERT_EQ(stale->ranges.size(), 1u);
  ASSERT_EQ(stale->ranges[0].kvs.size(), 1u);
  EXPECT_EQ(stale->ranges[0].kvs[0].value, "v2");
  EXPECT_EQ(stale->ranges[0].kvs[0].mod_revision, swap->revision);
  EXPECT_EQ(Value(key), "v2");

  // The other comparisons.
  Result<EtcdTxnResult> cmp =
      client_->Txn({EtcdCompare::Value(key, Cmp::kEqual, "v2"), EtcdCompare::Version(key, Cmp::kEqual, 2),
                    EtcdCompare::CreateRevision(key, Cmp::kLess, swap->revision),
                    EtcdCompare::ModRevision(key, Cmp::kGreater, r), EtcdCompare::Value(key, Cmp::kNotEqual, "v1")},
                   {EtcdOp::Put(key, "v4")}, {});
  ASSERT_OK(cmp);
  EXPECT_TRUE(cmp->succeeded);
  EXPECT_EQ(Value(key), "v4");
}

// docs/design/cluster.md: campaign on create_revision == 0, then every write fenced on the term.
TEST_F(EtcdTest, TxnFencesTheManager) {
  const std::string manager = Key("manager");
  const std::string chain = Key("chains/1");
  Result<EtcdLease> lease = client_->LeaseGrant(10);
  ASSERT_OK(lease);
  ASSERT_OK(client_->Put(chain, "version 1"));

  const auto campaign = [&](const std::string& self) {
    return client_->Txn({EtcdCompare::CreateRevision(manager, Cmp::kEqual, 0)}, {EtcdOp::Put(manager, self, lease->id)},
                        {EtcdOp::Get(manager)});
  };
  Result<EtcdTxnResult> won = campaign("node-a");
  ASSERT_OK(won);
  ASSERT_TRUE(won->succeeded);
  const int64_t term = won->revision;  // the create_revision of the manager key
  Result<EtcdTxnResult> lost = campaign("node-b");
  ASSERT_OK(lost);
  EXPECT_FALSE(lost->succeeded);
  ASSERT_EQ(lost->ranges.size(), 1u);
  EXPECT_EQ(lost->ranges[0].kvs.at(0).value, "node-a");
  EXPECT_EQ(lost->ranges[0].kvs.at(0).create_revision, term);

  Result<EtcdRange> read = client_->Get(chain);
  ASSERT_OK(read);
  const auto fenced_write = [&](int64_t read_revision, const std::string& value) {
    return client_->Txn({EtcdCompare::CreateRevision(manager, Cmp::kEqual, term),
                         EtcdCompare::ModRevision(chain, Cmp::kEqual, read_revision)},
                        {EtcdOp::Put(chain, value)}, {});
  };
  Result<EtcdTxnResult> write = fenced_write(read->kvs.at(0).mod_revision, "version 2");
  ASSERT_OK(write);
  EXPECT_TRUE(write->succeeded);

  // The manager loses its lease; a write from its last read is refused.
  ASSERT_OK(client_->LeaseRevoke(lease->id));
  Result<EtcdTxnResult> late = fenced_write(write->revision, "version 3");
  ASSERT_OK(late);
  EXPECT_FALSE(late->succeeded);
  EXPECT_EQ(Value(chain), "version 2");
}

TEST_F(EtcdTest, TxnComparesLease) {
  const std::string key = Key("node");
  Result<EtcdLease> mine = client_->LeaseGrant(10);
  Result<EtcdLease> other = client_->LeaseGrant(10);
  ASSERT_OK(mine);
  ASSERT_OK(other);
  ASSERT_OK(client_->Put(key, "up", mine->id));
  Result<EtcdRange> read = client_->Get(key);
  ASSERT_OK(read);
  EXPECT_EQ(read->kvs.at(0).lease, mine->id);

  Result<EtcdTxnResult> wrong =
      client_->Txn({EtcdCompare::Lease(key, Cmp::kEqual, other->id)}, {EtcdOp::Put(key, "taken", other->id)}, {});
  ASSERT_OK(wrong);
  EXPECT_FALSE(wrong->succeeded);
  Result<EtcdTxnResult> right =
      client_->Txn({EtcdCompare::Lease(key, Cmp::kEqual, mine->id)}, {EtcdOp::Put(key, "still up", mine->id)}, {});
  ASSERT_OK(right);
  EXPECT_TRUE(right->succeeded);
  EXPECT_OK(client_->LeaseRevoke(mine->id));
  EXPECT_OK(client_->LeaseRevoke(other->id));
}

TEST_F(EtcdTest, LeaseGrantKeepAliveTimeToLiveRevoke) {
  Result<EtcdLease> lease = client_->LeaseGrant(5);
  ASSERT_OK(lease);
  EXPECT_NE(lease->id, 0);
  EXPECT_EQ(lease->ttl_seconds, 5);
  Result<int64_t> ttl = client_->LeaseTimeToLive(lease->id);
  ASSERT_OK(ttl);
  EXPECT_GT(*ttl, 0);
  EXPECT_LE(*ttl, 5);
  Result<int64_t> renewed = client_->LeaseKeepAlive(lease->id);
  ASSERT_OK(renewed);
  EXPECT_EQ(*renewed, 5);

  const std::string key = Key("bound");
  ASSERT_OK(client_->Put(key, "alive", lease->id));
  ASSERT_OK(client_->LeaseRevoke(lease->id));
  EXPECT_EQ(Value(key), "<absent>");  // revoking deletes at once

  EXPECT_TRUE(client_->LeaseTimeToLive(lease->id).status().IsNotFound());
  EXPECT_TRUE(client_->LeaseKeepAlive(lease->id).status().IsNotFound());
  EXPECT_TRUE(client_->LeaseRevoke(lease->id).IsNotFound());
}

TEST_F(EtcdTest, KeyBoundToAnExpiredLeaseDisappears) {
  Result<EtcdLease> lease = client_->LeaseGrant(1);
  ASSERT_OK(lease);
  EXPECT_LE(lease->ttl_seconds, 2);  // the harness's raft timing makes etcd's minimum 1 s
  const std::string key = Key("ephemeral");
  ASSERT_OK(client_->Put(key, "here", lease->id));
  EXPECT_EQ(Value(key), "here");
  EXPECT_TRUE(WaitUntilAbsent(key, 5s)) << "the key outlived its lease";
  EXPECT_TRUE(client_->LeaseTimeToLive(lease->id).status().IsNotFound());
  EXPECT_TRUE(client_->LeaseKeepAlive(lease->id).status().IsNotFound());
}

TEST_F(EtcdTest, KeepAliveKeepsALeaseAlivePastItsTtl) {
  Result<EtcdLease> lease = client_->LeaseGrant(1);
  ASSERT_OK(lease);
  const std::string key = Key("kept");
  ASSERT_OK(client_->Put(key, "here", lease->id));
  const auto until = Clock::now() + std::chrono::seconds(lease->ttl_seconds) + 1s;
  while (Clock::now() < until) {
    ASSERT_OK(client_->LeaseKeepAlive(lease->id));
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(Value(key), "here");
  EXPECT_OK(client_->LeaseRevoke(lease->id));
}

TEST_F(EtcdTest, WatchDeliversChangesInOrderFromTheStartRevision) {
  Result<int64_t> start = client_->Put(Key("a"), "1");  // before the watch, after its start revision
  ASSERT_OK(start);
  ASSERT_OK(client_->Put(prefix_.substr(0, prefix_.size() - 1) + "-elsewhere", "not watched"));

  WatchLog log;
  Result<std::unique_ptr<EtcdWatch>> watch = client_->Watch(prefix_, *start, log.OnEvent(), log.OnError());
  ASSERT_OK(watch);
  ASSERT_OK(client_->Put(Key(kBinary), std::string("\0\xff", 2)));
  ASSERT_OK(client_->Delete(Key("a")));
  Result<EtcdTxnResult> txn = client_->Txn({}, {EtcdOp::Put(Key("t1"), "x"), EtcdOp::Put(Key("t2"), "y")}, {});
  ASSERT_OK(txn);

  ASSERT_TRUE(log.WaitForEvents(5, 5s)) << log.events.size() << " events";
  (*watch)->Cancel();
  std::lock_guard<std::mutex> lock(log.mu);
  ASSERT_EQ(log.events.size(), 5u);
  EXPECT_TRUE(log.errors.empty()) << log.errors[0];
  const auto& e = log.events;
  EXPECT_EQ(e[0].type, EtcdWatchEvent::Type::kPut);
  EXPECT_EQ(e[0].kv.key, Key("a"));
  EXPECT_EQ(e[0].kv.value, "1");
  EXPECT_EQ(e[0].revision, *start);
  EXPECT_EQ(e[1].type, EtcdWatchEvent::Type::kPut);
  EXPECT_EQ(e[1].kv.key, Key(kBinary));
  EXPECT_EQ(e[1].kv.value, std::string("\0\xff", 2));
  EXPECT_EQ(e[2].type, EtcdWatchEvent::Type::kDelete);
  EXPECT_EQ(e[2].kv.key, Key("a"));
  EXPECT_EQ(e[3].kv.key, Key("t1"));
  EXPECT_EQ(e[4].kv.key, Key("t2"));
  EXPECT_EQ(e[3].revision, txn->revision);  // one transaction, one revision
  EXPECT_EQ(e[4].revision, txn->revision);
  for (size_t i = 1; i < e.size(); ++i) EXPECT_GE(e[i].revision, e[i - 1].revision);
}

TEST_F(EtcdTest, CancelledWatchReportsNothingMore) {
  WatchLog log;
  Result<std::unique_ptr<EtcdWatch>> watch =
      client_->Watch(prefix_, /*start_revision=*/0, log.OnEvent(), log.OnError());
  ASSERT_OK(watch);
  ASSERT_OK(client_->Put(Key("one"), "1"));
  ASSERT_TRUE(log.WaitForEvents(1, 5s));
  const auto before = Clock::now();
  (*watch)->Cancel();
  (*watch)->Cancel();  // idempotent
  EXPECT_LT(Clock::now() - before, 1s);
  ASSERT_OK(client_->Put(Key("two"), "2"));
  std::this_thread::sleep_for(200ms);
  std::lock_guard<std::mutex> lock(log.mu);
  EXPECT_EQ(log.events.size(), 1u);
  EXPECT_TRUE(log.errors.empty());
}

TEST_F(EtcdTest, IdleWatchStopsPromptlyWhenDestroyed) {
  WatchLog log;
  const auto before = Clock::now();
  {
    Result<std::unique_ptr<EtcdWatch>> watch = client_->Watch(prefix_, 0, log.OnEvent(), log.OnError());
    ASSERT_OK(watch);
  }
  EXPECT_LT(Clock::now() - before, 1s);
  EXPECT_TRUE(log.errors.empty());
}

TEST_F(EtcdTest, WatchFromACompactedRevisionReportsNotFound) {
  Result<int64_t> first = client_->Put(Key("k"), "1");
  ASSERT_OK(first);
  Result<int64_t> last = client_->Put(Key("k"), "2");
  ASSERT_OK(last);
  ASSERT_OK(client_->Compact(*last));

  WatchLog log;
  Result<std::unique_ptr<EtcdWatch>> watch = client_->Watch(prefix_, *first, log.OnEvent(), log.OnError());
  ASSERT_OK(watch);
  ASSERT_TRUE(log.WaitForError(5s));
  std::lock_guard<std::mutex> lock(log.mu);
  EXPECT_TRUE(log.errors[0].IsNotFound()) << log.errors[0];
  EXPECT_NE(log.errors[0].message().find(std::to_string(*last)), std::string::npos) << log.errors[0];
  EXPECT_TRUE(log.events.empty());
  EXPECT_TRUE(client_->Compact(*first).IsNotFound());
}

// An etcd of its own, killed under a watch and a client.
TEST_F(EtcdTest, KilledEtcdBreaksTheWatchAndFailsCallsAtOnce) {
  test::EtcdHarness doomed;
  ASSERT_OK(doomed.Start());
  std::unique_ptr<EtcdClient> client = NewClient({doomed.endpoint()});
  ASSERT_NE(client, nullptr);
  WatchLog log;
  Result<std::unique_ptr<EtcdWatch>> watch = client->Watch(prefix_, 0, log.OnEvent(), log.OnError());
  ASSERT_OK(watch);
  ASSERT_OK(client->Put(Key("k"), "v"));
  ASSERT_TRUE(log.WaitForEvents(1, 5s));

  doomed.Stop();
  ASSERT_TRUE(log.WaitForError(5s));
  {
    std::lock_guard<std::mutex> lock(log.mu);
    EXPECT_TRUE(log.errors[0].IsIOError()) << log.errors[0];
    EXPECT_EQ(log.errors.size(), 1u);
  }
  const auto before = Clock::now();
  const Status get = client->Get(Key("k")).status();
  EXPECT_TRUE(get.IsIOError()) << get;
  EXPECT_NE(get.message().find(doomed.endpoint()), std::string::npos) << get;
  EXPECT_LT(Clock::now() - before, 500ms);
}

TEST_F(EtcdTest, FailsOverPastADeadEndpoint) {
  const test::DeadEndpoint dead;
  std::unique_ptr<EtcdClient> client = NewClient({dead.url(), etcd_->endpoint()});
  ASSERT_NE(client, nullptr);
  ASSERT_OK(client->Put(Key("k"), "v"));
  Result<EtcdRange> got = client->Get(Key("k"));
  ASSERT_OK(got);
  EXPECT_EQ(got->kvs.at(0).value, "v");
  WatchLog log;
  EXPECT_OK(client->Watch(prefix_, 0, log.OnEvent(), log.OnError()));
}

TEST_F(EtcdTest, NoLiveEndpointFailsAtOnceNamingEach) {
  const test::DeadEndpoint dead_a, dead_b;
  const std::string& a = dead_a.url();
  const std::string& b = dead_b.url();
  const auto before = Clock::now();
  Result<std::unique_ptr<EtcdClient>> client = EtcdClient::Connect(EtcdOptions{{a, b}});
  EXPECT_LT(Clock::now() - before, 1s);
  ASSERT_TRUE(client.status().IsIOError()) << client.status();
  EXPECT_NE(client.status().message().find(a), std::string::npos) << client.status();
  EXPECT_NE(client.status().message().find(b), std::string::npos) << client.status();
  EXPECT_NE(client.status().message().find("refused"), std::string::npos) << client.status();
}

TEST_F(EtcdTest, HungEtcdFailsWithinTheTimeout) {
  constexpr auto kTimeout = 300ms;
  std::unique_ptr<EtcdClient> client = NewClient({etcd_->endpoint()}, kTimeout);
  ASSERT_NE(client, nullptr);
  ASSERT_OK(client->Put(Key("k"), "before"));  // leaves a pooled connection

  etcd_->Pause();
  for (const bool write : {false, true}) {
    const auto before = Clock::now();
    const Status s = write ? client->Put(Key("k"), "during").status() : client->Get(Key("k")).status();
    const auto took = Clock::now() - before;
    EXPECT_TRUE(s.IsTimeout()) << s;
    EXPECT_GE(took, kTimeout - 10ms);
    EXPECT_LT(took, kTimeout + 500ms);
  }
  WatchLog log;
  EXPECT_TRUE(client->Watch(prefix_, 0, log.OnEvent(), log.OnError()).status().IsTimeout());
  etcd_->Resume();

  // The client recovers once etcd does (the put sent while it was stopped may have been applied).
  Result<EtcdRange> got = client->Get(Key("k"));
  ASSERT_OK(got);
  ASSERT_EQ(got->kvs.size(), 1u);
}

TEST_F(EtcdTest, EightThreadsShareOneClient) {
  constexpr int kThreads = 8;
  constexpr int kKeysPerThread = 10;
  constexpr int kIncrementsPerThread = 5;
  const std::string counter = Key("counter");
  ASSERT_OK(client_->Put(counter, "0"));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kKeysPerThread; ++i) {
        const std::string key = Key("t" + std::to_string(t) + "/" + std::to_string(i));
        if (!client_->Put(key, key).ok()) ++failures;
        Result<EtcdRange> got = client_->Get(key);
        if (!got.ok() || got->kvs.size() != 1 || got->kvs[0].value != key) ++failures;
      }
      // Increments by compare-and-swap: the failure branch reads what won.
      Result<EtcdRange> read = client_->Get(counter);
      if (!read.ok() || read->kvs.empty()) {
        ++failures;
        return;
      }
      EtcdKv seen = read->kvs[0];
      for (int done = 0; done < kIncrementsPerThread;) {
        const std::string next = std::to_string(std::stoi(seen.value) + 1);
        Result<EtcdTxnResult> txn = client_->Txn({EtcdCompare::ModRevision(counter, Cmp::kEqual, seen.mod_revision)},
                                                 {EtcdOp::Put(counter, next)}, {EtcdOp::Get(counter)});
        if (!txn.ok()) {
          ++failures;
          return;
        }
        if (txn->succeeded) {
          ++done;
          seen.value = next;
          seen.mod_revision = txn->revision;
        } else {
          seen = txn->ranges.at(0).kvs.at(0);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Value(counter), std::to_string(kThreads * kIncrementsPerThread));
  Result<EtcdRange> all = client_->GetPrefix(Key("t"));
  ASSERT_OK(all);
  EXPECT_EQ(all->count, kThreads * kKeysPerThread);
}

}  // namespace
}  // namespace cairn::cluster
