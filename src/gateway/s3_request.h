// S3 request interpretation: what a parsed HTTP request asks for, before anything is read from
// storage. Pure functions over untrusted text, shared by the server and the HTTP fuzz target.
//
//  - ResolveTarget splits a request into bucket, key and query, for both addressing styles:
//    path style ("/bucket/key") and virtual-host style ("bucket.<domain>" in Host, "/key" in the
//    path). A Host that is an IP address or a name outside the configured domains means path
//    style. The key is the percent-decoded rest of the path, byte for byte: "a//b" and "../x"
//    are keys like any other, never file system paths (no layer below maps keys to files).
//  - ClassifyOperation names the S3 operation from method, target and query sub-resources.
//  - ParseRange reads a Range header the way S3 does: one "bytes=" range of three shapes
//    (first-last, first-, -suffix); anything else is ignored and the whole object is sent.
//  - EvaluateConditions applies If-Match, If-None-Match, If-Modified-Since and
//    If-Unmodified-Since in the order RFC 7232 section 6 gives (which is what S3 documents).
//  - Formatting of the two date forms S3 uses: RFC 7231 IMF-fixdate in headers, ISO 8601 with
//    milliseconds in XML.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace cairn::gateway {

// Decoded query parameters. A name may repeat in a URL; S3 gives the first occurrence meaning,
// and so does Get. A name without '=' has an empty value ("?uploads").
class QueryParams {
 public:
  // Parses a raw query string (without '?'). '+' means a space. Error: InvalidArgument on a
  // malformed percent escape.
  static Result<QueryParams> Parse(std::string_view raw_query);

  bool Has(std::string_view name) const;
  // The first value of `name`, or nullopt.
  std::optional<std::string> Get(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& all() const { return params_; }

 private:
  std::vector<std::pair<std::string, std::string>> params_;
};

struct S3Target {
  std::string bucket;  // empty for the service (ListBuckets)
  std::string key;     // empty when the request names a bucket or the service
  bool virtual_host = false;
  QueryParams query;
};

// `target` is the HTTP request-target ("/bucket/key?x=y"); `host` the Host header. `domains`
// are the base domains of virtual-host addressing ("localhost", "s3.example.com"): a Host of
// "<bucket>.<domain>" (port ignored, case-insensitive) names the bucket.
// Error: InvalidArgument when the target is not origin-form ("/..."), or on bad percent escapes.
Result<S3Target> ResolveTarget(std::string_view target, std::string_view host, const std::vector<std::string>& domains);

// Splits a request-target at the first '?'.
void SplitTarget(std::string_view target, std::string_view* path, std::string_view* raw_query);

enum class S3Op {
  kUnknown,  // a method or sub-resource Cairn does not implement
  kListBuckets,
  kCreateBucket,
  kDeleteBucket,
  kHeadBucket,
  kGetBucketLocation,
  kGetBucketVersioning,
  kGetBucketAcl,
  kListObjects,
  kListObjectsV2,
  kListObjectVersions,
  kListMultipartUploads,
  kDeleteObjects,
  kPutObject,
  kCopyObject,
  kGetObject,
  kHeadObject,
  kDeleteObject,
  kGetObjectAcl,
  kGetObjectTagging,
  kCreateMultipartUpload,
  kUploadPart,
  kUploadPartCopy,
  kCompleteMultipartUpload,
  kAbortMultipartUpload,
  kListParts,
  kPutBucketAcl,
  kPutObjectAcl,
  kGetBucketPolicy,
  kPutBucketPolicy,
  kDeleteBucketPolicy,
  kGetBucketCors,
  kPutBucketCors,
  kDeleteBucketCors,
  kPostObject,  // a browser form upload (POST to the bucket, multipart/form-data)
  kPreflight,   // a CORS preflight (OPTIONS)
  kAdmin,       // Cairn's admin API (/_cairn/admin/...): never classified, set by the service
};

// The operation's name as used in metrics labels and logs ("PutObject", ...).
std::string_view S3OpName(S3Op op);

// `has_copy_source`: the request carries x-amz-copy-source.
S3Op ClassifyOperation(std::string_view method, const S3Target& target, bool has_copy_source);

// A byte range resolved against an object's size: bytes [first, last] inclusive.
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;
  uint64_t length() const { return last - first + 1; }
};

enum class RangeResult {
  kNone,           // no Range, or one S3 ignores: send the whole object with 200
  kSatisfiable,    // send *range with 206
  kUnsatisfiable,  // 416 InvalidRange
};

// Interprets a Range header against an object of `size` bytes.
RangeResult ParseRange(std::string_view header, uint64_t size, ByteRange* range);

// Parses "bytes=first-last" as x-amz-copy-source-range requires (both ends given).
std::optional<ByteRange> ParseCopySourceRange(std::string_view header);

struct ConditionalHeaders {
  std::optional<std::string> if_match;
  std::optional<std::string> if_none_match;
  std::optional<std::string> if_modified_since;
  std::optional<std::string> if_unmodified_since;
};

enum class ConditionResult {
  kProceed,
  kPreconditionFailed,  // 412
  kNotModified,         // 304 (GET and HEAD only; for copy sources it is 412 too)
};

// `etag` without quotes, `last_modified` in unix seconds. Unparseable dates are ignored, as
// RFC 7232 asks.
ConditionResult EvaluateConditions(const ConditionalHeaders& conditions, std::string_view etag, int64_t last_modified);

// True when an If-Match / If-None-Match list ("\"a\", \"b\"", "*", W/ forms) contains etag.
bool EtagListMatches(std::string_view list, std::string_view etag);

// The ETag S3 gives an object completed from multipart parts: the MD5 of the concatenated binary
// MD5s of the parts (their ETags, 32 hex digits, quotes ignored), then "-<number of parts>".
// nullopt when an ETag is not an MD5 in hex.
std::optional<std::string> MultipartEtag(const std::vector<std::string>& part_etags);

// "Fri, 24 May 2013 00:00:00 GMT". English names whatever the locale; the year has at least four
// digits ("0426").
std::string FormatHttpDate(int64_t unix_seconds);
// "2013-05-24T00:00:00.000Z", the same way; milliseconds before the epoch round down.
std::string FormatIso8601(int64_t unix_millis);

// An instant read from ISO 8601 text: unix seconds and a non-negative nanosecond part.
struct IsoInstant {
  int64_t seconds = 0;
  int32_t nanos = 0;
  auto operator<=>(const IsoInstant&) const = default;
};
// "2026-11-22T12:00:00Z", or with a fraction of 1 to 9 digits before the 'Z'; UTC only. The
// forms S3 clients write (POST policy expirations, policy dates) and FormatIso8601 produces.
// nullopt for anything else, including impossible dates (February 30).
std::optional<IsoInstant> ParseIso8601(std::string_view text);

}  // namespace cairn::gateway
