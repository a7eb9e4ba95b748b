// The data path of cluster mode: what the object layer's ChunkStore and the metadata's
// MetaStore become when they run over chains (docs/design/cluster.md, "Writes", "Metadata across
// chains", "Blobs").
//
//   MetaStateMachine     the metadata as a chain's state machine: meta::ExecuteCommand and
//                        ExecuteQuery (one implementation of every MetaStore operation, the single
//                        node's too), run by the metadata chain's head.
//   ChainMetaTransport   carries meta::CommandMetaStore's commands and queries to that chain.
//   ChainChunkStore      an object's chunks as blobs of the chains, chain = hash(chunk id) mod the
//                        chain count; reads from any serving replica, verified.
//   EngineBlobStore      a node's blobs in its engine.
//
// The metadata is split by bucket over the first MetadataChains(chain count) chains
// (meta/sharded_meta_store.h): a bucket and everything in it on chain BucketShard(name), users
// and access keys on chain 0. One MetaStore operation is one update of one chain.
//
// Thread-safety: every class here is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/executor.h"
#include "engine/engine.h"
#include "meta/command_meta_store.h"
#include "object/object_store.h"
#include "replication/blob_store.h"
#include "replication/chain_client.h"
#include "replication/state_machine.h"

namespace cairn::cluster {

// The chain of the users and access keys (and of the buckets whose shard is 0).
inline constexpr replication::ChainId kMetaChain = 0;

// How many chains, from chain 0 on, run the metadata (MetaStateMachine): a quarter of them, at
// least one. Fixed for a cluster, like the chain count it derives from; the other chains hold
// blobs only.
uint32_t MetadataChains(uint32_t chain_count);

// The version of this layout, recorded in the cluster's config in etcd: 2 (layout 1 kept all the
// metadata on chain 0).
inline constexpr uint64_t kMetadataLayout = 2;

class MetaStateMachine final : public replication::StateMachine {
 public:
  static const MetaStateMachine& Instance();
  Outcome Execute(const KvReader& state, std::string_view command) const override;
  Result<std::string> Query(const KvReader& committed, std::string_view query) const override;
};

// The commands and queries of one metadata chain.
class ChainMetaTransport final : public meta::CommandTransport {
 public:
  // `client` must outlive the transport.
  ChainMetaTransport(replication::ChainClient* client, replication::ChainId chain) : client_(client), chain_(chain) {}
  Result<std::string> Write(std::string command) override;
  Result<std::string> Query(std::string query) override;

 private:
  replication::ChainClient* client_;
  replication::ChainId chain_;
};

// How long a node answers GetBucket from its copy (ShardedMetaStore's bucket cache): a bucket
// changed through another node is seen here within this, as access keys are.
inline constexpr std::chrono::milliseconds kBucketCacheTtl{1000};

// The cluster's MetaStore: a ShardedMetaStore over one CommandMetaStore per metadata chain, with
// the bucket cache. `client` must outlive it.
std::unique_ptr<meta::MetaStore> NewChainMetaStore(replication::ChainClient* client, uint32_t chain_count);

// The chain that stores a chunk.
replication::ChainId ChainOfChunk(const engine::ChunkId& id, uint32_t chain_count);

// This node's own copy of the chains' blobs, for reads: its engine, and whether it serves a chain.
struct LocalBlobs {
  engine::Engine* engine = nullptr;
  std::function<bool(replication::ChainId)> serves;
};

class ChainChunkStore final : public object::ChunkStore {
 public:
  // `client` and `io` must outlive the store; `io` runs the blocking chain writes behind
  // AppendAsync (its thread count bounds the chunk writes in flight). With `local`, a chunk of a
  // chain this node serves is read from its own engine (verified there, and sent from the file
  // as the single node does); a local copy that is missing or damaged sends the read to the
  // chain's other members.
  ChainChunkStore(replication::ChainClient* client, uint32_t chain_count, Executor* io, LocalBlobs local = {})
      : client_(client), chain_count_(chain_count), io_(io), local_(std::move(local)) {}
  void AppendAsync(const engine::ChunkId& id, std::span<const std::byte> data, uint32_t crc32c,
                   std::function<void(const Status&)> done) override;
  Status Read(const engine::ChunkId& id, uint64_t offset, std::span<std::byte> out) override;
  Result<engine::SendableRange> ReadForSend(const engine::ChunkId& id, uint64_t offset, uint64_t length) override;
  Status Delete(const engine::ChunkId& id) override;
  void DeleteMany(std::span<const engine::ChunkId> ids, std::vector<Status>* results) override;
  // The chains hold no list a node could walk cheaply: this visits nothing. Cluster mode collects
  // orphans with cluster/orphans.h instead.
  void ForEachChunk(const std::function<void(const engine::ChunkId&)>& fn) override;

 private:
  bool ReadsLocally(const engine::ChunkId& id) const;

  replication::ChainClient* client_;
  uint32_t chain_count_;
  Executor* io_;
  LocalBlobs local_;
};

class EngineBlobStore final : public replication::BlobStore {
 public:
  // `engine` must outlive the store.
  explicit EngineBlobStore(engine::Engine* engine) : engine_(engine) {}
  Status PutMany(const std::vector<const replication::Blob*>& blobs) override;
  Result<std::string> Read(const replication::BlobInfo& blob, uint64_t offset, uint64_t length) override;
  bool Has(const replication::BlobInfo& blob) override;
  Status Delete(const std::string& id) override;
  Status DeleteMany(const std::vector<std::string>& ids) override;
  bool ValidId(std::string_view id) const override { return engine::ChunkId::FromString(id).has_value(); }
  void ForEach(const std::function<void(const std::string& id)>& fn) override;

 private:
  engine::Engine* engine_;
};

}  // namespace cairn::cluster
