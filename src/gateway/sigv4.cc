#include "gateway/sigv4.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "gateway/text.h"

namespace cairn::gateway {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kChunkAlgorithm = "AWS4-HMAC-SHA256-PAYLOAD";
constexpr std::string_view kScopeTerminator = "aws4_request";
constexpr std::string_view kService = "s3";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
constexpr std::string_view kStreamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
constexpr std::string_view kStreamingPrefix = "STREAMING-";
// Hex SHA-256 of the empty string: the "payload" line of every chunk string to sign.
constexpr std::string_view kEmptySha256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr size_t kSignatureHexLength = 2 * crypto::kSha256Size;
// An aws-chunked header is "<=16 hex digits;chunk-signature=<64 hex>\r\n", under 100 bytes.
constexpr size_t kMaxChunkHeaderLine = 256;
constexpr std::string_view kChunkSignatureField = ";chunk-signature=";

// Presigned-URL query parameters.
constexpr std::string_view kQueryAlgorithm = "X-Amz-Algorithm";
constexpr std::string_view kQueryCredential = "X-Amz-Credential";
constexpr std::string_view kQueryDate = "X-Amz-Date";
constexpr std::string_view kQueryExpires = "X-Amz-Expires";
constexpr std::string_view kQuerySignedHeaders = "X-Amz-SignedHeaders";
constexpr std::string_view kQuerySignature = "X-Amz-Signature";

using Pairs = std::vector<std::pair<std::string, std::string>>;

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '~';
}

bool IsLowerHex(char c) { return IsAsciiDigit(c) || (c >= 'a' && c <= 'f'); }

bool IsLowerHexString(std::string_view s, size_t length) {
  return s.size() == length && std::all_of(s.begin(), s.end(), IsLowerHex);
}

