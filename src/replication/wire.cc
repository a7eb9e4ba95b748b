// Encoding and decoding of chain replication messages; the layout is in replication/wire.h.
// Thread-safety: pure functions.
#include "replication/wire.h"

#include <cassert>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace cairn::replication::wire {
namespace {

// The tags are the variant's indices (wire.h); a reordered or extended Message fails here.
template <Tag tag, class M>
constexpr bool kTagIs = std::is_same_v<std::variant_alternative_t<static_cast<size_t>(tag), Message>, M>;
static_assert(std::variant_size_v<Message> == 16, "a new message needs a Tag and an encoding");
static_assert(kTagIs<Tag::kUpdate, Update>);
static_assert(kTagIs<Tag::kAck, Ack>);
static_assert(kTagIs<Tag::kCommit, Commit>);
static_assert(kTagIs<Tag::kStaleChain, StaleChain>);
static_assert(kTagIs<Tag::kClientWrite, ClientWrite>);
static_assert(kTagIs<Tag::kClientWriteReply, ClientWriteReply>);
static_assert(kTagIs<Tag::kClientRead, ClientRead>);
static_assert(kTagIs<Tag::kClientReadReply, ClientReadReply>);
static_assert(kTagIs<Tag::kSyncRequest, SyncRequest>);
static_assert(kTagIs<Tag::kSyncData, SyncData>);
static_assert(kTagIs<Tag::kVersionQuery, VersionQuery>);
static_assert(kTagIs<Tag::kVersionReply, VersionReply>);
static_assert(kTagIs<Tag::kClientQuery, ClientQuery>);
static_assert(kTagIs<Tag::kClientQueryReply, ClientQueryReply>);
static_assert(kTagIs<Tag::kBlobRead, BlobRead>);
static_assert(kTagIs<Tag::kBlobReadReply, BlobReadReply>);

constexpr size_t kHeaderSize = 2;  // version, tag
// The smallest encodings of one map entry, for checking counts against the bytes left.
constexpr size_t kMinRecordEntrySize = 4 + 1 + 8;  // empty key, tombstone, seq
constexpr size_t kMinOpEntrySize = 8 + 8 + 8 + 4;  // op id, seq, stamp, empty result
constexpr size_t kMinMutationSize = 4 + 1;         // empty key, no value

bool IsKnownStatusCode(uint16_t code) {
  switch (static_cast<StatusCode>(code)) {
#define CAIRN_KNOWN_ROW(name, value, desc) \
  case StatusCode::k##name:                \
    return true;
    CAIRN_ERROR_CODES(CAIRN_KNOWN_ROW)
#undef CAIRN_KNOWN_ROW
  }
  return false;
}

// ---- Writer -------------------------------------------------------------------------------

// Appends fields to a body, or, made without a body, only counts their bytes (Encode sizes the
// body with a counting pass, then writes it into one allocation).
class Writer {
 public:
  Writer() = default;
  explicit Writer(std::string* out) : out_(out) {}
  size_t size() const { return size_; }

  void U8(uint8_t v) { Fixed(v, 1); }
  void U16(uint16_t v) { Fixed(v, 2); }
  void U32(uint32_t v) { Fixed(v, 4); }
  void U64(uint64_t v) { Fixed(v, 8); }
  void Bool(bool v) { U8(v ? 1 : 0); }
  void String(std::string_view s) {
    assert(s.size() <= std::numeric_limits<uint32_t>::max());
    U32(static_cast<uint32_t>(s.size()));
    Bytes(s);
  }
  void OptionalString(const std::optional<std::string>& s) {
    U8(s.has_value() ? 1 : 0);
    if (s.has_value()) String(*s);
  }
  void StatusValue(const Status& s) {
    U16(static_cast<uint16_t>(s.code()));
    String(s.message());
  }
  void Count(size_t n) {
    assert(n <= std::numeric_limits<uint32_t>::max());
    U32(static_cast<uint32_t>(n));
  }

