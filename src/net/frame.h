// The framing of Cairn's internal RPC (docs/design/cluster.md, "Internal RPC").
//
// A frame on the wire:
//
//   offset  size  field
//   0       2     magic 0xCA1B (little-endian bytes 1B CA)
//   2       2     type (what the body is; defined by the layer that sends it)
//   4       4     body length in bytes (at most kMaxFrameBody)
//   8       8     request id (replies carry the id of their request)
//   16      n     body
//   16+n    4     CRC32C of bytes [0, 16+n)
//
// All integers little-endian. A frame whose magic, length or CRC is wrong is never delivered:
// the decoder reports Corruption and the connection is closed (a byte stream that lost its
// framing cannot be trusted to find it again).
//
// Thread-safety: EncodeFrame is pure; a FrameDecoder is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/status.h"

namespace cairn::net {

inline constexpr uint16_t kFrameMagic = 0xCA1B;
inline constexpr size_t kFrameHeaderSize = 16;
inline constexpr size_t kFrameTrailerSize = 4;
// The largest body: a 1 MiB chunk plus room for its update's fields.
inline constexpr uint32_t kMaxFrameBody = (1u << 20) + 64 * 1024;

struct Frame {
  uint16_t type = 0;
  uint64_t request_id = 0;
  std::string body;

  friend bool operator==(const Frame&, const Frame&) = default;
};

// What goes around a body: head + body + trailer are the frame's bytes. A sender writes the body
// from where it lies (no copy). REQUIRES: body.size() <= kMaxFrameBody.
struct FrameEnvelope {
  std::string head;     // kFrameHeaderSize bytes
  std::string trailer;  // kFrameTrailerSize bytes: the CRC32C of head and body
};
FrameEnvelope EncodeFrameEnvelope(uint16_t type, uint64_t request_id, std::string_view body);
// The frame's bytes. REQUIRES: body.size() <= kMaxFrameBody.
std::string EncodeFrame(uint16_t type, uint64_t request_id, std::string_view body);

// Reassembles frames from a byte stream that arrives in pieces of any size.
class FrameDecoder {
 public:
  // Appends bytes. Error (Corruption) when they cannot start or continue a valid frame; the
  // decoder then stays failed.
  Status Feed(std::span<const std::byte> data);
  Status Feed(std::string_view data) { return Feed(std::as_bytes(std::span(data.data(), data.size()))); }
  // The next complete frame, or nullopt when none is complete yet or the stream is corrupt
  // (status() tells which).
  std::optional<Frame> Next();
  // OK, or the Corruption that stopped the decoder.
  const Status& status() const { return status_; }
  // Bytes held that are not yet a complete frame.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  Status CheckHeader();

  std::string buffer_;
  size_t consumed_ = 0;  // bytes of buffer_ already returned as frames
  Status status_;
};

}  // namespace cairn::net
