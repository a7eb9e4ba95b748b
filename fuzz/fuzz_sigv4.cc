// Fuzz target: SigV4 verification and its building blocks (gateway/sigv4.h).
//
// An input is one of two forms, told apart by its first line.
//
// A request: every input that does not start with "aws-chunked\n". Fields are '\n'-terminated
// lines; missing ones are empty:
//     <secret>            the secret of the one access key the lookup knows, AKIAIOSFODNN7EXAMPLE
//     <method>
//     <raw path>
//     <raw query>
//     <name>: <value>     zero or more headers, up to an empty line; names are lowercased (the
//                         SigV4Request contract), a line without ':' is a name with an empty value
//     <body>              the rest, decoded as aws-chunked when the request is a verified
//                         streaming upload
// VerifyRequest runs with the clock at 2013-05-24T00:00:00Z and the region us-east-1, as in the
// published AWS examples, so their headers verify. CanonicalUri, CanonicalQuery,
// ParseAuthorizationHeader, ParseAmzDate and ParseHttpDate also run on the raw fields.
//
// An aws-chunked body: "aws-chunked\n", six control bytes, then the body:
//     byte 0       flags: bit 0 set means min_chunk_size 0 (otherwise S3's 8 KiB); bit 1 set
//                  means expected_decoded_length is set: the body's true decoded length plus
//                  bytes 1-2 (a little-endian int16, usually 0)
//     bytes 1-2    the expected decoded length's offset
//     bytes 3-5    piece sizes: the body is fed in pieces of these sizes in turn (0: the rest)
// The chunk signatures chain from the seed of the published streaming example (same secret,
// date, scope and seed signature), so a body signed the way that example is verifies.
//
// Properties: VerifyRequest is deterministic, fails only with the codes sigv4.h lists, and a
// success is consistent (anonymous exactly when no key; the only key; times within the skew or
// expiry window; streaming context exactly for streaming uploads, with the signing key the secret
// derives; payload digest matching the header) and depends on the secret: the same request with
// another secret is SignatureDoesNotMatch, with an unknown key InvalidAccessKeyId. Canonical URI
// and query are idempotent and use only the unreserved set and %XX. A parsed Authorization header
// meets its invariants and parses back the same from its canonical spelling. Dates survive
// Format(Parse(x)). AwsChunkedDecoder gives the same result fed whole or in pieces, keeps its
// first error, and accepts exactly the bodies a separate whole-buffer decoder here accepts, with
// the same data.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"
#include "common/crypto.h"
#include "gateway/sigv4.h"
#include "gateway/text.h"

namespace cairn::gateway {
namespace {

// check.h's AsciiLower is called as ::AsciiLower: wherever gateway/text.h is included, the
// unqualified name finds cairn::gateway::AsciiLower, the code under test, instead of the oracle.

constexpr std::string_view kAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kRegion = "us-east-1";
constexpr int64_t kNow = 1369353600;  // 2013-05-24T00:00:00Z
constexpr std::string_view kChunkedMarker = "aws-chunked\n";
constexpr size_t kChunkedControlBytes = 6;

// The published streaming example's signing context.
constexpr std::string_view kExampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kExampleSeedSignature = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
constexpr std::string_view kExampleScope = "20130524/us-east-1/s3/aws4_request";
constexpr std::string_view kExampleTimestamp = "20130524T000000Z";

const StreamingContext& ExampleContext() {
  static const StreamingContext context{DeriveSigningKey(kExampleSecret, "20130524", kRegion, "s3"),
                                        std::string(kExampleSeedSignature), std::string(kExampleScope),
                                        std::string(kExampleTimestamp)};
  return context;
}

std::span<const std::byte> Bytes(std::string_view s) { return crypto::AsBytes(s); }

// Splits off the next '\n'-terminated line (the whole rest when there is no '\n').
std::string_view NextLine(std::string_view* in) {
  const size_t nl = in->find('\n');
  const std::string_view line = in->substr(0, nl);
  in->remove_prefix(nl == std::string_view::npos ? in->size() : nl + 1);
  return line;
}

bool IsLowerHexChar(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsLowerHex64(std::string_view s) { return s.size() == 64 && std::all_of(s.begin(), s.end(), IsLowerHexChar); }
bool IsUnreservedOr(char c, std::string_view extra) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::string_view("-_.~").find(c) != std::string_view::npos || extra.find(c) != std::string_view::npos;
}

// Every byte is unreserved, one of `extra`, or part of a %XX escape with uppercase hex.
bool EncodedOnly(std::string_view s, std::string_view extra) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (IsUnreservedOr(s[i], extra)) continue;
    if (s[i] != '%' || i + 2 >= s.size()) return false;
    for (size_t k = i + 1; k <= i + 2; ++k) {
      if (!((s[k] >= '0' && s[k] <= '9') || (s[k] >= 'A' && s[k] <= 'F'))) return false;
    }
    i += 2;
  }
  return true;
}

