// Tests for SigV4 verification: the worked examples from the AWS S3 documentation (same
// credentials, date, requests and expected values), then the ways a request can be wrong.
#include "gateway/sigv4.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "common/crypto.h"
#include "test_util.h"

namespace cairn::gateway {
namespace {

// The credentials, clock and region of the published examples.
constexpr std::string_view kAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kRegion = "us-east-1";
constexpr std::string_view kTimestamp = "20130524T000000Z";
constexpr std::string_view kScope = "20130524/us-east-1/s3/aws4_request";
constexpr int64_t kNow = 1369353600;  // 2013-05-24T00:00:00Z
constexpr std::string_view kHost = "examplebucket.s3.amazonaws.com";
constexpr std::string_view kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string Sha256Hex(std::string_view s) { return crypto::HexEncode(crypto::Sha256(s)); }

std::span<const std::byte> Bytes(std::string_view s) { return crypto::AsBytes(s); }

SecretLookup ExampleLookup(std::string secret = std::string(kSecret)) {
  return [secret](std::string_view key) -> std::optional<std::string> {
    if (key == kAccessKey) return secret;
    return std::nullopt;
  };
}

std::string AuthorizationFor(std::string_view signed_headers, std::string_view signature) {
  return "AWS4-HMAC-SHA256 Credential=" + std::string(kAccessKey) + "/" + std::string(kScope) +
         ",SignedHeaders=" + std::string(signed_headers) + ",Signature=" + std::string(signature);
}

std::vector<std::string> Split(std::string_view list) {
  std::vector<std::string> out;
  while (true) {
    const size_t semi = list.find(';');
    out.emplace_back(list.substr(0, semi));
    if (semi == std::string_view::npos) return out;
    list.remove_prefix(semi + 1);
  }
}

class SigV4Test : public ::testing::Test {
 protected:
  // Checks the three published intermediate values for a request, and returns the signature.
  static void ExpectSigningSteps(const SigV4Request& request, std::string_view signed_headers,
                                 std::string_view payload_hash, bool presigned, std::string_view canonical,
                                 std::string_view string_to_sign, std::string_view signature) {
    auto built = BuildCanonicalRequest(request, Split(signed_headers), payload_hash, presigned);
    ASSERT_OK(built);
    EXPECT_EQ(*built, canonical);
    const std::string sts = BuildStringToSign(kTimestamp, kScope, *built);
    EXPECT_EQ(sts, string_to_sign);
    EXPECT_EQ(ComputeSignature(DeriveSigningKey(kSecret, "20130524", kRegion, "s3"), sts), signature);
  }

  static Result<AuthResult> Verify(const SigV4Request& request, int64_t now = kNow) {
    return VerifyRequest(request, ExampleLookup(), now, kRegion);
  }

  // Signs `request` with the example credentials as a client would, adding Authorization.
  static void SignWithHeader(SigV4Request* request, std::string_view signed_headers, std::string_view payload_hash,
                             std::string_view timestamp = kTimestamp) {
    auto canonical = BuildCanonicalRequest(*request, Split(signed_headers), payload_hash, /*presigned=*/false);
    ASSERT_OK(canonical);
    const std::string scope = std::string(timestamp.substr(0, 8)) + "/us-east-1/s3/aws4_request";
    const std::string sig = ComputeSignature(DeriveSigningKey(kSecret, timestamp.substr(0, 8), kRegion, "s3"),
                                             BuildStringToSign(timestamp, scope, *canonical));
    request->headers.emplace_back("authorization", "AWS4-HMAC-SHA256 Credential=" + std::string(kAccessKey) + "/" +
                                                       scope + ", SignedHeaders=" + std::string(signed_headers) +
                                                       ", Signature=" + sig);
  }

  // Example: GET Object, the first 10 bytes of test.txt.
  static SigV4Request GetObjectRequest() {
    SigV4Request r{"GET", "/test.txt", "", {}};
    r.headers = {{"host", std::string(kHost)},
                 {"range", "bytes=0-9"},
                 {"x-amz-content-sha256", std::string(kEmptySha256)},
                 {"x-amz-date", std::string(kTimestamp)}};
    return r;
  }
  static constexpr std::string_view kGetObjectSignature =
      "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
  static SigV4Request SignedGetObject() {
    SigV4Request r = GetObjectRequest();
    r.headers.emplace_back("authorization",
                           AuthorizationFor("host;range;x-amz-content-sha256;x-amz-date", kGetObjectSignature));
    return r;
  }

  // Example: Get Bucket (List Objects), max-keys=2&prefix=J.
  static SigV4Request SignedListObjects() {
    SigV4Request r{"GET", "/", "max-keys=2&prefix=J", {}};
    r.headers = {
        {"host", std::string(kHost)},
        {"x-amz-content-sha256", std::string(kEmptySha256)},
        {"x-amz-date", std::string(kTimestamp)},
        {"authorization", AuthorizationFor("host;x-amz-content-sha256;x-amz-date",
                                           "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")}};
    return r;
  }

