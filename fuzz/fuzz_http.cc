// Fuzz target: HTTP request parsing as the S3 server does it, and the S3 reading of what it parses
// (gateway/s3_request.h, with SigV4 from gateway/sigv4.h).
//
// The input is what a client sends on one connection: one or more HTTP/1.1 requests, byte for
// byte. The bytes go to a Boost.Beast request_parser<buffer_body> with the server's limits
// (server.cc: 16 KiB of request head, no body limit) through put(), the way the server's reads
// drive it: bytes the parser has not consumed stay buffered for the next call, the body is read
// into a small buffer, and on a kept-alive connection the next request starts with the bytes left
// over. At most kMaxRequests requests are read per input.
//
// For every request head, the target does what the server does before it touches storage
// (S3Service::Dispatch and the handlers): ResolveTarget with the Host header and the domains
// s3.amazonaws.com and localhost, ClassifyOperation, ParseRange on Range, ParseCopySourceRange on
// x-amz-copy-source-range, EvaluateConditions on the If-* headers (and their x-amz-copy-source-if-*
// twins), and VerifyRequest on a SigV4Request built as Dispatch builds it, with the clock at
// 2013-05-24T00:00:00Z, region us-east-1 and one access key, AKIAIOSFODNN7EXAMPLE with the
// published AWS examples' secret, so the examples' requests verify (fuzz/make_seeds.py signs the
// seeds the same way).
//
// Properties:
//   - Framing: the connection parsed from one buffer and parsed from small pieces, with a body
//     buffer of a few bytes, gives the same requests, heads and bodies, and ends in an error in the
//     same request (not always the same error: see ParsedRequest::SameAs), except that a head of
//     16 to 32 KiB may be accepted in one reading and refused in the other (kMaxAcceptedHead); no
//     accepted head is larger than 32 KiB. A request read to its end with a Content-Length has
//     exactly that many body bytes. Header values hold no CR or LF.
//   - ResolveTarget fails, with InvalidArgument, exactly when the target is not origin-form or a
//     part of it has a bad %-escape (by a decoder written here). Otherwise the addressing is
//     virtual-host exactly when the Host, without port, is "<bucket>.<domain>" ignoring case and
//     not an IPv6 literal; the key (and for path style the bucket) is exactly the percent-decoded
//     path remainder; the query is QueryParams::Parse of the raw query, whose Get is the first
//     value of a name; and the decoded names re-encoded with UriEncode resolve to themselves.
//   - ClassifyOperation is consistent with the request: the operation's method, its level
//     (service, bucket or object), its sub-resource, copy operations exactly with
//     x-amz-copy-source, and kUnknown for unimplemented sub-resources.
//   - ParseRange: kNone does not depend on the object's size; a kSatisfiable range has
//     first <= last < size; nothing of an empty object is satisfiable; a range satisfiable at one
//     size stays so at every larger size, with first, last and length never decreasing. A
//     ParseCopySourceRange result {f, l} has f <= l, and ParseRange of the same text is exactly
//     {f, l} for any size above l.
//   - EvaluateConditions follows RFC 7232 section 6, stated as relations between results:
//     If-Match makes If-Unmodified-Since irrelevant, If-None-Match makes If-Modified-Since
//     irrelevant, an unparseable date is as good as none, a 412 from the first pair beats what the
//     second pair says, and the date conditions flip exactly between a date and the next second.
//     An etag list with the etag appended (quoted, or W/) matches it. A parsed HTTP date formats
//     back to itself (but for the day name, which the parser does not check against the date),
//     and FormatIso8601 of it agrees with FormatAmzDate.
//   - VerifyRequest is deterministic, fails only with the codes sigv4.h lists, reports the
//     method the request used (Authorization header, X-Amz-* query, or neither), and an
//     authenticated request fails with another secret (SignatureDoesNotMatch) and with an
//     unknown key (InvalidAccessKeyId). A body read to its end passes CheckPayloadSha256 exactly
//     when it hashes to x-amz-content-sha256.
#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "check.h"
#include "common/crypto.h"
#include "gateway/s3_request.h"
#include "gateway/sigv4.h"

