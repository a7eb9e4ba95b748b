// S3 CORS: the bucket's CORSConfiguration document and how a request from a browser is matched
// against its rules (preflight OPTIONS requests and the actual requests that follow them).
//
// Matching follows the S3 documentation: the first rule whose AllowedOrigin matches the Origin
// header (each AllowedOrigin may hold one '*' wildcard, which matches any run of characters;
// comparison is case-sensitive as S3's is), whose AllowedMethod contains the method (for a
// preflight, Access-Control-Request-Method), and (preflight only) whose AllowedHeader entries
// match every header named in Access-Control-Request-Headers (case-insensitive, one '*' each)
// applies. No match: a preflight is refused (403), an actual request is served without CORS
// headers.
//
// Thread-safety: pure functions; a CorsConfiguration is a value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace cairn::gateway {

struct CorsRule {
  std::string id;                            // optional ID element
  std::vector<std::string> allowed_origins;  // at least one
  std::vector<std::string> allowed_methods;  // at least one of GET PUT HEAD POST DELETE
  std::vector<std::string> allowed_headers;
  std::vector<std::string> expose_headers;
  std::optional<int64_t> max_age_seconds;

  friend bool operator==(const CorsRule&, const CorsRule&) = default;
};

struct CorsConfiguration {
  std::vector<CorsRule> rules;  // document order; 1 to 100

  friend bool operator==(const CorsConfiguration&, const CorsConfiguration&) = default;
};

// Parses a PutBucketCors body:
//   <CORSConfiguration><CORSRule><ID/><AllowedOrigin/>...<AllowedMethod/>...<AllowedHeader/>...
//   <ExposeHeader/>...<MaxAgeSeconds/></CORSRule>...</CORSConfiguration>
// Values are trimmed of surrounding whitespace; elements not named above are ignored; the root may
// carry any xmlns (S3's or none).
// Errors: MalformedXml when the document is not that shape (no rule, more than 100 rules, a rule
// without AllowedOrigin or AllowedMethod, a MaxAgeSeconds that is not a non-negative integer, a
// repeated ID or MaxAgeSeconds, a value element holding child elements);
// InvalidArgument "Found unsupported HTTP method in CORS config. Unsupported method is X" for a
// method outside GET PUT HEAD POST DELETE; InvalidArgument when an AllowedOrigin or an
// AllowedHeader holds more than one '*'.
Result<CorsConfiguration> ParseCorsConfiguration(std::string_view body);

// The document GetBucketCors returns (and the stored form): the xmlns of S3, elements in the order
// above, fields that are empty left out. ParseCorsConfiguration(CorsXml(c)) == c.
std::string CorsXml(const CorsConfiguration& config);

// The request as CORS sees it.
struct CorsRequest {
  std::string origin;  // the Origin header
  std::string method;  // the method (or, for a preflight, Access-Control-Request-Method)
  // Preflight only: Access-Control-Request-Headers split at commas, trimmed (any case).
  std::vector<std::string> request_headers;
  bool preflight = false;
};

// The first matching rule, or nullptr. A request with an empty origin matches nothing (it is not a
// CORS request, even for a rule allowing "*"); empty entries in request_headers are skipped.
const CorsRule* MatchCors(const CorsConfiguration& config, const CorsRequest& request);

// The response headers for a request that matched `rule`, in this order ("comma-separated" means
// joined with ", "):
//   Access-Control-Allow-Origin: the rule's origin when it is exactly "*" (then no credentials
//     header), otherwise the request's Origin, and Access-Control-Allow-Credentials: true. The
//     first of the rule's AllowedOrigin values that matches the Origin is the one that counts.
//   Access-Control-Allow-Methods: the rule's methods, comma-separated
//   Access-Control-Allow-Headers (preflight, when it asks for any): the requested headers,
//     lowercase, comma-separated
//   Access-Control-Expose-Headers: the rule's ExposeHeader values, comma-separated (when any)
//   Access-Control-Max-Age (when the rule has it)
//   Vary: Origin, Access-Control-Request-Headers, Access-Control-Request-Method
std::vector<std::pair<std::string, std::string>> CorsResponseHeaders(const CorsRule& rule, const CorsRequest& request);

}  // namespace cairn::gateway