  static constexpr std::string_view kPresignedQuery =
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F"
      "aws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
      "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
  static SigV4Request PresignedGet() {
    SigV4Request r{"GET", "/test.txt", kPresignedQuery, {}};
    r.headers = {{"host", std::string(kHost)}};
    return r;
  }
};

// ---- The published examples ----

TEST_F(SigV4Test, GetObjectExample) {
  ExpectSigningSteps(GetObjectRequest(), "host;range;x-amz-content-sha256;x-amz-date", kEmptySha256,
                     /*presigned=*/false,
                     "GET\n/test.txt\n\n"
                     "host:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
                     "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
                     "x-amz-date:20130524T000000Z\n\n"
                     "host;range;x-amz-content-sha256;x-amz-date\n"
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                     "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
                     kGetObjectSignature);

  auto auth = Verify(SignedGetObject());
  ASSERT_OK(auth);
  EXPECT_FALSE(auth->anonymous);
  EXPECT_EQ(auth->method, AuthMethod::kHeader);
  EXPECT_EQ(auth->access_key, kAccessKey);
  EXPECT_EQ(auth->request_time, kNow);
  EXPECT_EQ(auth->payload_mode, PayloadMode::kSignedSha256);
  EXPECT_OK(CheckPayloadSha256(*auth, crypto::Sha256("")));
}

TEST_F(SigV4Test, PutObjectExample) {
  const std::string body = "Welcome to Amazon S3.";
  ASSERT_EQ(Sha256Hex(body), "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  // The key is sent as "test$file.text"; its canonical form encodes the '$'.
  SigV4Request r{"PUT", "/test$file.text", "", {}};
  r.headers = {{"date", "Fri, 24 May 2013 00:00:00 GMT"},
               {"host", std::string(kHost)},
               {"x-amz-content-sha256", Sha256Hex(body)},
               {"x-amz-date", std::string(kTimestamp)},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  const std::string_view signed_headers = "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class";
  const std::string_view signature = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";
  ExpectSigningSteps(r, signed_headers, Sha256Hex(body), /*presigned=*/false,
                     "PUT\n/test%24file.text\n\n"
                     "date:Fri, 24 May 2013 00:00:00 GMT\nhost:examplebucket.s3.amazonaws.com\n"
                     "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
                     "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
                     "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
                     "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
                     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                     "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
                     signature);

  r.headers.emplace_back("authorization", AuthorizationFor(signed_headers, signature));
  auto auth = Verify(r);
  ASSERT_OK(auth);
  EXPECT_EQ(auth->payload_mode, PayloadMode::kSignedSha256);
  EXPECT_EQ(crypto::HexEncode(auth->payload_sha256), Sha256Hex(body));
  EXPECT_OK(CheckPayloadSha256(*auth, crypto::Sha256(body)));
  EXPECT_TRUE(CheckPayloadSha256(*auth, crypto::Sha256("Welcome to Amazon S4.")).IsContentSha256Mismatch());
}

TEST_F(SigV4Test, GetBucketLifecycleExample) {
  SigV4Request r{"GET", "/", "lifecycle", {}};
  r.headers = {{"host", std::string(kHost)},
               {"x-amz-content-sha256", std::string(kEmptySha256)},
               {"x-amz-date", std::string(kTimestamp)}};
  const std::string_view signature = "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543";
  ExpectSigningSteps(r, "host;x-amz-content-sha256;x-amz-date", kEmptySha256, /*presigned=*/false,
                     "GET\n/\nlifecycle=\n"
                     "host:examplebucket.s3.amazonaws.com\n"
                     "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
                     "x-amz-date:20130524T000000Z\n\n"
                     "host;x-amz-content-sha256;x-amz-date\n"
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                     "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
                     signature);
  r.headers.emplace_back("authorization", AuthorizationFor("host;x-amz-content-sha256;x-amz-date", signature));
  EXPECT_OK(Verify(r));
}

TEST_F(SigV4Test, ListObjectsExample) {
  SigV4Request r = SignedListObjects();
  ExpectSigningSteps(r, "host;x-amz-content-sha256;x-amz-date", kEmptySha256, /*presigned=*/false,
                     "GET\n/\nmax-keys=2&prefix=J\n"
                     "host:examplebucket.s3.amazonaws.com\n"
                     "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
                     "x-amz-date:20130524T000000Z\n\n"
                     "host;x-amz-content-sha256;x-amz-date\n"
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                     "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
                     "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  EXPECT_OK(Verify(r));
  // The query order on the wire does not matter: the canonical form sorts.
  r.raw_query = "prefix=J&max-keys=2";
  EXPECT_OK(Verify(r));
}

TEST_F(SigV4Test, PresignedGetExample) {
  ExpectSigningSteps(PresignedGet(), "host", "UNSIGNED-PAYLOAD", /*presigned=*/true,
                     "GET\n/test.txt\n"
                     "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
                     "us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
                     "X-Amz-SignedHeaders=host\n"
                     "host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD",
                     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                     "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04",
                     "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  auto auth = Verify(PresignedGet());
  ASSERT_OK(auth);
  EXPECT_EQ(auth->method, AuthMethod::kPresigned);
  EXPECT_EQ(auth->access_key, kAccessKey);
  EXPECT_EQ(auth->payload_mode, PayloadMode::kUnsigned);
}

// The chunked-upload example: a 66560-byte object of 'a', sent as 64 KiB + 1 KiB + final chunk.
constexpr std::string_view kSeedSignature = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
constexpr std::string_view kChunkSignatures[] = {
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
};

SigV4Request StreamingPutRequest() {
  SigV4Request r{"PUT", "/examplebucket/chunkObject.txt", "", {}};
  r.headers = {{"content-encoding", "aws-chunked"},
               {"content-length", "66824"},
               {"host", "s3.amazonaws.com"},
               {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
               {"x-amz-date", std::string(kTimestamp)},
               {"x-amz-decoded-content-length", "66560"},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  return r;
}
constexpr std::string_view kStreamingSignedHeaders =
    "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
    "x-amz-storage-class";

std::string ExampleChunkedBody() {
  std::string body;
  const size_t sizes[] = {65536, 1024, 0};
  for (size_t i = 0; i < 3; ++i) {
    char size_hex[32];
    std::snprintf(size_hex, sizeof(size_hex), "%zx", sizes[i]);
    body += std::string(size_hex) + ";chunk-signature=" + std::string(kChunkSignatures[i]) + "\r\n";
    body += std::string(sizes[i], 'a') + "\r\n";
  }
  return body;
}

TEST_F(SigV4Test, StreamingSeedExample) {
  ExpectSigningSteps(StreamingPutRequest(), kStreamingSignedHeaders, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                     /*presigned=*/false,
                     "PUT\n/examplebucket/chunkObject.txt\n\n"
                     "content-encoding:aws-chunked\ncontent-length:66824\nhost:s3.amazonaws.com\n"
                     "x-amz-content-sha256:STREAMING-AWS4-HMAC-SHA256-PAYLOAD\nx-amz-date:20130524T000000Z\n"
                     "x-amz-decoded-content-length:66560\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
                     "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                     "x-amz-decoded-content-length;x-amz-storage-class\n"
                     "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                     "cee3fed04b70f867d036f722359b0b1f2f0e5dc0efadbc082b76c4c60e316455",
                     kSeedSignature);

  SigV4Request r = StreamingPutRequest();
  r.headers.emplace_back("authorization", AuthorizationFor(kStreamingSignedHeaders, kSeedSignature));
  auto auth = Verify(r);
  ASSERT_OK(auth);
  EXPECT_EQ(auth->payload_mode, PayloadMode::kStreamingSigned);
  EXPECT_EQ(auth->decoded_content_length, 66560u);
  ASSERT_TRUE(auth->streaming.has_value());
  EXPECT_EQ(auth->streaming->seed_signature, kSeedSignature);
  EXPECT_EQ(auth->streaming->scope, kScope);
  EXPECT_EQ(auth->streaming->timestamp, kTimestamp);
  EXPECT_EQ(auth->streaming->signing_key, DeriveSigningKey(kSecret, "20130524", kRegion, "s3"));
}

TEST_F(SigV4Test, StreamingChunkExample) {
  // The first chunk's string to sign, as published.
  const std::string chunk1(65536, 'a');
  EXPECT_EQ(BuildChunkStringToSign(kTimestamp, kScope, kSeedSignature, crypto::Sha256(chunk1)),
            "AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "bf718b6f653bebc184e1479f1935b8da974d701b893afcf49e701f3e2f9f9c5a");
  EXPECT_EQ(Sha256Hex(std::string(1024, 'a')), "2edc986847e209b4016e141a6dc8716d3207350f416969382d431539bf292e4a");

  ChunkSignatureVerifier verifier(StreamingContext{DeriveSigningKey(kSecret, "20130524", kRegion, "s3"),
                                                   std::string(kSeedSignature), std::string(kScope),
                                                   std::string(kTimestamp)});
  EXPECT_OK(verifier.VerifyChunk(kChunkSignatures[0], Bytes(chunk1)));
  EXPECT_EQ(verifier.previous_signature(), kChunkSignatures[0]);
  EXPECT_OK(verifier.VerifyChunk(kChunkSignatures[1], Bytes(std::string(1024, 'a'))));
  EXPECT_OK(verifier.VerifyChunk(kChunkSignatures[2], {}));
}

// ---- Verification fails when anything signed changes ----

TEST_F(SigV4Test, ChangedSignedHeaderFails) {
  const std::pair<std::string_view, std::string_view> changes[] = {{"host", "otherbucket.s3.amazonaws.com"},
                                                                   {"range", "bytes=0-10"},
                                                                   {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
                                                                   {"x-amz-date", "20130524T000001Z"}};
  for (const auto& [name, value] : changes) {
    SigV4Request r = SignedGetObject();
    for (auto& [n, v] : r.headers) {
      if (n == name) v = value;
    }
    EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch()) << name;
  }
  SigV4Request r = SignedGetObject();
  r.headers.erase(r.headers.begin() + 1);  // drop range
  EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch());
}

TEST_F(SigV4Test, ChangedPathFails) {
  SigV4Request r = SignedGetObject();
  r.path = "/test.txt2";
  EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch());
  r.path = "/Test.txt";
  EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch());
  // An equivalent encoding of the same path still verifies.
  r.path = "/test%2Etxt";
  EXPECT_OK(Verify(r));
}

TEST_F(SigV4Test, ChangedQueryFails) {
  SigV4Request r = SignedListObjects();
  r.raw_query = "max-keys=2&prefix=K";
  EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch());
  r.raw_query = "max-keys=2&prefix=J&delimiter=%2F";
  EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch());
  r.raw_query = "max-keys=2";
  EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch());

  SigV4Request p = PresignedGet();
  const std::string extra = std::string(kPresignedQuery) + "&response-content-type=text%2Fhtml";
  p.raw_query = extra;
  EXPECT_TRUE(Verify(p).status().IsSignatureDoesNotMatch());
}

TEST_F(SigV4Test, ChangedMethodOrSignatureFails) {
  SigV4Request r = SignedGetObject();
  r.method = "HEAD";
  EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch());
  SigV4Request s = GetObjectRequest();
  std::string sig(kGetObjectSignature);
  sig[10] = sig[10] == '0' ? '1' : '0';
  s.headers.emplace_back("authorization", AuthorizationFor("host;range;x-amz-content-sha256;x-amz-date", sig));
  EXPECT_TRUE(Verify(s).status().IsSignatureDoesNotMatch());
}

TEST_F(SigV4Test, WrongSecretFails) {
  auto auth =
      VerifyRequest(SignedGetObject(), ExampleLookup("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ"), kNow, kRegion);
  EXPECT_TRUE(auth.status().IsSignatureDoesNotMatch()) << auth.status();
  auto presigned = VerifyRequest(PresignedGet(), ExampleLookup("other"), kNow, kRegion);
  EXPECT_TRUE(presigned.status().IsSignatureDoesNotMatch());
}

TEST_F(SigV4Test, UnknownAccessKey) {
  auto nobody = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  EXPECT_TRUE(VerifyRequest(SignedGetObject(), nobody, kNow, kRegion).status().IsInvalidAccessKeyId());
  EXPECT_TRUE(VerifyRequest(PresignedGet(), nobody, kNow, kRegion).status().IsInvalidAccessKeyId());
}

// ---- Time ----

TEST_F(SigV4Test, ClockSkewLimitIsFifteenMinutes) {
  EXPECT_OK(Verify(SignedGetObject(), kNow + 14 * 60));
  EXPECT_OK(Verify(SignedGetObject(), kNow - 14 * 60));
  EXPECT_OK(Verify(SignedGetObject(), kNow + 15 * 60));
  EXPECT_TRUE(Verify(SignedGetObject(), kNow + 16 * 60).status().IsRequestTimeTooSkewed());
  EXPECT_TRUE(Verify(SignedGetObject(), kNow - 16 * 60).status().IsRequestTimeTooSkewed());
}

TEST_F(SigV4Test, PresignedUrlExpires) {
  EXPECT_OK(Verify(PresignedGet(), kNow + 86400));
  EXPECT_TRUE(Verify(PresignedGet(), kNow + 86401).status().IsRequestExpired());
  // Dated in the future beyond the skew allowance: not valid yet.
  EXPECT_OK(Verify(PresignedGet(), kNow - 14 * 60));
  EXPECT_TRUE(Verify(PresignedGet(), kNow - 16 * 60).status().IsRequestTimeTooSkewed());
}

TEST_F(SigV4Test, PresignedExpiryAboveSevenDaysIsMalformed) {
  SigV4Request r = PresignedGet();
  std::string q(kPresignedQuery);
  q.replace(q.find("86400"), 5, "604801");
  r.raw_query = q;
  EXPECT_TRUE(Verify(r).status().IsAuthorizationQueryMalformed());
  q.replace(q.find("604801"), 6, "-1");
  r.raw_query = q;
  EXPECT_TRUE(Verify(r).status().IsAuthorizationQueryMalformed());
}

TEST_F(SigV4Test, DateHeaderAloneDatesTheRequest) {
  SigV4Request r{"GET", "/photos/a%20b.jpg", "versionId=3", {}};
  r.headers = {{"host", std::string(kHost)},
               {"date", "Fri, 24 May 2013 00:00:00 GMT"},
               {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}};
  SignWithHeader(&r, "date;host;x-amz-content-sha256", "UNSIGNED-PAYLOAD");
  auto auth = Verify(r);
  ASSERT_OK(auth);
  EXPECT_EQ(auth->request_time, kNow);
  EXPECT_EQ(auth->payload_mode, PayloadMode::kUnsigned);
  EXPECT_TRUE(Verify(r, kNow + 3600).status().IsRequestTimeTooSkewed());
}

TEST_F(SigV4Test, MissingOrBadDateIsAccessDenied) {
  SigV4Request r = SignedGetObject();
  for (auto& [n, v] : r.headers) {
    if (n == "x-amz-date") v = "2013-05-24T00:00:00Z";
  }
  EXPECT_TRUE(Verify(r).status().IsAccessDenied());
}

// ---- Malformed and unsupported authentication ----

TEST_F(SigV4Test, MalformedAuthorizationHeaders) {
  const std::string cred = "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request";
  const std::string sh = "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date";
  const std::string sig = "Signature=" + std::string(kGetObjectSignature);
  const std::vector<std::string> bad = {
      "",
      "   ",
      "AWS4-HMAC-SHA256",
      "AWS4-HMAC-SHA256 ",
      "AWS4-HMAC-SHA256 " + cred,
      "AWS4-HMAC-SHA256 " + cred + "," + sh,
      "AWS4-HMAC-SHA256 " + sh + "," + sig,
      "AWS4-HMAC-SHA256 " + cred + "," + sh + "," + sig + "," + sig,
      "AWS4-HMAC-SHA256 " + cred + "," + sh + "," + sig + ",Extra=1",
      "AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature=abc",
      "AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature=" + std::string(64, 'G'),
      "AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature",
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3," + sh + "," + sig,
      "AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request," + sh + "," + sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/2013052/us-east-1/s3/aws4_request," + sh + "," + sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws5_request," + sh + "," + sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/eu-west-1/s3/aws4_request," + sh + "," + sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/ec2/aws4_request," + sh + "," + sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130525/us-east-1/s3/aws4_request," + sh + "," + sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE//us-east-1/s3/aws4_request," + sh + "," + sig,
      "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=," + sig,
      "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=range;host;x-amz-date," + sig,
      "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host;Range;x-amz-date," + sig,
      "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host;;x-amz-date," + sig,
      "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host;host;x-amz-date," + sig,
      "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=range;x-amz-date," + sig,  // no host
      "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host;range," + sig,        // no date
      "AWS4-HMAC-SHA256 Credential=AKIA" + std::string(1, '\0') + "/20130524/us-east-1/s3/aws4_request," + sh + "," +
          sig,
      "AWS4-HMAC-SHA256 Credential=AK IA/20130524/us-east-1/s3/aws4_request," + sh + "," + sig,
  };
  for (const std::string& value : bad) {
    SigV4Request r = GetObjectRequest();
    r.headers.emplace_back("authorization", value);
    const Status s = Verify(r).status();
    EXPECT_TRUE(s.IsAuthorizationHeaderMalformed()) << "'" << value << "' -> " << s;
  }
  // Spaces after the commas, as some SDKs send, are fine.
  SigV4Request r = GetObjectRequest();
  r.headers.emplace_back("authorization", "AWS4-HMAC-SHA256  " + cred + ",  " + sh + " , " + sig);
  EXPECT_OK(Verify(r));
}

TEST_F(SigV4Test, OtherAlgorithmsAreUnsupported) {
  for (const char* value : {"AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", "AWS4-ECDSA-P256-SHA256 x=y",
                            "Bearer abc", "aws4-hmac-sha256 Credential=x"}) {
    SigV4Request r = GetObjectRequest();
    r.headers.emplace_back("authorization", value);
    EXPECT_TRUE(Verify(r).status().IsInvalidAuthRequest()) << value;
  }
  SigV4Request v2{"GET", "/test.txt", "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1&Signature=abc", {}};
  EXPECT_TRUE(Verify(v2).status().IsInvalidAuthRequest());
  SigV4Request p = PresignedGet();
  const std::string ecdsa = "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&" + std::string(kPresignedQuery.substr(33));
  p.raw_query = ecdsa;
  EXPECT_TRUE(Verify(p).status().IsInvalidAuthRequest()) << Verify(p).status();
}

TEST_F(SigV4Test, HeaderAndQueryAuthTogetherAreRefused) {
  SigV4Request r = SignedGetObject();
  r.raw_query = kPresignedQuery;
  EXPECT_TRUE(Verify(r).status().IsInvalidAuthRequest());
}

TEST_F(SigV4Test, MalformedPresignedQueries) {
  const std::string q(kPresignedQuery);
  auto without = [&](std::string_view param) {
    const size_t at = q.find(param);
    const size_t end = q.find('&', at);
    std::string out = q;
    out.erase(at, end == std::string::npos ? std::string::npos : end - at + 1);
    return out;
  };
  for (const char* param : {"X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"}) {
    SigV4Request r = PresignedGet();
    const std::string query = without(param);
    r.raw_query = query;
    EXPECT_TRUE(Verify(r).status().IsAuthorizationQueryMalformed()) << param;
  }
  for (const std::string& query :
       {q + "&X-Amz-Date=20130524T000000Z", std::string("X-Amz-Signature=abc&") + without("X-Amz-Signature"),
        q.substr(0, q.find("%2Fus-east-1")) + "%2Feu-west-1" + q.substr(q.find("%2Fs3")),
        q.substr(0, q.find("X-Amz-Date=")) + "X-Amz-Date=20130524" + q.substr(q.find("&X-Amz-Expires")),
        q.substr(0, q.find("X-Amz-SignedHeaders=")) + "X-Amz-SignedHeaders=range" +
            q.substr(q.find("&X-Amz-Signature"))}) {
    SigV4Request r = PresignedGet();
    r.raw_query = query;
    EXPECT_TRUE(Verify(r).status().IsAuthorizationQueryMalformed()) << query << " -> " << Verify(r).status();
  }
}

TEST_F(SigV4Test, UnsignedAmzHeaderIsAccessDenied) {
  SigV4Request r = SignedGetObject();
  r.headers.emplace_back("x-amz-copy-source", "/otherbucket/secret");
  EXPECT_TRUE(Verify(r).status().IsAccessDenied());
  SigV4Request p = PresignedGet();
  p.headers.emplace_back("x-amz-acl", "public-read");
  EXPECT_TRUE(Verify(p).status().IsAccessDenied());
  // Headers outside x-amz-* may travel unsigned.
  SigV4Request q = SignedGetObject();
  q.headers.emplace_back("user-agent", "test");
  EXPECT_OK(Verify(q));
}

TEST_F(SigV4Test, PayloadHeaderRules) {
  SigV4Request r = GetObjectRequest();
  r.headers.erase(r.headers.begin() + 2);  // x-amz-content-sha256
  SignWithHeader(&r, "host;range;x-amz-date", kEmptySha256);
  EXPECT_TRUE(Verify(r).status().IsInvalidAuthRequest());

  for (const char* mode : {"STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"}) {
    SigV4Request t = GetObjectRequest();
    t.headers[2].second = mode;
    SignWithHeader(&t, "host;range;x-amz-content-sha256;x-amz-date", mode);
    EXPECT_TRUE(Verify(t).status().IsInvalidAuthRequest()) << mode;
  }
  SigV4Request bad = GetObjectRequest();
  bad.headers[2].second = "not-a-hash";
  SignWithHeader(&bad, "host;range;x-amz-content-sha256;x-amz-date", "not-a-hash");
  EXPECT_TRUE(Verify(bad).status().IsInvalidArgument());

  SigV4Request no_length = StreamingPutRequest();
  no_length.headers.erase(no_length.headers.begin() + 5);
  no_length.headers.emplace_back("authorization", AuthorizationFor(kStreamingSignedHeaders, kSeedSignature));
  EXPECT_TRUE(Verify(no_length).status().IsInvalidAuthRequest());
}

TEST_F(SigV4Test, NoAuthenticationIsAnonymous) {
  SigV4Request r{"GET", "/public/index.html", "versionId=1", {{"host", std::string(kHost)}}};
  auto auth = Verify(r);
  ASSERT_OK(auth);
  EXPECT_TRUE(auth->anonymous);
  EXPECT_EQ(auth->method, AuthMethod::kAnonymous);
  EXPECT_TRUE(auth->access_key.empty());
  EXPECT_EQ(auth->payload_mode, PayloadMode::kUnsigned);

  r.headers.emplace_back("x-amz-content-sha256", std::string(kEmptySha256));
  auth = Verify(r);
  ASSERT_OK(auth);
  EXPECT_EQ(auth->payload_mode, PayloadMode::kSignedSha256);
  r.headers.back().second = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  EXPECT_TRUE(Verify(r).status().IsInvalidAuthRequest());
}

// ---- Canonical forms ----

TEST(SigV4CanonicalTest, UriKeepsSegmentsAndEncodesCanonically) {
  auto uri = [](std::string_view raw) {
    auto r = CanonicalUri(raw);
    return r.ok() ? *r : "error: " + r.status().ToString();
  };
  EXPECT_EQ(uri(""), "/");
  EXPECT_EQ(uri("/"), "/");
  EXPECT_EQ(uri("/test$file.text"), "/test%24file.text");
  EXPECT_EQ(uri("/test%24file.text"), "/test%24file.text");
  EXPECT_EQ(uri("/a%2fb/c"), "/a%2Fb/c");  // an encoded slash stays inside its segment
  EXPECT_EQ(uri("//x/./../y/"), "//x/./../y/");
  EXPECT_EQ(uri("/a b+c~d"), "/a%20b%2Bc~d");
  EXPECT_EQ(uri("/caf%c3%a9"), "/caf%C3%A9");
  EXPECT_EQ(uri("/%7Euser"), "/~user");
  for (std::string_view bad : {"test.txt", "/%", "/%4", "/%zz", "/a%g1"}) {
    EXPECT_TRUE(CanonicalUri(bad).status().IsInvalidArgument()) << bad;
  }
}

TEST(SigV4CanonicalTest, QuerySortsAndEncodes) {
  auto query = [](std::string_view raw, bool presigned = false) {
    auto r = CanonicalQuery(raw, presigned);
    return r.ok() ? *r : "error: " + r.status().ToString();
  };
  EXPECT_EQ(query(""), "");
  EXPECT_EQ(query("uploads"), "uploads=");
  EXPECT_EQ(query("b=2&a=1&a=0"), "a=0&a=1&b=2");
  EXPECT_EQ(query("prefix=a+b&delimiter=%2f"), "delimiter=%2F&prefix=a%20b");
  EXPECT_EQ(query("k=%2B&&x="), "k=%2B&x=");
  EXPECT_EQ(query("k=v=w"), "k=v%3Dw");
  EXPECT_EQ(query("a=1&X-Amz-Signature=ff", /*presigned=*/true), "a=1");
  EXPECT_EQ(query("a=1&X-Amz-Signature=ff"), "X-Amz-Signature=ff&a=1");
  EXPECT_TRUE(CanonicalQuery("a=%", false).status().IsInvalidArgument());
}

TEST(SigV4CanonicalTest, HeaderValuesAreTrimmedAndCollapsed) {
  SigV4Request r{
      "GET", "/", "", {{"host", "  h  "}, {"x-amz-meta-a", " one   two\t three "}, {"x-amz-meta-a", "four"}}};
  auto c = BuildCanonicalRequest(r, {"host", "x-amz-meta-a"}, "UNSIGNED-PAYLOAD", false);
  ASSERT_OK(c);
  EXPECT_EQ(*c, "GET\n/\n\nhost:h\nx-amz-meta-a:one two three,four\n\nhost;x-amz-meta-a\nUNSIGNED-PAYLOAD");
}

TEST(SigV4DateTest, ParsesAndFormats) {
  EXPECT_EQ(ParseAmzDate("20130524T000000Z"), 1369353600);
  EXPECT_EQ(ParseAmzDate("19700101T000000Z"), 0);
  EXPECT_EQ(ParseAmzDate("20240229T235959Z"), 1709251199);
  EXPECT_EQ(FormatAmzDate(1369353600), "20130524T000000Z");
  EXPECT_EQ(FormatAmzDate(1709251199), "20240229T235959Z");
  for (std::string_view bad :
       {"", "20130524T000000", "20130524T000000z", "20130230T000000Z", "20131324T000000Z", "20130524T240000Z",
        "20130524T006000Z", "2013-524T000000Z", "20130524 000000Z", "201305240000000Z", "+0130524T000000Z"}) {
    EXPECT_FALSE(ParseAmzDate(bad).has_value()) << bad;
  }
  EXPECT_EQ(ParseHttpDate("Fri, 24 May 2013 00:00:00 GMT"), 1369353600);
  EXPECT_EQ(ParseHttpDate("Thu, 29 Feb 2024 23:59:59 GMT"), 1709251199);
  for (std::string_view bad :
       {"Fri, 24 May 2013 00:00:00 UTC", "Fri, 24 Mai 2013 00:00:00 GMT", "Xyz, 24 May 2013 00:00:00 GMT",
        "Fri, 31 Jun 2013 00:00:00 GMT", "Friday, 24-May-13 00:00:00 GMT", "Fri, 24 May 2013 00:00:00 GMT "}) {
    EXPECT_FALSE(ParseHttpDate(bad).has_value()) << bad;
  }
}

// ---- aws-chunked bodies ----

class AwsChunkedTest : public ::testing::Test {
 protected:
  static StreamingContext ExampleContext() {
    return StreamingContext{DeriveSigningKey(kSecret, "20130524", kRegion, "s3"), std::string(kSeedSignature),
                            std::string(kScope), std::string(kTimestamp)};
  }

