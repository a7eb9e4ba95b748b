// AWS Signature Version 4 signing for S3 clients (tests, `cairn bench s3`): the counterpart of
// VerifyRequest in sigv4.h, built from the same canonicalisation functions so that what this
// signs is what the gateway checks. Pure: no sockets, and the caller supplies the clock.
//
// Two forms:
//   - SignRequest adds host, x-amz-date and x-amz-content-sha256 to a request's headers and
//     returns the value of its Authorization header. Every header present when it is called is
//     signed, except authorization, connection, expect and user-agent (which proxies rewrite),
//     so headers the request must carry unchanged (range, content-md5, x-amz-*) are set first.
//   - PresignQuery returns the query string of a presigned URL (X-Amz-Algorithm, Credential,
//     Date, Expires, SignedHeaders=host, Signature); the URL carries no body hash, so the body is
//     UNSIGNED-PAYLOAD.
// The path is the raw request path as it goes on the wire (already percent-encoded) and the
// query the raw query string without '?'; both are canonicalised as VerifyRequest does.
//
// Thread-safety: pure functions, safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "gateway/sigv4.h"

namespace cairn::gateway {

// The x-amz-content-sha256 value of a body the signature does not cover.
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// The region a single-node Cairn serves unless configured otherwise.
inline constexpr std::string_view kDefaultRegion = "us-east-1";

// Who signs, where and when.
struct SigningParams {
  Credentials credentials;
  std::string region = std::string(kDefaultRegion);
  std::string service = "s3";
  int64_t now_unix_seconds = 0;  // the request time, written as x-amz-date / X-Amz-Date
};

// Signs a request for the Authorization header. `headers` are the request's headers; names are
// lowercased in place, and host (= `host`, e.g. "127.0.0.1:9000"), x-amz-date and
// x-amz-content-sha256 (= `payload_hash`: a lowercase hex SHA-256 of the body, or
// UNSIGNED-PAYLOAD) are set, replacing any values of those names already there. Returns the
// Authorization value, which the caller sends as is (it is not added to `headers`).
// Errors: InvalidArgument (bad percent-encoding in path or query, empty host, empty credentials,
// a payload hash that is neither form).
Result<std::string> SignRequest(std::string_view method, std::string_view raw_path, std::string_view raw_query,
                                std::string_view host, std::string_view payload_hash, const SigningParams& params,
                                std::vector<std::pair<std::string, std::string>>* headers);

// The query string of a presigned URL for `method` on `raw_path`: `raw_query` (if any), then the
// X-Amz-* parameters, X-Amz-Signature last. The URL is valid for `expires_seconds` (at most
// kMaxPresignExpirySeconds) from params.now_unix_seconds, and only with Host `host`.
// Errors: InvalidArgument (as SignRequest, or an expiry outside [0, 7 days]).
Result<std::string> PresignQuery(std::string_view method, std::string_view raw_path, std::string_view raw_query,
                                 std::string_view host, int64_t expires_seconds, const SigningParams& params);

}  // namespace cairn::gateway
