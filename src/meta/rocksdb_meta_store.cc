// RocksDbMetaStore: the operations of meta/meta_logic.h run over RocksDB. This file adds only
// what is RocksDB's: the locks that make each read-check-write atomic (meta/rocksdb_meta_store.h),
// a KvReader over the database or a snapshot of it, a KvWriter into one WriteBatch (counters as
// merge operands), the in-memory bucket cache, and the storage figures of Stats(). RocksDB
// exceptions (it may throw std::bad_alloc and the like) are caught at each public method and
// returned as Internal.
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
#include <shared_mutex>
#include <utility>
#include <vector>

#include "common/kv.h"
#include "meta/format.h"
#include "meta/meta_logic.h"
#include "meta/upload_id.h"

namespace cairn::meta {
namespace {

// Number of lock stripes for (bucket, key) mutations.
constexpr size_t kStripeCount = 64;
// Bloom filter bits per key.
constexpr double kBloomBitsPerKey = 10;

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

// Read options pinned to one snapshot, released when this goes out of scope: every read of a
// public method sees one consistent state.
struct SnapshotRead {
  explicit SnapshotRead(rocksdb::DB* db) : snapshot(db) { options.snapshot = snapshot.snapshot(); }
  rocksdb::ManagedSnapshot snapshot;
  rocksdb::ReadOptions options;
};

// Every bucket record, by name, as stored (the raw value) and decoded (or the decoding error of a
// damaged record).
struct CachedBucket {
  std::string value;
  Result<BucketInfo> info;
};
using BucketCache = std::map<std::string, CachedBucket, std::less<>>;

class RocksIterator final : public KvIterator {
 public:
  // `upper_bound`: empty for none.
  RocksIterator(rocksdb::DB* db, rocksdb::ReadOptions ro, std::string upper_bound)
      : upper_(std::move(upper_bound)), upper_slice_(upper_) {
    if (!upper_.empty()) ro.iterate_upper_bound = &upper_slice_;
    it_.reset(db->NewIterator(ro));
  }
  void Seek(std::string_view key) override { it_->Seek(rocksdb::Slice(key.data(), key.size())); }
  void Next() override { it_->Next(); }
  bool Valid() const override { return it_->Valid(); }
  std::string_view key() const override { return it_->key().ToStringView(); }
  std::string_view value() const override { return it_->value().ToStringView(); }
  Status status() const override { return FromRocks(it_->status(), "meta scan"); }

 private:
  const std::string upper_;
  const rocksdb::Slice upper_slice_;  // points into upper_
  std::unique_ptr<rocksdb::Iterator> it_;
};

// The state that meta/meta_logic.h reads: the database as `ro` sees it (the live database, or a
// snapshot), except the bucket records, which come from the bucket cache (equal to the database
// for every reader created under bucket_mu_, and the same answer the store gave before the
// logic was extracted for snapshot readers). Thread-safety: as the database; the cache is read
// under its lock.
class RocksReader final : public KvReader {
 public:
  RocksReader(rocksdb::DB* db, const rocksdb::ReadOptions& ro, std::shared_mutex* cache_mu, const BucketCache* cache)
      : db_(db), ro_(ro), cache_mu_(cache_mu), cache_(cache) {}

  // Iterators stop at `upper` (exclusive): the end of the key range the operation scans, which
  // spares RocksDB stepping over deleted keys past it. The logic never scans past the range of
  // its operation, so the bound changes no result; it is an optimization only.
  RocksReader& BoundScansAt(std::optional<std::string> upper) {
    upper_ = upper.value_or("");
    return *this;
  }

  Result<std::optional<std::string>> Get(std::string_view key) const override {
    if (key.starts_with(format::kBucketPrefix)) {
      std::shared_lock lock(*cache_mu_);
      auto it = cache_->find(key.substr(format::kBucketPrefix.size()));
      if (it == cache_->end()) return std::optional<std::string>();
      return std::optional<std::string>(it->second.value);
    }
    std::string value;
    const rocksdb::Status s = db_->Get(ro_, rocksdb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    CAIRN_RETURN_IF_ERROR(FromRocks(s, "meta get"));
    return std::optional<std::string>(std::move(value));
  }

  std::unique_ptr<KvIterator> NewIterator() const override { return std::make_unique<RocksIterator>(db_, ro_, upper_); }

 private:
  rocksdb::DB* const db_;
  const rocksdb::ReadOptions ro_;
  std::shared_mutex* const cache_mu_;
  const BucketCache* const cache_;
  std::string upper_;  // empty: unbounded
};

// One WriteBatch; counters become merge operands. Remembers the bucket records it writes, for
// the cache, and the first error the batch reported.
class BatchWriter final : public KvWriter {
 public:
  void Put(std::string_view key, std::string_view value) override {
    Note(batch.Put(rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(value.data(), value.size())), "batch put");
    if (key.starts_with(format::kBucketPrefix)) buckets.push_back(KvMutation{std::string(key), std::string(value)});
  }
  void Delete(std::string_view key) override {
    Note(batch.Delete(rocksdb::Slice(key.data(), key.size())), "batch delete");
    if (key.starts_with(format::kBucketPrefix)) buckets.push_back(KvMutation{std::string(key), std::nullopt});
  }
  void AddCounter(std::string_view name, int64_t delta) override {
    Note(batch.Merge(format::CounterKey(name), format::EncodeCounter(delta)), "batch merge");
  }

