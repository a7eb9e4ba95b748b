// The MetaStore operations over a KvReader and a KvWriter. Contracts in meta/meta_logic.h and
// meta/meta_store.h, layout in meta/format.h.
#include "meta/meta_logic.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "meta/format.h"

namespace cairn::meta::logic {
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr int kNibblesPerWord = 16;
constexpr int kBitsPerNibble = 4;
constexpr uint64_t kNibbleMask = 0xf;

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

// The same bucket, not one deleted and created again under its name.
bool SameBucket(const BucketInfo& a, const BucketInfo& b) { return a.owner == b.owner && a.created_ms == b.created_ms; }

int64_t SizeDelta(uint64_t now, uint64_t before) { return static_cast<int64_t>(now - before); }

// Calls fn(key, value) for every key that starts with `prefix`, in order; stops at fn's first
// error.
template <typename Fn>
Status ScanPrefix(const KvReader& reader, std::string_view prefix, Fn&& fn) {
  std::unique_ptr<KvIterator> it = reader.NewIterator();
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    CAIRN_RETURN_IF_ERROR(fn(it->key(), it->value()));
  }
  return it->status();
}

Result<bool> AnyKeyWithPrefix(const KvReader& reader, std::string_view prefix) {
  std::unique_ptr<KvIterator> it = reader.NewIterator();
  it->Seek(prefix);
  if (it->Valid()) return it->key().starts_with(prefix);
  CAIRN_RETURN_IF_ERROR(it->status());
  return false;
}

// Every record under `prefix`, decoded, in key order; the first value that fails to decode fails
// the whole read.
template <typename T>
Result<std::vector<T>> ReadAll(const KvReader& reader, std::string_view prefix,
                               Status (*decode)(std::string_view, std::string_view, T*)) {
  std::vector<T> out;
  const Status s = ScanPrefix(reader, prefix, [&](std::string_view key, std::string_view value) -> Status {
    T record;
    CAIRN_RETURN_IF_ERROR(decode(key, value, &record));
    out.push_back(std::move(record));
    return Status::OK();
  });
  if (!s.ok()) return s;
  return out;
}

// The bucket's record; NoSuchBucket when there is none.
Result<BucketInfo> ReadBucket(const KvReader& reader, std::string_view bucket) {
  const std::string key = format::BucketKey(bucket);
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> value, reader.Get(key));
  if (!value) return Status::NoSuchBucket(std::string(bucket));
  BucketInfo info;
  CAIRN_RETURN_IF_ERROR(format::DecodeBucket(key, *value, &info));
  return info;
}

Status CheckBucket(const KvReader& reader, std::string_view bucket) { return ReadBucket(reader, bucket).status(); }

Result<std::optional<ObjectRecord>> ReadObject(const KvReader& reader, const std::string& db_key) {
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> value, reader.Get(db_key));
  if (!value) return std::optional<ObjectRecord>();
  ObjectRecord record;
  CAIRN_RETURN_IF_ERROR(format::DecodeObject(db_key, *value, &record));
  return std::optional<ObjectRecord>(std::move(record));
}

// NoSuchUpload when the upload is absent (NoSuchBucket when its bucket is).
Result<MultipartUpload> ReadUpload(const KvReader& reader, std::string_view bucket, std::string_view key,
                                   std::string_view upload_id) {
  const std::string db_key = format::UploadKey(bucket, key, upload_id);
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> value, reader.Get(db_key));
  if (!value) {
    CAIRN_RETURN_IF_ERROR(CheckBucket(reader, bucket));
    return Status::NoSuchUpload(std::string(upload_id));
  }
  MultipartUpload upload;
  CAIRN_RETURN_IF_ERROR(format::DecodeUpload(db_key, *value, &upload));
  return upload;
}

Status ReadParts(const KvReader& reader, std::string_view upload_id, std::map<uint32_t, PartRecord>* out) {
  return ScanPrefix(reader, format::PartKeyPrefix(upload_id), [&](std::string_view k, std::string_view v) {
    PartRecord part;
    CAIRN_RETURN_IF_ERROR(format::DecodePart(k, v, &part));
    const uint32_t number = part.part_number;
    (*out)[number] = std::move(part);
    return Status::OK();
  });
}