// Parses exactly `s.size()` decimal digits; nullopt when empty, not all digits, or too long to
// be a plausible field (callers bound the value further).
std::optional<uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!IsAsciiDigit(c)) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::optional<int> ParseFixedDigits(std::string_view s) {
  int v = 0;
  for (char c : s) {
    if (!IsAsciiDigit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// Splits a raw query into decoded (name, value) pairs, in order; empty segments are skipped.
Result<Pairs> ParseQuery(std::string_view raw_query) {
  Pairs pairs;
  while (!raw_query.empty()) {
    const size_t amp = raw_query.find('&');
    const std::string_view part = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view() : raw_query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    const std::string_view raw_name = part.substr(0, eq);
    const std::string_view raw_value = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    auto name = PercentDecode(raw_name, /*plus_is_space=*/true);
    auto value = PercentDecode(raw_value, /*plus_is_space=*/true);
    if (!name.ok() || !value.ok()) return Status::InvalidArgument("bad percent-encoding in the query string");
    pairs.emplace_back(std::move(*name), std::move(*value));
  }
  return pairs;
}

// Trims a header value and collapses runs of spaces and tabs inside it to one space.
void AppendCanonicalHeaderValue(std::string_view value, std::string* out) {
  value = TrimHttpSpace(value);
  bool in_space = false;
  for (char c : value) {
    if (IsHttpSpace(c)) {
      in_space = true;
      continue;
    }
    if (in_space) out->push_back(' ');
    in_space = false;
    out->push_back(c);
  }
}

// The canonical value of a header: all its values, canonicalised, joined with ','. nullopt when
// the request lacks it.
std::optional<std::string> CanonicalHeaderValue(const SigV4Request& request, std::string_view name) {
  std::optional<std::string> out;
  for (const auto& [n, v] : request.headers) {
    if (n != name) continue;
    if (out) {
      out->push_back(',');
    } else {
      out.emplace();
    }
    AppendCanonicalHeaderValue(v, &*out);
  }
  return out;
}

// The value of a header that must appear at most once. nullopt when absent; `duplicate` is set
// when it appears more than once.
std::optional<std::string_view> SingleHeader(const SigV4Request& request, std::string_view name, bool* duplicate) {
  std::optional<std::string_view> found;
  *duplicate = false;
  for (const auto& [n, v] : request.headers) {
    if (n != name) continue;
    if (found) *duplicate = true;
    found = TrimHttpSpace(v);
  }
  return found;
}

bool IsHeaderNameChar(char c) {
  // RFC 7230 token characters, lowercase only.
  constexpr std::string_view kTokenPunctuation = "!#$%&'*+-.^_`|~";
  return (c >= 'a' && c <= 'z') || IsAsciiDigit(c) || kTokenPunctuation.find(c) != std::string_view::npos;
}

// Parses "a;b;c": lowercase token names, strictly ascending. Returns an error message or "".
std::string ParseSignedHeaders(std::string_view text, std::vector<std::string>* out) {
  out->clear();
  if (text.empty()) return "SignedHeaders is empty";
  while (true) {
    const size_t semi = text.find(';');
    const std::string_view name = text.substr(0, semi);
    if (name.empty()) return "SignedHeaders has an empty name";
    for (char c : name) {
      if (!IsHeaderNameChar(c)) return "SignedHeaders has a name that is not a lowercase header name";
    }
    if (!out->empty() && !(out->back() < name)) return "SignedHeaders is not sorted or repeats a name";
    out->emplace_back(name);
    if (semi == std::string_view::npos) break;
    text.remove_prefix(semi + 1);
  }
  return "";
}

bool Contains(const std::vector<std::string>& sorted, std::string_view name) {
  return std::binary_search(sorted.begin(), sorted.end(), name, std::less<>());
}

// S3 refuses x-amz-* headers the signature does not cover: they change what a request does
// (x-amz-copy-source, x-amz-acl, ...). x-amz-content-sha256 is exempt: its value is the last
// line of the canonical request whether or not it is listed.
Status CheckAmzHeadersSigned(const SigV4Request& request, const std::vector<std::string>& signed_headers) {
  for (const auto& [name, value] : request.headers) {
    if (name.rfind("x-amz-", 0) != 0 || name == "x-amz-content-sha256") continue;
    if (!Contains(signed_headers, name)) {
      return Status::AccessDenied("header " + name + " is present in the request but not signed");
    }
  }
  return Status::OK();
}

// Reads x-amz-content-sha256 into `result`. Errors: InvalidAuthRequest for streaming modes this
// library does not verify, InvalidArgument for a value that is none of the known forms.
Status ClassifyPayload(std::string_view value, bool streaming_allowed, AuthResult* result) {
  result->content_sha256_header = std::string(value);
  if (value == kUnsignedPayload) {
    result->payload_mode = PayloadMode::kUnsigned;
    return Status::OK();
  }
  if (value == kStreamingPayload) {
    if (!streaming_allowed) return Status::InvalidAuthRequest("a streaming payload needs Authorization header auth");
    result->payload_mode = PayloadMode::kStreamingSigned;
    return Status::OK();
  }
  if (value.substr(0, kStreamingPrefix.size()) == kStreamingPrefix) {
    return Status::InvalidAuthRequest("unsupported x-amz-content-sha256 mode " + std::string(value));
  }
  if (crypto::HexDecode(value, result->payload_sha256)) {
    result->payload_mode = PayloadMode::kSignedSha256;
    return Status::OK();
  }
  return Status::InvalidArgument(
      "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD or a hex SHA-256");
}

// The final step shared by both signed forms: look up the secret, rebuild, compare.
Status CheckSignature(const SigV4Request& request, const SignatureInputs& in, const SecretLookup& lookup,
                      std::string_view timestamp, std::string_view payload_hash, bool presigned,
                      SigningKey* signing_key) {
  std::optional<std::string> secret = lookup(in.access_key);
  if (!secret) return Status::InvalidAccessKeyId("access key " + in.access_key + " is not known");
  CAIRN_ASSIGN_OR_RETURN(const std::string canonical,
                         BuildCanonicalRequest(request, in.signed_headers, payload_hash, presigned));
  const std::string scope = in.date + "/" + in.region + "/" + in.service + "/" + std::string(kScopeTerminator);
  *signing_key = DeriveSigningKey(*secret, in.date, in.region, in.service);
  const std::string expected = ComputeSignature(*signing_key, BuildStringToSign(timestamp, scope, canonical));
  if (!crypto::ConstantTimeEquals(expected, in.signature)) {
    return Status::SignatureDoesNotMatch("the signature does not match the request and the access key's secret");
  }
  return Status::OK();
}

std::string ScopeOf(const SignatureInputs& in) {
  return in.date + "/" + in.region + "/" + in.service + "/" + std::string(kScopeTerminator);
}

Result<AuthResult> VerifyHeaderAuth(const SigV4Request& request, std::string_view authorization,
                                    const SecretLookup& lookup, int64_t now, std::string_view region) {
  CAIRN_ASSIGN_OR_RETURN(SignatureInputs in, ParseAuthorizationHeader(authorization));
  if (!Contains(in.signed_headers, "host")) {
    return Status::AuthorizationHeaderMalformed("SignedHeaders must include host");
  }
  if (!Contains(in.signed_headers, "x-amz-date") && !Contains(in.signed_headers, "date")) {
    return Status::AuthorizationHeaderMalformed("SignedHeaders must include x-amz-date or date");
  }

  // The request time: x-amz-date wins over Date.
  bool duplicate = false;
  std::optional<int64_t> request_time;
  if (auto amz_date = SingleHeader(request, "x-amz-date", &duplicate)) {
    if (!duplicate) request_time = ParseAmzDate(*amz_date);
  } else if (auto date = SingleHeader(request, "date", &duplicate)) {
    if (!duplicate) request_time = ParseHttpDate(*date);
  }
  if (!request_time) return Status::AccessDenied("SigV4 needs one valid x-amz-date or Date header");
  const std::string timestamp = FormatAmzDate(*request_time);
  if (std::string msg = CheckScope(in, region, timestamp); !msg.empty()) {
    return Status::AuthorizationHeaderMalformed(msg);
  }
  CAIRN_RETURN_IF_ERROR(CheckAmzHeadersSigned(request, in.signed_headers));

  AuthResult result;
  result.method = AuthMethod::kHeader;
  result.anonymous = false;
  result.access_key = in.access_key;
  result.request_time = *request_time;
  auto content_sha256 = SingleHeader(request, "x-amz-content-sha256", &duplicate);
  if (!content_sha256 || duplicate) {
    return Status::InvalidAuthRequest("SigV4 header auth needs one x-amz-content-sha256 header");
  }
  CAIRN_RETURN_IF_ERROR(ClassifyPayload(*content_sha256, /*streaming_allowed=*/true, &result));
  if (result.payload_mode == PayloadMode::kStreamingSigned) {
    auto decoded = SingleHeader(request, "x-amz-decoded-content-length", &duplicate);
    if (!decoded || duplicate)
      return Status::InvalidAuthRequest("a streaming upload needs x-amz-decoded-content-length");
    result.decoded_content_length = ParseDecimal(*decoded);
    if (!result.decoded_content_length) return Status::InvalidArgument("x-amz-decoded-content-length is not a number");
  }

  const int64_t skew = now > *request_time ? now - *request_time : *request_time - now;
  if (skew > kMaxClockSkewSeconds) {
    return Status::RequestTimeTooSkewed("request time " + timestamp + " is more than 15 minutes from the server's");
  }

  SigningKey key{};
  CAIRN_RETURN_IF_ERROR(CheckSignature(request, in, lookup, timestamp, *content_sha256, /*presigned=*/false, &key));
  if (result.payload_mode == PayloadMode::kStreamingSigned) {
    result.streaming = StreamingContext{key, in.signature, ScopeOf(in), timestamp};
  }
  return result;
}

Result<AuthResult> VerifyPresigned(const SigV4Request& request, const Pairs& query, const SecretLookup& lookup,
                                   int64_t now, std::string_view region) {
  const std::string_view names[] = {kQueryAlgorithm, kQueryCredential,    kQueryDate,
                                    kQueryExpires,   kQuerySignedHeaders, kQuerySignature};
  const std::string* values[std::size(names)] = {};
  for (const auto& [name, value] : query) {
    for (size_t i = 0; i < std::size(names); ++i) {
      if (name != names[i]) continue;
      if (values[i] != nullptr) return Status::AuthorizationQueryMalformed(std::string(names[i]) + " appears twice");
      values[i] = &value;
    }
  }
  for (size_t i = 0; i < std::size(names); ++i) {
    if (values[i] == nullptr) {
      return Status::AuthorizationQueryMalformed("a presigned URL needs " + std::string(names[i]));
    }
  }
  const std::string& algorithm = *values[0];
  const std::string& credential = *values[1];
  const std::string& date = *values[2];
  const std::string& expires_text = *values[3];
  const std::string& signed_headers = *values[4];
  const std::string& signature = *values[5];

  if (algorithm != kAlgorithm) return Status::InvalidAuthRequest("unsupported X-Amz-Algorithm " + algorithm);
  SignatureInputs in;
  if (std::string msg = ParseCredential(credential, &in); !msg.empty()) {
    return Status::AuthorizationQueryMalformed(msg);
  }
  if (std::string msg = ParseSignedHeaders(signed_headers, &in.signed_headers); !msg.empty()) {
    return Status::AuthorizationQueryMalformed(msg);
  }
  if (!Contains(in.signed_headers, "host")) {
    return Status::AuthorizationQueryMalformed("X-Amz-SignedHeaders must include host");
  }
  if (!IsLowerHexString(signature, kSignatureHexLength)) {
    return Status::AuthorizationQueryMalformed("X-Amz-Signature must be 64 lowercase hex digits");
  }
  in.signature = signature;
  const std::optional<int64_t> request_time = ParseAmzDate(date);
  if (!request_time) return Status::AuthorizationQueryMalformed("X-Amz-Date must be yyyymmddThhmmssZ");
  const std::optional<uint64_t> expires = ParseDecimal(expires_text);
  if (!expires || *expires > static_cast<uint64_t>(kMaxPresignExpirySeconds)) {
    return Status::AuthorizationQueryMalformed("X-Amz-Expires must be a number of seconds from 0 to 604800");
  }
  if (std::string msg = CheckScope(in, region, date); !msg.empty()) {
    return Status::AuthorizationQueryMalformed(msg);
  }
  CAIRN_RETURN_IF_ERROR(CheckAmzHeadersSigned(request, in.signed_headers));

  if (*request_time - now > kMaxClockSkewSeconds) {
    return Status::RequestTimeTooSkewed("presigned URL dated " + date + " is not valid yet");
  }
  if (now > *request_time + static_cast<int64_t>(*expires)) {
    return Status::RequestExpired("presigned URL expired at " +
                                  FormatAmzDate(*request_time + static_cast<int64_t>(*expires)));
  }

  AuthResult result;
  result.method = AuthMethod::kPresigned;
  result.anonymous = false;
  result.access_key = in.access_key;
  result.request_time = *request_time;
  // A presigned URL's signature covers no body: the canonical request ends in UNSIGNED-PAYLOAD.
  result.payload_mode = PayloadMode::kUnsigned;
  SigningKey key{};
  CAIRN_RETURN_IF_ERROR(CheckSignature(request, in, lookup, date, kUnsignedPayload, /*presigned=*/true, &key));
  return result;
}

Result<AuthResult> Anonymous(const SigV4Request& request) {
  AuthResult result;
  bool duplicate = false;
  if (auto content_sha256 = SingleHeader(request, "x-amz-content-sha256", &duplicate)) {
    if (duplicate) return Status::InvalidArgument("x-amz-content-sha256 appears twice");
    CAIRN_RETURN_IF_ERROR(ClassifyPayload(*content_sha256, /*streaming_allowed=*/false, &result));
  }
  return result;
}

}  // namespace

std::string ParseCredential(std::string_view text, SignatureInputs* out) {
  std::string_view fields[4];  // terminator, service, region, date (right to left)
  for (auto& field : fields) {
    const size_t slash = text.rfind('/');
    if (slash == std::string_view::npos) return "Credential must be <key>/<date>/<region>/<service>/aws4_request";
    field = text.substr(slash + 1);
    text = text.substr(0, slash);
  }
  if (text.empty()) return "Credential has an empty access key";
  for (char c : text) {
    if (c <= ' ' || c > '~') return "Credential has an access key with a character outside printable ASCII";
  }
  if (fields[0] != kScopeTerminator) return "Credential scope must end in aws4_request";
  if (fields[3].size() != 8 || !std::all_of(fields[3].begin(), fields[3].end(), IsAsciiDigit)) {
    return "Credential date must be yyyymmdd";
  }
  if (fields[2].empty() || fields[1].empty()) return "Credential has an empty region or service";
  out->access_key = text;
  out->date = fields[3];
  out->region = fields[2];
  out->service = fields[1];
  return "";
}

std::string CheckScope(const SignatureInputs& in, std::string_view region, std::string_view timestamp) {
  if (in.service != kService) return "the credential scope names service '" + in.service + "', expecting 's3'";
  if (in.region != region) {
    return "the region '" + in.region + "' is wrong; expecting '" + std::string(region) + "'";
  }
  if (timestamp.substr(0, 8) != in.date) return "the credential date does not match the request date";
  return "";
}

std::string UriEncode(std::string_view bytes, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size());
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0f]);
    }
  }
  return out;
}

