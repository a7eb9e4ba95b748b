// The S3 error table's lookups, the Status-to-S3 mapping and the error document; see s3_errors.h.
// Thread-safety: constant tables only.
#include "gateway/s3_errors.h"

#include <utility>

#include "gateway/xml.h"

namespace cairn::gateway {
namespace {

struct Row {
  S3Code code;
  std::string_view name;
  int http_status;
  std::string_view message;
};

constexpr Row kRows[] = {
#define CAIRN_S3_TABLE_ROW(code, status, message) {S3Code::k##code, #code, status, message},
    CAIRN_S3_ERRORS(CAIRN_S3_TABLE_ROW)
#undef CAIRN_S3_TABLE_ROW
};

// The enum is declared from the same macro in the same order, so a code's value is its row.
const Row& RowOf(S3Code code) { return kRows[static_cast<size_t>(code)]; }

// Cairn codes whose name differs from the S3 code they stand for. Matched by name so that this
// file compiles whichever groups error_codes.h has.
struct Alias {
  std::string_view status_name;
  S3Code code;
  std::string_view message;  // fixed message, or empty for the usual rule
};
constexpr Alias kAliases[] = {
    {"RequestExpired", S3Code::kAccessDenied, kRequestHasExpired},
    {"BucketNotFound", S3Code::kNoSuchBucket, {}},
    {"UploadNotFound", S3Code::kNoSuchUpload, {}},
    {"KeyTooLong", S3Code::kKeyTooLongError, {}},
    {"ContentSha256Mismatch", S3Code::kXAmzContentSHA256Mismatch, {}},
    {"AuthorizationQueryMalformed", S3Code::kAuthorizationQueryParametersError, {}},
    {"InvalidAuthRequest", S3Code::kInvalidRequest, {}},  // unsupported algorithm or payload mode
    {"InvalidChunkSize", S3Code::kInvalidChunkSizeError, {}},
    {"PayloadHashMismatch", S3Code::kXAmzContentSHA256Mismatch, {}},
};

S3Error WithStatusMessage(S3Code code, const Status& status) {
  // 5xx: never pass internal detail to a client (see the header).
  if (S3HttpStatus(code) >= 500) return Make(code);
  return Make(code, status.message());
}

}  // namespace

std::string_view S3CodeName(S3Code code) { return RowOf(code).name; }
int S3HttpStatus(S3Code code) { return RowOf(code).http_status; }
std::string_view S3DefaultMessage(S3Code code) { return RowOf(code).message; }

bool S3CodeFromName(std::string_view name, S3Code* code) {
  for (const Row& row : kRows) {
    if (row.name == name) {
      *code = row.code;
      return true;
    }
  }
  return false;
}

S3Error Make(S3Code code, std::string message) {
  S3Error e;
  e.code = code;
  e.http_status = S3HttpStatus(code);
  e.message = message.empty() ? std::string(S3DefaultMessage(code)) : std::move(message);
  return e;
}

S3Error FromStatus(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return Make(S3Code::kInternalError);
    case StatusCode::kInvalidArgument:
      return WithStatusMessage(S3Code::kInvalidArgument, status);
    case StatusCode::kNotFound:  // an object; the caller says NoSuchBucket when it was a bucket
      return WithStatusMessage(S3Code::kNoSuchKey, status);
    case StatusCode::kAlreadyExists:  // only buckets collide; the caller knows whether it owns it
      return WithStatusMessage(S3Code::kBucketAlreadyExists, status);
    case StatusCode::kNotSupported:
      return WithStatusMessage(S3Code::kNotImplemented, status);
    case StatusCode::kBusy:
      return Make(S3Code::kSlowDown);
    // The server cannot do it now but may later (shutting down, a slow replica, a full or
    // write-fenced disk awaiting compaction or an operator): 503 tells clients to back off and
    // retry.
    case StatusCode::kCancelled:
    case StatusCode::kTimeout:
    case StatusCode::kNoSpace:
    case StatusCode::kReadOnly:
      return Make(S3Code::kServiceUnavailable);
    case StatusCode::kChecksumMismatch:
      return WithStatusMessage(S3Code::kBadDigest, status);
    case StatusCode::kMalformedXml:
      return WithStatusMessage(S3Code::kMalformedXML, status);
    case StatusCode::kInternal:
    case StatusCode::kIOError:
    case StatusCode::kCorruption:
    case StatusCode::kConfigError:
      return Make(S3Code::kInternalError);
    default:
      break;
  }
  const std::string_view name = StatusCodeName(status.code());
  S3Code code;
  if (S3CodeFromName(name, &code)) return WithStatusMessage(code, status);
  for (const Alias& alias : kAliases) {
    if (alias.status_name != name) continue;
    if (!alias.message.empty()) return Make(alias.code, std::string(alias.message));
    return WithStatusMessage(alias.code, status);
  }
  return Make(S3Code::kInternalError);
}

bool HasBody(const S3Error& error) { return error.http_status != 304 && error.http_status >= 300; }

std::string ErrorXml(const S3Error& error, std::string_view resource, std::string_view request_id,
                     std::string_view host_id) {
  if (!HasBody(error)) return {};
  XmlWriter w;
  w.Declaration();
  w.Open("Error");
  w.Element("Code", S3CodeName(error.code));
  w.Element("Message", error.message);
  for (const auto& [name, value] : error.extra) w.Element(name, value);
  if (!resource.empty()) w.Element("Resource", resource);
  w.Element("RequestId", request_id);
  if (!host_id.empty()) w.Element("HostId", host_id);
  w.Close();
  return w.Take();
}

}  // namespace cairn::gateway
