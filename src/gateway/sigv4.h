// AWS Signature Version 4 verification for S3 requests: a pure library, no sockets and no clock.
//
// VerifyRequest decides who sent a request: it recognises the three S3 forms of authentication
// (an `Authorization: AWS4-HMAC-SHA256 ...` header, a presigned URL carrying X-Amz-* query
// parameters, or nothing at all: anonymous), rebuilds the canonical request the client signed,
// and compares signatures in constant time. The caller supplies the current time and a lookup
// from access key to secret, so tests control both.
//
// What the signature covers and what it leaves to the caller: the body is not read here. The
// AuthResult says how the body is bound to the signature:
//   - kSignedSha256: x-amz-content-sha256 held a SHA-256; the caller hashes the body and calls
//     CheckPayloadSha256 before acting on it (XAmzContentSHA256Mismatch otherwise).
//   - kUnsigned: UNSIGNED-PAYLOAD; the body is not authenticated (presigned URLs default here).
//   - kStreamingSigned: STREAMING-AWS4-HMAC-SHA256-PAYLOAD; the body is aws-chunked and each
//     chunk is signed, chained from the seed signature. AwsChunkedDecoder strips the framing
//     and checks each chunk with a ChunkSignatureVerifier built from the AuthResult.
// Not supported (InvalidAuthRequest): SigV2, SigV4A (ECDSA), and the trailer variants
// STREAMING-UNSIGNED-PAYLOAD-TRAILER and STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER. Browser
// POST-policy uploads are a different scheme and are not handled here either.
//
// Canonicalisation follows S3, which differs from other AWS services: the path is not
// normalised (no dot-segment removal, no collapsing of "//") and not double-encoded; each path
// segment is percent-decoded and re-encoded with the unreserved set A-Z a-z 0-9 - _ . ~ so that
// "%2f", "%2F" and "$" vs "%24" all reach one form. In the query, a raw '+' means a space (what
// form encoders send); clients wanting a literal '+' send %2B.
//
// All parsing takes string_view over untrusted bytes and never reads outside it: these
// functions are fuzz targets. Thread-safety: the free functions are safe to call concurrently
// (the SecretLookup must be too); a ChunkSignatureVerifier or AwsChunkedDecoder object is used
// by one thread at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "common/crypto.h"

