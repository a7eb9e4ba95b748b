// The S3 error table and the one place where Cairn errors become S3 errors.
//
// CAIRN_S3_ERRORS lists every S3 error code the gateway sends: its Code string, HTTP status and
// the Message used when the caller gives none. Codes and statuses follow the Amazon S3 API
// reference ("Error responses", list of error codes); the messages are Cairn's own wording.
// Two S3 conventions worth knowing:
//  - an expired presigned URL is AccessDenied (403) with the message "Request has expired"
//    (kRequestHasExpired); ExpiredToken (400) is for an expired session token, a different case;
//  - InvalidChunkSizeError (aws-chunked uploads) is not in the reference list; 400 is what
//    S3-compatible servers send, taken here until measured against S3;
//  - NotModified (304) is a status, not an error document: it has no body (HasBody is false and
//    ErrorXml returns an empty string). HEAD responses never carry a body either; that is the
//    HTTP layer's rule.
//
// FromStatus maps a Cairn Status (common/error_codes.h) to an S3 error. Codes of the generic, io,
// integrity and config groups have an explicit mapping below. Any other code whose name is also
// an S3 code name (NoSuchBucket, BucketNotEmpty, AccessDenied, SignatureDoesNotMatch, ...)
// maps to that S3 code by name, so a group added to the table later needs no change here as long
// as it names its codes after S3's; a few differently named codes have an alias (RequestExpired
// becomes AccessDenied "Request has expired"). Anything else is InternalError. Where the S3 code
// depends on context the Status does not carry (NotFound is NoSuchKey for an object, NoSuchBucket
// for a bucket; a name validator's InvalidArgument is InvalidBucketName or KeyTooLongError), the
// caller picks it with Make.
//
// Messages: a 4xx error carries the Status message when there is one (it tells the client what
// was wrong with its request); a 5xx error always carries the table's default message, so that
// no internal detail (paths, offsets) reaches a client. The caller logs the Status with the
// request id.
//
// Thread-safety: the table is constant; all functions are pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cairn::gateway {

// X(Code, HTTP status, default message)
// clang-format off
#define CAIRN_S3_ERRORS(X)                                                                                     \
  X(AccessDenied,                  403, "Access Denied")                                                       \
  X(AccessForbidden,               403, "CORSResponse: This CORS request is not allowed.")                     \
  X(AccountProblem,                403, "The account has a problem that prevents this operation.")             \
  X(AuthorizationHeaderMalformed,  400, "The Authorization header is not well formed.")                        \
  X(AuthorizationQueryParametersError, 400, "The presigned URL query parameters are missing, malformed or have the wrong scope.") \
  X(BadDigest,                     400, "The Content-MD5 or checksum you sent does not match the body received.") \
  X(BucketAlreadyExists,           409, "The bucket name is already in use. Choose another name.")             \
  X(BucketAlreadyOwnedByYou,       409, "You already own a bucket with this name.")                            \
  X(BucketNotEmpty,                409, "The bucket you tried to delete still holds objects.")                 \
  X(EntityTooLarge,                400, "The upload is larger than the maximum allowed size.")                 \
  X(EntityTooSmall,                400, "The upload is smaller than the minimum allowed size.")                \
  X(ExpiredToken,                  400, "The security token included in the request has expired.")            \
  X(IncompleteBody,                400, "The body is shorter than the Content-Length header announced.")        \
  X(InternalError,                 500, "The server met an internal error. Please retry the request.")         \
  X(InvalidAccessKeyId,            403, "The access key id in the request is not known to this server.")       \
  X(InvalidArgument,               400, "Invalid argument.")                                                   \
  X(InvalidBucketName,             400, "The bucket name is not valid.")                                       \
  X(InvalidChunkSizeError,         400, "Only the last chunk of an aws-chunked body may be smaller than 8192 bytes.") \
  X(InvalidDigest,                 400, "The Content-MD5 or checksum header is not valid.")                    \
  X(InvalidLocationConstraint,     400, "The location constraint is not the region this server serves.")      \
  X(InvalidPart,                   400, "One or more listed parts were not found, or their ETag does not match.") \
  X(InvalidPartNumber,             416, "The requested part number is not satisfiable.")                       \
  X(InvalidPartOrder,              400, "The list of parts must be in ascending part number order.")           \
  X(InvalidPolicyDocument,         400, "The content of the form does not meet the conditions specified in the policy document.") \
  X(InvalidRange,                  416, "The requested range cannot be satisfied.")                            \
  X(InvalidRequest,                400, "The request is not valid.")                                           \
  X(InvalidStorageClass,           400, "The storage class you specified is not valid.")                       \
  X(InvalidURI,                    400, "The request URI could not be parsed.")                                \
  X(KeyTooLongError,               400, "The object key is longer than 1024 bytes.")                           \
  X(MalformedACLError,             400, "The XML you provided was not well-formed or did not validate against our published schema.") \
  X(MalformedPolicy,               400, "The policy is not valid.")                                            \
  X(MetadataTooLarge,              400, "The user metadata headers exceed the maximum allowed size (2 KB).")   \
  X(MalformedPOSTRequest,          400, "The body of your POST request is not well-formed multipart/form-data.") \
  X(MalformedXML,                  400, "The XML in the request body is not well formed or does not match the expected schema.") \
  X(MethodNotAllowed,              405, "The method is not allowed on this resource.")                         \
  X(MissingContentLength,          411, "The request needs a Content-Length header.")                          \
  X(MissingRequestBodyError,       400, "The request body is empty.")                                          \
  X(MissingSecurityHeader,         400, "Your request was missing a required header.")                       \
  X(NoSuchBucket,                  404, "The bucket does not exist.")                                          \
  X(NoSuchBucketPolicy,            404, "The bucket policy does not exist.")                                  \
  X(NoSuchCORSConfiguration,       404, "The CORS configuration does not exist.")                             \
  X(NoSuchKey,                     404, "The key does not exist.")                                             \
  X(NoSuchUpload,                  404, "The multipart upload does not exist; it may have been completed or aborted.") \
  X(NotImplemented,                501, "This functionality is not implemented.")                              \
  X(NotModified,                   304, "Not Modified")                                                        \
  X(OperationAborted,              409, "A conflicting conditional operation is currently in progress against this resource.") \
  X(PreconditionFailed,            412, "A precondition given in the request does not hold.")                  \
  X(RequestHeaderSectionTooLarge,  400, "The request headers are larger than the server accepts.")             \
  X(RequestTimeTooSkewed,          403, "The request time differs from the server time by too much.")          \
  X(RequestTimeout,                400, "The connection was idle too long before the request was complete.")   \
  X(ServiceUnavailable,            503, "The service is unavailable. Please retry the request.")               \
  X(SignatureDoesNotMatch,         403, "The signature computed from the request does not match the one sent. Check the secret key and the signing method.") \
  X(SlowDown,                      503, "Please reduce the request rate.")                                     \
  X(UnexpectedContent,             400, "This request does not support content.")                              \
  X(UnresolvableGrantByEmailAddress, 400, "The email address you provided does not match any account on record.") \
  X(XAmzContentSHA256Mismatch,     400, "The x-amz-content-sha256 header does not match the SHA-256 of the body.")
