// ShardedMetaStore: one MetaStore made of several, split by bucket. Cluster mode runs one
// CommandMetaStore per metadata chain under it (docs/design/cluster.md, "Metadata across chains").
//
// The split:
//   - Everything of a bucket (its record, its objects, its uploads and their parts, its share of
//     the record counters) lives in shard BucketShard(name): every operation that names a bucket
//     is one operation of one shard, as atomic as that shard makes it. ListObjects stays one
//     ordered scan of one shard, and CreateBucket's uniqueness and DeleteBucket's emptiness check
//     need no protocol across shards.
//   - Users and access keys live in shard 0 (the system shard).
//   - Reads of the whole store ask every shard: ListBuckets merges their lists in name order and
//     Stats adds their figures (asking all the shards at once, a thread each, at most 64 such
//     threads in the process: beyond, one after another), ForEachChunkRef
//     walks them one after another. ListBuckets is not
//     one snapshot: a bucket created or deleted meanwhile in a shard already asked is missed or
//     still listed, as if the listing had happened just before the change.
//
// The shard of a bucket depends only on its name and the shard count: both are fixed for the life
// of the store (a cluster records its chain count in etcd and refuses a node configured otherwise).
//
// Bucket cache (optional, `bucket_cache_ttl` > 0): GetBucket, which the S3 layer calls on every
// request, answers from a copy younger than the TTL when it has one. Only buckets found are
// cached (a bucket created elsewhere is seen at once); this store's own CreateBucket,
// DeleteBucket and UpdateBucket drop the copy, so its own changes are seen at once too. A change
// made through another store (another node) is seen within the TTL: the S3 layer may authorize a
// request against an ACL or policy up to that old, as it does with access keys (re-read every
// second in cluster mode). A write checks where it commits that its bucket exists, but is
// authorized against the copy: a bucket made again by another owner through another node within
// the TTL may still be written by the old one.
//
// Thread-safety: as thread-safe as the shards (every MetaStore is); the cache has its own mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "meta/meta_store.h"

namespace cairn::meta {

// The shard of a bucket among `shard_count` (> 0): the CRC32C of its name modulo the count. Part
// of the stored layout: a change moves buckets.
uint32_t BucketShard(std::string_view bucket, uint32_t shard_count);

class ShardedMetaStore final : public MetaStore {
 public:
  // REQUIRES: at least one shard. `bucket_cache_ttl` 0: no bucket cache.
  explicit ShardedMetaStore(std::vector<std::unique_ptr<MetaStore>> shards,
                            std::chrono::milliseconds bucket_cache_ttl = std::chrono::milliseconds(0));

  // Buckets the cache holds at most.
  static constexpr size_t kMaxCachedBuckets = 100000;

  uint32_t shard_count() const { return static_cast<uint32_t>(shards_.size()); }

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
  // Every shard's figures, added by name.
  Result<std::map<std::string, uint64_t>> Stats() override;

 private:
  MetaStore& Of(std::string_view bucket) { return *shards_[BucketShard(bucket, shard_count())]; }
  // fn(shard) for every shard at once, the answers in shard order.
  template <class Fn>
  auto AskAll(Fn fn) -> std::vector<decltype(fn(std::declval<MetaStore&>()))>;
  MetaStore& System() { return *shards_[0]; }
  void Forget(std::string_view bucket);

  struct CachedBucket {
    BucketInfo info;
    std::chrono::steady_clock::time_point expiry;
  };

  const std::vector<std::unique_ptr<MetaStore>> shards_;
  const std::chrono::milliseconds bucket_cache_ttl_;
  std::mutex cache_mu_;
  std::map<std::string, CachedBucket, std::less<>> cache_;  // GUARDED_BY(cache_mu_)
  // Bumped by every local bucket mutation: a read that began before one does not fill the cache
  // (it may carry the state from before the mutation).
  uint64_t cache_epoch_ = 0;  // GUARDED_BY(cache_mu_)
};

}  // namespace cairn::meta
