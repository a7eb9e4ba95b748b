// A node's lease and registration against a real etcd (cluster/membership.h): the node registers
// and leaves; cut off from etcd it stops acknowledging before its lease can expire; when etcd comes
// back it resumes only after re-reading the chain table, and registers again if the lease expired.
#include "cluster/membership.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "cluster/etcd_harness.h"
#include "test_util.h"

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class MembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(etcd_.Start());
    EtcdOptions o;
    o.endpoints = {etcd_.endpoint()};
    o.request_timeout = 800ms;
    auto client = EtcdClient::Connect(o);
    ASSERT_OK(client);
    client_ = std::move(*client);
    options_.prefix = "/cairn/test/";
    options_.ttl = 3s;
    options_.margin = 1000ms;
  }
  void TearDown() override { etcd_.Resume(); }

  NodeInfo Node(std::string id) { return NodeInfo{std::move(id), "127.0.0.1:7000", "127.0.0.1:9000", "z1", {"n/0"}}; }

  // Waits (bounded) until pred() holds; false on timeout.
  template <typename Pred>
  bool Eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return pred();
  }

  test::EtcdHarness etcd_;
  std::unique_ptr<EtcdClient> client_;
  MembershipOptions options_;
};

TEST_F(MembershipTest, RegistersBoundToItsLeaseAndLeavesAtOnce) {
  const std::string key = Membership::NodeKey(options_, "n1");
  {
    auto m = Membership::Join(client_.get(), Node("n1"), options_);
    ASSERT_OK(m);
    auto r = client_->Get(key);
    ASSERT_OK(r);
    ASSERT_EQ(r->kvs.size(), 1u);
    EXPECT_EQ(r->kvs[0].lease, (*m)->lease_id());
    const auto info = nlohmann::json::parse(r->kvs[0].value);
    EXPECT_EQ(info["id"], "n1");
    EXPECT_EQ(info["zone"], "z1");
    // A second process with the same id is refused while the first is alive.
    EXPECT_TRUE(Membership::Join(client_.get(), Node("n1"), options_).status().IsAlreadyExists());
    // Not before the chain table was read.
    EXPECT_FALSE((*m)->MayAcknowledge());
    (*m)->TableRefreshed();
    EXPECT_TRUE((*m)->MayAcknowledge());
    // Renewals (every TTL/3) keep it going past the TTL.
    std::this_thread::sleep_for(options_.ttl + 1s);
    EXPECT_TRUE((*m)->MayAcknowledge());
    EXPECT_GE((*m)->renewals(), 3u);
  }
  auto r = client_->Get(key);
  ASSERT_OK(r);
  EXPECT_TRUE(r->kvs.empty());  // revoked on leave, not after a TTL
}

TEST_F(MembershipTest, CutOffFromEtcdItStopsAcknowledgingBeforeItsLeaseCanExpire) {
  auto m = Membership::Join(client_.get(), Node("n2"), options_);
  ASSERT_OK(m);
  (*m)->TableRefreshed();
  ASSERT_TRUE((*m)->MayAcknowledge());
  // etcd stops answering now. The last renewal it processed was sent at most one renewal period
  // before this moment, and etcd cannot expire the lease earlier than TTL after that renewal's
  // send (it restarts the TTL when it processes it, later). The node must be fenced by then, and
  // its rule (send time + TTL - margin) puts the fence `margin` earlier still.
  etcd_.Pause();
  const auto paused = Clock::now();
  ASSERT_TRUE(Eventually([&] { return !(*m)->MayAcknowledge(); }, 5s));
  const auto fenced = Clock::now();
  // At most TTL - margin after the pause (the last renewal was sent before it), with 200 ms of
  // slack for this test's polling: a full `margin` ahead of any expiry etcd could apply.
  EXPECT_LE(fenced - paused, options_.ttl - options_.margin + 200ms);
  // Still fenced while etcd stays away.
  std::this_thread::sleep_for(1s);
  EXPECT_FALSE((*m)->MayAcknowledge());

  // etcd returns after more than a TTL: the lease may have expired; either way the node renews or
  // registers again, and acknowledges only after re-reading the table.
  const uint64_t before = (*m)->renewals() + (*m)->rejoins();
  etcd_.Resume();
  ASSERT_TRUE(Eventually([&] { return (*m)->renewals() + (*m)->rejoins() > before; }));
  ASSERT_TRUE(Eventually([&] {
    auto r = client_->Get(Membership::NodeKey(options_, "n2"));
    return r.ok() && !r->kvs.empty() && r->kvs[0].lease == (*m)->lease_id();
  }));
  EXPECT_FALSE((*m)->MayAcknowledge());
  (*m)->TableRefreshed();
  EXPECT_TRUE(Eventually([&] { return (*m)->MayAcknowledge(); }, 3s));
}

TEST_F(MembershipTest, ARevokedLeaseFencesTheNodeUntilItReadsTheTableAgain) {
  auto m = Membership::Join(client_.get(), Node("n4"), options_);
  ASSERT_OK(m);
  (*m)->TableRefreshed();
  ASSERT_TRUE((*m)->MayAcknowledge());
  // The manager removes a live node by revoking its lease.
  ASSERT_OK(client_->LeaseRevoke((*m)->lease_id()));
  ASSERT_TRUE(Eventually([&] { return (*m)->rejoins() > 0; }));
  EXPECT_FALSE((*m)->MayAcknowledge());
  (*m)->TableRefreshed();
  EXPECT_TRUE((*m)->MayAcknowledge());
}

TEST_F(MembershipTest, OptionsAreChecked) {
  MembershipOptions bad = options_;
  bad.margin = 3s;
  EXPECT_TRUE(Membership::Join(client_.get(), Node("n3"), bad).status().IsInvalidArgument());
  EXPECT_TRUE(Membership::Join(client_.get(), Node(""), options_).status().IsInvalidArgument());
}

}  // namespace
}  // namespace cairn::cluster