void CheckCanonicalUri(std::string_view path) {
  const Result<std::string> uri = CanonicalUri(path);
  if (!uri.ok()) {
    FUZZ_CHECK(uri.status().IsInvalidArgument());
    FUZZ_CHECK(!path.empty());
    return;
  }
  FUZZ_CHECK(!uri->empty() && uri->front() == '/');
  FUZZ_CHECK(EncodedOnly(*uri, "/"));
  if (!path.empty()) FUZZ_CHECK(std::count(path.begin(), path.end(), '/') == std::count(uri->begin(), uri->end(), '/'));
  const Result<std::string> again = CanonicalUri(*uri);
  FUZZ_CHECK(again.ok() && *again == *uri);
}

void CheckCanonicalQuery(std::string_view query) {
  const Result<std::string> plain = CanonicalQuery(query, /*presigned=*/false);
  const Result<std::string> presigned = CanonicalQuery(query, /*presigned=*/true);
  FUZZ_CHECK(plain.ok() == presigned.ok());
  if (!plain.ok()) {
    FUZZ_CHECK(plain.status().IsInvalidArgument() && presigned.status().IsInvalidArgument());
    return;
  }
  for (const bool is_presigned : {false, true}) {
    const std::string& canonical = is_presigned ? *presigned : *plain;
    FUZZ_CHECK(EncodedOnly(canonical, "&="));
    const Result<std::string> again = CanonicalQuery(canonical, is_presigned);
    FUZZ_CHECK(again.ok() && *again == canonical);
    // name=value pairs joined by '&', sorted by name then value.
    std::string_view rest = canonical;
    std::optional<std::pair<std::string_view, std::string_view>> previous;
    while (!rest.empty()) {
      const size_t amp = rest.find('&');
      const std::string_view pair = rest.substr(0, amp);
      rest.remove_prefix(amp == std::string_view::npos ? rest.size() : amp + 1);
      FUZZ_CHECK(!rest.empty() || amp == std::string_view::npos);  // no trailing '&'
      const size_t eq = pair.find('=');
      FUZZ_CHECK(eq != std::string_view::npos && pair.find('=', eq + 1) == std::string_view::npos);
      const std::pair<std::string_view, std::string_view> current(pair.substr(0, eq), pair.substr(eq + 1));
      FUZZ_CHECK(!previous || !(current < *previous));
      if (is_presigned) FUZZ_CHECK(current.first != "X-Amz-Signature");
      previous = current;
    }
  }
}

