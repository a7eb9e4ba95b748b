// S3 bucket policies: the JSON policy language (Version, Statement, Sid, Effect, Principal,
// NotPrincipal, Action, NotAction, Resource, NotResource, Condition) parsed into a form that is
// cheap to evaluate, and its evaluation for one request.
//
// Evaluation (one policy): every statement that applies to the request (principal, action,
// resource and all its conditions match) contributes its effect; an applicable Deny wins over any
// Allow; no applicable statement means kNone (the caller falls back to ACLs and ownership).
//
// Principals: "*" or {"AWS": "*"} is everyone, anonymous requesters included. {"AWS": X} with X
// an ARN of the form arn:aws:iam::<any account>:user/NAME, or the bare NAME, names a Cairn user;
// {"CanonicalUser": ID} names a user by canonical id. Lists of either are allowed.
// Actions: "s3:<Name>" or "*", with '*' and '?' wildcards, compared case-insensitively (as IAM
// does). Resources: "arn:aws:s3:::<bucket>" and "arn:aws:s3:::<bucket>/<key pattern>" with '*'
// and '?' wildcards, case-sensitive; a policy for bucket B may only name resources in B ("*" is
// allowed and means every resource).
// Conditions: {Operator: {Key: Value or [Values]}}; all operators of a statement must hold, and
// within an operator all keys; a key holds when any listed value matches. Operators:
// StringEquals, StringNotEquals, StringEqualsIgnoreCase, StringNotEqualsIgnoreCase, StringLike,
// StringNotLike, NumericEquals, NumericNotEquals, NumericLessThan, NumericLessThanEquals,
// NumericGreaterThan, NumericGreaterThanEquals, DateEquals, DateNotEquals, DateLessThan,
// DateLessThanEquals, DateGreaterThan, DateGreaterThanEquals, Bool, IpAddress, NotIpAddress
// (IPv4 and IPv6 CIDRs), Null, and each with the "IfExists" suffix (except Null). A key absent
// from the request context makes a positive operator false and a negated one ("Not") true, as IAM
// specifies; with IfExists an absent key makes the operator true. Condition keys are
// case-insensitive.
//
// Details the rules above leave open, as implemented: operator names are matched exactly, case
// included ("stringequals" is an unknown operator); ForAnyValue:/ForAllValues: qualifiers and
// policy variables ("${aws:username}") are not supported (the first is an unknown operator, the
// second literal text). Condition values are strings, numbers or booleans, compared in their
// string form (true -> "true", 10 -> "10"). Dates are "YYYY-MM-DDTHH:MM:SSZ", optionally with a
// fraction of a second, or epoch seconds. A bare IP address in a condition is a /32 (/128) CIDR;
// an IPv4-mapped IPv6 request address (::ffff:a.b.c.d) is treated as its IPv4 address. A request
// value its operator cannot read (not a number, date or address) matches no value, so the "Not"
// forms hold for it. Principals other than AWS and CanonicalUser (Service, Federated), AWS ARNs
// other than IAM users (roles, account roots), partial wildcards in principals and canonical ids
// that are not 64 hex digits are invalid. A resource's bucket part must be this bucket, or a
// wildcard pattern that matches it ("arn:aws:s3:::*"). A JSON key repeated within one object is
// an error, as silently keeping one of them would make the policy mean something its author may
// not have read.
//
// Thread-safety: a parsed BucketPolicy is immutable; Evaluate may be called concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace cairn::gateway {

// S3 limits a bucket policy to 20 KB.
inline constexpr size_t kMaxBucketPolicyBytes = 20 * 1024;

struct PolicyRequest {
  std::string action;    // "s3:GetObject", exactly as S3 names the permission
  std::string resource;  // "arn:aws:s3:::bucket" or "arn:aws:s3:::bucket/key"
  bool anonymous = true;
  std::string user_name;     // Cairn user name; empty when anonymous
  std::string canonical_id;  // empty when anonymous
  // Condition keys, names in lowercase: "aws:sourceip" -> "127.0.0.1", "aws:securetransport" ->
  // "false", "aws:currenttime" -> "2026-11-22T10:00:00Z", "aws:username", "aws:userid",
  // "aws:useragent", "aws:referer", "s3:prefix", "s3:delimiter", "s3:max-keys", "s3:x-amz-acl",
  // "s3:x-amz-content-sha256", ... A key missing from the map is absent from the request.
  std::map<std::string, std::string> context;
};

enum class PolicyDecision {
  kNone,   // no statement applies
  kAllow,  // an Allow statement applies and no Deny does
  kDeny,   // a Deny statement applies
};

class BucketPolicy {
 public:
  // Parses and checks a policy for `bucket`. Error: InvalidArgument, with a message that says
  // what is wrong (the gateway answers MalformedPolicy with it), for: not JSON, larger than
  // kMaxBucketPolicyBytes, no Statement, a statement without Effect Allow/Deny, without exactly
  // one of Principal/NotPrincipal, Action/NotAction, Resource/NotResource, an action that is
  // neither "*" nor "s3:...", a resource that is not an S3 ARN of this bucket, an unknown
  // condition operator, a condition value of the wrong type, an invalid CIDR, an unknown Version
  // (only "2012-10-17" and "2008-10-17"), unknown top-level or statement fields.
  static Result<BucketPolicy> Parse(std::string_view json, std::string_view bucket);

  PolicyDecision Evaluate(const PolicyRequest& request) const;

  // The users the policy names in Principal or NotPrincipal: by name (from user ARNs or bare
  // names) and by canonical id (lowercase). S3 refuses a policy naming a principal that does
  // not exist (a name matched later would hand access to whoever gets that name); the caller
  // checks these against its users.
  std::vector<std::string> PrincipalUserNames() const;
  std::vector<std::string> PrincipalCanonicalIds() const;

  BucketPolicy(BucketPolicy&&) noexcept;
  BucketPolicy& operator=(BucketPolicy&&) noexcept;
  ~BucketPolicy();

 private:
  struct Rep;
  explicit BucketPolicy(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace cairn::gateway
