// Encoding and decoding of the metadata keys and values; the layouts are in meta/format.h and
// docs/formats/meta.md. Thread-safety: pure functions.
#include "meta/format.h"

#include <cstring>

#include "common/crc32c.h"

namespace cairn::meta::format {
namespace {

constexpr char kNul = '\0';
// Escaping of NUL inside an upload key's object key, and the terminator after it.
constexpr char kEscapedNulSecond = '\xff';
constexpr char kKeyTerminatorSecond = '\x01';
// Flags of an object record (meta.md, "Object record").
constexpr uint64_t kObjectFlagDeleteMarker = 1;
// Smallest encoded size of one ChunkRef: id 16, offset and length varints 1 each, crc 4.
constexpr size_t kMinChunkRefSize = 22;

void AppendEscaped(std::string* out, std::string_view key) {
  for (char c : key) {
    out->push_back(c);
    if (c == kNul) out->push_back(kEscapedNulSecond);
  }
}

// ---- Writer -------------------------------------------------------------------------------

class Writer {
 public:
  explicit Writer(ValueType type) {
    buf_.push_back(static_cast<char>(type));
    buf_.push_back(static_cast<char>(kFormatVersion));
  }
  void U8(uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
  }
  void Fixed32(uint32_t v) {
    for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void Fixed64(uint64_t v) {
    for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void String(std::string_view s) {
    Varint(s.size());
    buf_.append(s);
  }
  void Chunks(const std::vector<ChunkRef>& chunks) {
    Varint(chunks.size());
    for (const ChunkRef& c : chunks) {
      Fixed64(c.id.hi);
      Fixed64(c.id.lo);
      Varint(c.offset);
      Varint(c.length);
      Fixed32(c.crc32c);
    }
  }
  void Metadata(const UserMetadata& md) {
    Varint(md.size());
    for (const auto& [name, value] : md) {
      String(name);
      String(value);
    }
  }
  void AclValue(const Acl& acl) {
    String(acl.owner);
    Varint(acl.grants.size());
    for (const Grant& g : acl.grants) {
      U8(static_cast<uint8_t>(g.type));
      String(g.grantee);
      U8(static_cast<uint8_t>(g.permission));
    }
  }
  std::string Finish(std::string_view db_key) {
    uint32_t crc = crc32c::Value(db_key.data(), db_key.size());
    crc = crc32c::Extend(crc, buf_.data(), buf_.size());
    Fixed32(crc);
    return std::move(buf_);
  }

 private:
  std::string buf_;
};

// ---- Reader -------------------------------------------------------------------------------

// Reads a body; every read fails (and latches failure) rather than run past the end.
class Reader {
 public:
  explicit Reader(std::string_view body) : in_(body) {}
  bool ok() const { return ok_; }
  bool AtEnd() const { return in_.empty(); }

  uint8_t U8() {
    if (!Need(1)) return 0;
    uint8_t v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (!Need(1)) return 0;
      uint8_t b = static_cast<uint8_t>(in_[0]);
      in_.remove_prefix(1);
      v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok_ = false;  // more than 10 bytes
    return 0;
  }
  uint32_t Varint32() {
    uint64_t v = Varint();
    if (v > UINT32_MAX) ok_ = false;
    return static_cast<uint32_t>(v);
  }
  uint32_t Fixed32() {
    if (!Need(4)) return 0;
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in_[i]);
    in_.remove_prefix(4);
    return v;
  }
  uint64_t Fixed64() {
    if (!Need(8)) return 0;
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(in_[i]);
    in_.remove_prefix(8);
    return v;
  }
  std::string String() {
    uint64_t n = Varint();
    if (!Need(n)) return {};
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  // A count of items each at least `min_size` bytes long, checked against what is left so that
  // a damaged count cannot make the decoder allocate without bound.
  uint64_t Count(size_t min_size) {
    uint64_t n = Varint();
    if (ok_ && n > in_.size() / min_size) ok_ = false;
    return ok_ ? n : 0;
  }
  std::vector<ChunkRef> Chunks() {
    std::vector<ChunkRef> out(Count(kMinChunkRefSize));
    for (ChunkRef& c : out) {
      c.id.hi = Fixed64();
      c.id.lo = Fixed64();
      c.offset = Varint();
      c.length = Varint32();
      c.crc32c = Fixed32();
    }
    return out;
  }
  Acl AclValue() {
    Acl acl;
    acl.owner = String();
    acl.grants.resize(Count(/*min_size=*/3));
    for (Grant& g : acl.grants) {
      const uint8_t type = U8();
      g.grantee = String();
      const uint8_t permission = U8();
      if (type < static_cast<uint8_t>(GranteeType::kCanonicalUser) || type > static_cast<uint8_t>(GranteeType::kGroup) ||
          permission < static_cast<uint8_t>(AclPermission::kRead) ||
          permission > static_cast<uint8_t>(AclPermission::kFullControl)) {
        ok_ = false;
      }
      g.type = static_cast<GranteeType>(type);
      g.permission = static_cast<AclPermission>(permission);
    }
    return acl;
  }
  UserMetadata Metadata() {
    UserMetadata md(Count(/*min_size=*/2));
    for (auto& [name, value] : md) {
      name = String();
      value = String();
    }
    return md;
  }

 private:
  bool Need(uint64_t n) {
    if (!ok_ || in_.size() < n) {
      ok_ = false;
      return false;
    }
    return true;
  }

  std::string_view in_;
  bool ok_ = true;
};

// Checks the envelope of a value and returns its body in *body.
Status OpenValue(std::string_view db_key, std::string_view value, ValueType type, std::string_view* body,
                 uint8_t* version = nullptr) {
  if (value.size() < kValueHeaderSize + kValueCrcSize) return Status::Corruption("meta value too short");
  const size_t crc_at = value.size() - kValueCrcSize;
  Reader crc_reader(value.substr(crc_at));
  const uint32_t stored = crc_reader.Fixed32();
  uint32_t crc = crc32c::Value(db_key.data(), db_key.size());
  crc = crc32c::Extend(crc, value.data(), crc_at);
  if (crc != stored) return Status::Corruption("meta value crc mismatch");
  if (static_cast<uint8_t>(value[0]) != static_cast<uint8_t>(type))
    return Status::Corruption("meta value type mismatch");
  const uint8_t v = static_cast<uint8_t>(value[1]);
  if (v < kOldestFormatVersion || v > kFormatVersion) {
    return Status::NotSupported("meta value format version " + std::to_string(v));
  }
  if (version != nullptr) *version = v;
  *body = value.substr(kValueHeaderSize, crc_at - kValueHeaderSize);
  return Status::OK();
}

Status CloseReader(const Reader& r, std::string_view what) {
  if (!r.ok() || !r.AtEnd()) return Status::Corruption(std::string("malformed ") + std::string(what) + " value");
  return Status::OK();
}

void WriteHeaders(Writer* w, const ObjectHeaders& h) {
  w->String(h.content_type);
  w->String(h.content_encoding);
  w->String(h.content_disposition);
  w->String(h.cache_control);
  w->String(h.expires);
  w->Metadata(h.user_metadata);
  w->String(h.storage_class);
  w->String(h.content_language);
}

// `version`: the value's format version; version 1 had no content_language.
ObjectHeaders ReadHeaders(Reader* r, uint8_t version) {
  ObjectHeaders h;
  h.content_type = r->String();
  h.content_encoding = r->String();
  h.content_disposition = r->String();
  h.cache_control = r->String();
  h.expires = r->String();
  h.user_metadata = r->Metadata();
  h.storage_class = r->String();
  if (version >= 2) h.content_language = r->String();
  return h;
}

// Splits "<tag>name 0x00 rest" (tag = two bytes) at the first NUL after the tag.
bool SplitAtNul(std::string_view db_key, std::string_view tag, std::string_view* name, std::string_view* rest) {
  if (db_key.substr(0, tag.size()) != tag) return false;
  db_key.remove_prefix(tag.size());
  const size_t nul = db_key.find(kNul);
  if (nul == std::string_view::npos) return false;
  *name = db_key.substr(0, nul);
  *rest = db_key.substr(nul + 1);
  return true;
}

}  // namespace

// ---- Keys -----------------------------------------------------------------------------------

std::string BucketKey(std::string_view bucket) {
  std::string k(kBucketPrefix);
  k.append(bucket);
  return k;
}

std::string ObjectKeyPrefix(std::string_view bucket) {
  std::string k(kObjectPrefix);
  k.append(bucket);
  k.push_back(kNul);
  return k;
}

std::string ObjectKey(std::string_view bucket, std::string_view key) {
  std::string k = ObjectKeyPrefix(bucket);
  k.append(key);
  return k;
}

std::string UploadKeyPrefix(std::string_view bucket) {
  std::string k(kUploadPrefix);
  k.append(bucket);
  k.push_back(kNul);
  return k;
}

std::string UploadKeyPrefixForKeys(std::string_view bucket, std::string_view key_prefix) {
  std::string k = UploadKeyPrefix(bucket);
  AppendEscaped(&k, key_prefix);
  return k;
}

std::string UploadKeyPrefixForKey(std::string_view bucket, std::string_view key) {
  std::string k = UploadKeyPrefixForKeys(bucket, key);
  k.push_back(kNul);
  k.push_back(kKeyTerminatorSecond);
  return k;
}

std::string UploadKey(std::string_view bucket, std::string_view key, std::string_view upload_id) {
  std::string k = UploadKeyPrefixForKey(bucket, key);
  k.append(upload_id);
  return k;
}

bool ParseUploadKey(std::string_view db_key, std::string* bucket, std::string* key, std::string* upload_id) {
  std::string_view b, rest;
  if (!SplitAtNul(db_key, kUploadPrefix, &b, &rest)) return false;
  std::string k;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] != kNul) {
      k.push_back(rest[i]);
      continue;
    }
    if (i + 1 >= rest.size()) return false;
    if (rest[i + 1] == kEscapedNulSecond) {
      k.push_back(kNul);
      ++i;
    } else if (rest[i + 1] == kKeyTerminatorSecond) {
      *bucket = std::string(b);
      *key = std::move(k);
      *upload_id = std::string(rest.substr(i + 2));
      return !upload_id->empty();
    } else {
      return false;
    }
  }
  return false;
}

