// Self-fencing (cluster/lease_guard.h) on a fake clock: a node stops acknowledging before etcd
// could expire its lease, and after a gap resumes only once it re-read the chain table.
#include "cluster/lease_guard.h"

#include <gtest/gtest.h>

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;
using TimePoint = LeaseGuard::TimePoint;

const TimePoint t0 = TimePoint() + 1000s;

TEST(LeaseGuardTest, NothingIsAcknowledgedBeforeTheFirstGrantAndTheTable) {
  LeaseGuard g(1000ms);
  EXPECT_FALSE(g.MayAcknowledge(t0));
  const uint64_t grant = g.Sending(t0);
  g.Succeeded(grant, 3000ms);
  EXPECT_FALSE(g.MayAcknowledge(t0 + 10ms));  // the chain table is not read yet
  g.TableRefreshed();
  EXPECT_TRUE(g.MayAcknowledge(t0 + 10ms));
}

TEST(LeaseGuardTest, FencesAtSendTimePlusTtlMinusMargin) {
  LeaseGuard g(1000ms);
  const uint64_t k = g.Sending(t0);
  // etcd answered late (the request took 900 ms): the deadline still counts from the send.
  g.Succeeded(k, 3000ms);
  g.TableRefreshed();
  EXPECT_EQ(g.fence_at(), t0 + 2000ms);
  EXPECT_TRUE(g.MayAcknowledge(t0 + 1999ms));
  EXPECT_FALSE(g.MayAcknowledge(t0 + 2000ms));
  // etcd itself would expire the lease no earlier than t0 + 3000 ms: the fence comes first.
  EXPECT_LT(g.fence_at(), t0 + 3000ms);
}

TEST(LeaseGuardTest, RegularKeepalivesKeepItOpen) {
  LeaseGuard g(1000ms);
  g.Succeeded(g.Sending(t0), 3000ms);
  g.TableRefreshed();
  for (int i = 1; i <= 10; ++i) {
    const TimePoint now = t0 + i * 1000ms;
    ASSERT_TRUE(g.MayAcknowledge(now)) << i;
    g.Succeeded(g.Sending(now), 3000ms);
  }
  EXPECT_TRUE(g.MayAcknowledge(t0 + 11500ms));
}

TEST(LeaseGuardTest, OutOfOrderCompletionsNeverMoveTheFenceBack) {
  LeaseGuard g(1000ms);
  g.Succeeded(g.Sending(t0), 3000ms);
  g.TableRefreshed();
  const uint64_t early = g.Sending(t0 + 500ms);
  const uint64_t late = g.Sending(t0 + 1000ms);
  g.Succeeded(late, 3000ms);
  g.Succeeded(early, 3000ms);  // finishes last but was sent first
  EXPECT_EQ(g.fence_at(), t0 + 3000ms);
}

TEST(LeaseGuardTest, AfterAGapTheTableMustBeReadAgain) {
  LeaseGuard g(1000ms);
  g.Succeeded(g.Sending(t0), 3000ms);
  g.TableRefreshed();
  // Cut off from etcd: keepalives fail, the fence passes.
  EXPECT_FALSE(g.MayAcknowledge(t0 + 2500ms));
  // etcd is back; a keepalive sent after the fence succeeds (the lease may have expired and been
  // replaced meanwhile: this is a fresh grant in practice).
  g.Succeeded(g.Sending(t0 + 5000ms), 3000ms);
  EXPECT_FALSE(g.MayAcknowledge(t0 + 5100ms));
  g.TableRefreshed();
  EXPECT_TRUE(g.MayAcknowledge(t0 + 5100ms));
}

TEST(LeaseGuardTest, AnUnknownOrFailedKeepaliveChangesNothing) {
  LeaseGuard g(1000ms);
  g.Succeeded(g.Sending(t0), 3000ms);
  g.TableRefreshed();
  g.Succeeded(987654, 3000ms);  // never sent
  EXPECT_EQ(g.fence_at(), t0 + 2000ms);
  (void)g.Sending(t0 + 1000ms);  // sent, never answered
  EXPECT_FALSE(g.MayAcknowledge(t0 + 2000ms));
}

TEST(LeaseGuardTest, ALostLeaseFencesAtOnceAndOwesARefresh) {
  LeaseGuard g(1000ms);
  g.Succeeded(g.Sending(t0), 3000ms);
  g.TableRefreshed();
  ASSERT_TRUE(g.MayAcknowledge(t0 + 100ms));
  g.Lost();  // revoked by the manager: etcd says NotFound
  EXPECT_FALSE(g.MayAcknowledge(t0 + 100ms));
  // A new grant soon after does not reopen it until the table is read again.
  g.Succeeded(g.Sending(t0 + 200ms), 3000ms);
  EXPECT_FALSE(g.MayAcknowledge(t0 + 300ms));
  g.TableRefreshed();
  EXPECT_TRUE(g.MayAcknowledge(t0 + 300ms));
}

// An eviction gives the lease up while a keepalive is in flight; that keepalive then succeeds
// (etcd handled it before the revoke), but must not reopen the fence.
TEST(LeaseGuardTest, AKeepaliveInFlightWhenTheLeaseIsLostDoesNotReopenIt) {
  LeaseGuard g(1000ms);
  g.Succeeded(g.Sending(t0), 3000ms);
  g.TableRefreshed();
  const uint64_t in_flight = g.Sending(t0 + 1000ms);
  g.Lost();
  g.Succeeded(in_flight, 3000ms);
  g.TableRefreshed();
  EXPECT_FALSE(g.MayAcknowledge(t0 + 1100ms));
  // The next grant (a new lease) opens it again, once the table is read.
  g.Succeeded(g.Sending(t0 + 1200ms), 3000ms);
  g.TableRefreshed();
  EXPECT_TRUE(g.MayAcknowledge(t0 + 1300ms));
}

}  // namespace
}  // namespace cairn::cluster
