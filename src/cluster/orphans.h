// OrphanCollector: drops the blobs of the chains that no metadata record names (cluster mode's
// orphan collection; docs/design/cluster.md, "Orphaned chunks").
//
// A chunk is written (a blob of its chain) before the record that names it is committed, so a
// PUT that fails in between, or whose commit timed out and never applied, leaves blobs nothing
// names. One pass:
//   1. lists every chain's blobs (BlobListQuery, at each head) and keeps those stored more than
//      `grace` ago (the blob's stamp is its update's, Update::stamp_ms);
//   2. then walks every chunk the metadata names (MetaStore::ForEachChunkRef: parts before
//      objects within each metadata chain, and an upload and the object it completes into are
//      on one chain, the bucket's, so a chunk a completion moves meanwhile is still seen);
//   3. drops the old blobs the walk did not see, one DropBlobs per chain and batch.
// A blob is named by a committed record only once its writer commits, and a writer commits
// within the grace of writing it or never: a blob older than the grace that no record names
// will never be named. So `grace` must exceed the longest write (a PUT, or the upload of one
// part): a day by default. Listing before walking matters: a blob listed as old was written
// before the walk began.
//
// Thread-safety: RunOnce may be called from one thread at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "common/result.h"
#include "meta/meta_store.h"
#include "replication/chain_client.h"

namespace cairn::cluster {

struct OrphanCollectorOptions {
  std::chrono::milliseconds grace{std::chrono::hours(24)};
  uint32_t page = 1000;        // blobs per listing query
  uint32_t drop_batch = 256;   // blobs per DropBlobs
};

struct OrphanPass {
  uint64_t blobs = 0;     // blobs listed
  uint64_t old = 0;       // of those, stored more than the grace ago
  uint64_t dropped = 0;   // of those, named by no record: dropped
  bool operator==(const OrphanPass&) const = default;
};

class OrphanCollector {
 public:
  // `client` and `meta` must outlive the collector.
  OrphanCollector(replication::ChainClient* client, uint32_t chain_count, meta::MetaStore* meta,
                  OrphanCollectorOptions options = {});
  // One pass at `now_ms` (the writers' clock: ms since the Unix epoch). Cancelled, having dropped
  // only part of what it found, as soon as `stop` (may be null) turns true.
  Result<OrphanPass> RunOnce(uint64_t now_ms, const std::atomic<bool>* stop = nullptr);

 private:
  replication::ChainClient* const client_;
  const uint32_t chain_count_;
  meta::MetaStore* const meta_;
  const OrphanCollectorOptions options_;
};

class Node;

// Runs a pass every `interval` on the node while it holds the manager's office (one collector in
// the cluster at a time, as a rule; two at once would only drop the same blobs twice). Its
// destructor stops a pass in progress between two calls. Logs each
// pass that dropped something, and counts in cairn_orphan_passes_total and
// cairn_orphan_blobs_dropped_total.
class OrphanSweeper {
 public:
  // `node` must outlive the sweeper; the metadata store it reads is its own, over the node's
  // chain client.
  OrphanSweeper(Node* node, uint32_t chain_count, std::chrono::milliseconds interval, OrphanCollectorOptions options);
  // Stops the thread (a pass in progress ends first).
  ~OrphanSweeper();
  OrphanSweeper(const OrphanSweeper&) = delete;
  OrphanSweeper& operator=(const OrphanSweeper&) = delete;

 private:
  void Loop();

  Node* const node_;
  const std::chrono::milliseconds interval_;
  std::unique_ptr<meta::MetaStore> meta_;
  OrphanCollector collector_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::atomic<bool> stopping_{false};  // for the pass in progress
  std::thread thread_;
};

}  // namespace cairn::cluster
