#include "engine/index.h"

namespace cairn::engine {

namespace {
constexpr size_t kInitialShardCapacity = 16;
// Grow when size exceeds 7/8 of capacity: linear probing stays short at that load with a
// well-mixed hash; memory per entry is 46 to 91 bytes depending on where each shard is in its
// doubling cycle.
bool OverLoaded(size_t size, size_t capacity) { return size * 8 > capacity * 7; }
}  // namespace

ChunkIndex::ChunkIndex() : shards_(kShards) {
  for (auto& s : shards_) {
    s.capacity = kInitialShardCapacity;
    s.slots = std::make_unique<IndexEntry[]>(s.capacity);
  }
}

const IndexEntry* ChunkIndex::Find(const ChunkId& id) const {
  const uint64_t h = HashChunkId(id);
  const Shard& s = shards_[ShardOf(h)];
  const size_t mask = s.capacity - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const IndexEntry& e = s.slots[i];
    if (e.segment == 0) return nullptr;
    if (e.id == id) return &e;
  }
}

void ChunkIndex::InsertNew(Shard& s, const IndexEntry& e, uint64_t hash) {
  const size_t mask = s.capacity - 1;
  size_t i = hash & mask;
  while (s.slots[i].segment != 0) i = (i + 1) & mask;
  s.slots[i] = e;
  ++s.size;
}

void ChunkIndex::Grow(Shard& s) { Rehash(s, s.capacity * 2); }

void ChunkIndex::Reserve(size_t total) {
  // The even share plus a little: a shard that draws more grows once, by doubling, which is
  // harmless; only loading into a table much smaller than the source clusters.
  const size_t per_shard = total / kShards + total / kShards / 16 + 16;
  for (auto& s : shards_) {
    size_t cap = s.capacity;
    while (OverLoaded(per_shard, cap)) cap *= 2;
    if (cap != s.capacity) Rehash(s, cap);
  }
}

void ChunkIndex::Rehash(Shard& s, size_t capacity) {
  Shard bigger;
  bigger.capacity = capacity;
  bigger.slots = std::make_unique<IndexEntry[]>(bigger.capacity);
  for (size_t i = 0; i < s.capacity; ++i) {
    if (s.slots[i].segment != 0) InsertNew(bigger, s.slots[i], HashChunkId(s.slots[i].id));
  }
  s = std::move(bigger);
}

void ChunkIndex::Put(const IndexEntry& e) {
  const uint64_t h = HashChunkId(e.id);
  Shard& s = shards_[ShardOf(h)];
  const size_t mask = s.capacity - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    IndexEntry& slot = s.slots[i];
    if (slot.segment == 0) break;
    if (slot.id == e.id) {
      slot = e;
      return;
    }
  }
  if (OverLoaded(s.size + 1, s.capacity)) Grow(s);
  InsertNew(s, e, h);
  ++size_;
}

bool ChunkIndex::Erase(const ChunkId& id) {
  const uint64_t h = HashChunkId(id);
  Shard& s = shards_[ShardOf(h)];
  const size_t mask = s.capacity - 1;
  size_t i = h & mask;
  while (true) {
    if (s.slots[i].segment == 0) return false;
    if (s.slots[i].id == id) break;
    i = (i + 1) & mask;
  }
  // Backward-shift deletion: move later members of the probe run into the hole when their home
  // slot does not lie cyclically in (hole, j].
  size_t hole = i;
  for (size_t j = (i + 1) & mask; s.slots[j].segment != 0; j = (j + 1) & mask) {
    const size_t home = HashChunkId(s.slots[j].id) & mask;
    const bool home_in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!home_in_range) {
      s.slots[hole] = s.slots[j];
      hole = j;
    }
  }
  s.slots[hole] = IndexEntry{};
  --s.size;
  --size_;
  return true;
}

size_t ChunkIndex::MemoryBytes() const {
  size_t bytes = 0;
  for (const auto& s : shards_) bytes += s.capacity * sizeof(IndexEntry);
  return bytes;
}

void ChunkIndex::CopyShard(size_t shard, std::vector<IndexEntry>* out) const {
  const Shard& s = shards_[shard];
  for (size_t i = 0; i < s.capacity; ++i) {
    if (s.slots[i].segment != 0) out->push_back(s.slots[i]);
  }
}

}  // namespace cairn::engine