namespace cairn::gateway {

// The parts of an HTTP request the signature covers.
struct SigV4Request {
  std::string_view method;     // "GET", "PUT", ... as received
  std::string_view path;       // raw request path, percent-encoded as received, starting with '/'
  std::string_view raw_query;  // raw query string without the leading '?', may be empty
  // Header names in lowercase; values as received. A name may repeat (values are joined with
  // ',' in order, as HTTP allows).
  std::vector<std::pair<std::string, std::string>> headers;
};

struct Credentials {
  std::string access_key;
  std::string secret_key;
};

// Returns the secret key for an access key, or nullopt when the key is unknown.
using SecretLookup = std::function<std::optional<std::string>(std::string_view access_key)>;

enum class AuthMethod { kAnonymous, kHeader, kPresigned };

enum class PayloadMode {
  kSignedSha256,     // body must hash to AuthResult::payload_sha256
  kUnsigned,         // UNSIGNED-PAYLOAD, or anonymous without x-amz-content-sha256
  kStreamingSigned,  // STREAMING-AWS4-HMAC-SHA256-PAYLOAD: aws-chunked body, signed chunks
};

using SigningKey = crypto::Sha256Digest;

// What a chunk verifier needs to continue the signature chain of a streaming upload.
struct StreamingContext {
  SigningKey signing_key;      // HMAC key derived from secret, date, region and "s3"
  std::string seed_signature;  // the request signature, 64 lowercase hex
  std::string scope;           // "20130524/us-east-1/s3/aws4_request"
  std::string timestamp;       // "20130524T000000Z", as in the request's string to sign
};

struct AuthResult {
  AuthMethod method = AuthMethod::kAnonymous;
  bool anonymous = true;  // == (method == kAnonymous); no access_key then
  std::string access_key;
  int64_t request_time = 0;  // unix seconds of X-Amz-Date / Date; 0 when anonymous
  PayloadMode payload_mode = PayloadMode::kUnsigned;
  // The x-amz-content-sha256 value as sent (empty when absent), and when payload_mode is
  // kSignedSha256 its decoded digest.
  std::string content_sha256_header;
  crypto::Sha256Digest payload_sha256{};
  // x-amz-decoded-content-length: the object size of a streaming upload (required there).
  std::optional<uint64_t> decoded_content_length;
  // Set exactly when payload_mode is kStreamingSigned.
  std::optional<StreamingContext> streaming;
};

// The largest X-Amz-Expires S3 accepts: seven days.
inline constexpr int64_t kMaxPresignExpirySeconds = 7 * 24 * 3600;
// How far a request's time may be from the server's clock.
inline constexpr int64_t kMaxClockSkewSeconds = 15 * 60;

// Authenticates a request. `now_unix_seconds` is the server clock; `region` the one this
// gateway serves (the credential scope must name it).
// Errors: InvalidAuthRequest (unsupported algorithm or payload mode, both header and query
// auth, missing x-amz-content-sha256 or x-amz-decoded-content-length),
// AuthorizationHeaderMalformed / AuthorizationQueryMalformed (unparseable, wrong scope, signed
// headers lacking host or the date), AccessDenied (no valid date; x-amz-* headers present but
// unsigned), InvalidArgument (bad percent-encoding in path or query, bad x-amz-content-sha256),
// RequestTimeTooSkewed, RequestExpired, InvalidAccessKeyId, SignatureDoesNotMatch.
Result<AuthResult> VerifyRequest(const SigV4Request& request, const SecretLookup& lookup, int64_t now_unix_seconds,
                                 std::string_view region);

// Compares the body's digest with the one the signature covers. OK when the mode is not
// kSignedSha256. Error: ContentSha256Mismatch.
Status CheckPayloadSha256(const AuthResult& auth, const crypto::Sha256Digest& body_sha256);

// ---- Building blocks, public for tests and for signing clients (tests, tools) ----

// The pieces of a request signature once the Authorization header or the presigned query has
// been parsed.
struct SignatureInputs {
  std::string access_key;
  std::string date;                         // yyyymmdd from the credential scope
  std::string region;                       // from the credential scope
  std::string service;                      // from the credential scope, "s3"
  std::vector<std::string> signed_headers;  // lowercase, sorted, unique
  std::string signature;                    // as sent
};

// Parses a credential "<access key>/<yyyymmdd>/<region>/<service>/aws4_request" into `out`'s
// access_key, date, region and service (the access key is what is left of the last four fields).
// Returns an error message, or "" when it parsed.
std::string ParseCredential(std::string_view text, SignatureInputs* out);
// Checks a parsed scope against this gateway's region and the request's time (yyyymmddThhmmssZ):
// service s3, the region, the same date. Returns an error message or "".
std::string CheckScope(const SignatureInputs& in, std::string_view region, std::string_view timestamp);

// Percent-encodes with the AWS unreserved set; '/' is kept when `keep_slash`.
std::string UriEncode(std::string_view bytes, bool keep_slash);
// The canonical URI of a raw request path (see the file comment). Error: InvalidArgument.
Result<std::string> CanonicalUri(std::string_view raw_path);
// The canonical query string: pairs decoded, re-encoded, sorted by name then value; a name
// without '=' gets an empty value ("lifecycle="). X-Amz-Signature is dropped when `presigned`.
// Error: InvalidArgument.
Result<std::string> CanonicalQuery(std::string_view raw_query, bool presigned);
// The canonical request text the client signed. `payload_hash` is the last line (a hex digest,
// UNSIGNED-PAYLOAD or STREAMING-...). Error: InvalidArgument (from path or query).
Result<std::string> BuildCanonicalRequest(const SigV4Request& request, const std::vector<std::string>& signed_headers,
                                          std::string_view payload_hash, bool presigned);
// "AWS4-HMAC-SHA256\n<timestamp>\n<scope>\n<hex sha256 of canonical request>".
std::string BuildStringToSign(std::string_view timestamp, std::string_view scope, std::string_view canonical_request);
// "AWS4-HMAC-SHA256-PAYLOAD\n<timestamp>\n<scope>\n<previous>\n<hex sha256 of "">\n<chunk hash>".
std::string BuildChunkStringToSign(std::string_view timestamp, std::string_view scope,
                                   std::string_view previous_signature, const crypto::Sha256Digest& chunk_sha256);
// HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request".
SigningKey DeriveSigningKey(std::string_view secret_key, std::string_view date, std::string_view region,
                            std::string_view service);
// Lowercase hex HMAC-SHA256 of the string to sign.
std::string ComputeSignature(const SigningKey& key, std::string_view string_to_sign);

// Parses an Authorization header value. Errors: InvalidAuthRequest (another algorithm),
// AuthorizationHeaderMalformed.
Result<SignatureInputs> ParseAuthorizationHeader(std::string_view value);

// "yyyymmddThhmmssZ" <-> unix seconds. Parse returns nullopt on any malformed or out-of-range
// field.
std::optional<int64_t> ParseAmzDate(std::string_view text);
std::string FormatAmzDate(int64_t unix_seconds);
// RFC 7231 IMF-fixdate, "Fri, 24 May 2013 00:00:00 GMT"; nullopt when malformed.
std::optional<int64_t> ParseHttpDate(std::string_view text);

// ---- Streaming (aws-chunked) bodies ----

// Verifies the chained chunk signatures of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body. Each
// accepted chunk's signature becomes the "previous signature" of the next; a rejected chunk
// leaves the chain where it was (the caller abandons the upload).
class ChunkSignatureVerifier {
 public:
  explicit ChunkSignatureVerifier(StreamingContext context);
  // Error: InvalidArgument when `auth` is not a streaming upload.
  static Result<ChunkSignatureVerifier> FromAuthResult(const AuthResult& auth);