  struct Outcome {
    Status feed;
    Status finish;
    std::string data;
    uint64_t decoded_length = 0;
    uint64_t chunks = 0;
  };

  // Feeds `body` split at `cuts` (sorted offsets) and reports what came out.
  static Outcome Decode(std::string_view body, const std::vector<size_t>& cuts,
                        AwsChunkedDecoder::Options options = DefaultOptions()) {
    AwsChunkedDecoder decoder(ChunkSignatureVerifier(ExampleContext()), options);
    Outcome out;
    auto sink = [&out](std::span<const std::byte> data) {
      out.data.append(reinterpret_cast<const char*>(data.data()), data.size());
      return Status::OK();
    };
    size_t start = 0;
    std::vector<size_t> ends = cuts;
    ends.push_back(body.size());
    for (size_t end : ends) {
      out.feed = decoder.Feed(Bytes(body.substr(start, end - start)), sink);
      start = end;
      if (!out.feed.ok()) break;
    }
    out.finish = decoder.Finish();
    out.decoded_length = decoder.decoded_length();
    out.chunks = decoder.chunks_verified();
    return out;
  }

  static AwsChunkedDecoder::Options DefaultOptions() {
    AwsChunkedDecoder::Options options;
    options.expected_decoded_length = 66560;
    return options;
  }

