// Tests for client-side SigV4 signing: the AWS S3 documentation's worked examples come out
// exactly, what the signer produces passes VerifyRequest, and any change to a signed part is
// refused.
#include "gateway/sigv4_sign.h"

#include <string>
#include <utility>
#include <vector>

#include "common/crypto.h"
#include "gateway/sigv4.h"
#include "test_util.h"

namespace cairn::gateway {
namespace {

// The credentials, clock and host of the published examples.
constexpr std::string_view kAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr int64_t kNow = 1369353600;  // 2013-05-24T00:00:00Z
constexpr std::string_view kHost = "examplebucket.s3.amazonaws.com";
constexpr std::string_view kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string Sha256Hex(std::string_view s) { return crypto::HexEncode(crypto::Sha256(s)); }

SigningParams ExampleParams(std::string_view secret = kSecret) {
  SigningParams p;
  p.credentials = {std::string(kAccessKey), std::string(secret)};
  p.now_unix_seconds = kNow;
  return p;
}

// A request as it goes on the wire: what the signer saw plus the Authorization header.
struct SignedRequest {
  std::string method;
  std::string path;
  std::string query;
  Headers headers;

  SigV4Request View() const { return SigV4Request{method, path, query, headers}; }
};

class SigV4SignTest : public ::testing::Test {
 protected:
  static SignedRequest Sign(std::string method, std::string path, std::string query, Headers headers,
                            std::string_view payload_hash, const SigningParams& params = ExampleParams()) {
    SignedRequest r{std::move(method), std::move(path), std::move(query), std::move(headers)};
    Result<std::string> auth = SignRequest(r.method, r.path, r.query, kHost, payload_hash, params, &r.headers);
    EXPECT_OK(auth);
    if (auth.ok()) r.headers.emplace_back("authorization", *auth);
    return r;
  }

  static Result<AuthResult> Verify(const SignedRequest& r, std::string_view secret = kSecret) {
    const std::string s(secret);
    SecretLookup lookup = [s](std::string_view key) -> std::optional<std::string> {
      if (key == kAccessKey) return s;
      return std::nullopt;
    };
    return VerifyRequest(r.View(), lookup, kNow, kDefaultRegion);
  }

  static std::string Header(const SignedRequest& r, std::string_view name) {
    for (const auto& [n, v] : r.headers) {
      if (n == name) return v;
    }
    return {};
  }

