// S3 access control lists: canned ACLs, x-amz-grant-* headers, the AccessControlPolicy XML
// document, and the question "does this ACL give that permission to this requester".
//
// The stored form is meta::Acl (meta/types.h): an owner and a list of grants to canonical users
// or to groups. A canned ACL is expanded into grants when it is applied, as S3 does, so a GET of
// the ACL shows the grants, never the canned name.
//
// Thread-safety: pure functions.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "meta/types.h"

namespace cairn::gateway {

// The group URIs S3 defines.
inline constexpr std::string_view kAllUsersGroup = "http://acs.amazonaws.com/groups/global/AllUsers";
inline constexpr std::string_view kAuthenticatedUsersGroup =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
inline constexpr std::string_view kLogDeliveryGroup = "http://acs.amazonaws.com/groups/s3/LogDelivery";

// "READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL".
std::string_view PermissionName(meta::AclPermission p);
std::optional<meta::AclPermission> PermissionFromName(std::string_view name);

// Expands a canned ACL (the x-amz-acl value) into an Acl owned by `owner`.
//   private                    owner FULL_CONTROL
//   public-read                + AllUsers READ
//   public-read-write          + AllUsers READ, AllUsers WRITE
//   authenticated-read         + AuthenticatedUsers READ
//   bucket-owner-read          + bucket_owner READ            (objects; on a bucket: like private)
//   bucket-owner-full-control  + bucket_owner FULL_CONTROL    (objects; on a bucket: like private)
//   log-delivery-write         + LogDelivery WRITE, LogDelivery READ_ACP
// The bucket-owner grants are left out when bucket_owner == owner. Error: InvalidArgument for
// any other name (S3: InvalidArgument).
Result<meta::Acl> CannedAcl(std::string_view canned, std::string_view owner, std::string_view bucket_owner);

// One x-amz-grant-* header, with the permission from its name:
//   x-amz-grant-read, x-amz-grant-write, x-amz-grant-read-acp, x-amz-grant-write-acp,
//   x-amz-grant-full-control
struct GrantHeader {
  std::string name;   // lowercase header name
  std::string value;  // e.g. id="abc", uri="http://acs.amazonaws.com/groups/global/AllUsers"
};

// Builds an Acl owned by `owner` from the grant headers: each value is a comma-separated list of
// grantee=value pairs, grantee one of id, uri, emailAddress (any case), value optionally in double
// quotes (no escapes inside; an unquoted value ends at the next ',' and is trimmed), whitespace
// allowed around ',' and '='. An empty value, an empty entry ("a,,b", a trailing ',') or a header
// name not in the list above is InvalidArgument. Grants keep header order, then value order;
// duplicates are kept. The owner gets no implicit grant (S3 gives exactly what the headers say).
// Errors: InvalidArgument for a malformed list, an unknown grantee type or an unknown group URI;
// NotSupported for emailAddress (Cairn users have no e-mail addresses).
// `user_exists(id)` is asked for every canonical id; InvalidArgument "Invalid id" when false.
Result<meta::Acl> AclFromGrantHeaders(const std::vector<GrantHeader>& headers, std::string_view owner,
                                      const std::function<bool(std::string_view)>& user_exists);

// The AccessControlPolicy document as S3 returns it for GetBucketAcl / GetObjectAcl:
//   <AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
//     <Owner><ID/><DisplayName/></Owner>
//     <AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
//       xsi:type="CanonicalUser"><ID/><DisplayName/></Grantee><Permission/></Grant>...
// Group grantees are written with xsi:type="Group" and <URI>. `display_name(id)` gives the
// display name of a canonical id ("" leaves DisplayName out).
std::string AclToXml(const meta::Acl& acl, const std::function<std::string(std::string_view)>& display_name);

// Parses an AccessControlPolicy body (PutBucketAcl / PutObjectAcl). The Owner/ID must equal
// `owner` (S3: AccessDenied otherwise; reported as Status AccessDenied "the ACL's owner is not
// the resource's owner", Cairn having no separate permission code). Grantees, told apart by the
// xsi:type attribute (required, as in S3): CanonicalUser with ID (must satisfy user_exists, else
// InvalidArgument "Invalid id"), Group with a known URI (else InvalidArgument, as for the
// headers), AmazonCustomerByEmail -> NotSupported. DisplayName elements are ignored and values
// are trimmed of whitespace. Errors: MalformedXml for anything that is not such a document (no
// Owner/ID, no AccessControlList, unknown permission, missing or repeated Grantee/Permission,
// missing or unknown xsi:type, a grantee without its ID/URI, ...). An empty AccessControlList is
// valid and gives no grants. When several errors apply, MalformedXml wins over AccessDenied,
// which wins over the grantee errors, so a client always learns first that the body is wrong.
Result<meta::Acl> AclFromXml(std::string_view body, std::string_view owner,
                             const std::function<bool(std::string_view)>& user_exists);

// Who is asking, for ACL evaluation.
struct AclRequester {
  bool anonymous = true;
  std::string canonical_id;  // empty when anonymous
};

// True when `acl` grants `wanted` to the requester: a grant of `wanted` or FULL_CONTROL to the
// requester's id, to AllUsers, or (when not anonymous) to AuthenticatedUsers. The owner has
// READ_ACP and WRITE_ACP implicitly (S3: an owner can always read and change its ACL), but READ
// and WRITE only through grants. An Acl with an empty owner is not consulted here (the caller
// substitutes the bucket owner first).
bool AclAllows(const meta::Acl& acl, const AclRequester& requester, meta::AclPermission wanted);

}  // namespace cairn::gateway