std::string PartKeyPrefix(std::string_view upload_id) {
  std::string k(kPartPrefix);
  k.append(upload_id);
  k.push_back(kNul);
  return k;
}

std::string PartKey(std::string_view upload_id, uint32_t part_number) {
  std::string k = PartKeyPrefix(upload_id);
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>(part_number >> (8 * i)));
  return k;
}

std::string CounterKey(std::string_view name) {
  std::string k(kCounterPrefix);
  k.append(name);
  return k;
}

std::string UserKey(std::string_view name) {
  std::string k(kUserPrefix);
  k.append(name);
  return k;
}

std::string AccessKeyKey(std::string_view access_key) {
  std::string k(kAccessKeyPrefix);
  k.append(access_key);
  return k;
}

std::optional<std::string> PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    if (static_cast<uint8_t>(s.back()) != 0xff) {
      s.back() = static_cast<char>(static_cast<uint8_t>(s.back()) + 1);
      return s;
    }
    s.pop_back();
  }
  return std::nullopt;
}

// ---- Values ---------------------------------------------------------------------------------

std::string EncodeBucket(std::string_view db_key, const BucketInfo& b) {
  Writer w(ValueType::kBucket);
  w.String(b.owner);
  w.Fixed64(static_cast<uint64_t>(b.created_ms));
  w.String(b.region);
  w.U8(static_cast<uint8_t>(b.versioning));
  w.AclValue(b.acl);
  w.String(b.policy);
  w.Varint(b.policy_users.size());
  for (const auto& [name, id] : b.policy_users) {
    w.String(name);
    w.String(id);
  }
  w.String(b.cors);
  return w.Finish(db_key);
}

