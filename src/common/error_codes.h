// The one table of Cairn's error codes, grouped by subsystem.
//
// Each row is X(Name, value, "description"). A code exists only where a caller acts differently
// on it; everything else is kInternal or kIOError with a message. Values are stable: they travel
// in RPCs between nodes and appear in logs, so a value is never reused for another meaning.
// The S3 gateway maps these codes to S3 error codes in one place, reading this table.
#pragma once

// clang-format off
#define CAIRN_ERROR_CODES(X)                                                                   \
  /* generic */                                                                                \
  X(Ok,               0,    "ok")                                                              \
  X(InvalidArgument,  1,    "invalid argument")                                                \
  X(NotFound,         2,    "not found")                                                       \
  X(AlreadyExists,    3,    "already exists")                                                  \
  X(Internal,         4,    "internal error")                                                  \
  X(NotSupported,     5,    "not supported")                                                   \
  X(Cancelled,        6,    "cancelled")                                                       \
  X(Timeout,          7,    "timed out")                                                       \
  X(Busy,             8,    "busy, retry later")                                               \
  /* io: the storage device said no */                                                        \
  X(IOError,          100,  "i/o error")                                                       \
  X(NoSpace,          101,  "no space left on device")                                         \
  X(ReadOnly,         102,  "read-only: writes refused after an earlier failure")              \
  /* data integrity */                                                                         \
  X(Corruption,       200,  "data corruption detected")                                        \
  X(ChecksumMismatch, 201,  "checksum supplied by the caller does not match the data")         \
  /* config */                                                                                 \
  X(ConfigError,      300,  "configuration error")                                             \
  /* meta: buckets, objects, multipart state */                                                \
  X(NoSuchBucket,     600,  "the bucket does not exist")                                       \
  X(BucketNotEmpty,   601,  "the bucket still holds objects or multipart uploads")             \
  X(NoSuchUpload,     602,  "the multipart upload does not exist")                             \
  X(PreconditionFailed, 603, "a conditional write's precondition does not hold")               \
  X(InvalidPart,      604,  "a listed part is missing or its etag differs")                    \
  X(InvalidPartOrder, 605,  "the listed part numbers are not strictly ascending")              \
  /* s3: request conditions the S3 gateway reports with a code of their own */                 \
  X(MalformedXml,     500,  "request body is not well-formed XML or not the expected document") \
  X(EntityTooLarge,   501,  "the request body is larger than the operation allows")          \
  X(EntityTooSmall,   502,  "the request body is smaller than the operation requires")          \
  X(InvalidPolicyDocument, 503, "a POST policy document is not valid")                         \
  X(MalformedPolicy,  504,  "a bucket policy is not valid")                                   \
  /* auth: SigV4 request authentication (gateway/sigv4.h) */                                   \
  X(AccessDenied,     400,  "refused: x-amz-* headers left unsigned, or no valid request date") \
  X(InvalidAccessKeyId, 401,  "the access key id in the request is not known")                 \
  X(SignatureDoesNotMatch, 402,  "the request signature differs from the one computed")        \
  X(RequestTimeTooSkewed, 403,  "the request time is more than 15 minutes from the server clock") \
  X(RequestExpired,   404,  "the presigned request has expired")                               \
  X(AuthorizationHeaderMalformed, 405,  "the Authorization header is malformed or names the wrong scope") \
  X(AuthorizationQueryMalformed, 406,  "the presigned query parameters are malformed or wrong-scoped") \
  X(InvalidAuthRequest, 407,  "unsupported auth algorithm or payload mode, or auth header missing") \
  X(ContentSha256Mismatch, 408,  "the body's SHA-256 differs from x-amz-content-sha256")       \
  X(IncompleteBody,   409,  "the aws-chunked body is truncated, malformed or of the wrong length") \
  X(InvalidChunkSize, 410,  "an aws-chunked chunk is under 8 KiB before the last, or too large")
// clang-format on