namespace cairn::gateway {
namespace {

// check.h's AsciiLower is called as ::AsciiLower: wherever gateway/text.h is included, the
// unqualified name finds cairn::gateway::AsciiLower, the code under test, instead of the oracle.

namespace http = boost::beast::http;
using RequestParser = http::request_parser<http::buffer_body>;
using Pairs = std::vector<std::pair<std::string, std::string>>;

// The server's limits (gateway/server/server.cc).
constexpr uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr size_t kMaxRequests = 8;

constexpr std::string_view kAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kRegion = "us-east-1";
constexpr int64_t kNow = 1369353600;  // 2013-05-24T00:00:00Z
constexpr std::string_view kEtag = "d41d8cd98f00b204e9800998ecf8427e";

const std::vector<std::string>& Domains() {
  static const std::vector<std::string> domains = {"s3.amazonaws.com", "localhost"};
  return domains;
}

// ---- Text helpers, written independently of the code under test ----

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX-decoding; nullopt on a '%' without two hex digits after it.
std::optional<std::string> Decode(std::string_view s, bool plus_is_space) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (s.size() - i < 3) return std::nullopt;
      const int hi = Hex(s[i + 1]);
      const int lo = Hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

// The pairs of a raw query: '&'-separated, empty pieces skipped, split at the first '='.
std::optional<Pairs> DecodeQuery(std::string_view raw) {
  Pairs out;
  size_t start = 0;
  while (start <= raw.size()) {
    size_t end = raw.find('&', start);
    if (end == std::string_view::npos) end = raw.size();
    const std::string_view piece = raw.substr(start, end - start);
    start = end + 1;
    if (piece.empty()) continue;
    const size_t eq = piece.find('=');
    std::optional<std::string> name = Decode(piece.substr(0, eq), true);
    std::optional<std::string> value =
        eq == std::string_view::npos ? std::optional<std::string>("") : Decode(piece.substr(eq + 1), true);
    if (!name || !value) return std::nullopt;
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

// The bucket a Host names in virtual-host addressing, or nullopt for path style.
std::optional<std::string> VirtualHostBucket(std::string_view host) {
  host = TrimSpaces(host);
  if (host.empty() || host.front() == '[') return std::nullopt;  // IPv6 literal
  if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) host = host.substr(0, colon);
  const std::string lower = ::AsciiLower(host);
  for (const std::string& domain : Domains()) {
    const std::string suffix = "." + ::AsciiLower(domain);
    if (lower.size() > suffix.size() && lower.ends_with(suffix)) {
      return std::string(host.substr(0, host.size() - suffix.size()));
    }
  }
  return std::nullopt;
}

// ---- Reading a connection ----

std::string Str(boost::beast::string_view s) { return std::string(s.data(), s.size()); }

// One request as the connection read it.
struct ParsedRequest {
  bool header_done = false;
  bool done = false;
  // The error that ended the request, if any: a parse error, partial_message when the input ended
  // inside it, end_of_stream when it ended before its first byte.
  boost::system::error_code error;
  std::string method;
  std::string target;
  unsigned version = 0;
  Pairs fields;  // names and values as received
  std::optional<uint64_t> content_length;
  bool chunked = false;
  bool keep_alive = false;
  std::string body;
  size_t head_bytes = 0;  // bytes consumed up to the end of the head

  // Equal but for which error ended the request: Beast checks a request head only once all of
  // it has arrived, unless it arrives in one piece, so a malformed head cut short by the end of
  // the input is partial_message in pieces and e.g. bad_version in one (the server answers 400
  // to both).
  bool SameAs(const ParsedRequest& o) const {
    return header_done == o.header_done && done == o.done && static_cast<bool>(error) == static_cast<bool>(o.error) &&
           method == o.method && target == o.target && version == o.version && fields == o.fields &&
           content_length == o.content_length && chunked == o.chunked && keep_alive == o.keep_alive && body == o.body;
  }
};

// Reads requests from `input`, receiving it in pieces of the sizes in `piece_sizes` in turn (0:
// the rest), the body through a buffer of `body_buffer_size` bytes. Stops after a request that
// ends in an error or closes the connection.
std::vector<ParsedRequest> ReadConnection(std::string_view input, std::span<const size_t> piece_sizes,
                                          size_t body_buffer_size) {
  std::vector<ParsedRequest> requests;
  std::string buffered;  // received and not yet consumed: the server's flat_buffer
  size_t piece = 0;
  const auto receive = [&]() {
    if (input.empty()) return false;
    const size_t want = piece_sizes[piece++ % piece_sizes.size()];
    const size_t take = want == 0 ? input.size() : std::min(want, input.size());
    buffered.append(input.substr(0, take));
    input.remove_prefix(take);
    return true;
  };
  std::vector<char> body_buffer(body_buffer_size);

  while (requests.size() < kMaxRequests && !(buffered.empty() && input.empty())) {
    RequestParser parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    ParsedRequest r;
    bool need_more = buffered.empty();
    while (!parser.is_done()) {
      if (need_more && !receive()) {
        if (parser.got_some()) {
          parser.put_eof(r.error);
          if (!r.error && !parser.is_done()) r.error = http::error::partial_message;
        } else {
          r.error = http::error::end_of_stream;
        }
        break;
      }
      const bool reading_body = parser.is_header_done();
      if (reading_body) {
        parser.get().body().data = body_buffer.data();
        parser.get().body().size = body_buffer.size();
      }
      boost::system::error_code ec;
      const size_t used = parser.put(boost::asio::buffer(buffered.data(), buffered.size()), ec);
      if (reading_body) {
        r.body.append(body_buffer.data(), body_buffer.size() - parser.get().body().size);
        parser.get().body().data = nullptr;
        parser.get().body().size = 0;
      }
      if (!reading_body) r.head_bytes += used;
      buffered.erase(0, used);
      if (ec == http::error::need_buffer) {  // the body buffer is full: hand over an empty one
        need_more = false;
        continue;
      }
      if (ec == http::error::need_more) {
        need_more = true;
        continue;
      }
      if (ec) {
        r.error = ec;
        break;
      }
      need_more = used == 0 || buffered.empty();
    }
    r.done = parser.is_done();
    r.header_done = parser.is_header_done();
    if (r.header_done) {
      const auto& m = parser.get();
      r.method = Str(m.method_string());
      r.target = Str(m.target());
      r.version = m.version();
      for (const auto& f : m.base()) r.fields.emplace_back(Str(f.name_string()), Str(f.value()));
      if (const auto len = parser.content_length()) r.content_length = static_cast<uint64_t>(*len);
      r.chunked = parser.chunked();
      r.keep_alive = m.keep_alive();
    }
    const bool next = r.done && r.keep_alive;
    requests.push_back(std::move(r));
    if (!next) break;
  }
  return requests;
}

// Beast 1.74 applies header_limit to the whole head only when the head arrives in pieces: given
// all of it in one buffer, it allows header_limit bytes after the request line, which may itself
// take header_limit. So a head the server accepts is at most twice kMaxHeaderBytes, and whether
// one of 16 to 32 KiB is accepted depends on how its bytes arrive.
constexpr size_t kMaxAcceptedHead = 2 * kMaxHeaderBytes;

// The two readings of one connection agree, up to a head whose acceptance depends on how its
// bytes arrive (see kMaxAcceptedHead).
void CheckSameRequests(const std::vector<ParsedRequest>& a, const std::vector<ParsedRequest>& b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const bool a_limit = a[i].error == http::error::header_limit;
    const bool b_limit = b[i].error == http::error::header_limit;
    if (a_limit != b_limit && (a[i].header_done || b[i].header_done)) {
      FUZZ_CHECK((a_limit ? b[i] : a[i]).head_bytes > kMaxHeaderBytes);
      return;
    }
    FUZZ_CHECK(a[i].SameAs(b[i]));
  }
  FUZZ_CHECK(a.size() == b.size());
}

void CheckFraming(const std::vector<ParsedRequest>& requests) {
  for (const ParsedRequest& r : requests) {
    FUZZ_CHECK(r.done == (r.header_done && !r.error));
    if (r.header_done) FUZZ_CHECK(r.head_bytes <= kMaxAcceptedHead);
    if (!r.header_done) FUZZ_CHECK(r.error && r.body.empty());
    if (r.done && r.content_length && !r.chunked) FUZZ_CHECK(r.body.size() == *r.content_length);
    for (const auto& [name, value] : r.fields) {
      FUZZ_CHECK(!name.empty());
      FUZZ_CHECK(value.find_first_of("\r\n") == std::string::npos);
    }
  }
}

// The value of a header as HttpExchange::Header gives it: case-insensitive name, repeated
// headers joined with ','.
std::optional<std::string> Header(const ParsedRequest& r, std::string_view name) {
  std::optional<std::string> out;
  const std::string lower = ::AsciiLower(name);
  for (const auto& [n, v] : r.fields) {
    if (::AsciiLower(n) != lower) continue;
    if (out) {
      out->push_back(',');
      out->append(v);
    } else {
      out = v;
    }
  }
  return out;
}

// ---- Target ----

void CheckTarget(std::string_view target, std::string_view host, const Result<S3Target>& t) {
  std::string_view path, raw_query;
  SplitTarget(target, &path, &raw_query);
  const size_t q = target.find('?');
  FUZZ_CHECK(path == target.substr(0, q));
  FUZZ_CHECK(raw_query == (q == std::string_view::npos ? std::string_view() : target.substr(q + 1)));

  if (path.empty() || path.front() != '/') {
    FUZZ_CHECK(!t.ok() && t.status().IsInvalidArgument());
    return;
  }
  const std::string_view rest = path.substr(1);
  const std::optional<std::string> vhost_bucket = VirtualHostBucket(host);
  std::optional<std::string> bucket;
  std::optional<std::string> key;
  if (vhost_bucket) {
    bucket = vhost_bucket;
    key = Decode(rest, false);
  } else {
    const size_t slash = rest.find('/');
    bucket = Decode(rest.substr(0, slash), false);
    key = slash == std::string_view::npos ? std::optional<std::string>("") : Decode(rest.substr(slash + 1), false);
  }
  const std::optional<Pairs> query = DecodeQuery(raw_query);
  FUZZ_CHECK(t.ok() == (bucket && key && query));
  if (!t.ok()) {
    FUZZ_CHECK(t.status().IsInvalidArgument());
    return;
  }
  FUZZ_CHECK(t->virtual_host == vhost_bucket.has_value());
  FUZZ_CHECK(t->bucket == *bucket);
  FUZZ_CHECK(t->key == *key);
  FUZZ_CHECK(t->query.all() == *query);
  for (const auto& pair : *query) {
    const auto first = std::find_if(query->begin(), query->end(), [&](const auto& p) { return p.first == pair.first; });
    FUZZ_CHECK(t->query.Has(pair.first) && t->query.Get(pair.first) == first->second);
  }

  // Decoding inverts UriEncode: the canonical spelling of the same names resolves to them.
  std::string spelled = "/";
  if (!t->virtual_host) {
    spelled += UriEncode(t->bucket, /*keep_slash=*/false);
    if (!t->key.empty()) spelled += "/";
  }
  spelled += UriEncode(t->key, /*keep_slash=*/true);
  const Result<S3Target> again = ResolveTarget(spelled, host, Domains());
  FUZZ_CHECK(again.ok() && again->bucket == t->bucket && again->key == t->key &&
             again->virtual_host == t->virtual_host && again->query.all().empty());
}

// ---- Operation ----

enum class Level { kService, kBucket, kObject };

struct OpRule {
  S3Op op;
  std::string_view method;
  Level level;
};

constexpr OpRule kOpRules[] = {
    {S3Op::kListBuckets, "GET", Level::kService},
    {S3Op::kCreateBucket, "PUT", Level::kBucket},
    {S3Op::kDeleteBucket, "DELETE", Level::kBucket},
    {S3Op::kHeadBucket, "HEAD", Level::kBucket},
    {S3Op::kGetBucketLocation, "GET", Level::kBucket},
    {S3Op::kGetBucketVersioning, "GET", Level::kBucket},
    {S3Op::kGetBucketAcl, "GET", Level::kBucket},
    {S3Op::kListObjects, "GET", Level::kBucket},
    {S3Op::kListObjectsV2, "GET", Level::kBucket},
    {S3Op::kListObjectVersions, "GET", Level::kBucket},
    {S3Op::kListMultipartUploads, "GET", Level::kBucket},
    {S3Op::kDeleteObjects, "POST", Level::kBucket},
    {S3Op::kPutObject, "PUT", Level::kObject},
    {S3Op::kCopyObject, "PUT", Level::kObject},
    {S3Op::kGetObject, "GET", Level::kObject},
    {S3Op::kHeadObject, "HEAD", Level::kObject},
    {S3Op::kDeleteObject, "DELETE", Level::kObject},
    {S3Op::kGetObjectAcl, "GET", Level::kObject},
    {S3Op::kCreateMultipartUpload, "POST", Level::kObject},
    {S3Op::kUploadPart, "PUT", Level::kObject},
    {S3Op::kUploadPartCopy, "PUT", Level::kObject},
    {S3Op::kCompleteMultipartUpload, "POST", Level::kObject},
    {S3Op::kAbortMultipartUpload, "DELETE", Level::kObject},
    {S3Op::kListParts, "GET", Level::kObject},
    {S3Op::kPutBucketAcl, "PUT", Level::kBucket},
    {S3Op::kPutObjectAcl, "PUT", Level::kObject},
    {S3Op::kGetBucketPolicy, "GET", Level::kBucket},
    {S3Op::kPutBucketPolicy, "PUT", Level::kBucket},
    {S3Op::kDeleteBucketPolicy, "DELETE", Level::kBucket},
    {S3Op::kGetBucketCors, "GET", Level::kBucket},
    {S3Op::kPutBucketCors, "PUT", Level::kBucket},
    {S3Op::kDeleteBucketCors, "DELETE", Level::kBucket},
    {S3Op::kPostObject, "POST", Level::kBucket},
    {S3Op::kPreflight, "OPTIONS", Level::kBucket},  // or kObject: a preflight may name a key
};

// A few of the sub-resources Cairn does not implement.
constexpr std::string_view kUnimplemented[] = {"lifecycle", "website", "encryption", "replication", "logging"};

void CheckOperation(std::string_view method, const S3Target& t, bool has_copy_source) {
  const S3Op op = ClassifyOperation(method, t, has_copy_source);
  FUZZ_CHECK(!S3OpName(op).empty());
  const S3Op flipped = ClassifyOperation(method, t, !has_copy_source);
  // x-amz-copy-source turns a PUT into its copy twin and changes nothing else.
  const auto twin = [](S3Op o) {
    switch (o) {
      case S3Op::kPutObject: return S3Op::kCopyObject;
      case S3Op::kCopyObject: return S3Op::kPutObject;
      case S3Op::kUploadPart: return S3Op::kUploadPartCopy;
      case S3Op::kUploadPartCopy: return S3Op::kUploadPart;
      default: return o;
    }
  };
  FUZZ_CHECK(flipped == twin(op));
  if (op == S3Op::kCopyObject || op == S3Op::kUploadPartCopy) FUZZ_CHECK(has_copy_source);
  if (op == S3Op::kPutObject || op == S3Op::kUploadPart) FUZZ_CHECK(!has_copy_source);

  for (std::string_view sub : kUnimplemented) {
    if (t.query.Has(sub)) FUZZ_CHECK(op == S3Op::kUnknown);
  }
  if (op == S3Op::kUnknown) return;
  const OpRule* rule = std::find_if(std::begin(kOpRules), std::end(kOpRules), [&](const OpRule& r) { return r.op == op; });
  FUZZ_CHECK(rule != std::end(kOpRules));
  FUZZ_CHECK(method == rule->method);
  const Level level = t.bucket.empty() ? Level::kService : t.key.empty() ? Level::kBucket : Level::kObject;
  FUZZ_CHECK(level == rule->level || (op == S3Op::kPreflight && level == Level::kObject));
  if (level == Level::kService) FUZZ_CHECK(t.key.empty());

  const QueryParams& q = t.query;
  switch (op) {
    case S3Op::kGetBucketLocation: FUZZ_CHECK(q.Has("location")); break;
    case S3Op::kGetBucketVersioning: FUZZ_CHECK(q.Has("versioning")); break;
    case S3Op::kGetBucketAcl:
    case S3Op::kGetObjectAcl:
    case S3Op::kPutBucketAcl:
    case S3Op::kPutObjectAcl: FUZZ_CHECK(q.Has("acl")); break;
    case S3Op::kGetBucketPolicy:
    case S3Op::kPutBucketPolicy:
    case S3Op::kDeleteBucketPolicy: FUZZ_CHECK(q.Has("policy")); break;
    case S3Op::kGetBucketCors:
    case S3Op::kPutBucketCors:
    case S3Op::kDeleteBucketCors: FUZZ_CHECK(q.Has("cors")); break;
    case S3Op::kPostObject: FUZZ_CHECK(q.all().empty()); break;
    case S3Op::kListObjectsV2: FUZZ_CHECK(q.Get("list-type") == "2"); break;
    case S3Op::kListObjectVersions: FUZZ_CHECK(q.Has("versions")); break;
    case S3Op::kListMultipartUploads:
    case S3Op::kCreateMultipartUpload: FUZZ_CHECK(q.Has("uploads")); break;
    case S3Op::kDeleteObjects: FUZZ_CHECK(q.Has("delete")); break;
    case S3Op::kUploadPart:
    case S3Op::kUploadPartCopy: FUZZ_CHECK(q.Has("partNumber") || q.Has("uploadId")); break;
    case S3Op::kCompleteMultipartUpload:
    case S3Op::kAbortMultipartUpload:
    case S3Op::kListParts: FUZZ_CHECK(q.Has("uploadId")); break;
    case S3Op::kCreateBucket:
    case S3Op::kPutObject:
    case S3Op::kCopyObject: FUZZ_CHECK(!q.Has("acl") && !q.Has("policy") && !q.Has("cors")); break;
    case S3Op::kDeleteObject: FUZZ_CHECK(!q.Has("uploadId")); break;
    case S3Op::kListObjects: FUZZ_CHECK(q.Get("list-type") != "2"); break;
    default: break;
  }
}

// ---- Ranges ----

void CheckRange(std::string_view header) {
  struct Outcome {
    uint64_t size;
    RangeResult result;
    ByteRange range;
  };
  const auto parse = [&](uint64_t size) {
    Outcome o{size, RangeResult::kNone, {}};
    o.result = ParseRange(header, size, &o.range);
    if (o.result == RangeResult::kSatisfiable) FUZZ_CHECK(o.range.first <= o.range.last && o.range.last < size);
    if (size == 0) FUZZ_CHECK(o.result != RangeResult::kSatisfiable);
    return o;
  };
  std::vector<uint64_t> sizes = {0, 1, 2, 10, 1000, uint64_t{1} << 32, UINT64_MAX - 1, UINT64_MAX};
  // The boundaries of the range the largest object gives.
  const Outcome largest = parse(UINT64_MAX);
  if (largest.result == RangeResult::kSatisfiable) {
    for (uint64_t v : {largest.range.first, largest.range.last}) {
      sizes.push_back(v);
      if (v < UINT64_MAX) sizes.push_back(v + 1);
    }
  }
  std::sort(sizes.begin(), sizes.end());
  std::vector<Outcome> outcomes;
  for (uint64_t size : sizes) outcomes.push_back(parse(size));
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& a = outcomes[i];
    FUZZ_CHECK((a.result == RangeResult::kNone) == (largest.result == RangeResult::kNone));
    if (i + 1 == outcomes.size() || a.result != RangeResult::kSatisfiable) continue;
    const Outcome& b = outcomes[i + 1];  // the next larger size
    FUZZ_CHECK(b.result == RangeResult::kSatisfiable);
    FUZZ_CHECK(b.range.first >= a.range.first && b.range.last >= a.range.last);
    FUZZ_CHECK(b.range.length() >= a.range.length());
  }