  rocksdb::WriteBatch batch;
  std::vector<KvMutation> buckets;
  Status status;

 private:
  void Note(const rocksdb::Status& s, std::string_view what) {
    if (status.ok()) status = FromRocks(s, what);
  }
};

class RocksDbMetaStoreImpl final : public MetaStore {
 public:
  RocksDbMetaStoreImpl(std::unique_ptr<rocksdb::DB> db, const RocksDbMetaStore::Options& options)
      : db_(std::move(db)), options_(options) {}

  ~RocksDbMetaStoreImpl() override {
    if (db_) (void)db_->Close();
  }

  // ---- Buckets ----------------------------------------------------------------------------
  // Bucket mutations take bucket_mu_ exclusively: they exclude every object and upload mutation,
  // so DeleteBucket's emptiness check cannot race with a PutObject.

  Status CreateBucket(const BucketInfo& bucket) override {
    return Guard("CreateBucket", [&]() -> Status {
      std::unique_lock lock(bucket_mu_);
      return Mutate([&](const KvReader& r, KvWriter& w) { return logic::CreateBucket(r, w, bucket); });
    });
  }

  Status DeleteBucket(std::string_view bucket, const BucketInfo* expected) override {
    return Guard("DeleteBucket", [&]() -> Status {
      std::unique_lock lock(bucket_mu_);
      return Mutate([&](const KvReader& r, KvWriter& w) { return logic::DeleteBucket(r, w, bucket, expected); });
    });
  }

  Status UpdateBucket(std::string_view bucket, const std::function<Status(BucketInfo*)>& mutate) override {
    return Guard("UpdateBucket", [&]() -> Status {
      std::unique_lock lock(bucket_mu_);
      return Mutate([&](const KvReader& r, KvWriter& w) { return logic::UpdateBucket(r, w, bucket, mutate); });
    });
  }

  // Served from the bucket cache: every request of the S3 server reads its bucket (owner, ACL,
  // policy, CORS), and this store is the only writer of its database.
  Result<BucketInfo> GetBucket(std::string_view bucket) override {
    return Guard("GetBucket", [&]() -> Result<BucketInfo> {
      if (bucket.empty() || bucket.find('\0') != std::string_view::npos) {
        return Status::InvalidArgument("bucket name is empty or contains NUL");
      }
      std::shared_lock cache_lock(bucket_cache_mu_);
      auto it = bucket_cache_.find(bucket);
      if (it == bucket_cache_.end()) return Status::NoSuchBucket(std::string(bucket));
      return it->second.info;
    });
  }

  // From the bucket cache too, which holds every bucket in name order.
  Result<std::vector<BucketInfo>> ListBuckets() override {
    return Guard("ListBuckets", [&]() -> Result<std::vector<BucketInfo>> {
      std::vector<BucketInfo> out;
      std::shared_lock cache_lock(bucket_cache_mu_);
      out.reserve(bucket_cache_.size());
      for (const auto& [name, cached] : bucket_cache_) {
        if (!cached.info.ok()) return cached.info.status();
        out.push_back(*cached.info);
      }
      return out;
    });
  }

  // Fills the bucket cache at open (called once, before any other method). A damaged bucket
  // record is reported by every GetBucket of it, as a read of the database would; the store
  // still opens for the other buckets.
  Status LoadBuckets() {
    RocksIterator it(db_.get(), rocksdb::ReadOptions(), *format::PrefixSuccessor(format::kBucketPrefix));
    std::unique_lock cache_lock(bucket_cache_mu_);
    for (it.Seek(format::kBucketPrefix); it.Valid(); it.Next()) CacheBucket(it.key(), it.value());
    return it.status();
  }

