// ChunkId: the 128-bit name of a stored chunk. Chosen by the object layer (random, or derived
// from the object version and the chunk index); the engine treats it as opaque.
// Thread-safety: a value type.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace cairn::engine {

struct ChunkId {
  uint64_t hi = 0;
  uint64_t lo = 0;

  friend bool operator==(const ChunkId&, const ChunkId&) = default;
  friend auto operator<=>(const ChunkId&, const ChunkId&) = default;

  // 32 lowercase hex digits, hi first.
  std::string ToString() const;
  static std::optional<ChunkId> FromString(std::string_view hex);
};

// A well-mixed 64-bit hash (the splitmix64 finalizer over both halves): ids made by tests are
// often sequential, so the raw bits are not used directly.
inline uint64_t HashChunkId(const ChunkId& id) {
  uint64_t x = id.hi * 0x9E3779B97F4A7C15ull ^ id.lo;
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

}  // namespace cairn::engine

template <>
struct std::hash<cairn::engine::ChunkId> {
  size_t operator()(const cairn::engine::ChunkId& id) const { return cairn::engine::HashChunkId(id); }
};
