// Fuzz target: the cluster-mode metadata commands and queries (meta/meta_commands.h). The whole
// input is given, as a chain's head would receive it, to ExecuteCommand and to ExecuteQuery over a
// small metadata state (a bucket, objects, an upload with parts, a user with a key), and to the
// decoders of commands, queries and replies.
//
// Properties checked for every input:
//   - Nothing reads outside the input (ASan) or has undefined behaviour (UBSan).
//   - Decoding is canonical: when a decoder accepts the input, encoding the message gives the
//     input back byte for byte; a refused command or query is InvalidArgument, a refused reply
//     Corruption.
//   - Execution: input that does not decode as a command gives no mutations and an encoded
//     InvalidArgument reply of op kNone; a command gives a reply of its own op, no mutations
//     unless that reply is OK, and the same outcome when executed again over the same state.
//     Every reply the executors produce decodes, and re-encodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "../tests/meta/memory_kv.h"
#include "check.h"
#include "meta/format.h"
#include "meta/meta_commands.h"

namespace cairn::meta {
namespace {

// The state every input runs against, built once by executing commands.
const test::KvMap& State() {
  static const test::KvMap state = [] {
    test::KvMap map;
    ObjectRecord object;
    object.bucket = "b";
    object.key = "dir/k";
    object.size = 10;
    object.etag = "e";
    object.chunks = {ChunkRef{.id = {1, 2}, .offset = 0, .length = 10, .crc32c = 3}};
    ObjectRecord other = object;
    other.key = std::string("dir/\0x", 6);
    const PartRecord part{.part_number = 1, .etag = "p", .size = 5, .chunks = {ChunkRef{.id = {4, 5}, .length = 5}}};
    const Command setup[] = {
        command::CreateBucket{BucketInfo{.name = "b", .owner = "o", .created_ms = 1}},
        command::CreateBucket{BucketInfo{.name = "empty", .owner = "o", .created_ms = 2}},
        command::PutObject{object, {}},
        command::PutObject{other, {}},
        command::CreateUpload{MultipartUpload{.bucket = "b", .key = "m", .upload_id = "u"}},
        command::PutPart{"b", "m", "u", part},
        command::CreateUser{UserRecord{"alice", "id", 1}},
        command::CreateAccessKey{AccessKeyRecord{"AKIA", "alice", "s", true, 1}},
    };
    for (const Command& c : setup) {
      const CommandOutcome outcome = ExecuteCommand(test::MapReader(&map), EncodeCommand(c));
      test::Apply(outcome.mutations, &map);
    }
    return map;
  }();
  return state;
}

// A reply that an executor produced: it decodes, canonically.
Reply CheckedReply(const std::string& bytes) {
  Result<Reply> reply = DecodeReply(bytes);
  FUZZ_CHECK(reply.ok());
  FUZZ_CHECK(EncodeReply(*reply) == bytes);
  return *reply;
}

void FuzzCommand(std::string_view in) {
  const test::MapReader reader(&State());
  Result<Command> decoded = DecodeCommand(in);
  const CommandOutcome outcome = ExecuteCommand(reader, in);
  const Reply reply = CheckedReply(outcome.result);
  if (!decoded.ok()) {
    FUZZ_CHECK(decoded.status().IsInvalidArgument());
    FUZZ_CHECK(outcome.mutations.empty());
    FUZZ_CHECK(reply.op == MetaOp::kNone && reply.status.IsInvalidArgument());
    return;
  }
  FUZZ_CHECK(EncodeCommand(*decoded) == in);
  Result<Command> again = DecodeCommand(EncodeCommand(*decoded));
  FUZZ_CHECK(again.ok() && *again == *decoded);
  FUZZ_CHECK(reply.op == OpOf(*decoded) || (reply.op == MetaOp::kNone && reply.status.IsInternal()));
  if (!reply.status.ok()) FUZZ_CHECK(outcome.mutations.empty());
  const CommandOutcome repeated = ExecuteCommand(reader, in);
  FUZZ_CHECK(repeated.mutations == outcome.mutations && repeated.result == outcome.result);
}

void FuzzQuery(std::string_view in) {
  Result<Query> decoded = DecodeQuery(in);
  const Reply reply = CheckedReply(ExecuteQuery(test::MapReader(&State()), in));
  if (!decoded.ok()) {
    FUZZ_CHECK(decoded.status().IsInvalidArgument());
    FUZZ_CHECK(reply.op == MetaOp::kNone && reply.status.IsInvalidArgument());
    return;
  }
  FUZZ_CHECK(EncodeQuery(*decoded) == in);
  FUZZ_CHECK(reply.op == OpOf(*decoded) || (reply.op == MetaOp::kNone && reply.status.IsInternal()));
}

void FuzzReply(std::string_view in) {
  Result<Reply> decoded = DecodeReply(in);
  if (!decoded.ok()) {
    FUZZ_CHECK(decoded.status().IsCorruption());
    return;
  }
  FUZZ_CHECK(EncodeReply(*decoded) == in);
}

}  // namespace
}  // namespace cairn::meta

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  cairn::meta::FuzzCommand(in);
  cairn::meta::FuzzQuery(in);
  cairn::meta::FuzzReply(in);
  return 0;
}
