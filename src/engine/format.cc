#include "engine/format.h"

#include <cstdio>
#include <cstring>

#include "common/crc32c.h"

namespace cairn::engine::format {

void PutU16(std::byte* p, uint16_t v) {
  for (int i = 0; i < 2; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
void PutU32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
void PutU64(std::byte* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
uint16_t GetU16(const std::byte* p) {
  uint16_t v = 0;
  for (int i = 1; i >= 0; --i) v = static_cast<uint16_t>((v << 8) | std::to_integer<uint16_t>(p[i]));
  return v;
}
uint32_t GetU32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<uint32_t>(p[i]);
  return v;
}
uint64_t GetU64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<uint64_t>(p[i]);
  return v;
}

void EncodeSegmentHeader(const SegmentHeader& h, std::span<std::byte, kSegmentHeaderSize> out) {
  std::memset(out.data(), 0, out.size());
  std::byte* p = out.data();
  PutU64(p, kSegmentMagic);
  PutU32(p + 8, kSegmentFormatVersion);
  PutU32(p + 12, h.flags);
  PutU32(p + 16, h.segment_id);
  PutU64(p + 24, h.created_micros);
  PutU32(p + kSegmentHeaderCrcOffset, crc32c::Value(p, kSegmentHeaderCrcOffset));
}

std::optional<SegmentHeader> DecodeSegmentHeader(std::span<const std::byte> in) {
  if (in.size() < kSegmentHeaderCrcOffset + 4) return std::nullopt;
  const std::byte* p = in.data();
  if (GetU64(p) != kSegmentMagic || GetU32(p + 8) != kSegmentFormatVersion) return std::nullopt;
  if (GetU32(p + kSegmentHeaderCrcOffset) != crc32c::Value(p, kSegmentHeaderCrcOffset)) return std::nullopt;
  SegmentHeader h;
  h.flags = GetU32(p + 12);
  h.segment_id = GetU32(p + 16);
  h.created_micros = GetU64(p + 24);
  return h;
}

std::string SegmentFileName(uint32_t segment_id) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%08x.seg", segment_id);
  return buf;
}

std::optional<uint32_t> ParseSegmentFileName(std::string_view name) {
  if (name.size() != 12 || name.substr(8) != ".seg") return std::nullopt;
  uint32_t id = 0;
  for (char c : name.substr(0, 8)) {
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint32_t>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
    id = id * 16 + d;
  }
  return id;
}

void EncodeRecordHeader(const RecordHeader& h, std::span<std::byte, kRecordHeaderSize> out) {
  std::byte* p = out.data();
  PutU32(p, kRecordMagic);
  p[4] = static_cast<std::byte>(kRecordFormatVersion);
  p[5] = static_cast<std::byte>(h.type);
  PutU16(p + 6, 0);
  PutU32(p + 8, h.length);
  PutU32(p + 12, h.payload_crc);
  PutU64(p + 16, h.id.hi);
  PutU64(p + 24, h.id.lo);
  PutU64(p + 32, h.seq);
  PutU32(p + 40, h.payload_offset);
  PutU32(p + kRecordHeaderCrcOffset, crc32c::Value(p, kRecordHeaderCrcOffset));
}

HeaderCheck DecodeRecordHeader(std::span<const std::byte> in, RecordHeader* out) {
  if (in.size() < kRecordHeaderSize) return HeaderCheck::kBadMagic;
  const std::byte* p = in.data();
  if (GetU32(p) != kRecordMagic) return HeaderCheck::kBadMagic;
  if (GetU32(p + kRecordHeaderCrcOffset) != crc32c::Value(p, kRecordHeaderCrcOffset)) return HeaderCheck::kBadCrc;
  if (std::to_integer<uint8_t>(p[4]) != kRecordFormatVersion) return HeaderCheck::kBadFields;
  const auto type = std::to_integer<uint8_t>(p[5]);
  if (type < static_cast<uint8_t>(RecordType::kChunk) || type > static_cast<uint8_t>(RecordType::kPadding)) {
    return HeaderCheck::kBadFields;
  }
  out->type = static_cast<RecordType>(type);
  out->length = GetU32(p + 8);
  out->payload_crc = GetU32(p + 12);
  out->id.hi = GetU64(p + 16);
  out->id.lo = GetU64(p + 24);
  out->seq = GetU64(p + 32);
  out->payload_offset = GetU32(p + 40);
  if (out->payload_offset < kRecordHeaderSize || out->payload_offset > (1u << 20)) return HeaderCheck::kBadFields;
  if (out->type == RecordType::kChunk && out->length > kMaxChunkSize) return HeaderCheck::kBadFields;
  if (out->type == RecordType::kTombstone && out->length != kTombstonePayloadSize) return HeaderCheck::kBadFields;
  return HeaderCheck::kOk;
}

void EncodeTombstone(const TombstonePayload& t, std::span<std::byte, kTombstonePayloadSize> out) {
  PutU64(out.data(), t.deleted_seq);
  PutU32(out.data() + 8, t.segments[0]);
  PutU32(out.data() + 12, t.segments[1]);
}

TombstonePayload DecodeTombstone(std::span<const std::byte, kTombstonePayloadSize> in) {
  TombstonePayload t;
  t.deleted_seq = GetU64(in.data());
  t.segments[0] = GetU32(in.data() + 8);
  t.segments[1] = GetU32(in.data() + 12);
  return t;
}

}  // namespace cairn::engine::format

namespace cairn::engine {

std::string ChunkId::ToString() const {
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(hi),
                static_cast<unsigned long long>(lo));
  return buf;
}

std::optional<ChunkId> ChunkId::FromString(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  uint64_t parts[2] = {0, 0};
  for (size_t i = 0; i < 32; ++i) {
    const char c = hex[i];
    uint64_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint64_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<uint64_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    parts[i / 16] = parts[i / 16] * 16 + d;
  }
  return ChunkId{parts[0], parts[1]};
}

}  // namespace cairn::engine