  // Frames and signs `chunks` (the empty final chunk is added) from the example seed.
  static std::string SignedBody(const std::vector<std::string>& chunks) {
    std::string body;
    std::string previous(kSeedSignature);
    const SigningKey key = DeriveSigningKey(kSecret, "20130524", kRegion, "s3");
    std::vector<std::string> all = chunks;
    all.emplace_back();
    for (const std::string& chunk : all) {
      previous = ComputeSignature(key, BuildChunkStringToSign(kTimestamp, kScope, previous, crypto::Sha256(chunk)));
      char size_hex[32];
      std::snprintf(size_hex, sizeof(size_hex), "%zx", chunk.size());
      body += std::string(size_hex) + ";chunk-signature=" + previous + "\r\n" + chunk + "\r\n";
    }
    return body;
  }
};

TEST_F(AwsChunkedTest, DecodesThePublishedExample) {
  const std::string body = ExampleChunkedBody();
  ASSERT_EQ(body.size(), 66824u);  // the example's Content-Length
  Outcome out = Decode(body, {});
  ASSERT_OK(out.feed);
  ASSERT_OK(out.finish);
  EXPECT_EQ(out.data, std::string(66560, 'a'));
  EXPECT_EQ(out.decoded_length, 66560u);
  EXPECT_EQ(out.chunks, 3u);
}

TEST_F(AwsChunkedTest, VerifierFromTheSeedRequestDecodesTheBody) {
  SigV4Request r = StreamingPutRequest();
  r.headers.emplace_back("authorization", AuthorizationFor(kStreamingSignedHeaders, kSeedSignature));
  auto auth = VerifyRequest(r, ExampleLookup(), kNow, kRegion);
  ASSERT_OK(auth);
  auto verifier = ChunkSignatureVerifier::FromAuthResult(*auth);
  ASSERT_OK(verifier);
  AwsChunkedDecoder decoder(std::move(*verifier), {.expected_decoded_length = auth->decoded_content_length});
  uint64_t seen = 0;
  ASSERT_OK(decoder.Feed(Bytes(ExampleChunkedBody()), [&seen](std::span<const std::byte> d) {
    seen += d.size();
    return Status::OK();
  }));
  ASSERT_OK(decoder.Finish());
  EXPECT_EQ(seen, 66560u);
  EXPECT_TRUE(decoder.done());

  AuthResult not_streaming;
  EXPECT_TRUE(ChunkSignatureVerifier::FromAuthResult(not_streaming).status().IsInvalidArgument());
}

TEST_F(AwsChunkedTest, AnySplitGivesTheSameResult) {
  const std::string body = ExampleChunkedBody();
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < body.size(); ++i) every_byte.push_back(i);
  const Outcome whole = Decode(body, {});
  const Outcome bytewise = Decode(body, every_byte);
  ASSERT_OK(bytewise.feed);
  ASSERT_OK(bytewise.finish);
  EXPECT_EQ(bytewise.data, whole.data);
  EXPECT_EQ(bytewise.chunks, whole.chunks);

