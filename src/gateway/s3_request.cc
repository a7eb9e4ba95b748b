#include "gateway/s3_request.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "common/crypto.h"
#include "gateway/sigv4.h"
#include "gateway/text.h"

namespace cairn::gateway {

namespace {

// Parses a decimal uint64 that makes up all of `s`.
std::optional<uint64_t> ParseU64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string_view StripQuotes(std::string_view s) {
  s = TrimHttpSpace(s);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

}  // namespace

Result<QueryParams> QueryParams::Parse(std::string_view raw_query) {
  QueryParams q;
  while (!raw_query.empty()) {
    const size_t amp = raw_query.find('&');
    std::string_view pair = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view() : raw_query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    CAIRN_ASSIGN_OR_RETURN(std::string name, PercentDecode(pair.substr(0, eq), true));
    std::string value;
    if (eq != std::string_view::npos) {
      CAIRN_ASSIGN_OR_RETURN(value, PercentDecode(pair.substr(eq + 1), true));
    }
    q.params_.emplace_back(std::move(name), std::move(value));
  }
  return q;
}

bool QueryParams::Has(std::string_view name) const {
  for (const auto& [n, v] : params_) {
    if (n == name) return true;
  }
  return false;
}

std::optional<std::string> QueryParams::Get(std::string_view name) const {
  for (const auto& [n, v] : params_) {
    if (n == name) return v;
  }
  return std::nullopt;
}

void SplitTarget(std::string_view target, std::string_view* path, std::string_view* raw_query) {
  const size_t q = target.find('?');
  *path = target.substr(0, q);
  *raw_query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

Result<S3Target> ResolveTarget(std::string_view target, std::string_view host, const std::vector<std::string>& domains) {
  std::string_view raw_path, raw_query;
  SplitTarget(target, &raw_path, &raw_query);
  if (raw_path.empty() || raw_path.front() != '/') {
    return Status::InvalidArgument("request target is not an absolute path");
  }
  S3Target t;
  CAIRN_ASSIGN_OR_RETURN(t.query, QueryParams::Parse(raw_query));

  // Host without the port. An IPv6 literal ("[::1]:9000") is never a virtual host.
  std::string_view name = TrimHttpSpace(host);
  if (!name.empty() && name.front() != '[') {
    const size_t colon = name.rfind(':');
    if (colon != std::string_view::npos) name = name.substr(0, colon);
    for (const std::string& domain : domains) {
      if (domain.empty() || name.size() <= domain.size() + 1) continue;
      const std::string_view suffix = name.substr(name.size() - domain.size());
      if (name[name.size() - domain.size() - 1] == '.' && EqualsIgnoreCase(suffix, domain)) {
        t.bucket = std::string(name.substr(0, name.size() - domain.size() - 1));
        t.virtual_host = true;
        break;
      }
    }
  }

  // PercentDecode with plus_is_space = false: in a path '+' is a plus.
  std::string_view rest = raw_path.substr(1);
  if (t.virtual_host) {
    CAIRN_ASSIGN_OR_RETURN(t.key, PercentDecode(rest, false));
    return t;
  }
  const size_t slash = rest.find('/');
  CAIRN_ASSIGN_OR_RETURN(t.bucket, PercentDecode(rest.substr(0, slash), false));
  if (slash != std::string_view::npos) {
    CAIRN_ASSIGN_OR_RETURN(t.key, PercentDecode(rest.substr(slash + 1), false));
  }
  return t;
}

std::string_view S3OpName(S3Op op) {
  switch (op) {
    case S3Op::kUnknown: return "Unknown";
    case S3Op::kListBuckets: return "ListBuckets";
    case S3Op::kCreateBucket: return "CreateBucket";
    case S3Op::kDeleteBucket: return "DeleteBucket";
    case S3Op::kHeadBucket: return "HeadBucket";
    case S3Op::kGetBucketLocation: return "GetBucketLocation";
    case S3Op::kGetBucketVersioning: return "GetBucketVersioning";
    case S3Op::kGetBucketAcl: return "GetBucketAcl";
    case S3Op::kListObjects: return "ListObjects";
    case S3Op::kListObjectsV2: return "ListObjectsV2";
    case S3Op::kListObjectVersions: return "ListObjectVersions";
    case S3Op::kListMultipartUploads: return "ListMultipartUploads";
    case S3Op::kDeleteObjects: return "DeleteObjects";
    case S3Op::kPutObject: return "PutObject";
    case S3Op::kCopyObject: return "CopyObject";
    case S3Op::kGetObject: return "GetObject";
    case S3Op::kHeadObject: return "HeadObject";
    case S3Op::kDeleteObject: return "DeleteObject";
    case S3Op::kGetObjectAcl: return "GetObjectAcl";
    case S3Op::kGetObjectTagging: return "GetObjectTagging";
    case S3Op::kCreateMultipartUpload: return "CreateMultipartUpload";
    case S3Op::kUploadPart: return "UploadPart";
    case S3Op::kUploadPartCopy: return "UploadPartCopy";
    case S3Op::kCompleteMultipartUpload: return "CompleteMultipartUpload";
    case S3Op::kAbortMultipartUpload: return "AbortMultipartUpload";
    case S3Op::kListParts: return "ListParts";
    case S3Op::kPutBucketAcl: return "PutBucketAcl";
    case S3Op::kPutObjectAcl: return "PutObjectAcl";
    case S3Op::kGetBucketPolicy: return "GetBucketPolicy";
    case S3Op::kPutBucketPolicy: return "PutBucketPolicy";
    case S3Op::kDeleteBucketPolicy: return "DeleteBucketPolicy";
    case S3Op::kGetBucketCors: return "GetBucketCors";
    case S3Op::kPutBucketCors: return "PutBucketCors";
    case S3Op::kDeleteBucketCors: return "DeleteBucketCors";
    case S3Op::kPostObject: return "PostObject";
    case S3Op::kPreflight: return "Preflight";
    case S3Op::kAdmin: return "Admin";
  }
  return "Unknown";
}

namespace {

// Bucket sub-resources Cairn does not implement yet (lifecycle, tagging writes, ...). A request
// naming one must not fall through to the plain bucket operation (PUT ?policy is not
// CreateBucket), so it is kUnknown (501 NotImplemented).
constexpr std::string_view kUnimplementedSubresources[] = {
    "accelerate", "analytics", "encryption", "intelligent-tiering", "inventory",
    "lifecycle",  "logging",   "metrics", "notification",   "object-lock",         "ownershipControls",
    "policyStatus", "publicAccessBlock", "replication", "requestPayment", "tagging",
    "website",    "legal-hold",   "retention", "torrent", "restore", "select", "attributes"};

}  // namespace

S3Op ClassifyOperation(std::string_view method, const S3Target& target, bool has_copy_source) {
  const QueryParams& q = target.query;
  // Reading an object's tags is answered (no object has any until tagging exists: aws s3 cp
  // asks before every multipart copy); writing them is not implemented.
  if (method == "GET" && !target.bucket.empty() && !target.key.empty() && q.Has("tagging")) {
    return S3Op::kGetObjectTagging;
  }
  for (std::string_view sub : kUnimplementedSubresources) {
    if (q.Has(sub)) return S3Op::kUnknown;
  }
  // A browser's CORS preflight names a bucket (and maybe a key); it carries no credentials.
  if (method == "OPTIONS") return target.bucket.empty() ? S3Op::kUnknown : S3Op::kPreflight;
  if (target.bucket.empty()) {
    if (q.Has("policy") || q.Has("cors") || q.Has("acl")) return S3Op::kUnknown;  // bucket sub-resources
    return method == "GET" && target.key.empty() ? S3Op::kListBuckets : S3Op::kUnknown;
  }
  if (target.key.empty()) {
    if (q.Has("policy")) {
      if (method == "GET") return S3Op::kGetBucketPolicy;
      if (method == "PUT") return S3Op::kPutBucketPolicy;
      if (method == "DELETE") return S3Op::kDeleteBucketPolicy;
      return S3Op::kUnknown;
    }
    if (q.Has("cors")) {
      if (method == "GET") return S3Op::kGetBucketCors;
      if (method == "PUT") return S3Op::kPutBucketCors;
      if (method == "DELETE") return S3Op::kDeleteBucketCors;
      return S3Op::kUnknown;
    }
    if (method == "PUT") {
      if (q.Has("acl")) return S3Op::kPutBucketAcl;
      if (q.Has("versioning")) return S3Op::kUnknown;
      return S3Op::kCreateBucket;
    }
    if (method == "DELETE") return S3Op::kDeleteBucket;
    if (method == "HEAD") return S3Op::kHeadBucket;
    if (method == "POST") {
      if (q.Has("delete")) return S3Op::kDeleteObjects;
      // Browser uploads (an HTML form) POST to the bucket itself.
      return q.all().empty() ? S3Op::kPostObject : S3Op::kUnknown;
    }
    if (method == "GET") {
      if (q.Has("location")) return S3Op::kGetBucketLocation;
      if (q.Has("versioning")) return S3Op::kGetBucketVersioning;
      if (q.Has("acl")) return S3Op::kGetBucketAcl;
      if (q.Has("uploads")) return S3Op::kListMultipartUploads;
      if (q.Has("versions")) return S3Op::kListObjectVersions;
      if (q.Get("list-type") == "2") return S3Op::kListObjectsV2;
      return S3Op::kListObjects;
    }
    return S3Op::kUnknown;
  }
  if (q.Has("policy") || q.Has("cors")) return S3Op::kUnknown;  // bucket sub-resources only
  if (method == "PUT") {
    if (q.Has("acl")) return S3Op::kPutObjectAcl;
    if (q.Has("partNumber") || q.Has("uploadId")) {
      return has_copy_source ? S3Op::kUploadPartCopy : S3Op::kUploadPart;
    }
    return has_copy_source ? S3Op::kCopyObject : S3Op::kPutObject;
  }
  if (method == "GET") {
    if (q.Has("acl")) return S3Op::kGetObjectAcl;
    if (q.Has("uploadId")) return S3Op::kListParts;
    return S3Op::kGetObject;
  }
  if (method == "HEAD") return S3Op::kHeadObject;
  if (method == "DELETE") return q.Has("uploadId") ? S3Op::kAbortMultipartUpload : S3Op::kDeleteObject;
  if (method == "POST") {
    if (q.Has("uploads")) return S3Op::kCreateMultipartUpload;
    if (q.Has("uploadId")) return S3Op::kCompleteMultipartUpload;
  }
  return S3Op::kUnknown;
}

RangeResult ParseRange(std::string_view header, uint64_t size, ByteRange* range) {
  header = TrimHttpSpace(header);
  constexpr std::string_view kPrefix = "bytes=";
  if (header.size() < kPrefix.size() || !EqualsIgnoreCase(header.substr(0, kPrefix.size()), kPrefix)) {
    return RangeResult::kNone;
  }
  std::string_view spec = TrimHttpSpace(header.substr(kPrefix.size()));
  if (spec.find(',') != std::string_view::npos) return RangeResult::kNone;  // S3 serves one range only
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeResult::kNone;
  const std::string_view a = TrimHttpSpace(spec.substr(0, dash));
  const std::string_view b = TrimHttpSpace(spec.substr(dash + 1));
  if (a.empty()) {  // suffix: the last b bytes
    auto n = ParseU64(b);
    if (!n) return RangeResult::kNone;
    if (*n == 0 || size == 0) return RangeResult::kUnsatisfiable;
    const uint64_t len = std::min(*n, size);
    *range = ByteRange{size - len, size - 1};
    return RangeResult::kSatisfiable;
  }
  auto first = ParseU64(a);
  if (!first) return RangeResult::kNone;
  uint64_t last = UINT64_MAX;
  if (!b.empty()) {
    auto l = ParseU64(b);
    if (!l || *l < *first) return RangeResult::kNone;  // syntactically invalid: ignored
    last = *l;
  }
  if (*first >= size) return RangeResult::kUnsatisfiable;
  *range = ByteRange{*first, std::min(last, size - 1)};
  return RangeResult::kSatisfiable;
}

std::optional<ByteRange> ParseCopySourceRange(std::string_view header) {
  header = TrimHttpSpace(header);
  constexpr std::string_view kPrefix = "bytes=";
  if (header.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string_view spec = header.substr(kPrefix.size());
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto first = ParseU64(spec.substr(0, dash));
  auto last = ParseU64(spec.substr(dash + 1));
  if (!first || !last || *last < *first) return std::nullopt;
  return ByteRange{*first, *last};
}

std::optional<std::string> MultipartEtag(const std::vector<std::string>& part_etags) {
  std::string concat;
  for (const auto& e : part_etags) {
    crypto::Md5Digest d;
    if (!crypto::HexDecode(StripQuotes(e), d)) return std::nullopt;
    concat.append(reinterpret_cast<const char*>(d.data()), d.size());
  }
  return crypto::HexEncode(crypto::Md5(concat)) + "-" + std::to_string(part_etags.size());
}

bool EtagListMatches(std::string_view list, std::string_view etag) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = TrimHttpSpace(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (item == "*") return true;
    if (item.substr(0, 2) == "W/") item.remove_prefix(2);
    if (StripQuotes(item) == etag) return true;
  }
  return false;
}

ConditionResult EvaluateConditions(const ConditionalHeaders& c, std::string_view etag, int64_t last_modified) {
  if (c.if_match) {
    if (!EtagListMatches(*c.if_match, etag)) return ConditionResult::kPreconditionFailed;
  } else if (c.if_unmodified_since) {
    auto t = ParseHttpDate(TrimHttpSpace(*c.if_unmodified_since));
    if (t && last_modified > *t) return ConditionResult::kPreconditionFailed;
  }
  if (c.if_none_match) {
    if (EtagListMatches(*c.if_none_match, etag)) return ConditionResult::kNotModified;
  } else if (c.if_modified_since) {
    auto t = ParseHttpDate(TrimHttpSpace(*c.if_modified_since));
    if (t && last_modified <= *t) return ConditionResult::kNotModified;
  }
  return ConditionResult::kProceed;
}

namespace {

constexpr const char* kDayNames[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonthNames[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// The UTC calendar fields of `unix_seconds`; all zero (a valid day and month index) when the
// year does not fit the C library's int.
struct tm UtcFields(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  if (gmtime_r(&t, &tm) == nullptr) tm = {};
  return tm;
}

}  // namespace

// Both formats are written field by field rather than with strftime, whose %a and %b follow the
// locale and whose %Y does not pad years below 1000 to the four digits both formats require.
std::string FormatHttpDate(int64_t unix_seconds) {
  const struct tm tm = UtcFields(unix_seconds);
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%s, %02d %s %04lld %02d:%02d:%02d GMT", kDayNames[tm.tm_wday],
                              tm.tm_mday, kMonthNames[tm.tm_mon], static_cast<long long>(tm.tm_year) + 1900,
                              tm.tm_hour, tm.tm_min, tm.tm_sec);
  return std::string(buf, static_cast<size_t>(n));
}

std::string FormatIso8601(int64_t unix_millis) {
  // Floor division: -1 ms is 23:59:59.999 of the day before the epoch, not ".-01" of second 0.
  int64_t seconds = unix_millis / 1000;
  int64_t millis = unix_millis % 1000;
  if (millis < 0) {
    seconds -= 1;
    millis += 1000;
  }
  const struct tm tm = UtcFields(seconds);
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              static_cast<long long>(tm.tm_year) + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                              tm.tm_min, tm.tm_sec, static_cast<int>(millis));
  return std::string(buf, static_cast<size_t>(n));
}

std::optional<IsoInstant> ParseIso8601(std::string_view s) {
  using namespace std::chrono;  // NOLINT: calendar types, local to this function
  // "YYYY-MM-DDTHH:MM:SS", then an optional ".fraction", then 'Z'.
  constexpr size_t kBase = 19;
  if (s.size() < kBase + 1 || s.back() != 'Z') return std::nullopt;
  if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') return std::nullopt;
  const auto digits = [](std::string_view d) -> std::optional<int> {
    if (d.empty() || !std::all_of(d.begin(), d.end(), IsAsciiDigit)) return std::nullopt;
    int v = 0;
    for (char c : d) v = v * 10 + (c - '0');
    return v;
  };
  const auto y = digits(s.substr(0, 4)), mo = digits(s.substr(5, 2)), d = digits(s.substr(8, 2));
  const auto h = digits(s.substr(11, 2)), mi = digits(s.substr(14, 2)), sec = digits(s.substr(17, 2));
  if (!y || !mo || !d || !h || !mi || !sec || *h > 23 || *mi > 59 || *sec > 59) return std::nullopt;
  const year_month_day ymd{year{*y}, month{static_cast<unsigned>(*mo)}, day{static_cast<unsigned>(*d)}};
  if (!ymd.ok()) return std::nullopt;
  int32_t nanos = 0;
  const std::string_view rest = s.substr(kBase, s.size() - kBase - 1);
  if (!rest.empty()) {
    const std::string_view fraction = rest.substr(1);
    if (rest[0] != '.' || fraction.size() > 9) return std::nullopt;
    const auto f = digits(fraction);
    if (!f) return std::nullopt;
    nanos = *f;
    for (size_t i = fraction.size(); i < 9; ++i) nanos *= 10;
  }
  const int64_t days = sys_days(ymd).time_since_epoch().count();
  return IsoInstant{days * 86400 + *h * 3600 + *mi * 60 + *sec, nanos};
}

}  // namespace cairn::gateway
