#include "net/frame.h"

#include <cstring>

#include "common/crc32c.h"

namespace cairn::net {
namespace {

void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLe(std::string_view s, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(s[at + i])) << (8 * i);
  return v;
}

}  // namespace

FrameEnvelope EncodeFrameEnvelope(uint16_t type, uint64_t request_id, std::string_view body) {
  FrameEnvelope e;
  e.head.reserve(kFrameHeaderSize);
  PutU16(&e.head, kFrameMagic);
  PutU16(&e.head, type);
  PutU32(&e.head, static_cast<uint32_t>(body.size()));
  PutU64(&e.head, request_id);
  uint32_t crc = crc32c::Value(e.head.data(), e.head.size());
  crc = crc32c::Extend(crc, body.data(), body.size());
  PutU32(&e.trailer, crc);
  return e;
}

std::string EncodeFrame(uint16_t type, uint64_t request_id, std::string_view body) {
  const FrameEnvelope e = EncodeFrameEnvelope(type, request_id, body);
  std::string out;
  out.reserve(e.head.size() + body.size() + e.trailer.size());
  out.append(e.head).append(body).append(e.trailer);
  return out;
}

Status FrameDecoder::CheckHeader() {
  const std::string_view pending = std::string_view(buffer_).substr(consumed_);
  // The magic is checked as soon as its bytes are there, so garbage fails at once.
  if (pending.size() >= 1 && static_cast<uint8_t>(pending[0]) != (kFrameMagic & 0xff)) {
    return Status::Corruption("RPC frame: bad magic");
  }
  if (pending.size() >= 2 && GetLe(pending, 0, 2) != kFrameMagic) return Status::Corruption("RPC frame: bad magic");
  if (pending.size() >= 8 && GetLe(pending, 4, 4) > kMaxFrameBody) {
    return Status::Corruption("RPC frame: body of " + std::to_string(GetLe(pending, 4, 4)) + " bytes");
  }
  return Status::OK();
}

Status FrameDecoder::Feed(std::span<const std::byte> data) {
  if (!status_.ok()) return status_;
  // Drop what was already handed out before growing the buffer.
  if (consumed_ > 0 && consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  } else if (consumed_ > (1 << 20)) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(reinterpret_cast<const char*>(data.data()), data.size());
  status_ = CheckHeader();
  return status_;
}

std::optional<Frame> FrameDecoder::Next() {
  if (!status_.ok()) return std::nullopt;
  const std::string_view pending = std::string_view(buffer_).substr(consumed_);
  if (pending.size() < kFrameHeaderSize) return std::nullopt;
  const size_t body = GetLe(pending, 4, 4);
  const size_t total = kFrameHeaderSize + body + kFrameTrailerSize;
  if (pending.size() < total) return std::nullopt;
  const uint32_t want = static_cast<uint32_t>(GetLe(pending, kFrameHeaderSize + body, 4));
  if (crc32c::Value(pending.data(), kFrameHeaderSize + body) != want) {
    status_ = Status::Corruption("RPC frame: CRC mismatch");
    return std::nullopt;
  }
  Frame f;
  f.type = static_cast<uint16_t>(GetLe(pending, 2, 2));
  f.request_id = GetLe(pending, 8, 8);
  f.body = std::string(pending.substr(kFrameHeaderSize, body));
  consumed_ += total;
  status_ = CheckHeader();  // the next frame's first bytes may already be here
  return f;
}

}  // namespace cairn::net