  std::mt19937_64 rng(20130524);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<size_t> cuts;
    const size_t n = rng() % 40;
    for (size_t i = 0; i < n; ++i) cuts.push_back(rng() % (body.size() + 1));
    std::sort(cuts.begin(), cuts.end());
    const Outcome split = Decode(body, cuts);
    SCOPED_TRACE(trial);
    ASSERT_OK(split.feed);
    ASSERT_OK(split.finish);
    EXPECT_EQ(split.data, whole.data);
    EXPECT_EQ(split.decoded_length, 66560u);
  }
}

TEST_F(AwsChunkedTest, TamperedChunkFails) {
  std::string body = ExampleChunkedBody();
  body[100] = 'b';  // inside the first chunk's data
  Outcome out = Decode(body, {});
  EXPECT_TRUE(out.feed.IsSignatureDoesNotMatch()) << out.feed;
  EXPECT_TRUE(out.finish.IsSignatureDoesNotMatch()) << out.finish;

  // The second chunk's data, with byte-wise feeding.
  body = ExampleChunkedBody();
  body[65626 + 86 + 5] = 'b';
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < body.size(); ++i) every_byte.push_back(i);
  EXPECT_TRUE(Decode(body, every_byte).feed.IsSignatureDoesNotMatch());
}

TEST_F(AwsChunkedTest, TamperedOrReorderedSignaturesFail) {
  std::string body = ExampleChunkedBody();
  const size_t final_sig = body.rfind("chunk-signature=") + 16;
  body[final_sig] = body[final_sig] == '0' ? '1' : '0';
  EXPECT_TRUE(Decode(body, {}).feed.IsSignatureDoesNotMatch());

  // Chunks signed from another seed do not chain from this one.
  std::string replay = ExampleChunkedBody();
  const size_t first_sig = replay.find("chunk-signature=") + 16;
  replay.replace(first_sig, 64, kChunkSignatures[1]);
  EXPECT_TRUE(Decode(replay, {}).feed.IsSignatureDoesNotMatch());
}

