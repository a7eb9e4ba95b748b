// Tests for bucket name and object key validation, the listing URL encoding and the shared text
// helpers of gateway/text.h.
#include "gateway/s3_names.h"

#include <gtest/gtest.h>

#include <string>

#include "gateway/text.h"
#include "test_util.h"

namespace cairn::gateway {
namespace {

TEST(BucketNameTest, AcceptsValidNames) {
  for (const std::string_view name : {
           "abc",
           "a-b",
           "a.b",
           "my-bucket",
           "my.bucket.name",
           "docexamplebucket1",
           "log-delivery-march-2020",
           "123",
           "1-2",
           "0a0",
           "a1.b2.c3",
           "xn-abc",
           "x-n--abc",
           "sthree",
           "s3alias",
           "abc-s3aliasx",
           "mrap.x",
           "1.2.3",
           "1.2.3.4.5",
           "1.2.3.a",
           "aws-logs",
           "a--b",
           "abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz",  // 63
       }) {
    const Status s = ValidateBucketName(name);
    EXPECT_TRUE(s.ok()) << name << " -> " << s;
  }
}

TEST(BucketNameTest, RejectsInvalidNames) {
  for (const std::string_view name : {
           "",
           "a",
           "ab",
           "abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz0",  // 64
           "MyBucket",
           "my_bucket",
           "my bucket",
           "my/bucket",
           "bucket!",
           "caf\xC3\xA9",
           "-abc",
           "abc-",
           ".abc",
           "abc.",
           "a..b",
           "a.-b",
           "a-.b",
           "192.168.5.4",
           "1.1.1.1",
           "0.0.0.0",
           "999.999.999.999",
           "xn--abc",
           "sthree-abc",
           "sthree-configurator",
           "amzn-s3-demo-bucket",
           "abc-s3alias",
           "abc--ol-s3",
           "abc.mrap",
           "abc--x-s3",
           "abc--table-s3",
       }) {
    const Status s = ValidateBucketName(name);
    EXPECT_TRUE(s.IsInvalidArgument()) << "'" << name << "' -> " << s;
  }
}

TEST(BucketNameTest, RejectsNulAndNonAsciiBytes) {
  EXPECT_TRUE(ValidateBucketName(std::string("ab\0c", 4)).IsInvalidArgument());
  EXPECT_TRUE(ValidateBucketName("ab\xFF").IsInvalidArgument());
}

TEST(ObjectKeyTest, AcceptsValidKeys) {
  for (const std::string_view key : {
           "a",
           "photos/2024/01/img.jpg",
           "/leading/slash",
           "trailing/",
           "a//b",
           " ",
           "with space",
           "../..",
           "caf\xC3\xA9",
           "\xE4\xB8\xAD\xE6\x96\x87",
           "\xF0\x9F\x98\x80",
           "tab\there",
           "line\nfeed",
           "\x01\x1f\x7f",
           "\xEF\xBF\xBF",
           "&<>\"'",
           "%2F",
           "~!@#$^*()+=[]{}|;:,?",
       }) {
    const Status s = ValidateObjectKey(key);
    EXPECT_TRUE(s.ok()) << testing::PrintToString(std::string(key)) << " -> " << s;
  }
  EXPECT_OK(ValidateObjectKey(std::string(kMaxObjectKeyBytes, 'k')));
  std::string multibyte;
  while (multibyte.size() + 3 <= kMaxObjectKeyBytes) multibyte += "\xE2\x82\xAC";  // 341 euro signs
  EXPECT_OK(ValidateObjectKey(multibyte));
}

TEST(ObjectKeyTest, RejectsInvalidKeys) {
  EXPECT_TRUE(ValidateObjectKey("").IsInvalidArgument());
  EXPECT_TRUE(ValidateObjectKey(std::string(kMaxObjectKeyBytes + 1, 'k')).IsInvalidArgument());
  // 1024 bytes is the limit in bytes, not characters.
  std::string euros;
  for (int i = 0; i < 342; ++i) euros += "\xE2\x82\xAC";
  EXPECT_TRUE(ValidateObjectKey(euros).IsInvalidArgument());
  for (const std::string_view key : {
           "\xFF",
           "a\x80",
           "\xC3",
           "\xC3(",
           "\xC0\xAF",
           "\xE0\x80\xAF",
           "\xED\xA0\x80",
           "\xED\xBF\xBF",
           "\xF4\x90\x80\x80",
           "\xF8\x88\x80\x80\x80",
           "\xE2\x82",
           "ok\xF0\x9F\x98",
       }) {
    EXPECT_TRUE(ValidateObjectKey(key).IsInvalidArgument()) << testing::PrintToString(std::string(key));
  }
}

TEST(Utf8Test, ChecksBoundaries) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("\x7F"));
  EXPECT_TRUE(IsValidUtf8("\xC2\x80"));           // U+0080
  EXPECT_TRUE(IsValidUtf8("\xDF\xBF"));           // U+07FF
  EXPECT_TRUE(IsValidUtf8("\xE0\xA0\x80"));       // U+0800
  EXPECT_TRUE(IsValidUtf8("\xED\x9F\xBF"));       // U+D7FF
  EXPECT_TRUE(IsValidUtf8("\xEE\x80\x80"));       // U+E000
  EXPECT_TRUE(IsValidUtf8("\xF0\x90\x80\x80"));   // U+10000
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));   // U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xC1\xBF"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xF0\x8F\xBF\xBF"));  // overlong
  EXPECT_FALSE(IsValidUtf8("\xBF"));              // lone continuation
}

