// ReplicaStore: the disk under a node's chain replicas: each chain's DurableState (records,
// recent results of applied operation ids, last applied sequence, sync log) in one RocksDB.
//
// The ChainReplica state machine (chain.h) asks for durable writes (DiskWrite) and is told when
// they are on stable storage; this is where they go. A Batch gathers the writes of any number of
// replicas, encoding them at once (the DiskWrite's pointers are only valid until the replica's
// next input), and Commit writes it; the writer commits every queued batch and syncs once:
// group commit across chains. Batches must be committed in the order their writes were started.
//
// Layout (every key starts with 'C' and the chain id, 4 bytes big-endian, so that one chain's
// keys are one ordered range):
//   C<chain>m            last applied sequence, then the highest update stamp: u64 little-endian each
//   C<chain>r<key>       record: u8 1 = value, 0 = tombstone; u64 seq; the value bytes (a
//                        tombstone is deleted when an update purges it)
//   C<chain>o<op, 8 BE>  result of an applied operation id: u64 seq; u64 stamp; the state
//                        machine's result bytes (deleted when an update forgets it)
//   C<chain>l<seq, 8 BE> an update of the sync log, encoded as a wire message (wire.h)
//   C<chain>c            present once the replica held a complete copy (founding member, or a
//                        resync installed with every blob it names copied; an install clears it
//                        until then): only such a replica may be taken back as the chain's
//                        serving member after a restart (an emptied or replaced disk is not)
//   V                    the store's format (one byte, 4); a store without it that holds anything
//                        is refused
//
// Thread-safety: Open, Load and Commit are thread-safe; a Batch belongs to one thread.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/result.h"
#include "replication/chain.h"

namespace rocksdb {
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace cairn::replication {

class ReplicaStore {
 public:
  class Batch {
   public:
    Batch();
    ~Batch();
    Batch(Batch&&) noexcept;
    Batch& operator=(Batch&&) noexcept;
    // Encodes `write` (of the replica of `chain`) into the batch now.
    void Add(ChainId chain, const DiskWrite& write);
    bool empty() const { return count_ == 0; }

   private:
    friend class ReplicaStore;
    std::unique_ptr<rocksdb::WriteBatch> batch_;
    size_t count_ = 0;
  };

  // Opens (creating) the store in `dir`.
  static Result<std::unique_ptr<ReplicaStore>> Open(const std::string& dir);
  ~ReplicaStore();
  ReplicaStore(const ReplicaStore&) = delete;
  ReplicaStore& operator=(const ReplicaStore&) = delete;

  // Writes the batch; with `sync`, returns once it and every batch committed before it are on
  // stable storage (one WAL sync covers the earlier unsynced writes too).
  Status Commit(Batch& batch, bool sync);
  struct Loaded {
    std::map<ChainId, DurableState> chains;  // every chain the store holds anything of
    std::set<ChainId> complete;              // those whose copy was once complete
  };
  Result<Loaded> LoadAll();
  // What the store holds of one chain (empty when nothing).
  Result<DurableState> LoadChain(ChainId chain);
  // Records, durably, that this store's copy of `chain` is complete (a founding member, or a
  // resync whose install and blob copy are both done; an install alone clears the mark).
  Status MarkComplete(ChainId chain);
  // Drops everything of one chain (this node no longer holds a replica of it).
  Status DropChain(ChainId chain);

 private:
  // Every chain's state, or `only` that chain's.
  Result<Loaded> Load(std::optional<ChainId> only);

  explicit ReplicaStore(std::unique_ptr<rocksdb::DB> db);
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace cairn::replication