  static void SetHeader(SignedRequest* r, std::string_view name, std::string value) {
    for (auto& [n, v] : r->headers) {
      if (n == name) v = value;
    }
  }
};

// ---- The published examples ----

TEST_F(SigV4SignTest, GetObjectExampleReproducesExactly) {
  const SignedRequest r = Sign("GET", "/test.txt", "", {{"range", "bytes=0-9"}}, kEmptySha256);
  EXPECT_EQ(Header(r, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(Header(r, "host"), kHost);
  EXPECT_EQ(Header(r, "x-amz-date"), "20130524T000000Z");
  EXPECT_EQ(Header(r, "x-amz-content-sha256"), kEmptySha256);
  ASSERT_OK(Verify(r));
}

TEST_F(SigV4SignTest, PutObjectExampleReproducesExactly) {
  const std::string body = "Welcome to Amazon S3.";
  const SignedRequest r =
      Sign("PUT", "/test$file.text", "",
           {{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"x-amz-storage-class", "REDUCED_REDUNDANCY"}}, Sha256Hex(body));
  EXPECT_EQ(Header(r, "authorization"),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
            "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  auto auth = Verify(r);
  ASSERT_OK(auth);
  EXPECT_OK(CheckPayloadSha256(*auth, crypto::Sha256(body)));
}

TEST_F(SigV4SignTest, ListObjectsExampleReproducesExactly) {
  const SignedRequest r = Sign("GET", "/", "max-keys=2&prefix=J", {}, kEmptySha256);
  EXPECT_NE(
      Header(r, "authorization").find("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
      std::string::npos);
  EXPECT_OK(Verify(r));
}

TEST_F(SigV4SignTest, PresignedExampleReproducesExactly) {
  auto query = PresignQuery("GET", "/test.txt", "", kHost, /*expires_seconds=*/86400, ExampleParams());
  ASSERT_OK(query);
  EXPECT_EQ(*query,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F"
            "aws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&"
            "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  const SignedRequest r{"GET", "/test.txt", *query, {{"host", std::string(kHost)}}};
  auto auth = Verify(r);
  ASSERT_OK(auth);
  EXPECT_EQ(auth->method, AuthMethod::kPresigned);
}

// ---- Round trips through VerifyRequest ----

TEST_F(SigV4SignTest, UnsignedPayloadVerifies) {
  const SignedRequest r = Sign("PUT", "/bucket/bench/0/17", "", {{"content-length", "4096"}}, kUnsignedPayload);
  auto auth = Verify(r);
  ASSERT_OK(auth);
  EXPECT_EQ(auth->payload_mode, PayloadMode::kUnsigned);
  EXPECT_EQ(auth->access_key, kAccessKey);
}

TEST_F(SigV4SignTest, EncodedKeysAndQueriesVerify) {
  // A key with spaces, a '+', unicode and an encoded slash; a query with an empty value.
  const SignedRequest r =
      Sign("GET", "/bucket/a%20b%2Bc/%C3%A9t%C3%A9%2Fx",
           "list-type=2&continuation-token=a%2Fb&fetch-owner=", {{"X-Amz-Meta-Color", "blue"}}, kEmptySha256);
  EXPECT_EQ(Header(r, "x-amz-meta-color"), "blue");  // names were lowercased
  EXPECT_OK(Verify(r));
}

TEST_F(SigV4SignTest, ExistingHostDateAndHashAreReplaced) {
  const SignedRequest r =
      Sign("GET", "/b/k", "", {{"Host", "other"}, {"x-amz-date", "20000101T000000Z"}, {"x-amz-content-sha256", "x"}},
           kUnsignedPayload);
  int hosts = 0;
  for (const auto& [n, v] : r.headers) hosts += n == "host" ? 1 : 0;
  EXPECT_EQ(hosts, 1);
  EXPECT_EQ(Header(r, "host"), kHost);
  EXPECT_EQ(Header(r, "x-amz-date"), "20130524T000000Z");
  EXPECT_OK(Verify(r));
}

TEST_F(SigV4SignTest, ProxyHeadersAreNotSigned) {
  SignedRequest r =
      Sign("GET", "/b/k", "", {{"user-agent", "cairn-bench"}, {"connection", "keep-alive"}}, kEmptySha256);
  EXPECT_NE(Header(r, "authorization").find("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"), std::string::npos);
  SetHeader(&r, "user-agent", "curl");
  EXPECT_OK(Verify(r));
}

TEST_F(SigV4SignTest, PresignedWithQueryVerifies) {
  auto query = PresignQuery("PUT", "/bucket/some%20key", "partNumber=1&uploadId=abc", "127.0.0.1:9000",
                            /*expires_seconds=*/600, ExampleParams());
  ASSERT_OK(query);
  const SignedRequest r{"PUT", "/bucket/some%20key", *query, {{"host", "127.0.0.1:9000"}}};
  EXPECT_OK(Verify(r));
  SignedRequest other_host = r;
  other_host.headers = {{"host", "127.0.0.1:9001"}};
  EXPECT_TRUE(Verify(other_host).status().IsSignatureDoesNotMatch());
}

// ---- What the signature protects ----

TEST_F(SigV4SignTest, ChangedHeaderIsRefused) {
  const SignedRequest original = Sign("GET", "/test.txt", "", {{"range", "bytes=0-9"}}, kEmptySha256);
  for (const char* name : {"range", "host", "x-amz-date"}) {
    SignedRequest r = original;
    SetHeader(&r, name, name == std::string_view("x-amz-date") ? "20130524T000001Z" : "changed");
    EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch()) << name;
  }
  SignedRequest r = original;
  SetHeader(&r, "x-amz-content-sha256", std::string(kUnsignedPayload));
  EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch());
}

TEST_F(SigV4SignTest, ChangedPathOrQueryIsRefused) {
  SignedRequest r = Sign("GET", "/bucket/key", "list-type=2", {}, kEmptySha256);
  ASSERT_OK(Verify(r));
  r.path = "/bucket/key2";
  EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch());
  r.path = "/bucket/key";
  r.query = "list-type=1";
  EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch());
}

TEST_F(SigV4SignTest, OtherSecretIsRefused) {
  const SignedRequest r = Sign("GET", "/b/k", "", {}, kEmptySha256, ExampleParams("not the secret"));
  EXPECT_TRUE(Verify(r).status().IsSignatureDoesNotMatch());
  auto query = PresignQuery("GET", "/b/k", "", kHost, /*expires_seconds=*/60, ExampleParams("not the secret"));
  ASSERT_OK(query);
  EXPECT_TRUE(
      Verify(SignedRequest{"GET", "/b/k", *query, {{"host", std::string(kHost)}}}).status().IsSignatureDoesNotMatch());
}

TEST_F(SigV4SignTest, BadInputsAreInvalidArgument) {
  Headers h;
  const SigningParams p = ExampleParams();
  EXPECT_TRUE(SignRequest("GET", "/b/k", "", kHost, "not-a-hash", p, &h).status().IsInvalidArgument());
  EXPECT_TRUE(SignRequest("GET", "/b/k", "", "", kEmptySha256, p, &h).status().IsInvalidArgument());
  EXPECT_TRUE(SignRequest("GET", "/b/%zz", "", kHost, kEmptySha256, p, &h).status().IsInvalidArgument());
  SigningParams no_key = p;
  no_key.credentials.secret_key.clear();
  EXPECT_TRUE(SignRequest("GET", "/b/k", "", kHost, kEmptySha256, no_key, &h).status().IsInvalidArgument());
  EXPECT_TRUE(PresignQuery("GET", "/b/k", "", kHost, kMaxPresignExpirySeconds + 1, p).status().IsInvalidArgument());
  EXPECT_TRUE(PresignQuery("GET", "/b/k", "", kHost, -1, p).status().IsInvalidArgument());
}

}  // namespace
}  // namespace cairn::gateway
