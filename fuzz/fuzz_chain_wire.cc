// Fuzz target: the chain replication message codec (replication/wire.h). The whole input is a
// frame body as a peer would send it.
//
// Properties checked for every input:
//   - Decode returns, without reading outside the input (ASan) or undefined behaviour (UBSan);
//     a refusal is Corruption.
//   - The encoding is canonical: when Decode accepts the input, Encode of the message gives the
//     input back byte for byte.
//   - That encoding decodes again to a message equal, field by field, to the first one (compared
//     by the functions below, written apart from the codec), and encodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

#include "check.h"
#include "replication/wire.h"

namespace cairn::replication {

namespace wire {
namespace {

void FuzzDecode(std::string_view in) {
  Result<Message> decoded = Decode(in);
  if (!decoded.ok()) {
    FUZZ_CHECK(decoded.status().IsCorruption());
    return;
  }
  const std::string body = Encode(*decoded);
  FUZZ_CHECK(body == in);
  Result<Message> again = Decode(body);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *decoded);
  FUZZ_CHECK(Encode(*again) == body);
}

}  // namespace
}  // namespace wire
}  // namespace cairn::replication

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::replication::wire::FuzzDecode(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
