// MetaStore: the metadata of an object store: buckets, the object index ordered by
// (bucket, key), and multipart uploads with their parts.
//
// This is the interface that the object layer and the gateway program against. The single-node
// server implements it with RocksDB (meta/rocksdb_meta_store.h); cluster mode with commands and
// queries to a metadata chain (meta/command_meta_store.h). It names no storage library on purpose.
//
// Contracts shared by every implementation:
//   - Every mutation is atomic and durable before it returns OK: a crash afterwards never loses
//     it, a crash before leaves the previous state. A successful PutObject or CompleteUpload is
//     the commit point of ARCHITECTURE.md decision 1.
//   - Reads see every mutation that returned before the read began (read-after-write).
//   - Mutations that return records they removed (a replaced object, a replaced part, an aborted
//     upload's chunks) hand the caller exclusive ownership of those chunks' reclamation: no
//     committed record refers to them any longer.
//   - Errors: a missing bucket is NoSuchBucket, a missing object NotFound, a missing upload
//     NoSuchUpload; a stored value that fails its checksum is Corruption and is never misread.
//
// Thread-safety: all methods may be called concurrently from any number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "meta/types.h"

namespace cairn::meta {

// A precondition checked atomically with a write (S3 conditional writes). The default is none.
struct WritePrecondition {
  // If-Match: the current object's etag must equal this one (quotes are ignored; "*" matches
  // any existing object). When there is no current object the write fails with NotFound.
  std::optional<std::string> if_match_etag;
  // If-None-Match: "*": there must be no current object.
  bool must_not_exist = false;

  friend bool operator==(const WritePrecondition&, const WritePrecondition&) = default;
};

struct ListObjectsOptions {
  std::string prefix;       // only keys that start with it
  std::string delimiter;    // empty: no grouping
  std::string start_after;  // exclusive; "" lists from the start
  uint32_t max_keys = 1000;

  friend bool operator==(const ListObjectsOptions&, const ListObjectsOptions&) = default;
};

// A listing page. Entries come in key order; objects and common prefixes are interleaved in
// that order, and `objects.size() + common_prefixes.size() <= max_keys`.
//
// Semantics: a key k is listed when it starts with `prefix` and k > start_after. When the
// delimiter occurs in k after the prefix, k is listed as its common prefix (k up to and
// including the first such delimiter) instead, and each common prefix appears once. A common
// prefix equal to start_after is not listed again, so passing `next_start_after` back as
// start_after continues exactly where the page ended.
struct ListObjectsResult {
  std::vector<ObjectRecord> objects;
  std::vector<std::string> common_prefixes;
  bool is_truncated = false;
  // The last key or common prefix of this page; empty when the page is empty.
  std::string next_start_after;

  friend bool operator==(const ListObjectsResult&, const ListObjectsResult&) = default;
};

struct ListPartsResult {
  std::vector<PartRecord> parts;  // ascending part numbers
  bool is_truncated = false;
  uint32_t next_part_number_marker = 0;  // the last part number returned; 0 when none

  friend bool operator==(const ListPartsResult&, const ListPartsResult&) = default;
};

struct ListUploadsOptions {
  std::string prefix;
  // Continue after (key_marker, upload_id_marker): with an empty upload_id_marker, uploads
  // whose key is > key_marker; otherwise also those with key == key_marker and a greater id.
  std::string key_marker;
  std::string upload_id_marker;
  uint32_t max_uploads = 1000;

  friend bool operator==(const ListUploadsOptions&, const ListUploadsOptions&) = default;
};

struct ListUploadsResult {
  std::vector<MultipartUpload> uploads;  // ordered by (key, upload_id); `parts` left empty
  bool is_truncated = false;
  std::string next_key_marker;
  std::string next_upload_id_marker;

  friend bool operator==(const ListUploadsResult&, const ListUploadsResult&) = default;
};

// One entry of a CompleteMultipartUpload request.
struct CompletedPart {
  uint32_t part_number = 0;
  std::string etag;  // quotes are ignored

