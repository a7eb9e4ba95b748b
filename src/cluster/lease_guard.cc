#include "cluster/lease_guard.h"

namespace cairn::cluster {

uint64_t LeaseGuard::Sending(TimePoint now) {
  const uint64_t token = next_token_++;
  tokens_[token % kSlots] = token;
  sent_[token % kSlots] = now;
  return token;
}

void LeaseGuard::Succeeded(uint64_t token, std::chrono::milliseconds ttl) {
  const int slot = static_cast<int>(token % kSlots);
  if (tokens_[slot] != token) return;  // too old to know when it was sent: ignore, stay safe
  tokens_[slot] = 0;
  const TimePoint candidate = sent_[slot] + ttl - margin_;
  // A success that arrives when the node was already fenced (its previous deadline passed before
  // this keepalive was even sent) means a gap in which etcd may have expired the lease: the
  // chain table must be re-read before acknowledging again.
  if (!ever_succeeded_ || sent_[slot] >= fence_at_) refresh_needed_ = true;
  if (!ever_succeeded_ || candidate > fence_at_) fence_at_ = candidate;
  ever_succeeded_ = true;
}

void LeaseGuard::Lost() {
  fence_at_ = TimePoint::min();
  refresh_needed_ = true;
  // A keepalive still in flight may succeed (etcd handled it before the lease went): its answer
  // must not move the deadline of a lease known lost.
  for (uint64_t& token : tokens_) token = 0;
}

void LeaseGuard::TableRefreshed() { refresh_needed_ = false; }

bool LeaseGuard::MayAcknowledge(TimePoint now) const {
  return ever_succeeded_ && !refresh_needed_ && now < fence_at_;
}

}  // namespace cairn::cluster
