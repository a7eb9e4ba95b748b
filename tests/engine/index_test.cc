// ChunkIndex against a reference map, under random inserts, replacements and erases.
#include "engine/index.h"

#include <random>
#include <unordered_map>

#include "test_util.h"

namespace cairn::engine {
namespace {

IndexEntry Entry(const ChunkId& id, uint64_t seq) {
  return IndexEntry{id, seq, static_cast<uint32_t>(seq % 7 + 1), static_cast<uint32_t>(seq), 100, 42};
}

TEST(ChunkIndexTest, FindPutErase) {
  ChunkIndex index;
  EXPECT_EQ(index.Find(ChunkId{1, 2}), nullptr);
  index.Put(Entry(ChunkId{1, 2}, 5));
  ASSERT_NE(index.Find(ChunkId{1, 2}), nullptr);
  EXPECT_EQ(index.Find(ChunkId{1, 2})->seq, 5u);
  index.Put(Entry(ChunkId{1, 2}, 6));
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.Find(ChunkId{1, 2})->seq, 6u);
  EXPECT_TRUE(index.Erase(ChunkId{1, 2}));
  EXPECT_FALSE(index.Erase(ChunkId{1, 2}));
  EXPECT_EQ(index.size(), 0u);
}

// Sequential ids (as tests and some callers make them) and random ones, through several growth
// steps, with erases interleaved so that backward-shift deletion runs on long probe chains.
TEST(ChunkIndexTest, MatchesAReferenceMapUnderRandomOperations) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    std::mt19937_64 g(seed);
    ChunkIndex index;
    std::unordered_map<ChunkId, uint64_t> ref;
    std::vector<ChunkId> ids;
    for (int op = 0; op < 200000; ++op) {
      const uint64_t r = g() % 10;
      if (r < 5 || ids.empty()) {
        ChunkId id = (seed == 1) ? ChunkId{0, static_cast<uint64_t>(op)} : ChunkId{g(), g()};
        index.Put(Entry(id, static_cast<uint64_t>(op)));
        ref[id] = static_cast<uint64_t>(op);
        ids.push_back(id);
      } else if (r < 8) {
        const ChunkId& id = ids[g() % ids.size()];
        EXPECT_EQ(index.Erase(id), ref.erase(id) == 1);
      } else {
        const ChunkId& id = ids[g() % ids.size()];
        const IndexEntry* e = index.Find(id);
        auto it = ref.find(id);
        ASSERT_EQ(e != nullptr, it != ref.end());
        if (e != nullptr) {
          EXPECT_EQ(e->seq, it->second);
        }
      }
    }
    ASSERT_EQ(index.size(), ref.size());
    for (const auto& [id, seq] : ref) {
      const IndexEntry* e = index.Find(id);
      ASSERT_NE(e, nullptr);
      EXPECT_EQ(e->seq, seq);
    }
    size_t seen = 0;
    index.ForEach([&](const IndexEntry& e) {
      ++seen;
      EXPECT_TRUE(ref.contains(e.id));
    });
    EXPECT_EQ(seen, ref.size());
    EXPECT_GE(index.MemoryBytes(), ref.size() * sizeof(IndexEntry));
  }
}

}  // namespace
}  // namespace cairn::engine

namespace cairn::engine {
namespace {

// The slow reopen at 10 million chunks: a checkpoint lists entries in the source table's slot
// order, and inserting them in that order into a small, growing table made linear probing
// cluster quadratically. Reserve sizes the table first. This test checks that a load after
// Reserve is complete and correct; its speed is measured by `cairn bench engine --workload
// reopen` (docs/benchmarks.md), not here.
TEST(ChunkIndexTest, LoadingInAnotherTablesSlotOrderAfterReserveIsLinear) {
  ChunkIndex source;
  std::mt19937_64 g(7);
  for (int i = 0; i < 300000; ++i) source.Put(IndexEntry{ChunkId{g(), g()}, 1, 1, 0, 0, 0});
  std::vector<IndexEntry> order;
  for (size_t s = 0; s < ChunkIndex::kShards; ++s) source.CopyShard(s, &order);
  ChunkIndex copy;
  copy.Reserve(order.size());
  for (const auto& e : order) copy.Put(e);
  EXPECT_EQ(copy.size(), source.size());
  for (const auto& e : order) ASSERT_NE(copy.Find(e.id), nullptr);
}

}  // namespace
}  // namespace cairn::engine
