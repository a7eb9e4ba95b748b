// Bucket policy parsing and evaluation; see policy.h for the language and the evaluation rules.
//
// Parsing does all the work that can be done once: actions are lowercased, condition keys
// lowercased, and condition values converted to the form their operator compares (a number, a
// time, a CIDR, a flag), so that Evaluate only parses the request's own values.
// Thread-safety: a parsed policy is immutable; the free functions here are pure.
#include "gateway/policy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <compare>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "gateway/s3_request.h"
#include "gateway/text.h"

namespace cairn::gateway {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kVersion2012 = "2012-10-17";
constexpr std::string_view kVersion2008 = "2008-10-17";
constexpr std::string_view kS3ArnPrefix = "arn:aws:s3:::";
constexpr std::string_view kIamArnPrefix = "arn:aws:iam::";
constexpr std::string_view kIfExistsSuffix = "IfExists";
constexpr size_t kCanonicalIdLength = 64;
constexpr int kIpv4Bits = 32;
constexpr int kIpv6Bits = 128;
// An IPv4-mapped IPv6 address is ::ffff:a.b.c.d: 80 zero bits, 16 one bits, then the IPv4 address.
constexpr int kIpv4MappedPrefixBits = 96;
constexpr size_t kIpv4MappedOffset = 12;
// Epoch seconds longer than this are not a plausible date (and would overflow int64 arithmetic).
constexpr size_t kMaxEpochDigits = 12;

// ---- Text helpers ----------------------------------------------------------------------------

bool IsAsciiAlnum(char c) { return IsAsciiDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool HasWildcard(std::string_view s) { return s.find_first_of("*?") != std::string_view::npos; }

// Bytes taken by the character at s[i]: a whole UTF-8 sequence when it is well formed, else one
// byte, exactly as DecodeUtf8 advances. '?' matches one such character, as IAM's '?' matches one
// character (not one byte) of a UTF-8 object key.
size_t CharLength(std::string_view s, size_t i) {
  size_t j = i;
  (void)DecodeUtf8(s, &j);
  return j - i;
}

// ---- Wildcard matching -----------------------------------------------------------------------

// True when `text` matches `pattern`, where '*' matches any run of characters (including none)
// and '?' exactly one, and everything else itself, byte for byte.
//
// The classic greedy scan with one backtrack point: on a mismatch only the most recent '*' is
// widened by one character. Widening an earlier star can never help, because whatever the later
// star's segment matched could be matched by the later star itself, so the work is
// O(|pattern| * |text|) in the worst case instead of exponential in the number of stars.
bool WildcardMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0;
  size_t t = 0;
  size_t star_p = std::string_view::npos;  // pattern index just after the last '*' seen
  size_t star_t = 0;                       // text index that star currently stops at
  while (t < text.size()) {
    if (p < pattern.size()) {
      if (pattern[p] == '*') {
        star_p = ++p;
        star_t = t;
        continue;
      }
      const size_t text_len = CharLength(text, t);
      if (pattern[p] == '?') {
        ++p;
        t += text_len;
        continue;
      }
      const size_t pattern_len = CharLength(pattern, p);
      if (pattern_len == text_len && pattern.substr(p, pattern_len) == text.substr(t, text_len)) {
        p += pattern_len;
        t += text_len;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    star_t += CharLength(text, star_t);
    t = star_t;
    p = star_p;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// ---- Condition value types -------------------------------------------------------------------

using Timestamp = IsoInstant;

// Whole epoch seconds ("1795000000"), or ISO 8601 as ParseIso8601 reads it. IAM accepts more
// ISO 8601 forms; these are the ones S3 clients and the gateway's aws:CurrentTime produce.
std::optional<Timestamp> ParseDate(std::string_view s) {
  if (!s.empty() && s.size() <= kMaxEpochDigits && std::all_of(s.begin(), s.end(), IsAsciiDigit)) {
    int64_t seconds = 0;
    for (const char c : s) seconds = seconds * 10 + (c - '0');
    return Timestamp{seconds, 0};
  }
  return ParseIso8601(s);
}

// A finite decimal number: "10", "-3", "2.5", "1e3". No leading '+', spaces, "inf" or "nan".
std::optional<double> ParseNumber(std::string_view s) {
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// An IPv4 address (family AF_INET, 4 bytes used) or an IPv6 one (AF_INET6, 16 bytes).
struct IpAddress {
  int family = AF_INET;
  std::array<uint8_t, 16> bytes{};
};

struct Cidr {
  IpAddress base;
  int prefix_bits = 0;
};

bool IsIpv4Mapped(const IpAddress& ip) {
  if (ip.family != AF_INET6) return false;
  for (size_t i = 0; i < 10; ++i) {
    if (ip.bytes[i] != 0) return false;
  }
  return ip.bytes[10] == 0xFF && ip.bytes[11] == 0xFF;
}

// Parses a textual IPv4 or IPv6 address. An IPv4-mapped IPv6 address (what a dual-stack socket
// reports for an IPv4 peer) becomes the IPv4 address, so that IPv4 CIDRs in policies match it.
std::optional<IpAddress> ParseIp(std::string_view s) {
  const std::string z(s);  // inet_pton wants a NUL-terminated string
  IpAddress ip;
  if (inet_pton(AF_INET, z.c_str(), ip.bytes.data()) == 1) return ip;
  ip.family = AF_INET6;
  if (inet_pton(AF_INET6, z.c_str(), ip.bytes.data()) != 1) return std::nullopt;
  if (IsIpv4Mapped(ip)) {
    IpAddress v4;
    std::copy_n(ip.bytes.begin() + kIpv4MappedOffset, 4, v4.bytes.begin());
    return v4;
  }
  return ip;
}

// "a.b.c.d/n", "x::y/n", or a bare address meaning a single host. Host bits set below the prefix
// are allowed and ignored ("10.1.2.3/8" is 10.0.0.0/8), as IAM allows them.
std::optional<Cidr> ParseCidr(std::string_view s) {
  const size_t slash = s.find('/');
  const auto ip = ParseIp(s.substr(0, slash));
  if (!ip) return std::nullopt;
  const bool mapped_v4 = ip->family == AF_INET && s.substr(0, slash).find(':') != std::string_view::npos;
  const int max_bits = (ip->family == AF_INET && !mapped_v4) ? kIpv4Bits : kIpv6Bits;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view len = s.substr(slash + 1);
    // At most three digits: "/0" to "/128", no sign, no spaces.
    if (len.empty() || len.size() > 3 || !std::all_of(len.begin(), len.end(), IsAsciiDigit)) return std::nullopt;
    int parsed = 0;
    const auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), parsed);
    if (ec != std::errc() || end != len.data() + len.size() || parsed > max_bits) return std::nullopt;
    bits = parsed;
  }
  if (mapped_v4) {
    // ::ffff:a.b.c.d/n names IPv4 addresses when n covers the mapping prefix; a shorter prefix
    // would span non-mapped IPv6 space, which this form cannot express after conversion.
    if (bits < kIpv4MappedPrefixBits) return std::nullopt;
    bits -= kIpv4MappedPrefixBits;
  }
  return Cidr{*ip, bits};
}

bool CidrContains(const Cidr& cidr, const IpAddress& ip) {
  if (cidr.base.family != ip.family) return false;
  const auto full_bytes = static_cast<size_t>(cidr.prefix_bits / 8);
  for (size_t i = 0; i < full_bytes; ++i) {
    if (cidr.base.bytes[i] != ip.bytes[i]) return false;
  }
  const int rest_bits = cidr.prefix_bits % 8;
  if (rest_bits == 0) return true;
  const auto mask = static_cast<uint8_t>(0xFF << (8 - rest_bits));
  return (cidr.base.bytes[full_bytes] & mask) == (ip.bytes[full_bytes] & mask);
}

// ---- Parsed policy ---------------------------------------------------------------------------

enum class Operator {
  kStringEquals,
  kStringEqualsIgnoreCase,
  kStringLike,
  kNumericEquals,
  kNumericLessThan,
  kNumericLessThanEquals,
  kNumericGreaterThan,
  kNumericGreaterThanEquals,
  kDateEquals,
  kDateLessThan,
  kDateLessThanEquals,
  kDateGreaterThan,
  kDateGreaterThanEquals,
  kBool,
  kIpAddress,
  kNull,
};

struct OperatorName {
  std::string_view name;
  Operator op;
  bool negated;  // the "Not" form: true when no listed value matches
};

// Names are matched exactly, case included: IAM documents them in this spelling only, and a
// misspelt operator must be an error rather than a condition that silently never holds.
constexpr OperatorName kOperators[] = {
    {"StringEquals", Operator::kStringEquals, false},
    {"StringNotEquals", Operator::kStringEquals, true},
    {"StringEqualsIgnoreCase", Operator::kStringEqualsIgnoreCase, false},
    {"StringNotEqualsIgnoreCase", Operator::kStringEqualsIgnoreCase, true},
    {"StringLike", Operator::kStringLike, false},
    {"StringNotLike", Operator::kStringLike, true},
    {"NumericEquals", Operator::kNumericEquals, false},
    {"NumericNotEquals", Operator::kNumericEquals, true},
    {"NumericLessThan", Operator::kNumericLessThan, false},
    {"NumericLessThanEquals", Operator::kNumericLessThanEquals, false},
    {"NumericGreaterThan", Operator::kNumericGreaterThan, false},
    {"NumericGreaterThanEquals", Operator::kNumericGreaterThanEquals, false},
    {"DateEquals", Operator::kDateEquals, false},
    {"DateNotEquals", Operator::kDateEquals, true},
    {"DateLessThan", Operator::kDateLessThan, false},
    {"DateLessThanEquals", Operator::kDateLessThanEquals, false},
    {"DateGreaterThan", Operator::kDateGreaterThan, false},
    {"DateGreaterThanEquals", Operator::kDateGreaterThanEquals, false},
    {"Bool", Operator::kBool, false},
    {"IpAddress", Operator::kIpAddress, false},
    {"NotIpAddress", Operator::kIpAddress, true},
    {"Null", Operator::kNull, false},
};

bool IsNumeric(Operator op) { return op >= Operator::kNumericEquals && op <= Operator::kNumericGreaterThanEquals; }
bool IsDate(Operator op) { return op >= Operator::kDateEquals && op <= Operator::kDateGreaterThanEquals; }

// One value of a condition, in the form its operator compares.
struct ConditionValue {
  std::string text;  // strings: as written; Bool and Null: "true" or "false"
  double number = 0;
  Timestamp time;
  Cidr cidr;
};

struct Condition {
  Operator op = Operator::kStringEquals;
  bool negated = false;
  bool if_exists = false;
  std::string key;  // lowercased, as the request context names keys
  std::vector<ConditionValue> values;
};

struct Principals {
  bool everyone = false;
  std::vector<std::string> user_names;
  std::vector<std::string> canonical_ids;  // lowercase hex
};

struct Statement {
  bool deny = false;
  bool not_principal = false;
  Principals principals;
  bool not_action = false;
  std::vector<std::string> actions;  // lowercased patterns
  bool not_resource = false;
  std::vector<std::string> resources;  // patterns
  std::vector<Condition> conditions;
};

// ---- Parsing ---------------------------------------------------------------------------------

Status Invalid(std::string message) { return Status::InvalidArgument(message); }

// `field` as a list: a single string, or a non-empty array of strings.
Result<std::vector<std::string>> StringList(const Json& value, std::string_view field) {
  std::vector<std::string> out;
  if (value.is_string()) {
    out.push_back(value.get<std::string>());
    return out;
  }
  if (value.is_array() && !value.empty()) {
    for (const Json& item : value) {
      if (!item.is_string()) break;
      out.push_back(item.get<std::string>());
    }
    if (out.size() == value.size()) return out;
  }
  return Invalid(std::string(field) + " must be a string or a non-empty array of strings");
}

// A user name from an {"AWS": X} principal: arn:aws:iam::<account>:user/[path/]NAME or NAME.
Result<std::string> AwsPrincipalUser(const std::string& value) {
  const Status bad = Invalid("Invalid principal in policy: \"" + value +
                             "\" (expected \"*\", a user name or arn:aws:iam::<account>:user/<name>)");
  if (value.empty() || HasWildcard(value)) return bad;
  if (!value.starts_with("arn:")) return value;
  if (!value.starts_with(kIamArnPrefix)) return bad;
  const std::string_view rest = std::string_view(value).substr(kIamArnPrefix.size());
  const size_t colon = rest.find(':');
  if (colon == std::string_view::npos) return bad;
  const std::string_view resource = rest.substr(colon + 1);
  if (!resource.starts_with("user/")) return bad;
  const std::string_view name = resource.substr(resource.rfind('/') + 1);
  if (name.empty()) return bad;
  return std::string(name);
}

Result<Principals> ParsePrincipals(const Json& value, std::string_view field) {
  Principals out;
  if (value.is_string()) {
    if (value.get<std::string>() != "*") {
      return Invalid("Invalid principal in policy: " + std::string(field) +
                     " must be \"*\" or an object such as {\"AWS\": \"<user>\"}");
    }
    out.everyone = true;
    return out;
  }
  if (!value.is_object() || value.empty()) {
    return Invalid("Invalid principal in policy: " + std::string(field) +
                   " must be \"*\" or an object such as {\"AWS\": \"<user>\"}");
  }
  for (const auto& [type, ids] : value.items()) {
    if (type == "AWS") {
      CAIRN_ASSIGN_OR_RETURN(const std::vector<std::string> list, StringList(ids, std::string(field) + ".AWS"));
      for (const std::string& id : list) {
        if (id == "*") {
          out.everyone = true;
          continue;
        }
        CAIRN_ASSIGN_OR_RETURN(std::string user, AwsPrincipalUser(id));
        out.user_names.push_back(std::move(user));
      }
    } else if (type == "CanonicalUser") {
      CAIRN_ASSIGN_OR_RETURN(const std::vector<std::string> list,
                             StringList(ids, std::string(field) + ".CanonicalUser"));
      for (const std::string& id : list) {
        if (id.size() != kCanonicalIdLength ||
            !std::all_of(id.begin(), id.end(), [](char c) { return HexDigitValue(c) >= 0; })) {
          return Invalid("Invalid principal in policy: canonical user id \"" + id + "\" is not 64 hex digits");
        }
        out.canonical_ids.push_back(AsciiLower(id));
      }
    } else {
      // Service, Federated and the like name requesters Cairn never has.
      return Invalid("Invalid principal in policy: unsupported principal type \"" + type +
                     "\" (only AWS and CanonicalUser)");
    }
  }
  return out;
}

Result<std::string> ParseAction(const std::string& action) {
  std::string lower = AsciiLower(action);
  if (lower == "*") return lower;
  const bool ok =
      lower.starts_with("s3:") && lower.size() > 3 &&
      std::all_of(lower.begin() + 3, lower.end(), [](char c) { return IsAsciiAlnum(c) || c == '*' || c == '?'; });
  if (!ok) return Invalid("Policy has invalid action: \"" + action + "\" (expected \"*\" or \"s3:<Action>\")");
  return lower;
}

// A resource must be "*" or an S3 ARN whose bucket part names `bucket` (possibly by a wildcard
// pattern that matches it): a policy may not speak for other buckets.
Result<std::string> ParseResource(const std::string& resource, std::string_view bucket) {
  if (resource == "*") return resource;
  const Status bad = Invalid("Policy has invalid resource: \"" + resource +
                             "\" is not arn:aws:s3:::" + std::string(bucket) + " or an object ARN in it");
  if (!resource.starts_with(kS3ArnPrefix)) return bad;
  const std::string_view rest = std::string_view(resource).substr(kS3ArnPrefix.size());
  const std::string_view bucket_part = rest.substr(0, rest.find('/'));
  if (bucket_part.empty()) return bad;
  const bool names_bucket = HasWildcard(bucket_part) ? WildcardMatch(bucket_part, bucket) : bucket_part == bucket;
  if (!names_bucket) return bad;
  return resource;
}

// The string form IAM compares: strings as written, booleans "true"/"false", numbers in JSON
// notation. Nulls, arrays and objects are not condition values.
std::optional<std::string> ScalarText(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  if (value.is_number()) return value.dump();
  return std::nullopt;
}

Result<ConditionValue> ParseConditionValue(const OperatorName& op, std::string_view key, std::string text) {
  const auto bad = [&](std::string_view what) {
    return Invalid("Invalid Condition value for " + std::string(op.name) + " " + std::string(key) + ": \"" + text +
                   "\" is not " + std::string(what));
  };
  ConditionValue value;
  if (IsNumeric(op.op)) {
    const auto number = ParseNumber(text);
    if (!number) return bad("a number");
    value.number = *number;
  } else if (IsDate(op.op)) {
    const auto time = ParseDate(text);
    if (!time) return bad("a date (YYYY-MM-DDTHH:MM:SSZ or epoch seconds)");
    value.time = *time;
  } else if (op.op == Operator::kBool || op.op == Operator::kNull) {
    text = AsciiLower(text);
    if (text != "true" && text != "false") return bad("true or false");
  } else if (op.op == Operator::kIpAddress) {
    const auto cidr = ParseCidr(text);
    if (!cidr) return bad("an IPv4 or IPv6 address or CIDR");
    value.cidr = *cidr;
  }
  value.text = std::move(text);
  return value;
}

Result<std::vector<Condition>> ParseConditions(const Json& block) {
  if (!block.is_object()) return Invalid("Condition must be an object of the form {Operator: {Key: Value}}");
  std::vector<Condition> out;
  for (const auto& [op_name, keys] : block.items()) {
    std::string_view base = op_name;
    const bool if_exists = base.ends_with(kIfExistsSuffix);
    if (if_exists) base.remove_suffix(kIfExistsSuffix.size());
    const auto* const found = std::find_if(std::begin(kOperators), std::end(kOperators),
                                           [&](const OperatorName& o) { return o.name == base; });
    // Null asks whether the key exists, so "NullIfExists" means nothing.
    if (found == std::end(kOperators) || (if_exists && found->op == Operator::kNull)) {
      return Invalid("Unknown condition operator: " + op_name);
    }
    if (!keys.is_object() || keys.empty()) {
      return Invalid("Condition operator " + op_name + " must map condition keys to values");
    }
    for (const auto& [key, values] : keys.items()) {
      if (key.empty()) return Invalid("Condition operator " + op_name + " has an empty condition key");
      Condition condition;
      condition.op = found->op;
      condition.negated = found->negated;
      condition.if_exists = if_exists;
      condition.key = AsciiLower(key);
      std::vector<const Json*> items;
      if (values.is_array()) {
        for (const Json& item : values) items.push_back(&item);
      } else {
        items.push_back(&values);
      }
      if (items.empty()) return Invalid("Condition " + op_name + " " + key + " has no values");
      for (const Json* item : items) {
        auto text = ScalarText(*item);
        if (!text) {
          return Invalid("Invalid Condition value for " + op_name + " " + key +
                         ": values must be strings, numbers or booleans");
        }
        CAIRN_ASSIGN_OR_RETURN(ConditionValue value, ParseConditionValue(*found, key, std::move(*text)));
        condition.values.push_back(std::move(value));
      }
      out.push_back(std::move(condition));
    }
  }
  return out;
}

constexpr std::string_view kStatementFields[] = {"Sid",       "Effect",   "Principal",   "NotPrincipal", "Action",
                                                 "NotAction", "Resource", "NotResource", "Condition"};

// The member of `object` named `name` or, failing that, `not_name`; exactly one must be present.
Result<std::pair<const Json*, bool>> OneOf(const Json& object, std::string_view name, std::string_view not_name) {
  const auto plain = object.find(name);
  const auto negated = object.find(not_name);
  if (plain != object.end() && negated != object.end()) {
    return Invalid("Statement has both " + std::string(name) + " and " + std::string(not_name) + "; use one");
  }
  if (plain != object.end()) return std::make_pair(&*plain, false);
  if (negated != object.end()) return std::make_pair(&*negated, true);
  return Invalid("Missing required field " + std::string(name));
}

Result<Statement> ParseStatementBody(const Json& object, std::string_view bucket) {
  if (!object.is_object()) return Invalid("Statement must be an object");
  for (const auto& [field, unused] : object.items()) {
    if (std::find(std::begin(kStatementFields), std::end(kStatementFields), field) == std::end(kStatementFields)) {
      return Invalid("Unknown field in statement: " + field);
    }
  }
  Statement out;
  if (const auto sid = object.find("Sid"); sid != object.end() && !sid->is_string()) {
    return Invalid("Sid must be a string");
  }
  const auto effect = object.find("Effect");
  if (effect == object.end()) return Invalid("Missing required field Effect");
  if (!effect->is_string() || (*effect != "Allow" && *effect != "Deny")) {
    return Invalid("Invalid effect: Effect must be \"Allow\" or \"Deny\"");
  }
  out.deny = *effect == "Deny";

  CAIRN_ASSIGN_OR_RETURN(const auto principal, OneOf(object, "Principal", "NotPrincipal"));
  out.not_principal = principal.second;
  CAIRN_ASSIGN_OR_RETURN(out.principals,
                         ParsePrincipals(*principal.first, out.not_principal ? "NotPrincipal" : "Principal"));

  CAIRN_ASSIGN_OR_RETURN(const auto action, OneOf(object, "Action", "NotAction"));
  out.not_action = action.second;
  CAIRN_ASSIGN_OR_RETURN(const std::vector<std::string> actions,
                         StringList(*action.first, out.not_action ? "NotAction" : "Action"));
  for (const std::string& a : actions) {
    CAIRN_ASSIGN_OR_RETURN(std::string parsed, ParseAction(a));
    out.actions.push_back(std::move(parsed));
  }

  CAIRN_ASSIGN_OR_RETURN(const auto resource, OneOf(object, "Resource", "NotResource"));
  out.not_resource = resource.second;
  CAIRN_ASSIGN_OR_RETURN(const std::vector<std::string> resources,
                         StringList(*resource.first, out.not_resource ? "NotResource" : "Resource"));
  for (const std::string& r : resources) {
    CAIRN_ASSIGN_OR_RETURN(std::string parsed, ParseResource(r, bucket));
    out.resources.push_back(std::move(parsed));
  }

  if (const auto condition = object.find("Condition"); condition != object.end()) {
    CAIRN_ASSIGN_OR_RETURN(out.conditions, ParseConditions(*condition));
  }
  return out;
}

// Parses statement number `index` (from 1) and names it in any error, by Sid when it has one.
Result<Statement> ParseStatement(const Json& object, size_t index, std::string_view bucket) {
  Result<Statement> statement = ParseStatementBody(object, bucket);
  if (statement.ok()) return statement;
  std::string where = " (statement " + std::to_string(index);
  if (object.is_object()) {
    if (const auto sid = object.find("Sid"); sid != object.end() && sid->is_string()) {
      where += ", Sid \"" + sid->get<std::string>() + "\"";
    }
  }
  return Invalid(statement.status().message() + where + ")");
}

// Parses `text` as JSON, failing on a key repeated within one object: nlohmann keeps the last
// one silently, and a policy whose reader and writer see different statements is a hazard.
Result<Json> ParseJson(std::string_view text) {
  std::vector<std::set<std::string>> keys_by_depth;
  std::string duplicate;
  const Json::parser_callback_t callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        keys_by_depth.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!keys_by_depth.empty()) keys_by_depth.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!keys_by_depth.empty() && parsed.is_string() &&
            !keys_by_depth.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  Json json = Json::parse(text, callback, /*allow_exceptions=*/false);
  if (json.is_discarded()) return Invalid("Policy is not valid JSON");
  if (!duplicate.empty()) return Invalid("Policy has a duplicate field: " + duplicate);
  return json;
}

// ---- Evaluation ------------------------------------------------------------------------------

bool PrincipalMatches(const Principals& principals, const PolicyRequest& request) {
  if (principals.everyone) return true;
  if (request.anonymous) return false;
  if (std::find(principals.user_names.begin(), principals.user_names.end(), request.user_name) !=
      principals.user_names.end()) {
    return true;
  }
  return std::any_of(principals.canonical_ids.begin(), principals.canonical_ids.end(),
                     [&](const std::string& id) { return EqualsIgnoreCase(id, request.canonical_id); });
}

bool AnyPatternMatches(const std::vector<std::string>& patterns, std::string_view text) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return WildcardMatch(p, text); });
}

