// Browser-based uploads (S3 POST Object): the multipart/form-data body of an HTML form, and the
// signed POST policy document that says what the form may upload.
//
// The form: fields as parts of a multipart/form-data body (RFC 7578), with the object's bytes in
// the part named "file", which must come after every other field S3 looks at; parts after the
// file are ignored (S3 ignores them too). The parser streams the file's bytes to the caller and
// holds only the other fields, each bounded.
//
// The policy: base64 of a JSON document {"expiration": ISO 8601, "conditions": [...]} where each
// condition is one of
//   {"field": "value"}                          exact match (same as ["eq", "$field", "value"])
//   ["eq", "$field", "value"]                   exact match
//   ["starts-with", "$field", "prefix"]         prefix match ("" matches anything); for
//                                               Content-Type, each comma-separated value must
//                                               start with the prefix
//   ["content-length-range", min, max]          the file's size in bytes, inclusive
// Field names in conditions are case-insensitive. The form is signed with SigV4: x-amz-algorithm
// AWS4-HMAC-SHA256, x-amz-credential <key>/<date>/<region>/s3/aws4_request, x-amz-date, and
// x-amz-signature = hex(HMAC-SHA256(signing key, the base64 policy text)).
//
// Thread-safety: MultipartFormParser is used by one thread; the rest are pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/status.h"
#include "gateway/sigv4.h"

namespace cairn::gateway {

// ---- multipart/form-data ------------------------------------------------------------------------

// The boundary parameter of a "multipart/form-data; boundary=..." Content-Type (quoted or not).
// Error: InvalidArgument when the type is not multipart/form-data or the boundary is missing,
// empty or longer than 70 characters (RFC 2046), repeated, or holds a character outside printable
// ASCII (space allowed, but not last).
Result<std::string> FormBoundary(std::string_view content_type);

struct FormLimits {
  size_t max_field_bytes = 64 * 1024;   // one field's value (a policy can be 20 KB of base64)
  size_t max_total_field_bytes = 256 * 1024;  // names and values of all fields together
  size_t max_fields = 200;
  size_t max_part_header_bytes = 8 * 1024;  // the header lines of one part
};

class MultipartFormParser {
 public:
  struct Callbacks {
    // A whole non-file field before the file part. `name` as sent (the caller folds case).
    std::function<Status(std::string name, std::string value)> on_field;
    // The part named "file" (name compared case-insensitively) begins. `filename` from its
    // Content-Disposition (may be empty), `content_type` its Content-Type header (may be empty).
    std::function<Status(std::string_view filename, std::string_view content_type)> on_file_begin;
    // The file's bytes, in order, in pieces of any size.
    std::function<Status(std::span<const std::byte> data)> on_file_data;
    // The file part ended (its closing boundary was seen).
    std::function<Status()> on_file_end;
  };

  // `boundary` as FormBoundary returns it; any other fails every call with InvalidArgument.
  MultipartFormParser(std::string boundary, FormLimits limits, Callbacks callbacks);

  // Consumes the next bytes of the body. A callback's error stops the parser and is returned
  // (and by every later call). Errors of its own: InvalidArgument for a malformed body (no
  // leading boundary, a part without a Content-Disposition form-data name, header lines too
  // long, a limit exceeded).
  // The outcome (callbacks, their arguments, the final Status) does not depend on how the body
  // is split into Feed calls; only the sizes of the on_file_data pieces do. Up to the file, each
  // "\r\n--boundary" must be followed by "--" or by spaces/tabs and CRLF (RFC 2046 forbids the
  // delimiter inside a part). Part headers: CRLF line ends, obsolete folding accepted, a repeated
  // Content-Disposition or Content-Type or a repeated name/filename parameter refused; in a
  // quoted parameter a backslash escapes only '"' and '\' (browsers send Windows paths raw);
  // "filename*" (RFC 5987) is ignored.
  Status Feed(std::span<const std::byte> data);
  // The body ended. InvalidArgument unless the closing boundary ("--boundary--") was seen and a
  // file part was delivered completely. Feed after Finish: InvalidArgument.
  Status Finish();

  bool file_seen() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// ---- POST policy ----------------------------------------------------------------------------------

struct PostPolicyCondition {
  enum class Kind { kEquals, kStartsWith, kContentLengthRange };
  Kind kind = Kind::kEquals;
  std::string field;  // lowercase, without '$'; empty for kContentLengthRange
  std::string value;
  uint64_t min = 0, max = 0;  // kContentLengthRange
};

struct PostPolicy {
  int64_t expiration_unix_ms = 0;
  std::vector<PostPolicyCondition> conditions;
};

// Decodes and parses a policy (the "policy" form field, base64). Error: InvalidPolicyDocument
// with a message for bad base64, bad JSON, a missing or malformed expiration, conditions that
// are not an array, an unknown condition operator, a malformed condition.
// Details: whitespace inside the base64 is ignored; operators compare case-insensitively; an
// object condition has exactly one string-valued property (S3's rule); content-length-range
// needs min <= max; the expiration is UTC ("Z") with 0 to 9 fraction digits.
Result<PostPolicy> ParsePostPolicy(std::string_view policy_base64);

// Checks the form against the policy at time `now_unix_ms`:
//   - expired policy (now later than the expiration instant): AccessDenied "Invalid according to
//     Policy: Policy expired."
//   - every condition must hold for `fields` (names lowercase; the caller puts "bucket" in, and
//     "key" after ${filename} substitution): AccessDenied "Invalid according to Policy: Policy
//     Condition failed: [...]" naming the condition, e.g. ["eq", "$key", "x"] (object conditions
//     are named as "eq" too); a field the form lacks reads as "" (so ["starts-with", "$x", ""]
//     admits its absence)
//   - every form field except x-amz-signature, file, policy and names starting with "x-ignore-"
//     must be named by a condition (bucket too): AccessDenied "Invalid according to Policy:
//     Extra input fields: <name>"
// The content-length-range is not checked here (the size is known only after the file); see
// CheckContentLength.
Status CheckPostPolicy(const PostPolicy& policy, const std::map<std::string, std::string>& fields,
                       int64_t now_unix_ms);

// The policy's content-length-range, if it has one (the last one given wins).
std::optional<std::pair<uint64_t, uint64_t>> ContentLengthRange(const PostPolicy& policy);

// What a signed form proves.
struct PostSignature {
  std::string access_key;
};

// Verifies the SigV4 signature of a form (`fields` names lowercase): x-amz-algorithm must be
// AWS4-HMAC-SHA256, x-amz-credential's scope must be <date>/<region>/s3/aws4_request with this
// region and a date equal to x-amz-date's, the secret comes from `lookup`. Errors:
// InvalidArgument when a signing field is missing or malformed (policy without signature, ...,
// a signature that is not 64 hex digits); InvalidAccessKeyId; SignatureDoesNotMatch;
// AuthorizationQueryMalformed for a wrong region, a service other than s3, or a scope date that
// differs from x-amz-date's. The time itself is not checked: the policy's expiration bounds it.
Result<PostSignature> VerifyPostSignature(const std::map<std::string, std::string>& fields,
                                          const SecretLookup& lookup, std::string_view region);

}  // namespace cairn::gateway
