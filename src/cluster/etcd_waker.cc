#include "cluster/etcd_waker.h"

#include "common/logging.h"

namespace cairn::cluster {

void EtcdWaker::Ensure() {
  if (watch_ != nullptr && !ended_->load()) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_attempt_ < std::chrono::seconds(1)) return;
  last_attempt_ = now;
  if (watch_ != nullptr) {
    watch_->Cancel();  // ended already: this only joins its thread
    watch_.reset();
  }
  auto ended = std::make_shared<std::atomic<bool>>(false);
  auto watch = etcd_->Watch(
      prefix_, 0, wake_, [ended](const Status&) { ended->store(true); });
  if (!watch.ok()) {
    CAIRN_LOG_DEBUG("watch of {}: {}; polling only", prefix_, watch.status().ToString());
    return;
  }
  ended_ = std::move(ended);
  watch_ = std::move(*watch);
}

void EtcdWaker::Stop() {
  if (watch_ != nullptr) watch_->Cancel();
  watch_.reset();
}

}  // namespace cairn::cluster
