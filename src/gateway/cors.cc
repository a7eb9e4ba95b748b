// S3 CORS configuration documents and request matching; see cors.h.
// Thread-safety: pure functions.
#include "gateway/cors.h"

#include <charconv>

#include "gateway/text.h"
#include "gateway/xml.h"

namespace cairn::gateway {
namespace {

// S3's limit on the rules of one configuration.
constexpr size_t kMaxCorsRules = 100;
constexpr std::string_view kCorsMethods[] = {"GET", "PUT", "HEAD", "POST", "DELETE"};

Status BadCors(std::string_view what) { return Status::MalformedXml("cors: " + std::string(what)); }

Result<std::string> ValueOf(const XmlNode& n) {
  if (!n.children.empty()) return BadCors(n.name + " has child elements");
  return std::string(TrimXmlSpace(n.text));
}

// Matches `text` against `pattern`, where each '*' matches any run of bytes (including none).
// A configuration allows one '*' per pattern, but the matcher does not rely on it: it is the
// usual greedy scan that falls back to the last '*', O(pattern * text) at worst, and both are
// short (a rule's value and one header). `fold` compares ASCII letters case-insensitively.
bool WildcardMatch(std::string_view pattern, std::string_view text, bool fold) {
  const auto same = [fold](char a, char b) { return fold ? AsciiLower(a) == AsciiLower(b) : a == b; };
  size_t p = 0;
  size_t t = 0;
  size_t star = std::string_view::npos;  // position of the last '*' seen in pattern
  size_t resume = 0;                     // where in text that '*' resumes matching
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && same(pattern[p], text[t])) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool OriginMatches(std::string_view allowed, std::string_view origin) {
  return WildcardMatch(allowed, origin, /*fold=*/false);
}

bool HeaderAllowed(const CorsRule& rule, std::string_view header) {
  for (const std::string& allowed : rule.allowed_headers) {
    if (WildcardMatch(allowed, header, /*fold=*/true)) return true;
  }
  return false;
}

Status CheckOneWildcard(std::string_view element, std::string_view value) {
  const size_t first = value.find('*');
  if (first != std::string_view::npos && value.find('*', first + 1) != std::string_view::npos) {
    return Status::InvalidArgument(std::string(element) + " \"" + std::string(value) +
                                   "\" can not have more than one wildcard.");
  }
  return Status::OK();
}

Result<CorsRule> ParseRule(const XmlNode& node) {
  CorsRule rule;
  bool seen_id = false;
  for (const XmlNode& field : node.children) {
    const std::string& name = field.name;
    if (name == "ID") {
      if (seen_id) return BadCors("CORSRule repeats ID");
      seen_id = true;
      CAIRN_ASSIGN_OR_RETURN(rule.id, ValueOf(field));
    } else if (name == "AllowedOrigin") {
      CAIRN_ASSIGN_OR_RETURN(std::string origin, ValueOf(field));
      CAIRN_RETURN_IF_ERROR(CheckOneWildcard(name, origin));
      rule.allowed_origins.push_back(std::move(origin));
    } else if (name == "AllowedMethod") {
      CAIRN_ASSIGN_OR_RETURN(std::string method, ValueOf(field));
      bool known = false;
      for (const std::string_view m : kCorsMethods) known = known || m == method;
      if (!known) {
        return Status::InvalidArgument("Found unsupported HTTP method in CORS config. Unsupported method is " + method);
      }
      rule.allowed_methods.push_back(std::move(method));
    } else if (name == "AllowedHeader") {
      CAIRN_ASSIGN_OR_RETURN(std::string header, ValueOf(field));
      CAIRN_RETURN_IF_ERROR(CheckOneWildcard(name, header));
      rule.allowed_headers.push_back(std::move(header));
    } else if (name == "ExposeHeader") {
      CAIRN_ASSIGN_OR_RETURN(std::string header, ValueOf(field));
      rule.expose_headers.push_back(std::move(header));
    } else if (name == "MaxAgeSeconds") {
      if (rule.max_age_seconds) return BadCors("CORSRule repeats MaxAgeSeconds");
      CAIRN_ASSIGN_OR_RETURN(std::string text, ValueOf(field));
      int64_t v = 0;
      const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      // from_chars accepts a '-'; an empty string fails with ec set.
      if (ec != std::errc() || ptr != text.data() + text.size() || text.front() == '-') {
        return BadCors("MaxAgeSeconds is not a non-negative integer");
      }
      rule.max_age_seconds = v;
    }
    // Other elements are ignored, as the other request documents do (xml.h).
  }
  if (rule.allowed_origins.empty()) return BadCors("CORSRule without AllowedOrigin");
  if (rule.allowed_methods.empty()) return BadCors("CORSRule without AllowedMethod");
  return rule;
}

std::string Join(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) {
    if (!out.empty()) out.append(", ");
    out.append(v);
  }
  return out;
}

}  // namespace