  // Error: SignatureDoesNotMatch.
  Status VerifyChunk(std::string_view chunk_signature, std::span<const std::byte> chunk_data);
  // As VerifyChunk, for a chunk whose SHA-256 the caller computed incrementally.
  Status VerifyChunkDigest(std::string_view chunk_signature, const crypto::Sha256Digest& chunk_sha256);

  // The signature the next chunk chains from (the seed before any chunk).
  const std::string& previous_signature() const { return previous_signature_; }

 private:
  StreamingContext context_;
  std::string previous_signature_;
};

// Removes aws-chunked framing from a streaming body fed in arbitrary pieces, verifying each
// chunk's signature. The wire format per chunk is
//   <size in hex>;chunk-signature=<64 hex>\r\n<size bytes of data>\r\n
// and the body ends with a chunk of size 0 followed by "\r\n" (no trailers: the -TRAILER modes
// are out of scope). Decoded data is handed to the sink as it arrives, before the enclosing
// chunk's signature has been checked: nothing the sink receives is authenticated until Finish()
// returns OK, so the caller must not make it visible before then.
class AwsChunkedDecoder {
 public:
  // Receives decoded data, in order; a non-OK Status aborts decoding and is returned by Feed.
  using Sink = std::function<Status(std::span<const std::byte> data)>;

  struct Options {
    // Chunks other than the last data chunk must hold at least this many bytes (S3: 8 KiB).
    // 0 disables the check. Fixed for the decoder's life.
    uint64_t min_chunk_size = 8 * 1024;
    // No chunk may claim more than this (a guard against nonsense sizes). Default 64 MiB.
    uint64_t max_chunk_size = 64ull << 20;
    // The total decoded length must equal this when set (x-amz-decoded-content-length).
    std::optional<uint64_t> expected_decoded_length;
  };

  AwsChunkedDecoder(ChunkSignatureVerifier verifier, Options options);

  // Consumes `input`. Errors (sticky: every later call returns the first one): IncompleteBody
  // (malformed framing, bytes after the end, more data than expected), InvalidChunkSize,
  // SignatureDoesNotMatch, or whatever the sink returned.
  Status Feed(std::span<const std::byte> input, const Sink& sink);
  // Declares the end of the body. OK only when the final chunk and its CRLF have arrived and
  // the decoded length matches. Error: IncompleteBody, or the sticky error.
  Status Finish();

  bool done() const { return state_ == State::kDone; }
  uint64_t decoded_length() const { return decoded_length_; }
  // Chunks whose signature verified, the final empty chunk included.
  uint64_t chunks_verified() const { return chunks_verified_; }

 private:
  enum class State { kHeader, kData, kDataCrlf, kFinalCrlf, kDone, kFailed };

  Status Fail(Status status);
  Status OnHeaderLine(std::string_view line);

  ChunkSignatureVerifier verifier_;
  Options options_;
  State state_ = State::kHeader;
  Status error_;             // the sticky error once state_ is kFailed
  std::string header_line_;  // bytes of the current chunk header, bounded by kMaxHeaderLine
  std::string chunk_signature_;
  uint64_t chunk_remaining_ = 0;  // data bytes still due in the current chunk
  uint64_t last_chunk_size_ = 0;  // size of the previous data chunk, for the minimum-size rule
  bool have_data_chunk_ = false;  // a data chunk (size > 0) has been seen
  size_t crlf_seen_ = 0;          // bytes of the expected "\r\n" matched so far
  crypto::Sha256Hasher chunk_hasher_;
  uint64_t decoded_length_ = 0;
  uint64_t chunks_verified_ = 0;
};

}  // namespace cairn::gateway