Status DecodeBucket(std::string_view db_key, std::string_view value, BucketInfo* out) {
  std::string_view body;
  uint8_t version = 0;
  CAIRN_RETURN_IF_ERROR(OpenValue(db_key, value, ValueType::kBucket, &body, &version));
  if (db_key.substr(0, kBucketPrefix.size()) != kBucketPrefix) return Status::Corruption("bucket key");
  Reader r(body);
  BucketInfo b;
  b.name = std::string(db_key.substr(kBucketPrefix.size()));
  b.owner = r.String();
  b.created_ms = static_cast<int64_t>(r.Fixed64());
  b.region = r.String();
  const uint8_t versioning = r.U8();
  if (versioning > static_cast<uint8_t>(Versioning::kSuspended)) return Status::Corruption("bucket versioning");
  b.versioning = static_cast<Versioning>(versioning);
  if (version >= kAclFormatVersion) {
    b.acl = r.AclValue();
    b.policy = r.String();
    const uint64_t users = r.Count(/*min_size=*/2);
    for (uint64_t i = 0; i < users; ++i) {
      std::string name = r.String();
      b.policy_users[std::move(name)] = r.String();
    }
    b.cors = r.String();
  }
  CAIRN_RETURN_IF_ERROR(CloseReader(r, "bucket"));
  *out = std::move(b);
  return Status::OK();
}

