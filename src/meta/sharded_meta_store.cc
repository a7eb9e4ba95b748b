#include "meta/sharded_meta_store.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <future>
#include <optional>
#include <system_error>
#include <utility>

#include "common/crc32c.h"

namespace cairn::meta {

uint32_t BucketShard(std::string_view bucket, uint32_t shard_count) {
  assert(shard_count > 0);
  return crc32c::Value(bucket.data(), bucket.size()) % shard_count;
}

ShardedMetaStore::ShardedMetaStore(std::vector<std::unique_ptr<MetaStore>> shards,
                                   std::chrono::milliseconds bucket_cache_ttl)
    : shards_(std::move(shards)), bucket_cache_ttl_(bucket_cache_ttl) {
  assert(!shards_.empty());
}

void ShardedMetaStore::Forget(std::string_view bucket) {
  std::lock_guard lock(cache_mu_);
  ++cache_epoch_;
  if (auto it = cache_.find(bucket); it != cache_.end()) cache_.erase(it);
}

// ---- Buckets: each in its shard, except the listing ----------------------------------------

// A mutation drops the cached copy before (so that no read from then on answers from it) and
// after (a read that began before it may have cached the old state meanwhile: the epoch stops it).
Status ShardedMetaStore::CreateBucket(const BucketInfo& bucket) {
  Forget(bucket.name);
  Status s = Of(bucket.name).CreateBucket(bucket);
  Forget(bucket.name);
  return s;
}

Status ShardedMetaStore::DeleteBucket(std::string_view bucket, const BucketInfo* expected) {
  Forget(bucket);
  Status s = Of(bucket).DeleteBucket(bucket, expected);
  Forget(bucket);
  return s;
}

Result<BucketInfo> ShardedMetaStore::GetBucket(std::string_view bucket) {
  if (bucket_cache_ttl_.count() == 0) return Of(bucket).GetBucket(bucket);
  uint64_t epoch = 0;
  {
    std::lock_guard lock(cache_mu_);
    auto it = cache_.find(bucket);
    if (it != cache_.end() && std::chrono::steady_clock::now() < it->second.expiry) return it->second.info;
    epoch = cache_epoch_;
  }
  const auto asked = std::chrono::steady_clock::now();
  Result<BucketInfo> info = Of(bucket).GetBucket(bucket);
  std::lock_guard lock(cache_mu_);
  if (info.ok() && epoch == cache_epoch_) {
    if (cache_.size() >= kMaxCachedBuckets) cache_.clear();  // a bound, not a policy: they come back
    cache_[std::string(bucket)] = CachedBucket{*info, asked + bucket_cache_ttl_};
  } else if (!info.ok()) {
    if (auto it = cache_.find(bucket); it != cache_.end()) cache_.erase(it);
  }
  return info;
}

namespace {

// Threads asking shards for AskAll, in the whole process: beyond the cap (many clients listing at
// once) the calls ask their remaining shards one after another instead of starting more.
std::atomic<int> ask_threads{0};
constexpr int kMaxAskThreads = 64;

}  // namespace

// fn(shard) for every shard at once (each is a round trip to its chain in cluster mode), the
// answers in shard order.
template <class Fn>
auto ShardedMetaStore::AskAll(Fn fn) -> std::vector<decltype(fn(std::declval<MetaStore&>()))> {
  using Answer = decltype(fn(std::declval<MetaStore&>()));
  std::vector<std::optional<std::future<Answer>>> pending(shards_.size());
  for (size_t i = 1; i < shards_.size(); ++i) {
    if (ask_threads.fetch_add(1) >= kMaxAskThreads) {
      ask_threads.fetch_sub(1);
      continue;  // asked below, on this thread
    }
    try {
      pending[i] = std::async(std::launch::async, [&fn, shard = shards_[i].get()] {
        struct Release {
          ~Release() { ask_threads.fetch_sub(1); }
        } release;
        return fn(*shard);
      });
    } catch (const std::system_error&) {
      ask_threads.fetch_sub(1);  // no thread to be had: asked below, on this thread
    }
  }
  std::vector<Answer> answers;
  for (size_t i = 0; i < shards_.size(); ++i) {
    answers.push_back(pending[i] ? pending[i]->get() : fn(*shards_[i]));
  }
  return answers;
}

Result<std::vector<BucketInfo>> ShardedMetaStore::ListBuckets() {
  std::vector<BucketInfo> all;
  for (auto& some : AskAll([](MetaStore& shard) { return shard.ListBuckets(); })) {
    if (!some.ok()) return some.status();
    all.insert(all.end(), std::make_move_iterator(some->begin()), std::make_move_iterator(some->end()));
  }
  std::sort(all.begin(), all.end(), [](const BucketInfo& a, const BucketInfo& b) { return a.name < b.name; });
  return all;
}

Status ShardedMetaStore::UpdateBucket(std::string_view bucket, const std::function<Status(BucketInfo*)>& mutate) {
  Forget(bucket);
  Status s = Of(bucket).UpdateBucket(bucket, mutate);
  Forget(bucket);
  return s;
}

// ---- Objects and uploads: the bucket's shard ---------------------------------------------------

Status ShardedMetaStore::PutObject(const ObjectRecord& record, const WritePrecondition& precondition,
                                   std::optional<ObjectRecord>* replaced) {
  return Of(record.bucket).PutObject(record, precondition, replaced);
}

Result<ObjectRecord> ShardedMetaStore::GetObject(std::string_view bucket, std::string_view key) {
  return Of(bucket).GetObject(bucket, key);
}

Status ShardedMetaStore::SetObjectAcl(std::string_view bucket, std::string_view key, const Acl& acl,
                                      const ObjectRecord* expected) {
  return Of(bucket).SetObjectAcl(bucket, key, acl, expected);
}

Result<ObjectRecord> ShardedMetaStore::DeleteObject(std::string_view bucket, std::string_view key) {
  return Of(bucket).DeleteObject(bucket, key);
}

Result<ListObjectsResult> ShardedMetaStore::ListObjects(std::string_view bucket, const ListObjectsOptions& options) {
  return Of(bucket).ListObjects(bucket, options);
}

Result<std::string> ShardedMetaStore::CreateUpload(const MultipartUpload& upload) {
  return Of(upload.bucket).CreateUpload(upload);
}

Status ShardedMetaStore::PutPart(std::string_view bucket, std::string_view key, std::string_view upload_id,
                                 const PartRecord& part, std::optional<PartRecord>* replaced) {
  return Of(bucket).PutPart(bucket, key, upload_id, part, replaced);
}

Result<MultipartUpload> ShardedMetaStore::GetUpload(std::string_view bucket, std::string_view key,
                                                    std::string_view upload_id) {
  return Of(bucket).GetUpload(bucket, key, upload_id);
}

Result<MultipartUpload> ShardedMetaStore::GetUploadInfo(std::string_view bucket, std::string_view key,
                                                        std::string_view upload_id) {
  return Of(bucket).GetUploadInfo(bucket, key, upload_id);
}

Result<ListPartsResult> ShardedMetaStore::ListParts(std::string_view bucket, std::string_view key,
                                                    std::string_view upload_id, uint32_t part_number_marker,
                                                    uint32_t max_parts) {
  return Of(bucket).ListParts(bucket, key, upload_id, part_number_marker, max_parts);
}

Result<ListUploadsResult> ShardedMetaStore::ListUploads(std::string_view bucket, const ListUploadsOptions& options) {
  return Of(bucket).ListUploads(bucket, options);
}

Result<CompleteUploadResult> ShardedMetaStore::CompleteUpload(std::string_view bucket, std::string_view key,
                                                              std::string_view upload_id,
                                                              const std::vector<CompletedPart>& parts,
                                                              std::string_view etag, int64_t last_modified_ms,
                                                              const WritePrecondition& precondition) {
  return Of(bucket).CompleteUpload(bucket, key, upload_id, parts, etag, last_modified_ms, precondition);
}

Result<std::vector<ChunkRef>> ShardedMetaStore::AbortUpload(std::string_view bucket, std::string_view key,
                                                            std::string_view upload_id) {
  return Of(bucket).AbortUpload(bucket, key, upload_id);
}

// ---- Users and access keys: the system shard ------------------------------------------------

Status ShardedMetaStore::CreateUser(const UserRecord& user) { return System().CreateUser(user); }

Result<std::vector<AccessKeyRecord>> ShardedMetaStore::DeleteUser(std::string_view name) {
  return System().DeleteUser(name);
}

Result<std::vector<UserRecord>> ShardedMetaStore::ListUsers() { return System().ListUsers(); }

Status ShardedMetaStore::CreateAccessKey(const AccessKeyRecord& key) { return System().CreateAccessKey(key); }

Status ShardedMetaStore::SetAccessKeyEnabled(std::string_view access_key, bool enabled) {
  return System().SetAccessKeyEnabled(access_key, enabled);
}

Status ShardedMetaStore::DeleteAccessKey(std::string_view access_key) { return System().DeleteAccessKey(access_key); }

Result<std::vector<AccessKeyRecord>> ShardedMetaStore::ListAccessKeys() { return System().ListAccessKeys(); }

// ---- Maintenance: every shard ----------------------------------------------------------------

Status ShardedMetaStore::ForEachChunkRef(const std::function<Status(const ChunkRef&)>& fn) {
  for (const auto& shard : shards_) CAIRN_RETURN_IF_ERROR(shard->ForEachChunkRef(fn));
  return Status::OK();
}

Result<std::map<std::string, uint64_t>> ShardedMetaStore::Stats() {
  std::map<std::string, uint64_t> sum;
  for (auto& figures : AskAll([](MetaStore& shard) { return shard.Stats(); })) {
    if (!figures.ok()) return figures.status();
    for (const auto& [name, value] : *figures) sum[name] += value;
  }
  return sum;
}

}  // namespace cairn::meta
