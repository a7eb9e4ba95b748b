// Authorization: may this requester perform this S3 operation on this bucket or object?
//
// The one place where Cairn decides. The S3 service gathers what the decision needs (who asks,
// the bucket's owner, ACL and policy, the object's ACL when the operation reads or changes an
// object's own data, the request's condition keys) and calls Authorize before the operation
// runs; the operation itself never checks permissions again. The order follows Amazon S3's
// documented evaluation for a bucket owned by one account and users of separate accounts:
//
//   1. The root user may do everything.
//   2. The bucket owner may always manage the bucket's policy (Get/Put/DeleteBucketPolicy).
//   3. The bucket policy: an applicable Deny refuses; an applicable Allow grants, except for
//      the data and ACL of an object another user owns (the bucket owner's policy cannot give
//      away what the bucket owner itself may not read: the object's ACL decides) and for a key
//      that does not exist (only when the requester may also list the bucket, so keys cannot be
//      probed).
//   4. Operations reserved to the bucket owner (policies, CORS, deleting the bucket, location,
//      versioning): the bucket owner may.
//   5. The ACL of the resource the operation acts on: the bucket's for listing and for writing
//      or deleting objects (WRITE on the bucket), the object's for reading an object or its ACL.
//   6. Otherwise refused.
//   Operations on a multipart upload also need the upload's initiator (see upload_initiator).
//
// Operations on the service (ListBuckets, CreateBucket) need an authenticated requester; what
// ListBuckets shows is filtered by owner in the operation.
//
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "gateway/policy.h"
#include "gateway/s3_request.h"
#include "meta/types.h"

namespace cairn::gateway {

struct Principal {
  bool anonymous = true;
  bool root = false;
  std::string user_name;     // empty when anonymous
  std::string canonical_id;  // empty when anonymous
};

// What the operation needs from the ACLs.
enum class AclTarget {
  kNone,         // service operations: no ACL consulted
  kOwnerOnly,    // only the bucket owner (and policies)
  kBucket,       // the bucket's ACL
  kObject,       // the object's ACL (the bucket's when the object does not exist)
};

struct OperationAccess {
  std::string_view action;  // the policy action, "s3:GetObject"
  AclTarget target = AclTarget::kNone;
  meta::AclPermission permission = meta::AclPermission::kRead;
  bool object_resource = false;  // the policy resource names the object, not the bucket
};

// How `op` is authorized. kUnknown, kPreflight (answered without authorization) and kAdmin (root
// only, in the admin API) give an action of "" and kOwnerOnly.
OperationAccess AccessFor(S3Op op);

struct AccessRequest {
  S3Op op = S3Op::kUnknown;
  std::string_view bucket;  // empty for service operations
  std::string_view key;     // the object key when the operation names one
  // The bucket, when the operation names one that exists; null otherwise.
  const meta::BucketInfo* bucket_info = nullptr;
  // The object's ACL for kObject operations when the object exists; null otherwise.
  const meta::Acl* object_acl = nullptr;
  // For operations on a multipart upload: the canonical id of its initiator (null when the
  // upload does not exist). Only the initiator may add parts to it or complete it; the
  // initiator or the bucket owner may abort it or list its parts.
  const std::string* upload_initiator = nullptr;
  // The request also sets the new object's ACL (x-amz-acl, x-amz-grant-*, a form's acl field).
  bool sets_acl = false;
  // The bucket's parsed policy, null when it has none.
  const BucketPolicy* policy = nullptr;
  // The bucket has a stored policy that no longer parses (a parser change): its Deny statements
  // cannot be honoured, so nobody but root (and the owner, to replace the policy) gets in.
  bool policy_unreadable = false;
  // Condition keys for the policy (PolicyRequest::context); aws:username and aws:userid are
  // added from the principal.
  std::map<std::string, std::string> context;
};

struct AccessDecision {
  bool allowed = false;
  // Why, for the debug log: "root", "policy allow", "policy deny", "bucket owner", "acl", "no
  // grant", "anonymous".
  std::string_view reason;
};

AccessDecision Authorize(const Principal& principal, const AccessRequest& request);

// The ACL that governs a bucket or object: the stored one, or for records from before ACLs
// (empty owner) the owner's FULL_CONTROL on behalf of `owner`.
meta::Acl EffectiveAcl(const meta::Acl& stored, std::string_view owner);

}  // namespace cairn::gateway
