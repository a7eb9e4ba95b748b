// SigV4 signing for clients; see sigv4_sign.h.
#include "gateway/sigv4_sign.h"

#include <algorithm>

#include "common/crypto.h"
#include "gateway/text.h"

namespace cairn::gateway {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kScopeTerminator = "aws4_request";
// Length of the yyyymmdd prefix of an x-amz-date timestamp: the credential scope's date.
constexpr size_t kDateLength = 8;

using Headers = std::vector<std::pair<std::string, std::string>>;

// Headers left out of the signature: the signature itself, and those an intermediary may add or
// rewrite.
bool IsUnsignedHeader(std::string_view name) {
  return name == "authorization" || name == "connection" || name == "expect" || name == "user-agent";
}

bool IsLowerHex64(std::string_view s) {
  return s.size() == 2 * crypto::kSha256Size &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Replaces every header called `name` (lowercase) with one holding `value`.
void SetHeader(Headers* headers, std::string_view name, std::string value) {
  std::erase_if(*headers, [&](const auto& h) { return h.first == name; });
  headers->emplace_back(std::string(name), std::move(value));
}

Status CheckParams(std::string_view host, const SigningParams& params) {
  if (host.empty()) return Status::InvalidArgument("signing needs the Host header value");
  if (params.credentials.access_key.empty() || params.credentials.secret_key.empty()) {
    return Status::InvalidArgument("signing needs an access key and a secret key");
  }
  if (params.region.empty() || params.service.empty()) {
    return Status::InvalidArgument("signing needs a region and a service");
  }
  return Status::OK();
}

std::string Scope(std::string_view date, const SigningParams& params) {
  std::string scope(date);
  scope.append("/").append(params.region).append("/").append(params.service).append("/").append(kScopeTerminator);
  return scope;
}

// The signature of a canonical request made from `request` and the sorted `signed_headers`.
Result<std::string> Signature(const SigV4Request& request, const std::vector<std::string>& signed_headers,
                              std::string_view payload_hash, bool presigned, std::string_view timestamp,
                              const SigningParams& params) {
  CAIRN_ASSIGN_OR_RETURN(const std::string canonical,
                         BuildCanonicalRequest(request, signed_headers, payload_hash, presigned));
  const std::string_view date = timestamp.substr(0, kDateLength);
  const SigningKey key = DeriveSigningKey(params.credentials.secret_key, date, params.region, params.service);
  return ComputeSignature(key, BuildStringToSign(timestamp, Scope(date, params), canonical));
}

}  // namespace

Result<std::string> SignRequest(std::string_view method, std::string_view raw_path, std::string_view raw_query,
                                std::string_view host, std::string_view payload_hash, const SigningParams& params,
                                Headers* headers) {
  CAIRN_RETURN_IF_ERROR(CheckParams(host, params));
  if (payload_hash != kUnsignedPayload && !IsLowerHex64(payload_hash)) {
    return Status::InvalidArgument("x-amz-content-sha256 must be a lowercase hex SHA-256 or UNSIGNED-PAYLOAD");
  }
  const std::string timestamp = FormatAmzDate(params.now_unix_seconds);
  for (auto& [name, value] : *headers) name = AsciiLower(name);
  SetHeader(headers, "host", std::string(host));
  SetHeader(headers, "x-amz-date", timestamp);
  SetHeader(headers, "x-amz-content-sha256", std::string(payload_hash));

  std::vector<std::string> signed_headers;
  for (const auto& [name, value] : *headers) {
    if (!IsUnsignedHeader(name)) signed_headers.push_back(name);
  }
  std::sort(signed_headers.begin(), signed_headers.end());
  signed_headers.erase(std::unique(signed_headers.begin(), signed_headers.end()), signed_headers.end());

  SigV4Request request{method, raw_path, raw_query, *headers};
  CAIRN_ASSIGN_OR_RETURN(const std::string signature,
                         Signature(request, signed_headers, payload_hash, /*presigned=*/false, timestamp, params));
  std::string authorization(kAlgorithm);
  authorization.append(" Credential=").append(params.credentials.access_key).append("/");
  authorization.append(Scope(std::string_view(timestamp).substr(0, kDateLength), params));
  authorization.append(", SignedHeaders=");
  for (size_t i = 0; i < signed_headers.size(); ++i) {
    if (i > 0) authorization.push_back(';');
    authorization.append(signed_headers[i]);
  }
  authorization.append(", Signature=").append(signature);
  return authorization;
}

Result<std::string> PresignQuery(std::string_view method, std::string_view raw_path, std::string_view raw_query,
                                 std::string_view host, int64_t expires_seconds, const SigningParams& params) {
  CAIRN_RETURN_IF_ERROR(CheckParams(host, params));
  if (expires_seconds < 0 || expires_seconds > kMaxPresignExpirySeconds) {
    return Status::InvalidArgument("a presigned URL expires within 0 to 604800 seconds");
  }
  const std::string timestamp = FormatAmzDate(params.now_unix_seconds);
  const std::string credential =
      params.credentials.access_key + "/" + Scope(std::string_view(timestamp).substr(0, kDateLength), params);
  std::string query(raw_query);
  const auto add = [&query](std::string_view name, std::string_view value) {
    if (!query.empty()) query.push_back('&');
    query.append(name).push_back('=');
    query.append(UriEncode(value, /*keep_slash=*/false));
  };
  add("X-Amz-Algorithm", kAlgorithm);
  add("X-Amz-Credential", credential);
  add("X-Amz-Date", timestamp);
  add("X-Amz-Expires", std::to_string(expires_seconds));
  add("X-Amz-SignedHeaders", "host");

  SigV4Request request{method, raw_path, query, {{"host", std::string(host)}}};
  CAIRN_ASSIGN_OR_RETURN(const std::string signature,
                         Signature(request, {"host"}, kUnsignedPayload, /*presigned=*/true, timestamp, params));
  add("X-Amz-Signature", signature);
  return query;
}

}  // namespace cairn::gateway
