// The wire codec of chain replication messages: a Message (replication/chain.h) as the body of
// one RPC frame (net/frame.h, type kFrameChainMessage; docs/design/cluster.md, "Internal RPC").
//
// A body:
//
//   offset  size  field
//   0       1     format version, kWireVersion (5)
//   1       1     message tag (Tag below: the message's index in the Message variant)
//   2       n     the message's fields, in the order chain.h declares them
//
// Field encodings (all integers little-endian, fixed width):
//   u8 / u32 / u64     1 / 4 / 8 bytes. ChainId and NodeId are u32, OpId and sequences u64.
//   bool               u8, 0 or 1
//   string             u32 length, then the bytes (any bytes, NUL included)
//   optional<string>   u8 presence (0 absent, 1 present), then the string when present
//   Status             u16 code (the StatusCode value from common/error_codes.h, whose values are
//                      stable and exceed a byte), then the message as a string
//   Record             optional<string> value, u64 seq           (no value: a tombstone)
//   WriteResult        u64 seq, string result, u64 stamp_ms
//   op ids             u32 count, then each u64
//   optional<Blob>     u8 presence, then when present: string id, string bytes, u32 crc32c
//   strings            u32 count, then each string
//   mutations          u32 count, then per mutation: string key, optional<string> value (no value:
//                      delete), in the order they apply
//   StoreState         u32 count, then per record: string key, Record   (keys strictly ascending)
//                      u32 count, then per op: u64 op id, WriteResult  (ids strictly ascending)
//                      u64 last_seq, u64 stamp_ms
//
// Messages (tag: fields):
//   0  Update            u32 chain_id, u64 chain_version, u64 seq, u64 first_seq, u64 op_id,
//                        mutations, string result, optional<Blob> blob, u64 stamp_ms, op ids forget,
//                        strings purge
//   1  Ack               u32 chain_id, u64 chain_version, u64 seq, u64 durable
//   2  Commit            u32 chain_id, u64 chain_version, u64 seq
//   3  StaleChain        u32 chain_id, u64 version
//   4  ClientWrite       u64 request_id, u32 chain_id, u64 chain_version, u64 op_id, string command,
//                        optional<Blob> blob, strings drop_blobs, u64 issued_ms
//   5  ClientWriteReply  u64 request_id, u64 op_id, Status status, WriteResult result,
//                        u64 chain_version
//   6  ClientRead        u64 request_id, u32 chain_id, u64 chain_version, string key
//   7  ClientReadReply   u64 request_id, Status status, Record record, u64 chain_version
//   8  SyncRequest       u32 chain_id, u64 chain_version
//   9  SyncData          u32 chain_id, u64 chain_version, StoreState snapshot
//   10 VersionQuery      u32 chain_id, u64 chain_version, u64 query_id, string key
//   11 VersionReply      u32 chain_id, u64 chain_version, u64 query_id, Status status, u64 seq
//   12 ClientQuery       u64 request_id, u32 chain_id, u64 chain_version, string query
//   13 ClientQueryReply  u64 request_id, Status status, string result, u64 chain_version
//   14 BlobRead          u64 request_id, u32 chain_id, u64 chain_version, string id, u64 offset,
//                        u64 length
//   15 BlobReadReply     u64 request_id, Status status, string bytes, u64 chain_version
//
// Version 1 carried one key and value in Update and ClientWrite, and a bool in WriteResult.
// Version 2 had no stamps (Update, ClientWrite, WriteResult, StoreState), no forget list and no
// purge list; version 3 (never released) had no purge list.
//
// The encoding is canonical: every message has exactly one encoding, and Decode accepts nothing
// else (presence flags and bools other than 0 and 1, map keys out of order or repeated, and
// trailing bytes are all refused), so Encode(Decode(body)) == body whenever Decode succeeds.
// Tags are stable: a new message gets the next number, and one that goes away leaves its number
// unused. A change to any field's layout is a new format version.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "replication/chain.h"

namespace cairn::replication::wire {

// The frame type every chain message travels under (net/frame.h; 1 and 2 are the handshake's).
inline constexpr uint16_t kFrameChainMessage = 16;

// The first byte of every body.
inline constexpr uint8_t kWireVersion = 5;

// The second byte of every body. Equal to the message's index in the Message variant (wire.cc
// checks this at compile time, so reordering the variant breaks the build, not the wire).
enum class Tag : uint8_t {
  kUpdate = 0,
  kAck = 1,
  kCommit = 2,
  kStaleChain = 3,
  kClientWrite = 4,
  kClientWriteReply = 5,
  kClientRead = 6,
  kClientReadReply = 7,
  kSyncRequest = 8,
  kSyncData = 9,
  kVersionQuery = 10,
  kVersionReply = 11,
  kClientQuery = 12,
  kClientQueryReply = 13,
  kBlobRead = 14,
  kBlobReadReply = 15,
};

// The body that carries `message`, laid out as above. Sized exactly before it is written (one
// allocation). REQUIRES: every string is shorter than 4 GiB and every map holds fewer than 2^32
// entries. The body of a large SyncData can exceed net::kMaxFrameBody; the caller checks.
std::string Encode(const Message& message);

// The message a body carries. Corruption for anything that is not exactly the encoding of a
// message: an unknown version or tag, a field or length past the end, trailing bytes, a presence
// flag or bool other than 0 or 1, an unknown status code, a count larger than the remaining bytes
// could hold, map keys not strictly ascending. Reads nothing outside `body` and allocates
// O(body.size()) at most, whatever the bytes say.
Result<Message> Decode(std::string_view body);

}  // namespace cairn::replication::wire
