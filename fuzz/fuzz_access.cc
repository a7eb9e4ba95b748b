// Fuzz target: the access-control documents a bucket owner sends (gateway/policy.h, acl.h,
// cors.h) and the decision that uses them (gateway/access.h).
//
// The input is used as:
//   1. A bucket policy. Parse either refuses it or returns a policy whose evaluation never
//      crashes, for a few principals, actions, resources and condition contexts derived from the
//      input; a policy that parses is also accepted by a second Parse (deterministic), and the
//      decision for root through Authorize is always allow.
//   2. An AccessControlPolicy body. A parsed ACL has the given owner, only known grantees
//      (checked by the callback), and survives AclToXml -> AclFromXml unchanged.
//   3. A CORS configuration. A parsed one has 1 to 100 rules, each with an origin and a method
//      from S3's five, and CorsXml -> ParseCorsConfiguration gives it back; matching it against an
//      origin and method from the input never crashes, and a rule that matches a preflight also
//      matches the same actual request.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "gateway/access.h"
#include "gateway/acl.h"
#include "gateway/cors.h"
#include "gateway/policy.h"

namespace cairn::gateway {
namespace {

constexpr std::string_view kOwner = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// A short string cut from the input at `at` (wrapping), for request fields.
std::string Slice(std::string_view in, size_t at, size_t n) {
  if (in.empty()) return {};
  std::string out;
  for (size_t i = 0; i < n; ++i) out.push_back(in[(at + i) % in.size()]);
  return out;
}

void FuzzPolicy(std::string_view in) {
  auto policy = BucketPolicy::Parse(in, "bucket");
  if (!policy.ok()) return;
  FUZZ_CHECK(BucketPolicy::Parse(in, "bucket").ok());
  static constexpr std::string_view kActions[] = {"s3:GetObject", "s3:PutObject", "s3:ListBucket",
                                                  "s3:DeleteObject", "s3:PutBucketPolicy"};
  for (size_t i = 0; i < 8; ++i) {
    PolicyRequest r;
    r.action = std::string(kActions[i % 5]);
    r.resource = i % 2 == 0 ? "arn:aws:s3:::bucket" : "arn:aws:s3:::bucket/" + Slice(in, i * 7, 6);
    r.anonymous = i % 3 == 0;
    if (!r.anonymous) {
      r.user_name = Slice(in, i * 3, 4);
      r.canonical_id = std::string(kOwner);
    }
    r.context["aws:sourceip"] = i % 2 == 0 ? "127.0.0.1" : "::1";
    r.context["aws:securetransport"] = "false";
    r.context["s3:prefix"] = Slice(in, i, 5);
    r.context["aws:currenttime"] = "2026-11-22T10:00:00Z";
    if (i % 4 == 1) r.context[Slice(in, i * 11, 8)] = Slice(in, i * 13, 8);
    (void)policy->Evaluate(r);
  }
  meta::BucketInfo b;
  b.name = "bucket";
  b.owner = std::string(kOwner);
  AccessRequest ar;
  ar.op = S3Op::kGetObject;
  ar.bucket = "bucket";
  ar.key = "k";
  ar.bucket_info = &b;
  ar.policy = &*policy;
  FUZZ_CHECK(Authorize(Principal{false, true, "root", "r"}, ar).allowed);
}

void FuzzAcl(std::string_view in) {
  auto known = [](std::string_view id) { return id == kOwner || id == "user-b"; };
  auto acl = AclFromXml(in, kOwner, known);
  if (!acl.ok()) return;
  FUZZ_CHECK(acl->owner == kOwner);
  for (const meta::Grant& g : acl->grants) {
    if (g.type == meta::GranteeType::kCanonicalUser) FUZZ_CHECK(known(g.grantee));
  }
  const std::string xml = AclToXml(*acl, [](std::string_view id) { return std::string(id.substr(0, 4)); });
  auto back = AclFromXml(xml, kOwner, known);
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(*back == *acl);
}

void FuzzCors(std::string_view in) {
  auto config = ParseCorsConfiguration(in);
  if (!config.ok()) return;
  FUZZ_CHECK(!config->rules.empty() && config->rules.size() <= 100);
  for (const CorsRule& rule : config->rules) {
    FUZZ_CHECK(!rule.allowed_origins.empty() && !rule.allowed_methods.empty());
    for (const std::string& m : rule.allowed_methods) {
      FUZZ_CHECK(m == "GET" || m == "PUT" || m == "HEAD" || m == "POST" || m == "DELETE");
    }
  }
  auto back = ParseCorsConfiguration(CorsXml(*config));
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(*back == *config);
  for (size_t i = 0; i < 4; ++i) {
    CorsRequest req;
    req.origin = i == 0 ? config->rules[0].allowed_origins[0] : Slice(in, i * 5, 12);
    req.method = config->rules[i % config->rules.size()].allowed_methods[0];
    req.preflight = true;
    req.request_headers = {Slice(in, i * 3, 4)};
    const CorsRule* pre = MatchCors(*config, req);
    if (pre != nullptr) {
      (void)CorsResponseHeaders(*pre, req);
      CorsRequest actual = req;
      actual.preflight = false;
      actual.request_headers.clear();
      FUZZ_CHECK(MatchCors(*config, actual) != nullptr);
    }
  }
}

}  // namespace
}  // namespace cairn::gateway

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  cairn::gateway::FuzzPolicy(in);
  cairn::gateway::FuzzAcl(in);
  cairn::gateway::FuzzCors(in);
  return 0;
}