TEST(ListingUrlEncodingTest, MatchesWhatS3Sends) {
  EXPECT_EQ(UrlEncodeListingValue("a b.txt"), "a+b.txt");
  EXPECT_EQ(UrlEncodeListingValue("a+b.txt"), "a%2Bb.txt");
  EXPECT_EQ(UrlEncodeListingValue("100%.csv"), "100%25.csv");
  EXPECT_EQ(UrlEncodeListingValue("test_file(3).png"), "test_file%283%29.png");
  EXPECT_EQ(UrlEncodeListingValue("\xED\x95\x9C\xEA\xB8\x80/x.txt"), "%ED%95%9C%EA%B8%80/x.txt");
  EXPECT_EQ(UrlEncodeListingValue("run books/"), "run+books/");
  EXPECT_EQ(UrlEncodeListingValue("foo+1/"), "foo%2B1/");
}

TEST(ListingUrlEncodingTest, KeepsOnlyTheFormSafeSetAndSlash) {
  EXPECT_EQ(UrlEncodeListingValue("AZaz09.-_*/"), "AZaz09.-_*/");
  EXPECT_EQ(UrlEncodeListingValue("~!'()&=?#:;,@$[]"), "%7E%21%27%28%29%26%3D%3F%23%3A%3B%2C%40%24%5B%5D");
  EXPECT_EQ(UrlEncodeListingValue(std::string("\x00\x01\n\r\t\x7f\xff", 7)), "%00%01%0A%0D%09%7F%FF");
  EXPECT_EQ(UrlEncodeListingValue(""), "");
}

TEST(ListingUrlEncodingTest, EveryByteRoundTripsThroughPercentDecode) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string encoded = UrlEncodeListingValue(all);
  for (const char c : encoded) {
    EXPECT_TRUE(c > 0x20 && c < 0x7F && c != '<' && c != '&') << "unsafe output byte " << int(c);
  }
  Result<std::string> decoded = PercentDecode(encoded, /*plus_is_space=*/true);
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, all);
}

TEST(AsciiTextTest, FoldsOnlyAsciiLetters) {
  EXPECT_EQ(AsciiLower("Content-MD5 \xC3\x84"), "content-md5 \xC3\x84");
  EXPECT_EQ(AsciiLower('@'), '@');
  EXPECT_EQ(AsciiLower('['), '[');
  EXPECT_TRUE(EqualsIgnoreCase("Bytes=", "bytes="));
  EXPECT_FALSE(EqualsIgnoreCase("\xC3\x84", "\xC3\xA4"));  // Ä and ä: not ASCII
  EXPECT_FALSE(EqualsIgnoreCase("true", "true "));
}

TEST(AsciiTextTest, DigitsAreAsciiOnly) {
  EXPECT_TRUE(IsAsciiDigit('0'));
  EXPECT_TRUE(IsAsciiDigit('9'));
  EXPECT_FALSE(IsAsciiDigit('/'));
  EXPECT_FALSE(IsAsciiDigit(':'));
  EXPECT_FALSE(IsAsciiDigit('\xB2'));  // superscript two in Latin-1
}

TEST(AsciiTextTest, HttpTrimKeepsCrLfAndXmlTrimDropsThem) {
  EXPECT_EQ(TrimHttpSpace(" \t v a \t "), "v a");
  EXPECT_EQ(TrimHttpSpace("\r\n v \r\n"), "\r\n v \r\n");
  EXPECT_EQ(TrimXmlSpace(" \t\r\n v a \n\r\t "), "v a");
  EXPECT_EQ(TrimXmlSpace("\v\f v"), "\v\f v");  // not XML white space
  EXPECT_EQ(TrimHttpSpace(" \t "), "");
  EXPECT_EQ(TrimXmlSpace(""), "");
}

TEST(PercentDecodeTest, DecodesAndRejectsBadEscapes) {
  Result<std::string> plain = PercentDecode("a%2fb%2Fc+d", /*plus_is_space=*/false);
  ASSERT_OK(plain);
  EXPECT_EQ(*plain, "a/b/c+d");
  Result<std::string> form = PercentDecode("c+d", /*plus_is_space=*/true);
  ASSERT_OK(form);
  EXPECT_EQ(*form, "c d");
  for (const std::string_view bad : {"%", "%2", "a%g0", "%0g", "abc%"}) {
    EXPECT_TRUE(PercentDecode(bad, /*plus_is_space=*/false).status().IsInvalidArgument()) << bad;
  }
}

}  // namespace
}  // namespace cairn::gateway