  // ---- Objects ----------------------------------------------------------------------------
  // Object and upload mutations take bucket_mu_ shared and the stripe of their (bucket, key).

  Status PutObject(const ObjectRecord& record, const WritePrecondition& precondition,
                   std::optional<ObjectRecord>* replaced) override {
    return Guard("PutObject", [&]() -> Status {
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(record.bucket, record.key));
      std::optional<ObjectRecord> current;
      CAIRN_RETURN_IF_ERROR(Mutate(
          [&](const KvReader& r, KvWriter& w) { return logic::PutObject(r, w, record, precondition, &current); }));
      if (replaced != nullptr) *replaced = std::move(current);
      return Status::OK();
    });
  }

  Result<ObjectRecord> GetObject(std::string_view bucket, std::string_view key) override {
    return Guard("GetObject", [&]() -> Result<ObjectRecord> {
      SnapshotRead snap(db_.get());
      return logic::GetObject(Reader(snap.options), bucket, key);
    });
  }

  Status SetObjectAcl(std::string_view bucket, std::string_view key, const Acl& acl,
                      const ObjectRecord* expected) override {
    return Guard("SetObjectAcl", [&]() -> Status {
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(bucket, key));
      return Mutate(
          [&](const KvReader& r, KvWriter& w) { return logic::SetObjectAcl(r, w, bucket, key, acl, expected); });
    });
  }

  Result<ObjectRecord> DeleteObject(std::string_view bucket, std::string_view key) override {
    return Guard("DeleteObject", [&]() -> Result<ObjectRecord> {
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(bucket, key));
      return MutateResult<ObjectRecord>(
          [&](const KvReader& r, KvWriter& w) { return logic::DeleteObject(r, w, bucket, key); });
    });
  }

  Result<ListObjectsResult> ListObjects(std::string_view bucket, const ListObjectsOptions& options) override {
    return Guard("ListObjects", [&]() -> Result<ListObjectsResult> {
      SnapshotRead snap(db_.get());
      // The logic scans the keys that start with the bucket's base and the prefix.
      RocksReader reader = Reader(snap.options);
      reader.BoundScansAt(format::PrefixSuccessor(format::ObjectKeyPrefix(bucket) + options.prefix));
      uint64_t steps = 0;
      Result<ListObjectsResult> result = logic::ListObjects(reader, bucket, options, &steps);
      list_steps_.fetch_add(steps, std::memory_order_relaxed);
      return result;
    });
  }

  // ---- Multipart uploads ------------------------------------------------------------------