// The walk of ListChunkRefs and ForEachChunkRef: the part records, then the object records, from
// just after `after_key`. fn(db_key, chunks) returns false to stop after that record.
template <typename Fn>
Status WalkChunkRefs(const KvReader& reader, std::string_view after_key, Fn&& fn) {
  struct Phase {
    std::string_view prefix;
    bool is_part;
  };
  const std::array<Phase, 2> phases = {{{format::kPartPrefix, true}, {format::kObjectPrefix, false}}};
  size_t first = 0;
  if (after_key.starts_with(format::kObjectPrefix)) {
    first = 1;
  } else if (!after_key.empty() && !after_key.starts_with(format::kPartPrefix)) {
    return Status::InvalidArgument("chunk walk cursor is neither a part nor an object key");
  }
  std::unique_ptr<KvIterator> it = reader.NewIterator();
  for (size_t p = first; p < phases.size(); ++p) {
    const Phase& phase = phases[p];
    if (p == first && !after_key.empty()) {
      // Appending a NUL gives the smallest key after after_key.
      std::string start(after_key);
      start.push_back('\0');
      it->Seek(start);
    } else {
      it->Seek(phase.prefix);
    }
    for (; it->Valid() && it->key().starts_with(phase.prefix); it->Next()) {
      bool more = true;
      if (phase.is_part) {
        PartRecord part;
        CAIRN_RETURN_IF_ERROR(format::DecodePart(it->key(), it->value(), &part));
        more = fn(it->key(), part.chunks);
      } else {
        ObjectRecord object;
        CAIRN_RETURN_IF_ERROR(format::DecodeObject(it->key(), it->value(), &object));
        more = fn(it->key(), object.chunks);
      }
      if (!more) return it->status();
    }
    CAIRN_RETURN_IF_ERROR(it->status());
  }
  return Status::OK();
}

}  // namespace

std::string FormatUploadId(uint64_t word0, uint64_t word1) {
  std::string id;
  for (uint64_t v : {word0, word1}) {
    for (int i = 0; i < kNibblesPerWord; ++i, v >>= kBitsPerNibble) id.push_back(kHexDigits[v & kNibbleMask]);
  }
  return id;
}

// ---- Buckets ----------------------------------------------------------------------------------

Status CreateBucket(const KvReader& reader, KvWriter& writer, const BucketInfo& bucket) {
  CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket.name));
  const std::string key = format::BucketKey(bucket.name);
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> existing, reader.Get(key));
  if (existing) return Status::AlreadyExists("bucket " + bucket.name);
  writer.Put(key, format::EncodeBucket(key, bucket));
  writer.AddCounter(kBucketsCounter, 1);
  return Status::OK();
}

Status DeleteBucket(const KvReader& reader, KvWriter& writer, std::string_view bucket, const BucketInfo* expected) {
  CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket));
  CAIRN_ASSIGN_OR_RETURN(BucketInfo current, ReadBucket(reader, bucket));
  if (expected != nullptr && !SameBucket(current, *expected)) {
    return Status::PreconditionFailed("the bucket was deleted and created again");
  }
  for (const std::string& prefix : {format::ObjectKeyPrefix(bucket), format::UploadKeyPrefix(bucket)}) {
    CAIRN_ASSIGN_OR_RETURN(bool any, AnyKeyWithPrefix(reader, prefix));
    if (any) return Status::BucketNotEmpty("bucket " + std::string(bucket));
  }
  writer.Delete(format::BucketKey(bucket));
  writer.AddCounter(kBucketsCounter, -1);
  return Status::OK();
}

Result<BucketInfo> GetBucket(const KvReader& reader, std::string_view bucket) {
  CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket));
  return ReadBucket(reader, bucket);
}

Result<std::vector<BucketInfo>> ListBuckets(const KvReader& reader) {
  return ReadAll<BucketInfo>(reader, format::kBucketPrefix, format::DecodeBucket);
}

Status UpdateBucket(const KvReader& reader, KvWriter& writer, std::string_view bucket,
                    const std::function<Status(BucketInfo*)>& mutate) {
  CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket));
  CAIRN_ASSIGN_OR_RETURN(BucketInfo info, ReadBucket(reader, bucket));
  BucketInfo updated = info;
  CAIRN_RETURN_IF_ERROR(mutate(&updated));
  if (updated.name != info.name || updated.owner != info.owner || updated.created_ms != info.created_ms) {
    return Status::InvalidArgument("UpdateBucket may not change the name, owner or creation time");
  }
  const std::string key = format::BucketKey(bucket);
  writer.Put(key, format::EncodeBucket(key, updated));
  return Status::OK();
}

// ---- Objects ----------------------------------------------------------------------------------