// clang-format on

enum class S3Code : uint16_t {
#define CAIRN_S3_ENUM_ROW(code, status, message) k##code,
  CAIRN_S3_ERRORS(CAIRN_S3_ENUM_ROW)
#undef CAIRN_S3_ENUM_ROW
};

// The message S3 sends with AccessDenied for a presigned URL past its expiry.
inline constexpr std::string_view kRequestHasExpired = "Request has expired";

struct S3Error {
  S3Code code = S3Code::kInternalError;
  int http_status = 500;
  std::string message;
  // Further elements some errors carry, written after Message in this order, for example
  // {"Expires", ...}, {"ServerTime", ...} for an expired request or {"MaxAllowedSkewMilliseconds",
  // ...} for RequestTimeTooSkewed. Names are S3 schema constants; values are escaped.
  std::vector<std::pair<std::string, std::string>> extra;
};

// "NoSuchKey" and friends: the Code element's text.
std::string_view S3CodeName(S3Code code);
int S3HttpStatus(S3Code code);
std::string_view S3DefaultMessage(S3Code code);
// Looks a code up by its exact name; false when S3 has no such code in the table.
bool S3CodeFromName(std::string_view name, S3Code* code);

// An error with `code`'s status and `message`, or the default message when `message` is empty.
S3Error Make(S3Code code, std::string message = {});

// The S3 error for a failed Status (see the file comment). REQUIRES: !status.ok(); an OK status
// gives InternalError.
S3Error FromStatus(const Status& status);

// False for statuses that carry no body (304).
bool HasBody(const S3Error& error);

// The error document:
//   <?xml version="1.0" encoding="UTF-8"?>
//   <Error><Code>…</Code><Message>…</Message>[extra…]<Resource>…</Resource><RequestId>…</RequestId>
//   [<HostId>…</HostId>]</Error>
// Resource is left out when empty, HostId when empty. Empty when !HasBody(error).
std::string ErrorXml(const S3Error& error, std::string_view resource, std::string_view request_id,
                     std::string_view host_id = {});

}  // namespace cairn::gateway
