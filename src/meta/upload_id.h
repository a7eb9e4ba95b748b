// Random multipart upload ids for the stores that draw them (a caller may supply its own).
//
// Thread-safety: thread-safe.
#pragma once

#include <string>

namespace cairn::meta {

// 128 bits from the operating system's generator (crypto::RandomBytes), formatted as
// logic::FormatUploadId does: ids that no two nodes of a cluster draw alike.
std::string NewRandomUploadId();

}  // namespace cairn::meta
