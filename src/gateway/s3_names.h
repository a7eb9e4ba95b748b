// S3 names: bucket name and object key validation, and the URL encoding of listing output.
//
// Bucket names follow the S3 rules for general purpose buckets: 3 to 63 characters; only
// lowercase ASCII letters, digits, '.' and '-'; first and last character a letter or digit; no
// "..", and (the older S3 rule, which keeps names usable as DNS labels under virtual-host
// addressing) no ".-" or "-."; not shaped like an IPv4 address (four dot-separated groups of
// digits); none of the prefixes S3 reserves ("xn--", "sthree-", "amzn-s3-demo-") and none of the
// reserved suffixes ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3").
//
// Object keys: non-empty, at most kMaxObjectKeyBytes bytes of valid UTF-8 (no overlong forms, no
// surrogates). Any code point is allowed, control characters included, as in S3; the XML writer
// (gateway/xml.h) says how such keys appear in listings.
//
// The validators return InvalidArgument with the reason; the S3 code depends on which name was
// checked, so the caller picks it: InvalidBucketName for a bucket, and for a key KeyTooLongError
// when key.size() > kMaxObjectKeyBytes, InvalidArgument otherwise.
//
// encoding-type=url. When a listing request asks for it, S3 URL-encodes the object keys and
// prefixes in the response (Key, Prefix, CommonPrefixes/Prefix, Delimiter, Marker, NextMarker,
// StartAfter, KeyMarker, NextKeyMarker). The encoding is the HTML form encoding of the UTF-8
// bytes, as measured against S3 (for example "a b.txt" lists as "a+b.txt", "a+b.txt" as
// "a%2Bb.txt", "100%.csv" as "100%25.csv", "test_file(3).png" as "test_file%283%29.png"), with
// one exception: '/' is left as is, so that the hierarchy stays readable. Exactly: ASCII letters,
// digits, '.', '-', '_', '*' and '/' are copied; a space becomes '+'; every other byte becomes
// %XX with uppercase hex. This differs from SigV4's URI encoding (which keeps '~', encodes '*',
// and writes a space as %20); that one belongs to the signing code.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"
#include "gateway/text.h"
#include "common/status.h"

namespace cairn::gateway {

inline constexpr size_t kMinBucketNameLength = 3;
inline constexpr size_t kMaxBucketNameLength = 63;
inline constexpr size_t kMaxObjectKeyBytes = 1024;

// OK, or InvalidArgument saying which rule `name` breaks.
Status ValidateBucketName(std::string_view name);

// OK, or InvalidArgument saying why `key` is not a valid object key.
Status ValidateObjectKey(std::string_view key);

// The encoding-type=url form of `value` (rules above).
std::string UrlEncodeListingValue(std::string_view value);

}  // namespace cairn::gateway
