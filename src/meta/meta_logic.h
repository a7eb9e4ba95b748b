// The semantics of every MetaStore operation (meta/meta_store.h), written once, over an ordered
// key-value state: reads go through a KvReader (common/kv.h), mutations into a KvWriter. The
// single node runs these functions over RocksDB (meta/rocksdb_meta_store.cc); the cluster runs
// them at a chain's head through ExecuteCommand and ExecuteQuery (meta/meta_commands.h). Keys and
// values are those of meta/format.h (docs/formats/meta.md).
//
// Every function is deterministic: its outcome depends on the reader's state and its arguments
// only (no clock, no randomness: upload ids and times come from the caller). Contracts:
//   - A mutation reads everything it needs before it writes and never reads its own writes (the
//     reader of a chain's head does not show them).
//   - When a function returns an error, whatever it wrote must be discarded by the caller; when
//     it returns OK, the caller must apply all of its writes atomically.
//   - Read-check-write atomicity is the caller's: the reader must not change while a mutation
//     runs, as far as the keys that mutation touches are concerned.
// Errors are those of meta/meta_store.h; a reader error is returned as is.
//
// Thread-safety: the functions keep no state; they are as thread-safe as the reader and writer.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/kv.h"
#include "common/result.h"
#include "common/status.h"
#include "meta/meta_store.h"
#include "meta/types.h"

