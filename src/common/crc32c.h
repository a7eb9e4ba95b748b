// CRC32C (Castagnoli), the checksum of every stored record and every chunk in flight.
// Computed with ISA-L's crc32_iscsi, which uses the SSE4.2 / PCLMUL instructions when present.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace cairn::crc32c {

// Returns the CRC32C of data[0, n) appended to a stream whose CRC32C so far is `crc`
// (0 for an empty stream). Value(buf, n) == Extend(0, buf, n).
uint32_t Extend(uint32_t crc, const void* data, size_t n);
inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::span<const std::byte> s) { return Extend(0, s.data(), s.size()); }

}  // namespace cairn::crc32c
