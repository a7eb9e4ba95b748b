// The metadata store's key and value formats. docs/formats/meta.md describes every field; each
// section below points at its part of that page.
//
// Keys are chosen so that the byte order of the keys is the order in which they are listed:
// all objects of a bucket are contiguous and sorted by key bytes, so ListObjects is one range
// scan (ARCHITECTURE.md decision 7). Values are a compact binary encoding with a type, a format
// version and a CRC32C that covers the key and the value, so a damaged value, or a value that
// ended up under the wrong key, is reported as Corruption and never misread.
// Thread-safety: pure functions and constants.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "meta/types.h"

namespace cairn::meta::format {

// ---- Keys (meta.md, "Keys") -----------------------------------------------------------------
//   "B/" bucket                                           -> BucketInfo
//   "O/" bucket 0x00 key                                  -> ObjectRecord
//   "U/" bucket 0x00 escaped(key) 0x00 0x01 upload_id     -> MultipartUpload (without parts)
//   "P/" upload_id 0x00 part_number (u32 big-endian)      -> PartRecord
//   "C/" counter name                                     -> int64 little-endian (merge operand)
//   "I/" user name                                        -> UserRecord
//   "K/" access key                                       -> AccessKeyRecord
// Bucket names and upload ids never contain NUL. Object keys may hold any byte; they end the
// object key so need no escaping. In an upload key the object key is followed by the upload id,
// so it is escaped (0x00 -> 0x00 0xFF) and terminated by 0x00 0x01, which keeps (key, id) order.
inline constexpr std::string_view kBucketPrefix = "B/";
inline constexpr std::string_view kObjectPrefix = "O/";
inline constexpr std::string_view kUploadPrefix = "U/";
inline constexpr std::string_view kPartPrefix = "P/";
inline constexpr std::string_view kCounterPrefix = "C/";
inline constexpr std::string_view kUserPrefix = "I/";
inline constexpr std::string_view kAccessKeyPrefix = "K/";

std::string BucketKey(std::string_view bucket);
// The common beginning of every object key of the bucket: "O/" bucket 0x00.
std::string ObjectKeyPrefix(std::string_view bucket);
std::string ObjectKey(std::string_view bucket, std::string_view key);
// The common beginning of every upload key of the bucket: "U/" bucket 0x00.
std::string UploadKeyPrefix(std::string_view bucket);
// UploadKeyPrefix(bucket) + escaped(key_prefix): the beginning of the upload keys of every
// object key that starts with key_prefix.
std::string UploadKeyPrefixForKeys(std::string_view bucket, std::string_view key_prefix);
// The beginning of the upload keys of exactly `key`: ... escaped(key) 0x00 0x01.
std::string UploadKeyPrefixForKey(std::string_view bucket, std::string_view key);
std::string UploadKey(std::string_view bucket, std::string_view key, std::string_view upload_id);
// Splits an upload key; false when it is malformed.
bool ParseUploadKey(std::string_view db_key, std::string* bucket, std::string* key, std::string* upload_id);
std::string PartKeyPrefix(std::string_view upload_id);
std::string PartKey(std::string_view upload_id, uint32_t part_number);
std::string CounterKey(std::string_view name);
std::string UserKey(std::string_view name);
std::string AccessKeyKey(std::string_view access_key);

// The smallest string greater than every string that starts with `prefix`, or nullopt when
// there is none (prefix empty or all 0xFF).
std::optional<std::string> PrefixSuccessor(std::string_view prefix);

// ---- Values (meta.md, "Values") ---------------------------------------------------------------
// Every value is: type u8, format version u8, body, crc32c u32 (little-endian) over the
// db key's bytes followed by the value's bytes before the crc.
inline constexpr uint8_t kFormatVersion = 3;
// The oldest version a reader still decodes (version 1 lacked headers.content_language).
inline constexpr uint8_t kOldestFormatVersion = 1;
// The version that added ACLs (buckets, objects, uploads) and bucket policy and CORS documents.
inline constexpr uint8_t kAclFormatVersion = 3;
inline constexpr size_t kValueHeaderSize = 2;
inline constexpr size_t kValueCrcSize = 4;
enum class ValueType : uint8_t {
  kBucket = 'B',
  kObject = 'O',
  kUpload = 'U',
  kPart = 'P',
  kUser = 'I',
  kAccessKey = 'K',
};

// Encoders take the db key because the checksum covers it. Decoders fill the fields that live
// in the key (bucket name, object key, upload id, part number) from the key; they return
// Corruption for a bad checksum, type or body and NotSupported for an unknown format version.
std::string EncodeBucket(std::string_view db_key, const BucketInfo& b);
[[nodiscard]] Status DecodeBucket(std::string_view db_key, std::string_view value, BucketInfo* out);
std::string EncodeObject(std::string_view db_key, const ObjectRecord& r);
[[nodiscard]] Status DecodeObject(std::string_view db_key, std::string_view value, ObjectRecord* out);
std::string EncodeUpload(std::string_view db_key, const MultipartUpload& u);
[[nodiscard]] Status DecodeUpload(std::string_view db_key, std::string_view value, MultipartUpload* out);
std::string EncodePart(std::string_view db_key, const PartRecord& p);
[[nodiscard]] Status DecodePart(std::string_view db_key, std::string_view value, PartRecord* out);

std::string EncodeUser(std::string_view db_key, const UserRecord& u);
[[nodiscard]] Status DecodeUser(std::string_view db_key, std::string_view value, UserRecord* out);
std::string EncodeAccessKey(std::string_view db_key, const AccessKeyRecord& k);
[[nodiscard]] Status DecodeAccessKey(std::string_view db_key, std::string_view value, AccessKeyRecord* out);

// Counters: a fixed 8-byte little-endian two's-complement int64 (also the merge operand).
std::string EncodeCounter(int64_t v);
std::optional<int64_t> DecodeCounter(std::string_view v);

}  // namespace cairn::meta::format
