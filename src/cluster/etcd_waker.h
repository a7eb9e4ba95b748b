// EtcdWaker: a watch of one etcd prefix that wakes a polling loop (docs/design/cluster.md, "The
// manager", "Leases, failure detection and self-fencing").
//
// The manager and each node's replicas read what they need from etcd every interval; that stays
// the rule, and is all there is while etcd cannot be watched. The waker adds a watch of the
// cluster's prefix and calls `wake` with every change, so that a loop reacts to a lease that
// expired, a chain that changed or a report at once instead of at its next poll. Best effort:
// Ensure(), called from the owner's loop, opens the watch when there is none or it ended (at most
// once a second; it waits for etcd's answer, so owners call it only after etcd just answered
// them); events missed in between are what the next poll reads anyway.
//
// Thread-safety: Ensure and Stop are called from the owner's threads, one at a time; `wake` runs
// on the watch's own thread and must not call back into the waker.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "cluster/etcd.h"

namespace cairn::cluster {

class EtcdWaker {
 public:
  // `etcd` must outlive the waker.
  EtcdWaker(EtcdClient* etcd, std::string prefix, std::function<void(const EtcdWatchEvent&)> wake)
      : etcd_(etcd), prefix_(std::move(prefix)), wake_(std::move(wake)) {}
  // Stop()s.
  ~EtcdWaker() { Stop(); }
  EtcdWaker(const EtcdWaker&) = delete;
  EtcdWaker& operator=(const EtcdWaker&) = delete;

  // Opens the watch if there is none, or it ended, and the last attempt is a second old.
  void Ensure();
  // Cancels the watch: no `wake` runs once Stop returns. Idempotent.
  void Stop();
  // Whether a watch is open now (tests).
  bool watching() const { return watch_ != nullptr && !ended_->load(); }

 private:
  EtcdClient* const etcd_;
  const std::string prefix_;
  const std::function<void(const EtcdWatchEvent&)> wake_;
  std::unique_ptr<EtcdWatch> watch_;
  // Set by the watch when it ends; shared, so that an ended watch's thread never reads a freed flag.
  std::shared_ptr<std::atomic<bool>> ended_ = std::make_shared<std::atomic<bool>>(true);
  std::chrono::steady_clock::time_point last_attempt_{};
};

}  // namespace cairn::cluster
