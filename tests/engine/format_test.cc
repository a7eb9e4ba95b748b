// Encoding and decoding of the engine's on-disk structures (docs/formats/engine.md).
#include "engine/format.h"

#include <array>

#include "test_util.h"

namespace cairn::engine::format {
namespace {

TEST(FormatTest, RecordHeaderRoundTrips) {
  RecordHeader h;
  h.type = RecordType::kChunk;
  h.length = 12345;
  h.payload_crc = 0xDEADBEEF;
  h.id = ChunkId{0x0102030405060708, 0x1112131415161718};
  h.seq = 987654321;
  std::array<std::byte, kRecordHeaderSize> buf;
  EncodeRecordHeader(h, buf);
  EXPECT_EQ(GetU32(buf.data()), kRecordMagic);
  RecordHeader d;
  ASSERT_EQ(DecodeRecordHeader(buf, &d), HeaderCheck::kOk);
  EXPECT_EQ(d.length, h.length);
  EXPECT_EQ(d.payload_crc, h.payload_crc);
  EXPECT_EQ(d.id, h.id);
  EXPECT_EQ(d.seq, h.seq);
  EXPECT_EQ(RecordSize(d), AlignUp(kRecordHeaderSize + 12345, kRecordAlignment));
}

TEST(FormatTest, AnyFlippedHeaderBitIsDetected) {
  RecordHeader h;
  h.length = 10;
  h.id = ChunkId{1, 2};
  std::array<std::byte, kRecordHeaderSize> buf;
  EncodeRecordHeader(h, buf);
  for (size_t bit = 0; bit < kRecordHeaderSize * 8; ++bit) {
    auto copy = buf;
    copy[bit / 8] ^= std::byte{static_cast<uint8_t>(1u << (bit % 8))};
    RecordHeader d;
    EXPECT_NE(DecodeRecordHeader(copy, &d), HeaderCheck::kOk) << "bit " << bit;
  }
}

TEST(FormatTest, SegmentHeaderRoundTripsAndRejectsDamage) {
  std::array<std::byte, kSegmentHeaderSize> buf;
  EncodeSegmentHeader({kSegmentFlagCompactionOutput, 77, 123456}, buf);
  auto d = DecodeSegmentHeader(buf);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->segment_id, 77u);
  EXPECT_EQ(d->flags, kSegmentFlagCompactionOutput);
  buf[17] ^= std::byte{1};
  EXPECT_FALSE(DecodeSegmentHeader(buf).has_value());
}

TEST(FormatTest, SegmentFileNames) {
  EXPECT_EQ(SegmentFileName(0x2a), "0000002a.seg");
  EXPECT_EQ(ParseSegmentFileName("0000002a.seg"), 0x2au);
  EXPECT_FALSE(ParseSegmentFileName("0000002A.seg").has_value());
  EXPECT_FALSE(ParseSegmentFileName("2a.seg").has_value());
  EXPECT_FALSE(ParseSegmentFileName("0000002a.tmp").has_value());
}

TEST(FormatTest, TombstoneRoundTrips) {
  TombstonePayload t;
  t.deleted_seq = 99;
  t.segments[0] = 5;
  std::array<std::byte, kTombstonePayloadSize> buf;
  EncodeTombstone(t, buf);
  auto d = DecodeTombstone(buf);
  EXPECT_EQ(d.deleted_seq, 99u);
  EXPECT_EQ(d.segments[0], 5u);
  EXPECT_EQ(d.segments[1], kNoSegment);
}

TEST(FormatTest, ChunkIdHex) {
  ChunkId id{0xabc, 0x123};
  EXPECT_EQ(id.ToString(), "0000000000000abc0000000000000123");
  EXPECT_EQ(ChunkId::FromString(id.ToString()), id);
  EXPECT_FALSE(ChunkId::FromString("xyz").has_value());
}

}  // namespace
}  // namespace cairn::engine::format