Status PutObject(const KvReader& reader, KvWriter& writer, const ObjectRecord& record,
                 const WritePrecondition& precondition, std::optional<ObjectRecord>* replaced) {
  CAIRN_RETURN_IF_ERROR(ValidateObjectName(record.bucket, record.key));
  CAIRN_RETURN_IF_ERROR(CheckBucket(reader, record.bucket));
  const std::string key = format::ObjectKey(record.bucket, record.key);
  CAIRN_ASSIGN_OR_RETURN(std::optional<ObjectRecord> current, ReadObject(reader, key));
  CAIRN_RETURN_IF_ERROR(CheckPrecondition(precondition, current));
  writer.Put(key, format::EncodeObject(key, record));
  if (!current) writer.AddCounter(kObjectsCounter, 1);
  const int64_t bytes = SizeDelta(record.size, current ? current->size : 0);
  if (bytes != 0) writer.AddCounter(kObjectBytesCounter, bytes);
  if (replaced != nullptr) *replaced = std::move(current);
  return Status::OK();
}

Result<ObjectRecord> GetObject(const KvReader& reader, std::string_view bucket, std::string_view key) {
  CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
  CAIRN_ASSIGN_OR_RETURN(std::optional<ObjectRecord> current, ReadObject(reader, format::ObjectKey(bucket, key)));
  if (!current) {
    CAIRN_RETURN_IF_ERROR(CheckBucket(reader, bucket));
    return Status::NotFound("object " + std::string(key));
  }
  return std::move(*current);
}

Status SetObjectAcl(const KvReader& reader, KvWriter& writer, std::string_view bucket, std::string_view key,
                    const Acl& acl, const ObjectRecord* expected) {
  CAIRN_ASSIGN_OR_RETURN(ObjectRecord current, GetObject(reader, bucket, key));
  if (expected != nullptr &&
      (expected->etag != current.etag || expected->last_modified_ms != current.last_modified_ms)) {
    return Status::PreconditionFailed("the object changed");
  }
  const std::string owner = current.acl.owner.empty() ? acl.owner : current.acl.owner;
  current.acl = acl;
  current.acl.owner = owner;
  const std::string db_key = format::ObjectKey(bucket, key);
  writer.Put(db_key, format::EncodeObject(db_key, current));
  return Status::OK();
}

Result<ObjectRecord> DeleteObject(const KvReader& reader, KvWriter& writer, std::string_view bucket,
                                  std::string_view key) {
  CAIRN_ASSIGN_OR_RETURN(ObjectRecord current, GetObject(reader, bucket, key));
  writer.Delete(format::ObjectKey(bucket, key));
  writer.AddCounter(kObjectsCounter, -1);
  if (current.size != 0) writer.AddCounter(kObjectBytesCounter, SizeDelta(0, current.size));
  return current;
}

// One ordered scan of the bucket's objects from max(prefix, start_after). A common-prefix group
// is never stepped through: the scan seeks to the group's successor (the common prefix with its
// last byte incremented), so a page costs O(max_keys) seeks and nexts however many keys the
// groups hold. The scan ends at the first key that does not start with the bucket's base and the
// prefix (a RocksDB reader may bound its iterators there: see rocksdb_meta_store.cc).
Result<ListObjectsResult> ListObjects(const KvReader& reader, std::string_view bucket,
                                      const ListObjectsOptions& options, uint64_t* iterator_steps) {
  CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket));
  CAIRN_RETURN_IF_ERROR(CheckBucket(reader, bucket));
  const std::string& prefix = options.prefix;
  const std::string& delimiter = options.delimiter;
  const std::string& start_after = options.start_after;
  const std::string base = format::ObjectKeyPrefix(bucket);
  const std::string scope = base + prefix;
  std::unique_ptr<KvIterator> it = reader.NewIterator();
  uint64_t steps = 0;

  // A key equal to start_after is skipped below, and so is a group whose common prefix equals
  // start_after (after one seek), so the scan can start at max(prefix, start_after).
  it->Seek(base + std::max(prefix, start_after));
  ++steps;

  ListObjectsResult result;
  uint32_t count = 0;
  Status status;
  while (it->Valid() && it->key().starts_with(scope)) {
    const std::string_view db_key = it->key();
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
    status = format::DecodeObject(db_key, it->value(), &record);
    if (!status.ok()) break;
    result.next_start_after = record.key;
    result.objects.push_back(std::move(record));
    ++count;
    it->Next();
    ++steps;
  }
  if (iterator_steps != nullptr) *iterator_steps += steps;
  CAIRN_RETURN_IF_ERROR(status);
  CAIRN_RETURN_IF_ERROR(it->status());
  return result;
}

