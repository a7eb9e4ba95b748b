// The chain message codec (replication/wire.h): every message kind survives a round trip with
// edge values, the bytes are laid out as documented, and every malformed body is Corruption.
#include "replication/wire.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "test_util.h"

namespace cairn::replication {

void PrintTo(const Message& m, std::ostream* os) { *os << Describe(m); }

namespace wire {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kMax32 = std::numeric_limits<uint32_t>::max();

const std::vector<StatusCode> kAllCodes = {
#define CAIRN_CODE_ROW(name, value, desc) StatusCode::k##name,
    CAIRN_ERROR_CODES(CAIRN_CODE_ROW)
#undef CAIRN_CODE_ROW
};

const std::string kBinary("\0k\xff\x01\0", 5);

StoreState BigStore(size_t records) {
  StoreState s;
  for (size_t i = 0; i < records; ++i) {
    const std::string key = "key/" + std::to_string(i) + std::string(1, '\0');
    s.records[key] = i % 3 == 0 ? Record{std::nullopt, i} : Record{std::string(i % 50, static_cast<char>(i)), i};
    s.ops[i * 7919] = WriteResult{i, i % 2 == 0 ? "1" : std::string(i % 7, static_cast<char>(i)), 1700000000000 + i};
  }
  s.last_seq = records;
  s.stamp_ms = 1700000000000 + records;
  return s;
}

// One of every kind, most several times, with edge values.
std::vector<Message> Samples() {
  std::vector<Message> out;
  out.push_back(Update{});
  out.push_back(Update{kMax32, kMax, kMax, kMax, kMax, {KvMutation{kBinary, kBinary}}, kBinary, std::nullopt, kMax,
                       {kMax, 0, 7}, {kBinary, "", "gone"}});
  out.push_back(Update{1, 2, 3, 1, 4, {KvMutation{"k", std::string()}}, ""});  // an empty value is not a delete
  out.push_back(Update{1, 2, 3, 1, 4, {KvMutation{"", std::nullopt}, KvMutation{"k", "v"}}, "r"});
  out.push_back(Ack{});
  out.push_back(Ack{kMax32, kMax, kMax, kMax});
  out.push_back(Commit{7, 8, 9});
  out.push_back(StaleChain{kMax32, 0});
  out.push_back(ClientWrite{kMax, 1, 2, kMax, kBinary, std::nullopt, {}, kMax});
  out.push_back(ClientWrite{0, 0, 0, 0, std::string(1, '\0')});
  out.push_back(ClientWriteReply{});
  out.push_back(ClientWriteReply{kMax, kMax, Status::Busy("not the head"), WriteResult{kMax, kBinary, kMax}, kMax});
  out.push_back(ClientRead{1, 2, 3, kBinary});
  out.push_back(ClientReadReply{});
  out.push_back(ClientReadReply{5, Status::OK(), Record{kBinary, kMax}, 6});
  out.push_back(ClientReadReply{5, Status::Timeout(kBinary), Record{std::nullopt, 3}, 6});
  out.push_back(SyncRequest{kMax32, kMax});
  out.push_back(SyncData{});
  out.push_back(SyncData{3, 4, BigStore(20)});
  out.push_back(VersionQuery{1, 2, kMax, ""});
  out.push_back(VersionReply{1, 2, 3, Status::NotFound(), 0});
  out.push_back(VersionReply{kMax32, kMax, kMax, Status(StatusCode::kInvalidChunkSize, "x"), kMax});
  out.push_back(ClientQuery{});
  out.push_back(ClientQuery{kMax, kMax32, kMax, kBinary});
  out.push_back(ClientQueryReply{});
  out.push_back(ClientQueryReply{kMax, Status::Busy("not the head"), kBinary, kMax});
  out.push_back(Update{1, 2, 3, 1, 4, {KvMutation{"b", "d"}}, "", Blob{kBinary, kBinary, 0xffffffffu}, 5, {6}});
  out.push_back(Update{1, 2, 3, 1, 4, {}, "", Blob{}});
  out.push_back(ClientWrite{1, 2, 3, 4, "", Blob{"id", "bytes", 5}, {"x", kBinary, ""}});
  out.push_back(ClientWrite{1, 2, 3, 4, "cmd", std::nullopt, {"x"}});
  out.push_back(BlobRead{});
  out.push_back(BlobRead{kMax, kMax32, kMax, kBinary, kMax, kMax});
  out.push_back(BlobReadReply{});
  out.push_back(BlobReadReply{kMax, Status::Corruption("bad copy"), kBinary, kMax});
  return out;
}

// Decodes, expecting success.
Message MustDecode(std::string_view body) {
  Result<Message> r = Decode(body);
  EXPECT_OK(r);
  return r.ok() ? *r : Message{};
}

void ExpectRoundTrip(const Message& m) {
  const std::string body = Encode(m);
  Result<Message> back = Decode(body);
  ASSERT_OK(back);
  EXPECT_EQ(*back, m);
  EXPECT_EQ(Encode(*back), body);
}

void ExpectCorrupt(std::string_view body, std::string_view what = {}) {
  Result<Message> r = Decode(body);
  ASSERT_FALSE(r.ok()) << what << ": decoded " << Describe(*r);
  EXPECT_TRUE(r.status().IsCorruption()) << what << ": " << r.status();
}

void PutLe(std::string& body, size_t at, uint64_t v, size_t width) {
  for (size_t i = 0; i < width; ++i) body[at + i] = static_cast<char>(v >> (8 * i));
}

TEST(ChainWire, LayoutIsAsDocumented) {
  const std::string ack = Encode(Ack{0x04030201, 0x0c0b0a0908070605, 0x14131211100f0e0d, 0x1c1b1a1918171615});
  EXPECT_EQ(ack, std::string("\x05\x01"
                             "\x01\x02\x03\x04"
                             "\x05\x06\x07\x08\x09\x0a\x0b\x0c"
                             "\x0d\x0e\x0f\x10\x11\x12\x13\x14"
                             "\x15\x16\x17\x18\x19\x1a\x1b\x1c",
                             30));
  const std::string update =
      Encode(Update{1, 2, 3, 4, 5, {KvMutation{"k", "vv"}}, "r", std::nullopt, 6, {7}, {"t"}});
  EXPECT_EQ(update.substr(0, 2), std::string("\x05\x00", 2));
  EXPECT_EQ(update.substr(38), std::string("\x01\x00\x00\x00"                  // one mutation
                                           "\x01\x00\x00\x00k"                 // its key
                                           "\x01\x02\x00\x00\x00vv"            // its value
                                           "\x01\x00\x00\x00r"                 // the result
                                           "\x00"                              // no blob
                                           "\x06\x00\x00\x00\x00\x00\x00\x00"  // the stamp
                                           "\x01\x00\x00\x00"                  // one op forgotten
                                           "\x07\x00\x00\x00\x00\x00\x00\x00"  // its id
                                           "\x01\x00\x00\x00"                  // one tombstone purged
                                           "\x01\x00\x00\x00t",                // its key
                                           51));
  // The status code is two bytes: NoSuchBucket is 600 (0x0258).
  const std::string reply = Encode(VersionReply{1, 2, 3, Status::NoSuchBucket("b"), 4});
  EXPECT_EQ(reply.substr(1, 1), "\x0b");
  EXPECT_EQ(reply.substr(22, 7), std::string("\x58\x02\x01\x00\x00\x00", 6) + "b");
  EXPECT_EQ(reply.size(), 22u + 7 + 8);
}

TEST(ChainWire, TagsAreTheVariantIndices) {
  for (const Message& m : Samples()) {
    EXPECT_EQ(static_cast<size_t>(static_cast<uint8_t>(Encode(m)[1])), m.index()) << Describe(m);
  }
}

TEST(ChainWire, EveryKindRoundTrips) {
  std::vector<bool> seen(std::variant_size_v<Message>);
  for (const Message& m : Samples()) {
    SCOPED_TRACE(Describe(m));
    ExpectRoundTrip(m);
    seen[m.index()] = true;
  }
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_TRUE(seen[i]) << "no sample of tag " << i;
}

TEST(ChainWire, EveryStatusCodeRoundTrips) {
  for (StatusCode code : kAllCodes) {
    SCOPED_TRACE(StatusCodeName(code));
    ExpectRoundTrip(ClientWriteReply{1, 2, Status(code, ""), WriteResult{3, "0"}, 4});
    ExpectRoundTrip(ClientQueryReply{1, Status(code, "why"), kBinary, 4});
    ExpectRoundTrip(ClientReadReply{1, Status(code, kBinary), Record{}, 2});
    ExpectRoundTrip(VersionReply{1, 2, 3, Status(code, "why"), 4});
  }
}

TEST(ChainWire, LargeBodiesRoundTripInOneAllocation) {
  const SyncData sync{9, 10, BigStore(5000)};
  ExpectRoundTrip(sync);
  std::string mib(1 << 20, '\0');
  for (size_t i = 0; i < mib.size(); ++i) mib[i] = static_cast<char>(i * 31);
  const Update update{1, 2, 3, 1, 4, {KvMutation{"big", mib}}, "0"};
  ExpectRoundTrip(update);
  const std::string body = Encode(update);
  EXPECT_EQ(body.size(), 2 + 4 + 4 * 8 + 4 + 4 + 3 + 1 + 4 + mib.size() + 4 + 1 + 1 + 8 + 4 + 4);
  const Update with_blob{1, 2, 3, 1, 4, {}, "", Blob{"chunk", mib, 77}};
  ExpectRoundTrip(with_blob);
  EXPECT_EQ(Encode(with_blob).size(), 2 + 4 + 4 * 8 + 4 + 4 + 1 + 4 + 5 + 4 + mib.size() + 4 + 8 + 4 + 4);
  EXPECT_LE(body.capacity(), body.size() + 32);  // sized before writing, not grown
}

TEST(ChainWire, EveryTruncationIsCorruption) {
  for (const Message& m : Samples()) {
    const std::string body = Encode(m);
    for (size_t n = 0; n < body.size(); ++n) {
      ExpectCorrupt(std::string_view(body).substr(0, n), Describe(m) + " cut at " + std::to_string(n));
    }
  }
}

TEST(ChainWire, TrailingBytesAreCorruption) {
  for (const Message& m : Samples()) {
    ExpectCorrupt(Encode(m) + std::string(1, '\0'), Describe(m));
    ExpectCorrupt(Encode(m) + Encode(m), Describe(m));
  }
}

TEST(ChainWire, UnknownVersionOrTagIsCorruption) {
  const std::string good = Encode(Commit{1, 2, 3});
  for (int version : {0, 1, 2, 3, 4, 6, 255}) {
    std::string bad = good;
    bad[0] = static_cast<char>(version);
    ExpectCorrupt(bad, "version " + std::to_string(version));
  }
  for (int tag : {16, 17, 128, 255}) {
    std::string bad = good;
    bad[1] = static_cast<char>(tag);
    ExpectCorrupt(bad, "tag " + std::to_string(tag));
  }
}

TEST(ChainWire, PresenceFlagsOtherThanZeroOrOneAreCorruption) {
  // Update{one mutation of key "k"}: the value's presence flag follows the mutation count and the
  // key, at 2 + 4 + 32 + 4 + 4 + 1.
  constexpr size_t kPresenceAt = 47;
  const std::string present = Encode(Update{1, 2, 3, 1, 4, {KvMutation{"k", "v"}}, ""});
  const std::string absent = Encode(Update{1, 2, 3, 1, 4, {KvMutation{"k", std::nullopt}}, ""});
  ASSERT_EQ(present[kPresenceAt], 1);
  ASSERT_EQ(absent[kPresenceAt], 0);
  for (int flag : {2, 0x80, 0xff}) {
    std::string bad = absent;
    bad[kPresenceAt] = static_cast<char>(flag);
    ExpectCorrupt(bad, "presence " + std::to_string(flag));
  }
  std::string flipped = present;
  flipped[kPresenceAt] = 0;  // the value's bytes are left over
  ExpectCorrupt(flipped, "present flagged absent");
  flipped = absent;
  flipped[kPresenceAt] = 1;  // a value that is not there
  ExpectCorrupt(flipped, "absent flagged present");
}

TEST(ChainWire, UnknownStatusCodeIsCorruption) {
  // VersionReply: the status code follows chain_id, chain_version and query_id, at 2 + 4 + 16.
  constexpr size_t kCodeAt = 22;
  const std::string good = Encode(VersionReply{1, 2, 3, Status::Busy("m"), 4});
  ASSERT_EQ(static_cast<uint8_t>(good[kCodeAt]), static_cast<uint8_t>(StatusCode::kBusy));
  for (uint16_t code : {9, 99, 199, 606, 999, 0x0100 | static_cast<int>(StatusCode::kBusy), 0xffff}) {
    std::string bad = good;
    PutLe(bad, kCodeAt, code, 2);
    ExpectCorrupt(bad, "code " + std::to_string(code));
  }
}

TEST(ChainWire, HugeCountsAndLengthsAreCorruption) {
  // SyncData: the record count at 2 + 4 + 8; with no records, the op count right after it.
  constexpr size_t kRecordCountAt = 14;
  const std::string empty = Encode(SyncData{1, 2, StoreState{}});
  for (uint32_t n : {1u, 2u, 1000u, kMax32}) {
    std::string bad = empty;
    PutLe(bad, kRecordCountAt, n, 4);
    ExpectCorrupt(bad, "records " + std::to_string(n));
    bad = empty;
    PutLe(bad, kRecordCountAt + 4, n, 4);
    ExpectCorrupt(bad, "ops " + std::to_string(n));
  }
  // A count that fits the bytes left but not as that many entries.
  std::string padded = empty + std::string(100, '\0');
  const size_t left = padded.size() - kRecordCountAt - 4;
  PutLe(padded, kRecordCountAt, left / /*smallest record=*/13 + 1, 4);
  ExpectCorrupt(padded, "records past the end");
  EXPECT_NE(Decode(padded).status().message().find("count"), std::string::npos) << Decode(padded).status();

  // Update: the mutation count at 2 + 4 + 32, the first key's length after it.
  const std::string update = Encode(Update{1, 2, 3, 1, 4, {KvMutation{"k", std::nullopt}}, ""});
  for (uint32_t n : {2u, 1u << 20, kMax32}) {
    std::string bad = update;
    PutLe(bad, 38, n, 4);
    ExpectCorrupt(bad, "mutation count " + std::to_string(n));
    bad = update;
    PutLe(bad, 42, n, 4);
    ExpectCorrupt(bad, "key length " + std::to_string(n));
  }
}

TEST(ChainWire, MapKeysMustBeStrictlyAscending) {
  // Two tombstone records "a" and "b": key bytes at 22 and 36, then the op count at 46.
  StoreState two;
  two.records["a"] = Record{std::nullopt, 1};
  two.records["b"] = Record{std::nullopt, 2};
  const std::string good = Encode(SyncData{1, 2, two});
  ASSERT_EQ(good[22], 'a');
  ASSERT_EQ(good[36], 'b');
  std::string bad = good;
  bad[36] = 'a';
  ExpectCorrupt(bad, "repeated record key");
  bad[22] = 'c';
  ExpectCorrupt(bad, "descending record keys");
  // Keys compare as unsigned bytes, as std::string does: "\x7f" < "\x80".
  bad = good;
  bad[22] = '\x7f';
  bad[36] = '\x80';
  EXPECT_EQ(std::get<SyncData>(MustDecode(bad)).snapshot.records.size(), 2u);

  // No records, two ops 5 and 6 with empty results: op ids at 22 and 50.
  StoreState ops;
  ops.ops[5] = WriteResult{1, ""};
  ops.ops[6] = WriteResult{2, ""};
  const std::string good_ops = Encode(SyncData{1, 2, ops});
  ASSERT_EQ(good_ops[22], 5);
  ASSERT_EQ(good_ops[50], 6);
  bad = good_ops;
  bad[50] = 5;
  ExpectCorrupt(bad, "repeated op id");
  bad[50] = 4;
  ExpectCorrupt(bad, "descending op ids");
}

// ---- Randomized -----------------------------------------------------------------------------

class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}
  uint64_t U64() {
    switch (rng_() % 4) {
      case 0:
        return 0;
      case 1:
        return kMax;
      default:
        return rng_() >> (rng_() % 64);
    }
  }
  uint32_t U32() { return static_cast<uint32_t>(U64()); }
  bool Bool() { return rng_() % 2 == 0; }
  std::string Bytes() {
    std::string s(rng_() % 24, '\0');
    for (char& c : s) c = static_cast<char>(rng_() % 4 == 0 ? 0 : rng_());
    return s;
  }
  std::optional<std::string> Value() { return Bool() ? std::optional<std::string>(Bytes()) : std::nullopt; }
  Status AnyStatus() { return Status(kAllCodes[rng_() % kAllCodes.size()], Bool() ? "" : Bytes()); }
  std::optional<Blob> AnyBlob() {
    if (!Bool()) return std::nullopt;
    return Blob{Bytes(), Bytes(), U32()};
  }
  std::vector<std::string> Strings() {
    std::vector<std::string> out(rng_() % 3);
    for (std::string& s : out) s = Bytes();
    return out;
  }
  std::vector<KvMutation> Mutations() {
    std::vector<KvMutation> out(rng_() % 4);
    for (KvMutation& m : out) m = KvMutation{Bytes(), Value()};
    return out;
  }
  std::vector<OpId> OpIds() {
    std::vector<OpId> out(rng_() % 4);
    for (OpId& op : out) op = U64();
    return out;
  }
  StoreState Store() {
    StoreState s;
    const size_t n = rng_() % 40;
    for (size_t i = 0; i < n; ++i) {
      s.records[Bytes()] = Record{Value(), U64()};
      s.ops[U64()] = WriteResult{U64(), Bytes(), U64()};
    }
    s.last_seq = U64();
    s.stamp_ms = U64();
    return s;
  }
  Message Any() {
    switch (rng_() % std::variant_size_v<Message>) {
      case 0:
        return Update{U32(), U64(), U64(), U64(), U64(), Mutations(), Bytes(), AnyBlob(), U64(), OpIds(), Strings()};
      case 1:
        return Ack{U32(), U64(), U64(), U64()};
      case 2:
        return Commit{U32(), U64(), U64()};
      case 3:
        return StaleChain{U32(), U64()};
      case 4:
        return ClientWrite{U64(), U32(), U64(), U64(), Bytes(), AnyBlob(), Strings(), U64()};
      case 5:
        return ClientWriteReply{U64(), U64(), AnyStatus(), WriteResult{U64(), Bytes(), U64()}, U64()};
      case 6:
        return ClientRead{U64(), U32(), U64(), Bytes()};
      case 7:
        return ClientReadReply{U64(), AnyStatus(), Record{Value(), U64()}, U64()};
      case 8:
        return SyncRequest{U32(), U64()};
      case 9:
        return SyncData{U32(), U64(), Store()};
      case 10:
        return VersionQuery{U32(), U64(), U64(), Bytes()};
      case 11:
        return VersionReply{U32(), U64(), U64(), AnyStatus(), U64()};
      case 12:
        return ClientQuery{U64(), U32(), U64(), Bytes()};
      case 13:
        return ClientQueryReply{U64(), AnyStatus(), Bytes(), U64()};
      case 14:
        return BlobRead{U64(), U32(), U64(), Bytes(), U64(), U64()};
      default:
        return BlobReadReply{U64(), AnyStatus(), Bytes(), U64()};
    }
  }
  size_t Below(size_t n) { return rng_() % n; }

