// RocksDbMetaStore implementation. The contracts are in meta/meta_store.h, the layout in
// meta/format.h and docs/formats/meta.md, the locking in meta/rocksdb_meta_store.h.
// RocksDB exceptions (it may throw std::bad_alloc and the like) are caught at each public
// method and returned as Internal.
#include "meta/rocksdb_meta_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/snapshot.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <map>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <utility>

#include "meta/format.h"

namespace cairn::meta {
namespace {

// Read options pinned to one snapshot, released when this goes out of scope: every read of a
// public method sees one consistent state.
struct SnapshotRead {
  explicit SnapshotRead(rocksdb::DB* db) : snapshot(db) { options.snapshot = snapshot.snapshot(); }
  rocksdb::ManagedSnapshot snapshot;
  rocksdb::ReadOptions options;
};

// Names of the record counters (meta.md, "Counters").
constexpr std::string_view kBuckets = "buckets";
constexpr std::string_view kObjects = "objects";
constexpr std::string_view kObjectBytes = "object_bytes";
constexpr std::string_view kUploads = "uploads";
constexpr std::string_view kParts = "parts";
constexpr std::array<std::string_view, 5> kCounterNames = {kBuckets, kObjects, kObjectBytes, kUploads, kParts};

// Number of lock stripes for (bucket, key) mutations.
constexpr size_t kStripeCount = 64;
// Bloom filter bits per key.
constexpr double kBloomBitsPerKey = 10;
// Random upload ids: 128 bits as 32 hex digits.
constexpr int kUploadIdWords = 2;

// RocksDB integer properties reported by Stats().
constexpr std::array<const char*, 8> kRocksProperties = {
    "rocksdb.estimate-num-keys",
    "rocksdb.total-sst-files-size",
    "rocksdb.live-sst-files-size",
    "rocksdb.cur-size-all-mem-tables",
    "rocksdb.estimate-live-data-size",
    "rocksdb.block-cache-usage",
    "rocksdb.estimate-pending-compaction-bytes",
    "rocksdb.num-running-compactions",
};

Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::OK();
  std::string msg(context);
  msg += ": ";
  msg += s.ToString();
  if (s.IsNotFound()) return Status::NotFound(msg);
  if (s.IsCorruption()) return Status::Corruption(msg);
  if (s.IsNoSpace()) return Status::NoSpace(msg);
  if (s.IsIOError()) return Status::IOError(msg);
  if (s.IsBusy() || s.IsTryAgain()) return Status::Busy(msg);
  if (s.IsTimedOut()) return Status::Timeout(msg);
  if (s.IsNotSupported()) return Status::NotSupported(msg);
  if (s.IsInvalidArgument()) return Status::InvalidArgument(msg);
  return Status::Internal(msg);
}

// Runs f, turning any exception into Internal: none may leave the meta module.
template <typename F>
auto Guard(std::string_view op, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status::Internal(std::string(op) + ": exception: " + e.what());
  } catch (...) {
    return Status::Internal(std::string(op) + ": unknown exception");
  }
}

// Adds int64 deltas (format::EncodeCounter) to a counter.
class CounterAddOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger* /*logger*/) const override {
    uint64_t sum = 0;
    if (existing != nullptr) {
      const auto base = format::DecodeCounter(existing->ToStringView());
      if (!base) return false;
      sum = static_cast<uint64_t>(*base);
    }
    const auto delta = format::DecodeCounter(value.ToStringView());
    if (!delta) return false;
    sum += static_cast<uint64_t>(*delta);  // wraps like two's complement, never UB
    *new_value = format::EncodeCounter(static_cast<int64_t>(sum));
    return true;
  }
  const char* Name() const override { return "cairn.meta.CounterAdd"; }
};

std::string_view StripQuotes(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') return etag.substr(1, etag.size() - 2);
  return etag;
}

Status ValidateBucketName(std::string_view bucket) {
  if (bucket.empty() || bucket.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("bucket name is empty or contains NUL");
  }
  return Status::OK();
}

Status ValidateObjectName(std::string_view bucket, std::string_view key) {
  CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket));
  if (key.empty()) return Status::InvalidArgument("object key is empty");
  return Status::OK();
}

Status ValidateUploadId(std::string_view upload_id) {
  if (upload_id.empty() || upload_id.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("upload id is empty or contains NUL");
  }
  return Status::OK();
}

Status CheckPrecondition(const WritePrecondition& pre, const std::optional<ObjectRecord>& current) {
  if (pre.must_not_exist && current.has_value()) return Status::PreconditionFailed("If-None-Match: object exists");
  if (pre.if_match_etag.has_value()) {
    if (!current.has_value()) return Status::NotFound("If-Match: no such object");
    const std::string_view want = StripQuotes(*pre.if_match_etag);
    if (want != "*" && want != current->etag) return Status::PreconditionFailed("If-Match: etag differs");
  }
  return Status::OK();
}

// Counter changes that go into the same WriteBatch as the records they count.
struct CounterDeltas {
  int64_t buckets = 0;
  int64_t objects = 0;
  int64_t object_bytes = 0;
  int64_t uploads = 0;
  int64_t parts = 0;

  Status AddTo(rocksdb::WriteBatch* batch) const {
    const std::array<std::pair<std::string_view, int64_t>, 5> rows = {
        {{kBuckets, buckets}, {kObjects, objects}, {kObjectBytes, object_bytes}, {kUploads, uploads}, {kParts, parts}}};
    for (const auto& [name, delta] : rows) {
      if (delta == 0) continue;
      CAIRN_RETURN_IF_ERROR(
          FromRocks(batch->Merge(format::CounterKey(name), format::EncodeCounter(delta)), "batch merge"));
    }
    return Status::OK();
  }
};