 private:
  void Fixed(uint64_t v, size_t n) {
    char bytes[8];
    for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<char>(v >> (8 * i));
    Bytes(std::string_view(bytes, n));
  }
  void Bytes(std::string_view b) {
    size_ += b.size();
    if (out_ != nullptr) out_->append(b);
  }

  std::string* out_ = nullptr;  // null: count only
  size_t size_ = 0;
};

void Write(Writer& w, const Record& r) {
  w.OptionalString(r.value);
  w.U64(r.seq);
}

void Write(Writer& w, const WriteResult& r) {
  w.U64(r.seq);
  w.String(r.result);
  w.U64(r.stamp_ms);
}

void Write(Writer& w, const std::vector<OpId>& ops) {
  w.Count(ops.size());
  for (OpId op : ops) w.U64(op);
}

void Write(Writer& w, const std::optional<Blob>& blob) {
  w.U8(blob.has_value() ? 1 : 0);
  if (!blob) return;
  w.String(blob->id);
  w.String(blob->data());
  w.U32(blob->crc32c);
}

void Write(Writer& w, const std::vector<std::string>& strings) {
  w.Count(strings.size());
  for (const std::string& s : strings) w.String(s);
}

void Write(Writer& w, const std::vector<KvMutation>& mutations) {
  w.Count(mutations.size());
  for (const KvMutation& m : mutations) {
    w.String(m.key);
    w.OptionalString(m.value);
  }
}

void Write(Writer& w, const StoreState& s) {
  w.Count(s.records.size());
  for (const auto& [key, record] : s.records) {
    w.String(key);
    Write(w, record);
  }
  w.Count(s.ops.size());
  for (const auto& [op_id, result] : s.ops) {
    w.U64(op_id);
    Write(w, result);
  }
  w.U64(s.last_seq);
  w.U64(s.stamp_ms);
}

void Write(Writer& w, const Update& m) {
  w.U32(m.chain_id);
  w.U64(m.chain_version);
  w.U64(m.seq);
  w.U64(m.first_seq);
  w.U64(m.op_id);
  Write(w, m.mutations);
  w.String(m.result);
  Write(w, m.blob);
  w.U64(m.stamp_ms);
  Write(w, m.forget);
  Write(w, m.purge);
}

void Write(Writer& w, const Ack& m) {
  w.U32(m.chain_id);
  w.U64(m.chain_version);
  w.U64(m.seq);
  w.U64(m.durable);
}

void Write(Writer& w, const Commit& m) {
  w.U32(m.chain_id);
  w.U64(m.chain_version);
  w.U64(m.seq);
}

void Write(Writer& w, const StaleChain& m) {
  w.U32(m.chain_id);
  w.U64(m.version);
}

void Write(Writer& w, const ClientWrite& m) {
  w.U64(m.request_id);
  w.U32(m.chain_id);
  w.U64(m.chain_version);
  w.U64(m.op_id);
  w.String(m.command);
  Write(w, m.blob);
  Write(w, m.drop_blobs);
  w.U64(m.issued_ms);
}

void Write(Writer& w, const ClientWriteReply& m) {
  w.U64(m.request_id);
  w.U64(m.op_id);
  w.StatusValue(m.status);
  Write(w, m.result);
  w.U64(m.chain_version);
}

void Write(Writer& w, const ClientRead& m) {
  w.U64(m.request_id);
  w.U32(m.chain_id);
  w.U64(m.chain_version);
  w.String(m.key);
}

void Write(Writer& w, const ClientReadReply& m) {
  w.U64(m.request_id);
  w.StatusValue(m.status);
  Write(w, m.record);
  w.U64(m.chain_version);
}

void Write(Writer& w, const SyncRequest& m) {
  w.U32(m.chain_id);
  w.U64(m.chain_version);
}

void Write(Writer& w, const SyncData& m) {
  w.U32(m.chain_id);
  w.U64(m.chain_version);
  Write(w, m.snapshot);
}

void Write(Writer& w, const VersionQuery& m) {
  w.U32(m.chain_id);
  w.U64(m.chain_version);
  w.U64(m.query_id);
  w.String(m.key);
}

void Write(Writer& w, const VersionReply& m) {
  w.U32(m.chain_id);
  w.U64(m.chain_version);
  w.U64(m.query_id);
  w.StatusValue(m.status);
  w.U64(m.seq);
}

void Write(Writer& w, const ClientQuery& m) {
  w.U64(m.request_id);
  w.U32(m.chain_id);
  w.U64(m.chain_version);
  w.String(m.query);
}

void Write(Writer& w, const ClientQueryReply& m) {
  w.U64(m.request_id);
  w.StatusValue(m.status);
  w.String(m.result);
  w.U64(m.chain_version);
}

void Write(Writer& w, const BlobRead& m) {
  w.U64(m.request_id);
  w.U32(m.chain_id);
  w.U64(m.chain_version);
  w.String(m.id);
  w.U64(m.offset);
  w.U64(m.length);
}

void Write(Writer& w, const BlobReadReply& m) {
  w.U64(m.request_id);
  w.StatusValue(m.status);
  w.String(m.bytes);
  w.U64(m.chain_version);
}

void WriteMessage(Writer& w, const Message& message) {
  w.U8(kWireVersion);
  w.U8(static_cast<uint8_t>(message.index()));
  std::visit([&w](const auto& m) { Write(w, m); }, message);
}

// ---- Reader -------------------------------------------------------------------------------

// Reads a body. The first problem latches: every later read returns a zero value and consumes
// nothing, so a decoder reads its fields straight through and checks ok() once at the end.
class Reader {
 public:
  explicit Reader(std::string_view body) : in_(body) {}
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  bool AtEnd() const { return in_.empty(); }
  void Fail(std::string why) {
    if (ok()) error_ = std::move(why);
  }