  if (const std::optional<ByteRange> copy = ParseCopySourceRange(header)) {
    FUZZ_CHECK(copy->first <= copy->last);
    if (copy->last < UINT64_MAX) {
      for (uint64_t size : {copy->last + 1, UINT64_MAX}) {
        ByteRange r;
        FUZZ_CHECK(ParseRange(header, size, &r) == RangeResult::kSatisfiable);
        FUZZ_CHECK(r.first == copy->first && r.last == copy->last);
      }
    }
  }
}

// ---- Conditions ----

void CheckEtagList(std::string_view list, std::string_view etag) {
  const bool matches = EtagListMatches(list, etag);
  if (etag.find(',') == std::string_view::npos) {
    FUZZ_CHECK(EtagListMatches(std::string(list) + ",\"" + std::string(etag) + "\"", etag));
    FUZZ_CHECK(EtagListMatches(std::string(list) + ", W/\"" + std::string(etag) + "\"", etag));
    FUZZ_CHECK(EtagListMatches("\"" + std::string(etag) + "x\"," + std::string(list), etag) == matches);
  }
}

// The first item of an etag list without W/ and quotes: an etag the list should match.
std::string FirstEtag(std::string_view list) {
  std::string_view item = TrimSpaces(list.substr(0, list.find(',')));
  if (item.substr(0, 2) == "W/") item.remove_prefix(2);
  if (item.size() >= 2 && item.front() == '"' && item.back() == '"') item = item.substr(1, item.size() - 2);
  return std::string(item);
}

bool DateParses(const std::optional<std::string>& value) {
  return value && ParseHttpDate(TrimSpaces(*value)).has_value();
}

void CheckDate(std::string_view text) {
  const std::optional<int64_t> t = ParseHttpDate(TrimSpaces(text));
  if (!t) return;
  // The same date and time; the parser does not check that the day name fits the date.
  FUZZ_CHECK(FormatHttpDate(*t).substr(5) == TrimSpaces(text).substr(5));
  // "2013-05-24T00:00:00.123Z" against "20130524T000000Z".
  const std::string iso = FormatIso8601(*t * 1000 + 123);
  const std::string amz = FormatAmzDate(*t);
  FUZZ_CHECK(iso.size() == 24 && iso.substr(19) == ".123Z");
  FUZZ_CHECK(iso.substr(0, 4) + iso.substr(5, 2) + iso.substr(8, 2) + "T" + iso.substr(11, 2) + iso.substr(14, 2) +
                 iso.substr(17, 2) + "Z" ==
             amz);

  // Each date condition alone flips exactly between its date and the next second.
  ConditionalHeaders unmodified;
  unmodified.if_unmodified_since = std::string(text);
  FUZZ_CHECK(EvaluateConditions(unmodified, kEtag, *t) == ConditionResult::kProceed);
  FUZZ_CHECK(EvaluateConditions(unmodified, kEtag, *t + 1) == ConditionResult::kPreconditionFailed);
  ConditionalHeaders modified;
  modified.if_modified_since = std::string(text);
  FUZZ_CHECK(EvaluateConditions(modified, kEtag, *t) == ConditionResult::kNotModified);
  FUZZ_CHECK(EvaluateConditions(modified, kEtag, *t + 1) == ConditionResult::kProceed);
}

void CheckConditions(const ConditionalHeaders& c, std::string_view etag, int64_t mtime) {
  const auto eval = [&](const ConditionalHeaders& h) { return EvaluateConditions(h, etag, mtime); };
  const ConditionResult result = eval(c);
  FUZZ_CHECK(eval(c) == result);

  // Steps 1-2 (If-Match, else If-Unmodified-Since) and steps 3-4 (If-None-Match, else
  // If-Modified-Since), each pair on its own.
  ConditionalHeaders first = c;
  first.if_none_match.reset();
  first.if_modified_since.reset();
  ConditionalHeaders second = c;
  second.if_match.reset();
  second.if_unmodified_since.reset();
  const ConditionResult r1 = eval(first);
  const ConditionResult r2 = eval(second);
  FUZZ_CHECK(r1 != ConditionResult::kNotModified && r2 != ConditionResult::kPreconditionFailed);
  FUZZ_CHECK(result == (r1 == ConditionResult::kPreconditionFailed ? r1 : r2));
  if (c.if_match) FUZZ_CHECK((r1 == ConditionResult::kProceed) == EtagListMatches(*c.if_match, etag));
  if (c.if_none_match) FUZZ_CHECK((r2 == ConditionResult::kNotModified) == EtagListMatches(*c.if_none_match, etag));

  // If-Match makes If-Unmodified-Since irrelevant; If-None-Match does so for If-Modified-Since;
  // an unparseable date is ignored.
  if (c.if_match || !DateParses(c.if_unmodified_since)) {
    ConditionalHeaders d = c;
    d.if_unmodified_since.reset();
    FUZZ_CHECK(eval(d) == result);
  }
  if (c.if_none_match || !DateParses(c.if_modified_since)) {
    ConditionalHeaders d = c;
    d.if_modified_since.reset();
    FUZZ_CHECK(eval(d) == result);
  }
}

void CheckConditionalHeaders(const ParsedRequest& r, std::string_view prefix) {
  ConditionalHeaders c;
  c.if_match = Header(r, std::string(prefix) + "if-match");
  c.if_none_match = Header(r, std::string(prefix) + "if-none-match");
  c.if_modified_since = Header(r, std::string(prefix) + "if-modified-since");
  c.if_unmodified_since = Header(r, std::string(prefix) + "if-unmodified-since");
  if (!c.if_match && !c.if_none_match && !c.if_modified_since && !c.if_unmodified_since) {
    FUZZ_CHECK(EvaluateConditions(c, kEtag, kNow) == ConditionResult::kProceed);
    return;
  }
  std::vector<std::string> etags = {std::string(kEtag)};
  for (const auto* list : {&c.if_match, &c.if_none_match}) {
    if (!*list) continue;
    etags.push_back(FirstEtag(**list));
    for (const std::string& etag : etags) CheckEtagList(**list, etag);
  }
  std::vector<int64_t> mtimes = {0, kNow};
  for (const auto* date : {&c.if_modified_since, &c.if_unmodified_since}) {
    if (!*date) continue;
    CheckDate(**date);
    if (const std::optional<int64_t> t = ParseHttpDate(TrimSpaces(**date))) {
      mtimes.insert(mtimes.end(), {*t - 1, *t, *t + 1});
    }
  }
  for (const std::string& etag : etags) {
    for (int64_t mtime : mtimes) CheckConditions(c, etag, mtime);
  }
}

// ---- Authentication ----

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

void CheckAuth(const ParsedRequest& r) {
  // As S3Service::Dispatch builds it.
  SigV4Request request;
  request.method = r.method;
  SplitTarget(r.target, &request.path, &request.raw_query);
  for (const auto& [name, value] : r.fields) request.headers.emplace_back(::AsciiLower(name), value);

  const Result<AuthResult> auth = VerifyRequest(request, LookupWith(std::string(kSecret)), kNow, kRegion);
  const Result<AuthResult> again = VerifyRequest(request, LookupWith(std::string(kSecret)), kNow, kRegion);
  FUZZ_CHECK(auth.ok() == again.ok() && auth.status().code() == again.status().code());
  if (!auth.ok()) {
    FUZZ_CHECK(IsDocumentedFailure(auth.status()));
    return;
  }
  const bool has_authorization = Header(r, "authorization").has_value();
  bool has_presign = false;
  if (const std::optional<Pairs> query = DecodeQuery(request.raw_query)) {
    for (const auto& [name, value] : *query) {
      has_presign |= name == "X-Amz-Algorithm" || name == "X-Amz-Credential" || name == "X-Amz-Signature";
    }
  }
  FUZZ_CHECK(auth->anonymous == (auth->method == AuthMethod::kAnonymous));
  FUZZ_CHECK((auth->method == AuthMethod::kHeader) == has_authorization);
  FUZZ_CHECK((auth->method == AuthMethod::kPresigned) == has_presign);
  if (auth->anonymous) return;
  FUZZ_CHECK(auth->access_key == kAccessKey);

  const Result<AuthResult> wrong = VerifyRequest(request, LookupWith(std::string(kSecret) + "x"), kNow, kRegion);
  FUZZ_CHECK(!wrong.ok() && wrong.status().IsSignatureDoesNotMatch());
  const Result<AuthResult> unknown = VerifyRequest(request, LookupWith(std::nullopt), kNow, kRegion);
  FUZZ_CHECK(!unknown.ok() && unknown.status().IsInvalidAccessKeyId());

  if (!r.done) return;
  const crypto::Sha256Digest digest = crypto::Sha256(std::string_view(r.body));
  const bool payload_ok = CheckPayloadSha256(*auth, digest).ok();
  if (auth->payload_mode == PayloadMode::kSignedSha256) {
    FUZZ_CHECK(payload_ok == (crypto::HexEncode(digest) == ::AsciiLower(auth->content_sha256_header)));
  } else {
    FUZZ_CHECK(payload_ok);
  }
  if (auth->streaming) {
    // What PutObject does with an aws-chunked body; sigv4's own target checks the decoder.
    Result<ChunkSignatureVerifier> verifier = ChunkSignatureVerifier::FromAuthResult(*auth);
    FUZZ_CHECK(verifier.ok());
    AwsChunkedDecoder::Options options;
    options.expected_decoded_length = auth->decoded_content_length;
    AwsChunkedDecoder decoder(std::move(*verifier), options);
    uint64_t decoded = 0;
    const Status fed = decoder.Feed(crypto::AsBytes(r.body), [&](std::span<const std::byte> data) {
      decoded += data.size();
      return Status::OK();
    });
    const Status finished = decoder.Finish();
    if (finished.ok()) FUZZ_CHECK(fed.ok() && decoded == *auth->decoded_content_length);
  }
}

// ---- One request ----

void CheckRequest(const ParsedRequest& r) {
  const std::string host = Header(r, "host").value_or("");
  const Result<S3Target> target = ResolveTarget(r.target, host, Domains());
  CheckTarget(r.target, host, target);
  // The server answers InvalidURI here, before authentication.
  if (!target.ok()) return;
  CheckOperation(r.method, *target, Header(r, "x-amz-copy-source").has_value());
  CheckAuth(r);
  if (const std::optional<std::string> range = Header(r, "range")) CheckRange(*range);
  if (const std::optional<std::string> range = Header(r, "x-amz-copy-source-range")) CheckRange(*range);
  CheckConditionalHeaders(r, "");
  CheckConditionalHeaders(r, "x-amz-copy-source-");
}

}  // namespace
}  // namespace cairn::gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using cairn::gateway::ParsedRequest;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // One read of everything, then reads of a few bytes at a time into a tiny body buffer.
  const size_t whole[] = {0};
  const size_t pieces[] = {1, 7, 2, 64, 3, 13};
  const std::vector<ParsedRequest> requests = cairn::gateway::ReadConnection(in, whole, /*body_buffer_size=*/4096);
  const std::vector<ParsedRequest> again = cairn::gateway::ReadConnection(in, pieces, /*body_buffer_size=*/5);
  cairn::gateway::CheckSameRequests(requests, again);
  cairn::gateway::CheckFraming(requests);
  cairn::gateway::CheckFraming(again);
  for (const ParsedRequest& r : requests) {
    if (r.header_done) cairn::gateway::CheckRequest(r);
  }
  return 0;
}