int64_t SizeDelta(uint64_t now, uint64_t before) { return static_cast<int64_t>(now - before); }

class RocksDbMetaStoreImpl final : public MetaStore {
 public:
  RocksDbMetaStoreImpl(std::unique_ptr<rocksdb::DB> db, const RocksDbMetaStore::Options& options)
      : db_(std::move(db)), options_(options), rng_(std::random_device{}()) {}

  ~RocksDbMetaStoreImpl() override {
    if (db_) (void)db_->Close();
  }

  // ---- Buckets ----------------------------------------------------------------------------

  Status CreateBucket(const BucketInfo& bucket) override {
    return Guard("CreateBucket", [&]() -> Status {
      CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket.name));
      std::unique_lock lock(bucket_mu_);
      const std::string key = format::BucketKey(bucket.name);
      std::string value;
      bool found = false;
      CAIRN_RETURN_IF_ERROR(Get(rocksdb::ReadOptions(), key, &value, &found));
      if (found) return Status::AlreadyExists("bucket " + bucket.name);
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Put(key, format::EncodeBucket(key, bucket)), "batch put"));
      CAIRN_RETURN_IF_ERROR(CounterDeltas{.buckets = 1}.AddTo(&batch));
      CAIRN_RETURN_IF_ERROR(Write(&batch));
      CacheBucket(bucket);
      return Status::OK();
    });
  }

  Status DeleteBucket(std::string_view bucket, const BucketInfo* expected) override {
    return Guard("DeleteBucket", [&]() -> Status {
      CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket));
      std::unique_lock lock(bucket_mu_);
      CAIRN_ASSIGN_OR_RETURN(BucketInfo current, CachedBucket(bucket));
      if (expected != nullptr && !SameBucket(current, *expected)) {
        return Status::PreconditionFailed("the bucket was deleted and created again");
      }
      for (const std::string& prefix : {format::ObjectKeyPrefix(bucket), format::UploadKeyPrefix(bucket)}) {
        bool any = false;
        CAIRN_RETURN_IF_ERROR(AnyKeyWithPrefix(prefix, &any));
        if (any) return Status::BucketNotEmpty("bucket " + std::string(bucket));
      }
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Delete(format::BucketKey(bucket)), "batch delete"));
      CAIRN_RETURN_IF_ERROR(CounterDeltas{.buckets = -1}.AddTo(&batch));
      CAIRN_RETURN_IF_ERROR(Write(&batch));
      std::unique_lock cache_lock(bucket_cache_mu_);
      bucket_cache_.erase(std::string(bucket));
      return Status::OK();
    });
  }

  // Served from the bucket cache: every request of the S3 server reads its bucket (owner, ACL,
  // policy, CORS), and this store is the only writer of its database.
  Result<BucketInfo> GetBucket(std::string_view bucket) override {
    return Guard("GetBucket", [&]() -> Result<BucketInfo> {
      CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket));
      return CachedBucket(bucket);
    });
  }

  // Fills the bucket cache at open (called once, before any other method).
  Status LoadBuckets() {
    return Scan(rocksdb::ReadOptions(), std::string(format::kBucketPrefix),
                [&](std::string_view key, std::string_view value) -> Status {
                  BucketInfo info;
                  const Status decoded = format::DecodeBucket(key, value, &info);
                  if (decoded.ok()) {
                    CacheBucket(info);
                  } else {
                    // A damaged bucket record is reported by every GetBucket of it, as a read of
                    // the database would; the store still opens for the other buckets.
                    std::unique_lock cache_lock(bucket_cache_mu_);
                    bucket_cache_.insert_or_assign(std::string(key.substr(format::kBucketPrefix.size())),
                                                   Result<BucketInfo>(decoded));
                  }
                  return Status::OK();
                });
  }

  // From the bucket cache too, which holds every bucket in name order.
  Result<std::vector<BucketInfo>> ListBuckets() override {
    return Guard("ListBuckets", [&]() -> Result<std::vector<BucketInfo>> {
      std::vector<BucketInfo> out;
      std::shared_lock cache_lock(bucket_cache_mu_);
      out.reserve(bucket_cache_.size());
      for (const auto& [name, info] : bucket_cache_) {
        if (!info.ok()) return info.status();
        out.push_back(*info);
      }
      return out;
    });
  }

  Status UpdateBucket(std::string_view bucket, const std::function<Status(BucketInfo*)>& mutate) override {
    return Guard("UpdateBucket", [&]() -> Status {
      CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket));
      std::unique_lock lock(bucket_mu_);
      const std::string key = format::BucketKey(bucket);
      std::string value;
      bool found = false;
      CAIRN_RETURN_IF_ERROR(Get(rocksdb::ReadOptions(), key, &value, &found));
      if (!found) return Status::NoSuchBucket(std::string(bucket));
      BucketInfo info;
      CAIRN_RETURN_IF_ERROR(format::DecodeBucket(key, value, &info));
      BucketInfo updated = info;
      CAIRN_RETURN_IF_ERROR(mutate(&updated));
      if (updated.name != info.name || updated.owner != info.owner || updated.created_ms != info.created_ms) {
        return Status::InvalidArgument("UpdateBucket may not change the name, owner or creation time");
      }
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Put(key, format::EncodeBucket(key, updated)), "batch put"));
      CAIRN_RETURN_IF_ERROR(Write(&batch));
      CacheBucket(updated);
      return Status::OK();
    });
  }

  // ---- Objects ----------------------------------------------------------------------------

  Status SetObjectAcl(std::string_view bucket, std::string_view key, const Acl& acl,
                      const ObjectRecord* expected) override {
    return Guard("SetObjectAcl", [&]() -> Status {
      CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(bucket, key));
      const rocksdb::ReadOptions ro;
      const std::string db_key = format::ObjectKey(bucket, key);
      std::optional<ObjectRecord> current;
      CAIRN_RETURN_IF_ERROR(ReadObject(ro, db_key, &current));
      if (!current) {
        CAIRN_RETURN_IF_ERROR(CheckBucket(ro, bucket));
        return Status::NotFound("object " + std::string(key));
      }
      if (expected != nullptr &&
          (expected->etag != current->etag || expected->last_modified_ms != current->last_modified_ms)) {
        return Status::PreconditionFailed("the object changed");
      }
      const std::string owner = current->acl.owner.empty() ? acl.owner : current->acl.owner;
      current->acl = acl;
      current->acl.owner = owner;
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Put(db_key, format::EncodeObject(db_key, *current)), "batch put"));
      return Write(&batch);
    });
  }

  Status PutObject(const ObjectRecord& record, const WritePrecondition& precondition,
                   std::optional<ObjectRecord>* replaced) override {
    return Guard("PutObject", [&]() -> Status {
      CAIRN_RETURN_IF_ERROR(ValidateObjectName(record.bucket, record.key));
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(record.bucket, record.key));
      const rocksdb::ReadOptions ro;
      CAIRN_RETURN_IF_ERROR(CheckBucket(ro, record.bucket));
      const std::string key = format::ObjectKey(record.bucket, record.key);
      std::optional<ObjectRecord> current;
      CAIRN_RETURN_IF_ERROR(ReadObject(ro, key, &current));
      CAIRN_RETURN_IF_ERROR(CheckPrecondition(precondition, current));
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Put(key, format::EncodeObject(key, record)), "batch put"));
      CounterDeltas deltas;
      deltas.objects = current ? 0 : 1;
      deltas.object_bytes = SizeDelta(record.size, current ? current->size : 0);
      CAIRN_RETURN_IF_ERROR(deltas.AddTo(&batch));
      CAIRN_RETURN_IF_ERROR(Write(&batch));
      if (replaced != nullptr) *replaced = std::move(current);
      return Status::OK();
    });
  }

  Result<ObjectRecord> GetObject(std::string_view bucket, std::string_view key) override {
    return Guard("GetObject", [&]() -> Result<ObjectRecord> {
      CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
      SnapshotRead snap(db_.get());
      rocksdb::ReadOptions& ro = snap.options;
      std::optional<ObjectRecord> current;
      CAIRN_RETURN_IF_ERROR(ReadObject(ro, format::ObjectKey(bucket, key), &current));
      if (!current) {
        CAIRN_RETURN_IF_ERROR(CheckBucket(ro, bucket));
        return Status::NotFound("object " + std::string(key));
      }
      return std::move(*current);
    });
  }

  Result<ObjectRecord> DeleteObject(std::string_view bucket, std::string_view key) override {
    return Guard("DeleteObject", [&]() -> Result<ObjectRecord> {
      CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(bucket, key));
      const rocksdb::ReadOptions ro;
      const std::string db_key = format::ObjectKey(bucket, key);
      std::optional<ObjectRecord> current;
      CAIRN_RETURN_IF_ERROR(ReadObject(ro, db_key, &current));
      if (!current) {
        CAIRN_RETURN_IF_ERROR(CheckBucket(ro, bucket));
        return Status::NotFound("object " + std::string(key));
      }
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Delete(db_key), "batch delete"));
      const CounterDeltas deltas{.objects = -1, .object_bytes = SizeDelta(0, current->size)};
      CAIRN_RETURN_IF_ERROR(deltas.AddTo(&batch));
      CAIRN_RETURN_IF_ERROR(Write(&batch));
      return std::move(*current);
    });
  }

  Result<ListObjectsResult> ListObjects(std::string_view bucket, const ListObjectsOptions& options) override {
    return Guard("ListObjects", [&]() -> Result<ListObjectsResult> {
      CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket));
      SnapshotRead snap(db_.get());
      rocksdb::ReadOptions& ro = snap.options;
      CAIRN_RETURN_IF_ERROR(CheckBucket(ro, bucket));
      return ListObjectsAt(ro, bucket, options);
    });
  }

  // ---- Multipart uploads ------------------------------------------------------------------

  Result<std::string> CreateUpload(const MultipartUpload& upload) override {
    return Guard("CreateUpload", [&]() -> Result<std::string> {
      CAIRN_RETURN_IF_ERROR(ValidateObjectName(upload.bucket, upload.key));
      std::string upload_id = upload.upload_id.empty() ? NewUploadId() : upload.upload_id;
      CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(upload.bucket, upload.key));
      const rocksdb::ReadOptions ro;
      CAIRN_RETURN_IF_ERROR(CheckBucket(ro, upload.bucket));
      const std::string key = format::UploadKey(upload.bucket, upload.key, upload_id);
      std::string value;
      bool found = false;
      CAIRN_RETURN_IF_ERROR(Get(ro, key, &value, &found));
      if (found) return Status::AlreadyExists("upload " + upload_id);
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Put(key, format::EncodeUpload(key, upload)), "batch put"));
      CAIRN_RETURN_IF_ERROR(CounterDeltas{.uploads = 1}.AddTo(&batch));
      CAIRN_RETURN_IF_ERROR(Write(&batch));
      return upload_id;
    });
  }

  Status PutPart(std::string_view bucket, std::string_view key, std::string_view upload_id, const PartRecord& part,
                 std::optional<PartRecord>* replaced) override {
    return Guard("PutPart", [&]() -> Status {
      CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
      CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
      if (part.part_number == 0) return Status::InvalidArgument("part number 0");
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(bucket, key));
      const rocksdb::ReadOptions ro;
      MultipartUpload upload;
      CAIRN_RETURN_IF_ERROR(ReadUpload(ro, bucket, key, upload_id, &upload));
      const std::string part_key = format::PartKey(upload_id, part.part_number);
      std::string value;
      bool found = false;
      CAIRN_RETURN_IF_ERROR(Get(ro, part_key, &value, &found));
      std::optional<PartRecord> current;
      if (found) {
        current.emplace();
        CAIRN_RETURN_IF_ERROR(format::DecodePart(part_key, value, &*current));
      }
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Put(part_key, format::EncodePart(part_key, part)), "batch put"));
      CAIRN_RETURN_IF_ERROR(CounterDeltas{.parts = current ? 0 : 1}.AddTo(&batch));
      CAIRN_RETURN_IF_ERROR(Write(&batch));
      if (replaced != nullptr) *replaced = std::move(current);
      return Status::OK();
    });
  }

  Result<MultipartUpload> GetUpload(std::string_view bucket, std::string_view key,
                                    std::string_view upload_id) override {
    return Guard("GetUpload", [&]() -> Result<MultipartUpload> {
      CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
      CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
      SnapshotRead snap(db_.get());
      rocksdb::ReadOptions& ro = snap.options;
      MultipartUpload upload;
      CAIRN_RETURN_IF_ERROR(ReadUpload(ro, bucket, key, upload_id, &upload));
      CAIRN_RETURN_IF_ERROR(ReadParts(ro, upload_id, &upload.parts));
      return upload;
    });
  }

  Result<MultipartUpload> GetUploadInfo(std::string_view bucket, std::string_view key,
                                        std::string_view upload_id) override {
    return Guard("GetUploadInfo", [&]() -> Result<MultipartUpload> {
      CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
      CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
      MultipartUpload upload;
      CAIRN_RETURN_IF_ERROR(ReadUpload(rocksdb::ReadOptions(), bucket, key, upload_id, &upload));
      return upload;
    });
  }

  Result<ListPartsResult> ListParts(std::string_view bucket, std::string_view key, std::string_view upload_id,
                                    uint32_t part_number_marker, uint32_t max_parts) override {
    return Guard("ListParts", [&]() -> Result<ListPartsResult> {
      CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
      CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
      SnapshotRead snap(db_.get());
      rocksdb::ReadOptions& ro = snap.options;
      MultipartUpload upload;
      CAIRN_RETURN_IF_ERROR(ReadUpload(ro, bucket, key, upload_id, &upload));
      ListPartsResult result;
      if (part_number_marker == UINT32_MAX) return result;
      const std::string prefix = format::PartKeyPrefix(upload_id);
      const std::string upper = *format::PrefixSuccessor(prefix);
      const rocksdb::Slice upper_slice(upper);
      ro.iterate_upper_bound = &upper_slice;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
      for (it->Seek(format::PartKey(upload_id, part_number_marker + 1)); it->Valid(); it->Next()) {
        if (result.parts.size() == max_parts) {
          result.is_truncated = true;
          break;
        }
        PartRecord part;
        CAIRN_RETURN_IF_ERROR(format::DecodePart(it->key().ToStringView(), it->value().ToStringView(), &part));
        result.next_part_number_marker = part.part_number;
        result.parts.push_back(std::move(part));
      }
      CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "ListParts iterator"));
      return result;
    });
  }

  Result<ListUploadsResult> ListUploads(std::string_view bucket, const ListUploadsOptions& options) override {
    return Guard("ListUploads", [&]() -> Result<ListUploadsResult> {
      CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket));
      SnapshotRead snap(db_.get());
      rocksdb::ReadOptions& ro = snap.options;
      CAIRN_RETURN_IF_ERROR(CheckBucket(ro, bucket));
      const std::string lower = format::UploadKeyPrefixForKeys(bucket, options.prefix);
      // `lower` always starts with "U/", so it has a successor.
      const std::string upper = *format::PrefixSuccessor(lower);
      std::string start = lower;
      if (!options.key_marker.empty()) {
        // The smallest key after the marker: past every upload of key_marker, or just past
        // (key_marker, upload_id_marker) (appending a NUL gives the next string).
        std::string after = options.upload_id_marker.empty()
                                ? *format::PrefixSuccessor(format::UploadKeyPrefixForKey(bucket, options.key_marker))
                                : format::UploadKey(bucket, options.key_marker, options.upload_id_marker) + '\0';
        start = std::max(start, after);
      }
      const rocksdb::Slice upper_slice(upper);
      ro.iterate_upper_bound = &upper_slice;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
      ListUploadsResult result;
      for (it->Seek(start); it->Valid(); it->Next()) {
        if (result.uploads.size() == options.max_uploads) {
          result.is_truncated = true;
          break;
        }
        MultipartUpload upload;
        CAIRN_RETURN_IF_ERROR(format::DecodeUpload(it->key().ToStringView(), it->value().ToStringView(), &upload));
        result.next_key_marker = upload.key;
        result.next_upload_id_marker = upload.upload_id;
        result.uploads.push_back(std::move(upload));
      }
      CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "ListUploads iterator"));
      return result;
    });
  }

  Result<CompleteUploadResult> CompleteUpload(std::string_view bucket, std::string_view key, std::string_view upload_id,
                                              const std::vector<CompletedPart>& parts, std::string_view etag,
                                              int64_t last_modified_ms,
                                              const WritePrecondition& precondition) override {
    return Guard("CompleteUpload", [&]() -> Result<CompleteUploadResult> {
      CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
      CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
      if (parts.empty()) return Status::InvalidPartOrder("no parts listed");
      for (size_t i = 1; i < parts.size(); ++i) {
        if (parts[i].part_number <= parts[i - 1].part_number) {
          return Status::InvalidPartOrder("part " + std::to_string(parts[i].part_number) + " after " +
                                          std::to_string(parts[i - 1].part_number));
        }
      }
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(bucket, key));
      const rocksdb::ReadOptions ro;
      MultipartUpload upload;
      CAIRN_RETURN_IF_ERROR(ReadUpload(ro, bucket, key, upload_id, &upload));
      CAIRN_RETURN_IF_ERROR(ReadParts(ro, upload_id, &upload.parts));

      CompleteUploadResult result;
      ObjectRecord& object = result.object;
      object.bucket = std::string(bucket);
      object.key = std::string(key);
      object.etag = std::string(StripQuotes(etag));
      object.last_modified_ms = last_modified_ms;
      object.SetHeaders(upload.headers);
      object.acl = upload.acl;
      object.part_count = static_cast<uint32_t>(parts.size());
      for (const CompletedPart& wanted : parts) {
        auto found = upload.parts.find(wanted.part_number);
        if (found == upload.parts.end()) {
          return Status::InvalidPart("part " + std::to_string(wanted.part_number) + " was not uploaded");
        }
        PartRecord& part = found->second;
        if (StripQuotes(wanted.etag) != part.etag) {
          return Status::InvalidPart("part " + std::to_string(wanted.part_number) + " has another etag");
        }
        for (ChunkRef chunk : part.chunks) {
          chunk.offset += object.size;
          object.chunks.push_back(chunk);
        }
        object.size += part.size;
        object.part_sizes.push_back(part.size);
        upload.parts.erase(found);
      }
      for (const auto& [number, unused] : upload.parts) {
        result.unused_chunks.insert(result.unused_chunks.end(), unused.chunks.begin(), unused.chunks.end());
      }

      const std::string object_key = format::ObjectKey(bucket, key);
      CAIRN_RETURN_IF_ERROR(ReadObject(ro, object_key, &result.replaced));
      CAIRN_RETURN_IF_ERROR(CheckPrecondition(precondition, result.replaced));

      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Put(object_key, format::EncodeObject(object_key, object)), "batch put"));
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Delete(format::UploadKey(bucket, key, upload_id)), "batch delete"));
      CAIRN_RETURN_IF_ERROR(DeleteParts(ro, upload_id, &batch, /*chunks=*/nullptr, /*count=*/nullptr));
      CounterDeltas deltas;
      deltas.objects = result.replaced ? 0 : 1;
      deltas.object_bytes = SizeDelta(object.size, result.replaced ? result.replaced->size : 0);
      deltas.uploads = -1;
      deltas.parts = -static_cast<int64_t>(parts.size() + upload.parts.size());
      CAIRN_RETURN_IF_ERROR(deltas.AddTo(&batch));
      CAIRN_RETURN_IF_ERROR(Write(&batch));
      return result;
    });
  }

  Result<std::vector<ChunkRef>> AbortUpload(std::string_view bucket, std::string_view key,
                                            std::string_view upload_id) override {
    return Guard("AbortUpload", [&]() -> Result<std::vector<ChunkRef>> {
      CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
      CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(bucket, key));
      const rocksdb::ReadOptions ro;
      MultipartUpload upload;
      CAIRN_RETURN_IF_ERROR(ReadUpload(ro, bucket, key, upload_id, &upload));
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Delete(format::UploadKey(bucket, key, upload_id)), "batch delete"));
      std::vector<ChunkRef> chunks;
      int64_t part_count = 0;
      CAIRN_RETURN_IF_ERROR(DeleteParts(ro, upload_id, &batch, &chunks, &part_count));
      const CounterDeltas deltas{.uploads = -1, .parts = -part_count};
      CAIRN_RETURN_IF_ERROR(deltas.AddTo(&batch));
      CAIRN_RETURN_IF_ERROR(Write(&batch));
      return chunks;
    });
  }

  // ---- Users and access keys ---------------------------------------------------------------
  // All identity mutations take identity_mu_, so a key cannot be created for a user being
  // deleted.

  Status CreateUser(const UserRecord& user) override {
    return Guard("CreateUser", [&]() -> Status {
      if (user.name.empty()) return Status::InvalidArgument("user name is empty");
      std::lock_guard lock(identity_mu_);
      const std::string key = format::UserKey(user.name);
      std::string value;
      bool found = false;
      CAIRN_RETURN_IF_ERROR(Get(rocksdb::ReadOptions(), key, &value, &found));
      if (found) return Status::AlreadyExists("user " + user.name);
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Put(key, format::EncodeUser(key, user)), "batch put"));
      return Write(&batch);
    });
  }

  Result<std::vector<AccessKeyRecord>> DeleteUser(std::string_view name) override {
    return Guard("DeleteUser", [&]() -> Result<std::vector<AccessKeyRecord>> {
      std::lock_guard lock(identity_mu_);
      const std::string key = format::UserKey(name);
      std::string value;
      bool found = false;
      CAIRN_RETURN_IF_ERROR(Get(rocksdb::ReadOptions(), key, &value, &found));
      if (!found) return Status::NotFound("user " + std::string(name));
      CAIRN_ASSIGN_OR_RETURN(std::vector<AccessKeyRecord> all, ReadAccessKeys());
      std::vector<AccessKeyRecord> removed;
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Delete(key), "batch delete"));
      for (AccessKeyRecord& k : all) {
        if (k.user != name) continue;
        CAIRN_RETURN_IF_ERROR(FromRocks(batch.Delete(format::AccessKeyKey(k.access_key)), "batch delete"));
        removed.push_back(std::move(k));
      }
      CAIRN_RETURN_IF_ERROR(Write(&batch));
      return removed;
    });
  }

  Result<std::vector<UserRecord>> ListUsers() override {
    return Guard("ListUsers", [&]() { return ReadAll<UserRecord>(format::kUserPrefix, format::DecodeUser); });
  }

  Status CreateAccessKey(const AccessKeyRecord& record) override {
    return Guard("CreateAccessKey", [&]() -> Status {
      if (record.access_key.empty()) return Status::InvalidArgument("access key is empty");
      std::lock_guard lock(identity_mu_);
      std::string value;
      bool found = false;
      CAIRN_RETURN_IF_ERROR(Get(rocksdb::ReadOptions(), format::UserKey(record.user), &value, &found));
      if (!found) return Status::NotFound("user " + record.user);
      const std::string key = format::AccessKeyKey(record.access_key);
      CAIRN_RETURN_IF_ERROR(Get(rocksdb::ReadOptions(), key, &value, &found));
      if (found) return Status::AlreadyExists("access key " + record.access_key);
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Put(key, format::EncodeAccessKey(key, record)), "batch put"));
      return Write(&batch);
    });
  }

  Status SetAccessKeyEnabled(std::string_view access_key, bool enabled) override {
    return Guard("SetAccessKeyEnabled", [&]() -> Status {
      std::lock_guard lock(identity_mu_);
      const std::string key = format::AccessKeyKey(access_key);
      std::string value;
      bool found = false;
      CAIRN_RETURN_IF_ERROR(Get(rocksdb::ReadOptions(), key, &value, &found));
      if (!found) return Status::NotFound("access key " + std::string(access_key));
      AccessKeyRecord record;
      CAIRN_RETURN_IF_ERROR(format::DecodeAccessKey(key, value, &record));
      record.enabled = enabled;
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Put(key, format::EncodeAccessKey(key, record)), "batch put"));
      return Write(&batch);
    });
  }

  Status DeleteAccessKey(std::string_view access_key) override {
    return Guard("DeleteAccessKey", [&]() -> Status {
      std::lock_guard lock(identity_mu_);
      const std::string key = format::AccessKeyKey(access_key);
      std::string value;
      bool found = false;
      CAIRN_RETURN_IF_ERROR(Get(rocksdb::ReadOptions(), key, &value, &found));
      if (!found) return Status::NotFound("access key " + std::string(access_key));
      rocksdb::WriteBatch batch;
      CAIRN_RETURN_IF_ERROR(FromRocks(batch.Delete(key), "batch delete"));
      return Write(&batch);
    });
  }

  Result<std::vector<AccessKeyRecord>> ListAccessKeys() override {
    return Guard("ListAccessKeys", [&]() -> Result<std::vector<AccessKeyRecord>> { return ReadAccessKeys(); });
  }

  // ---- Maintenance ------------------------------------------------------------------------

  Status ForEachChunkRef(const std::function<Status(const ChunkRef&)>& fn) override {
    return Guard("ForEachChunkRef", [&]() -> Status {
      SnapshotRead snap(db_.get());
      rocksdb::ReadOptions& ro = snap.options;
      ro.fill_cache = false;
      const Status s = Scan(ro, std::string(format::kObjectPrefix), [&](std::string_view k, std::string_view v) {
        ObjectRecord object;
        CAIRN_RETURN_IF_ERROR(format::DecodeObject(k, v, &object));
        for (const ChunkRef& c : object.chunks) CAIRN_RETURN_IF_ERROR(fn(c));
        return Status::OK();
      });
      if (!s.ok()) return s;
      return Scan(ro, std::string(format::kPartPrefix), [&](std::string_view k, std::string_view v) {
        PartRecord part;
        CAIRN_RETURN_IF_ERROR(format::DecodePart(k, v, &part));
        for (const ChunkRef& c : part.chunks) CAIRN_RETURN_IF_ERROR(fn(c));
        return Status::OK();
      });
    });
  }

  Result<std::map<std::string, uint64_t>> Stats() override {
    return Guard("Stats", [&]() -> Result<std::map<std::string, uint64_t>> {
      std::map<std::string, uint64_t> out;
      const rocksdb::ReadOptions ro;
      for (std::string_view name : kCounterNames) {
        std::string value;
        bool found = false;
        CAIRN_RETURN_IF_ERROR(Get(ro, format::CounterKey(name), &value, &found));
        int64_t n = 0;
        if (found) {
          const auto decoded = format::DecodeCounter(value);
          if (!decoded) return Status::Corruption("counter " + std::string(name));
          n = *decoded;
        }
        out[std::string(name)] = n < 0 ? 0 : static_cast<uint64_t>(n);
      }
      out[RocksDbMetaStore::kListIteratorSteps] = list_steps_.load(std::memory_order_relaxed);
      for (const char* property : kRocksProperties) {
        uint64_t v = 0;
        if (!db_->GetIntProperty(property, &v)) continue;
        std::string name(property);
        std::replace(name.begin(), name.end(), '.', '_');
        std::replace(name.begin(), name.end(), '-', '_');
        out[name] = v;
      }
      return out;
    });
  }

 private:
  std::mutex& Stripe(std::string_view bucket, std::string_view key) {
    const size_t h = std::hash<std::string_view>{}(bucket)*31 + std::hash<std::string_view>{}(key);
    return stripes_[h % kStripeCount];
  }

  Status Write(rocksdb::WriteBatch* batch) {
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync_writes;
    return FromRocks(db_->Write(wo, batch), "meta write");
  }

  Status Get(const rocksdb::ReadOptions& ro, const std::string& key, std::string* value, bool* found) {
    const rocksdb::Status s = db_->Get(ro, key, value);
    *found = s.ok();
    if (s.IsNotFound()) return Status::OK();
    return FromRocks(s, "meta get");
  }

  // From the bucket cache (which every bucket mutation updates under an exclusive bucket_mu_).
  Status CheckBucket(const rocksdb::ReadOptions& /*ro*/, std::string_view bucket) {
    return CachedBucket(bucket).status();
  }

  Result<BucketInfo> CachedBucket(std::string_view bucket) {
    std::shared_lock cache_lock(bucket_cache_mu_);
    auto it = bucket_cache_.find(bucket);
    if (it == bucket_cache_.end()) return Status::NoSuchBucket(std::string(bucket));
    return it->second;
  }

  // The same bucket, not one deleted and created again under its name.
  static bool SameBucket(const BucketInfo& a, const BucketInfo& b) {
    return a.owner == b.owner && a.created_ms == b.created_ms;
  }

  void CacheBucket(const BucketInfo& info) {
    std::unique_lock cache_lock(bucket_cache_mu_);
    bucket_cache_.insert_or_assign(info.name, Result<BucketInfo>(info));
  }

  Result<std::vector<AccessKeyRecord>> ReadAccessKeys() {
    return ReadAll<AccessKeyRecord>(format::kAccessKeyPrefix, format::DecodeAccessKey);
  }

  // Every record under `prefix`, decoded, in key order; the first value that fails to decode
  // fails the whole read.
  template <typename T>
  Result<std::vector<T>> ReadAll(std::string_view prefix,
                                 Status (*decode)(std::string_view, std::string_view, T*)) {
    std::vector<T> out;
    const Status s = Scan(rocksdb::ReadOptions(), std::string(prefix),
                          [&](std::string_view key, std::string_view value) -> Status {
                            T record;
                            CAIRN_RETURN_IF_ERROR(decode(key, value, &record));
                            out.push_back(std::move(record));
                            return Status::OK();
                          });
    if (!s.ok()) return s;
    return out;
  }

  Status ReadObject(const rocksdb::ReadOptions& ro, const std::string& db_key, std::optional<ObjectRecord>* out) {
    std::string value;
    bool found = false;
    CAIRN_RETURN_IF_ERROR(Get(ro, db_key, &value, &found));
    out->reset();
    if (!found) return Status::OK();
    ObjectRecord record;
    CAIRN_RETURN_IF_ERROR(format::DecodeObject(db_key, value, &record));
    *out = std::move(record);
    return Status::OK();
  }

  // NoSuchUpload when the upload is absent (NoSuchBucket when its bucket is).
  Status ReadUpload(const rocksdb::ReadOptions& ro, std::string_view bucket, std::string_view key,
                    std::string_view upload_id, MultipartUpload* out) {
    const std::string db_key = format::UploadKey(bucket, key, upload_id);
    std::string value;
    bool found = false;
    CAIRN_RETURN_IF_ERROR(Get(ro, db_key, &value, &found));
    if (!found) {
      CAIRN_RETURN_IF_ERROR(CheckBucket(ro, bucket));
      return Status::NoSuchUpload(std::string(upload_id));
    }
    return format::DecodeUpload(db_key, value, out);
  }

  Status ReadParts(const rocksdb::ReadOptions& ro, std::string_view upload_id, std::map<uint32_t, PartRecord>* out) {
    return Scan(ro, format::PartKeyPrefix(upload_id), [&](std::string_view k, std::string_view v) {
      PartRecord part;
      CAIRN_RETURN_IF_ERROR(format::DecodePart(k, v, &part));
      const uint32_t number = part.part_number;
      (*out)[number] = std::move(part);
      return Status::OK();
    });
  }

  // Adds a Delete of every part of the upload to the batch; collects their chunks and count
  // when asked to.
  Status DeleteParts(const rocksdb::ReadOptions& ro, std::string_view upload_id, rocksdb::WriteBatch* batch,
                     std::vector<ChunkRef>* chunks, int64_t* count) {
    return Scan(ro, format::PartKeyPrefix(upload_id), [&](std::string_view k, std::string_view v) {
      if (chunks != nullptr) {
        PartRecord part;
        CAIRN_RETURN_IF_ERROR(format::DecodePart(k, v, &part));
        chunks->insert(chunks->end(), part.chunks.begin(), part.chunks.end());
      }
      if (count != nullptr) ++*count;
      return FromRocks(batch->Delete(rocksdb::Slice(k.data(), k.size())), "batch delete");
    });
  }

  // Calls fn(key, value) for every key that starts with `prefix`, in order.
  template <typename Fn>
  Status Scan(rocksdb::ReadOptions ro, const std::string& prefix, Fn&& fn) {
    const std::optional<std::string> upper = format::PrefixSuccessor(prefix);
    rocksdb::Slice upper_slice;
    if (upper) {
      upper_slice = rocksdb::Slice(*upper);
      ro.iterate_upper_bound = &upper_slice;
    }
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      CAIRN_RETURN_IF_ERROR(fn(it->key().ToStringView(), it->value().ToStringView()));
    }
    return FromRocks(it->status(), "meta scan");
  }

  Status AnyKeyWithPrefix(const std::string& prefix, bool* any) {
    rocksdb::ReadOptions ro;
    const std::string upper = *format::PrefixSuccessor(prefix);
    const rocksdb::Slice upper_slice(upper);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    it->Seek(prefix);
    *any = it->Valid();
    return FromRocks(it->status(), "meta scan");
  }

  // One ordered scan of the bucket's objects from max(prefix, start_after). A common-prefix
  // group is never stepped through: the scan seeks to the group's successor (the common prefix
  // with its last byte incremented), so a page costs O(max_keys) seeks and nexts however many
  // keys the groups hold.
  Result<ListObjectsResult> ListObjectsAt(rocksdb::ReadOptions ro, std::string_view bucket,
                                          const ListObjectsOptions& options) {
    const std::string& prefix = options.prefix;
    const std::string& delimiter = options.delimiter;
    const std::string& start_after = options.start_after;
    const std::string base = format::ObjectKeyPrefix(bucket);
    // base ends in NUL, so base + prefix always has a successor.
    const std::string upper = *format::PrefixSuccessor(base + prefix);
    const rocksdb::Slice upper_slice(upper);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
    uint64_t steps = 0;

    // A key equal to start_after is skipped below, and so is a group whose common prefix equals
    // start_after (after one seek), so the scan can start at max(prefix, start_after).
    it->Seek(base + std::max(prefix, start_after));
    ++steps;

    ListObjectsResult result;
    uint32_t count = 0;
    Status status;
    while (it->Valid()) {
      const std::string_view db_key = it->key().ToStringView();
      const std::string_view key = db_key.substr(base.size());
      if (key == start_after) {
        it->Next();
        ++steps;
        continue;
      }
      const size_t pos = delimiter.empty() ? std::string_view::npos : key.find(delimiter, prefix.size());
      if (pos != std::string_view::npos) {
        const std::string_view common = key.substr(0, pos + delimiter.size());
        if (common != start_after) {
          if (count == options.max_keys) {
            result.is_truncated = true;
            break;
          }
          result.common_prefixes.emplace_back(common);
          result.next_start_after = std::string(common);
          ++count;
        }
        // Every key of the group starts with base + common; seek past all of them.
        it->Seek(*format::PrefixSuccessor(base + std::string(common)));
        ++steps;
        continue;
      }
      if (count == options.max_keys) {
        result.is_truncated = true;
        break;
      }
      ObjectRecord record;
      status = format::DecodeObject(db_key, it->value().ToStringView(), &record);
      if (!status.ok()) break;
      result.next_start_after = record.key;
      result.objects.push_back(std::move(record));
      ++count;
      it->Next();
      ++steps;
    }
    list_steps_.fetch_add(steps, std::memory_order_relaxed);
    CAIRN_RETURN_IF_ERROR(status);
    CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "ListObjects iterator"));
    return result;
  }

  std::string NewUploadId() {
    static constexpr char kHex[] = "0123456789abcdef";
    std::lock_guard lock(rng_mu_);
    std::string id;
    for (int w = 0; w < kUploadIdWords; ++w) {
      uint64_t v = rng_();
      for (int i = 0; i < 16; ++i, v >>= 4) id.push_back(kHex[v & 0xf]);
    }
    return id;
  }

  const std::unique_ptr<rocksdb::DB> db_;
  const RocksDbMetaStore::Options options_;
  // Shared by every mutation of an object or upload, exclusive for bucket creation and
  // deletion, so that DeleteBucket's emptiness check cannot race with a PutObject.
  std::shared_mutex bucket_mu_;
  // Serialize mutations of one (bucket, key): its object record and its uploads and parts.
  // Always taken after bucket_mu_.
  std::array<std::mutex, kStripeCount> stripes_;
  // Every bucket record, by name: written after each durable bucket mutation (under bucket_mu_,
  // held exclusively by those), read by GetBucket. Always taken after bucket_mu_.
  std::shared_mutex bucket_cache_mu_;
  std::map<std::string, Result<BucketInfo>, std::less<>> bucket_cache_;
  // Serializes user and access key mutations.
  std::mutex identity_mu_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;  // guarded by rng_mu_
  std::atomic<uint64_t> list_steps_{0};
};

}  // namespace

Result<std::unique_ptr<MetaStore>> RocksDbMetaStore::Open(const std::string& dir) { return Open(dir, Options()); }

Result<std::unique_ptr<MetaStore>> RocksDbMetaStore::Open(const std::string& dir, const Options& options) {
  return Guard("RocksDbMetaStore::Open", [&]() -> Result<std::unique_ptr<MetaStore>> {
    rocksdb::Options o;
    o.create_if_missing = true;
    o.merge_operator = std::make_shared<CounterAddOperator>();
    o.max_background_jobs = 2;
    o.keep_log_file_num = 4;
    rocksdb::BlockBasedTableOptions table;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(kBloomBitsPerKey));
    table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
    o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    rocksdb::DB* raw = nullptr;
    CAIRN_RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(o, dir, &raw), "open meta db " + dir));
    auto store = std::make_unique<RocksDbMetaStoreImpl>(std::unique_ptr<rocksdb::DB>(raw), options);
    CAIRN_RETURN_IF_ERROR(store->LoadBuckets());
    return std::unique_ptr<MetaStore>(std::move(store));
  });
}

}  // namespace cairn::meta
