#include "cluster/orphans.h"

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/chain_data.h"
#include "cluster/node.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "io/clock.h"

namespace cairn::cluster {

OrphanCollector::OrphanCollector(replication::ChainClient* client, uint32_t chain_count, meta::MetaStore* meta,
                                 OrphanCollectorOptions options)
    : client_(client), chain_count_(chain_count), meta_(meta), options_(options) {}

Result<OrphanPass> OrphanCollector::RunOnce(uint64_t now_ms, const std::atomic<bool>* stop) {
  OrphanPass pass;
  const uint64_t grace = static_cast<uint64_t>(options_.grace.count());
  if (now_ms <= grace) return pass;
  const uint64_t cutoff = now_ms - grace;  // stored before this: old
  auto stopped = [stop] { return stop != nullptr && stop->load(); };
  // 1. The old blobs of every chain (listed before the walk: see the header), by id.
  std::unordered_map<std::string, replication::ChainId> old;
  for (replication::ChainId chain = 0; chain < chain_count_; ++chain) {
    std::string after;
    while (true) {
      if (stopped()) return Status::Cancelled("stopping");
      CAIRN_ASSIGN_OR_RETURN(std::string answer,
                             client_->Query(chain, replication::BlobListQuery(after, options_.page)));
      CAIRN_ASSIGN_OR_RETURN(std::vector<replication::BlobInfo> page, replication::DecodeBlobList(answer));
      for (replication::BlobInfo& blob : page) {
        ++pass.blobs;
        // A stamp of 0 is an unknown age: never collected.
        if (blob.stamp_ms != 0 && blob.stamp_ms < cutoff) {
          ++pass.old;
          old.emplace(blob.id, chain);
        }
      }
      if (page.size() < options_.page) break;
      after = page.back().id;
    }
  }
  if (pass.old == 0) return pass;
  // 2. Every chunk a record names: those leave the candidates (which is all this keeps: not a
  // set of every chunk in the cluster).
  CAIRN_RETURN_IF_ERROR(meta_->ForEachChunkRef([&](const meta::ChunkRef& ref) {
    if (stopped()) return Status::Cancelled("stopping");
    old.erase(ref.id.ToString());
    return Status::OK();
  }));
  // 3. Drop the old ones nothing names.
  std::map<replication::ChainId, std::vector<std::string>> by_chain;
  for (auto& [id, chain] : old) by_chain[chain].push_back(id);
  for (auto& entry : by_chain) {
    if (stopped()) return Status::Cancelled("stopping");
    const replication::ChainId chain = entry.first;
    std::vector<std::string>& ids = entry.second;
    std::vector<std::string> batch;
    auto flush = [&]() -> Status {
      if (batch.empty()) return Status::OK();
      CAIRN_RETURN_IF_ERROR(client_->DropBlobs(chain, batch).status());
      pass.dropped += batch.size();
      batch.clear();
      return Status::OK();
    };
    for (std::string& id : ids) {
      batch.push_back(std::move(id));
      if (batch.size() >= options_.drop_batch) CAIRN_RETURN_IF_ERROR(flush());
    }
    CAIRN_RETURN_IF_ERROR(flush());
  }
  return pass;
}

OrphanSweeper::OrphanSweeper(Node* node, uint32_t chain_count, std::chrono::milliseconds interval,
                             OrphanCollectorOptions options)
    : node_(node),
      interval_(interval),
      meta_(NewChainMetaStore(&node->chain_client(), chain_count)),
      collector_(&node->chain_client(), chain_count, meta_.get(), options) {
  thread_ = std::thread([this] { Loop(); });
}

OrphanSweeper::~OrphanSweeper() {
  stopping_ = true;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void OrphanSweeper::Loop() {
  metrics::Counter* dropped = metrics::Registry::Default().GetCounter(
      "cairn_orphan_blobs_dropped_total", "Blobs no record named, dropped by this node's orphan collector");
  metrics::Counter* passes = metrics::Registry::Default().GetCounter(
      "cairn_orphan_passes_total", "Passes of this node's orphan collector that completed");
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait_for(lock, interval_, [this] { return stop_; });
    if (stop_) return;
    if (!node_->is_manager()) continue;
    lock.unlock();
    const uint64_t now = io::SystemClock::Default()->WallMicros() / 1000;
    auto pass = collector_.RunOnce(now, &stopping_);
    if (!pass.ok() && stopping_.load()) return;
    if (!pass.ok()) {
      CAIRN_LOG_WARN("orphan collection: {}", pass.status().ToString());
    } else {
      passes->Increment();
    }
    if (pass.ok() && pass->dropped > 0) {
      dropped->Increment(pass->dropped);
      CAIRN_LOG_INFO("orphan collection: dropped {} blobs no record named (of {} older than the grace, {} in all)",
                     pass->dropped, pass->old, pass->blobs);
    }
    lock.lock();
  }
}

}  // namespace cairn::cluster