// ---- Multipart uploads ------------------------------------------------------------------------

Result<std::string> CreateUpload(const KvReader& reader, KvWriter& writer, const MultipartUpload& upload) {
  CAIRN_RETURN_IF_ERROR(ValidateObjectName(upload.bucket, upload.key));
  CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload.upload_id));
  CAIRN_RETURN_IF_ERROR(CheckBucket(reader, upload.bucket));
  const std::string key = format::UploadKey(upload.bucket, upload.key, upload.upload_id);
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> existing, reader.Get(key));
  if (existing) return Status::AlreadyExists("upload " + upload.upload_id);
  writer.Put(key, format::EncodeUpload(key, upload));
  writer.AddCounter(kUploadsCounter, 1);
  return upload.upload_id;
}

Status PutPart(const KvReader& reader, KvWriter& writer, std::string_view bucket, std::string_view key,
               std::string_view upload_id, const PartRecord& part, std::optional<PartRecord>* replaced) {
  CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
  CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
  if (part.part_number == 0) return Status::InvalidArgument("part number 0");
  CAIRN_RETURN_IF_ERROR(ReadUpload(reader, bucket, key, upload_id).status());
  const std::string part_key = format::PartKey(upload_id, part.part_number);
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> value, reader.Get(part_key));
  std::optional<PartRecord> current;
  if (value) {
    current.emplace();
    CAIRN_RETURN_IF_ERROR(format::DecodePart(part_key, *value, &*current));
  }
  writer.Put(part_key, format::EncodePart(part_key, part));
  if (!current) writer.AddCounter(kPartsCounter, 1);
  if (replaced != nullptr) *replaced = std::move(current);
  return Status::OK();
}

Result<MultipartUpload> GetUpload(const KvReader& reader, std::string_view bucket, std::string_view key,
                                  std::string_view upload_id) {
  CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
  CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
  CAIRN_ASSIGN_OR_RETURN(MultipartUpload upload, ReadUpload(reader, bucket, key, upload_id));
  CAIRN_RETURN_IF_ERROR(ReadParts(reader, upload_id, &upload.parts));
  return upload;
}

Result<MultipartUpload> GetUploadInfo(const KvReader& reader, std::string_view bucket, std::string_view key,
                                      std::string_view upload_id) {
  CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
  CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
  return ReadUpload(reader, bucket, key, upload_id);
}

Result<ListPartsResult> ListParts(const KvReader& reader, std::string_view bucket, std::string_view key,
                                  std::string_view upload_id, uint32_t part_number_marker, uint32_t max_parts) {
  CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
  CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
  CAIRN_RETURN_IF_ERROR(ReadUpload(reader, bucket, key, upload_id).status());
  ListPartsResult result;
  if (part_number_marker == UINT32_MAX) return result;
  const std::string prefix = format::PartKeyPrefix(upload_id);
  std::unique_ptr<KvIterator> it = reader.NewIterator();
  for (it->Seek(format::PartKey(upload_id, part_number_marker + 1)); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    if (result.parts.size() == max_parts) {
      result.is_truncated = true;
      break;
    }
    PartRecord part;
    CAIRN_RETURN_IF_ERROR(format::DecodePart(it->key(), it->value(), &part));
    result.next_part_number_marker = part.part_number;
    result.parts.push_back(std::move(part));
  }
  CAIRN_RETURN_IF_ERROR(it->status());
  return result;
}

Result<ListUploadsResult> ListUploads(const KvReader& reader, std::string_view bucket,
                                      const ListUploadsOptions& options) {
  CAIRN_RETURN_IF_ERROR(ValidateBucketName(bucket));
  CAIRN_RETURN_IF_ERROR(CheckBucket(reader, bucket));
  const std::string lower = format::UploadKeyPrefixForKeys(bucket, options.prefix);
  std::string start = lower;
  if (!options.key_marker.empty()) {
    // The smallest key after the marker: past every upload of key_marker, or just past
    // (key_marker, upload_id_marker) (appending a NUL gives the next string).
    std::string after = options.upload_id_marker.empty()
                            ? *format::PrefixSuccessor(format::UploadKeyPrefixForKey(bucket, options.key_marker))
                            : format::UploadKey(bucket, options.key_marker, options.upload_id_marker) + '\0';
    start = std::max(start, after);
  }
  std::unique_ptr<KvIterator> it = reader.NewIterator();
  ListUploadsResult result;
  for (it->Seek(start); it->Valid() && it->key().starts_with(lower); it->Next()) {
    if (result.uploads.size() == options.max_uploads) {
      result.is_truncated = true;
      break;
    }
    MultipartUpload upload;
    CAIRN_RETURN_IF_ERROR(format::DecodeUpload(it->key(), it->value(), &upload));
    result.next_key_marker = upload.key;
    result.next_upload_id_marker = upload.upload_id;
    result.uploads.push_back(std::move(upload));
  }
  CAIRN_RETURN_IF_ERROR(it->status());
  return result;
}

