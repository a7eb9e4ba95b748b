#include "gateway/access.h"

#include "gateway/acl.h"

namespace cairn::gateway {

using meta::AclPermission;

OperationAccess AccessFor(S3Op op) {
  switch (op) {
    case S3Op::kListBuckets: return {"s3:ListAllMyBuckets", AclTarget::kNone};
    case S3Op::kCreateBucket: return {"s3:CreateBucket", AclTarget::kNone};
    case S3Op::kDeleteBucket: return {"s3:DeleteBucket", AclTarget::kOwnerOnly};
    case S3Op::kHeadBucket: return {"s3:ListBucket", AclTarget::kBucket, AclPermission::kRead};
    case S3Op::kGetBucketLocation: return {"s3:GetBucketLocation", AclTarget::kOwnerOnly};
    case S3Op::kGetBucketVersioning: return {"s3:GetBucketVersioning", AclTarget::kOwnerOnly};
    case S3Op::kGetBucketAcl: return {"s3:GetBucketAcl", AclTarget::kBucket, AclPermission::kReadAcp};
    case S3Op::kPutBucketAcl: return {"s3:PutBucketAcl", AclTarget::kBucket, AclPermission::kWriteAcp};
    case S3Op::kListObjects:
    case S3Op::kListObjectsV2: return {"s3:ListBucket", AclTarget::kBucket, AclPermission::kRead};
    case S3Op::kListObjectVersions: return {"s3:ListBucketVersions", AclTarget::kBucket, AclPermission::kRead};
    case S3Op::kListMultipartUploads:
      return {"s3:ListBucketMultipartUploads", AclTarget::kBucket, AclPermission::kRead};
    // Each key of a DeleteObjects request is authorized as a DeleteObject of that key.
    case S3Op::kDeleteObjects:
    case S3Op::kDeleteObject: return {"s3:DeleteObject", AclTarget::kBucket, AclPermission::kWrite, true};
    case S3Op::kPutObject:
    case S3Op::kCopyObject:
    case S3Op::kPostObject:
    case S3Op::kCreateMultipartUpload:
    case S3Op::kUploadPart:
    case S3Op::kUploadPartCopy:
    case S3Op::kCompleteMultipartUpload:
      return {"s3:PutObject", AclTarget::kBucket, AclPermission::kWrite, true};
    case S3Op::kAbortMultipartUpload:
      return {"s3:AbortMultipartUpload", AclTarget::kBucket, AclPermission::kWrite, true};
    case S3Op::kListParts:
      return {"s3:ListMultipartUploadParts", AclTarget::kBucket, AclPermission::kRead, true};
    case S3Op::kGetObject:
    case S3Op::kHeadObject: return {"s3:GetObject", AclTarget::kObject, AclPermission::kRead, true};
    case S3Op::kGetObjectTagging: return {"s3:GetObjectTagging", AclTarget::kObject, AclPermission::kRead, true};
    case S3Op::kGetObjectAcl: return {"s3:GetObjectAcl", AclTarget::kObject, AclPermission::kReadAcp, true};
    case S3Op::kPutObjectAcl: return {"s3:PutObjectAcl", AclTarget::kObject, AclPermission::kWriteAcp, true};
    case S3Op::kGetBucketPolicy: return {"s3:GetBucketPolicy", AclTarget::kOwnerOnly};
    case S3Op::kPutBucketPolicy: return {"s3:PutBucketPolicy", AclTarget::kOwnerOnly};
    case S3Op::kDeleteBucketPolicy: return {"s3:DeleteBucketPolicy", AclTarget::kOwnerOnly};
    case S3Op::kGetBucketCors: return {"s3:GetBucketCORS", AclTarget::kOwnerOnly};
    // S3 has no separate permission for deleting the CORS configuration.
    case S3Op::kPutBucketCors:
    case S3Op::kDeleteBucketCors: return {"s3:PutBucketCORS", AclTarget::kOwnerOnly};
    case S3Op::kPreflight:
    case S3Op::kAdmin:
    case S3Op::kUnknown: break;
  }
  return {"", AclTarget::kOwnerOnly};
}

meta::Acl EffectiveAcl(const meta::Acl& stored, std::string_view owner) {
  if (!stored.owner.empty()) return stored;
  meta::Acl acl;
  acl.owner = std::string(owner);
  acl.grants.push_back({meta::GranteeType::kCanonicalUser, std::string(owner), AclPermission::kFullControl});
  return acl;
}

namespace {

AccessDecision AuthorizeAccess(const Principal& principal, const AccessRequest& request);

}  // namespace

AccessDecision Authorize(const Principal& principal, const AccessRequest& request) {
  const AccessDecision d = AuthorizeAccess(principal, request);
  if (!d.allowed || principal.root || request.upload_initiator == nullptr || request.bucket_info == nullptr) return d;
  const std::string& initiator =
      request.upload_initiator->empty() ? request.bucket_info->owner : *request.upload_initiator;
  const bool is_initiator = !principal.anonymous && principal.canonical_id == initiator;
  const bool is_owner = !principal.anonymous && principal.canonical_id == request.bucket_info->owner;
  switch (request.op) {
    case S3Op::kUploadPart:
    case S3Op::kUploadPartCopy:
    case S3Op::kCompleteMultipartUpload:
      return is_initiator ? d : AccessDecision{false, "not the upload's initiator"};
    case S3Op::kAbortMultipartUpload:
    case S3Op::kListParts:
      return is_initiator || is_owner ? d : AccessDecision{false, "neither initiator nor bucket owner"};
    default: return d;
  }
}

namespace {

AccessDecision AuthorizeAccess(const Principal& principal, const AccessRequest& request) {
  if (principal.root) return {true, "root"};
  const OperationAccess access = AccessFor(request.op);
  if (access.action.empty()) return {false, "unknown operation"};

  if (access.target == AclTarget::kNone) {
    // Service operations: any authenticated user; there is no bucket whose policy could apply.
    if (principal.anonymous) return {false, "anonymous"};
    return {true, "authenticated"};
  }
  if (request.bucket_info == nullptr) {
    // The bucket does not exist: the operation answers NoSuchBucket to anyone but anonymous
    // requesters, which learn nothing about which buckets exist.
    if (principal.anonymous) return {false, "anonymous"};
    return {true, "no such bucket"};
  }
  const meta::BucketInfo& bucket = *request.bucket_info;
  const bool is_owner = !principal.anonymous && principal.canonical_id == bucket.owner;
  AclRequester requester{principal.anonymous, principal.canonical_id};
  // S3: the bucket owner may always read, change and delete the bucket's policy, even one that
  // denies it everything; otherwise a policy could lock its owner out for good.
  if (is_owner && (request.op == S3Op::kGetBucketPolicy || request.op == S3Op::kPutBucketPolicy ||
                   request.op == S3Op::kDeleteBucketPolicy)) {
    return {true, "bucket owner (policy management)"};
  }
  if (request.policy_unreadable) return {false, "stored policy unreadable"};

  if (request.policy != nullptr) {
    auto evaluate = [&](std::string_view action, bool object_resource) {
      PolicyRequest pr;
      pr.action = std::string(action);
      pr.resource = "arn:aws:s3:::" + std::string(request.bucket);
      if (object_resource) pr.resource += "/" + std::string(request.key);
      pr.anonymous = principal.anonymous;
      // A policy names users by name; the name counts only for the user that had it when the
      // policy was put (bucket.policy_users), not for a later user given the same name.
      if (auto it = bucket.policy_users.find(principal.user_name);
          it != bucket.policy_users.end() && it->second == principal.canonical_id) {
        pr.user_name = principal.user_name;
      }
      pr.canonical_id = principal.canonical_id;
      pr.context = request.context;
      if (!principal.anonymous) {
        pr.context["aws:username"] = principal.user_name;
        pr.context["aws:userid"] = principal.canonical_id;
      }
      return request.policy->Evaluate(pr);
    };
    // S3: setting an ACL while writing an object also needs s3:PutObjectAcl, so a policy that
    // denies it cannot be side-stepped with x-amz-acl on the PUT.
    if (request.sets_acl && evaluate("s3:PutObjectAcl", true) == PolicyDecision::kDeny) {
      return {false, "policy deny (PutObjectAcl)"};
    }
    switch (evaluate(access.action, access.object_resource)) {
      case PolicyDecision::kDeny: return {false, "policy deny"};
      case PolicyDecision::kAllow:
        if (access.target == AclTarget::kObject && request.object_acl != nullptr &&
            EffectiveAcl(*request.object_acl, bucket.owner).owner != bucket.owner) {
          break;  // another user's object: its ACL decides (below)
        }
        if (access.target == AclTarget::kObject && request.object_acl == nullptr) {
          // Reading a key that does not exist: S3 tells "no such key" only to those who may also
          // list the bucket (s3:ListBucket by policy, or READ by ACL); others get AccessDenied.
          const PolicyDecision list = evaluate("s3:ListBucket", false);
          if (list == PolicyDecision::kAllow ||
              (list == PolicyDecision::kNone &&
               AclAllows(EffectiveAcl(bucket.acl, bucket.owner), requester, AclPermission::kRead))) {
            return {true, "policy allow (no object, may list)"};
          }
          return {false, "policy allow, but may not list (no object)"};
        }
        return {true, "policy allow"};
      case PolicyDecision::kNone: break;
    }
  }

  switch (access.target) {
    case AclTarget::kOwnerOnly:
      return is_owner ? AccessDecision{true, "bucket owner"} : AccessDecision{false, "not the bucket owner"};
    case AclTarget::kBucket:
      if (AclAllows(EffectiveAcl(bucket.acl, bucket.owner), requester, access.permission)) return {true, "bucket acl"};
      // The parts of one's own upload may be listed by whoever may write it.
      if (request.op == S3Op::kListParts &&
          AclAllows(EffectiveAcl(bucket.acl, bucket.owner), requester, AclPermission::kWrite)) {
        return {true, "bucket acl"};
      }
      return {false, "no bucket grant"};
    case AclTarget::kObject:
      if (request.object_acl == nullptr) {
        // No such object: those who may list the bucket learn that (NoSuchKey); others are
        // refused, as S3 does, so that keys cannot be probed.
        if (AclAllows(EffectiveAcl(bucket.acl, bucket.owner), requester, AclPermission::kRead)) {
          return {true, "bucket acl (no object)"};
        }
        return {false, "no bucket grant (no object)"};
      }
      if (AclAllows(EffectiveAcl(*request.object_acl, bucket.owner), requester, access.permission)) {
        return {true, "object acl"};
      }
      return {false, "no object grant"};
    case AclTarget::kNone: break;
  }
  return {false, "no grant"};
}

}  // namespace

}  // namespace cairn::gateway
