// The command, query and reply codec and the executors. Layout in docs/formats/meta.md,
// "Commands and queries (cluster mode)"; contracts in meta/meta_commands.h.
#include "meta/meta_commands.h"

#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

#include "meta/format.h"

namespace cairn::meta {
namespace {

constexpr uint8_t kFirstQueryTag = static_cast<uint8_t>(MetaOp::kGetBucket);
constexpr uint8_t kFirstCommandTag = static_cast<uint8_t>(MetaOp::kCreateBucket);
constexpr int kBitsPerByte = 8;
constexpr uint8_t kAbsent = 0;
constexpr uint8_t kPresent = 1;

bool KnownStatusCode(uint16_t code) {
  switch (code) {
#define CAIRN_CASE_ROW(name, value, desc) case value:
    CAIRN_ERROR_CODES(CAIRN_CASE_ROW)
#undef CAIRN_CASE_ROW
    return true;
    default:
      return false;
  }
}

// ---- Primitive fields ---------------------------------------------------------------------------

class Out {
 public:
  void U8(uint8_t v) { bytes_.push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Fixed(v, sizeof(v)); }
  void U32(uint32_t v) { Fixed(v, sizeof(v)); }
  void U64(uint64_t v) { Fixed(v, sizeof(v)); }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void Bool(bool v) { U8(v ? 1 : 0); }
  void Str(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    bytes_.append(s);
  }
  std::string Take() { return std::move(bytes_); }