Result<CompleteUploadResult> CompleteUpload(const KvReader& reader, KvWriter& writer, std::string_view bucket,
                                            std::string_view key, std::string_view upload_id,
                                            const std::vector<CompletedPart>& parts, std::string_view etag,
                                            int64_t last_modified_ms, const WritePrecondition& precondition) {
  CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
  CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
  if (parts.empty()) return Status::InvalidPartOrder("no parts listed");
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].part_number <= parts[i - 1].part_number) {
      return Status::InvalidPartOrder("part " + std::to_string(parts[i].part_number) + " after " +
                                      std::to_string(parts[i - 1].part_number));
    }
  }
  CAIRN_ASSIGN_OR_RETURN(MultipartUpload upload, ReadUpload(reader, bucket, key, upload_id));
  CAIRN_RETURN_IF_ERROR(ReadParts(reader, upload_id, &upload.parts));
  // Every part key, to delete below (the loop that follows consumes upload.parts).
  std::vector<std::string> part_keys;
  part_keys.reserve(upload.parts.size());
  for (const auto& [number, part] : upload.parts) part_keys.push_back(format::PartKey(upload_id, number));

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
  CAIRN_ASSIGN_OR_RETURN(result.replaced, ReadObject(reader, object_key));
  CAIRN_RETURN_IF_ERROR(CheckPrecondition(precondition, result.replaced));

  writer.Put(object_key, format::EncodeObject(object_key, object));
  writer.Delete(format::UploadKey(bucket, key, upload_id));
  for (const std::string& part_key : part_keys) writer.Delete(part_key);
  if (!result.replaced) writer.AddCounter(kObjectsCounter, 1);
  const int64_t bytes = SizeDelta(object.size, result.replaced ? result.replaced->size : 0);
  if (bytes != 0) writer.AddCounter(kObjectBytesCounter, bytes);
  writer.AddCounter(kUploadsCounter, -1);
  if (!part_keys.empty()) writer.AddCounter(kPartsCounter, -static_cast<int64_t>(part_keys.size()));
  return result;
}

Result<std::vector<ChunkRef>> AbortUpload(const KvReader& reader, KvWriter& writer, std::string_view bucket,
                                          std::string_view key, std::string_view upload_id) {
  CAIRN_RETURN_IF_ERROR(ValidateObjectName(bucket, key));
  CAIRN_RETURN_IF_ERROR(ValidateUploadId(upload_id));
  CAIRN_RETURN_IF_ERROR(ReadUpload(reader, bucket, key, upload_id).status());
  std::vector<ChunkRef> chunks;
  std::vector<std::string> part_keys;
  const Status scanned =
      ScanPrefix(reader, format::PartKeyPrefix(upload_id), [&](std::string_view k, std::string_view v) -> Status {
        PartRecord part;
        CAIRN_RETURN_IF_ERROR(format::DecodePart(k, v, &part));
        chunks.insert(chunks.end(), part.chunks.begin(), part.chunks.end());
        part_keys.emplace_back(k);
        return Status::OK();
      });
  CAIRN_RETURN_IF_ERROR(scanned);
  writer.Delete(format::UploadKey(bucket, key, upload_id));
  for (const std::string& part_key : part_keys) writer.Delete(part_key);
  writer.AddCounter(kUploadsCounter, -1);
  if (!part_keys.empty()) writer.AddCounter(kPartsCounter, -static_cast<int64_t>(part_keys.size()));
  return chunks;
}

// ---- Users and access keys --------------------------------------------------------------------

Status CreateUser(const KvReader& reader, KvWriter& writer, const UserRecord& user) {
  if (user.name.empty()) return Status::InvalidArgument("user name is empty");
  const std::string key = format::UserKey(user.name);
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> existing, reader.Get(key));
  if (existing) return Status::AlreadyExists("user " + user.name);
  writer.Put(key, format::EncodeUser(key, user));
  return Status::OK();
}

