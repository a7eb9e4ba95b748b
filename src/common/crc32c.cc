#include "common/crc32c.h"

#include <isa-l/crc.h>

#include <climits>

namespace cairn::crc32c {

uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  // ISA-L's crc32_iscsi takes and returns the CRC register without the final inversion, so the
  // standard value is obtained by inverting on the way in and out.
  uint32_t reg = ~crc;
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
  while (n > 0) {
    const int step = n > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(n);
    reg = crc32_iscsi(p, step, reg);
    p += step;
    n -= static_cast<size_t>(step);
  }
  return ~reg;
}

}  // namespace cairn::crc32c
