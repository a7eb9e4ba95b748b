// CommandMetaStore: each MetaStore method as one command or query. Contracts in
// meta/command_meta_store.h and meta/meta_store.h.
#include "meta/command_meta_store.h"

#include <type_traits>
#include <utility>

#include "meta/upload_id.h"

namespace cairn::meta {
namespace {

// The value of a decoded reply to `op`, or its status.
template <typename T>
Result<T> ValueOf(MetaOp op, Result<std::string> bytes) {
  if (!bytes.ok()) return bytes.status();
  Result<Reply> reply = DecodeReply(*bytes);
  if (!reply.ok()) return reply.status();
  // The executor could not decode the command this store encoded: nodes that speak different
  // versions, or a bug; never the S3 client's fault.
  if (reply->op == MetaOp::kNone && !reply->status.ok()) {
    return Status::Internal("the metadata chain did not understand a command: " + reply->status.ToString());
  }
  if (reply->op != op) return Status::Corruption("meta reply answers another operation");
  if (!reply->status.ok()) return reply->status;
  T* value = std::get_if<T>(&reply->value);
  if (value == nullptr) return Status::Corruption("meta reply holds another value");
  return std::move(*value);
}

Status StatusOf(Result<std::monostate> result) { return result.status(); }

}  // namespace

CommandMetaStore::CommandMetaStore(CommandTransport* transport) : transport_(transport) {}

CommandMetaStore::CommandMetaStore(std::unique_ptr<CommandTransport> transport)
    : owned_(std::move(transport)), transport_(owned_.get()) {}

template <typename T>
Result<T> CommandMetaStore::Write(const Command& command) {
  return ValueOf<T>(OpOf(command), transport_->Write(EncodeCommand(command)));
}

template <typename T>
Result<T> CommandMetaStore::Read(const Query& query) {
  return ValueOf<T>(OpOf(query), transport_->Query(EncodeQuery(query)));
}

// ---- Buckets ----------------------------------------------------------------------------------

Status CommandMetaStore::CreateBucket(const BucketInfo& bucket) {
  return StatusOf(Write<std::monostate>(command::CreateBucket{bucket}));
}

Status CommandMetaStore::DeleteBucket(std::string_view bucket, const BucketInfo* expected) {
  command::DeleteBucket c{std::string(bucket), std::nullopt};
  if (expected != nullptr) c.expected = BucketIdentity{expected->owner, expected->created_ms};
  return StatusOf(Write<std::monostate>(c));
}

Result<BucketInfo> CommandMetaStore::GetBucket(std::string_view bucket) {
  return Read<BucketInfo>(query::GetBucket{std::string(bucket)});
}

Result<std::vector<BucketInfo>> CommandMetaStore::ListBuckets() {
  return Read<std::vector<BucketInfo>>(query::ListBuckets{});
}

Status CommandMetaStore::UpdateBucket(std::string_view bucket, const std::function<Status(BucketInfo*)>& mutate) {
  for (int attempt = 0; attempt < kMaxUpdateBucketAttempts; ++attempt) {
    CAIRN_ASSIGN_OR_RETURN(BucketInfo current, GetBucket(bucket));
    BucketInfo updated = current;
    CAIRN_RETURN_IF_ERROR(mutate(&updated));
    // The executor refuses such a change too; refusing it here saves the round trip.
    if (updated.name != current.name || updated.owner != current.owner || updated.created_ms != current.created_ms) {
      return Status::InvalidArgument("UpdateBucket may not change the name, owner or creation time");
    }
    CAIRN_ASSIGN_OR_RETURN(bool stored, Write<bool>(command::UpdateBucket{std::string(bucket), current, updated}));
    if (stored) return Status::OK();
  }
  return Status::Busy("UpdateBucket: the bucket kept changing");
}

// ---- Objects ----------------------------------------------------------------------------------

Status CommandMetaStore::PutObject(const ObjectRecord& record, const WritePrecondition& precondition,
                                   std::optional<ObjectRecord>* replaced) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<ObjectRecord> old,
                         Write<std::optional<ObjectRecord>>(command::PutObject{record, precondition}));
  if (replaced != nullptr) *replaced = std::move(old);
  return Status::OK();
}

Result<ObjectRecord> CommandMetaStore::GetObject(std::string_view bucket, std::string_view key) {
  return Read<ObjectRecord>(query::GetObject{std::string(bucket), std::string(key)});
}

Status CommandMetaStore::SetObjectAcl(std::string_view bucket, std::string_view key, const Acl& acl,
                                      const ObjectRecord* expected) {
  command::SetObjectAcl c{std::string(bucket), std::string(key), acl, std::nullopt};
  if (expected != nullptr) c.expected = ObjectVersion{expected->etag, expected->last_modified_ms};
  return StatusOf(Write<std::monostate>(c));
}

Result<ObjectRecord> CommandMetaStore::DeleteObject(std::string_view bucket, std::string_view key) {
  return Write<ObjectRecord>(command::DeleteObject{std::string(bucket), std::string(key)});
}