template <typename T>
bool Compare(Operator op, const T& request, const T& policy) {
  switch (op) {
    case Operator::kNumericEquals:
    case Operator::kDateEquals:
      return request == policy;
    case Operator::kNumericLessThan:
    case Operator::kDateLessThan:
      return request < policy;
    case Operator::kNumericLessThanEquals:
    case Operator::kDateLessThanEquals:
      return request <= policy;
    case Operator::kNumericGreaterThan:
    case Operator::kDateGreaterThan:
      return request > policy;
    case Operator::kNumericGreaterThanEquals:
    case Operator::kDateGreaterThanEquals:
      return request >= policy;
    default:
      return false;
  }
}

// True when the request's value of the key matches at least one of the condition's values. A
// request value its operator cannot read (not a number, date or address) matches none.
bool AnyValueMatches(const Condition& condition, const std::string& actual) {
  const auto any = [&](auto&& pred) { return std::any_of(condition.values.begin(), condition.values.end(), pred); };
  switch (condition.op) {
    case Operator::kStringEquals:
      return any([&](const ConditionValue& v) { return v.text == actual; });
    case Operator::kStringEqualsIgnoreCase:
      return any([&](const ConditionValue& v) { return EqualsIgnoreCase(v.text, actual); });
    case Operator::kStringLike:
      return any([&](const ConditionValue& v) { return WildcardMatch(v.text, actual); });
    case Operator::kBool:
      return any([&](const ConditionValue& v) { return EqualsIgnoreCase(v.text, actual); });
    case Operator::kIpAddress: {
      const auto ip = ParseIp(actual);
      return ip && any([&](const ConditionValue& v) { return CidrContains(v.cidr, *ip); });
    }
    case Operator::kNull:
      return false;  // decided from presence alone, in ConditionHolds
    default:
      break;
  }
  if (IsNumeric(condition.op)) {
    const auto number = ParseNumber(actual);
    return number && any([&](const ConditionValue& v) { return Compare(condition.op, *number, v.number); });
  }
  const auto time = ParseDate(actual);
  return time && any([&](const ConditionValue& v) { return Compare(condition.op, *time, v.time); });
}