Result<std::string> CanonicalUri(std::string_view raw_path) {
  if (raw_path.empty()) return std::string("/");
  if (raw_path.front() != '/') return Status::InvalidArgument("the request path must start with '/'");
  std::string out;
  out.reserve(raw_path.size());
  // Each segment between slashes is decoded and re-encoded on its own, so an encoded slash
  // (%2F) inside a key stays encoded.
  while (!raw_path.empty()) {
    raw_path.remove_prefix(1);  // the '/'
    out.push_back('/');
    const size_t slash = raw_path.find('/');
    const std::string_view segment = raw_path.substr(0, slash);
    auto decoded = PercentDecode(segment, /*plus_is_space=*/false);
    if (!decoded.ok()) return Status::InvalidArgument("bad percent-encoding in the request path");
    out += UriEncode(*decoded, /*keep_slash=*/false);
    raw_path.remove_prefix(segment.size());
  }
  return out;
}

Result<std::string> CanonicalQuery(std::string_view raw_query, bool presigned) {
  CAIRN_ASSIGN_OR_RETURN(Pairs pairs, ParseQuery(raw_query));
  Pairs encoded;
  encoded.reserve(pairs.size());
  for (const auto& [name, value] : pairs) {
    if (presigned && name == kQuerySignature) continue;
    encoded.emplace_back(UriEncode(name, /*keep_slash=*/false), UriEncode(value, /*keep_slash=*/false));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name;
    out.push_back('=');
    out += value;
  }
  return out;
}