std::string EncodeObject(std::string_view db_key, const ObjectRecord& o) {
  Writer w(ValueType::kObject);
  w.Varint(o.delete_marker ? kObjectFlagDeleteMarker : 0);
  w.String(o.version_id);
  w.Varint(o.size);
  w.String(o.etag);
  w.Fixed64(static_cast<uint64_t>(o.last_modified_ms));
  WriteHeaders(&w, o.Headers());
  w.Chunks(o.chunks);
  w.Varint(o.part_count);
  w.Varint(o.part_sizes.size());
  for (uint64_t s : o.part_sizes) w.Varint(s);
  w.AclValue(o.acl);
  return w.Finish(db_key);
}

Status DecodeObject(std::string_view db_key, std::string_view value, ObjectRecord* out) {
  std::string_view body;
  uint8_t version = 0;
  CAIRN_RETURN_IF_ERROR(OpenValue(db_key, value, ValueType::kObject, &body, &version));
  std::string_view bucket, key;
  if (!SplitAtNul(db_key, kObjectPrefix, &bucket, &key)) return Status::Corruption("object key");
  Reader r(body);
  ObjectRecord o;
  o.bucket = std::string(bucket);
  o.key = std::string(key);
  const uint64_t flags = r.Varint();
  if ((flags & ~kObjectFlagDeleteMarker) != 0) return Status::Corruption("object flags");
  o.delete_marker = (flags & kObjectFlagDeleteMarker) != 0;
  o.version_id = r.String();
  o.size = r.Varint();
  o.etag = r.String();
  o.last_modified_ms = static_cast<int64_t>(r.Fixed64());
  o.SetHeaders(ReadHeaders(&r, version));
  o.chunks = r.Chunks();
  o.part_count = r.Varint32();
  o.part_sizes.resize(r.Count(/*min_size=*/1));
  for (uint64_t& s : o.part_sizes) s = r.Varint();
  if (version >= kAclFormatVersion) o.acl = r.AclValue();
  CAIRN_RETURN_IF_ERROR(CloseReader(r, "object"));
  *out = std::move(o);
  return Status::OK();
}

std::string EncodeUpload(std::string_view db_key, const MultipartUpload& u) {
  Writer w(ValueType::kUpload);
  w.Fixed64(static_cast<uint64_t>(u.initiated_ms));
  WriteHeaders(&w, u.headers);
  w.AclValue(u.acl);
  return w.Finish(db_key);
}

Status DecodeUpload(std::string_view db_key, std::string_view value, MultipartUpload* out) {
  std::string_view body;
  uint8_t version = 0;
  CAIRN_RETURN_IF_ERROR(OpenValue(db_key, value, ValueType::kUpload, &body, &version));
  MultipartUpload u;
  if (!ParseUploadKey(db_key, &u.bucket, &u.key, &u.upload_id)) return Status::Corruption("upload key");
  Reader r(body);
  u.initiated_ms = static_cast<int64_t>(r.Fixed64());
  u.headers = ReadHeaders(&r, version);
  if (version >= kAclFormatVersion) u.acl = r.AclValue();
  CAIRN_RETURN_IF_ERROR(CloseReader(r, "upload"));
  *out = std::move(u);
  return Status::OK();
}