Result<CorsConfiguration> ParseCorsConfiguration(std::string_view body) {
  CAIRN_ASSIGN_OR_RETURN(XmlNode root, ParseXml(body));
  if (root.name != "CORSConfiguration") return BadCors("root element is not CORSConfiguration");
  CorsConfiguration config;
  for (const XmlNode& child : root.children) {
    if (child.name != "CORSRule") continue;
    if (config.rules.size() == kMaxCorsRules) return BadCors("more than 100 CORSRule elements");
    CAIRN_ASSIGN_OR_RETURN(CorsRule rule, ParseRule(child));
    config.rules.push_back(std::move(rule));
  }
  if (config.rules.empty()) return BadCors("CORSConfiguration lists no CORSRule");
  return config;
}

std::string CorsXml(const CorsConfiguration& config) {
  XmlWriter w;
  w.Declaration();
  w.Open("CORSConfiguration", kS3XmlNamespace);
  for (const CorsRule& rule : config.rules) {
    w.Open("CORSRule");
    if (!rule.id.empty()) w.Element("ID", rule.id);
    for (const std::string& v : rule.allowed_origins) w.Element("AllowedOrigin", v);
    for (const std::string& v : rule.allowed_methods) w.Element("AllowedMethod", v);
    for (const std::string& v : rule.allowed_headers) w.Element("AllowedHeader", v);
    for (const std::string& v : rule.expose_headers) w.Element("ExposeHeader", v);
    if (rule.max_age_seconds) w.Element("MaxAgeSeconds", *rule.max_age_seconds);
    w.Close();
  }
  w.Close();
  return w.Take();
}

const CorsRule* MatchCors(const CorsConfiguration& config, const CorsRequest& request) {
  // Without an Origin the request is not a CORS request, and "*" must not make it one.
  if (request.origin.empty()) return nullptr;
  for (const CorsRule& rule : config.rules) {
    bool origin_ok = false;
    for (const std::string& o : rule.allowed_origins) origin_ok = origin_ok || OriginMatches(o, request.origin);
    if (!origin_ok) continue;
    bool method_ok = false;
    for (const std::string& m : rule.allowed_methods) method_ok = method_ok || m == request.method;
    if (!method_ok) continue;
    if (request.preflight) {
      bool headers_ok = true;
      for (const std::string& h : request.request_headers) {
        if (h.empty()) continue;  // "a,,b" splits into an empty name, which asks for nothing
        if (!HeaderAllowed(rule, h)) {
          headers_ok = false;
          break;
        }
      }
      if (!headers_ok) continue;
    }
    return &rule;
  }
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> CorsResponseHeaders(const CorsRule& rule, const CorsRequest& request) {
  std::vector<std::pair<std::string, std::string>> out;
  // The first of the rule's origins that matches decides: "*" answers "*" (and a browser then
  // sends no credentials), anything else echoes the Origin and allows credentials, as S3 does.
  bool any_origin = false;
  for (const std::string& o : rule.allowed_origins) {
    if (OriginMatches(o, request.origin)) {
      any_origin = o == "*";
      break;
    }
  }
  if (any_origin) {
    out.emplace_back("Access-Control-Allow-Origin", "*");
  } else {
    out.emplace_back("Access-Control-Allow-Origin", request.origin);
    out.emplace_back("Access-Control-Allow-Credentials", "true");
  }
  out.emplace_back("Access-Control-Allow-Methods", Join(rule.allowed_methods));
  if (request.preflight) {
    std::vector<std::string> headers;
    for (const std::string& h : request.request_headers) {
      if (!h.empty()) headers.push_back(AsciiLower(h));
    }
    if (!headers.empty()) out.emplace_back("Access-Control-Allow-Headers", Join(headers));
  }
  if (!rule.expose_headers.empty()) out.emplace_back("Access-Control-Expose-Headers", Join(rule.expose_headers));
  if (rule.max_age_seconds) out.emplace_back("Access-Control-Max-Age", std::to_string(*rule.max_age_seconds));
  out.emplace_back("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
  return out;
}

}  // namespace cairn::gateway