Result<std::string> BuildCanonicalRequest(const SigV4Request& request, const std::vector<std::string>& signed_headers,
                                          std::string_view payload_hash, bool presigned) {
  CAIRN_ASSIGN_OR_RETURN(const std::string uri, CanonicalUri(request.path));
  CAIRN_ASSIGN_OR_RETURN(const std::string query, CanonicalQuery(request.raw_query, presigned));
  std::string out;
  out.reserve(256);
  out.append(request.method).push_back('\n');
  out.append(uri).push_back('\n');
  out.append(query).push_back('\n');
  for (const std::string& name : signed_headers) {
    // A signed header the request lacks is given an empty value: the signature then fails to
    // match, which is the right answer.
    out.append(name).push_back(':');
    out.append(CanonicalHeaderValue(request, name).value_or("")).push_back('\n');
  }
  out.push_back('\n');
  for (size_t i = 0; i < signed_headers.size(); ++i) {
    if (i > 0) out.push_back(';');
    out.append(signed_headers[i]);
  }
  out.push_back('\n');
  out.append(payload_hash);
  return out;
}

std::string BuildStringToSign(std::string_view timestamp, std::string_view scope, std::string_view canonical_request) {
  std::string out;
  out.append(kAlgorithm).push_back('\n');
  out.append(timestamp).push_back('\n');
  out.append(scope).push_back('\n');
  out.append(crypto::HexEncode(crypto::Sha256(canonical_request)));
  return out;
}