 private:
  std::mt19937_64 rng_;
};

TEST(ChainWire, RandomMessagesRoundTrip) {
  Random random(/*seed=*/20240611);
  for (int i = 0; i < 3000; ++i) {
    const Message m = random.Any();
    SCOPED_TRACE("message " + std::to_string(i) + ": " + Describe(m));
    ExpectRoundTrip(m);
    if (HasFatalFailure()) return;
  }
}

// Damaged bodies are refused or, when still well-formed, are the canonical encoding of what they
// decode to: nothing decodes to a message that encodes differently.
TEST(ChainWire, DamagedBodiesAreRefusedOrCanonical) {
  Random random(/*seed=*/7);
  int accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string body = Encode(random.Any());
    const size_t flips = 1 + random.Below(3);
    for (size_t f = 0; f < flips; ++f) {
      body[random.Below(body.size())] ^= static_cast<char>(1u << random.Below(8));
    }
    Result<Message> r = Decode(body);
    if (!r.ok()) {
      EXPECT_TRUE(r.status().IsCorruption()) << r.status();
      continue;
    }
    ++accepted;
    EXPECT_EQ(Encode(*r), body) << Describe(*r);
  }
  // Most flips land in integer fields, which any value fills.
  EXPECT_GT(accepted, 0);
}

TEST(ChainWire, FuzzSeedsDecodeExceptTheRefusedOnes) {
  size_t seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(CAIRN_FUZZ_CORPUS) + "/fuzz_chain_wire")) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string name = entry.path().filename().string();
    Result<Message> decoded = Decode(body);
    EXPECT_EQ(decoded.ok(), !name.starts_with("refused_")) << name << ": " << decoded.status();
    if (decoded.ok()) {
      EXPECT_EQ(Encode(*decoded), body) << name;
    }
    ++seeds;
  }
  EXPECT_GE(seeds, 20u);
}

}  // namespace
}  // namespace wire
}  // namespace cairn::replication