 private:
  void Fixed(uint64_t v, size_t n) {
    for (size_t i = 0; i < n; ++i) bytes_.push_back(static_cast<char>(v >> (kBitsPerByte * i)));
  }
  std::string bytes_;
};

// Reads fields; the first failure (underflow or a value out of range) sticks, and every later
// read returns zeros.
class In {
 public:
  explicit In(std::string_view bytes) : in_(bytes) {}
  uint8_t U8() { return static_cast<uint8_t>(Fixed(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Fixed(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Fixed(4)); }
  uint64_t U64() { return Fixed(8); }
  int64_t I64() { return static_cast<int64_t>(U64()); }
  bool Bool() {
    const uint8_t v = U8();
    if (v > 1) Fail();
    return v == 1;
  }
  std::string Str() {
    const uint32_t n = U32();
    if (!ok_ || in_.size() < n) {
      Fail();
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  // An element count: every element takes at least one byte, so a count past the bytes left is
  // refused before anything is allocated for it.
  uint32_t Count() {
    const uint32_t n = U32();
    if (n > in_.size()) Fail();
    return ok_ ? n : 0;
  }
  void Fail() { ok_ = false; }
  bool ok() const { return ok_; }
  bool AtEnd() const { return in_.empty(); }

 private:
  uint64_t Fixed(size_t n) {
    if (!ok_ || in_.size() < n) {
      Fail();
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << kBitsPerByte) | static_cast<uint8_t>(in_[i]);
    in_.remove_prefix(n);
    return v;
  }

  std::string_view in_;
  bool ok_ = true;
};

// ---- Values ---------------------------------------------------------------------------------------
// Put(out, v) and Get(in, &v) for every field type. A record travels as the fields of its
// database key, then its value exactly as meta/format.h encodes it under that key.

void Put(Out& out, const std::string& s) { out.Str(s); }
void Get(In& in, std::string* s) { *s = in.Str(); }

void Put(Out& out, bool v) { out.Bool(v); }
void Get(In& in, bool* v) { *v = in.Bool(); }

// Decodes a record value of meta/format.h and requires it to be the canonical encoding.
template <typename T>
void GetRecordValue(In& in, const std::string& db_key, const std::string& value,
                    Status (*decode)(std::string_view, std::string_view, T*), T* out) {
  if (!in.ok()) return;
  if (!decode(db_key, value, out).ok()) return in.Fail();
}

template <typename T>
void CheckCanonical(In& in, const std::string& db_key, const std::string& value,
                    std::string (*encode)(std::string_view, const T&), const T& record) {
  if (in.ok() && encode(db_key, record) != value) in.Fail();
}

void Put(Out& out, const BucketInfo& b) {
  out.Str(b.name);
  out.Str(format::EncodeBucket(format::BucketKey(b.name), b));
}
void Get(In& in, BucketInfo* b) {
  const std::string name = in.Str();
  const std::string value = in.Str();
  const std::string db_key = format::BucketKey(name);
  GetRecordValue(in, db_key, value, format::DecodeBucket, b);
  b->name = name;
  CheckCanonical(in, db_key, value, format::EncodeBucket, *b);
}

void Put(Out& out, const ObjectRecord& r) {
  out.Str(r.bucket);
  out.Str(r.key);
  out.Str(format::EncodeObject(format::ObjectKey(r.bucket, r.key), r));
}
void Get(In& in, ObjectRecord* r) {
  const std::string bucket = in.Str();
  const std::string key = in.Str();
  const std::string value = in.Str();
  const std::string db_key = format::ObjectKey(bucket, key);
  GetRecordValue(in, db_key, value, format::DecodeObject, r);
  // The key's fields are the ones sent (a bucket name with a NUL would split differently).
  r->bucket = bucket;
  r->key = key;
  CheckCanonical(in, db_key, value, format::EncodeObject, *r);
}

// A part travels under the key of a part of the empty upload id: its upload is given elsewhere.
void Put(Out& out, const PartRecord& p) {
  out.U32(p.part_number);
  out.Str(format::EncodePart(format::PartKey("", p.part_number), p));
}
void Get(In& in, PartRecord* p) {
  const uint32_t number = in.U32();
  const std::string value = in.Str();
  const std::string db_key = format::PartKey("", number);
  GetRecordValue(in, db_key, value, format::DecodePart, p);
  CheckCanonical(in, db_key, value, format::EncodePart, *p);
}

// The upload record, then its parts in ascending number order.
void Put(Out& out, const MultipartUpload& u) {
  out.Str(u.bucket);
  out.Str(u.key);
  out.Str(u.upload_id);
  out.Str(format::EncodeUpload(format::UploadKey(u.bucket, u.key, u.upload_id), u));
  out.U32(static_cast<uint32_t>(u.parts.size()));
  for (const auto& [number, part] : u.parts) Put(out, part);
}
void Get(In& in, MultipartUpload* u) {
  const std::string bucket = in.Str();
  const std::string key = in.Str();
  const std::string upload_id = in.Str();
  const std::string value = in.Str();
  const std::string db_key = format::UploadKey(bucket, key, upload_id);
  GetRecordValue(in, db_key, value, format::DecodeUpload, u);
  u->bucket = bucket;
  u->key = key;
  u->upload_id = upload_id;
  CheckCanonical(in, db_key, value, format::EncodeUpload, *u);
  u->parts.clear();
  const uint32_t n = in.Count();
  for (uint32_t i = 0; i < n && in.ok(); ++i) {
    PartRecord part;
    Get(in, &part);
    if (!u->parts.empty() && u->parts.rbegin()->first >= part.part_number) return in.Fail();
    const uint32_t number = part.part_number;
    u->parts.emplace(number, std::move(part));
  }
}

void Put(Out& out, const UserRecord& u) {
  out.Str(u.name);
  out.Str(format::EncodeUser(format::UserKey(u.name), u));
}
void Get(In& in, UserRecord* u) {
  const std::string name = in.Str();
  const std::string value = in.Str();
  const std::string db_key = format::UserKey(name);
  GetRecordValue(in, db_key, value, format::DecodeUser, u);
  u->name = name;
  CheckCanonical(in, db_key, value, format::EncodeUser, *u);
}

void Put(Out& out, const AccessKeyRecord& k) {
  out.Str(k.access_key);
  out.Str(format::EncodeAccessKey(format::AccessKeyKey(k.access_key), k));
}
void Get(In& in, AccessKeyRecord* k) {
  const std::string access_key = in.Str();
  const std::string value = in.Str();
  const std::string db_key = format::AccessKeyKey(access_key);
  GetRecordValue(in, db_key, value, format::DecodeAccessKey, k);
  k->access_key = access_key;
  CheckCanonical(in, db_key, value, format::EncodeAccessKey, *k);
}

void Put(Out& out, const ChunkRef& c) {
  out.U64(c.id.hi);
  out.U64(c.id.lo);
  out.U64(c.offset);
  out.U32(c.length);
  out.U32(c.crc32c);
}
void Get(In& in, ChunkRef* c) {
  c->id.hi = in.U64();
  c->id.lo = in.U64();
  c->offset = in.U64();
  c->length = in.U32();
  c->crc32c = in.U32();
}

void Put(Out& out, const Acl& acl) {
  out.Str(acl.owner);
  out.U32(static_cast<uint32_t>(acl.grants.size()));
  for (const Grant& g : acl.grants) {
    out.U8(static_cast<uint8_t>(g.type));
    out.Str(g.grantee);
    out.U8(static_cast<uint8_t>(g.permission));
  }
}
void Get(In& in, Acl* acl) {
  acl->owner = in.Str();
  acl->grants.clear();
  const uint32_t n = in.Count();
  for (uint32_t i = 0; i < n && in.ok(); ++i) {
    Grant g;
    const uint8_t type = in.U8();
    g.grantee = in.Str();
    const uint8_t permission = in.U8();
    if (type < static_cast<uint8_t>(GranteeType::kCanonicalUser) || type > static_cast<uint8_t>(GranteeType::kGroup) ||
        permission < static_cast<uint8_t>(AclPermission::kRead) ||
        permission > static_cast<uint8_t>(AclPermission::kFullControl)) {
      return in.Fail();
    }
    g.type = static_cast<GranteeType>(type);
    g.permission = static_cast<AclPermission>(permission);
    acl->grants.push_back(std::move(g));
  }
}

void Put(Out& out, const CompletedPart& p) {
  out.U32(p.part_number);
  out.Str(p.etag);
}
void Get(In& in, CompletedPart* p) {
  p->part_number = in.U32();
  p->etag = in.Str();
}

template <typename T>
void Put(Out& out, const std::optional<T>& v) {
  out.U8(v ? kPresent : kAbsent);
  if (v) Put(out, *v);
}
template <typename T>
void Get(In& in, std::optional<T>* v) {
  v->reset();
  if (in.Bool()) Get(in, &v->emplace());
}

template <typename T>
void Put(Out& out, const std::vector<T>& v) {
  out.U32(static_cast<uint32_t>(v.size()));
  for (const T& item : v) Put(out, item);
}
template <typename T>
void Get(In& in, std::vector<T>* v) {
  v->clear();
  const uint32_t n = in.Count();
  for (uint32_t i = 0; i < n && in.ok(); ++i) Get(in, &v->emplace_back());
}

void Put(Out& out, const WritePrecondition& p) {
  Put(out, p.if_match_etag);
  out.Bool(p.must_not_exist);
}
void Get(In& in, WritePrecondition* p) {
  Get(in, &p->if_match_etag);
  p->must_not_exist = in.Bool();
}

void Put(Out& out, const BucketIdentity& b) {
  out.Str(b.owner);
  out.I64(b.created_ms);
}
void Get(In& in, BucketIdentity* b) {
  b->owner = in.Str();
  b->created_ms = in.I64();
}

void Put(Out& out, const ObjectVersion& v) {
  out.Str(v.etag);
  out.I64(v.last_modified_ms);
}
void Get(In& in, ObjectVersion* v) {
  v->etag = in.Str();
  v->last_modified_ms = in.I64();
}

void Put(Out& out, const ListObjectsOptions& o) {
  out.Str(o.prefix);
  out.Str(o.delimiter);
  out.Str(o.start_after);
  out.U32(o.max_keys);
}
void Get(In& in, ListObjectsOptions* o) {
  o->prefix = in.Str();
  o->delimiter = in.Str();
  o->start_after = in.Str();
  o->max_keys = in.U32();
}

void Put(Out& out, const ListUploadsOptions& o) {
  out.Str(o.prefix);
  out.Str(o.key_marker);
  out.Str(o.upload_id_marker);
  out.U32(o.max_uploads);
}
void Get(In& in, ListUploadsOptions* o) {
  o->prefix = in.Str();
  o->key_marker = in.Str();
  o->upload_id_marker = in.Str();
  o->max_uploads = in.U32();
}

void Put(Out& out, const ListObjectsResult& r) {
  Put(out, r.objects);
  Put(out, r.common_prefixes);
  out.Bool(r.is_truncated);
  out.Str(r.next_start_after);
}
void Get(In& in, ListObjectsResult* r) {
  Get(in, &r->objects);
  Get(in, &r->common_prefixes);
  r->is_truncated = in.Bool();
  r->next_start_after = in.Str();
}

void Put(Out& out, const ListPartsResult& r) {
  Put(out, r.parts);
  out.Bool(r.is_truncated);
  out.U32(r.next_part_number_marker);
}
void Get(In& in, ListPartsResult* r) {
  Get(in, &r->parts);
  r->is_truncated = in.Bool();
  r->next_part_number_marker = in.U32();
}

void Put(Out& out, const ListUploadsResult& r) {
  Put(out, r.uploads);
  out.Bool(r.is_truncated);
  out.Str(r.next_key_marker);
  out.Str(r.next_upload_id_marker);
}
void Get(In& in, ListUploadsResult* r) {
  Get(in, &r->uploads);
  r->is_truncated = in.Bool();
  r->next_key_marker = in.Str();
  r->next_upload_id_marker = in.Str();
}

void Put(Out& out, const CompleteUploadResult& r) {
  Put(out, r.object);
  Put(out, r.replaced);
  Put(out, r.unused_chunks);
}
void Get(In& in, CompleteUploadResult* r) {
  Get(in, &r->object);
  Get(in, &r->replaced);
  Get(in, &r->unused_chunks);
}

void Put(Out& out, const logic::ChunkRefPage& p) {
  Put(out, p.chunks);
  out.Str(p.next_after_key);
}
void Get(In& in, logic::ChunkRefPage* p) {
  Get(in, &p->chunks);
  p->next_after_key = in.Str();
}

// Names in ascending order, each once.
void Put(Out& out, const std::map<std::string, uint64_t>& m) {
  out.U32(static_cast<uint32_t>(m.size()));
  for (const auto& [name, value] : m) {
    out.Str(name);
    out.U64(value);
  }
}
void Get(In& in, std::map<std::string, uint64_t>* m) {
  m->clear();
  const uint32_t n = in.Count();
  for (uint32_t i = 0; i < n && in.ok(); ++i) {
    std::string name = in.Str();
    const uint64_t value = in.U64();
    if (!m->empty() && m->rbegin()->first >= name) return in.Fail();
    m->emplace(std::move(name), value);
  }
}

// ---- Commands -------------------------------------------------------------------------------------

void PutFields(Out& out, const command::CreateBucket& c) { Put(out, c.bucket); }
void GetFields(In& in, command::CreateBucket* c) { Get(in, &c->bucket); }
void PutFields(Out& out, const command::DeleteBucket& c) {
  out.Str(c.bucket);
  Put(out, c.expected);
}
void GetFields(In& in, command::DeleteBucket* c) {
  c->bucket = in.Str();
  Get(in, &c->expected);
}
void PutFields(Out& out, const command::UpdateBucket& c) {
  out.Str(c.bucket);
  Put(out, c.expected);
  Put(out, c.updated);
}
void GetFields(In& in, command::UpdateBucket* c) {
  c->bucket = in.Str();
  Get(in, &c->expected);
  Get(in, &c->updated);
}
void PutFields(Out& out, const command::PutObject& c) {
  Put(out, c.record);
  Put(out, c.precondition);
}
void GetFields(In& in, command::PutObject* c) {
  Get(in, &c->record);
  Get(in, &c->precondition);
}
void PutFields(Out& out, const command::SetObjectAcl& c) {
  out.Str(c.bucket);
  out.Str(c.key);
  Put(out, c.acl);
  Put(out, c.expected);
}
void GetFields(In& in, command::SetObjectAcl* c) {
  c->bucket = in.Str();
  c->key = in.Str();
  Get(in, &c->acl);
  Get(in, &c->expected);
}
void PutFields(Out& out, const command::DeleteObject& c) {
  out.Str(c.bucket);
  out.Str(c.key);
}
void GetFields(In& in, command::DeleteObject* c) {
  c->bucket = in.Str();
  c->key = in.Str();
}
// The upload without its parts (MultipartUpload's encoding with a part count of 0).
void PutFields(Out& out, const command::CreateUpload& c) {
  MultipartUpload upload = c.upload;
  upload.parts.clear();
  Put(out, upload);
}
void GetFields(In& in, command::CreateUpload* c) {
  Get(in, &c->upload);
  if (!c->upload.parts.empty()) in.Fail();
}
void PutFields(Out& out, const command::PutPart& c) {
  out.Str(c.bucket);
  out.Str(c.key);
  out.Str(c.upload_id);
  Put(out, c.part);
}
void GetFields(In& in, command::PutPart* c) {
  c->bucket = in.Str();
  c->key = in.Str();
  c->upload_id = in.Str();
  Get(in, &c->part);
}
void PutFields(Out& out, const command::CompleteUpload& c) {
  out.Str(c.bucket);
  out.Str(c.key);
  out.Str(c.upload_id);
  Put(out, c.parts);
  out.Str(c.etag);
  out.I64(c.last_modified_ms);
  Put(out, c.precondition);
}
void GetFields(In& in, command::CompleteUpload* c) {
  c->bucket = in.Str();
  c->key = in.Str();
  c->upload_id = in.Str();
  Get(in, &c->parts);
  c->etag = in.Str();
  c->last_modified_ms = in.I64();
  Get(in, &c->precondition);
}
void PutFields(Out& out, const command::AbortUpload& c) {
  out.Str(c.bucket);
  out.Str(c.key);
  out.Str(c.upload_id);
}
void GetFields(In& in, command::AbortUpload* c) {
  c->bucket = in.Str();
  c->key = in.Str();
  c->upload_id = in.Str();
}
void PutFields(Out& out, const command::CreateUser& c) { Put(out, c.user); }
void GetFields(In& in, command::CreateUser* c) { Get(in, &c->user); }
void PutFields(Out& out, const command::DeleteUser& c) { out.Str(c.name); }
void GetFields(In& in, command::DeleteUser* c) { c->name = in.Str(); }
void PutFields(Out& out, const command::CreateAccessKey& c) { Put(out, c.key); }
void GetFields(In& in, command::CreateAccessKey* c) { Get(in, &c->key); }
void PutFields(Out& out, const command::SetAccessKeyEnabled& c) {
  out.Str(c.access_key);
  out.Bool(c.enabled);
}
void GetFields(In& in, command::SetAccessKeyEnabled* c) {
  c->access_key = in.Str();
  c->enabled = in.Bool();
}
void PutFields(Out& out, const command::DeleteAccessKey& c) { out.Str(c.access_key); }
void GetFields(In& in, command::DeleteAccessKey* c) { c->access_key = in.Str(); }

// ---- Queries --------------------------------------------------------------------------------------

void PutFields(Out& out, const query::GetBucket& q) { out.Str(q.bucket); }
void GetFields(In& in, query::GetBucket* q) { q->bucket = in.Str(); }
void PutFields(Out&, const query::ListBuckets&) {}
void GetFields(In&, query::ListBuckets*) {}
void PutFields(Out& out, const query::GetObject& q) {
  out.Str(q.bucket);
  out.Str(q.key);
}
void GetFields(In& in, query::GetObject* q) {
  q->bucket = in.Str();
  q->key = in.Str();
}
void PutFields(Out& out, const query::ListObjects& q) {
  out.Str(q.bucket);
  Put(out, q.options);
}
void GetFields(In& in, query::ListObjects* q) {
  q->bucket = in.Str();
  Get(in, &q->options);
}
void PutFields(Out& out, const query::GetUpload& q) {
  out.Str(q.bucket);
  out.Str(q.key);
  out.Str(q.upload_id);
}
void GetFields(In& in, query::GetUpload* q) {
  q->bucket = in.Str();
  q->key = in.Str();
  q->upload_id = in.Str();
}
void PutFields(Out& out, const query::GetUploadInfo& q) {
  out.Str(q.bucket);
  out.Str(q.key);
  out.Str(q.upload_id);
}
void GetFields(In& in, query::GetUploadInfo* q) {
  q->bucket = in.Str();
  q->key = in.Str();
  q->upload_id = in.Str();
}
void PutFields(Out& out, const query::ListParts& q) {
  out.Str(q.bucket);
  out.Str(q.key);
  out.Str(q.upload_id);
  out.U32(q.part_number_marker);
  out.U32(q.max_parts);
}
void GetFields(In& in, query::ListParts* q) {
  q->bucket = in.Str();
  q->key = in.Str();
  q->upload_id = in.Str();
  q->part_number_marker = in.U32();
  q->max_parts = in.U32();
}
void PutFields(Out& out, const query::ListUploads& q) {
  out.Str(q.bucket);
  Put(out, q.options);
}
void GetFields(In& in, query::ListUploads* q) {
  q->bucket = in.Str();
  Get(in, &q->options);
}
void PutFields(Out&, const query::ListUsers&) {}
void GetFields(In&, query::ListUsers*) {}
void PutFields(Out&, const query::ListAccessKeys&) {}
void GetFields(In&, query::ListAccessKeys*) {}
void PutFields(Out& out, const query::ListChunkRefs& q) {
  out.Str(q.after_key);
  out.U32(q.max_chunks);
}
void GetFields(In& in, query::ListChunkRefs* q) {
  q->after_key = in.Str();
  q->max_chunks = in.U32();
}
void PutFields(Out&, const query::Stats&) {}
void GetFields(In&, query::Stats*) {}

// Version, tag (first_tag + the alternative's index), fields.
template <typename Variant>
std::string EncodeVariant(const Variant& message, uint8_t first_tag) {
  Out out;
  out.U8(kMetaCodecVersion);
  out.U8(static_cast<uint8_t>(first_tag + message.index()));
  std::visit([&](const auto& m) { PutFields(out, m); }, message);
  return out.Take();
}

// Decodes alternative `index` of Variant (index < its size), by recursion over the indices.
template <typename Variant, size_t I = 0>
bool DecodeAlternative(In& in, size_t index, Variant* out) {
  if constexpr (I < std::variant_size_v<Variant>) {
    if (index != I) return DecodeAlternative<Variant, I + 1>(in, index, out);
    GetFields(in, &out->template emplace<I>());
    return true;
  } else {
    return false;
  }
}

template <typename Variant>
Result<Variant> DecodeVariant(std::string_view bytes, uint8_t first_tag, std::string_view what) {
  In in(bytes);
  const uint8_t version = in.U8();
  const uint8_t tag = in.U8();
  if (!in.ok()) return Status::InvalidArgument(std::string(what) + ": truncated header");
  if (version != kMetaCodecVersion) {
    return Status::InvalidArgument(std::string(what) + ": unknown version " + std::to_string(version));
  }
  if (tag < first_tag || static_cast<size_t>(tag - first_tag) >= std::variant_size_v<Variant>) {
    return Status::InvalidArgument(std::string(what) + ": unknown tag " + std::to_string(tag));
  }
  Variant message;
  if (!DecodeAlternative(in, tag - first_tag, &message) || !in.ok() || !in.AtEnd()) {
    return Status::InvalidArgument(std::string(what) + ": malformed fields for tag " + std::to_string(tag));
  }
  return message;
}

// ---- Replies --------------------------------------------------------------------------------------

// The ReplyValue alternative index of each type.
template <typename T, size_t I = 0>
constexpr size_t IndexOf() {
  if constexpr (std::is_same_v<std::variant_alternative_t<I, ReplyValue>, T>) {
    return I;
  } else {
    return IndexOf<T, I + 1>();
  }
}

// Calls fn with a value of the alternative `index` of ReplyValue default-constructed, typed.
template <typename Fn, size_t I = 0>
void WithAlternative(size_t index, Fn&& fn) {
  if constexpr (I < std::variant_size_v<ReplyValue>) {
    if (index != I) return WithAlternative<Fn, I + 1>(index, std::forward<Fn>(fn));
    fn(std::variant_alternative_t<I, ReplyValue>{});
  }
}

bool KnownOp(uint8_t tag_byte) {
  const size_t tag = tag_byte;
  return (tag >= kFirstCommandTag && tag < kFirstCommandTag + std::variant_size_v<Command>) ||
         (tag >= kFirstQueryTag && tag < kFirstQueryTag + std::variant_size_v<Query>);
}

// ---- Execution --------------------------------------------------------------------------------

// Collects an operation's writes as KvMutations in order; counter deltas are summed per name and
// resolved against the state by Finish.
class MutationCollector final : public KvWriter {
 public:
  void Put(std::string_view key, std::string_view value) override {
    mutations_.push_back(KvMutation{std::string(key), std::string(value)});
  }
  void Delete(std::string_view key) override { mutations_.push_back(KvMutation{std::string(key), std::nullopt}); }
  void AddCounter(std::string_view name, int64_t delta) override {
    // Two's-complement wrap, as the RocksDB merge operator adds.
    uint64_t& sum = deltas_[std::string(name)];
    sum += static_cast<uint64_t>(delta);
  }

  // The mutations, each changed counter last as a put of its new value, in name order.
  Result<std::vector<KvMutation>> Finish(const KvReader& state) && {
    for (const auto& [name, delta] : deltas_) {
      if (delta == 0) continue;
      const std::string key = format::CounterKey(name);
      CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> current, state.Get(key));
      uint64_t value = 0;
      if (current) {
        const std::optional<int64_t> decoded = format::DecodeCounter(*current);
        if (!decoded) return Status::Corruption("counter " + name);
        value = static_cast<uint64_t>(*decoded);
      }
      mutations_.push_back(KvMutation{key, format::EncodeCounter(static_cast<int64_t>(value + delta))});
    }
    return std::move(mutations_);
  }

 private:
  std::vector<KvMutation> mutations_;
  std::map<std::string, uint64_t> deltas_;
};

Reply Failed(MetaOp op, Status status) { return Reply{op, std::move(status), std::monostate()}; }

template <typename T>
Reply FromResult(MetaOp op, Result<T> result) {
  if (!result.ok()) return Failed(op, result.status());
  return Reply{op, Status::OK(), std::move(result).value()};
}

Reply FromStatus(MetaOp op, Status status) {
  if (!status.ok()) return Failed(op, std::move(status));
  return Reply{op, Status::OK(), std::monostate()};
}

// Runs one decoded command; its writes go to `w`.
Reply RunCommand(const KvReader& r, KvWriter& w, const Command& command) {
  const MetaOp op = OpOf(command);
  return std::visit(
      [&](const auto& c) -> Reply {
        using C = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<C, command::CreateBucket>) {
          return FromStatus(op, logic::CreateBucket(r, w, c.bucket));
        } else if constexpr (std::is_same_v<C, command::DeleteBucket>) {
          std::optional<BucketInfo> expected;
          if (c.expected) expected = BucketInfo{.owner = c.expected->owner, .created_ms = c.expected->created_ms};
          return FromStatus(op, logic::DeleteBucket(r, w, c.bucket, expected ? &*expected : nullptr));
        } else if constexpr (std::is_same_v<C, command::UpdateBucket>) {
          bool swapped = true;
          const Status s = logic::UpdateBucket(r, w, c.bucket, [&](BucketInfo* b) {
            if (!(*b == c.expected)) {
              swapped = false;
              return Status::PreconditionFailed("the bucket changed");  // turned into swapped=false below
            }
            *b = c.updated;
            return Status::OK();
          });
          if (!swapped) return Reply{op, Status::OK(), false};
          if (!s.ok()) return Failed(op, s);
          return Reply{op, Status::OK(), true};
        } else if constexpr (std::is_same_v<C, command::PutObject>) {
          std::optional<ObjectRecord> replaced;
          const Status s = logic::PutObject(r, w, c.record, c.precondition, &replaced);
          if (!s.ok()) return Failed(op, s);
          return Reply{op, Status::OK(), std::move(replaced)};
        } else if constexpr (std::is_same_v<C, command::SetObjectAcl>) {
          std::optional<ObjectRecord> expected;
          if (c.expected) {
            expected.emplace();
            expected->etag = c.expected->etag;
            expected->last_modified_ms = c.expected->last_modified_ms;
          }
          return FromStatus(op, logic::SetObjectAcl(r, w, c.bucket, c.key, c.acl, expected ? &*expected : nullptr));
        } else if constexpr (std::is_same_v<C, command::DeleteObject>) {
          return FromResult(op, logic::DeleteObject(r, w, c.bucket, c.key));
        } else if constexpr (std::is_same_v<C, command::CreateUpload>) {
          return FromResult(op, logic::CreateUpload(r, w, c.upload));
        } else if constexpr (std::is_same_v<C, command::PutPart>) {
          std::optional<PartRecord> replaced;
          const Status s = logic::PutPart(r, w, c.bucket, c.key, c.upload_id, c.part, &replaced);
          if (!s.ok()) return Failed(op, s);
          return Reply{op, Status::OK(), std::move(replaced)};
        } else if constexpr (std::is_same_v<C, command::CompleteUpload>) {
          return FromResult(op, logic::CompleteUpload(r, w, c.bucket, c.key, c.upload_id, c.parts, c.etag,
                                                      c.last_modified_ms, c.precondition));
        } else if constexpr (std::is_same_v<C, command::AbortUpload>) {
          return FromResult(op, logic::AbortUpload(r, w, c.bucket, c.key, c.upload_id));
        } else if constexpr (std::is_same_v<C, command::CreateUser>) {
          return FromStatus(op, logic::CreateUser(r, w, c.user));
        } else if constexpr (std::is_same_v<C, command::DeleteUser>) {
          return FromResult(op, logic::DeleteUser(r, w, c.name));
        } else if constexpr (std::is_same_v<C, command::CreateAccessKey>) {
          return FromStatus(op, logic::CreateAccessKey(r, w, c.key));
        } else if constexpr (std::is_same_v<C, command::SetAccessKeyEnabled>) {
          return FromStatus(op, logic::SetAccessKeyEnabled(r, w, c.access_key, c.enabled));
        } else {
          static_assert(std::is_same_v<C, command::DeleteAccessKey>);
          return FromStatus(op, logic::DeleteAccessKey(r, w, c.access_key));
        }
      },
      command);
}

Reply RunQuery(const KvReader& r, const Query& query) {
  const MetaOp op = OpOf(query);
  return std::visit(
      [&](const auto& q) -> Reply {
        using Q = std::decay_t<decltype(q)>;
        if constexpr (std::is_same_v<Q, query::GetBucket>) {
          return FromResult(op, logic::GetBucket(r, q.bucket));
        } else if constexpr (std::is_same_v<Q, query::ListBuckets>) {
          return FromResult(op, logic::ListBuckets(r));
        } else if constexpr (std::is_same_v<Q, query::GetObject>) {
          return FromResult(op, logic::GetObject(r, q.bucket, q.key));
        } else if constexpr (std::is_same_v<Q, query::ListObjects>) {
          return FromResult(op, logic::ListObjects(r, q.bucket, q.options));
        } else if constexpr (std::is_same_v<Q, query::GetUpload>) {
          return FromResult(op, logic::GetUpload(r, q.bucket, q.key, q.upload_id));
        } else if constexpr (std::is_same_v<Q, query::GetUploadInfo>) {
          return FromResult(op, logic::GetUploadInfo(r, q.bucket, q.key, q.upload_id));
        } else if constexpr (std::is_same_v<Q, query::ListParts>) {
          return FromResult(op, logic::ListParts(r, q.bucket, q.key, q.upload_id, q.part_number_marker, q.max_parts));
        } else if constexpr (std::is_same_v<Q, query::ListUploads>) {
          return FromResult(op, logic::ListUploads(r, q.bucket, q.options));
        } else if constexpr (std::is_same_v<Q, query::ListUsers>) {
          return FromResult(op, logic::ListUsers(r));
        } else if constexpr (std::is_same_v<Q, query::ListAccessKeys>) {
          return FromResult(op, logic::ListAccessKeys(r));
        } else if constexpr (std::is_same_v<Q, query::ListChunkRefs>) {
          return FromResult(op, logic::ListChunkRefs(r, q.after_key, q.max_chunks));
        } else {
          static_assert(std::is_same_v<Q, query::Stats>);
          return FromResult(op, logic::ReadCounters(r));
        }
      },
      query);
}

// A reader that remembers the first error it or one of its iterators returned.
class ErrorRecordingReader final : public KvReader {
 public:
  explicit ErrorRecordingReader(const KvReader* reader) : reader_(reader) {}

  Result<std::optional<std::string>> Get(std::string_view key) const override {
    Result<std::optional<std::string>> value = reader_->Get(key);
    if (!value.ok()) Record(value.status());
    return value;
  }
  std::unique_ptr<KvIterator> NewIterator() const override {
    return std::make_unique<Iterator>(reader_->NewIterator(), this);
  }
  const Status& first_error() const { return first_error_; }

 private:
  class Iterator final : public KvIterator {
   public:
    Iterator(std::unique_ptr<KvIterator> it, const ErrorRecordingReader* reader)
        : it_(std::move(it)), reader_(reader) {}
    void Seek(std::string_view key) override { it_->Seek(key); }
    void Next() override { it_->Next(); }
    bool Valid() const override { return it_->Valid(); }
    std::string_view key() const override { return it_->key(); }
    std::string_view value() const override { return it_->value(); }
    Status status() const override {
      Status s = it_->status();
      if (!s.ok()) reader_->Record(s);
      return s;
    }

   private:
    std::unique_ptr<KvIterator> it_;
    const ErrorRecordingReader* reader_;
  };

  void Record(const Status& s) const {
    if (first_error_.ok()) first_error_ = s;
  }

  const KvReader* reader_;
  mutable Status first_error_;  // one query, one thread
};

std::string ExceptionMessage(std::string_view what) {
  try {
    throw;
  } catch (const std::exception& e) {
    return std::string(what) + ": exception: " + e.what();
  } catch (...) {
    return std::string(what) + ": unknown exception";
  }
}

}  // namespace

MetaOp OpOf(const Command& command) { return static_cast<MetaOp>(kFirstCommandTag + command.index()); }
MetaOp OpOf(const Query& query) { return static_cast<MetaOp>(kFirstQueryTag + query.index()); }

size_t ReplyValueIndex(MetaOp op) {
  switch (op) {
    case MetaOp::kNone:
    case MetaOp::kCreateBucket:
    case MetaOp::kDeleteBucket:
    case MetaOp::kSetObjectAcl:
    case MetaOp::kCreateUser:
    case MetaOp::kCreateAccessKey:
    case MetaOp::kSetAccessKeyEnabled:
    case MetaOp::kDeleteAccessKey:
      return IndexOf<std::monostate>();
    case MetaOp::kUpdateBucket:
      return IndexOf<bool>();
    case MetaOp::kPutObject:
      return IndexOf<std::optional<ObjectRecord>>();
    case MetaOp::kDeleteObject:
    case MetaOp::kGetObject:
      return IndexOf<ObjectRecord>();
    case MetaOp::kCreateUpload:
      return IndexOf<std::string>();
    case MetaOp::kPutPart:
      return IndexOf<std::optional<PartRecord>>();
    case MetaOp::kCompleteUpload:
      return IndexOf<CompleteUploadResult>();
    case MetaOp::kAbortUpload:
      return IndexOf<std::vector<ChunkRef>>();
    case MetaOp::kDeleteUser:
    case MetaOp::kListAccessKeys:
      return IndexOf<std::vector<AccessKeyRecord>>();
    case MetaOp::kGetBucket:
      return IndexOf<BucketInfo>();
    case MetaOp::kListBuckets:
      return IndexOf<std::vector<BucketInfo>>();
    case MetaOp::kListObjects:
      return IndexOf<ListObjectsResult>();
    case MetaOp::kGetUpload:
    case MetaOp::kGetUploadInfo:
      return IndexOf<MultipartUpload>();
    case MetaOp::kListParts:
      return IndexOf<ListPartsResult>();
    case MetaOp::kListUploads:
      return IndexOf<ListUploadsResult>();
    case MetaOp::kListUsers:
      return IndexOf<std::vector<UserRecord>>();
    case MetaOp::kListChunkRefs:
      return IndexOf<logic::ChunkRefPage>();
    case MetaOp::kStats:
      return IndexOf<std::map<std::string, uint64_t>>();
  }
  return IndexOf<std::monostate>();
}

std::string EncodeCommand(const Command& command) { return EncodeVariant(command, kFirstCommandTag); }

Result<Command> DecodeCommand(std::string_view bytes) {
  return DecodeVariant<Command>(bytes, kFirstCommandTag, "meta command");
}

std::string EncodeQuery(const Query& query) { return EncodeVariant(query, kFirstQueryTag); }

Result<Query> DecodeQuery(std::string_view bytes) { return DecodeVariant<Query>(bytes, kFirstQueryTag, "meta query"); }

// Version, op, status code (u16), status message (str), then the value when the status is OK.
std::string EncodeReply(const Reply& reply) {
  Status status = reply.status;
  if (status.ok() && reply.value.index() != ReplyValueIndex(reply.op)) {
    status = Status::Internal("meta reply: the value does not match the operation");
  }
  Out out;
  out.U8(kMetaCodecVersion);
  out.U8(static_cast<uint8_t>(reply.op));
  out.U16(static_cast<uint16_t>(status.code()));
  out.Str(status.message());
  if (status.ok()) {
    std::visit(
        [&](const auto& v) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(v)>, std::monostate>) Put(out, v);
        },
        reply.value);
  }
  return out.Take();
}

Result<Reply> DecodeReply(std::string_view bytes) {
  In in(bytes);
  const uint8_t version = in.U8();
  const uint8_t tag = in.U8();
  const uint16_t code = in.U16();
  std::string message = in.Str();
  if (!in.ok()) return Status::Corruption("meta reply: truncated header");
  if (version != kMetaCodecVersion) return Status::Corruption("meta reply: unknown version " + std::to_string(version));
  if (tag != static_cast<uint8_t>(MetaOp::kNone) && !KnownOp(tag)) {
    return Status::Corruption("meta reply: unknown tag " + std::to_string(tag));
  }
  if (!KnownStatusCode(code)) return Status::Corruption("meta reply: unknown status code " + std::to_string(code));
  Reply reply;
  reply.op = static_cast<MetaOp>(tag);
  reply.status = Status(static_cast<StatusCode>(code), message);
  // An OK status carries no message; the reply to undecodable bytes is never OK.
  if (reply.status.ok() && (!message.empty() || reply.op == MetaOp::kNone)) {
    return Status::Corruption("meta reply: malformed status");
  }
  if (reply.status.ok()) {
    WithAlternative(ReplyValueIndex(reply.op), [&](auto value) {
      using T = decltype(value);
      if constexpr (!std::is_same_v<T, std::monostate>) Get(in, &value);
      reply.value = std::move(value);
    });
  }
  if (!in.ok() || !in.AtEnd()) return Status::Corruption("meta reply: malformed value");
  return reply;
}

CommandOutcome ExecuteCommand(const KvReader& state, std::string_view command) {
  try {
    Result<Command> decoded = DecodeCommand(command);
    if (!decoded.ok()) return CommandOutcome{{}, EncodeReply(Failed(MetaOp::kNone, decoded.status()))};
    MutationCollector writer;
    Reply reply = RunCommand(state, writer, *decoded);
    if (!reply.status.ok()) return CommandOutcome{{}, EncodeReply(reply)};
    Result<std::vector<KvMutation>> mutations = std::move(writer).Finish(state);
    if (!mutations.ok()) return CommandOutcome{{}, EncodeReply(Failed(reply.op, mutations.status()))};
    return CommandOutcome{std::move(mutations).value(), EncodeReply(reply)};
  } catch (...) {
    return CommandOutcome{{}, EncodeReply(Failed(MetaOp::kNone, Status::Internal(ExceptionMessage("meta command"))))};
  }
}

std::string ExecuteQuery(const KvReader& state, std::string_view query) {
  try {
    Result<Query> decoded = DecodeQuery(query);
    if (!decoded.ok()) return EncodeReply(Failed(MetaOp::kNone, decoded.status()));
    return EncodeReply(RunQuery(state, *decoded));
  } catch (...) {
    return EncodeReply(Failed(MetaOp::kNone, Status::Internal(ExceptionMessage("meta query"))));
  }
}

Result<std::string> ExecuteQueryOrReaderError(const KvReader& state, std::string_view query) {
  const ErrorRecordingReader reader(&state);
  std::string reply = ExecuteQuery(reader, query);
  if (!reader.first_error().ok()) return reader.first_error();
  return reply;
}

}  // namespace cairn::meta