Result<ListObjectsResult> CommandMetaStore::ListObjects(std::string_view bucket, const ListObjectsOptions& options) {
  return Read<ListObjectsResult>(query::ListObjects{std::string(bucket), options});
}

// ---- Multipart uploads ------------------------------------------------------------------------

Result<std::string> CommandMetaStore::CreateUpload(const MultipartUpload& upload) {
  command::CreateUpload c{upload};
  c.upload.parts.clear();
  if (c.upload.upload_id.empty()) c.upload.upload_id = NewRandomUploadId();
  return Write<std::string>(c);
}

Status CommandMetaStore::PutPart(std::string_view bucket, std::string_view key, std::string_view upload_id,
                                 const PartRecord& part, std::optional<PartRecord>* replaced) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<PartRecord> old,
                         Write<std::optional<PartRecord>>(
                             command::PutPart{std::string(bucket), std::string(key), std::string(upload_id), part}));
  if (replaced != nullptr) *replaced = std::move(old);
  return Status::OK();
}

Result<MultipartUpload> CommandMetaStore::GetUpload(std::string_view bucket, std::string_view key,
                                                    std::string_view upload_id) {
  return Read<MultipartUpload>(query::GetUpload{std::string(bucket), std::string(key), std::string(upload_id)});
}

Result<MultipartUpload> CommandMetaStore::GetUploadInfo(std::string_view bucket, std::string_view key,
                                                        std::string_view upload_id) {
  return Read<MultipartUpload>(query::GetUploadInfo{std::string(bucket), std::string(key), std::string(upload_id)});
}

Result<ListPartsResult> CommandMetaStore::ListParts(std::string_view bucket, std::string_view key,
                                                    std::string_view upload_id, uint32_t part_number_marker,
                                                    uint32_t max_parts) {
  return Read<ListPartsResult>(
      query::ListParts{std::string(bucket), std::string(key), std::string(upload_id), part_number_marker, max_parts});
}

Result<ListUploadsResult> CommandMetaStore::ListUploads(std::string_view bucket, const ListUploadsOptions& options) {
  return Read<ListUploadsResult>(query::ListUploads{std::string(bucket), options});
}

Result<CompleteUploadResult> CommandMetaStore::CompleteUpload(std::string_view bucket, std::string_view key,
                                                              std::string_view upload_id,
                                                              const std::vector<CompletedPart>& parts,
                                                              std::string_view etag, int64_t last_modified_ms,
                                                              const WritePrecondition& precondition) {
  return Write<CompleteUploadResult>(command::CompleteUpload{std::string(bucket), std::string(key),
                                                             std::string(upload_id), parts, std::string(etag),
                                                             last_modified_ms, precondition});
}

Result<std::vector<ChunkRef>> CommandMetaStore::AbortUpload(std::string_view bucket, std::string_view key,
                                                            std::string_view upload_id) {
  return Write<std::vector<ChunkRef>>(
      command::AbortUpload{std::string(bucket), std::string(key), std::string(upload_id)});
}

// ---- Users and access keys --------------------------------------------------------------------

Status CommandMetaStore::CreateUser(const UserRecord& user) {
  return StatusOf(Write<std::monostate>(command::CreateUser{user}));
}

Result<std::vector<AccessKeyRecord>> CommandMetaStore::DeleteUser(std::string_view name) {
  return Write<std::vector<AccessKeyRecord>>(command::DeleteUser{std::string(name)});
}

Result<std::vector<UserRecord>> CommandMetaStore::ListUsers() {
  return Read<std::vector<UserRecord>>(query::ListUsers{});
}

Status CommandMetaStore::CreateAccessKey(const AccessKeyRecord& key) {
  return StatusOf(Write<std::monostate>(command::CreateAccessKey{key}));
}

Status CommandMetaStore::SetAccessKeyEnabled(std::string_view access_key, bool enabled) {
  return StatusOf(Write<std::monostate>(command::SetAccessKeyEnabled{std::string(access_key), enabled}));
}

Status CommandMetaStore::DeleteAccessKey(std::string_view access_key) {
  return StatusOf(Write<std::monostate>(command::DeleteAccessKey{std::string(access_key)}));
}

Result<std::vector<AccessKeyRecord>> CommandMetaStore::ListAccessKeys() {
  return Read<std::vector<AccessKeyRecord>>(query::ListAccessKeys{});
}

// ---- Maintenance ------------------------------------------------------------------------------

Status CommandMetaStore::ForEachChunkRef(const std::function<Status(const ChunkRef&)>& fn) {
  std::string after_key;
  do {
    CAIRN_ASSIGN_OR_RETURN(logic::ChunkRefPage page,
                           Read<logic::ChunkRefPage>(query::ListChunkRefs{after_key, kChunkRefPageSize}));
    for (const ChunkRef& chunk : page.chunks) CAIRN_RETURN_IF_ERROR(fn(chunk));
    after_key = std::move(page.next_after_key);
  } while (!after_key.empty());
  return Status::OK();
}

Result<std::map<std::string, uint64_t>> CommandMetaStore::Stats() {
  return Read<std::map<std::string, uint64_t>>(query::Stats{});
}

}  // namespace cairn::meta