void CheckAuthorizationHeader(std::string_view value) {
  const Result<SignatureInputs> in = ParseAuthorizationHeader(value);
  if (!in.ok()) {
    FUZZ_CHECK(in.status().IsInvalidAuthRequest() || in.status().IsAuthorizationHeaderMalformed());
    return;
  }
  FUZZ_CHECK(!in->access_key.empty());
  for (char c : in->access_key) FUZZ_CHECK(c > ' ' && c <= '~');
  FUZZ_CHECK(in->date.size() == 8 &&
             std::all_of(in->date.begin(), in->date.end(), [](char c) { return c >= '0' && c <= '9'; }));
  FUZZ_CHECK(!in->region.empty() && !in->service.empty());
  FUZZ_CHECK(IsLowerHex64(in->signature));
  FUZZ_CHECK(!in->signed_headers.empty());
  for (size_t i = 0; i < in->signed_headers.size(); ++i) {
    FUZZ_CHECK(!in->signed_headers[i].empty());
    if (i > 0) FUZZ_CHECK(in->signed_headers[i - 1] < in->signed_headers[i]);
  }
  // The canonical spelling parses back to the same inputs.
  std::string spelled = "AWS4-HMAC-SHA256 Credential=" + in->access_key + "/" + in->date + "/" + in->region + "/" +
                        in->service + "/aws4_request, SignedHeaders=";
  for (size_t i = 0; i < in->signed_headers.size(); ++i) {
    if (i > 0) spelled.push_back(';');
    spelled += in->signed_headers[i];
  }
  spelled += ", Signature=" + in->signature;
  const Result<SignatureInputs> again = ParseAuthorizationHeader(spelled);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->access_key == in->access_key && again->date == in->date && again->region == in->region &&
             again->service == in->service && again->signed_headers == in->signed_headers &&
             again->signature == in->signature);
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

void CheckDates(std::string_view text) {
  if (const std::optional<int64_t> t = ParseAmzDate(text)) {
    FUZZ_CHECK(FormatAmzDate(*t) == text);
  }
  if (const std::optional<int64_t> t = ParseHttpDate(text)) {
    const std::string amz = FormatAmzDate(*t);
    FUZZ_CHECK(ParseAmzDate(amz) == t);
    // Same clock fields as the text: "Fri, 24 May 2013 00:00:00 GMT" vs "20130524T000000Z".
    FUZZ_CHECK(amz.substr(0, 4) == text.substr(12, 4) && amz.substr(6, 2) == text.substr(5, 2));
    FUZZ_CHECK(amz.substr(9, 2) == text.substr(17, 2) && amz.substr(11, 2) == text.substr(20, 2) &&
               amz.substr(13, 2) == text.substr(23, 2));
  }
}

// ---- aws-chunked ----

struct DecodeOutcome {
  Status feed;    // the last Feed's status
  Status finish;  // Finish's
  std::string data;
  bool done = false;
  uint64_t decoded_length = 0;
  uint64_t chunks_verified = 0;
};

// Feeds `body` in pieces of the given sizes in turn (0: the rest), stopping at the first error.
DecodeOutcome Decode(const StreamingContext& context, const AwsChunkedDecoder::Options& options, std::string_view body,
                     std::span<const uint8_t> piece_sizes) {
  AwsChunkedDecoder decoder(ChunkSignatureVerifier(context), options);
  DecodeOutcome out;
  const AwsChunkedDecoder::Sink sink = [&out](std::span<const std::byte> piece) {
    out.data.append(reinterpret_cast<const char*>(piece.data()), piece.size());
    return Status::OK();
  };
  size_t k = 0;
  do {
    const size_t want = piece_sizes.empty() ? 0 : piece_sizes[k++ % piece_sizes.size()];
    const size_t take = want == 0 ? body.size() : std::min(want, body.size());
    out.feed = decoder.Feed(Bytes(body.substr(0, take)), sink);
    body.remove_prefix(take);
  } while (out.feed.ok() && !body.empty());
  if (!out.feed.ok()) {
    // The first error is sticky.
    FUZZ_CHECK(decoder.Feed(Bytes("0"), sink).code() == out.feed.code());
    FUZZ_CHECK(!decoder.done());
  }
  out.finish = decoder.Finish();
  if (!out.feed.ok()) FUZZ_CHECK(out.finish.code() == out.feed.code());
  FUZZ_CHECK(decoder.Finish().code() == out.finish.code());
  out.done = decoder.done();
  out.decoded_length = decoder.decoded_length();
  out.chunks_verified = decoder.chunks_verified();
  FUZZ_CHECK(out.decoded_length == out.data.size());
  return out;
}

struct Reference {
  std::string data;
  uint64_t chunks = 0;                // data chunks and the final empty one
  std::vector<uint64_t> data_chunks;  // sizes of the data chunks, in order
};