  friend bool operator==(const CompletedPart&, const CompletedPart&) = default;
};

struct CompleteUploadResult {
  ObjectRecord object;                   // the record now committed
  std::optional<ObjectRecord> replaced;  // the object it replaced, if any
  // Chunks of the upload's parts that the completion did not use.
  std::vector<ChunkRef> unused_chunks;

  friend bool operator==(const CompleteUploadResult&, const CompleteUploadResult&) = default;
};

class MetaStore {
 public:
  virtual ~MetaStore() = default;

  // ---- Buckets ----------------------------------------------------------------------------
  // AlreadyExists when a bucket of that name exists; InvalidArgument for an empty name or one
  // that contains NUL.
  [[nodiscard]] virtual Status CreateBucket(const BucketInfo& bucket) = 0;
  // BucketNotEmpty while the bucket holds an object or an unfinished multipart upload.
  // `expected`, when given, is the bucket the caller authorized against: the bucket must still
  // have its owner and creation time (PreconditionFailed otherwise), so a bucket deleted and
  // created again under the same name meanwhile is never deleted by mistake.
  [[nodiscard]] virtual Status DeleteBucket(std::string_view bucket, const BucketInfo* expected) = 0;
  [[nodiscard]] virtual Result<BucketInfo> GetBucket(std::string_view bucket) = 0;
  // All buckets, ordered by name (bytewise).
  [[nodiscard]] virtual Result<std::vector<BucketInfo>> ListBuckets() = 0;
  // Reads the bucket, lets `mutate` change its ACL, policy or CORS document, and stores the
  // result, atomically with respect to other bucket mutations. `mutate`'s error is returned and
  // nothing changes; so it is when mutate changed the name, the owner or the creation time
  // (InvalidArgument). NoSuchBucket when there is no such bucket.
  [[nodiscard]] virtual Status UpdateBucket(std::string_view bucket,
                                            const std::function<Status(BucketInfo*)>& mutate) = 0;

  // ---- Objects ----------------------------------------------------------------------------
  // Commits `record` as the current version of (record.bucket, record.key), atomically
  // replacing any previous one, which is stored into *replaced (nullopt when there was none;
  // `replaced` may be null). PreconditionFailed (or NotFound, see WritePrecondition) when
  // `precondition` does not hold, and nothing changes.
  [[nodiscard]] virtual Status PutObject(const ObjectRecord& record, const WritePrecondition& precondition,
                                         std::optional<ObjectRecord>* replaced) = 0;
  [[nodiscard]] virtual Result<ObjectRecord> GetObject(std::string_view bucket, std::string_view key) = 0;
  // Replaces the grants of the current object's ACL, atomically with respect to other
  // mutations of it; the owner stays (it is who wrote the object; a record from before ACLs gets
  // acl.owner). `expected`, when given, is the version the caller authorized against: its etag
  // and last_modified_ms must still be the current object's (PreconditionFailed otherwise), so
  // grants meant for one version never land on a newer one. NotFound when there is no object.
  [[nodiscard]] virtual Status SetObjectAcl(std::string_view bucket, std::string_view key, const Acl& acl,
                                            const ObjectRecord* expected) = 0;
  // Removes the object and returns its record. NotFound when there is none.
  [[nodiscard]] virtual Result<ObjectRecord> DeleteObject(std::string_view bucket, std::string_view key) = 0;
  // One page of the bucket's listing; see ListObjectsResult for the semantics. The page is a
  // consistent snapshot.
  [[nodiscard]] virtual Result<ListObjectsResult> ListObjects(std::string_view bucket,
                                                              const ListObjectsOptions& options) = 0;