std::string EncodePart(std::string_view db_key, const PartRecord& p) {
  Writer w(ValueType::kPart);
  w.String(p.etag);
  w.Varint(p.size);
  w.Fixed64(static_cast<uint64_t>(p.last_modified_ms));
  w.Chunks(p.chunks);
  return w.Finish(db_key);
}

Status DecodePart(std::string_view db_key, std::string_view value, PartRecord* out) {
  std::string_view body;
  CAIRN_RETURN_IF_ERROR(OpenValue(db_key, value, ValueType::kPart, &body));
  std::string_view upload_id, number;
  if (!SplitAtNul(db_key, kPartPrefix, &upload_id, &number) || number.size() != 4) {
    return Status::Corruption("part key");
  }
  Reader r(body);
  PartRecord p;
  for (char c : number) p.part_number = (p.part_number << 8) | static_cast<uint8_t>(c);
  p.etag = r.String();
  p.size = r.Varint();
  p.last_modified_ms = static_cast<int64_t>(r.Fixed64());
  p.chunks = r.Chunks();
  CAIRN_RETURN_IF_ERROR(CloseReader(r, "part"));
  *out = std::move(p);
  return Status::OK();
}

std::string EncodeUser(std::string_view db_key, const UserRecord& u) {
  Writer w(ValueType::kUser);
  w.String(u.canonical_id);
  w.Fixed64(static_cast<uint64_t>(u.created_ms));
  return w.Finish(db_key);
}

Status DecodeUser(std::string_view db_key, std::string_view value, UserRecord* out) {
  std::string_view body;
  CAIRN_RETURN_IF_ERROR(OpenValue(db_key, value, ValueType::kUser, &body));
  if (!db_key.starts_with(kUserPrefix)) return Status::Corruption("user key");
  Reader r(body);
  UserRecord u;
  u.name = std::string(db_key.substr(kUserPrefix.size()));
  u.canonical_id = r.String();
  u.created_ms = static_cast<int64_t>(r.Fixed64());
  CAIRN_RETURN_IF_ERROR(CloseReader(r, "user"));
  *out = std::move(u);
  return Status::OK();
}

std::string EncodeAccessKey(std::string_view db_key, const AccessKeyRecord& k) {
  Writer w(ValueType::kAccessKey);
  w.String(k.user);
  w.String(k.sealed_secret);
  w.U8(k.enabled ? 1 : 0);
  w.Fixed64(static_cast<uint64_t>(k.created_ms));
  return w.Finish(db_key);
}

Status DecodeAccessKey(std::string_view db_key, std::string_view value, AccessKeyRecord* out) {
  std::string_view body;
  CAIRN_RETURN_IF_ERROR(OpenValue(db_key, value, ValueType::kAccessKey, &body));
  if (!db_key.starts_with(kAccessKeyPrefix)) return Status::Corruption("access key key");
  Reader r(body);
  AccessKeyRecord k;
  k.access_key = std::string(db_key.substr(kAccessKeyPrefix.size()));
  k.user = r.String();
  k.sealed_secret = r.String();
  const uint8_t enabled = r.U8();
  if (enabled > 1) return Status::Corruption("access key enabled flag");
  k.enabled = enabled == 1;
  k.created_ms = static_cast<int64_t>(r.Fixed64());
  CAIRN_RETURN_IF_ERROR(CloseReader(r, "access key"));
  *out = std::move(k);
  return Status::OK();
}

std::string EncodeCounter(int64_t v) {
  std::string s(8, '\0');
  const auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(u >> (8 * i));
  return s;
}

std::optional<int64_t> DecodeCounter(std::string_view v) {
  if (v.size() != 8) return std::nullopt;
  uint64_t u = 0;
  for (int i = 7; i >= 0; --i) u = (u << 8) | static_cast<uint8_t>(v[i]);
  return static_cast<int64_t>(u);
}

}  // namespace cairn::meta::format
