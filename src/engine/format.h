// The engine's on-disk formats: segment files, records, the MANIFEST and the index checkpoint.
// docs/formats/engine.md describes every field; each constant below points at its section.
// All integers are little-endian. Thread-safety: pure functions and constants.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "engine/chunk_id.h"

namespace cairn::engine::format {

// ---- Segment files (engine.md, "Segment file") -------------------------------------------
// Named "<id as 8 hex digits>.seg". The first kSegmentHeaderSize bytes are the segment header;
// records follow from kSegmentHeaderSize on. The header is a full 4 KiB so that records start at
// an offset that satisfies any O_DIRECT alignment up to 4 KiB.
inline constexpr uint64_t kSegmentMagic = 0x4745534E52494143ull;  // "CAIRNSEG" read as little-endian
inline constexpr uint32_t kSegmentFormatVersion = 1;
inline constexpr size_t kSegmentHeaderSize = 4096;
// Segment header layout: magic u64 @0, version u32 @8, flags u32 @12, segment id u32 @16,
// reserved u32 @20, creation time (µs since epoch) u64 @24, crc32c of bytes [0,32) u32 @32.
inline constexpr size_t kSegmentHeaderCrcOffset = 32;
// Segment flag: written by compaction. Such a segment counts only once the MANIFEST lists it.
inline constexpr uint32_t kSegmentFlagCompactionOutput = 1;

struct SegmentHeader {
  uint32_t flags = 0;
  uint32_t segment_id = 0;
  uint64_t created_micros = 0;
};
void EncodeSegmentHeader(const SegmentHeader& h, std::span<std::byte, kSegmentHeaderSize> out);
// nullopt when the magic, version or crc is wrong.
std::optional<SegmentHeader> DecodeSegmentHeader(std::span<const std::byte> in);
std::string SegmentFileName(uint32_t segment_id);
// The id in a segment file name, or nullopt for any other name.
std::optional<uint32_t> ParseSegmentFileName(std::string_view name);

// ---- Records (engine.md, "Record") ---------------------------------------------------------
// Every record starts at an 8-byte aligned offset with this 48-byte header:
//   magic u32 @0, version u8 @4, type u8 @5, flags u16 @6, payload length u32 @8,
//   payload crc32c u32 @12, chunk id (hi u64 @16, lo u64 @24), sequence number u64 @32,
//   payload offset u32 @40 (from the record start; always kRecordHeaderSize in version 1),
//   header crc32c u32 @44 covering bytes [0,44).
// The header crc covers the payload crc, so together they cover header and payload.
// The record occupies AlignUp(payload offset + length, kRecordAlignment) bytes.
inline constexpr uint32_t kRecordMagic = 0x63655243u;  // "CRec" read as little-endian
inline constexpr uint8_t kRecordFormatVersion = 1;
inline constexpr size_t kRecordHeaderSize = 48;
inline constexpr size_t kRecordHeaderCrcOffset = 44;
inline constexpr size_t kRecordAlignment = 8;
// Largest chunk payload the engine stores. Keeps every offset and length in 32 bits.
inline constexpr uint32_t kMaxChunkSize = 64u << 20;

enum class RecordType : uint8_t {
  kChunk = 1,      // payload: the chunk's bytes
  kTombstone = 2,  // payload: TombstonePayload, 16 bytes
  kPadding = 3,    // payload: zeros; fills a batch up to the O_DIRECT alignment
};

struct RecordHeader {
  RecordType type = RecordType::kChunk;
  uint32_t length = 0;
  uint32_t payload_crc = 0;
  ChunkId id;
  uint64_t seq = 0;
  uint32_t payload_offset = kRecordHeaderSize;
};

inline constexpr uint64_t AlignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }
inline constexpr uint64_t AlignDown(uint64_t x, uint64_t a) { return x / a * a; }
inline uint64_t RecordSize(const RecordHeader& h) { return AlignUp(uint64_t{h.payload_offset} + h.length, kRecordAlignment); }

void EncodeRecordHeader(const RecordHeader& h, std::span<std::byte, kRecordHeaderSize> out);
enum class HeaderCheck : uint8_t { kOk, kBadMagic, kBadCrc, kBadFields };
// Decodes and checks magic, version, type, header crc and the field ranges.
HeaderCheck DecodeRecordHeader(std::span<const std::byte> in, RecordHeader* out);

// Tombstone payload (engine.md, "Tombstones"): the sequence number of the deleted chunk record,
// u64 @0, and the segments that may still hold a copy of it, u32 @8 and u32 @12
// (kNoSegment when unused). The tombstone may be dropped by compaction once none of them exists.
inline constexpr size_t kTombstonePayloadSize = 16;
inline constexpr uint32_t kNoSegment = 0xFFFFFFFFu;
struct TombstonePayload {
  uint64_t deleted_seq = 0;
  uint32_t segments[2] = {kNoSegment, kNoSegment};
};
void EncodeTombstone(const TombstonePayload& t, std::span<std::byte, kTombstonePayloadSize> out);
TombstonePayload DecodeTombstone(std::span<const std::byte, kTombstonePayloadSize> in);

// ---- MANIFEST (engine.md, "MANIFEST") ------------------------------------------------------
// Rewritten whole (write temp file, fdatasync, rename, fsync directory) twice per compaction:
// once adding the output, once dropping the victims. A newer version refuses to open. Layout: magic u64, version u32, live segment count u32, highest segment id allocated
// u32, reserved u32, then count × segment id u32, then crc32c u32 of everything before it.
inline constexpr uint64_t kManifestMagic = 0x464E414D4E524143ull;  // "CARNMANF"
inline constexpr uint32_t kManifestFormatVersion = 1;
inline constexpr char kManifestFileName[] = "MANIFEST";

// ---- Index checkpoint (engine.md, "Index checkpoint") ---------------------------------------
// "INDEX": header (magic u64, version u32, segment count u32, entry count u64, next sequence
// number u64, crc32c u32 of the previous 32 bytes, reserved u32), then segment count × (segment
// id u32, tombstone bytes in the covered range u32, covered end u64), crc32c u32, pad u32; then
// blocks of at most
// kCheckpointBlockEntries entries, each block: entry count u32, crc32c u32 of the entries, then
// entries of kCheckpointEntrySize bytes (chunk id hi u64, lo u64, seq u64, segment u32,
// record offset u32, length u32, payload crc u32).
inline constexpr uint64_t kCheckpointMagic = 0x54504B434E524143ull;  // "CARNCKPT"
inline constexpr uint32_t kCheckpointFormatVersion = 1;
inline constexpr char kCheckpointFileName[] = "INDEX";
inline constexpr size_t kCheckpointHeaderSize = 40;
inline constexpr size_t kCheckpointEntrySize = 40;
inline constexpr uint32_t kCheckpointBlockEntries = 4096;

// Little-endian helpers.
void PutU16(std::byte* p, uint16_t v);
void PutU32(std::byte* p, uint32_t v);
void PutU64(std::byte* p, uint64_t v);
uint16_t GetU16(const std::byte* p);
uint32_t GetU32(const std::byte* p);
uint64_t GetU64(const std::byte* p);

}  // namespace cairn::engine::format
