// Self-fencing: when must a node stop acknowledging writes because its etcd lease may have
// expired? (docs/design/cluster.md, "Leases, failure detection and self-fencing".)
//
// etcd restarts a lease's TTL when it processes a keepalive, which is after the node sent it; so
// `sent + granted TTL`, on the node's monotonic clock, is no earlier than the expiry as etcd
// sees it (clocks that advance at about the same rate are all this assumes). The node stops
// acknowledging at `sent + TTL - margin`, the margin covering rate differences and scheduling
// delays. Once fenced, a node acknowledges again only after a keepalive succeeds *and* it has
// re-read the chain table: its chains may have been reconfigured while it could not know.
//
// Pure logic over time points handed in by the caller, so tests and the simulator drive it with
// a fake clock.
// Thread-safety: not thread-safe; the node's lease loop owns it and publishes MayAcknowledge.
#pragma once

#include <chrono>
#include <cstdint>

namespace cairn::cluster {

class LeaseGuard {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  // `margin` must be below the TTLs etcd grants (typically TTL/3).
  explicit LeaseGuard(std::chrono::milliseconds margin) : margin_(margin) {}

  // A keepalive (or the lease grant) is about to be sent at `now`; returns its token.
  uint64_t Sending(TimePoint now);
  // The keepalive of `token` succeeded; etcd granted `ttl`. Keepalives may finish out of order:
  // the latest send time among the successful ones counts.
  void Succeeded(uint64_t token, std::chrono::milliseconds ttl);
  // etcd says the lease is gone (expired or revoked), or the node gives it up (evicted): fenced at
  // once, and a table refresh is owed whatever the next grant's timing. Keepalives still in flight
  // no longer count when they succeed.
  void Lost();
  // The chain table was read from etcd after the last success (needed to leave a fence).
  void TableRefreshed();

  // Whether writes may be acknowledged at `now`.
  bool MayAcknowledge(TimePoint now) const;
  // When acknowledging stops unless a keepalive succeeds first (meaningful once one succeeded).
  TimePoint fence_at() const { return fence_at_; }

 private:
  std::chrono::milliseconds margin_;
  uint64_t next_token_ = 1;
  // Send times of keepalives in flight, by token (a small ring: at most a few are in flight).
  static constexpr int kSlots = 16;
  uint64_t tokens_[kSlots] = {};
  TimePoint sent_[kSlots] = {};
  bool ever_succeeded_ = false;
  TimePoint fence_at_{};
  // Set when a success comes after the fence time had passed: a table refresh is owed.
  bool refresh_needed_ = true;
};

}  // namespace cairn::cluster
