// CommandMetaStore: the MetaStore of cluster mode. Every mutation is encoded as a command and
// every read as a query (meta/meta_commands.h), handed to a CommandTransport that runs it where
// the metadata lives (a chain's head: ExecuteCommand / ExecuteQuery over the chain's state), and
// the reply is decoded into what the MetaStore method returns.
//
// Differences from the single node (RocksDbMetaStore), by design:
//   - No bucket cache: another node may change a bucket at any time, so GetBucket is a query.
//   - UpdateBucket reads the bucket, applies `mutate` here and sends a compare-and-set; when the
//     bucket changed meanwhile it reads again and calls `mutate` again (so `mutate` may run more
//     than once, each time on a fresh copy), up to kMaxUpdateBucketAttempts times (then Busy).
//   - CreateUpload with an empty id draws the random id here, before sending.
//   - ForEachChunkRef walks pages of kChunkRefPageSize chunks, each page one query over the
//     committed state of its time, not one snapshot: parts are walked before objects, so a chunk
//     that stays referenced all along is visited even when a completion moves it meanwhile.
//   - Stats reports the record counters only ("buckets", "objects", "object_bytes", "uploads",
//     "parts").
// A transport error (the outcome of a command is then unknown) is returned as is; a reply that
// does not decode, or answers another operation, is Corruption.
//
// Thread-safety: all methods are thread-safe when the transport is (REQUIRES: it is); the store
// keeps no state.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "meta/meta_commands.h"
#include "meta/meta_store.h"

namespace cairn::meta {

class CommandTransport {
 public:
  virtual ~CommandTransport() = default;
  // Applies `command` at most once (the transport retries under one operation id) and returns the
  // result bytes ExecuteCommand produced. An error status means the outcome is unknown.
  virtual Result<std::string> Write(std::string command) = 0;
  // Evaluates `query` against committed state and returns ExecuteQuery's bytes.
  virtual Result<std::string> Query(std::string query) = 0;
};

class CommandMetaStore final : public MetaStore {
 public:
  // Compare-and-set rounds of one UpdateBucket before it gives up with Busy.
  static constexpr int kMaxUpdateBucketAttempts = 64;
  // Chunks asked for per ForEachChunkRef query.
  static constexpr uint32_t kChunkRefPageSize = 4096;

  // `transport` must outlive the store.
  explicit CommandMetaStore(CommandTransport* transport);
  // Owns its transport.
  explicit CommandMetaStore(std::unique_ptr<CommandTransport> transport);

  Status CreateBucket(const BucketInfo& bucket) override;
  Status DeleteBucket(std::string_view bucket, const BucketInfo* expected) override;
  Result<BucketInfo> GetBucket(std::string_view bucket) override;
  Result<std::vector<BucketInfo>> ListBuckets() override;
  Status UpdateBucket(std::string_view bucket, const std::function<Status(BucketInfo*)>& mutate) override;

  Status PutObject(const ObjectRecord& record, const WritePrecondition& precondition,
                   std::optional<ObjectRecord>* replaced) override;
  Result<ObjectRecord> GetObject(std::string_view bucket, std::string_view key) override;
  Status SetObjectAcl(std::string_view bucket, std::string_view key, const Acl& acl,
                      const ObjectRecord* expected) override;
  Result<ObjectRecord> DeleteObject(std::string_view bucket, std::string_view key) override;
  Result<ListObjectsResult> ListObjects(std::string_view bucket, const ListObjectsOptions& options) override;

  Result<std::string> CreateUpload(const MultipartUpload& upload) override;
  Status PutPart(std::string_view bucket, std::string_view key, std::string_view upload_id, const PartRecord& part,
                 std::optional<PartRecord>* replaced) override;
  Result<MultipartUpload> GetUpload(std::string_view bucket, std::string_view key, std::string_view upload_id) override;
  Result<MultipartUpload> GetUploadInfo(std::string_view bucket, std::string_view key,
                                        std::string_view upload_id) override;
  Result<ListPartsResult> ListParts(std::string_view bucket, std::string_view key, std::string_view upload_id,
                                    uint32_t part_number_marker, uint32_t max_parts) override;
  Result<ListUploadsResult> ListUploads(std::string_view bucket, const ListUploadsOptions& options) override;
  Result<CompleteUploadResult> CompleteUpload(std::string_view bucket, std::string_view key, std::string_view upload_id,
                                              const std::vector<CompletedPart>& parts, std::string_view etag,
                                              int64_t last_modified_ms, const WritePrecondition& precondition) override;
  Result<std::vector<ChunkRef>> AbortUpload(std::string_view bucket, std::string_view key,
                                            std::string_view upload_id) override;

  Status CreateUser(const UserRecord& user) override;
  Result<std::vector<AccessKeyRecord>> DeleteUser(std::string_view name) override;
  Result<std::vector<UserRecord>> ListUsers() override;
  Status CreateAccessKey(const AccessKeyRecord& key) override;
  Status SetAccessKeyEnabled(std::string_view access_key, bool enabled) override;
  Status DeleteAccessKey(std::string_view access_key) override;
  Result<std::vector<AccessKeyRecord>> ListAccessKeys() override;

  Status ForEachChunkRef(const std::function<Status(const ChunkRef&)>& fn) override;
  Result<std::map<std::string, uint64_t>> Stats() override;

 private:
  // Sends the command or query and returns the reply's value of type T (its status when not OK).
  template <typename T>
  Result<T> Write(const Command& command);
  template <typename T>
  Result<T> Read(const Query& query);

  std::unique_ptr<CommandTransport> owned_;  // null when the transport is the caller's
  CommandTransport* const transport_;
};

}  // namespace cairn::meta