// A second reading of the aws-chunked format (sigv4.h), written for clarity over a whole buffer:
// the decoded data when `body` is a complete, correctly signed body within `options`.
std::optional<Reference> ReferenceDecode(const StreamingContext& context, const AwsChunkedDecoder::Options& options,
                                         std::string_view body) {
  constexpr std::string_view kField = ";chunk-signature=";
  ChunkSignatureVerifier verifier(context);
  Reference out;
  std::optional<uint64_t> previous_size;
  while (true) {
    const size_t crlf = body.find("\r\n");
    if (crlf == std::string_view::npos) return std::nullopt;
    const std::string_view header = body.substr(0, crlf);
    body.remove_prefix(crlf + 2);
    const size_t semi = header.find(';');
    if (semi == std::string_view::npos || semi == 0 || semi > 16) return std::nullopt;
    uint64_t size = 0;
    for (char c : header.substr(0, semi)) {
      if (HexDigitValue(c) < 0) return std::nullopt;
      size = size * 16 + static_cast<uint64_t>(HexDigitValue(c));
    }
    const std::string_view field = header.substr(semi);
    if (field.substr(0, kField.size()) != kField || field.size() != kField.size() + 64) return std::nullopt;
    const std::string_view signature = field.substr(kField.size());
    if (size > options.max_chunk_size) return std::nullopt;
    if (size > 0 && previous_size && *previous_size < options.min_chunk_size) return std::nullopt;
    if (options.expected_decoded_length && out.data.size() + size > *options.expected_decoded_length) {
      return std::nullopt;
    }
    if (body.size() < size + 2 || body.substr(size, 2) != "\r\n") return std::nullopt;
    const std::string_view data = body.substr(0, size);
    if (!verifier.VerifyChunk(signature, Bytes(data)).ok()) return std::nullopt;
    ++out.chunks;
    body.remove_prefix(size + 2);
    if (size == 0) break;
    out.data.append(data);
    out.data_chunks.push_back(size);
    previous_size = size;
  }
  if (!body.empty()) return std::nullopt;
  if (options.expected_decoded_length && out.data.size() != *options.expected_decoded_length) return std::nullopt;
  return out;
}

void CheckChunked(const StreamingContext& context, const AwsChunkedDecoder::Options& options, std::string_view body,
                  std::span<const uint8_t> piece_sizes) {
  const DecodeOutcome whole = Decode(context, options, body, {});
  const DecodeOutcome pieces = Decode(context, options, body, piece_sizes);
  FUZZ_CHECK(whole.feed.code() == pieces.feed.code() && whole.finish.code() == pieces.finish.code());
  FUZZ_CHECK(whole.data == pieces.data && whole.done == pieces.done);
  FUZZ_CHECK(whole.chunks_verified == pieces.chunks_verified);

  const std::optional<Reference> reference = ReferenceDecode(context, options, body);
  FUZZ_CHECK(whole.finish.ok() == reference.has_value());
  if (whole.finish.ok()) {
    FUZZ_CHECK(whole.done && whole.data == reference->data && whole.chunks_verified == reference->chunks);
    if (options.expected_decoded_length) FUZZ_CHECK(whole.decoded_length == *options.expected_decoded_length);
  } else {
    const Status& s = whole.finish;
    FUZZ_CHECK(s.IsIncompleteBody() || s.IsInvalidChunkSize() || s.IsSignatureDoesNotMatch());
  }
}

// Decoding with `options` must succeed exactly when `accepted`.
void CheckLimit(const AwsChunkedDecoder::Options& options, std::string_view body, bool accepted) {
  const uint8_t pieces[] = {1};
  CheckChunked(ExampleContext(), options, body, pieces);
  FUZZ_CHECK(Decode(ExampleContext(), options, body, {}).finish.ok() == accepted);
}