  Result<std::string> CreateUpload(const MultipartUpload& upload) override {
    return Guard("CreateUpload", [&]() -> Result<std::string> {
      MultipartUpload with_id = upload;
      if (with_id.upload_id.empty()) with_id.upload_id = NewRandomUploadId();
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(upload.bucket, upload.key));
      return MutateResult<std::string>(
          [&](const KvReader& r, KvWriter& w) { return logic::CreateUpload(r, w, with_id); });
    });
  }

  Status PutPart(std::string_view bucket, std::string_view key, std::string_view upload_id, const PartRecord& part,
                 std::optional<PartRecord>* replaced) override {
    return Guard("PutPart", [&]() -> Status {
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(bucket, key));
      std::optional<PartRecord> current;
      CAIRN_RETURN_IF_ERROR(Mutate([&](const KvReader& r, KvWriter& w) {
        return logic::PutPart(r, w, bucket, key, upload_id, part, &current);
      }));
      if (replaced != nullptr) *replaced = std::move(current);
      return Status::OK();
    });
  }

  Result<MultipartUpload> GetUpload(std::string_view bucket, std::string_view key,
                                    std::string_view upload_id) override {
    return Guard("GetUpload", [&]() -> Result<MultipartUpload> {
      SnapshotRead snap(db_.get());
      RocksReader reader = Reader(snap.options);
      reader.BoundScansAt(PartsEnd(upload_id));
      return logic::GetUpload(reader, bucket, key, upload_id);
    });
  }

  Result<MultipartUpload> GetUploadInfo(std::string_view bucket, std::string_view key,
                                        std::string_view upload_id) override {
    return Guard("GetUploadInfo", [&]() -> Result<MultipartUpload> {
      return logic::GetUploadInfo(Reader(rocksdb::ReadOptions()), bucket, key, upload_id);
    });
  }

  Result<ListPartsResult> ListParts(std::string_view bucket, std::string_view key, std::string_view upload_id,
                                    uint32_t part_number_marker, uint32_t max_parts) override {
    return Guard("ListParts", [&]() -> Result<ListPartsResult> {
      SnapshotRead snap(db_.get());
      RocksReader reader = Reader(snap.options);
      reader.BoundScansAt(PartsEnd(upload_id));
      return logic::ListParts(reader, bucket, key, upload_id, part_number_marker, max_parts);
    });
  }

  Result<ListUploadsResult> ListUploads(std::string_view bucket, const ListUploadsOptions& options) override {
    return Guard("ListUploads", [&]() -> Result<ListUploadsResult> {
      SnapshotRead snap(db_.get());
      RocksReader reader = Reader(snap.options);
      reader.BoundScansAt(format::PrefixSuccessor(format::UploadKeyPrefixForKeys(bucket, options.prefix)));
      return logic::ListUploads(reader, bucket, options);
    });
  }

  Result<CompleteUploadResult> CompleteUpload(std::string_view bucket, std::string_view key, std::string_view upload_id,
                                              const std::vector<CompletedPart>& parts, std::string_view etag,
                                              int64_t last_modified_ms,
                                              const WritePrecondition& precondition) override {
    return Guard("CompleteUpload", [&]() -> Result<CompleteUploadResult> {
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(bucket, key));
      return MutateResult<CompleteUploadResult>(
          [&](const KvReader& r, KvWriter& w) {
            return logic::CompleteUpload(r, w, bucket, key, upload_id, parts, etag, last_modified_ms, precondition);
          },
          PartsEnd(upload_id));
    });
  }

  Result<std::vector<ChunkRef>> AbortUpload(std::string_view bucket, std::string_view key,
                                            std::string_view upload_id) override {
    return Guard("AbortUpload", [&]() -> Result<std::vector<ChunkRef>> {
      std::shared_lock bucket_lock(bucket_mu_);
      std::lock_guard key_lock(Stripe(bucket, key));
      return MutateResult<std::vector<ChunkRef>>(
          [&](const KvReader& r, KvWriter& w) { return logic::AbortUpload(r, w, bucket, key, upload_id); },
          PartsEnd(upload_id));
    });
  }

  // ---- Users and access keys ---------------------------------------------------------------
  // All identity mutations take identity_mu_, so a key cannot be created for a user being
  // deleted.

  Status CreateUser(const UserRecord& user) override {
    return Guard("CreateUser", [&]() -> Status {
      std::lock_guard lock(identity_mu_);
      return Mutate([&](const KvReader& r, KvWriter& w) { return logic::CreateUser(r, w, user); });
    });
  }

  Result<std::vector<AccessKeyRecord>> DeleteUser(std::string_view name) override {
    return Guard("DeleteUser", [&]() -> Result<std::vector<AccessKeyRecord>> {
      std::lock_guard lock(identity_mu_);
      return MutateResult<std::vector<AccessKeyRecord>>(
          [&](const KvReader& r, KvWriter& w) { return logic::DeleteUser(r, w, name); },
          format::PrefixSuccessor(format::kAccessKeyPrefix));
    });
  }

  Result<std::vector<UserRecord>> ListUsers() override {
    return Guard("ListUsers", [&]() {
      RocksReader reader = Reader(rocksdb::ReadOptions());
      reader.BoundScansAt(format::PrefixSuccessor(format::kUserPrefix));
      return logic::ListUsers(reader);
    });
  }

  Status CreateAccessKey(const AccessKeyRecord& record) override {
    return Guard("CreateAccessKey", [&]() -> Status {
      std::lock_guard lock(identity_mu_);
      return Mutate([&](const KvReader& r, KvWriter& w) { return logic::CreateAccessKey(r, w, record); });
    });
  }

  Status SetAccessKeyEnabled(std::string_view access_key, bool enabled) override {
    return Guard("SetAccessKeyEnabled", [&]() -> Status {
      std::lock_guard lock(identity_mu_);
      return Mutate(
          [&](const KvReader& r, KvWriter& w) { return logic::SetAccessKeyEnabled(r, w, access_key, enabled); });
    });
  }

  Status DeleteAccessKey(std::string_view access_key) override {
    return Guard("DeleteAccessKey", [&]() -> Status {
      std::lock_guard lock(identity_mu_);
      return Mutate([&](const KvReader& r, KvWriter& w) { return logic::DeleteAccessKey(r, w, access_key); });
    });
  }

  Result<std::vector<AccessKeyRecord>> ListAccessKeys() override {
    return Guard("ListAccessKeys", [&]() {
      RocksReader reader = Reader(rocksdb::ReadOptions());
      reader.BoundScansAt(format::PrefixSuccessor(format::kAccessKeyPrefix));
      return logic::ListAccessKeys(reader);
    });
  }

  // ---- Maintenance ------------------------------------------------------------------------

  Status ForEachChunkRef(const std::function<Status(const ChunkRef&)>& fn) override {
    return Guard("ForEachChunkRef", [&]() -> Status {
      SnapshotRead snap(db_.get());
      snap.options.fill_cache = false;
      return logic::ForEachChunkRef(Reader(snap.options), fn);
    });
  }

  Result<std::map<std::string, uint64_t>> Stats() override {
    return Guard("Stats", [&]() -> Result<std::map<std::string, uint64_t>> {
      CAIRN_ASSIGN_OR_RETURN(auto out, logic::ReadCounters(Reader(rocksdb::ReadOptions())));
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

  RocksReader Reader(const rocksdb::ReadOptions& ro) {
    return RocksReader(db_.get(), ro, &bucket_cache_mu_, &bucket_cache_);
  }

  // The end of the part keys of an upload (PartKeyPrefix always has a successor: it starts "P/").
  static std::optional<std::string> PartsEnd(std::string_view upload_id) {
    return format::PrefixSuccessor(format::PartKeyPrefix(upload_id));
  }

  // Runs a mutation of meta/meta_logic.h over the live database and writes what it wrote as one
  // batch when it succeeds. REQUIRES: the locks that serialize this mutation with every other
  // one that touches its keys. `scan_end`: see RocksReader::BoundScansAt.
  template <typename T, typename Fn>
  Result<T> MutateResult(Fn&& fn, std::optional<std::string> scan_end = std::nullopt) {
    RocksReader reader = Reader(rocksdb::ReadOptions());
    reader.BoundScansAt(std::move(scan_end));
    BatchWriter writer;
    Result<T> result = fn(reader, writer);
    if (!result.ok()) return result;
    CAIRN_RETURN_IF_ERROR(Commit(&writer));
    return result;
  }

  template <typename Fn>
  Status Mutate(Fn&& fn) {
    RocksReader reader = Reader(rocksdb::ReadOptions());
    BatchWriter writer;
    CAIRN_RETURN_IF_ERROR(fn(reader, writer));
    return Commit(&writer);
  }

  // Writes the batch durably, then applies its bucket records to the cache. REQUIRES: bucket_mu_
  // held exclusively when the batch holds bucket records (every bucket mutation takes it so).
  Status Commit(BatchWriter* writer) {
    CAIRN_RETURN_IF_ERROR(writer->status);
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync_writes;
    CAIRN_RETURN_IF_ERROR(FromRocks(db_->Write(wo, &writer->batch), "meta write"));
    if (writer->buckets.empty()) return Status::OK();
    std::unique_lock cache_lock(bucket_cache_mu_);
    for (const KvMutation& m : writer->buckets) {
      if (m.value) {
        CacheBucket(m.key, *m.value);
      } else {
        bucket_cache_.erase(m.key.substr(format::kBucketPrefix.size()));
      }
    }
    return Status::OK();
  }

  // REQUIRES: bucket_cache_mu_ held exclusively.
  void CacheBucket(std::string_view db_key, std::string_view value) {
    BucketInfo info;
    const Status decoded = format::DecodeBucket(db_key, value, &info);
    bucket_cache_.insert_or_assign(std::string(db_key.substr(format::kBucketPrefix.size())),
                                   CachedBucket{std::string(value), decoded.ok() ? Result<BucketInfo>(std::move(info))
                                                                                 : Result<BucketInfo>(decoded)});
  }

  const std::unique_ptr<rocksdb::DB> db_;
  const RocksDbMetaStore::Options options_;
  // Shared by every mutation of an object or upload, exclusive for bucket mutations, so that
  // DeleteBucket's emptiness check cannot race with a PutObject.
  std::shared_mutex bucket_mu_;
  // Serialize mutations of one (bucket, key): its object record and its uploads and parts.
  // Always taken after bucket_mu_.
  std::array<std::mutex, kStripeCount> stripes_;
  // Every bucket record, by name: written after each durable bucket mutation (under bucket_mu_,
  // held exclusively by those), read by GetBucket and by every reader of a bucket key. Always
  // taken after bucket_mu_.
  std::shared_mutex bucket_cache_mu_;
  BucketCache bucket_cache_;
  // Serializes user and access key mutations.
  std::mutex identity_mu_;
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
