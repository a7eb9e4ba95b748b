// The manager's office against a real etcd (cluster/manager_election.h): one manager at a time,
// a new one only after the old lease is gone, and a deposed manager's writes refused by the fence
// even though it still believes it holds the office.
#include "cluster/manager_election.h"

#include <gtest/gtest.h>

#include "cluster/etcd_harness.h"
#include "test_util.h"

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;

class ManagerElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(etcd_.Start());
    EtcdOptions o;
    o.endpoints = {etcd_.endpoint()};
    auto client = EtcdClient::Connect(o);
    ASSERT_OK(client);
    client_ = std::move(*client);
  }
  int64_t NewLease() {
    auto l = client_->LeaseGrant(5);
    EXPECT_OK(l);
    return l.ok() ? l->id : 0;
  }

  test::EtcdHarness etcd_;
  std::unique_ptr<EtcdClient> client_;
  const std::string prefix_ = "/cairn/elect/";
};

TEST_F(ManagerElectionTest, OneManagerAtATime) {
  ManagerElection a(client_.get(), prefix_, "a");
  ManagerElection b(client_.get(), prefix_, "b");
  const int64_t la = NewLease(), lb = NewLease();
  auto won_a = a.Campaign(la);
  ASSERT_OK(won_a);
  EXPECT_TRUE(*won_a);
  EXPECT_GT(a.term(), 0);
  auto won_b = b.Campaign(lb);
  ASSERT_OK(won_b);
  EXPECT_FALSE(*won_b);
  EXPECT_FALSE(b.is_manager());
  EXPECT_EQ(*a.CurrentManager(), "a");
  // Campaigning again with the same lease keeps the same term.
  const int64_t term = a.term();
  ASSERT_TRUE(*a.Campaign(la));
  EXPECT_EQ(a.term(), term);
}

TEST_F(ManagerElectionTest, FencedWritesApplyCheckTheirReadsAndStopWithTheOffice) {
  ManagerElection a(client_.get(), prefix_, "a");
  const int64_t la = NewLease();
  ASSERT_TRUE(*a.Campaign(la));
  const std::string chain = prefix_ + "chains/0";
  ASSERT_OK(client_->Put(chain, "v1"));
  auto read = client_->Get(chain);
  ASSERT_OK(read);
  const int64_t rev = read->kvs[0].mod_revision;
  // Applied while the office is held and the read is current.
  auto out = a.FencedTxn({EtcdCompare::ModRevision(chain, EtcdCompare::Op::kEqual, rev)}, {EtcdOp::Put(chain, "v2")});
  ASSERT_OK(out);
  EXPECT_EQ(*out, ManagerElection::Outcome::kApplied);
  // A decision from the stale read is refused, and the office is kept.
  out = a.FencedTxn({EtcdCompare::ModRevision(chain, EtcdCompare::Op::kEqual, rev)}, {EtcdOp::Put(chain, "v3")});
  ASSERT_OK(out);
  EXPECT_EQ(*out, ManagerElection::Outcome::kStale);
  EXPECT_TRUE(a.is_manager());
  EXPECT_EQ(client_->Get(chain)->kvs[0].value, "v2");
}

TEST_F(ManagerElectionTest, ADeposedManagersWritesFailTheFence) {
  ManagerElection a(client_.get(), prefix_, "a");
  ManagerElection b(client_.get(), prefix_, "b");
  const int64_t la = NewLease();
  ASSERT_TRUE(*a.Campaign(la));
  const int64_t old_term = a.term();
  // a's lease is lost (as if a paused past its TTL); b takes the office.
  ASSERT_OK(client_->LeaseRevoke(la));
  ASSERT_TRUE(*b.Campaign(NewLease()));
  EXPECT_NE(b.term(), old_term);
  EXPECT_EQ(*b.CurrentManager(), "b");
  // a wakes up still believing it is the manager; its write is refused and it learns it lost.
  const std::string chain = prefix_ + "chains/7";
  EXPECT_TRUE(a.is_manager());
  auto out = a.FencedTxn({}, {EtcdOp::Put(chain, "from the old manager")});
  ASSERT_OK(out);
  EXPECT_EQ(*out, ManagerElection::Outcome::kLostOffice);
  EXPECT_FALSE(a.is_manager());
  EXPECT_TRUE(client_->Get(chain)->kvs.empty());
  // b's writes go through.
  out = b.FencedTxn({}, {EtcdOp::Put(chain, "from the new manager")});
  ASSERT_OK(out);
  EXPECT_EQ(*out, ManagerElection::Outcome::kApplied);
  // a cannot take the office back while b holds it.
  auto again = a.Campaign(NewLease());
  ASSERT_OK(again);
  EXPECT_FALSE(*again);
}

}  // namespace
}  // namespace cairn::cluster