bool ConditionHolds(const Condition& condition, const std::map<std::string, std::string>& context) {
  const auto it = context.find(condition.key);
  const bool present = it != context.end();
  if (condition.op == Operator::kNull) {
    // "true": the key must be absent; "false": it must be present.
    return std::any_of(condition.values.begin(), condition.values.end(),
                       [&](const ConditionValue& v) { return (v.text == "true") != present; });
  }
  if (!present) return condition.if_exists || condition.negated;
  const bool any = AnyValueMatches(condition, it->second);
  return condition.negated ? !any : any;
}

bool StatementApplies(const Statement& statement, const PolicyRequest& request, std::string_view action) {
  if (PrincipalMatches(statement.principals, request) == statement.not_principal) return false;
  if (AnyPatternMatches(statement.actions, action) == statement.not_action) return false;
  if (AnyPatternMatches(statement.resources, request.resource) == statement.not_resource) return false;
  return std::all_of(statement.conditions.begin(), statement.conditions.end(),
                     [&](const Condition& c) { return ConditionHolds(c, request.context); });
}

}  // namespace

struct BucketPolicy::Rep {
  std::vector<Statement> statements;
};

BucketPolicy::BucketPolicy(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}

std::vector<std::string> BucketPolicy::PrincipalUserNames() const {
  std::vector<std::string> out;
  for (const Statement& st : rep_->statements) {
    out.insert(out.end(), st.principals.user_names.begin(), st.principals.user_names.end());
  }
  return out;
}

