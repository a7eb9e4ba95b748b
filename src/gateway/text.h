// Byte-level text helpers shared by the gateway's parsers: ASCII digits, case folding and
// whitespace, hex digits, UTF-8 decoding and percent-decoding. One definition of each, so that
// SigV4, XML and name validation agree on what a byte sequence means. Thread-safety: pure
// functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace cairn::gateway {

// True for '0'..'9' only, whatever the locale.
bool IsAsciiDigit(char c);

// The value of a hex digit of either case, or -1.
int HexDigitValue(char c);

// 'A'..'Z' mapped to 'a'..'z'; every other byte, including every non-ASCII byte, unchanged.
char AsciiLower(char c);
std::string AsciiLower(std::string_view s);

// True when `a` and `b` have the same length and are equal after AsciiLower, byte by byte.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// HTTP's optional whitespace (OWS, RFC 9110 section 5.6.3): space and tab.
bool IsHttpSpace(char c);

// XML's white space (the S production of XML 1.0): space, tab, CR and LF.
bool IsXmlSpace(char c);

// `s` without leading and trailing IsHttpSpace bytes; CR and LF are kept.
std::string_view TrimHttpSpace(std::string_view s);

// `s` without leading and trailing IsXmlSpace bytes.
std::string_view TrimXmlSpace(std::string_view s);

// Decodes one UTF-8 sequence at s[*i] and advances *i past it. Returns nullopt, advancing by one
// byte, for an invalid sequence: a bad lead byte, a truncated sequence, an overlong form, a
// surrogate or a code point above U+10FFFF (RFC 3629). REQUIRES: *i < s.size().
std::optional<char32_t> DecodeUtf8(std::string_view s, size_t* i);

// Appends the UTF-8 encoding of code point `cp`. REQUIRES: cp <= U+10FFFF.
void AppendUtf8(char32_t cp, std::string* out);

// True when `s` is well-formed UTF-8 in the sense of DecodeUtf8.
bool IsValidUtf8(std::string_view s);

// Decodes %XX escapes (either case of hex) and, when `plus_is_space`, '+' as a space. Fails with
// InvalidArgument on a '%' not followed by two hex digits. The result is bytes: it is not checked
// for UTF-8.
Result<std::string> PercentDecode(std::string_view value, bool plus_is_space);

}  // namespace cairn::gateway