TEST_F(AwsChunkedTest, TruncatedBodyIsIncomplete) {
  const std::string body = ExampleChunkedBody();
  for (size_t length : {size_t{0}, size_t{5}, size_t{88}, size_t{65626}, body.size() - 2, body.size() - 1}) {
    Outcome out = Decode(body.substr(0, length), {});
    EXPECT_OK(out.feed);
    EXPECT_TRUE(out.finish.IsIncompleteBody()) << length << " -> " << out.finish;
  }
}

TEST_F(AwsChunkedTest, MalformedFramingIsRejected) {
  const std::string sig(64, 'a');
  const std::vector<std::string> bad = {
      "zz;chunk-signature=" + sig + "\r\n",
      ";chunk-signature=" + sig + "\r\n",
      "10000\r\n",
      "10000;chunk-signature=abc\r\n",
      "10000;chunk-signature=" + sig + "\n",
      "10000;chunk-signatur=" + sig + "\r\n",
      "10000;chunk-signature=" + sig + "x\r\n",
      "10000000000000000;chunk-signature=" + sig + "\r\n",
      std::string(300, '1'),
  };
  for (const std::string& body : bad) {
    Outcome out = Decode(body, {});
    EXPECT_TRUE(out.feed.IsIncompleteBody()) << body.substr(0, 40) << " -> " << out.feed;
  }
  // Missing CRLF after data; bytes after the end.
  std::string no_crlf = SignedBody({std::string(9000, 'x')});
  no_crlf.erase(no_crlf.find("\r\n0;"), 2);
  EXPECT_TRUE(Decode(no_crlf, {}, {}).feed.IsIncompleteBody());
  const std::string trailing = ExampleChunkedBody() + "x";
  Outcome out = Decode(trailing, {});
  EXPECT_TRUE(out.feed.IsIncompleteBody());
  EXPECT_TRUE(out.finish.IsIncompleteBody());
}

