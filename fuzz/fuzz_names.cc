// Fuzz target: S3 name rules and the byte-level text helpers (gateway/s3_names.h, gateway/text.h,
// and UriEncode from gateway/sigv4.h). The whole input is the name, key or text under test.
//
// Properties checked for every input:
//   - DecodeUtf8 agrees, position by position, with an independent statement of well-formed UTF-8
//     (the Unicode standard's table of well-formed byte sequences): same validity, same length,
//     and the decoded code point re-encodes to exactly the bytes consumed; an invalid sequence
//     advances by one byte. IsValidUtf8 agrees with that walk.
//   - ValidateObjectKey accepts exactly the non-empty, at most 1024-byte, well-formed keys.
//   - ValidateBucketName accepts exactly the names an independent restatement of the rules does.
//   - UrlEncodeListingValue writes only its output alphabet and PercentDecode(plus_is_space) of
//     the result gives the input back.
//   - PercentDecode fails exactly on a '%' not followed by two hex digits; its result survives
//     UriEncode then PercentDecode unchanged.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "check.h"
#include "gateway/s3_names.h"
#include "gateway/sigv4.h"
#include "gateway/text.h"

namespace cairn::gateway {
namespace {

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 when none starts there.
// Restates Table 3-7 of the Unicode standard: the second byte's range depends on the lead byte;
// later bytes are always 80..BF.
size_t WellFormedLength(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 <= 0x7F) return 1;
  size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 == 0xE0) {
    len = 3, lo = 0xA0;
  } else if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) {
    len = 3;
  } else if (b0 == 0xED) {
    len = 3, hi = 0x9F;
  } else if (b0 == 0xF0) {
    len = 4, lo = 0x90;
  } else if (b0 >= 0xF1 && b0 <= 0xF3) {
    len = 4;
  } else if (b0 == 0xF4) {
    len = 4, hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < 0x80 || b > 0xBF) return 0;
  }
  return len;
}

std::string EncodeUtf8(char32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return out;
}

// Returns whether the whole input is well-formed UTF-8, checking DecodeUtf8 at every step.
bool CheckUtf8Walk(std::string_view s) {
  bool valid = true;
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    const size_t want = WellFormedLength(s, start);
    const std::optional<char32_t> cp = DecodeUtf8(s, &i);
    if (want == 0) {
      FUZZ_CHECK(!cp.has_value());
      FUZZ_CHECK(i == start + 1);
      valid = false;
      continue;
    }
    FUZZ_CHECK(cp.has_value());
    FUZZ_CHECK(i == start + want);
    FUZZ_CHECK(*cp <= 0x10FFFF && !(*cp >= 0xD800 && *cp <= 0xDFFF));
    FUZZ_CHECK(EncodeUtf8(*cp) == s.substr(start, want));
  }
  FUZZ_CHECK(IsValidUtf8(s) == valid);
  return valid;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || IsDigit(c); }

// The bucket rules of s3_names.h, stated again without sharing code with it.
bool BucketNameAllowed(std::string_view name) {
  if (name.size() < 3 || name.size() > 63) return false;
  for (char c : name) {
    if (!IsLowerAlnum(c) && c != '.' && c != '-') return false;
  }
  if (!IsLowerAlnum(name.front()) || !IsLowerAlnum(name.back())) return false;
  for (size_t i = 0; i + 1 < name.size(); ++i) {
    const char a = name[i];
    const char b = name[i + 1];
    if ((a == '.' || a == '-') && (b == '.' || b == '-') && !(a == '-' && b == '-')) return false;
  }
  // Shaped like an IPv4 address: exactly four dot-separated, non-empty runs of digits.
  size_t groups = 1;
  bool only_digits_and_dots = true;
  for (char c : name) {
    if (c == '.') {
      ++groups;
    } else if (!IsDigit(c)) {
      only_digits_and_dots = false;
    }
  }
  // ".." is already excluded and the ends are digits, so every group is non-empty.
  if (only_digits_and_dots && groups == 4) return false;
  for (std::string_view prefix : {"xn--", "sthree-", "amzn-s3-demo-"}) {
    if (name.substr(0, prefix.size()) == prefix) return false;
  }
  for (std::string_view suffix : {"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"}) {
    if (name.size() >= suffix.size() && name.substr(name.size() - suffix.size()) == suffix) return false;
  }
  return true;
}