namespace cairn::meta {

// Where a metadata mutation goes. The writes of one operation form one atomic update.
class KvWriter {
 public:
  virtual ~KvWriter() = default;
  virtual void Put(std::string_view key, std::string_view value) = 0;
  virtual void Delete(std::string_view key) = 0;
  // Adds `delta` to the counter stored under format::CounterKey(name) (an absent counter is 0).
  virtual void AddCounter(std::string_view name, int64_t delta) = 0;
};

namespace logic {

// Names of the record counters (meta.md, "Counters"), as Stats() reports them.
inline constexpr std::string_view kBucketsCounter = "buckets";
inline constexpr std::string_view kObjectsCounter = "objects";
inline constexpr std::string_view kObjectBytesCounter = "object_bytes";
inline constexpr std::string_view kUploadsCounter = "uploads";
inline constexpr std::string_view kPartsCounter = "parts";
inline constexpr std::array<std::string_view, 5> kCounterNames = {kBucketsCounter, kObjectsCounter, kObjectBytesCounter,
                                                                  kUploadsCounter, kPartsCounter};

// An upload id as the store draws them: 128 random bits given as two words, 32 lowercase hex
// digits (each word's low nibble first).
std::string FormatUploadId(uint64_t word0, uint64_t word1);

// ---- Buckets --------------------------------------------------------------------------------
[[nodiscard]] Status CreateBucket(const KvReader& reader, KvWriter& writer, const BucketInfo& bucket);
[[nodiscard]] Status DeleteBucket(const KvReader& reader, KvWriter& writer, std::string_view bucket,
                                  const BucketInfo* expected);
[[nodiscard]] Result<BucketInfo> GetBucket(const KvReader& reader, std::string_view bucket);
[[nodiscard]] Result<std::vector<BucketInfo>> ListBuckets(const KvReader& reader);
[[nodiscard]] Status UpdateBucket(const KvReader& reader, KvWriter& writer, std::string_view bucket,
                                  const std::function<Status(BucketInfo*)>& mutate);

// ---- Objects --------------------------------------------------------------------------------
[[nodiscard]] Status PutObject(const KvReader& reader, KvWriter& writer, const ObjectRecord& record,
                               const WritePrecondition& precondition, std::optional<ObjectRecord>* replaced);
[[nodiscard]] Result<ObjectRecord> GetObject(const KvReader& reader, std::string_view bucket, std::string_view key);
[[nodiscard]] Status SetObjectAcl(const KvReader& reader, KvWriter& writer, std::string_view bucket,
                                  std::string_view key, const Acl& acl, const ObjectRecord* expected);
[[nodiscard]] Result<ObjectRecord> DeleteObject(const KvReader& reader, KvWriter& writer, std::string_view bucket,
                                                std::string_view key);
// `iterator_steps`, when not null, is increased by the iterator seeks and nexts the listing made.
[[nodiscard]] Result<ListObjectsResult> ListObjects(const KvReader& reader, std::string_view bucket,
                                                    const ListObjectsOptions& options,
                                                    uint64_t* iterator_steps = nullptr);

// ---- Multipart uploads ----------------------------------------------------------------------
// REQUIRES: the caller chose upload.upload_id (InvalidArgument when it is empty).
[[nodiscard]] Result<std::string> CreateUpload(const KvReader& reader, KvWriter& writer, const MultipartUpload& upload);
[[nodiscard]] Status PutPart(const KvReader& reader, KvWriter& writer, std::string_view bucket, std::string_view key,
                             std::string_view upload_id, const PartRecord& part, std::optional<PartRecord>* replaced);
[[nodiscard]] Result<MultipartUpload> GetUpload(const KvReader& reader, std::string_view bucket, std::string_view key,
                                                std::string_view upload_id);
[[nodiscard]] Result<MultipartUpload> GetUploadInfo(const KvReader& reader, std::string_view bucket,
                                                    std::string_view key, std::string_view upload_id);
[[nodiscard]] Result<ListPartsResult> ListParts(const KvReader& reader, std::string_view bucket, std::string_view key,
                                                std::string_view upload_id, uint32_t part_number_marker,
                                                uint32_t max_parts);
[[nodiscard]] Result<ListUploadsResult> ListUploads(const KvReader& reader, std::string_view bucket,
                                                    const ListUploadsOptions& options);
[[nodiscard]] Result<CompleteUploadResult> CompleteUpload(const KvReader& reader, KvWriter& writer,
                                                          std::string_view bucket, std::string_view key,
                                                          std::string_view upload_id,
                                                          const std::vector<CompletedPart>& parts,
                                                          std::string_view etag, int64_t last_modified_ms,
                                                          const WritePrecondition& precondition);
[[nodiscard]] Result<std::vector<ChunkRef>> AbortUpload(const KvReader& reader, KvWriter& writer,
                                                        std::string_view bucket, std::string_view key,
                                                        std::string_view upload_id);

// ---- Users and access keys ------------------------------------------------------------------
[[nodiscard]] Status CreateUser(const KvReader& reader, KvWriter& writer, const UserRecord& user);
[[nodiscard]] Result<std::vector<AccessKeyRecord>> DeleteUser(const KvReader& reader, KvWriter& writer,
                                                              std::string_view name);
[[nodiscard]] Result<std::vector<UserRecord>> ListUsers(const KvReader& reader);
[[nodiscard]] Status CreateAccessKey(const KvReader& reader, KvWriter& writer, const AccessKeyRecord& key);
[[nodiscard]] Status SetAccessKeyEnabled(const KvReader& reader, KvWriter& writer, std::string_view access_key,
                                         bool enabled);
[[nodiscard]] Status DeleteAccessKey(const KvReader& reader, KvWriter& writer, std::string_view access_key);
[[nodiscard]] Result<std::vector<AccessKeyRecord>> ListAccessKeys(const KvReader& reader);

// ---- Maintenance ----------------------------------------------------------------------------
// Every chunk of every stored part, then of every committed object, in that order (parts first:
// see ListChunkRefs), over the reader's state.
[[nodiscard]] Status ForEachChunkRef(const KvReader& reader, const std::function<Status(const ChunkRef&)>& fn);

// One page of ForEachChunkRef's walk, for a walk over several states (one per page).
struct ChunkRefPage {
  std::vector<ChunkRef> chunks;
  // The database key of the last record the page covered: pass it back as `after_key` to
  // continue. Empty when the walk is complete.
  std::string next_after_key;
  friend bool operator==(const ChunkRefPage&, const ChunkRefPage&) = default;
};
// The chunks of the records after `after_key` ("" starts the walk), whole records only, until at
// least `max_chunks` chunks are gathered (so a page may exceed it by one record's chunks; a
// max_chunks of 0 is taken as 1). The walk visits part records before object records: a
// completion moves chunks from parts to an object and nothing moves them back, so a walk whose
// pages see different states still visits every chunk that stays referenced all along.
[[nodiscard]] Result<ChunkRefPage> ListChunkRefs(const KvReader& reader, std::string_view after_key,
                                                 uint32_t max_chunks);

// The record counters by name (every name of kCounterNames; a negative count reads as 0).
[[nodiscard]] Result<std::map<std::string, uint64_t>> ReadCounters(const KvReader& reader);

}  // namespace logic
}  // namespace cairn::meta
