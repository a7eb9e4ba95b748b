// Tests for the S3 error table, the Status-to-S3 mapping and the error document.
#include "gateway/s3_errors.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "gateway/xml.h"
#include "test_util.h"

namespace cairn::gateway {
namespace {

TEST(S3ErrorsTest, HttpStatusesMatchS3) {
  const std::pair<S3Code, int> kExpected[] = {
      {S3Code::kAccessDenied, 403},
      {S3Code::kAccountProblem, 403},
      {S3Code::kAuthorizationHeaderMalformed, 400},
      {S3Code::kAuthorizationQueryParametersError, 400},
      {S3Code::kBadDigest, 400},
      {S3Code::kBucketAlreadyExists, 409},
      {S3Code::kBucketAlreadyOwnedByYou, 409},
      {S3Code::kBucketNotEmpty, 409},
      {S3Code::kEntityTooLarge, 400},
      {S3Code::kEntityTooSmall, 400},
      {S3Code::kExpiredToken, 400},
      {S3Code::kIncompleteBody, 400},
      {S3Code::kInternalError, 500},
      {S3Code::kInvalidAccessKeyId, 403},
      {S3Code::kInvalidArgument, 400},
      {S3Code::kInvalidBucketName, 400},
      {S3Code::kInvalidChunkSizeError, 400},
      {S3Code::kInvalidDigest, 400},
      {S3Code::kInvalidPart, 400},
      {S3Code::kInvalidPartOrder, 400},
      {S3Code::kInvalidRange, 416},
      {S3Code::kInvalidRequest, 400},
      {S3Code::kKeyTooLongError, 400},
      {S3Code::kMalformedXML, 400},
      {S3Code::kMethodNotAllowed, 405},
      {S3Code::kMissingContentLength, 411},
      {S3Code::kMissingRequestBodyError, 400},
      {S3Code::kNoSuchBucket, 404},
      {S3Code::kNoSuchKey, 404},
      {S3Code::kNoSuchUpload, 404},
      {S3Code::kNotImplemented, 501},
      {S3Code::kNotModified, 304},
      {S3Code::kPreconditionFailed, 412},
      {S3Code::kRequestHeaderSectionTooLarge, 400},
      {S3Code::kRequestTimeTooSkewed, 403},
      {S3Code::kRequestTimeout, 400},
      {S3Code::kServiceUnavailable, 503},
      {S3Code::kSignatureDoesNotMatch, 403},
      {S3Code::kSlowDown, 503},
      {S3Code::kXAmzContentSHA256Mismatch, 400},
  };
  for (const auto& [code, status] : kExpected) {
    EXPECT_EQ(S3HttpStatus(code), status) << S3CodeName(code);
    EXPECT_EQ(Make(code).http_status, status) << S3CodeName(code);
  }
}

TEST(S3ErrorsTest, NamesRoundTripAndEveryCodeHasAMessage) {
  std::set<std::string_view> names;
  for (uint16_t i = 0; i <= static_cast<uint16_t>(S3Code::kXAmzContentSHA256Mismatch); ++i) {
    const auto code = static_cast<S3Code>(i);
    S3Code back;
    ASSERT_TRUE(S3CodeFromName(S3CodeName(code), &back));
    EXPECT_EQ(back, code);
    EXPECT_FALSE(S3DefaultMessage(code).empty());
    EXPECT_TRUE(names.insert(S3CodeName(code)).second) << "duplicate " << S3CodeName(code);
  }
  EXPECT_EQ(S3CodeName(S3Code::kMalformedXML), "MalformedXML");
  EXPECT_EQ(S3CodeName(S3Code::kKeyTooLongError), "KeyTooLongError");
  S3Code unused;
  EXPECT_FALSE(S3CodeFromName("NoSuchThing", &unused));
}

TEST(S3ErrorsTest, MakeUsesTheDefaultMessageOnlyWhenNoneIsGiven) {
  EXPECT_EQ(Make(S3Code::kNoSuchKey).message, S3DefaultMessage(S3Code::kNoSuchKey));
  EXPECT_EQ(Make(S3Code::kNoSuchKey, "gone").message, "gone");
}

TEST(S3ErrorsTest, RendersTheExactErrorDocument) {
  const S3Error e = Make(S3Code::kNoSuchKey, "The key does not exist.");
  EXPECT_EQ(ErrorXml(e, "/mybucket/myfoto.jpg", "4442587FB7D0A2F9"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<Error><Code>NoSuchKey</Code><Message>The key does not exist.</Message>"
            "<Resource>/mybucket/myfoto.jpg</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>");
}

TEST(S3ErrorsTest, RendersExtraFieldsHostIdAndEscapes) {
  S3Error e = Make(S3Code::kAccessDenied, std::string(kRequestHasExpired));
  e.extra = {{"Expires", "2024-01-01T00:00:00Z"}, {"ServerTime", "2024-01-01T00:05:00Z"}};
  EXPECT_EQ(ErrorXml(e, "/b/a&b<c>", "R1", "H1"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"
            "<Expires>2024-01-01T00:00:00Z</Expires><ServerTime>2024-01-01T00:05:00Z</ServerTime>"
            "<Resource>/b/a&amp;b&lt;c&gt;</Resource><RequestId>R1</RequestId><HostId>H1</HostId></Error>");
}

TEST(S3ErrorsTest, LeavesOutAnEmptyResource) {
  EXPECT_EQ(ErrorXml(Make(S3Code::kSlowDown, "later"), "", "R"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<Error><Code>SlowDown</Code><Message>later</Message><RequestId>R</RequestId></Error>");
}

TEST(S3ErrorsTest, ErrorDocumentsParseBack) {
  const std::string xml = ErrorXml(Make(S3Code::kInvalidArgument, "bad \x01 key\r\n"), "/b/k", "R");
  Result<XmlNode> root = ParseXml(xml);
  ASSERT_OK(root);
  EXPECT_EQ(root->name, "Error");
  EXPECT_EQ(root->Child("Code")->text, "InvalidArgument");
  EXPECT_EQ(root->Child("Message")->text, "bad \x01 key\r\n");
}

TEST(S3ErrorsTest, NotModifiedHasNoBody) {
  const S3Error e = Make(S3Code::kNotModified);
  EXPECT_EQ(e.http_status, 304);
  EXPECT_FALSE(HasBody(e));
  EXPECT_EQ(ErrorXml(e, "/b/k", "R"), "");
  EXPECT_TRUE(HasBody(Make(S3Code::kPreconditionFailed)));
}

TEST(S3ErrorsTest, MapsGenericCodes) {
  struct Case {
    Status status;
    S3Code code;
  };
  const Case kCases[] = {
      {Status::InvalidArgument("x"), S3Code::kInvalidArgument},
      {Status::NotFound("x"), S3Code::kNoSuchKey},
      {Status::AlreadyExists("x"), S3Code::kBucketAlreadyExists},
      {Status::Internal("x"), S3Code::kInternalError},
      {Status::NotSupported("x"), S3Code::kNotImplemented},
      {Status::Cancelled("x"), S3Code::kServiceUnavailable},
      {Status::Timeout("x"), S3Code::kServiceUnavailable},
      {Status::Busy("x"), S3Code::kSlowDown},
      {Status::IOError("x"), S3Code::kInternalError},
      {Status::NoSpace("x"), S3Code::kServiceUnavailable},
      {Status::ReadOnly("x"), S3Code::kServiceUnavailable},
      {Status::Corruption("x"), S3Code::kInternalError},
      {Status::ChecksumMismatch("x"), S3Code::kBadDigest},
      {Status::ConfigError("x"), S3Code::kInternalError},
      {Status::MalformedXml("x"), S3Code::kMalformedXML},
      {Status::OK(), S3Code::kInternalError},
  };
  for (const Case& c : kCases) {
    const S3Error e = FromStatus(c.status);
    EXPECT_EQ(S3CodeName(e.code), S3CodeName(c.code)) << c.status;
    EXPECT_EQ(e.http_status, S3HttpStatus(c.code)) << c.status;
  }
}

TEST(S3ErrorsTest, ClientErrorsKeepTheStatusMessageServerErrorsHideIt) {
  EXPECT_EQ(FromStatus(Status::InvalidArgument("part 3 is too small")).message, "part 3 is too small");
  EXPECT_EQ(FromStatus(Status::InvalidArgument()).message, S3DefaultMessage(S3Code::kInvalidArgument));
  EXPECT_EQ(FromStatus(Status::IOError("/var/lib/cairn/seg/00000001.seg: EIO")).message,
            S3DefaultMessage(S3Code::kInternalError));
  EXPECT_EQ(FromStatus(Status::Busy("queue full")).message, S3DefaultMessage(S3Code::kSlowDown));
}

// Codes added to error_codes.h by other groups map by name when S3 has a code of that name. The
// test walks the table itself, so it holds whichever groups exist.
TEST(S3ErrorsTest, MapsEveryCodeNamedAfterAnS3CodeByName) {
  int mapped = 0;
#define CAIRN_CHECK_ROW(name, value, desc)                              \
  {                                                                     \
    S3Code expected;                                                    \
    const std::string_view n = #name;                                   \
    if (n != "InvalidArgument" && S3CodeFromName(n, &expected)) {       \
      const S3Error e = FromStatus(Status(StatusCode::k##name, "why")); \
      EXPECT_EQ(S3CodeName(e.code), n);                                 \
      if (S3HttpStatus(expected) < 500) {                               \
        EXPECT_EQ(e.message, "why") << n;                               \
      }                                                                 \
      ++mapped;                                                         \
    }                                                                   \
  }
  CAIRN_ERROR_CODES(CAIRN_CHECK_ROW)
#undef CAIRN_CHECK_ROW
  EXPECT_GE(mapped, 6);
}

// The auth and meta groups, by the names they have in error_codes.h.
TEST(S3ErrorsTest, MapsTheAuthAndMetaGroups) {
  const std::pair<std::string_view, S3Code> kExpected[] = {
      {"AccessDenied", S3Code::kAccessDenied},
      {"InvalidAccessKeyId", S3Code::kInvalidAccessKeyId},
      {"SignatureDoesNotMatch", S3Code::kSignatureDoesNotMatch},
      {"RequestTimeTooSkewed", S3Code::kRequestTimeTooSkewed},
      {"RequestExpired", S3Code::kAccessDenied},
      {"AuthorizationHeaderMalformed", S3Code::kAuthorizationHeaderMalformed},
      {"AuthorizationQueryMalformed", S3Code::kAuthorizationQueryParametersError},
      {"InvalidAuthRequest", S3Code::kInvalidRequest},
      {"ContentSha256Mismatch", S3Code::kXAmzContentSHA256Mismatch},
      {"IncompleteBody", S3Code::kIncompleteBody},
      {"InvalidChunkSize", S3Code::kInvalidChunkSizeError},
      {"NoSuchBucket", S3Code::kNoSuchBucket},
      {"BucketNotEmpty", S3Code::kBucketNotEmpty},
      {"NoSuchUpload", S3Code::kNoSuchUpload},
      {"PreconditionFailed", S3Code::kPreconditionFailed},
      {"InvalidPart", S3Code::kInvalidPart},
      {"InvalidPartOrder", S3Code::kInvalidPartOrder},
  };
  for (const auto& [name, code] : kExpected) {
    bool found = false;
#define CAIRN_GROUP_ROW(row_name, value, desc)                          \
  if (std::string_view(#row_name) == name) {                            \
    found = true;                                                       \
    const S3Error e = FromStatus(Status(StatusCode::k##row_name, "m")); \
    EXPECT_EQ(S3CodeName(e.code), S3CodeName(code)) << name;            \
    EXPECT_EQ(e.http_status, S3HttpStatus(code)) << name;               \
  }
    CAIRN_ERROR_CODES(CAIRN_GROUP_ROW)
#undef CAIRN_GROUP_ROW
    EXPECT_TRUE(found) << name << " is not in error_codes.h (renamed?)";
  }
}

// A code in the auth (400+), s3 (500+) or meta (600+) groups exists because the gateway must
// answer it with its own S3 code; falling through to InternalError means the mapping is missing.
TEST(S3ErrorsTest, NoSubsystemCodeFallsThroughToInternalError) {
#define CAIRN_FALLTHROUGH_ROW(name, value, desc)                                                   \
  if ((value) >= 400) {                                                                            \
    EXPECT_NE(FromStatus(Status(StatusCode::k##name, "m")).code, S3Code::kInternalError) << #name; \
  }
  CAIRN_ERROR_CODES(CAIRN_FALLTHROUGH_ROW)
#undef CAIRN_FALLTHROUGH_ROW
}

TEST(S3ErrorsTest, RequestExpiredIsAccessDeniedWithS3sMessage) {
  bool present = false;
#define CAIRN_EXPIRED_ROW(name, value, desc)                                       \
  if (std::string_view(#name) == "RequestExpired") {                               \
    present = true;                                                                \
    const S3Error e = FromStatus(Status(StatusCode::k##name, "expired at 12:00")); \
    EXPECT_EQ(e.code, S3Code::kAccessDenied);                                      \
    EXPECT_EQ(e.http_status, 403);                                                 \
    EXPECT_EQ(e.message, kRequestHasExpired);                                      \
  }
  CAIRN_ERROR_CODES(CAIRN_EXPIRED_ROW)
#undef CAIRN_EXPIRED_ROW
  if (!present) GTEST_SKIP() << "error_codes.h has no RequestExpired yet";
}

}  // namespace
}  // namespace cairn::gateway
