// ChunkIndex: the engine's in-memory map from chunk id to where its record lives.
//
// A fixed number of shards, each an open-addressing hash table with linear probing and
// backward-shift deletion, storing 40-byte entries inline (no per-entry allocation). Sharding
// lets the checkpoint copy one shard at a time, so that no single pause copies the whole index.
//
// Thread-safety: none. The engine guards the index with its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/chunk_id.h"

namespace cairn::engine {

// Where a chunk's record is. Offsets fit in 32 bits because segments are smaller than 4 GiB.
struct IndexEntry {
  ChunkId id;
  uint64_t seq = 0;          // sequence number of the record
  uint32_t segment = 0;      // segment id; 0 marks an empty slot (segment ids start at 1)
  uint32_t offset = 0;       // record offset within the segment
  uint32_t length = 0;       // payload length
  uint32_t payload_crc = 0;  // CRC32C of the payload
};
static_assert(sizeof(IndexEntry) == 40);

class ChunkIndex {
 public:
  static constexpr size_t kShards = 64;

  ChunkIndex();

  // Returns the entry for `id`, or nullptr. The pointer is valid until the next mutation.
  const IndexEntry* Find(const ChunkId& id) const;
  // Inserts or replaces the entry for e.id.
  void Put(const IndexEntry& e);
  // Removes `id`; returns whether it was present.
  bool Erase(const ChunkId& id);

  // Sizes the shards for `total` entries. Loading entries in another table's slot order into a
  // table smaller than that one makes linear probing cluster badly (quadratic in the worst case),
  // so a checkpoint load reserves first.
  void Reserve(size_t total);

  size_t size() const { return size_; }
  // Bytes of memory held by the tables.
  size_t MemoryBytes() const;

  // Appends shard `shard`'s entries to `out`.
  void CopyShard(size_t shard, std::vector<IndexEntry>* out) const;
  // Calls fn(entry) for every entry; fn must not mutate the index.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& s : shards_) {
      for (size_t i = 0; i < s.capacity; ++i) {
        if (s.slots[i].segment != 0) fn(s.slots[i]);
      }
    }
  }
  // Removes every entry for which pred(entry) is true.
  template <typename Pred>
  size_t EraseIf(Pred&& pred) {
    std::vector<ChunkId> doomed;
    ForEach([&](const IndexEntry& e) {
      if (pred(e)) doomed.push_back(e.id);
    });
    for (const auto& id : doomed) Erase(id);
    return doomed.size();
  }

 private:
  struct Shard {
    std::unique_ptr<IndexEntry[]> slots;
    size_t capacity = 0;  // a power of two
    size_t size = 0;
  };

  static size_t ShardOf(uint64_t hash) { return hash >> 58; }  // top 6 bits: 64 shards
  static void Grow(Shard& s);
  static void Rehash(Shard& s, size_t capacity);
  static void InsertNew(Shard& s, const IndexEntry& e, uint64_t hash);

  std::vector<Shard> shards_;
  size_t size_ = 0;
};

}  // namespace cairn::engine
