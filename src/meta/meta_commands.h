// Metadata operations as bytes, for cluster mode: every MetaStore mutation as a **command** that a
// chain's head executes against its ordered key-value state (ExecuteCommand turns it into key
// mutations that every replica applies, and a reply), and every read as a **query** evaluated
// against committed state (ExecuteQuery). Both run the one implementation of the operations in
// meta/meta_logic.h. docs/formats/meta.md, "Commands and queries (cluster mode)", specifies the
// bytes.
//
// The codec is canonical: one byte string per message. A decoder refuses anything else:
// truncation, trailing bytes, an unknown version or tag, an out-of-range enum or bool, a record
// whose encoding (meta/format.h's, embedded) is not the one its encoder gives, a map whose keys do
// not strictly ascend. So Encode(Decode(bytes)) == bytes whenever Decode accepts the bytes.
//
// Thread-safety: pure functions and value types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/kv.h"
#include "common/result.h"
#include "common/status.h"
#include "meta/meta_logic.h"
#include "meta/meta_store.h"
#include "meta/types.h"

namespace cairn::meta {

// The first byte of every command, query and reply. A decoder refuses any other.
inline constexpr uint8_t kMetaCodecVersion = 1;

// The second byte: which operation. Commands and queries have disjoint tags, so a query is never
// mistaken for a command. kNone tags the reply to bytes that did not decode.
enum class MetaOp : uint8_t {
  kNone = 0x00,
  // Commands (mutations).
  kCreateBucket = 0x01,
  kDeleteBucket = 0x02,
  kUpdateBucket = 0x03,
  kPutObject = 0x04,
  kSetObjectAcl = 0x05,
  kDeleteObject = 0x06,
  kCreateUpload = 0x07,
  kPutPart = 0x08,
  kCompleteUpload = 0x09,
  kAbortUpload = 0x0A,
  kCreateUser = 0x0B,
  kDeleteUser = 0x0C,
  kCreateAccessKey = 0x0D,
  kSetAccessKeyEnabled = 0x0E,
  kDeleteAccessKey = 0x0F,
  // Queries (reads).
  kGetBucket = 0x41,
  kListBuckets = 0x42,
  kGetObject = 0x43,
  kListObjects = 0x44,
  kGetUpload = 0x45,
  kGetUploadInfo = 0x46,
  kListParts = 0x47,
  kListUploads = 0x48,
  kListUsers = 0x49,
  kListAccessKeys = 0x4A,
  kListChunkRefs = 0x4B,
  kStats = 0x4C,
};

// What DeleteBucket's `expected` is compared by.
struct BucketIdentity {
  std::string owner;
  int64_t created_ms = 0;
  friend bool operator==(const BucketIdentity&, const BucketIdentity&) = default;
};

// What SetObjectAcl's `expected` is compared by.
struct ObjectVersion {
  std::string etag;
  int64_t last_modified_ms = 0;
  friend bool operator==(const ObjectVersion&, const ObjectVersion&) = default;
};

// One struct per command, with the arguments of the MetaStore method of the same name.
namespace command {
struct CreateBucket {
  BucketInfo bucket;
  friend bool operator==(const CreateBucket&, const CreateBucket&) = default;
};
struct DeleteBucket {
  std::string bucket;
  std::optional<BucketIdentity> expected;
  friend bool operator==(const DeleteBucket&, const DeleteBucket&) = default;
};
// MetaStore::UpdateBucket's function cannot travel: the client reads the bucket, applies the
// function and sends both records. The command stores `updated` only while the bucket still
// equals `expected` (the reply says whether it did); otherwise nothing changes and the client
// reads again.
struct UpdateBucket {
  std::string bucket;
  BucketInfo expected;
  BucketInfo updated;
  friend bool operator==(const UpdateBucket&, const UpdateBucket&) = default;
};
struct PutObject {
  ObjectRecord record;
  WritePrecondition precondition;
  friend bool operator==(const PutObject&, const PutObject&) = default;
};
struct SetObjectAcl {
  std::string bucket;
  std::string key;
  Acl acl;
  std::optional<ObjectVersion> expected;
  friend bool operator==(const SetObjectAcl&, const SetObjectAcl&) = default;
};
struct DeleteObject {
  std::string bucket;
  std::string key;
  friend bool operator==(const DeleteObject&, const DeleteObject&) = default;
};
// upload.upload_id is chosen by the client (never empty: the executor draws no randomness);
// upload.parts is not sent.
struct CreateUpload {
  MultipartUpload upload;
  friend bool operator==(const CreateUpload&, const CreateUpload&) = default;
};
struct PutPart {
  std::string bucket;
  std::string key;
  std::string upload_id;
  PartRecord part;
  friend bool operator==(const PutPart&, const PutPart&) = default;
};
struct CompleteUpload {
  std::string bucket;
  std::string key;
  std::string upload_id;
  std::vector<CompletedPart> parts;
  std::string etag;
  int64_t last_modified_ms = 0;
  WritePrecondition precondition;
  friend bool operator==(const CompleteUpload&, const CompleteUpload&) = default;
};
struct AbortUpload {
  std::string bucket;
  std::string key;
  std::string upload_id;
  friend bool operator==(const AbortUpload&, const AbortUpload&) = default;
};
struct CreateUser {
  UserRecord user;
  friend bool operator==(const CreateUser&, const CreateUser&) = default;
};
struct DeleteUser {
  std::string name;
  friend bool operator==(const DeleteUser&, const DeleteUser&) = default;
};
struct CreateAccessKey {
  AccessKeyRecord key;
  friend bool operator==(const CreateAccessKey&, const CreateAccessKey&) = default;
};
struct SetAccessKeyEnabled {
  std::string access_key;
  bool enabled = false;
  friend bool operator==(const SetAccessKeyEnabled&, const SetAccessKeyEnabled&) = default;
};
struct DeleteAccessKey {
  std::string access_key;
  friend bool operator==(const DeleteAccessKey&, const DeleteAccessKey&) = default;
};
}  // namespace command

// The alternatives are in tag order: alternative i has tag i + 1.
using Command = std::variant<command::CreateBucket, command::DeleteBucket, command::UpdateBucket, command::PutObject,
                             command::SetObjectAcl, command::DeleteObject, command::CreateUpload, command::PutPart,
                             command::CompleteUpload, command::AbortUpload, command::CreateUser, command::DeleteUser,
                             command::CreateAccessKey, command::SetAccessKeyEnabled, command::DeleteAccessKey>;

// One struct per query, with the arguments of the MetaStore method of the same name.
namespace query {
struct GetBucket {
  std::string bucket;
  friend bool operator==(const GetBucket&, const GetBucket&) = default;
};
struct ListBuckets {
  friend bool operator==(const ListBuckets&, const ListBuckets&) = default;
};
struct GetObject {
  std::string bucket;
  std::string key;
  friend bool operator==(const GetObject&, const GetObject&) = default;
};
struct ListObjects {
  std::string bucket;
  ListObjectsOptions options;
  friend bool operator==(const ListObjects&, const ListObjects&) = default;
};
struct GetUpload {
  std::string bucket;
  std::string key;
  std::string upload_id;
  friend bool operator==(const GetUpload&, const GetUpload&) = default;
};
struct GetUploadInfo {
  std::string bucket;
  std::string key;
  std::string upload_id;
  friend bool operator==(const GetUploadInfo&, const GetUploadInfo&) = default;
};
struct ListParts {
  std::string bucket;
  std::string key;
  std::string upload_id;
  uint32_t part_number_marker = 0;
  uint32_t max_parts = 0;
  friend bool operator==(const ListParts&, const ListParts&) = default;
};
struct ListUploads {
  std::string bucket;
  ListUploadsOptions options;
  friend bool operator==(const ListUploads&, const ListUploads&) = default;
};
struct ListUsers {
  friend bool operator==(const ListUsers&, const ListUsers&) = default;
};
struct ListAccessKeys {
  friend bool operator==(const ListAccessKeys&, const ListAccessKeys&) = default;
};
// A page of MetaStore::ForEachChunkRef's walk (logic::ListChunkRefs).
struct ListChunkRefs {
  std::string after_key;
  uint32_t max_chunks = 0;
  friend bool operator==(const ListChunkRefs&, const ListChunkRefs&) = default;
};
// The record counters (logic::ReadCounters).
struct Stats {
  friend bool operator==(const Stats&, const Stats&) = default;
};
}  // namespace query

// The alternatives are in tag order: alternative i has tag 0x41 + i.
using Query = std::variant<query::GetBucket, query::ListBuckets, query::GetObject, query::ListObjects, query::GetUpload,
                           query::GetUploadInfo, query::ListParts, query::ListUploads, query::ListUsers,
                           query::ListAccessKeys, query::ListChunkRefs, query::Stats>;

// The value an operation returns when it succeeds; which alternative is fixed by the operation:
//   monostate: CreateBucket, DeleteBucket, SetObjectAcl, CreateUser, CreateAccessKey,
//              SetAccessKeyEnabled, DeleteAccessKey (and every failed operation);
//   bool: UpdateBucket (true when stored, false when the bucket no longer equals `expected`);
//   optional<ObjectRecord>: PutObject (the replaced record);  ObjectRecord: DeleteObject, GetObject;
//   string: CreateUpload (the id);  optional<PartRecord>: PutPart (the replaced part);
//   CompleteUploadResult: CompleteUpload;  vector<ChunkRef>: AbortUpload;
//   vector<AccessKeyRecord>: DeleteUser, ListAccessKeys;  BucketInfo: GetBucket;
//   vector<BucketInfo>: ListBuckets;  ListObjectsResult: ListObjects;
//   MultipartUpload: GetUpload, GetUploadInfo;  ListPartsResult: ListParts;
//   ListUploadsResult: ListUploads;  vector<UserRecord>: ListUsers;
//   logic::ChunkRefPage: ListChunkRefs;  map<string, uint64_t>: Stats.
using ReplyValue =
    std::variant<std::monostate, bool, std::optional<ObjectRecord>, ObjectRecord, std::string,
                 std::optional<PartRecord>, CompleteUploadResult, std::vector<ChunkRef>, std::vector<AccessKeyRecord>,
                 BucketInfo, std::vector<BucketInfo>, ListObjectsResult, MultipartUpload, ListPartsResult,
                 ListUploadsResult, std::vector<UserRecord>, logic::ChunkRefPage, std::map<std::string, uint64_t>>;

// What a command or query answered. `value` holds the operation's alternative when status is OK
// and monostate otherwise. op is kNone exactly for the reply to bytes that did not decode.
struct Reply {
  MetaOp op = MetaOp::kNone;
  Status status;
  ReplyValue value;
  friend bool operator==(const Reply&, const Reply&) = default;
};

MetaOp OpOf(const Command& command);
MetaOp OpOf(const Query& query);
// The ReplyValue alternative that `op` returns on success.
size_t ReplyValueIndex(MetaOp op);

std::string EncodeCommand(const Command& command);
// InvalidArgument for anything but a canonical encoding.
[[nodiscard]] Result<Command> DecodeCommand(std::string_view bytes);
std::string EncodeQuery(const Query& query);
// InvalidArgument for anything but a canonical encoding.
[[nodiscard]] Result<Query> DecodeQuery(std::string_view bytes);
// REQUIRES: reply.value holds ReplyValueIndex(reply.op) when reply.status is OK (otherwise the
// reply is encoded as an Internal error).
std::string EncodeReply(const Reply& reply);
// Corruption for anything but a canonical encoding.
[[nodiscard]] Result<Reply> DecodeReply(std::string_view bytes);

struct CommandOutcome {
  // Plain puts and deletes, in the order the operation made them; counters are resolved (a
  // counter's delta becomes a put of its new value). Empty when the command failed.
  std::vector<KvMutation> mutations;
  std::string result;  // EncodeReply of the command's Reply
};

// Deterministic: the same state and command give the same outcome on every replica. A malformed
// command gives no mutations and an encoded InvalidArgument result.
CommandOutcome ExecuteCommand(const KvReader& state, std::string_view command);
// Read-only. A malformed query gives an encoded InvalidArgument result.
std::string ExecuteQuery(const KvReader& state, std::string_view query);
// As ExecuteQuery, except that when the reader itself failed (a Get or an iterator returned an
// error: the head does not hold some key's committed version, say), that error is returned
// instead of a reply, so the caller can retry (replication::StateMachine::Query's contract).
[[nodiscard]] Result<std::string> ExecuteQueryOrReaderError(const KvReader& state, std::string_view query);

}  // namespace cairn::meta