void FuzzChunked(std::string_view in) {
  uint8_t control[kChunkedControlBytes] = {};
  for (size_t i = 0; i < kChunkedControlBytes && i < in.size(); ++i) control[i] = static_cast<uint8_t>(in[i]);
  in.remove_prefix(std::min(in.size(), kChunkedControlBytes));

  // What the body decodes to with neither a length nor a minimum chunk size.
  AwsChunkedDecoder::Options unlimited;
  unlimited.min_chunk_size = 0;
  const std::optional<Reference> decoded = ReferenceDecode(ExampleContext(), unlimited, in);

  AwsChunkedDecoder::Options options;
  if (control[0] & 1) options.min_chunk_size = 0;
  if (control[0] & 2) {
    // Relative to the length the body decodes to (0 when it does not), so that the neighbours
    // of the right length are a small mutation away.
    const int64_t actual = decoded ? static_cast<int64_t>(decoded->data.size()) : 0;
    const auto delta = static_cast<int16_t>(control[1] | (control[2] << 8));
    options.expected_decoded_length = static_cast<uint64_t>(std::max<int64_t>(0, actual + delta));
  }
  CheckChunked(ExampleContext(), options, in, std::span<const uint8_t>(control + 3, 3));
  if (!decoded) return;

  // A valid body: acceptance changes exactly at its decoded length and at its smallest chunk
  // before the last data chunk.
  const uint64_t length = decoded->data.size();
  AwsChunkedDecoder::Options with_length = unlimited;
  with_length.expected_decoded_length = length;
  CheckLimit(with_length, in, /*accepted=*/true);
  with_length.expected_decoded_length = length + 1;
  CheckLimit(with_length, in, /*accepted=*/false);
  if (length > 0) {
    with_length.expected_decoded_length = length - 1;
    CheckLimit(with_length, in, /*accepted=*/false);
  }
  const std::vector<uint64_t>& sizes = decoded->data_chunks;
  if (sizes.size() >= 2) {
    const uint64_t smallest = *std::min_element(sizes.begin(), sizes.end() - 1);
    AwsChunkedDecoder::Options with_minimum = unlimited;
    with_minimum.min_chunk_size = smallest;
    CheckLimit(with_minimum, in, /*accepted=*/true);
    with_minimum.min_chunk_size = smallest + 1;
    CheckLimit(with_minimum, in, /*accepted=*/false);
  }
}

// ---- Requests ----

bool IsDocumentedFailure(const Status& s) {
  return s.IsInvalidAuthRequest() || s.IsAuthorizationHeaderMalformed() || s.IsAuthorizationQueryMalformed() ||
         s.IsAccessDenied() || s.IsInvalidArgument() || s.IsRequestTimeTooSkewed() || s.IsRequestExpired() ||
         s.IsInvalidAccessKeyId() || s.IsSignatureDoesNotMatch();
}

SecretLookup LookupWith(std::optional<std::string> secret) {
  return [secret = std::move(secret)](std::string_view key) -> std::optional<std::string> {
    if (key == kAccessKey) return secret;
    return std::nullopt;
  };
}

