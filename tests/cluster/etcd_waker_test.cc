// EtcdWaker (cluster/etcd_waker.h) against a real etcd: a change under the prefix wakes the owner;
// a watch that ended is opened again; nothing wakes after Stop.
#include "cluster/etcd_waker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "cluster/etcd_harness.h"
#include "test_util.h"

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;

using test::WaitFor;

TEST(EtcdWakerTest, ChangesUnderThePrefixWakeAndStopEndsIt) {
  test::EtcdHarness etcd;
  ASSERT_OK(etcd.Start());
  EtcdOptions o;
  o.endpoints = {etcd.endpoint()};
  o.request_timeout = 1000ms;
  auto client = EtcdClient::Connect(o);
  ASSERT_OK(client);
  std::atomic<int> woken{0};
  std::atomic<bool> saw_other{false};
  EtcdWaker waker((*client).get(), "/cairn/w/", [&](const EtcdWatchEvent& event) {
    if (!event.kv.key.starts_with("/cairn/w/")) saw_other = true;
    ++woken;
  });
  waker.Ensure();
  ASSERT_TRUE(waker.watching());
  ASSERT_OK((*client)->Put("/cairn/other/x", "1"));  // not under the prefix
  ASSERT_OK((*client)->Put("/cairn/w/nodes/n1", "1"));
  ASSERT_TRUE(WaitFor([&] { return woken.load() >= 1; }));
  ASSERT_OK((*client)->Delete("/cairn/w/nodes/n1"));
  ASSERT_TRUE(WaitFor([&] { return woken.load() >= 2; }));
  EXPECT_FALSE(saw_other.load());

  waker.Stop();
  EXPECT_FALSE(waker.watching());
  const int before = woken.load();
  ASSERT_OK((*client)->Put("/cairn/w/nodes/n2", "1"));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(woken.load(), before);

  // Opened again (at most once a second), and waking again.
  ASSERT_TRUE(WaitFor([&] {
    waker.Ensure();
    return waker.watching();
  }));
  ASSERT_OK((*client)->Put("/cairn/w/nodes/n3", "1"));
  EXPECT_TRUE(WaitFor([&] { return woken.load() > before; }));
}

}  // namespace
}  // namespace cairn::cluster