TEST_F(AwsChunkedTest, ChunkSizeRules) {
  // A short chunk is allowed only as the last data chunk.
  EXPECT_OK(Decode(SignedBody({std::string(8192, 'x'), std::string(10, 'y')}), {}, {}).finish);
  EXPECT_TRUE(Decode(SignedBody({std::string(8191, 'x'), std::string(10, 'y')}), {}, {}).feed.IsInvalidChunkSize());
  AwsChunkedDecoder::Options lax;
  lax.min_chunk_size = 0;
  EXPECT_OK(Decode(SignedBody({"a", "b", "c"}), {}, lax).finish);

  AwsChunkedDecoder::Options small_max;
  small_max.max_chunk_size = 1000;
  EXPECT_TRUE(Decode(SignedBody({std::string(1001, 'x')}), {}, small_max).feed.IsInvalidChunkSize());
}

TEST_F(AwsChunkedTest, DecodedLengthMustMatch) {
  AwsChunkedDecoder::Options options;
  options.expected_decoded_length = 100;
  EXPECT_OK(Decode(SignedBody({std::string(100, 'x')}), {}, options).finish);
  EXPECT_TRUE(Decode(SignedBody({std::string(101, 'x')}), {}, options).feed.IsIncompleteBody());
  EXPECT_TRUE(Decode(SignedBody({std::string(99, 'x')}), {}, options).feed.IsIncompleteBody());
  // An empty object is a lone final chunk.
  options.expected_decoded_length = 0;
  Outcome empty = Decode(SignedBody({}), {}, options);
  EXPECT_OK(empty.finish);
  EXPECT_EQ(empty.chunks, 1u);
}

