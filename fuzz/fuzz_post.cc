// Fuzz target: browser POST uploads (gateway/post_object.h).
//
// The input is used four ways:
//   1. As a multipart/form-data body with the boundary "XyZ". It is fed whole, cut at points drawn
//      from a hash of the input (three sets), and byte by byte: the fields, the file events, the
//      file's bytes and the final status are the same every way. A success has one file begun and
//      ended, file bytes free of the delimiter, and fields within the limits. With tight limits the
//      outcome is the same or an InvalidArgument error, and again the same for every split.
//   2. As the contents of a form, split at each 0xFF byte into field values and (the last piece)
//      the file's bytes: the body written from them parses back to exactly those, unless a piece
//      holds the delimiter itself.
//   3. As a Content-Type: a boundary FormBoundary returns is 1 to 70 printable characters and
//      reads back the same from a quoted, escaped spelling.
//   4. As a POST policy, both as the base64 text and as the JSON document (base64-encoded here):
//      failures are InvalidPolicyDocument; a parsed policy has lowercase non-empty field names and
//      ranges with min <= max; a form built to meet every condition passes CheckPostPolicy up to
//      the expiration, not after it, and not with a field no condition names. The policy text,
//      signed with the library's SigV4 blocks, verifies, and not once the signature is altered.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "check.h"
#include "common/crypto.h"
#include "gateway/post_object.h"

namespace cairn::gateway {
namespace {

// check.h's AsciiLower is called as ::AsciiLower: wherever gateway/text.h is included, the
// unqualified name finds cairn::gateway::AsciiLower, the code under test, instead of the oracle.

constexpr std::string_view kBoundary = "XyZ";
constexpr std::string_view kDelimiter = "\r\n--XyZ";
constexpr FormLimits kTightLimits{/*max_field_bytes=*/16, /*max_total_field_bytes=*/64, /*max_fields=*/4,
                                  /*max_part_header_bytes=*/64};
constexpr FormLimits kUnlimited{std::numeric_limits<size_t>::max(), std::numeric_limits<size_t>::max(),
                                std::numeric_limits<size_t>::max(), std::numeric_limits<size_t>::max()};
constexpr size_t kMaxByteByByte = 4096;
constexpr std::string_view kAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

struct Outcome {
  std::vector<std::pair<std::string, std::string>> fields;
  int file_begins = 0;
  std::string filename;
  std::string content_type;
  std::string file;
  int file_ends = 0;
  bool file_seen = false;
  StatusCode code = StatusCode::kOk;
  std::string message;