Result<std::vector<AccessKeyRecord>> DeleteUser(const KvReader& reader, KvWriter& writer, std::string_view name) {
  const std::string key = format::UserKey(name);
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> existing, reader.Get(key));
  if (!existing) return Status::NotFound("user " + std::string(name));
  CAIRN_ASSIGN_OR_RETURN(std::vector<AccessKeyRecord> all, ListAccessKeys(reader));
  std::vector<AccessKeyRecord> removed;
  writer.Delete(key);
  for (AccessKeyRecord& k : all) {
    if (k.user != name) continue;
    writer.Delete(format::AccessKeyKey(k.access_key));
    removed.push_back(std::move(k));
  }
  return removed;
}

Result<std::vector<UserRecord>> ListUsers(const KvReader& reader) {
  return ReadAll<UserRecord>(reader, format::kUserPrefix, format::DecodeUser);
}

Status CreateAccessKey(const KvReader& reader, KvWriter& writer, const AccessKeyRecord& record) {
  if (record.access_key.empty()) return Status::InvalidArgument("access key is empty");
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> user, reader.Get(format::UserKey(record.user)));
  if (!user) return Status::NotFound("user " + record.user);
  const std::string key = format::AccessKeyKey(record.access_key);
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> existing, reader.Get(key));
  if (existing) return Status::AlreadyExists("access key " + record.access_key);
  writer.Put(key, format::EncodeAccessKey(key, record));
  return Status::OK();
}

Status SetAccessKeyEnabled(const KvReader& reader, KvWriter& writer, std::string_view access_key, bool enabled) {
  const std::string key = format::AccessKeyKey(access_key);
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> value, reader.Get(key));
  if (!value) return Status::NotFound("access key " + std::string(access_key));
  AccessKeyRecord record;
  CAIRN_RETURN_IF_ERROR(format::DecodeAccessKey(key, *value, &record));
  record.enabled = enabled;
  writer.Put(key, format::EncodeAccessKey(key, record));
  return Status::OK();
}

Status DeleteAccessKey(const KvReader& reader, KvWriter& writer, std::string_view access_key) {
  const std::string key = format::AccessKeyKey(access_key);
  CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> value, reader.Get(key));
  if (!value) return Status::NotFound("access key " + std::string(access_key));
  writer.Delete(key);
  return Status::OK();
}

Result<std::vector<AccessKeyRecord>> ListAccessKeys(const KvReader& reader) {
  return ReadAll<AccessKeyRecord>(reader, format::kAccessKeyPrefix, format::DecodeAccessKey);
}

// ---- Maintenance ------------------------------------------------------------------------------

Status ForEachChunkRef(const KvReader& reader, const std::function<Status(const ChunkRef&)>& fn) {
  Status stopped;
  CAIRN_RETURN_IF_ERROR(WalkChunkRefs(reader, "", [&](std::string_view, const std::vector<ChunkRef>& chunks) {
    for (const ChunkRef& c : chunks) {
      stopped = fn(c);
      if (!stopped.ok()) return false;
    }
    return true;
  }));
  return stopped;
}

Result<ChunkRefPage> ListChunkRefs(const KvReader& reader, std::string_view after_key, uint32_t max_chunks) {
  const size_t limit = std::max<uint32_t>(max_chunks, 1);
  ChunkRefPage page;
  bool full = false;
  CAIRN_RETURN_IF_ERROR(
      WalkChunkRefs(reader, after_key, [&](std::string_view db_key, const std::vector<ChunkRef>& chunks) {
        page.chunks.insert(page.chunks.end(), chunks.begin(), chunks.end());
        page.next_after_key = std::string(db_key);
        full = page.chunks.size() >= limit;
        return !full;
      }));
  // A page that ended with the walk says so with an empty cursor; one that filled up may be
  // followed by an empty page.
  if (!full) page.next_after_key.clear();
  return page;
}

Result<std::map<std::string, uint64_t>> ReadCounters(const KvReader& reader) {
  std::map<std::string, uint64_t> out;
  for (std::string_view name : kCounterNames) {
    CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> value, reader.Get(format::CounterKey(name)));
    int64_t n = 0;
    if (value) {
      const auto decoded = format::DecodeCounter(*value);
      if (!decoded) return Status::Corruption("counter " + std::string(name));
      n = *decoded;
    }
    out[std::string(name)] = n < 0 ? 0 : static_cast<uint64_t>(n);
  }
  return out;
}

}  // namespace cairn::meta::logic
