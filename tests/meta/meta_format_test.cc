// Value encodings of the metadata store (docs/formats/meta.md): round trips, and values written
// by an older format version still decode.
#include "meta/format.h"

#include <gtest/gtest.h>

#include "common/crc32c.h"
#include "test_util.h"

namespace cairn::meta::format {
namespace {

MultipartUpload SampleUpload() {
  MultipartUpload u;
  u.initiated_ms = 1700000000123;
  u.headers.content_type = "text/plain";
  u.headers.content_encoding = "gzip";
  u.headers.cache_control = "no-cache";
  u.headers.user_metadata = {{"colour", "blue"}};
  u.headers.storage_class = "STANDARD_IA";
  return u;
}

TEST(MetaFormatTest, ContentLanguageRoundTrips) {
  const std::string key = UploadKey("b", "k", "id1");
  MultipartUpload u = SampleUpload();
  u.headers.content_language = "de-CH";
  MultipartUpload back;
  ASSERT_OK(DecodeUpload(key, EncodeUpload(key, u), &back));
  EXPECT_EQ(back.headers, u.headers);
  EXPECT_EQ(back.initiated_ms, u.initiated_ms);
}

// Re-frames a current value as an older version: drops `trailing` body bytes (fields the older
// version lacked, here all empty), sets the version byte and recomputes the checksum.
std::string AsOldVersion(std::string_view db_key, const std::string& current, size_t trailing, uint8_t version) {
  std::string old = current.substr(0, current.size() - 4 - trailing);
  old[1] = static_cast<char>(version);
  uint32_t crc = crc32c::Value(db_key.data(), db_key.size());
  crc = crc32c::Extend(crc, old.data(), old.size());
  for (int i = 0; i < 4; ++i) old.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return old;
}

// A version 2 upload value is a version 3 one without the trailing ACL (empty: an empty owner
// string and zero grants, two zero bytes); version 1 also lacks content_language (one more).
TEST(MetaFormatTest, OlderVersionValuesStillDecode) {
  const std::string key = UploadKey("b", "k", "id1");
  const MultipartUpload u = SampleUpload();
  std::string v3 = EncodeUpload(key, u);
  ASSERT_EQ(static_cast<uint8_t>(v3[1]), 3);
  ASSERT_EQ(v3.substr(v3.size() - 7, 3), std::string(3, '\0'));
  MultipartUpload back;
  ASSERT_OK(DecodeUpload(key, AsOldVersion(key, v3, 2, 2), &back));
  EXPECT_EQ(back.headers, u.headers);
  ASSERT_OK(DecodeUpload(key, AsOldVersion(key, v3, 3, 1), &back));
  EXPECT_EQ(back.headers, u.headers);
  // A version from the future is refused, not misread.
  EXPECT_TRUE(DecodeUpload(key, AsOldVersion(key, v3, 0, 9), &back).IsNotSupported());

  // Buckets and objects of version 2 decode with an empty ACL (and no policy or CORS).
  BucketInfo b{"b", "owner-id", 1700000000000, "us-east-1", Versioning::kUnversioned, {}, "", {}, ""};
  const std::string bkey = BucketKey("b");
  BucketInfo bback;
  // Version 3 adds: owner "" and zero grants (2 bytes), policy "", zero policy users, cors "".
  ASSERT_OK(DecodeBucket(bkey, AsOldVersion(bkey, EncodeBucket(bkey, b), 5, 2), &bback));
  EXPECT_EQ(bback, b);
  ObjectRecord o;
  o.bucket = "b";
  o.key = "k";
  o.etag = "e";
  const std::string okey = ObjectKey("b", "k");
  ObjectRecord oback;
  ASSERT_OK(DecodeObject(okey, AsOldVersion(okey, EncodeObject(okey, o), 2, 2), &oback));
  EXPECT_EQ(oback, o);
}

TEST(MetaFormatTest, AclsPolicyAndCorsRoundTrip) {
  Acl acl{"owner-id",
          {{GranteeType::kCanonicalUser, "owner-id", AclPermission::kFullControl},
           {GranteeType::kGroup, "http://acs.amazonaws.com/groups/global/AllUsers", AclPermission::kRead}}};
  BucketInfo b{"b",   "owner-id", 1, "r", Versioning::kUnversioned, acl, R"({"Statement":[]})",
               {{"alice", "id-a"}, {"bob", "id-b"}}, "<CORSConfiguration/>"};
  const std::string bkey = BucketKey("b");
  BucketInfo bback;
  ASSERT_OK(DecodeBucket(bkey, EncodeBucket(bkey, b), &bback));
  EXPECT_EQ(bback, b);

  ObjectRecord o;
  o.bucket = "b";
  o.key = "k";
  o.acl = acl;
  const std::string okey = ObjectKey("b", "k");
  ObjectRecord oback;
  ASSERT_OK(DecodeObject(okey, EncodeObject(okey, o), &oback));
  EXPECT_EQ(oback, o);

  MultipartUpload u = SampleUpload();
  u.acl = acl;
  const std::string ukey = UploadKey("b", "k", "id1");
  MultipartUpload uback;
  ASSERT_OK(DecodeUpload(ukey, EncodeUpload(ukey, u), &uback));
  EXPECT_EQ(uback.acl, acl);

  // A grant with an unknown permission is corruption, not a guess.
  std::string bad = EncodeObject(okey, o);
  const size_t perm_at = bad.size() - 4 - 1;
  bad[perm_at] = 9;
  EXPECT_TRUE(DecodeObject(okey, AsOldVersion(okey, bad, 0, 3), &oback).IsCorruption());
}

}  // namespace
}  // namespace cairn::meta::format
