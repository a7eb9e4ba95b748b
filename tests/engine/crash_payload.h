// The crash test's chunk payloads: the bytes of chunk `id` are a splitmix64 stream seeded by the
// id, so the parent can check a chunk's content knowing only its id and length. Shared by the
// child that writes them (tests/tools/engine_crash_child.cc) and the test that verifies them
// (tests/engine/crash_test.cc). Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/chunk_id.h"

namespace cairn::engine::crash {

inline uint64_t SplitMix64(uint64_t& state) {
  state += 0x9E3779B97F4A7C15ull;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline std::vector<std::byte> ChunkPayload(const ChunkId& id, size_t length) {
  std::vector<std::byte> out(length);
  uint64_t state = id.hi ^ (id.lo * 0xD1B54A32D192ED03ull);
  for (size_t i = 0; i < length; i += sizeof(uint64_t)) {
    const uint64_t v = SplitMix64(state);
    std::memcpy(out.data() + i, &v, std::min(sizeof(uint64_t), length - i));
  }
  return out;
}

}  // namespace cairn::engine::crash
