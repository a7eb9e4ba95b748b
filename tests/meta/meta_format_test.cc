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

// A version 1 upload value is a version 2 one without the trailing content_language string
// (here empty: one zero byte), with version byte 1 and its own checksum.
TEST(MetaFormatTest, Version1ValuesStillDecode) {
  const std::string key = UploadKey("b", "k", "id1");
  const MultipartUpload u = SampleUpload();
  std::string v2 = EncodeUpload(key, u);
  ASSERT_EQ(static_cast<uint8_t>(v2[1]), 2);
  std::string v1 = v2.substr(0, v2.size() - 4 - 1);  // drop crc and the empty string
  ASSERT_EQ(v2[v2.size() - 5], '\0');
  v1[1] = 1;
  uint32_t crc = crc32c::Value(key.data(), key.size());
  crc = crc32c::Extend(crc, v1.data(), v1.size());
  for (int i = 0; i < 4; ++i) v1.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  MultipartUpload back;
  ASSERT_OK(DecodeUpload(key, v1, &back));
  EXPECT_EQ(back.headers, u.headers);
  // A version from the future is refused, not misread.
  std::string v9 = v2;
  v9[1] = 9;
  crc = crc32c::Extend(crc32c::Value(key.data(), key.size()), v9.data(), v9.size() - 4);
  for (int i = 0; i < 4; ++i) v9[v9.size() - 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  EXPECT_TRUE(DecodeUpload(key, v9, &back).IsNotSupported());
}

}  // namespace
}  // namespace cairn::meta::format
