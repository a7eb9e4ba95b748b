// The records of the metadata layer: buckets, object records, multipart uploads and their parts.
//
// Plain value structs with no behaviour beyond copying headers between an upload and the object
// it becomes. They are what every MetaStore implementation stores and returns, and they name no
// storage library, so the single-node (RocksDB) and the replicated store share them. Their
// binary encoding is in meta/format.h and docs/formats/meta.md.
// Thread-safety: value types; distinct objects may be used from distinct threads freely.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/chunk_id.h"

namespace cairn::meta {

// The version id of every object until bucket versioning exists, as S3 spells it.
inline constexpr std::string_view kNullVersionId = "null";

// A bucket's versioning state. Stored now, acted on once versioning is implemented.
enum class Versioning : uint8_t {
  kUnversioned = 0,  // never enabled
  kEnabled = 1,
  kSuspended = 2,
};

// ---- Access control lists (S3 ACLs) -----------------------------------------------------------
// Stored with buckets, objects and multipart uploads; interpreted by gateway/acl.h.

enum class AclPermission : uint8_t {
  kRead = 1,
  kWrite = 2,
  kReadAcp = 3,
  kWriteAcp = 4,
  kFullControl = 5,
};

enum class GranteeType : uint8_t {
  kCanonicalUser = 1,  // grantee is a canonical user id
  kGroup = 2,          // grantee is a group URI (AllUsers, AuthenticatedUsers, LogDelivery)
};

struct Grant {
  GranteeType type = GranteeType::kCanonicalUser;
  std::string grantee;
  AclPermission permission = AclPermission::kRead;

  friend bool operator==(const Grant&, const Grant&) = default;
};

struct Acl {
  // Canonical id of the resource's owner. Empty in records written before ACLs existed (format
  // version < 3): the owner is then the bucket's owner, and the grants are "private".
  std::string owner;
  std::vector<Grant> grants;  // in the order they were given

  friend bool operator==(const Acl&, const Acl&) = default;
};

struct BucketInfo {
  std::string name;        // S3 bucket name; never empty, never contains NUL
  std::string owner;       // canonical user id of the owner
  int64_t created_ms = 0;  // ms since the Unix epoch
  std::string region;
  Versioning versioning = Versioning::kUnversioned;
  // acl.owner == owner. Empty grants in records from before ACLs: owner FULL_CONTROL is implied.
  Acl acl;
  std::string policy;  // the bucket policy document (JSON) as the owner put it; empty: none
  // The users the policy names by name, with the canonical id each name had when the policy was
  // put: a user deleted and created again under that name is a different principal.
  std::map<std::string, std::string> policy_users;
  std::string cors;    // the CORS configuration (XML, as gateway/cors.h writes it); empty: none

  friend bool operator==(const BucketInfo&, const BucketInfo&) = default;
};

// One chunk of an object (or of a part): bytes [offset, offset + length) of the object are the
// chunk's bytes [0, length). The chunks of a record are sorted by offset, do not overlap and
// cover [0, size) exactly.
struct ChunkRef {
  engine::ChunkId id;
  uint64_t offset = 0;  // in the object; in the part for a PartRecord
  uint32_t length = 0;
  uint32_t crc32c = 0;  // CRC32C of the chunk's bytes

  friend bool operator==(const ChunkRef&, const ChunkRef&) = default;
};

// x-amz-meta-* headers: names lowercase and without the "x-amz-meta-" prefix, in the order the
// client sent them.
using UserMetadata = std::vector<std::pair<std::string, std::string>>;

// The headers that a PUT (or an upload's initiation) stores with the object and a GET returns.
struct ObjectHeaders {
  std::string content_type;
  std::string content_encoding;
  std::string content_disposition;
  std::string cache_control;
  std::string expires;  // the Expires header as the client sent it
  UserMetadata user_metadata;
  std::string storage_class;  // empty means STANDARD
  std::string content_language;

  friend bool operator==(const ObjectHeaders&, const ObjectHeaders&) = default;
};

// The committed record of one object version. Writing it is the commit point of a PUT
// (ARCHITECTURE.md, decision 1): the object exists exactly when its record does.
struct ObjectRecord {
  std::string bucket;
  std::string key;  // any bytes, never empty
  std::string version_id{kNullVersionId};
  uint64_t size = 0;
  std::string etag;  // as S3 shows it, without the quotes: 32 hex digits, or "<hex>-<parts>"
  int64_t last_modified_ms = 0;

  std::string content_type;
  std::string content_encoding;
  std::string content_disposition;
  std::string cache_control;
  std::string expires;
  UserMetadata user_metadata;
  std::string storage_class;
  std::string content_language;

  std::vector<ChunkRef> chunks;
  // Multipart objects: the number of parts and the size of each, in part order, so that a GET
  // with partNumber can find part n's range. part_count == 0 and part_sizes empty otherwise.
  uint32_t part_count = 0;
  std::vector<uint64_t> part_sizes;
  // Reserved for versioning: the record marks a deletion and has no data. Always false today.
  bool delete_marker = false;
  // The object's owner (who wrote it) and its grants.
  Acl acl;

  ObjectHeaders Headers() const {
    return {content_type, content_encoding, content_disposition, cache_control, expires, user_metadata, storage_class,
            content_language};
  }
  void SetHeaders(const ObjectHeaders& h) {
    content_type = h.content_type;
    content_encoding = h.content_encoding;
    content_disposition = h.content_disposition;
    cache_control = h.cache_control;
    expires = h.expires;
    user_metadata = h.user_metadata;
    storage_class = h.storage_class;
    content_language = h.content_language;
  }

  friend bool operator==(const ObjectRecord&, const ObjectRecord&) = default;
};

// One uploaded part of a multipart upload. Its chunk offsets are relative to the part.
struct PartRecord {
  uint32_t part_number = 0;  // >= 1
  std::string etag;          // without quotes
  uint64_t size = 0;
  int64_t last_modified_ms = 0;
  std::vector<ChunkRef> chunks;

  friend bool operator==(const PartRecord&, const PartRecord&) = default;
};

struct MultipartUpload {
  std::string bucket;
  std::string key;
  std::string upload_id;  // globally unique; never empty, never contains NUL
  int64_t initiated_ms = 0;
  ObjectHeaders headers;  // applied to the object at completion
  Acl acl;                // the initiator as owner, and the grants the object gets at completion
  // Filled by MetaStore::GetUpload; empty in listings.
  std::map<uint32_t, PartRecord> parts;

  friend bool operator==(const MultipartUpload&, const MultipartUpload&) = default;
};

// ---- Users and access keys ---------------------------------------------------------------------
// The root user is not stored: its key comes from the server's configuration.

struct UserRecord {
  std::string name;          // unique; [A-Za-z0-9+=,.@_-], 1 to 64 characters (IAM's rule)
  std::string canonical_id;  // 64 hex digits, as S3 shows in Owner/ID
  int64_t created_ms = 0;

  friend bool operator==(const UserRecord&, const UserRecord&) = default;
};

struct AccessKeyRecord {
  std::string access_key;  // unique; the key id clients send
  std::string user;        // the owning user's name
  // The secret key, sealed (encrypted and authenticated) with the server's key; never stored in
  // the clear (SigV4 needs the secret itself, so it cannot be a one-way hash).
  std::string sealed_secret;
  bool enabled = true;
  int64_t created_ms = 0;

  friend bool operator==(const AccessKeyRecord&, const AccessKeyRecord&) = default;
};

}  // namespace cairn::meta