std::vector<std::string> BucketPolicy::PrincipalCanonicalIds() const {
  std::vector<std::string> out;
  for (const Statement& st : rep_->statements) {
    out.insert(out.end(), st.principals.canonical_ids.begin(), st.principals.canonical_ids.end());
  }
  return out;
}
BucketPolicy::BucketPolicy(BucketPolicy&&) noexcept = default;
BucketPolicy& BucketPolicy::operator=(BucketPolicy&&) noexcept = default;
BucketPolicy::~BucketPolicy() = default;

Result<BucketPolicy> BucketPolicy::Parse(std::string_view json, std::string_view bucket) {
  if (json.size() > kMaxBucketPolicyBytes) {
    return Invalid("Policy is " + std::to_string(json.size()) + " bytes, larger than the limit of " +
                   std::to_string(kMaxBucketPolicyBytes));
  }
  CAIRN_ASSIGN_OR_RETURN(const Json document, ParseJson(json));
  if (!document.is_object()) return Invalid("Policy must be a JSON object");
  for (const auto& [field, value] : document.items()) {
    if (field == "Version") {
      if (!value.is_string() || (value.get_ref<const std::string&>() != kVersion2012 &&
                                 value.get_ref<const std::string&>() != kVersion2008)) {
        return Invalid("Invalid policy Version: only \"2012-10-17\" and \"2008-10-17\" are supported");
      }
    } else if (field == "Id") {
      if (!value.is_string()) return Invalid("Policy Id must be a string");
    } else if (field != "Statement") {
      return Invalid("Unknown field in policy: " + field);
    }
  }
  const auto statements = document.find("Statement");
  if (statements == document.end()) return Invalid("Missing required field Statement");
  auto rep = std::make_unique<Rep>();
  if (statements->is_array()) {
    if (statements->empty()) return Invalid("Policy Statement is empty: it needs at least one statement");
    size_t index = 0;
    for (const Json& object : *statements) {
      CAIRN_ASSIGN_OR_RETURN(Statement statement, ParseStatement(object, ++index, bucket));
      rep->statements.push_back(std::move(statement));
    }
  } else {
    CAIRN_ASSIGN_OR_RETURN(Statement statement, ParseStatement(*statements, /*index=*/1, bucket));
    rep->statements.push_back(std::move(statement));
  }
  return BucketPolicy(std::move(rep));
}

PolicyDecision BucketPolicy::Evaluate(const PolicyRequest& request) const {
  const std::string action = AsciiLower(request.action);
  bool allowed = false;
  for (const Statement& statement : rep_->statements) {
    if (!StatementApplies(statement, request, action)) continue;
    if (statement.deny) return PolicyDecision::kDeny;
    allowed = true;
  }
  return allowed ? PolicyDecision::kAllow : PolicyDecision::kNone;
}

}  // namespace cairn::gateway