  uint8_t U8() { return static_cast<uint8_t>(Fixed(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Fixed(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Fixed(4)); }
  uint64_t U64() { return Fixed(8); }
  bool Bool() {
    const uint8_t v = U8();
    if (v > 1) Fail("bool byte " + std::to_string(v));
    return v == 1;
  }
  std::string String() {
    const uint32_t n = U32();
    if (!Need(n)) return {};
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  std::optional<std::string> OptionalString() {
    const uint8_t presence = U8();
    if (presence == 1) return String();
    if (presence > 1) Fail("presence flag " + std::to_string(presence));
    return std::nullopt;
  }
  Status StatusValue() {
    const uint16_t code = U16();
    if (ok() && !IsKnownStatusCode(code)) Fail("unknown status code " + std::to_string(code));
    std::string message = String();
    return ok() ? Status(static_cast<StatusCode>(code), message) : Status();
  }
  // A count of map entries, each at least `min_entry_size` bytes, checked against the bytes left
  // so that a damaged count cannot make the decoder loop or allocate beyond the body's size.
  uint32_t Count(size_t min_entry_size) {
    const uint32_t n = U32();
    if (ok() && n > in_.size() / min_entry_size) Fail("count " + std::to_string(n) + " past the end");
    return ok() ? n : 0;
  }

 private:
  bool Need(size_t n) {
    if (!ok()) return false;
    if (in_.size() < n) {
      Fail("truncated");
      return false;
    }
    return true;
  }
  uint64_t Fixed(size_t n) {
    if (!Need(n)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(n);
    return v;
  }

  std::string_view in_;
  std::string error_;  // empty while ok
};

void Read(Reader& r, Record& out) {
  out.value = r.OptionalString();
  out.seq = r.U64();
}

void Read(Reader& r, WriteResult& out) {
  out.seq = r.U64();
  out.result = r.String();
  out.stamp_ms = r.U64();
}

void Read(Reader& r, std::vector<OpId>& out) {
  const uint32_t n = r.Count(8);
  out.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) out.push_back(r.U64());
}

void Read(Reader& r, std::optional<Blob>& out) {
  const uint8_t presence = r.U8();
  if (presence > 1) r.Fail("presence flag " + std::to_string(presence));
  if (presence != 1) return;
  std::string id = r.String();
  std::string bytes = r.String();
  const uint32_t crc = r.U32();
  out = Blob(std::move(id), std::move(bytes), crc);
}

void Read(Reader& r, std::vector<std::string>& out) {
  const uint32_t n = r.Count(4);
  out.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) out.push_back(r.String());
}

void Read(Reader& r, std::vector<KvMutation>& out) {
  const uint32_t n = r.Count(kMinMutationSize);
  out.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    KvMutation m;
    m.key = r.String();
    m.value = r.OptionalString();
    out.push_back(std::move(m));
  }
}

// Entries are appended at the end of the maps: keys must come strictly ascending, which keeps the
// encoding canonical (a repeated or out-of-order key is refused, never merged).
void Read(Reader& r, StoreState& out) {
  const uint32_t records = r.Count(kMinRecordEntrySize);
  for (uint32_t i = 0; i < records && r.ok(); ++i) {
    std::string key = r.String();
    Record record;
    Read(r, record);
    if (!out.records.empty() && !(out.records.rbegin()->first < key)) r.Fail("record keys not ascending");
    if (!r.ok()) break;
    out.records.emplace_hint(out.records.end(), std::move(key), std::move(record));
  }
  const uint32_t ops = r.Count(kMinOpEntrySize);
  for (uint32_t i = 0; i < ops && r.ok(); ++i) {
    const OpId op_id = r.U64();
    WriteResult result;
    Read(r, result);
    if (!out.ops.empty() && !(out.ops.rbegin()->first < op_id)) r.Fail("op ids not ascending");
    if (!r.ok()) break;
    out.ops.emplace_hint(out.ops.end(), op_id, result);
  }
  out.last_seq = r.U64();
  out.stamp_ms = r.U64();
}

void Read(Reader& r, Update& m) {
  m.chain_id = r.U32();
  m.chain_version = r.U64();
  m.seq = r.U64();
  m.first_seq = r.U64();
  m.op_id = r.U64();
  Read(r, m.mutations);
  m.result = r.String();
  Read(r, m.blob);
  m.stamp_ms = r.U64();
  Read(r, m.forget);
  Read(r, m.purge);
}

void Read(Reader& r, Ack& m) {
  m.chain_id = r.U32();
  m.chain_version = r.U64();
  m.seq = r.U64();
  m.durable = r.U64();
}

void Read(Reader& r, Commit& m) {
  m.chain_id = r.U32();
  m.chain_version = r.U64();
  m.seq = r.U64();
}

void Read(Reader& r, StaleChain& m) {
  m.chain_id = r.U32();
  m.version = r.U64();
}

void Read(Reader& r, ClientWrite& m) {
  m.request_id = r.U64();
  m.chain_id = r.U32();
  m.chain_version = r.U64();
  m.op_id = r.U64();
  m.command = r.String();
  Read(r, m.blob);
  Read(r, m.drop_blobs);
  m.issued_ms = r.U64();
}

void Read(Reader& r, ClientWriteReply& m) {
  m.request_id = r.U64();
  m.op_id = r.U64();
  m.status = r.StatusValue();
  Read(r, m.result);
  m.chain_version = r.U64();
}

void Read(Reader& r, ClientRead& m) {
  m.request_id = r.U64();
  m.chain_id = r.U32();
  m.chain_version = r.U64();
  m.key = r.String();
}

void Read(Reader& r, ClientReadReply& m) {
  m.request_id = r.U64();
  m.status = r.StatusValue();
  Read(r, m.record);
  m.chain_version = r.U64();
}

void Read(Reader& r, SyncRequest& m) {
  m.chain_id = r.U32();
  m.chain_version = r.U64();
}

void Read(Reader& r, SyncData& m) {
  m.chain_id = r.U32();
  m.chain_version = r.U64();
  Read(r, m.snapshot);
}

void Read(Reader& r, VersionQuery& m) {
  m.chain_id = r.U32();
  m.chain_version = r.U64();
  m.query_id = r.U64();
  m.key = r.String();
}

void Read(Reader& r, VersionReply& m) {
  m.chain_id = r.U32();
  m.chain_version = r.U64();
  m.query_id = r.U64();
  m.status = r.StatusValue();
  m.seq = r.U64();
}

void Read(Reader& r, ClientQuery& m) {
  m.request_id = r.U64();
  m.chain_id = r.U32();
  m.chain_version = r.U64();
  m.query = r.String();
}

void Read(Reader& r, ClientQueryReply& m) {
  m.request_id = r.U64();
  m.status = r.StatusValue();
  m.result = r.String();
  m.chain_version = r.U64();
}

void Read(Reader& r, BlobRead& m) {
  m.request_id = r.U64();
  m.chain_id = r.U32();
  m.chain_version = r.U64();
  m.id = r.String();
  m.offset = r.U64();
  m.length = r.U64();
}

void Read(Reader& r, BlobReadReply& m) {
  m.request_id = r.U64();
  m.status = r.StatusValue();
  m.bytes = r.String();
  m.chain_version = r.U64();
}

template <class M>
Message ReadAs(Reader& r) {
  M m;
  Read(r, m);
  return m;
}

// nullopt for a tag no message has.
std::optional<Message> ReadMessage(Reader& r, uint8_t tag) {
  switch (static_cast<Tag>(tag)) {
    case Tag::kUpdate:
      return ReadAs<Update>(r);
    case Tag::kAck:
      return ReadAs<Ack>(r);
    case Tag::kCommit:
      return ReadAs<Commit>(r);
    case Tag::kStaleChain:
      return ReadAs<StaleChain>(r);
    case Tag::kClientWrite:
      return ReadAs<ClientWrite>(r);
    case Tag::kClientWriteReply:
      return ReadAs<ClientWriteReply>(r);
    case Tag::kClientRead:
      return ReadAs<ClientRead>(r);
    case Tag::kClientReadReply:
      return ReadAs<ClientReadReply>(r);
    case Tag::kSyncRequest:
      return ReadAs<SyncRequest>(r);
    case Tag::kSyncData:
      return ReadAs<SyncData>(r);
    case Tag::kVersionQuery:
      return ReadAs<VersionQuery>(r);
    case Tag::kVersionReply:
      return ReadAs<VersionReply>(r);
    case Tag::kClientQuery:
      return ReadAs<ClientQuery>(r);
    case Tag::kClientQueryReply:
      return ReadAs<ClientQueryReply>(r);
    case Tag::kBlobRead:
      return ReadAs<BlobRead>(r);
    case Tag::kBlobReadReply:
      return ReadAs<BlobReadReply>(r);
  }
  return std::nullopt;
}

Status Malformed(std::string_view why) { return Status::Corruption("chain message: " + std::string(why)); }

}  // namespace

std::string Encode(const Message& message) {
  Writer counter;
  WriteMessage(counter, message);
  std::string body;
  body.reserve(counter.size());
  Writer writer(&body);
  WriteMessage(writer, message);
  return body;
}

Result<Message> Decode(std::string_view body) {
  if (body.size() < kHeaderSize) return Malformed("truncated");
  const uint8_t version = static_cast<uint8_t>(body[0]);
  const uint8_t tag = static_cast<uint8_t>(body[1]);
  if (version != kWireVersion) return Malformed("unknown format version " + std::to_string(version));
  Reader r(body.substr(kHeaderSize));
  std::optional<Message> message = ReadMessage(r, tag);
  if (!message.has_value()) return Malformed("unknown tag " + std::to_string(tag));
  if (!r.ok()) return Malformed(std::string(MessageName(*message)) + ": " + r.error());
  if (!r.AtEnd()) return Malformed(std::string(MessageName(*message)) + ": trailing bytes");
  return std::move(*message);
}

}  // namespace cairn::replication::wire