  // ---- Multipart uploads ------------------------------------------------------------------
  // Records a new upload (its `parts` are ignored) and returns its id: upload.upload_id when
  // not empty (the caller guarantees it is globally unique), otherwise a fresh random id.
  [[nodiscard]] virtual Result<std::string> CreateUpload(const MultipartUpload& upload) = 0;
  // Stores a part, replacing one with the same number, which goes into *replaced (may be null).
  // InvalidArgument for part number 0.
  [[nodiscard]] virtual Status PutPart(std::string_view bucket, std::string_view key, std::string_view upload_id,
                                       const PartRecord& part, std::optional<PartRecord>* replaced) = 0;
  // The upload with all its parts.
  [[nodiscard]] virtual Result<MultipartUpload> GetUpload(std::string_view bucket, std::string_view key,
                                                          std::string_view upload_id) = 0;
  // The upload without its parts (GetUpload's record, cheap for uploads with many parts).
  [[nodiscard]] virtual Result<MultipartUpload> GetUploadInfo(std::string_view bucket, std::string_view key,
                                                              std::string_view upload_id) = 0;
  // Parts with numbers > part_number_marker, at most max_parts of them.
  [[nodiscard]] virtual Result<ListPartsResult> ListParts(std::string_view bucket, std::string_view key,
                                                          std::string_view upload_id, uint32_t part_number_marker,
                                                          uint32_t max_parts) = 0;
  [[nodiscard]] virtual Result<ListUploadsResult> ListUploads(std::string_view bucket,
                                                              const ListUploadsOptions& options) = 0;
  // Atomically commits the object made of `parts` (in that order: chunks concatenated, offsets
  // shifted, size summed, part sizes recorded, headers from the upload) with the given etag and
  // time, and removes the upload. InvalidPartOrder unless part numbers strictly ascend (and at
  // least one is given); InvalidPart when a part is missing or its etag differs. Size rules
  // (the 5 MiB minimum) are the caller's.
  [[nodiscard]] virtual Result<CompleteUploadResult> CompleteUpload(std::string_view bucket, std::string_view key,
                                                                    std::string_view upload_id,
                                                                    const std::vector<CompletedPart>& parts,
                                                                    std::string_view etag, int64_t last_modified_ms,
                                                                    const WritePrecondition& precondition) = 0;
  // Removes the upload and its parts, and returns all their chunks.
  [[nodiscard]] virtual Result<std::vector<ChunkRef>> AbortUpload(std::string_view bucket, std::string_view key,
                                                                  std::string_view upload_id) = 0;

  // ---- Users and access keys ---------------------------------------------------------------
  // AlreadyExists when a user of that name exists.
  [[nodiscard]] virtual Status CreateUser(const UserRecord& user) = 0;
  // Removes the user and all its access keys in one atomic write, and returns the keys removed.
  // NotFound when there is no such user.
  [[nodiscard]] virtual Result<std::vector<AccessKeyRecord>> DeleteUser(std::string_view name) = 0;
  // Ordered by name.
  [[nodiscard]] virtual Result<std::vector<UserRecord>> ListUsers() = 0;
  // Stores a new key (AlreadyExists when the id is taken; NotFound when its user does not exist).
  [[nodiscard]] virtual Status CreateAccessKey(const AccessKeyRecord& key) = 0;
  // Sets a key's enabled flag. NotFound when there is no such key.
  [[nodiscard]] virtual Status SetAccessKeyEnabled(std::string_view access_key, bool enabled) = 0;
  // NotFound when there is no such key.
  [[nodiscard]] virtual Status DeleteAccessKey(std::string_view access_key) = 0;
  // Every key, ordered by access key id.
  [[nodiscard]] virtual Result<std::vector<AccessKeyRecord>> ListAccessKeys() = 0;

  // ---- Maintenance ------------------------------------------------------------------------
  // Calls fn for every chunk referenced by a committed object or a stored part; stops at and
  // returns the first non-OK status fn returns. Every chunk referenced throughout the call is
  // visited; one committed during the call may not be (an implementation may walk pages, each
  // over the state of its time, rather than one snapshot). A chunk written but not yet committed
  // is not visited: a collector must spare chunks younger than the longest write in flight.
  [[nodiscard]] virtual Status ForEachChunkRef(const std::function<Status(const ChunkRef&)>& fn) = 0;
  // Named gauges and counters for /metrics: record counts ("buckets", "objects",
  // "object_bytes", "uploads", "parts"), operation counters and storage-library figures.
  // Names are stable; an implementation documents the ones it adds.
  [[nodiscard]] virtual Result<std::map<std::string, uint64_t>> Stats() = 0;
};

}  // namespace cairn::meta
