// RPC framing (net/frame.h): round trips in any split, and every damaged frame refused.
#include "net/frame.h"

#include <gtest/gtest.h>

#include <random>

#include "test_util.h"

namespace cairn::net {
namespace {

std::vector<Frame> SampleFrames() {
  std::string big(100000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  return {Frame{1, 0, ""}, Frame{7, 42, "hello"}, Frame{65535, UINT64_MAX, big}, Frame{3, 9, std::string(1, '\xCA')}};
}

std::string Wire(const std::vector<Frame>& frames) {
  std::string out;
  for (const Frame& f : frames) out += EncodeFrame(f.type, f.request_id, f.body);
  return out;
}

std::vector<Frame> Drain(FrameDecoder& d) {
  std::vector<Frame> out;
  while (auto f = d.Next()) out.push_back(std::move(*f));
  return out;
}

TEST(FrameTest, LayoutIsAsDocumented) {
  const std::string w = EncodeFrame(0x0102, 0x0807060504030201ull, "ab");
  ASSERT_EQ(w.size(), kFrameHeaderSize + 2 + kFrameTrailerSize);
  EXPECT_EQ(static_cast<uint8_t>(w[0]), 0x1B);
  EXPECT_EQ(static_cast<uint8_t>(w[1]), 0xCA);
  EXPECT_EQ(w[2], 0x02);
  EXPECT_EQ(w[3], 0x01);
  EXPECT_EQ(w[4], 2);
  EXPECT_EQ(w[8], 1);
  EXPECT_EQ(w[15], 8);
  EXPECT_EQ(w.substr(16, 2), "ab");
}

TEST(FrameTest, RoundTripsWhateverTheSplit) {
  const std::vector<Frame> frames = SampleFrames();
  const std::string wire = Wire(frames);
  std::mt19937_64 rng(1);
  for (int trial = 0; trial < 50; ++trial) {
    FrameDecoder d;
    std::vector<Frame> got;
    size_t at = 0;
    while (at < wire.size()) {
      const size_t n = std::min<size_t>(wire.size() - at, 1 + rng() % (trial < 5 ? 3 : 70000));
      ASSERT_OK(d.Feed(std::string_view(wire).substr(at, n)));
      at += n;
      for (Frame& f : Drain(d)) got.push_back(std::move(f));
    }
    EXPECT_EQ(got, frames);
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(FrameTest, AnyFlippedBitIsCorruptionNeverAFrame) {
  const std::string wire = EncodeFrame(5, 77, "payload bytes");
  for (size_t i = 0; i < wire.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = wire;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      FrameDecoder d;
      const Status fed = d.Feed(bad);
      auto f = d.Next();
      // A flip in the length field may make the frame look longer: incomplete, not delivered.
      EXPECT_FALSE(f.has_value()) << "byte " << i << " bit " << bit;
      if (!fed.ok() || !d.status().ok()) {
        EXPECT_TRUE((fed.ok() ? d.status() : fed).IsCorruption());
      } else {
        EXPECT_GT(d.buffered(), 0u);
      }
    }
  }
}

TEST(FrameTest, OversizedAndGarbageStreamsFailAtOnce) {
  FrameDecoder garbage;
  EXPECT_TRUE(garbage.Feed("GET / HTTP/1.1\r\n").IsCorruption());
  EXPECT_TRUE(garbage.Feed("more").IsCorruption());  // stays failed
  std::string huge = EncodeFrame(1, 1, "");
  const uint32_t len = kMaxFrameBody + 1;
  for (int i = 0; i < 4; ++i) huge[4 + i] = static_cast<char>((len >> (8 * i)) & 0xff);
  FrameDecoder d;
  EXPECT_TRUE(d.Feed(std::string_view(huge).substr(0, 8)).IsCorruption());
}

TEST(FrameTest, AGoodFrameBeforeADamagedOneIsDelivered) {
  std::string wire = EncodeFrame(1, 1, "first") + EncodeFrame(2, 2, "second");
  wire[wire.size() - 1] ^= 1;
  FrameDecoder d;
  ASSERT_OK(d.Feed(wire));
  auto first = d.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->body, "first");
  EXPECT_FALSE(d.Next().has_value());
  EXPECT_TRUE(d.status().IsCorruption());
}

TEST(FrameTest, TheEnvelopeAroundABodyIsTheEncodedFrame) {
  const std::string body(3000, 'x');
  const FrameEnvelope e = EncodeFrameEnvelope(7, 42, body);
  EXPECT_EQ(e.head.size(), kFrameHeaderSize);
  EXPECT_EQ(e.trailer.size(), kFrameTrailerSize);
  EXPECT_EQ(e.head + body + e.trailer, EncodeFrame(7, 42, body));
}

}  // namespace
}  // namespace cairn::net