std::string BuildChunkStringToSign(std::string_view timestamp, std::string_view scope,
                                   std::string_view previous_signature, const crypto::Sha256Digest& chunk_sha256) {
  std::string out;
  out.append(kChunkAlgorithm).push_back('\n');
  out.append(timestamp).push_back('\n');
  out.append(scope).push_back('\n');
  out.append(previous_signature).push_back('\n');
  out.append(kEmptySha256Hex).push_back('\n');
  out.append(crypto::HexEncode(chunk_sha256));
  return out;
}

SigningKey DeriveSigningKey(std::string_view secret_key, std::string_view date, std::string_view region,
                            std::string_view service) {
  std::string seed = "AWS4";
  seed.append(secret_key);
  const SigningKey date_key = crypto::HmacSha256(seed, date);
  const SigningKey region_key = crypto::HmacSha256(date_key, region);
  const SigningKey service_key = crypto::HmacSha256(region_key, service);
  return crypto::HmacSha256(service_key, kScopeTerminator);
}

std::string ComputeSignature(const SigningKey& key, std::string_view string_to_sign) {
  return crypto::HexEncode(crypto::HmacSha256(key, string_to_sign));
}

Result<SignatureInputs> ParseAuthorizationHeader(std::string_view value) {
  value = TrimHttpSpace(value);
  const size_t space = value.find_first_of(" \t");
  const std::string_view algorithm = value.substr(0, space);
  if (algorithm.empty()) return Status::AuthorizationHeaderMalformed("the Authorization header is empty");
  if (algorithm != kAlgorithm) {
    return Status::InvalidAuthRequest("unsupported authorization type " + std::string(algorithm.substr(0, 64)));
  }
  std::string_view rest = space == std::string_view::npos ? std::string_view() : value.substr(space);

  SignatureInputs in;
  bool have_credential = false;
  bool have_signed_headers = false;
  bool have_signature = false;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view part = TrimHttpSpace(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      return Status::AuthorizationHeaderMalformed("the Authorization header has a component without '='");
    }
    const std::string_view key = part.substr(0, eq);
    const std::string_view val = part.substr(eq + 1);
    if (key == "Credential" && !have_credential) {
      have_credential = true;
      if (std::string msg = ParseCredential(val, &in); !msg.empty()) {
        return Status::AuthorizationHeaderMalformed(msg);
      }
    } else if (key == "SignedHeaders" && !have_signed_headers) {
      have_signed_headers = true;
      if (std::string msg = ParseSignedHeaders(val, &in.signed_headers); !msg.empty()) {
        return Status::AuthorizationHeaderMalformed(msg);
      }
    } else if (key == "Signature" && !have_signature) {
      have_signature = true;
      if (!IsLowerHexString(val, kSignatureHexLength)) {
        return Status::AuthorizationHeaderMalformed("Signature must be 64 lowercase hex digits");
      }
      in.signature = val;
    } else {
      return Status::AuthorizationHeaderMalformed("the Authorization header has an unknown or repeated component");
    }
  }
  if (!have_credential || !have_signed_headers || !have_signature) {
    return Status::AuthorizationHeaderMalformed(
        "the Authorization header needs Credential, SignedHeaders and Signature");
  }
  return in;
}