  bool operator==(const Outcome&) const = default;
};

// Feeds `body` cut at `cuts` (ascending offsets), then finishes.
Outcome Parse(std::string_view body, const std::vector<size_t>& cuts, const FormLimits& limits) {
  Outcome out;
  MultipartFormParser parser(std::string(kBoundary), limits,
                             {
                                 .on_field =
                                     [&](std::string name, std::string value) {
                                       FUZZ_CHECK(out.file_begins == 0);
                                       out.fields.emplace_back(std::move(name), std::move(value));
                                       return Status::OK();
                                     },
                                 .on_file_begin =
                                     [&](std::string_view filename, std::string_view content_type) {
                                       ++out.file_begins;
                                       out.filename = filename;
                                       out.content_type = content_type;
                                       return Status::OK();
                                     },
                                 .on_file_data =
                                     [&](std::span<const std::byte> data) {
                                       FUZZ_CHECK(out.file_begins == 1 && out.file_ends == 0);
                                       out.file.append(reinterpret_cast<const char*>(data.data()), data.size());
                                       return Status::OK();
                                     },
                                 .on_file_end =
                                     [&] {
                                       FUZZ_CHECK(out.file_begins == 1);
                                       ++out.file_ends;
                                       return Status::OK();
                                     },
                             });
  Status status;
  size_t start = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : body.size();
    status = parser.Feed(crypto::AsBytes(body.substr(start, end - start)));
    if (!status.ok()) {
      // Sticky: later calls give the same error.
      const Status again = parser.Feed(crypto::AsBytes(body.substr(end)));
      FUZZ_CHECK(again.code() == status.code() && again.message() == status.message());
      break;
    }
    start = end;
  }
  if (status.ok()) status = parser.Finish();
  out.code = status.code();
  out.message = status.message();
  out.file_seen = parser.file_seen();
  return out;
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

uint64_t SplitMix(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<size_t> RandomCuts(size_t size, uint64_t* state) {
  std::vector<size_t> cuts;
  const size_t n = SplitMix(state) % 9;
  for (size_t i = 0; i < n; ++i) cuts.push_back(size == 0 ? 0 : SplitMix(state) % (size + 1));
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

void CheckSplitInvariant(std::string_view body, const FormLimits& limits, uint64_t seed, Outcome* whole_out) {
  const Outcome whole = Parse(body, {}, limits);
  for (int round = 0; round < 3; ++round) FUZZ_CHECK(Parse(body, RandomCuts(body.size(), &seed), limits) == whole);
  if (body.size() <= kMaxByteByByte) {
    std::vector<size_t> every;
    for (size_t i = 1; i < body.size(); ++i) every.push_back(i);
    FUZZ_CHECK(Parse(body, every, limits) == whole);
  }
  *whole_out = whole;
}

void CheckOutcome(const Outcome& o, const FormLimits& limits) {
  FUZZ_CHECK(o.file_begins <= 1 && o.file_ends <= o.file_begins);
  FUZZ_CHECK(o.file_seen == (o.file_begins == 1));
  FUZZ_CHECK(o.fields.size() <= limits.max_fields);
  size_t total = 0;
  for (const auto& [name, value] : o.fields) {
    FUZZ_CHECK(!name.empty());
    FUZZ_CHECK(value.size() <= limits.max_field_bytes);
    total += name.size() + value.size();
  }
  FUZZ_CHECK(total <= limits.max_total_field_bytes);
  if (o.code == StatusCode::kOk) {
    FUZZ_CHECK(o.file_begins == 1 && o.file_ends == 1);
    FUZZ_CHECK(o.file.find(kDelimiter) == std::string::npos);
  } else {
    // The callbacks here never fail, so every error is the parser's own.
    FUZZ_CHECK(o.code == StatusCode::kInvalidArgument);
  }
}

void CheckBody(std::string_view body) {
  const uint64_t seed = Fnv1a(body);
  Outcome normal;
  CheckSplitInvariant(body, FormLimits{}, seed, &normal);
  CheckOutcome(normal, FormLimits{});
  Outcome tight;
  CheckSplitInvariant(body, kTightLimits, seed + 1, &tight);
  CheckOutcome(tight, kTightLimits);
  if (tight.code == StatusCode::kOk) FUZZ_CHECK(tight == normal);
}

void CheckRoundTrip(std::string_view in) {
  std::vector<std::string_view> pieces;
  while (true) {
    const size_t cut = in.find('\xFF');
    pieces.push_back(in.substr(0, cut));
    if (cut == std::string_view::npos) break;
    in.remove_prefix(cut + 1);
  }
  const bool clean = std::none_of(pieces.begin(), pieces.end(),
                                  [](std::string_view p) { return p.find(kDelimiter) != std::string_view::npos; });
  std::string body = "preamble\r\n";
  std::vector<std::pair<std::string, std::string>> fields;
  for (size_t i = 0; i + 1 < pieces.size(); ++i) {
    fields.emplace_back("f" + std::to_string(i), std::string(pieces[i]));
    body += "--" + std::string(kBoundary) + "\r\nContent-Disposition: form-data; name=\"" + fields.back().first +
            "\"\r\n\r\n" + std::string(pieces[i]) + "\r\n";
  }
  body += "--" + std::string(kBoundary) +
          " \r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\\\"b\"\r\nContent-Type: x/y\r\n\r\n" +
          std::string(pieces.back()) + "\r\n--" + std::string(kBoundary) + "--";
  const Outcome o = Parse(body, {}, kUnlimited);
  if (!clean) return;
  FUZZ_CHECK(o.code == StatusCode::kOk);
  FUZZ_CHECK(o.fields == fields);
  FUZZ_CHECK(o.filename == "a\"b" && o.content_type == "x/y");
  FUZZ_CHECK(o.file == pieces.back());
}

void CheckBoundary(std::string_view content_type) {
  const Result<std::string> b = FormBoundary(content_type);
  if (!b.ok()) {
    FUZZ_CHECK(b.status().IsInvalidArgument());
    return;
  }
  FUZZ_CHECK(!b->empty() && b->size() <= 70);
  FUZZ_CHECK(std::all_of(b->begin(), b->end(), [](char c) { return c >= ' ' && c <= '~'; }));
  std::string quoted = "multipart/form-data; boundary=\"";
  for (char c : *b) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  const Result<std::string> again = FormBoundary(quoted);
  FUZZ_CHECK(again.ok() && *again == *b);
}

bool StartsOrEndsWithSpace(std::string_view s) {
  return !s.empty() && (s.front() == ' ' || s.front() == '\t' || s.back() == ' ' || s.back() == '\t');
}

void CheckPolicy(const Result<PostPolicy>& parsed) {
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().IsInvalidPolicyDocument());
    return;
  }
  const PostPolicy& policy = *parsed;
  std::optional<std::pair<uint64_t, uint64_t>> last_range;
  std::map<std::string, std::string> fields;
  bool satisfiable = true;
  for (const PostPolicyCondition& c : policy.conditions) {
    if (c.kind == PostPolicyCondition::Kind::kContentLengthRange) {
      FUZZ_CHECK(c.field.empty() && c.min <= c.max);
      last_range.emplace(c.min, c.max);
      continue;
    }
    FUZZ_CHECK(!c.field.empty() && c.field == ::AsciiLower(c.field));
    // One condition per field, and Content-Type prefixes that survive the comma split, make a
    // form that meets every condition easy to write down.
    if (fields.count(c.field) != 0) satisfiable = false;
    if (c.kind == PostPolicyCondition::Kind::kStartsWith && c.field == "content-type" &&
        (c.value.find(',') != std::string::npos || StartsOrEndsWithSpace(c.value))) {
      satisfiable = false;
    }
    fields[c.field] = c.value;
  }
  FUZZ_CHECK(ContentLengthRange(policy) == last_range);
  if (!satisfiable) return;
  FUZZ_CHECK(CheckPostPolicy(policy, fields, policy.expiration_unix_ms).ok());
  const Status expired = CheckPostPolicy(policy, fields, policy.expiration_unix_ms + 1);
  FUZZ_CHECK(expired.IsAccessDenied() && expired.message() == "Invalid according to Policy: Policy expired.");
  constexpr std::string_view kExtra = "zz-extra-field";
  if (fields.count(std::string(kExtra)) == 0) {
    fields[std::string(kExtra)] = "1";
    const Status extra = CheckPostPolicy(policy, fields, policy.expiration_unix_ms);
    FUZZ_CHECK(extra.IsAccessDenied() &&
               extra.message() == "Invalid according to Policy: Extra input fields: " + std::string(kExtra));
  }
}

void CheckSignature(const std::string& policy_text) {
  const SecretLookup lookup = [](std::string_view key) -> std::optional<std::string> {
    if (key == kAccessKey) return std::string(kSecret);
    return std::nullopt;
  };
  std::map<std::string, std::string> fields = {
      {"policy", policy_text},
      {"x-amz-algorithm", "AWS4-HMAC-SHA256"},
      {"x-amz-credential", std::string(kAccessKey) + "/20151229/us-east-1/s3/aws4_request"},
      {"x-amz-date", "20151229T000000Z"},
      {"x-amz-signature", ComputeSignature(DeriveSigningKey(kSecret, "20151229", "us-east-1", "s3"), policy_text)},
  };
  const Result<PostSignature> ok = VerifyPostSignature(fields, lookup, "us-east-1");
  FUZZ_CHECK(ok.ok() && ok->access_key == kAccessKey);
  char& first = fields["x-amz-signature"][0];
  first = first == '0' ? '1' : '0';
  FUZZ_CHECK(VerifyPostSignature(fields, lookup, "us-east-1").status().IsSignatureDoesNotMatch());
}

}  // namespace
}  // namespace cairn::gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace gw = cairn::gateway;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  gw::CheckBody(in);
  gw::CheckRoundTrip(in);
  gw::CheckBoundary(in);
  gw::CheckPolicy(gw::ParsePostPolicy(in));
  const std::string encoded = cairn::crypto::Base64Encode(std::span(data, size));
  gw::CheckPolicy(gw::ParsePostPolicy(encoded));
  gw::CheckSignature(encoded);
  return 0;
}
