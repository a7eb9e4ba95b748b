// Tests for bucket policies: the AWS documentation examples, every way a policy can be
// malformed, statement evaluation (Deny over Allow, the Not* forms, wildcards), every condition
// operator with the key present, absent and under IfExists, and the wildcard matcher against a
// brute-force reference.
#include "gateway/policy.h"

#include <gmock/gmock.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "gateway/text.h"
#include "test_util.h"

namespace cairn::gateway {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kBucket = "b";
constexpr std::string_view kObjectArn = "arn:aws:s3:::b/photos/cat.jpg";
constexpr std::string_view kBucketArn = "arn:aws:s3:::b";
constexpr std::string_view kAliceCanonicalId = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be";

// A policy document holding the given statement bodies (each the inside of a JSON object).
std::string Policy(std::initializer_list<std::string_view> statements) {
  std::string out = R"({"Version":"2012-10-17","Statement":[)";
  bool first = true;
  for (const std::string_view s : statements) {
    if (!first) out += ",";
    first = false;
    out += "{";
    out += s;
    out += "}";
  }
  return out + "]}";
}

// An Allow of s3:GetObject on every object of the bucket to everyone, under `condition` (JSON).
std::string AllowGetIf(std::string_view condition) {
  return Policy({std::string(R"("Effect":"Allow","Principal":"*","Action":"s3:GetObject",)") +
                 R"("Resource":"arn:aws:s3:::b/*","Condition":)" + std::string(condition)});
}

BucketPolicy MustParse(std::string_view json) {
  auto policy = BucketPolicy::Parse(json, kBucket);
  if (!policy.ok()) {
    ADD_FAILURE() << json << " -> " << policy.status();
    // A policy that applies to nobody, so that the test goes on to report its other failures.
    policy = BucketPolicy::Parse(R"({"Statement":{"Effect":"Allow","NotPrincipal":"*","Action":"*","Resource":"*"}})",
                                 kBucket);
  }
  return std::move(*policy);
}

// The message of the InvalidArgument that parsing `json` must fail with.
std::string ParseError(std::string_view json) {
  auto policy = BucketPolicy::Parse(json, kBucket);
  EXPECT_FALSE(policy.ok()) << json;
  if (policy.ok()) return "";
  EXPECT_TRUE(policy.status().IsInvalidArgument()) << policy.status();
  return policy.status().message();
}

PolicyRequest Anonymous(std::string_view action, std::string_view resource = kObjectArn) {
  PolicyRequest r;
  r.action = action;
  r.resource = resource;
  return r;
}

PolicyRequest User(std::string_view name, std::string_view action, std::string_view resource = kObjectArn) {
  PolicyRequest r = Anonymous(action, resource);
  r.anonymous = false;
  r.user_name = name;
  r.canonical_id = name == "alice" ? kAliceCanonicalId : std::string(64, '0');
  return r;
}

// The decision of AllowGetIf(condition) for an anonymous GetObject with `context`.
PolicyDecision DecideWith(std::string_view condition, std::map<std::string, std::string> context) {
  const BucketPolicy policy = MustParse(AllowGetIf(condition));
  PolicyRequest request = Anonymous("s3:GetObject");
  request.context = std::move(context);
  return policy.Evaluate(request);
}

// True when the condition holds for `context` (the Allow applies).
bool Holds(std::string_view condition, std::map<std::string, std::string> context) {
  return DecideWith(condition, std::move(context)) == PolicyDecision::kAllow;
}

constexpr PolicyDecision kAllow = PolicyDecision::kAllow;
constexpr PolicyDecision kDeny = PolicyDecision::kDeny;
constexpr PolicyDecision kNone = PolicyDecision::kNone;

// ---- Valid policies --------------------------------------------------------------------------

TEST(PolicyParseTest, PublicReadExampleFromTheAwsDocumentation) {
  const BucketPolicy policy =
      MustParse(R"({"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*",)"
                R"("Action":["s3:GetObject"],"Resource":["arn:aws:s3:::b/*"]}]})");
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject")), kAllow);
  EXPECT_EQ(policy.Evaluate(User("alice", "s3:GetObject")), kAllow);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:PutObject")), kNone);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject", kBucketArn)), kNone);  // b/* is not the bucket
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:ListBucket", kBucketArn)), kNone);
}

TEST(PolicyParseTest, DenyInsecureTransportExample) {
  const BucketPolicy policy = MustParse(
      R"({"Version":"2012-10-17","Statement":[{"Sid":"AllowSSLRequestsOnly","Action":"s3:*","Effect":"Deny",)"
      R"("Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}},)"
      R"("Principal":"*"}]})");
  PolicyRequest http = User("alice", "s3:PutObject");
  http.context["aws:securetransport"] = "false";
  EXPECT_EQ(policy.Evaluate(http), kDeny);
  http.resource = kBucketArn;
  EXPECT_EQ(policy.Evaluate(http), kDeny);
  PolicyRequest https = User("alice", "s3:PutObject");
  https.context["aws:securetransport"] = "true";
  EXPECT_EQ(policy.Evaluate(https), kNone);
}

TEST(PolicyParseTest, IpRestrictionExample) {
  const BucketPolicy policy = MustParse(R"({
    "Version": "2012-10-17",
    "Id": "S3PolicyId1",
    "Statement": [
      {
        "Sid": "IPAllow",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
        "Condition": {"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}}
      }
    ]
  })");
  PolicyRequest inside = Anonymous("s3:GetObject");
  inside.context["aws:sourceip"] = "192.0.2.77";
  EXPECT_EQ(policy.Evaluate(inside), kNone);
  PolicyRequest outside = Anonymous("s3:GetObject");
  outside.context["aws:sourceip"] = "203.0.113.9";
  EXPECT_EQ(policy.Evaluate(outside), kDeny);
}

TEST(PolicyParseTest, StatementMayBeASingleObjectAndVersionAndSidAreOptional) {
  const BucketPolicy policy = MustParse(
      R"({"Statement":{"Effect":"Allow","Principal":{"AWS":"alice"},"Action":"s3:GetObject","Resource":"*"}})");
  EXPECT_EQ(policy.Evaluate(User("alice", "s3:GetObject")), kAllow);
  EXPECT_EQ(policy.Evaluate(User("bob", "s3:GetObject")), kNone);
}

TEST(PolicyParseTest, AcceptsBothVersions) {
  for (const std::string_view version : {"2012-10-17", "2008-10-17"}) {
    const std::string json = std::string(R"({"Version":")") + std::string(version) +
                             R"(","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]})";
    EXPECT_OK(BucketPolicy::Parse(json, kBucket));
  }
}

TEST(PolicyParseTest, AcceptsAPolicyOfExactlyTheSizeLimit) {
  std::string json = Policy({R"("Effect":"Allow","Principal":"*","Action":"*","Resource":"*")"});
  json.append(kMaxBucketPolicyBytes - json.size(), ' ');
  EXPECT_OK(BucketPolicy::Parse(json, kBucket));
}

TEST(PolicyParseTest, ResourcesMayUseWildcardsThatMatchTheBucket) {
  for (const std::string_view resource :
       {"*", "arn:aws:s3:::*", "arn:aws:s3:::b*", "arn:aws:s3:::?/*", "arn:aws:s3:::b/", "arn:aws:s3:::b/a/b/c"}) {
    const std::string json = Policy(
        {std::string(R"("Effect":"Allow","Principal":"*","Action":"*","Resource":")") + std::string(resource) + "\""});
    EXPECT_OK(BucketPolicy::Parse(json, kBucket));
  }
}

TEST(PolicyParseTest, PolicyMayBeMovedAndStillEvaluates) {
  BucketPolicy first = MustParse(Policy({R"("Effect":"Allow","Principal":"*","Action":"*","Resource":"*")"}));
  BucketPolicy second = std::move(first);
  EXPECT_EQ(second.Evaluate(Anonymous("s3:GetObject")), kAllow);
  first = std::move(second);
  EXPECT_EQ(first.Evaluate(Anonymous("s3:GetObject")), kAllow);
}

// ---- Malformed policies: one test per rule ---------------------------------------------------

TEST(PolicyMalformedTest, NotJson) {
  for (const std::string_view json : {"", "{", "[1,2", "{\"Statement\":}", "nope", "{} trailing", "{'a':1}"}) {
    EXPECT_THAT(ParseError(json), HasSubstr("not valid JSON")) << json;
  }
}

TEST(PolicyMalformedTest, DeepNestingAndInvalidUtf8FailCleanly) {
  const size_t depth = kMaxBucketPolicyBytes / 2;
  EXPECT_THAT(ParseError(std::string(depth, '[') + std::string(depth, ']')), HasSubstr("must be a JSON object"));
  std::string objects;
  for (size_t i = 0; i < kMaxBucketPolicyBytes / 8; ++i) objects += R"({"a":)";
  objects += "1" + std::string(kMaxBucketPolicyBytes / 8, '}');
  EXPECT_THAT(ParseError(objects), HasSubstr("Unknown field in policy: a"));
  EXPECT_THAT(ParseError("{\"Id\":\"\xC3\"}"), HasSubstr("not valid JSON"));
}

TEST(PolicyMalformedTest, LargerThanTheLimit) {
  std::string json = Policy({R"("Effect":"Allow","Principal":"*","Action":"*","Resource":"*")"});
  json.append(kMaxBucketPolicyBytes + 1 - json.size(), ' ');
  EXPECT_THAT(ParseError(json), HasSubstr("larger than the limit"));
}

TEST(PolicyMalformedTest, NotAnObject) {
  EXPECT_THAT(ParseError("[]"), HasSubstr("must be a JSON object"));
  EXPECT_THAT(ParseError("\"policy\""), HasSubstr("must be a JSON object"));
}

TEST(PolicyMalformedTest, DuplicateField) {
  EXPECT_THAT(ParseError(R"({"Version":"2012-10-17","Version":"2012-10-17","Statement":[]})"),
              HasSubstr("duplicate field: Version"));
  EXPECT_THAT(ParseError(Policy({R"("Effect":"Allow","Effect":"Deny","Principal":"*","Action":"*","Resource":"*")"})),
              HasSubstr("duplicate field: Effect"));
}

TEST(PolicyMalformedTest, MissingStatement) {
  EXPECT_THAT(ParseError(R"({"Version":"2012-10-17"})"), HasSubstr("Missing required field Statement"));
}

TEST(PolicyMalformedTest, EmptyStatementArray) {
  EXPECT_THAT(ParseError(R"({"Version":"2012-10-17","Statement":[]})"), HasSubstr("Statement is empty"));
}

TEST(PolicyMalformedTest, StatementNotAnObject) {
  EXPECT_THAT(ParseError(R"({"Statement":["Allow"]})"), HasSubstr("Statement must be an object"));
  EXPECT_THAT(ParseError(R"({"Statement":"Allow"})"), HasSubstr("Statement must be an object"));
}

TEST(PolicyMalformedTest, MissingEffect) {
  EXPECT_THAT(ParseError(Policy({R"("Principal":"*","Action":"*","Resource":"*")"})),
              HasSubstr("Missing required field Effect"));
}

TEST(PolicyMalformedTest, InvalidEffect) {
  for (const std::string_view effect : {R"("allow")", R"("Permit")", "true", R"(["Allow"])"}) {
    const std::string body =
        std::string(R"("Effect":)") + std::string(effect) + R"(,"Principal":"*","Action":"*","Resource":"*")";
    EXPECT_THAT(ParseError(Policy({body})), HasSubstr("Invalid effect")) << effect;
  }
}

TEST(PolicyMalformedTest, MissingPrincipal) {
  EXPECT_THAT(ParseError(Policy({R"("Effect":"Allow","Action":"*","Resource":"*")"})),
              HasSubstr("Missing required field Principal"));
}

TEST(PolicyMalformedTest, BothPrincipalAndNotPrincipal) {
  EXPECT_THAT(
      ParseError(Policy({R"("Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"*","Resource":"*")"})),
      HasSubstr("both Principal and NotPrincipal"));
}

TEST(PolicyMalformedTest, InvalidPrincipal) {
  for (const std::string_view principal : {
           R"("alice")",
           R"({})",
           R"([])",
           R"({"AWS":[]})",
           R"({"AWS":""})",
           R"({"AWS":"al*"})",
           R"({"AWS":7})",
           R"({"AWS":"arn:aws:iam::123456789012:role/admin"})",
           R"({"AWS":"arn:aws:iam::123456789012:root"})",
           R"({"AWS":"arn:aws:iam::123456789012:user/"})",
           R"({"AWS":"arn:aws:sts::123456789012:assumed-role/x"})",
           R"({"CanonicalUser":"abc"})",
           R"({"CanonicalUser":"*"})",
           R"({"Service":"logging.s3.amazonaws.com"})",
       }) {
    const std::string body =
        std::string(R"("Effect":"Allow","Principal":)") + std::string(principal) + R"(,"Action":"*","Resource":"*")";
    EXPECT_THAT(ParseError(Policy({body})), ::testing::AnyOf(HasSubstr("principal"), HasSubstr("Principal")))
        << principal;
  }
}

TEST(PolicyMalformedTest, MissingAction) {
  EXPECT_THAT(ParseError(Policy({R"("Effect":"Allow","Principal":"*","Resource":"*")"})),
              HasSubstr("Missing required field Action"));
}

TEST(PolicyMalformedTest, BothActionAndNotAction) {
  EXPECT_THAT(ParseError(Policy({R"("Effect":"Allow","Principal":"*","Action":"*","NotAction":"*","Resource":"*")"})),
              HasSubstr("both Action and NotAction"));
}

TEST(PolicyMalformedTest, InvalidAction) {
  for (const std::string_view action :
       {"GetObject", "iam:CreateUser", "s3:", "", "s3:Get Object", "s3*", "ec2:*", "**"}) {
    const std::string body =
        std::string(R"("Effect":"Allow","Principal":"*","Action":")") + std::string(action) + R"(","Resource":"*")";
    EXPECT_THAT(ParseError(Policy({body})), HasSubstr("Policy has invalid action")) << action;
  }
  EXPECT_THAT(ParseError(Policy({R"("Effect":"Allow","Principal":"*","Action":[],"Resource":"*")"})),
              HasSubstr("Action must be a string or a non-empty array"));
  EXPECT_THAT(ParseError(Policy({R"("Effect":"Allow","Principal":"*","Action":["s3:GetObject",1],"Resource":"*")"})),
              HasSubstr("Action must be a string or a non-empty array"));
}

TEST(PolicyMalformedTest, MissingResource) {
  EXPECT_THAT(ParseError(Policy({R"("Effect":"Allow","Principal":"*","Action":"*")"})),
              HasSubstr("Missing required field Resource"));
}

TEST(PolicyMalformedTest, BothResourceAndNotResource) {
  EXPECT_THAT(ParseError(Policy({R"("Effect":"Allow","Principal":"*","Action":"*","Resource":"*","NotResource":"*")"})),
              HasSubstr("both Resource and NotResource"));
}

TEST(PolicyMalformedTest, InvalidResource) {
  for (const std::string_view resource : {
           "arn:aws:s3:::other/*",
           "arn:aws:s3:::other",
           "arn:aws:s3:::bb/*",
           "arn:aws:s3:::",
           "arn:aws:s3:::/key",
           "arn:aws:s3:::c*",
           "ARN:AWS:S3:::b/*",
           "arn:aws:iam::123:user/b",
           "b/*",
           "",
       }) {
    const std::string body =
        std::string(R"("Effect":"Allow","Principal":"*","Action":"*","Resource":")") + std::string(resource) + "\"";
    EXPECT_THAT(ParseError(Policy({body})), HasSubstr("Policy has invalid resource")) << resource;
  }
}

TEST(PolicyMalformedTest, UnknownConditionOperator) {
  EXPECT_THAT(ParseError(AllowGetIf(R"({"StringEqualz":{"aws:username":"alice"}})")),
              HasSubstr("Unknown condition operator: StringEqualz"));
}

TEST(PolicyMalformedTest, ConditionOperatorNamesAreCaseSensitive) {
  for (const std::string_view op : {"stringequals", "STRINGEQUALS", "StringEqualsifexists", "bool", "ipaddress"}) {
    const std::string condition = "{\"" + std::string(op) + R"(":{"aws:username":"true"}})";
    EXPECT_THAT(ParseError(AllowGetIf(condition)), HasSubstr("Unknown condition operator: " + std::string(op)));
  }
}

TEST(PolicyMalformedTest, OperatorsOutsideTheSupportedSet) {
  for (const std::string_view op :
       {"NullIfExists", "ForAnyValue:StringEquals", "ArnLike", "BinaryEquals", "IfExists"}) {
    const std::string condition = "{\"" + std::string(op) + R"(":{"aws:username":"true"}})";
    EXPECT_THAT(ParseError(AllowGetIf(condition)), HasSubstr("Unknown condition operator")) << op;
  }
}

TEST(PolicyMalformedTest, ConditionOfTheWrongShape) {
  EXPECT_THAT(ParseError(AllowGetIf(R"("StringEquals")")), HasSubstr("Condition must be an object"));
  EXPECT_THAT(ParseError(AllowGetIf(R"({"StringEquals":"alice"})")), HasSubstr("must map condition keys"));
  EXPECT_THAT(ParseError(AllowGetIf(R"({"StringEquals":{}})")), HasSubstr("must map condition keys"));
  EXPECT_THAT(ParseError(AllowGetIf(R"({"StringEquals":{"aws:username":[]}})")), HasSubstr("has no values"));
}

TEST(PolicyMalformedTest, ConditionValueOfTheWrongType) {
  for (const std::string_view value : {"null", R"({"a":"b"})", R"([["alice"]])", R"(["alice",null])"}) {
    const std::string condition = R"({"StringEquals":{"aws:username":)" + std::string(value) + "}}";
    EXPECT_THAT(ParseError(AllowGetIf(condition)), HasSubstr("Invalid Condition value")) << value;
  }
}

TEST(PolicyMalformedTest, ConditionValueTheOperatorCannotRead) {
  for (const std::string_view condition : {
           R"({"NumericLessThan":{"s3:max-keys":"ten"}})",
           R"({"NumericLessThan":{"s3:max-keys":"10 "}})",
           R"({"NumericEquals":{"s3:max-keys":"nan"}})",
           R"({"NumericEquals":{"s3:max-keys":true}})",
           R"({"DateLessThan":{"aws:CurrentTime":"tomorrow"}})",
           R"({"DateLessThan":{"aws:CurrentTime":"2026-02-30T00:00:00Z"}})",
           R"({"DateLessThan":{"aws:CurrentTime":"2026-01-01T24:00:00Z"}})",
           R"({"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00"}})",
           R"({"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00.Z"}})",
           R"({"Bool":{"aws:SecureTransport":"yes"}})",
           R"({"Bool":{"aws:SecureTransport":1}})",
           R"({"Null":{"s3:prefix":"maybe"}})",
       }) {
    EXPECT_THAT(ParseError(AllowGetIf(condition)), HasSubstr("Invalid Condition value")) << condition;
  }
}

TEST(PolicyMalformedTest, InvalidCidr) {
  for (const std::string_view cidr :
       {"10.0.0.0/33", "300.1.1.1", "10.0.0", "::1/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/0008",
        "abc", "", " 10.0.0.1", "fe80::1%eth0", "::ffff:10.0.0.0/64"}) {
    const std::string condition = R"({"IpAddress":{"aws:SourceIp":")" + std::string(cidr) + "\"}}";
    EXPECT_THAT(ParseError(AllowGetIf(condition)), HasSubstr("is not an IPv4 or IPv6 address or CIDR")) << cidr;
  }
}

TEST(PolicyMalformedTest, UnknownVersion) {
  for (const std::string_view version : {R"("2010-01-01")", R"("2012-10-17 ")", "20121017", "null"}) {
    const std::string json = R"({"Version":)" + std::string(version) +
                             R"(,"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]})";
    EXPECT_THAT(ParseError(json), HasSubstr("Invalid policy Version")) << version;
  }
}

TEST(PolicyMalformedTest, UnknownTopLevelField) {
  EXPECT_THAT(ParseError(R"({"Version":"2012-10-17","Statements":[],"Statement":[{"Effect":"Allow","Principal":"*",)"
                         R"("Action":"*","Resource":"*"}]})"),
              HasSubstr("Unknown field in policy: Statements"));
  EXPECT_THAT(ParseError(R"({"Id":7,"Statement":[]})"), HasSubstr("Id must be a string"));
}

TEST(PolicyMalformedTest, UnknownStatementField) {
  EXPECT_THAT(ParseError(Policy({R"("Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Conditions":{})"})),
              HasSubstr("Unknown field in statement: Conditions"));
}

TEST(PolicyMalformedTest, SidMustBeAString) {
  EXPECT_THAT(ParseError(Policy({R"("Sid":1,"Effect":"Allow","Principal":"*","Action":"*","Resource":"*")"})),
              HasSubstr("Sid must be a string"));
}

TEST(PolicyMalformedTest, ErrorsNameTheStatement) {
  const std::string json = Policy({R"("Effect":"Allow","Principal":"*","Action":"*","Resource":"*")",
                                   R"("Sid":"Second","Effect":"Allow","Principal":"*","Action":"*")"});
  EXPECT_EQ(ParseError(json), "Missing required field Resource (statement 2, Sid \"Second\")");
}

// ---- Evaluation ------------------------------------------------------------------------------

TEST(PolicyEvaluateTest, DenyBeatsAllowInEitherOrder) {
  constexpr std::string_view kAllowAll = R"("Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*")";
  constexpr std::string_view kDenyDelete =
      R"("Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/*")";
  for (const std::string& json : {Policy({kAllowAll, kDenyDelete}), Policy({kDenyDelete, kAllowAll})}) {
    const BucketPolicy policy = MustParse(json);
    EXPECT_EQ(policy.Evaluate(Anonymous("s3:DeleteObject")), kDeny);
    EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject")), kAllow);
  }
}

TEST(PolicyEvaluateTest, NoApplicableStatementIsNone) {
  const BucketPolicy policy =
      MustParse(Policy({R"("Effect":"Deny","Principal":{"AWS":"bob"},"Action":"*","Resource":"*")"}));
  EXPECT_EQ(policy.Evaluate(User("alice", "s3:GetObject")), kNone);
  EXPECT_EQ(policy.Evaluate(User("bob", "s3:GetObject")), kDeny);
}

TEST(PolicyEvaluateTest, NotActionMatchesEveryOtherAction) {
  const BucketPolicy policy =
      MustParse(Policy({R"("Effect":"Allow","Principal":"*","NotAction":["s3:Delete*","s3:Put*"],"Resource":"*")"}));
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject")), kAllow);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:PutObject")), kNone);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:DeleteObjectVersion")), kNone);
}

TEST(PolicyEvaluateTest, NotResourceMatchesEveryOtherResource) {
  const BucketPolicy policy = MustParse(
      Policy({R"("Effect":"Deny","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::b/public/*")"}));
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject", "arn:aws:s3:::b/public/x")), kNone);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject", "arn:aws:s3:::b/private/x")), kDeny);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject", kBucketArn)), kDeny);
}

TEST(PolicyEvaluateTest, NotPrincipalMatchesEveryoneElseIncludingAnonymous) {
  const BucketPolicy policy =
      MustParse(Policy({R"("Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/alice"]},)"
                        R"("Action":"*","Resource":"*")"}));
  EXPECT_EQ(policy.Evaluate(User("alice", "s3:GetObject")), kNone);
  EXPECT_EQ(policy.Evaluate(User("bob", "s3:GetObject")), kDeny);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject")), kDeny);

  const BucketPolicy nobody = MustParse(Policy({R"("Effect":"Deny","NotPrincipal":"*","Action":"*","Resource":"*")"}));
  EXPECT_EQ(nobody.Evaluate(Anonymous("s3:GetObject")), kNone);
  EXPECT_EQ(nobody.Evaluate(User("bob", "s3:GetObject")), kNone);
}

TEST(PolicyEvaluateTest, WildcardActions) {
  struct Case {
    std::string_view pattern;
    std::string_view action;
    bool matches;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"s3:Get*", "s3:GetObject", true},
           {"s3:Get*", "s3:GetObjectAcl", true},
           {"s3:Get*", "s3:PutObject", false},
           {"s3:*", "s3:ListBucket", true},
           {"*", "s3:ListBucket", true},
           {"s3:?etObject", "s3:GetObject", true},
           {"s3:?etObject", "s3:SetObject", true},
           {"s3:?etObject", "s3:GGetObject", false},
           {"s3:*Object", "s3:DeleteObject", true},
           {"s3:*Object", "s3:DeleteObjects", false},
           {"S3:GETOBJECT", "s3:GetObject", true},  // actions compare case-insensitively
           {"s3:getobject", "S3:GetObject", true},
           {"s3:GetObject", "s3:GetObjectAcl", false},
       }) {
    const BucketPolicy policy = MustParse(Policy({std::string(R"("Effect":"Allow","Principal":"*","Action":")") +
                                                  std::string(c.pattern) + R"(","Resource":"*")"}));
    EXPECT_EQ(policy.Evaluate(Anonymous(c.action)), c.matches ? kAllow : kNone) << c.pattern << " " << c.action;
  }
}

TEST(PolicyEvaluateTest, ResourcesMatchCaseSensitivelyWithWildcards) {
  const BucketPolicy policy =
      MustParse(Policy({R"("Effect":"Allow","Principal":"*","Action":"*","Resource":["arn:aws:s3:::b/Photos/*.jpg",)"
                        R"("arn:aws:s3:::b/docs/??.txt","arn:aws:s3:::b"])"}));
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject", "arn:aws:s3:::b/Photos/2024/cat.jpg")), kAllow);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject", "arn:aws:s3:::b/photos/cat.jpg")), kNone);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject", "arn:aws:s3:::b/Photos/cat.JPG")), kNone);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject", "arn:aws:s3:::b/docs/ab.txt")), kAllow);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject", "arn:aws:s3:::b/docs/abc.txt")), kNone);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject", "arn:aws:s3:::b/docs/\xC3\xA9\xC3\xA9.txt")), kAllow);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:ListBucket", kBucketArn)), kAllow);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:ListBucket", "arn:aws:s3:::b/")), kNone);
}

TEST(PolicyEvaluateTest, ResourceStarMatchesTheBucketAndEveryObject) {
  const BucketPolicy policy = MustParse(Policy({R"("Effect":"Allow","Principal":"*","Action":"*","Resource":"*")"}));
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:ListBucket", kBucketArn)), kAllow);
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject")), kAllow);
}

TEST(PolicyEvaluateTest, Principals) {
  const BucketPolicy by_arn = MustParse(Policy({R"("Effect":"Allow","Principal":{"AWS":[)"
                                                R"("arn:aws:iam::123456789012:user/alice",)"
                                                R"("arn:aws:iam::123456789012:user/team/carol"]},)"
                                                R"("Action":"*","Resource":"*")"}));
  EXPECT_EQ(by_arn.Evaluate(User("alice", "s3:GetObject")), kAllow);
  EXPECT_EQ(by_arn.Evaluate(User("carol", "s3:GetObject")), kAllow);
  EXPECT_EQ(by_arn.Evaluate(User("bob", "s3:GetObject")), kNone);
  EXPECT_EQ(by_arn.Evaluate(Anonymous("s3:GetObject")), kNone);

  const BucketPolicy by_name =
      MustParse(Policy({R"("Effect":"Allow","Principal":{"AWS":"alice"},"Action":"*","Resource":"*")"}));
  EXPECT_EQ(by_name.Evaluate(User("alice", "s3:GetObject")), kAllow);
  EXPECT_EQ(by_name.Evaluate(User("Alice", "s3:GetObject")), kNone);  // user names are case-sensitive

  const BucketPolicy by_id = MustParse(Policy({std::string(R"("Effect":"Allow","Principal":{"CanonicalUser":")") +
                                               std::string(kAliceCanonicalId) + R"("},"Action":"*","Resource":"*")"}));
  EXPECT_EQ(by_id.Evaluate(User("alice", "s3:GetObject")), kAllow);
  EXPECT_EQ(by_id.Evaluate(User("bob", "s3:GetObject")), kNone);
  EXPECT_EQ(by_id.Evaluate(Anonymous("s3:GetObject")), kNone);

  for (const std::string_view everyone : {R"("*")", R"({"AWS":"*"})", R"({"AWS":["bob","*"]})"}) {
    const BucketPolicy policy = MustParse(Policy(
        {std::string(R"("Effect":"Allow","Principal":)") + std::string(everyone) + R"(,"Action":"*","Resource":"*")"}));
    EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject")), kAllow) << everyone;
    EXPECT_EQ(policy.Evaluate(User("alice", "s3:GetObject")), kAllow) << everyone;
  }
}

// ---- Conditions ------------------------------------------------------------------------------

using Context = std::map<std::string, std::string>;

struct ConditionCase {
  std::string_view condition;
  Context context;
  bool holds;
};

void ExpectConditions(std::initializer_list<ConditionCase> cases) {
  for (const ConditionCase& c : cases) {
    std::string context;
    for (const auto& [k, v] : c.context) context += k + "=" + v + " ";
    EXPECT_EQ(Holds(c.condition, c.context), c.holds) << c.condition << " with " << context;
  }
}

TEST(PolicyConditionTest, StringOperators) {
  ExpectConditions({
      {R"({"StringEquals":{"aws:username":"alice"}})", {{"aws:username", "alice"}}, true},
      {R"({"StringEquals":{"aws:username":"alice"}})", {{"aws:username", "Alice"}}, false},
      {R"({"StringEquals":{"aws:username":["bob","alice"]}})", {{"aws:username", "alice"}}, true},
      {R"({"StringEquals":{"aws:username":"al*"}})", {{"aws:username", "alice"}}, false},  // no wildcards
      {R"({"StringNotEquals":{"aws:username":"alice"}})", {{"aws:username", "bob"}}, true},
      {R"({"StringNotEquals":{"aws:username":["bob","alice"]}})", {{"aws:username", "alice"}}, false},
      {R"({"StringEqualsIgnoreCase":{"aws:username":"ALICE"}})", {{"aws:username", "alice"}}, true},
      {R"({"StringEqualsIgnoreCase":{"aws:username":"ALICE"}})", {{"aws:username", "bob"}}, false},
      {R"({"StringNotEqualsIgnoreCase":{"aws:username":"ALICE"}})", {{"aws:username", "alice"}}, false},
      {R"({"StringNotEqualsIgnoreCase":{"aws:username":"ALICE"}})", {{"aws:username", "bob"}}, true},
      {R"({"StringLike":{"s3:prefix":"home/alice/*"}})", {{"s3:prefix", "home/alice/docs/"}}, true},
      {R"({"StringLike":{"s3:prefix":["","home/alice/*"]}})", {{"s3:prefix", ""}}, true},
      {R"({"StringLike":{"s3:prefix":"home/alice/*"}})", {{"s3:prefix", "home/bob/"}}, false},
      {R"({"StringLike":{"s3:prefix":"home/?/x"}})", {{"s3:prefix", "home/\xC3\xA9/x"}}, true},
      {R"({"StringLike":{"s3:prefix":"Home/*"}})", {{"s3:prefix", "home/x"}}, false},
      {R"({"StringNotLike":{"s3:prefix":"home/alice/*"}})", {{"s3:prefix", "home/bob/"}}, true},
      {R"({"StringNotLike":{"s3:prefix":"home/alice/*"}})", {{"s3:prefix", "home/alice/"}}, false},
  });
}

TEST(PolicyConditionTest, NumericOperators) {
  ExpectConditions({
      {R"({"NumericEquals":{"s3:max-keys":"10"}})", {{"s3:max-keys", "10"}}, true},
      {R"({"NumericEquals":{"s3:max-keys":10}})", {{"s3:max-keys", "10.0"}}, true},
      {R"({"NumericEquals":{"s3:max-keys":10}})", {{"s3:max-keys", "11"}}, false},
      {R"({"NumericNotEquals":{"s3:max-keys":10}})", {{"s3:max-keys", "11"}}, true},
      {R"({"NumericNotEquals":{"s3:max-keys":10}})", {{"s3:max-keys", "10"}}, false},
      {R"({"NumericLessThan":{"s3:max-keys":10}})", {{"s3:max-keys", "9"}}, true},
      {R"({"NumericLessThan":{"s3:max-keys":10}})", {{"s3:max-keys", "10"}}, false},
      {R"({"NumericLessThanEquals":{"s3:max-keys":10}})", {{"s3:max-keys", "10"}}, true},
      {R"({"NumericLessThanEquals":{"s3:max-keys":10}})", {{"s3:max-keys", "11"}}, false},
      {R"({"NumericGreaterThan":{"s3:max-keys":"2.5"}})", {{"s3:max-keys", "3"}}, true},
      {R"({"NumericGreaterThan":{"s3:max-keys":"2.5"}})", {{"s3:max-keys", "-3"}}, false},
      {R"({"NumericGreaterThanEquals":{"s3:max-keys":-1}})", {{"s3:max-keys", "-1"}}, true},
      {R"({"NumericGreaterThanEquals":{"s3:max-keys":-1}})", {{"s3:max-keys", "-2"}}, false},
      // A request value that is not a number matches nothing.
      {R"({"NumericLessThan":{"s3:max-keys":10}})", {{"s3:max-keys", "abc"}}, false},
      {R"({"NumericNotEquals":{"s3:max-keys":10}})", {{"s3:max-keys", "abc"}}, true},
  });
}

TEST(PolicyConditionTest, DateOperators) {
  constexpr std::string_view kNow = "2026-11-22T10:00:00Z";
  ExpectConditions({
      {R"({"DateEquals":{"aws:CurrentTime":"2026-11-22T10:00:00Z"}})", {{"aws:currenttime", std::string(kNow)}}, true},
      {R"({"DateEquals":{"aws:CurrentTime":"2026-11-22T10:00:00.000Z"}})",
       {{"aws:currenttime", std::string(kNow)}},
       true},
      {R"({"DateEquals":{"aws:CurrentTime":1795341600}})", {{"aws:currenttime", std::string(kNow)}}, true},
      {R"({"DateEquals":{"aws:CurrentTime":"1795341600"}})", {{"aws:currenttime", "2026-11-22T10:00:00.5Z"}}, false},
      {R"({"DateNotEquals":{"aws:CurrentTime":"2026-11-22T10:00:00Z"}})",
       {{"aws:currenttime", std::string(kNow)}},
       false},
      {R"({"DateNotEquals":{"aws:CurrentTime":"2026-11-22T10:00:01Z"}})",
       {{"aws:currenttime", std::string(kNow)}},
       true},
      {R"({"DateLessThan":{"aws:CurrentTime":"2026-11-22T10:00:00.001Z"}})",
       {{"aws:currenttime", std::string(kNow)}},
       true},
      {R"({"DateLessThan":{"aws:CurrentTime":"2026-11-22T10:00:00Z"}})",
       {{"aws:currenttime", std::string(kNow)}},
       false},
      {R"({"DateLessThanEquals":{"aws:CurrentTime":"2026-11-22T10:00:00Z"}})",
       {{"aws:currenttime", std::string(kNow)}},
       true},
      {R"({"DateLessThanEquals":{"aws:CurrentTime":"2025-12-31T23:59:59Z"}})",
       {{"aws:currenttime", std::string(kNow)}},
       false},
      {R"({"DateGreaterThan":{"aws:CurrentTime":"2024-02-29T00:00:00Z"}})",
       {{"aws:currenttime", std::string(kNow)}},
       true},
      {R"({"DateGreaterThan":{"aws:CurrentTime":"2026-11-22T10:00:00Z"}})",
       {{"aws:currenttime", std::string(kNow)}},
       false},
      {R"({"DateGreaterThanEquals":{"aws:CurrentTime":"2026-11-22T10:00:00Z"}})",
       {{"aws:currenttime", std::string(kNow)}},
       true},
      {R"({"DateGreaterThanEquals":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}})",
       {{"aws:currenttime", std::string(kNow)}},
       false},
      {R"({"DateGreaterThan":{"aws:CurrentTime":"1969-12-31T23:59:59Z"}})", {{"aws:currenttime", "0"}}, true},
      {R"({"DateLessThan":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}})", {{"aws:currenttime", "not a date"}}, false},
  });
}

TEST(PolicyConditionTest, BoolAcceptsStringsAndJsonBooleans) {
  ExpectConditions({
      {R"({"Bool":{"aws:SecureTransport":"false"}})", {{"aws:securetransport", "false"}}, true},
      {R"({"Bool":{"aws:SecureTransport":false}})", {{"aws:securetransport", "false"}}, true},
      {R"({"Bool":{"aws:SecureTransport":false}})", {{"aws:securetransport", "true"}}, false},
      {R"({"Bool":{"aws:SecureTransport":"TRUE"}})", {{"aws:securetransport", "true"}}, true},
      {R"({"Bool":{"aws:SecureTransport":true}})", {{"aws:securetransport", "True"}}, true},
      {R"({"Bool":{"aws:SecureTransport":true}})", {{"aws:securetransport", "1"}}, false},
  });
}

TEST(PolicyConditionTest, StringConditionValuesMayBeNumbersOrBooleans) {
  ExpectConditions({
      {R"({"StringEquals":{"s3:max-keys":10}})", {{"s3:max-keys", "10"}}, true},
      {R"({"StringEquals":{"s3:max-keys":[5,10]}})", {{"s3:max-keys", "10"}}, true},
      {R"({"StringEquals":{"aws:securetransport":true}})", {{"aws:securetransport", "true"}}, true},
      {R"({"StringEquals":{"s3:max-keys":10}})", {{"s3:max-keys", "10.0"}}, false},
  });
}

TEST(PolicyConditionTest, IpAddress) {
  ExpectConditions({
      {R"({"IpAddress":{"aws:SourceIp":"192.0.2.1/32"}})", {{"aws:sourceip", "192.0.2.1"}}, true},
      {R"({"IpAddress":{"aws:SourceIp":"192.0.2.1/32"}})", {{"aws:sourceip", "192.0.2.2"}}, false},
      {R"({"IpAddress":{"aws:SourceIp":"192.0.2.1"}})", {{"aws:sourceip", "192.0.2.1"}}, true},
      {R"({"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}})", {{"aws:sourceip", "192.0.2.255"}}, true},
      {R"({"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}})", {{"aws:sourceip", "192.0.3.0"}}, false},
      {R"({"IpAddress":{"aws:SourceIp":"192.0.2.0/23"}})", {{"aws:sourceip", "192.0.3.7"}}, true},
      {R"({"IpAddress":{"aws:SourceIp":"192.0.2.77/24"}})", {{"aws:sourceip", "192.0.2.1"}}, true},  // host bits
      {R"({"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}})", {{"aws:sourceip", "203.0.113.9"}}, true},
      {R"({"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}})", {{"aws:sourceip", "2001:db8::1"}}, false},
      {R"({"IpAddress":{"aws:SourceIp":["10.0.0.0/8","192.0.2.0/24"]}})", {{"aws:sourceip", "192.0.2.3"}}, true},
      {R"({"IpAddress":{"aws:SourceIp":"2001:db8::/32"}})", {{"aws:sourceip", "2001:db8:1234::5"}}, true},
      {R"({"IpAddress":{"aws:SourceIp":"2001:db8::/32"}})", {{"aws:sourceip", "2001:db9::5"}}, false},
      {R"({"IpAddress":{"aws:SourceIp":"2001:db8::/33"}})", {{"aws:sourceip", "2001:db8:8000::1"}}, false},
      {R"({"IpAddress":{"aws:SourceIp":"::1"}})", {{"aws:sourceip", "::1"}}, true},
      {R"({"IpAddress":{"aws:SourceIp":"::/0"}})", {{"aws:sourceip", "192.0.2.1"}}, false},
      {R"({"IpAddress":{"aws:SourceIp":"::/0"}})", {{"aws:sourceip", "fe80::1"}}, true},
      // An IPv4 peer seen through a dual-stack socket is still an IPv4 address.
      {R"({"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}})", {{"aws:sourceip", "::ffff:192.0.2.9"}}, true},
      {R"({"IpAddress":{"aws:SourceIp":"::ffff:192.0.2.0/120"}})", {{"aws:sourceip", "192.0.2.9"}}, true},
      {R"({"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}})", {{"aws:sourceip", "garbage"}}, false},
      {R"({"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}})", {{"aws:sourceip", "192.0.2.1"}}, false},
      {R"({"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}})", {{"aws:sourceip", "198.51.100.1"}}, true},
  });
}

TEST(PolicyConditionTest, NullTestsWhetherTheKeyIsAbsent) {
  ExpectConditions({
      {R"({"Null":{"s3:prefix":"true"}})", {}, true},
      {R"({"Null":{"s3:prefix":true}})", {{"s3:prefix", ""}}, false},
      {R"({"Null":{"s3:prefix":"false"}})", {{"s3:prefix", "x"}}, true},
      {R"({"Null":{"s3:prefix":false}})", {}, false},
  });
}

// A key missing from the request: positive operators fail, negated ones hold, and IfExists
// makes either hold.
TEST(PolicyConditionTest, MissingKeyPositiveNegatedAndIfExists) {
  struct Operator {
    std::string_view name;
    std::string_view value;
    bool negated;
  };
  for (const Operator& op : std::initializer_list<Operator>{
           {"StringEquals", R"("x")", false},
           {"StringNotEquals", R"("x")", true},
           {"StringEqualsIgnoreCase", R"("x")", false},
           {"StringNotEqualsIgnoreCase", R"("x")", true},
           {"StringLike", R"("*")", false},
           {"StringNotLike", R"("x*")", true},
           {"NumericEquals", "1", false},
           {"NumericNotEquals", "1", true},
           {"NumericLessThan", "1", false},
           {"NumericLessThanEquals", "1", false},
           {"NumericGreaterThan", "1", false},
           {"NumericGreaterThanEquals", "1", false},
           {"DateEquals", R"("2026-01-01T00:00:00Z")", false},
           {"DateNotEquals", R"("2026-01-01T00:00:00Z")", true},
           {"DateLessThan", R"("2026-01-01T00:00:00Z")", false},
           {"DateLessThanEquals", R"("2026-01-01T00:00:00Z")", false},
           {"DateGreaterThan", R"("2026-01-01T00:00:00Z")", false},
           {"DateGreaterThanEquals", R"("2026-01-01T00:00:00Z")", false},
           {"Bool", "true", false},
           {"IpAddress", R"("10.0.0.0/8")", false},
           {"NotIpAddress", R"("10.0.0.0/8")", true},
       }) {
    const std::string plain = "{\"" + std::string(op.name) + R"(":{"cairn:missing":)" + std::string(op.value) + "}}";
    const std::string if_exists =
        "{\"" + std::string(op.name) + R"(IfExists":{"cairn:missing":)" + std::string(op.value) + "}}";
    EXPECT_EQ(Holds(plain, {{"aws:username", "alice"}}), op.negated) << plain;
    EXPECT_TRUE(Holds(if_exists, {{"aws:username", "alice"}})) << if_exists;
  }
}

TEST(PolicyConditionTest, IfExistsStillTestsAPresentKey) {
  ExpectConditions({
      {R"({"StringEqualsIfExists":{"aws:username":"alice"}})", {{"aws:username", "alice"}}, true},
      {R"({"StringEqualsIfExists":{"aws:username":"alice"}})", {{"aws:username", "bob"}}, false},
      {R"({"StringNotEqualsIfExists":{"aws:username":"alice"}})", {{"aws:username", "alice"}}, false},
      {R"({"NumericLessThanIfExists":{"s3:max-keys":10}})", {{"s3:max-keys", "100"}}, false},
      {R"({"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}})", {{"aws:sourceip", "10.1.2.3"}}, true},
      {R"({"BoolIfExists":{"aws:SecureTransport":"true"}})", {{"aws:securetransport", "false"}}, false},
  });
}

TEST(PolicyConditionTest, ConditionKeysAreCaseInsensitive) {
  ExpectConditions({
      {R"({"IpAddress":{"AWS:SourceIP":"10.0.0.0/8"}})", {{"aws:sourceip", "10.0.0.1"}}, true},
      {R"({"StringLike":{"S3:Prefix":"a*"}})", {{"s3:prefix", "abc"}}, true},
      {R"({"Null":{"S3:PREFIX":"true"}})", {{"s3:prefix", "abc"}}, false},
  });
}

TEST(PolicyConditionTest, AllOperatorsAndAllKeysMustHold) {
  constexpr std::string_view kCondition =
      R"({"StringEquals":{"aws:username":"alice","s3:prefix":"home/"},"Bool":{"aws:SecureTransport":true}})";
  const Context all = {{"aws:username", "alice"}, {"s3:prefix", "home/"}, {"aws:securetransport", "true"}};
  EXPECT_TRUE(Holds(kCondition, all));
  for (const std::string_view key : {"aws:username", "s3:prefix", "aws:securetransport"}) {
    Context changed = all;
    changed[std::string(key)] = "other";
    EXPECT_FALSE(Holds(kCondition, changed)) << key;
  }
}

TEST(PolicyConditionTest, ConditionsOnADenyStatement) {
  const BucketPolicy policy =
      MustParse(Policy({R"("Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b")",
                        R"("Effect":"Deny","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",)"
                        R"("Condition":{"StringNotLike":{"s3:prefix":["public/*",""]}})"}));
  PolicyRequest request = Anonymous("s3:ListBucket", kBucketArn);
  request.context["s3:prefix"] = "public/x";
  EXPECT_EQ(policy.Evaluate(request), kAllow);
  request.context["s3:prefix"] = "private/";
  EXPECT_EQ(policy.Evaluate(request), kDeny);
  request.context.erase("s3:prefix");  // absent: a negated operator holds, so the Deny applies
  EXPECT_EQ(policy.Evaluate(request), kDeny);
}

// ---- Wildcard matching -----------------------------------------------------------------------

// Characters as the matcher sees them: whole UTF-8 sequences, or single bytes where invalid.
std::vector<std::string> Characters(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    (void)DecodeUtf8(s, &i);
    out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

// The textbook dynamic programme: match[i][j] says whether pattern[i..] matches text[j..].
bool ReferenceMatch(std::string_view pattern, std::string_view text) {
  const std::vector<std::string> p = Characters(pattern);
  const std::vector<std::string> t = Characters(text);
  std::vector<std::vector<bool>> match(p.size() + 1, std::vector<bool>(t.size() + 1, false));
  match[p.size()][t.size()] = true;
  for (size_t i = p.size(); i-- > 0;) {
    for (size_t j = t.size() + 1; j-- > 0;) {
      if (p[i] == "*") {
        match[i][j] = match[i + 1][j] || (j < t.size() && match[i][j + 1]);
      } else if (j < t.size() && (p[i] == "?" || p[i] == t[j])) {
        match[i][j] = match[i + 1][j + 1];
      }
    }
  }
  return match[0][0];
}

class WildcardTest : public ::testing::Test {
 protected:
  // Whether `pattern` matches `text` as a StringLike condition value.
  static bool Matches(std::string_view pattern, std::string_view text) {
    const BucketPolicy policy =
        MustParse(AllowGetIf(R"({"StringLike":{"s3:prefix":")" + std::string(pattern) + "\"}}"));
    PolicyRequest request = Anonymous("s3:GetObject");
    request.context["s3:prefix"] = text;
    return policy.Evaluate(request) == kAllow;
  }
};

TEST_F(WildcardTest, Examples) {
  EXPECT_TRUE(Matches("", ""));
  EXPECT_FALSE(Matches("", "a"));
  EXPECT_TRUE(Matches("*", ""));
  EXPECT_TRUE(Matches("**", "abc"));
  EXPECT_FALSE(Matches("?", ""));
  EXPECT_TRUE(Matches("a*b*c", "aXbYc"));
  EXPECT_TRUE(Matches("a*b*c", "abbbc"));
  EXPECT_FALSE(Matches("a*b*c", "acb"));
  EXPECT_TRUE(Matches("*.jpg", "x.jpg.jpg"));
  EXPECT_TRUE(Matches("caf?", "caf\xC3\xA9"));  // '?' is one character, not one byte
  EXPECT_FALSE(Matches("caf??", "caf\xC3\xA9"));
  EXPECT_TRUE(Matches("\xC3\xA9*", "\xC3\xA9t\xC3\xA9"));
  EXPECT_TRUE(Matches("a?c",
                      "a\xFF"
                      "c"));  // an invalid byte is one character
}

TEST_F(WildcardTest, AgreesWithABruteForceReferenceOnRandomStrings) {
  std::mt19937 rng(20261122);
  const auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  const std::vector<std::string> pattern_chars = {"a", "b", "*", "?", "\xC3\xA9"};
  const std::vector<std::string> text_chars = {"a", "b", "\xC3\xA9", "\xC3"};  // the last is an invalid byte
  const auto random_string = [&](const std::vector<std::string>& alphabet, size_t max_length) {
    std::string out;
    for (size_t length = pick(max_length + 1); length > 0; --length) out += alphabet[pick(alphabet.size())];
    return out;
  };
  // A pattern made from `text` by replacing some characters with '?' or '*', inserting stars
  // and now and then changing a character, so that about half of the pairs match.
  const auto pattern_from = [&](std::string_view text) {
    std::string out;
    for (const std::string& c : Characters(text)) {
      // The invalid byte cannot appear in a JSON policy; '?' stands for it.
      const std::string literal = c == "\xC3" ? "?" : c;
      switch (pick(6)) {
        case 0:
          out += "?";
          break;
        case 1:
          out += "*";
          break;
        case 2:
          out += "*" + literal;
          break;
        case 3:
          out += pattern_chars[pick(pattern_chars.size())];
          break;
        default:
          out += literal;
          break;
      }
    }
    return out;
  };
  int matched = 0;
  constexpr int kTrials = 4000;
  for (int trial = 0; trial < kTrials; ++trial) {
    const std::string text = random_string(text_chars, 10);
    const std::string pattern = trial % 2 == 0 ? random_string(pattern_chars, 8) : pattern_from(text);
    const bool expected = ReferenceMatch(pattern, text);
    matched += expected ? 1 : 0;
    ASSERT_EQ(Matches(pattern, text), expected) << "pattern '" << pattern << "' text '" << text << "'";
  }
  // Both outcomes are well represented.
  EXPECT_GT(matched, kTrials / 5);
  EXPECT_LT(matched, kTrials * 4 / 5);
}

TEST_F(WildcardTest, PathologicalPatternsFinishFast) {
  const std::string text(100'000, 'a');
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(Matches("a*a*a*a*a*a*a*b", text));
  EXPECT_FALSE(Matches("*a*a*a*a*a*a*a*a*a*a*a*a*?b", text));
  EXPECT_TRUE(Matches("a*a*a*a*a*a*a*a", text));
  // The same through a resource pattern.
  const BucketPolicy policy = MustParse(
      Policy({R"("Effect":"Allow","Principal":"*","Action":"*","Resource":"arn:aws:s3:::b/a*a*a*a*a*a*a*b")"}));
  EXPECT_EQ(policy.Evaluate(Anonymous("s3:GetObject", "arn:aws:s3:::b/" + text)), kNone);
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  EXPECT_LT(elapsed.count(), 2000);
}

}  // namespace
}  // namespace cairn::gateway

namespace cairn::gateway {
namespace {

TEST(PolicyPrincipalsTest, ListsNamedUsersAndIdsForTheCallerToCheck) {
  auto p = BucketPolicy::Parse(
      R"({"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:user/alice","bob"]},"Action":"s3:*","Resource":"*"},
                       {"Effect":"Deny","NotPrincipal":{"CanonicalUser":"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"},"Action":"s3:*","Resource":"*"},
                       {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]})",
      "b");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->PrincipalUserNames(), (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(p->PrincipalCanonicalIds(),
            (std::vector<std::string>{"abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"}));
}

}  // namespace
}  // namespace cairn::gateway