std::optional<int64_t> ParseAmzDate(std::string_view text) {
  using namespace std::chrono;  // NOLINT: calendar types, local to this function
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') return std::nullopt;
  const auto y = ParseFixedDigits(text.substr(0, 4));
  const auto mo = ParseFixedDigits(text.substr(4, 2));
  const auto d = ParseFixedDigits(text.substr(6, 2));
  const auto h = ParseFixedDigits(text.substr(9, 2));
  const auto mi = ParseFixedDigits(text.substr(11, 2));
  const auto s = ParseFixedDigits(text.substr(13, 2));
  if (!y || !mo || !d || !h || !mi || !s || *h > 23 || *mi > 59 || *s > 59) return std::nullopt;
  const year_month_day ymd{year{*y}, month{static_cast<unsigned>(*mo)}, day{static_cast<unsigned>(*d)}};
  if (!ymd.ok()) return std::nullopt;
  const int64_t days = sys_days(ymd).time_since_epoch().count();
  return days * 86400 + *h * 3600 + *mi * 60 + *s;
}

std::string FormatAmzDate(int64_t unix_seconds) {
  using namespace std::chrono;  // NOLINT: calendar types, local to this function
  const auto tp = sys_seconds(seconds(unix_seconds));
  const auto day_start = floor<days>(tp);
  const year_month_day ymd(day_start);
  const hh_mm_ss<seconds> hms(tp - day_start);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04d%02u%02uT%02d%02d%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::optional<int64_t> ParseHttpDate(std::string_view text) {
  // "Fri, 24 May 2013 00:00:00 GMT"
  static constexpr std::string_view kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (text.size() != 29 || text.substr(3, 2) != ", " || text[7] != ' ' || text[11] != ' ' || text[16] != ' ' ||
      text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT") {
    return std::nullopt;
  }
  if (std::find(std::begin(kDays), std::end(kDays), text.substr(0, 3)) == std::end(kDays)) return std::nullopt;
  const auto month_it = std::find(std::begin(kMonths), std::end(kMonths), text.substr(8, 3));
  if (month_it == std::end(kMonths)) return std::nullopt;
  const int month = static_cast<int>(month_it - std::begin(kMonths)) + 1;
  // Rearranged into "yyyymmddThhmmssZ" and checked by the one strict parser.
  std::string amz;
  amz.append(text.substr(12, 4));
  amz.push_back(static_cast<char>('0' + month / 10));
  amz.push_back(static_cast<char>('0' + month % 10));
  amz.append(text.substr(5, 2)).push_back('T');
  amz.append(text.substr(17, 2)).append(text.substr(20, 2)).append(text.substr(23, 2)).push_back('Z');
  return ParseAmzDate(amz);
}

Result<AuthResult> VerifyRequest(const SigV4Request& request, const SecretLookup& lookup, int64_t now_unix_seconds,
                                 std::string_view region) {
  bool duplicate = false;
  const std::optional<std::string_view> authorization = SingleHeader(request, "authorization", &duplicate);
  if (duplicate) return Status::AuthorizationHeaderMalformed("more than one Authorization header");

  CAIRN_ASSIGN_OR_RETURN(const Pairs query, ParseQuery(request.raw_query));
  bool presigned = false;
  for (const auto& [name, value] : query) {
    if (name == kQueryAlgorithm || name == kQueryCredential || name == kQuerySignature) presigned = true;
    if (name == "AWSAccessKeyId") return Status::InvalidAuthRequest("SigV2 presigned URLs are not supported");
  }
  if (authorization && presigned) {
    return Status::InvalidAuthRequest("only one auth mechanism allowed: Authorization header or query parameters");
  }
  if (authorization) return VerifyHeaderAuth(request, *authorization, lookup, now_unix_seconds, region);
  if (presigned) return VerifyPresigned(request, query, lookup, now_unix_seconds, region);
  return Anonymous(request);
}

Status CheckPayloadSha256(const AuthResult& auth, const crypto::Sha256Digest& body_sha256) {
  if (auth.payload_mode != PayloadMode::kSignedSha256) return Status::OK();
  const std::string_view expected(reinterpret_cast<const char*>(auth.payload_sha256.data()),
                                  auth.payload_sha256.size());
  const std::string_view actual(reinterpret_cast<const char*>(body_sha256.data()), body_sha256.size());
  if (!crypto::ConstantTimeEquals(expected, actual)) {
    return Status::ContentSha256Mismatch("the body hashes to " + crypto::HexEncode(body_sha256) +
                                         ", x-amz-content-sha256 says " + auth.content_sha256_header);
  }
  return Status::OK();
}

// ---- ChunkSignatureVerifier ----

ChunkSignatureVerifier::ChunkSignatureVerifier(StreamingContext context)
    : context_(std::move(context)), previous_signature_(context_.seed_signature) {}

Result<ChunkSignatureVerifier> ChunkSignatureVerifier::FromAuthResult(const AuthResult& auth) {
  if (auth.payload_mode != PayloadMode::kStreamingSigned || !auth.streaming) {
    return Status::InvalidArgument("the request is not a STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload");
  }
  return ChunkSignatureVerifier(*auth.streaming);
}

Status ChunkSignatureVerifier::VerifyChunk(std::string_view chunk_signature, std::span<const std::byte> chunk_data) {
  return VerifyChunkDigest(chunk_signature, crypto::Sha256(chunk_data));
}

Status ChunkSignatureVerifier::VerifyChunkDigest(std::string_view chunk_signature,
                                                 const crypto::Sha256Digest& chunk_sha256) {
  std::string expected =
      ComputeSignature(context_.signing_key,
                       BuildChunkStringToSign(context_.timestamp, context_.scope, previous_signature_, chunk_sha256));
  if (!crypto::ConstantTimeEquals(expected, chunk_signature)) {
    return Status::SignatureDoesNotMatch("a chunk signature does not match its data");
  }
  previous_signature_ = std::move(expected);
  return Status::OK();
}

// ---- AwsChunkedDecoder ----

AwsChunkedDecoder::AwsChunkedDecoder(ChunkSignatureVerifier verifier, Options options)
    : verifier_(std::move(verifier)), options_(options) {}

Status AwsChunkedDecoder::Fail(Status status) {
  state_ = State::kFailed;
  error_ = status;
  return status;
}

Status AwsChunkedDecoder::OnHeaderLine(std::string_view line) {
  // `line` ends with '\n'; the framing requires "\r\n".
  if (line.size() < 2 || line[line.size() - 2] != '\r') {
    return Fail(Status::IncompleteBody("a chunk header does not end in CRLF"));
  }
  line.remove_suffix(2);
  const size_t semi = line.find(';');
  const std::string_view size_hex = line.substr(0, semi);
  if (semi == std::string_view::npos || size_hex.empty() || size_hex.size() > 16) {
    return Fail(Status::IncompleteBody("a chunk header must be <hex size>;chunk-signature=<signature>"));
  }
  uint64_t size = 0;
  for (char c : size_hex) {
    const int v = HexDigitValue(c);
    if (v < 0) return Fail(Status::IncompleteBody("a chunk size is not hexadecimal"));
    size = (size << 4) | static_cast<uint64_t>(v);
  }
  const std::string_view field = line.substr(semi);
  if (field.substr(0, kChunkSignatureField.size()) != kChunkSignatureField ||
      field.size() != kChunkSignatureField.size() + kSignatureHexLength) {
    return Fail(Status::IncompleteBody("a chunk header must carry chunk-signature=<64 hex digits>"));
  }
  chunk_signature_.assign(field.substr(kChunkSignatureField.size()));

  if (size > options_.max_chunk_size) {
    return Fail(Status::InvalidChunkSize("a chunk of " + std::to_string(size) + " bytes exceeds the limit of " +
                                         std::to_string(options_.max_chunk_size)));
  }
  if (size > 0 && have_data_chunk_ && last_chunk_size_ < options_.min_chunk_size) {
    return Fail(Status::InvalidChunkSize("a chunk of " + std::to_string(last_chunk_size_) +
                                         " bytes is followed by another; only the last may be under " +
                                         std::to_string(options_.min_chunk_size)));
  }
  const auto& expected = options_.expected_decoded_length;
  if (expected && size > *expected - decoded_length_) {
    return Fail(Status::IncompleteBody("the chunks hold more than x-amz-decoded-content-length bytes"));
  }

  if (size == 0) {
    Status verified = verifier_.VerifyChunkDigest(chunk_signature_, crypto::Sha256(std::span<const std::byte>()));
    if (!verified.ok()) return Fail(verified);
    ++chunks_verified_;
    if (expected && decoded_length_ != *expected) {
      return Fail(Status::IncompleteBody("the chunks hold " + std::to_string(decoded_length_) +
                                         " bytes, x-amz-decoded-content-length says " + std::to_string(*expected)));
    }
    state_ = State::kFinalCrlf;
    crlf_seen_ = 0;
    return Status::OK();
  }
  chunk_remaining_ = size;
  last_chunk_size_ = size;
  have_data_chunk_ = true;
  state_ = State::kData;
  return Status::OK();
}

Status AwsChunkedDecoder::Feed(std::span<const std::byte> input, const Sink& sink) {
  size_t i = 0;
  while (i < input.size() || state_ == State::kFailed) {
    switch (state_) {
      case State::kFailed:
        return error_;
      case State::kHeader: {
        const std::span<const std::byte> rest = input.subspan(i);
        const void* newline = std::memchr(rest.data(), '\n', rest.size());
        const size_t take = newline == nullptr
                                ? rest.size()
                                : static_cast<size_t>(static_cast<const std::byte*>(newline) - rest.data()) + 1;
        if (header_line_.size() + take > kMaxChunkHeaderLine) {
          return Fail(Status::IncompleteBody("a chunk header is too long"));
        }
        header_line_.append(reinterpret_cast<const char*>(rest.data()), take);
        i += take;
        if (newline != nullptr) {
          const std::string line = std::move(header_line_);
          header_line_.clear();
          CAIRN_RETURN_IF_ERROR(OnHeaderLine(line));
        }
        break;
      }
      case State::kData: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(chunk_remaining_, input.size() - i));
        const std::span<const std::byte> piece = input.subspan(i, take);
        chunk_hasher_.Update(piece);
        decoded_length_ += take;
        chunk_remaining_ -= take;
        i += take;
        if (Status s = sink(piece); !s.ok()) return Fail(s);
        if (chunk_remaining_ == 0) {
          Status verified = verifier_.VerifyChunkDigest(chunk_signature_, chunk_hasher_.Finish());
          if (!verified.ok()) return Fail(verified);
          ++chunks_verified_;
          state_ = State::kDataCrlf;
          crlf_seen_ = 0;
        }
        break;
      }
      case State::kDataCrlf:
      case State::kFinalCrlf: {
        const char want = crlf_seen_ == 0 ? '\r' : '\n';
        if (static_cast<char>(input[i]) != want) return Fail(Status::IncompleteBody("a chunk is not followed by CRLF"));
        ++i;
        if (++crlf_seen_ == 2) state_ = state_ == State::kDataCrlf ? State::kHeader : State::kDone;
        break;
      }
      case State::kDone:
        return Fail(Status::IncompleteBody("bytes follow the final chunk"));
    }
  }
  return Status::OK();
}

Status AwsChunkedDecoder::Finish() {
  if (state_ == State::kFailed) return error_;
  if (state_ != State::kDone) return Fail(Status::IncompleteBody("the body ended before its final chunk"));
  return Status::OK();
}

}  // namespace cairn::gateway