bool IsUpperHex(char c) { return IsDigit(c) || (c >= 'A' && c <= 'F'); }

// Checks that `encoded` is made of the characters in `plain` and %XX escapes with uppercase hex,
// and returns how many escapes it holds.
size_t CheckEncodedAlphabet(std::string_view encoded, std::string_view plain) {
  size_t escapes = 0;
  for (size_t i = 0; i < encoded.size(); ++i) {
    const char c = encoded[i];
    const bool alnum = IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alnum || plain.find(c) != std::string_view::npos) continue;
    FUZZ_CHECK(c == '%');
    FUZZ_CHECK(i + 2 < encoded.size() && IsUpperHex(encoded[i + 1]) && IsUpperHex(encoded[i + 2]));
    i += 2;
    ++escapes;
  }
  return escapes;
}

// Whether every '%' in `s` starts a %XX escape, escapes read left to right.
bool EscapesWellFormed(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') continue;
    if (i + 2 >= s.size() || HexDigitValue(s[i + 1]) < 0 || HexDigitValue(s[i + 2]) < 0) return false;
    i += 2;
  }
  return true;
}

void CheckHexDigit(char c) {
  int want = -1;
  if (c >= '0' && c <= '9') want = c - '0';
  if (c >= 'a' && c <= 'f') want = c - 'a' + 10;
  if (c >= 'A' && c <= 'F') want = c - 'A' + 10;
  FUZZ_CHECK(HexDigitValue(c) == want);
}

void CheckPercentDecode(std::string_view s, bool plus_is_space) {
  const Result<std::string> decoded = PercentDecode(s, plus_is_space);
  FUZZ_CHECK(decoded.ok() == EscapesWellFormed(s));
  if (!decoded.ok()) {
    FUZZ_CHECK(decoded.status().IsInvalidArgument());
    return;
  }
  FUZZ_CHECK(decoded->size() <= s.size());
  for (bool keep_slash : {false, true}) {
    const std::string encoded = UriEncode(*decoded, keep_slash);
    CheckEncodedAlphabet(encoded, keep_slash ? "-_.~/" : "-_.~");
    const Result<std::string> again = PercentDecode(encoded, plus_is_space);
    FUZZ_CHECK(again.ok() && *again == *decoded);
  }
}

}  // namespace
}  // namespace cairn::gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cairn::gateway;  // NOLINT: a fuzz entry point, not a header
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  const bool valid_utf8 = CheckUtf8Walk(in);
  const cairn::Status key = ValidateObjectKey(in);
  FUZZ_CHECK(key.ok() == (!in.empty() && in.size() <= kMaxObjectKeyBytes && valid_utf8));
  FUZZ_CHECK(key.ok() || key.IsInvalidArgument());

  const cairn::Status bucket = ValidateBucketName(in);
  FUZZ_CHECK(bucket.ok() == BucketNameAllowed(in));
  FUZZ_CHECK(bucket.ok() || bucket.IsInvalidArgument());

  const std::string listed = UrlEncodeListingValue(in);
  const size_t escapes = CheckEncodedAlphabet(listed, ".-_*/+");
  FUZZ_CHECK(listed.size() == in.size() + 2 * escapes);
  const cairn::Result<std::string> back = PercentDecode(listed, /*plus_is_space=*/true);
  FUZZ_CHECK(back.ok() && *back == in);

  CheckPercentDecode(in, /*plus_is_space=*/false);
  CheckPercentDecode(in, /*plus_is_space=*/true);
  if (!in.empty()) CheckHexDigit(in.front());
  return 0;
}
