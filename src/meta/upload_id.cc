#include "meta/upload_id.h"

#include <cstdint>
#include <span>

#include "common/crypto.h"
#include "meta/meta_logic.h"

namespace cairn::meta {

std::string NewRandomUploadId() {
  uint64_t words[2] = {0, 0};
  crypto::RandomBytes(std::span(reinterpret_cast<uint8_t*>(words), sizeof words));
  return logic::FormatUploadId(words[0], words[1]);
}

}  // namespace cairn::meta