TEST_F(AwsChunkedTest, SinkErrorStopsDecoding) {
  AwsChunkedDecoder decoder(ChunkSignatureVerifier(ExampleContext()), DefaultOptions());
  const Status s = decoder.Feed(Bytes(ExampleChunkedBody()),
                                [](std::span<const std::byte>) { return Status::NoSpace("disk full"); });
  EXPECT_TRUE(s.IsNoSpace());
  EXPECT_TRUE(decoder.Finish().IsNoSpace());
}

// ---- Robustness: truncations and random bytes neither crash nor read out of bounds ----

TEST(SigV4RobustnessTest, TruncatedAndMangledInputs) {
  const std::string header =
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
  std::mt19937_64 rng(7);
  const SecretLookup lookup = ExampleLookup();
  for (size_t len = 0; len <= header.size(); ++len) {
    // Copy into an exactly-sized buffer so that an over-read is visible to sanitizers.
    const std::string prefix = header.substr(0, len);
    SigV4Request r{"GET",
                   "/test.txt",
                   "",
                   {{"host", "h"},
                    {"x-amz-date", "20130524T000000Z"},
                    {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
                    {"authorization", prefix}}};
    EXPECT_FALSE(VerifyRequest(r, lookup, kNow, kRegion).ok());
    std::string mangled = header;
    for (int i = 0; i < 4; ++i) mangled[rng() % mangled.size()] = static_cast<char>(rng());
    (void)ParseAuthorizationHeader(mangled);
  }
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng() % 4 == 0 ? '%' : rng());
    (void)CanonicalUri("/" + junk);
    (void)CanonicalQuery(junk, true);
    (void)ParseAmzDate(junk);
    (void)ParseHttpDate(junk);
    SigV4Request r{"GET", "/", junk, {}};
    (void)VerifyRequest(r, lookup, kNow, kRegion);
  }
}

// ---- crypto helpers ----

TEST(GatewayCryptoTest, KnownDigests) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(crypto::HexEncode(crypto::Md5("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(crypto::HexEncode(crypto::Md5("The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6");
  // RFC 4231 test case 2.
  EXPECT_EQ(crypto::HexEncode(crypto::HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

  crypto::Sha256Hasher sha;
  sha.Update(Bytes("a"));
  sha.Update(Bytes("bc"));
  EXPECT_EQ(crypto::HexEncode(sha.Finish()), Sha256Hex("abc"));
  sha.Update(Bytes("abc"));  // Finish starts over
  EXPECT_EQ(crypto::HexEncode(sha.Finish()), Sha256Hex("abc"));
  crypto::Md5Hasher md5;
  md5.Update(Bytes("The quick brown fox "));
  md5.Update(Bytes("jumps over the lazy dog"));
  EXPECT_EQ(crypto::HexEncode(md5.Finish()), "9e107d9d372bb6826bd81d3542a419d6");
}

TEST(GatewayCryptoTest, HexAndBase64) {
  std::array<uint8_t, 2> two{};
  EXPECT_TRUE(crypto::HexDecode("aB09", two));
  EXPECT_EQ(two[0], 0xab);
  EXPECT_EQ(two[1], 0x09);
  EXPECT_FALSE(crypto::HexDecode("ab0", two));
  EXPECT_FALSE(crypto::HexDecode("abg0", two));

  for (std::string_view s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    const std::string encoded = crypto::Base64Encode(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
    auto decoded = crypto::Base64Decode(encoded);
    ASSERT_TRUE(decoded.has_value()) << encoded;
    EXPECT_EQ(*decoded, s);
  }
  EXPECT_EQ(crypto::Base64Encode(crypto::Md5("")), "1B2M2Y8AsgTpgAmY7PhCfg==");
  for (std::string_view bad : {"Zg", "Zg=", "Z===", "Zm9v\n", " Zm9v", "Zm=v", "Zm9v====", "Zm9*"}) {
    EXPECT_FALSE(crypto::Base64Decode(bad).has_value()) << bad;
  }
  EXPECT_TRUE(crypto::ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(crypto::ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(crypto::ConstantTimeEquals("abc", "ab"));
}

}  // namespace
}  // namespace cairn::gateway