void CheckAuthResult(const AuthResult& auth, const SigV4Request& request, const std::string& secret) {
  FUZZ_CHECK(auth.anonymous == (auth.method == AuthMethod::kAnonymous));
  if (auth.anonymous) {
    FUZZ_CHECK(auth.access_key.empty() && auth.request_time == 0);
  } else {
    FUZZ_CHECK(auth.access_key == kAccessKey);
    FUZZ_CHECK(CanonicalUri(request.path).ok() && CanonicalQuery(request.raw_query, false).ok());
  }
  if (auth.method == AuthMethod::kHeader) {
    FUZZ_CHECK(std::max(auth.request_time - kNow, kNow - auth.request_time) <= kMaxClockSkewSeconds);
  }
  if (auth.method == AuthMethod::kPresigned) {
    FUZZ_CHECK(auth.request_time - kNow <= kMaxClockSkewSeconds);
    FUZZ_CHECK(kNow <= auth.request_time + kMaxPresignExpirySeconds);
    FUZZ_CHECK(auth.payload_mode == PayloadMode::kUnsigned);
  }

  FUZZ_CHECK(auth.streaming.has_value() == (auth.payload_mode == PayloadMode::kStreamingSigned));
  if (auth.streaming) {
    const StreamingContext& s = *auth.streaming;
    FUZZ_CHECK(auth.method == AuthMethod::kHeader && auth.decoded_content_length.has_value());
    FUZZ_CHECK(IsLowerHex64(s.seed_signature));
    FUZZ_CHECK(s.timestamp == FormatAmzDate(auth.request_time));
    const std::string date = s.timestamp.substr(0, 8);
    FUZZ_CHECK(s.scope == date + "/" + std::string(kRegion) + "/s3/aws4_request");
    FUZZ_CHECK(s.signing_key == DeriveSigningKey(secret, date, kRegion, "s3"));
    FUZZ_CHECK(ChunkSignatureVerifier::FromAuthResult(auth).ok());
  } else {
    FUZZ_CHECK(ChunkSignatureVerifier::FromAuthResult(auth).status().IsInvalidArgument());
  }

  crypto::Sha256Digest other = auth.payload_sha256;
  other[0] ^= 1;
  if (auth.payload_mode == PayloadMode::kSignedSha256) {
    FUZZ_CHECK(crypto::HexEncode(auth.payload_sha256) == ::AsciiLower(auth.content_sha256_header));
    FUZZ_CHECK(CheckPayloadSha256(auth, auth.payload_sha256).ok());
    FUZZ_CHECK(CheckPayloadSha256(auth, other).IsContentSha256Mismatch());
  } else {
    FUZZ_CHECK(CheckPayloadSha256(auth, other).ok());
  }
}

void FuzzRequest(std::string_view in) {
  const std::string secret(NextLine(&in));
  SigV4Request request;
  request.method = NextLine(&in);
  request.path = NextLine(&in);
  request.raw_query = NextLine(&in);
  while (!in.empty()) {
    const std::string_view line = NextLine(&in);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    std::string name = ::AsciiLower(line.substr(0, colon));
    const std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    request.headers.emplace_back(std::move(name), std::string(value));
  }
  const std::string_view body = in;

  CheckCanonicalUri(request.path);
  CheckCanonicalQuery(request.raw_query);
  for (const auto& [name, value] : request.headers) {
    if (name == "authorization") CheckAuthorizationHeader(value);
    if (name == "x-amz-date" || name == "date") CheckDates(TrimSpaces(value));
  }

  const Result<AuthResult> auth = VerifyRequest(request, LookupWith(secret), kNow, kRegion);
  const Result<AuthResult> again = VerifyRequest(request, LookupWith(secret), kNow, kRegion);
  FUZZ_CHECK(auth.ok() == again.ok() && auth.status().code() == again.status().code());
  if (!auth.ok()) {
    FUZZ_CHECK(IsDocumentedFailure(auth.status()));
    return;
  }
  CheckAuthResult(*auth, request, secret);
  if (auth->anonymous) return;

  // The answer depends on the secret, and on the key being known.
  const Result<AuthResult> wrong = VerifyRequest(request, LookupWith(secret + "x"), kNow, kRegion);
  FUZZ_CHECK(!wrong.ok() && wrong.status().IsSignatureDoesNotMatch());
  const Result<AuthResult> unknown = VerifyRequest(request, LookupWith(std::nullopt), kNow, kRegion);
  FUZZ_CHECK(!unknown.ok() && unknown.status().IsInvalidAccessKeyId());

  if (auth->streaming) {
    AwsChunkedDecoder::Options options;
    options.expected_decoded_length = auth->decoded_content_length;
    const uint8_t pieces[] = {7, 1, 64};
    CheckChunked(*auth->streaming, options, body, pieces);
  }
}

}  // namespace
}  // namespace cairn::gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.substr(0, cairn::gateway::kChunkedMarker.size()) == cairn::gateway::kChunkedMarker) {
    in.remove_prefix(cairn::gateway::kChunkedMarker.size());
    cairn::gateway::FuzzChunked(in);
  } else {
    cairn::gateway::FuzzRequest(in);
  }
  return 0;
}
