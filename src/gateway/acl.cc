// S3 ACLs: canned ACLs, grant headers, the AccessControlPolicy document and permission checks;
// see acl.h. Thread-safety: pure functions.
#include "gateway/acl.h"

#include <array>
#include <utility>

#include "gateway/text.h"
#include "gateway/xml.h"

namespace cairn::gateway {
namespace {

using meta::Acl;
using meta::AclPermission;
using meta::Grant;
using meta::GranteeType;

// The xsi namespace the Grantee element's type attribute lives in, and the type names S3 uses.
constexpr std::string_view kXsiNamespace = "http://www.w3.org/2001/XMLSchema-instance";
constexpr std::string_view kXsiCanonicalUser = "CanonicalUser";
constexpr std::string_view kXsiGroup = "Group";
constexpr std::string_view kXsiEmail = "AmazonCustomerByEmail";

constexpr std::array<std::pair<AclPermission, std::string_view>, 5> kPermissionNames = {{
    {AclPermission::kRead, "READ"},
    {AclPermission::kWrite, "WRITE"},
    {AclPermission::kReadAcp, "READ_ACP"},
    {AclPermission::kWriteAcp, "WRITE_ACP"},
    {AclPermission::kFullControl, "FULL_CONTROL"},
}};

constexpr std::array<std::pair<std::string_view, AclPermission>, 5> kGrantHeaders = {{
    {"x-amz-grant-read", AclPermission::kRead},
    {"x-amz-grant-write", AclPermission::kWrite},
    {"x-amz-grant-read-acp", AclPermission::kReadAcp},
    {"x-amz-grant-write-acp", AclPermission::kWriteAcp},
    {"x-amz-grant-full-control", AclPermission::kFullControl},
}};

bool IsKnownGroup(std::string_view uri) {
  return uri == kAllUsersGroup || uri == kAuthenticatedUsersGroup || uri == kLogDeliveryGroup;
}

Status InvalidId() { return Status::InvalidArgument("Invalid id"); }

Status UnknownGroup(std::string_view uri) { return Status::InvalidArgument("Invalid group uri: " + std::string(uri)); }

// Checks one grantee and appends its grant. Shared by the header and the XML forms so that both
// refuse the same ids and URIs with the same errors.
Status AddGrant(GranteeType type, std::string_view grantee, AclPermission permission,
                const std::function<bool(std::string_view)>& user_exists, Acl* acl) {
  if (type == GranteeType::kCanonicalUser) {
    if (grantee.empty() || !user_exists(grantee)) return InvalidId();
  } else if (!IsKnownGroup(grantee)) {
    return UnknownGroup(grantee);
  }
  acl->grants.push_back(Grant{type, std::string(grantee), permission});
  return Status::OK();
}

// ---- x-amz-grant-* values -------------------------------------------------------------------

Status MalformedGrant(std::string_view header, std::string_view why) {
  return Status::InvalidArgument(std::string(header) + ": " + std::string(why));
}

// Parses `key=value, key="value", ...` into grants of `permission`. Keys are case-insensitive;
// whitespace around ',' and '=' is allowed; a quoted value runs to the next '"' (S3 defines no
// escapes in it), an unquoted one to the next ',' with trailing whitespace cut.
Status ParseGrantValue(std::string_view header, std::string_view value, AclPermission permission,
                       const std::function<bool(std::string_view)>& user_exists, Acl* acl) {
  size_t i = 0;
  const auto skip_space = [&] {
    while (i < value.size() && IsXmlSpace(value[i])) ++i;
  };
  for (;;) {
    skip_space();
    const size_t key_start = i;
    while (i < value.size() && value[i] != '=' && value[i] != ',' && !IsXmlSpace(value[i])) ++i;
    const std::string_view key = value.substr(key_start, i - key_start);
    if (key.empty()) return MalformedGrant(header, "expected grantee=value");
    skip_space();
    if (i >= value.size() || value[i] != '=') return MalformedGrant(header, "expected '=' after the grantee type");
    ++i;
    skip_space();
    std::string_view grantee;
    if (i < value.size() && value[i] == '"') {
      const size_t close = value.find('"', i + 1);
      if (close == std::string_view::npos) return MalformedGrant(header, "unterminated quoted value");
      grantee = value.substr(i + 1, close - i - 1);
      i = close + 1;
    } else {
      const size_t start = i;
      while (i < value.size() && value[i] != ',') ++i;
      grantee = TrimXmlSpace(value.substr(start, i - start));
      if (grantee.find('"') != std::string_view::npos) return MalformedGrant(header, "stray '\"' in a value");
    }
    if (grantee.empty()) return MalformedGrant(header, "empty grantee value");

    if (EqualsIgnoreCase(key, "id")) {
      CAIRN_RETURN_IF_ERROR(AddGrant(GranteeType::kCanonicalUser, grantee, permission, user_exists, acl));
    } else if (EqualsIgnoreCase(key, "uri")) {
      CAIRN_RETURN_IF_ERROR(AddGrant(GranteeType::kGroup, grantee, permission, user_exists, acl));
    } else if (EqualsIgnoreCase(key, "emailAddress")) {
      return Status::NotSupported("grants to e-mail addresses are not supported");
    } else {
      return MalformedGrant(header, "unknown grantee type '" + std::string(key) + "'");
    }

    skip_space();
    if (i >= value.size()) return Status::OK();
    if (value[i] != ',') return MalformedGrant(header, "expected ',' between grantees");
    ++i;  // a ',' must be followed by another grantee: the loop refuses an empty one
  }
}

// ---- AccessControlPolicy --------------------------------------------------------------------

Status BadAcl(std::string_view what) { return Status::MalformedXml("acl: " + std::string(what)); }

// The element's text, trimmed. Fails when it holds child elements (a value was expected).
Result<std::string_view> ValueOf(const XmlNode& n) {
  if (!n.children.empty()) return BadAcl(n.name + " has child elements");
  return TrimXmlSpace(n.text);
}

// The only child named `name`: nullptr when absent, MalformedXml when repeated.
Result<const XmlNode*> OptionalUniqueChild(const XmlNode& parent, std::string_view name) {
  const XmlNode* found = nullptr;
  for (const XmlNode& c : parent.children) {
    if (c.name != name) continue;
    if (found != nullptr) return BadAcl(parent.name + " repeats " + std::string(name));
    found = &c;
  }
  return found;
}

Result<const XmlNode*> UniqueChild(const XmlNode& parent, std::string_view name) {
  CAIRN_ASSIGN_OR_RETURN(const XmlNode* found, OptionalUniqueChild(parent, name));
  if (found == nullptr) return BadAcl(parent.name + " without " + std::string(name));
  return found;
}

Status ParseGrant(const XmlNode& grant, const std::function<bool(std::string_view)>& user_exists, Acl* acl) {
  CAIRN_ASSIGN_OR_RETURN(const XmlNode* grantee, UniqueChild(grant, "Grantee"));
  CAIRN_ASSIGN_OR_RETURN(const XmlNode* permission_node, UniqueChild(grant, "Permission"));
  CAIRN_ASSIGN_OR_RETURN(std::string_view permission_name, ValueOf(*permission_node));
  const std::optional<AclPermission> permission = PermissionFromName(permission_name);
  if (!permission) return BadAcl("unknown permission '" + std::string(permission_name) + "'");

  // The attribute is xsi:type; the parser keeps local names, and Grantee has no other "type".
  const std::string* type = grantee->Attribute("type");
  if (type == nullptr) return BadAcl("Grantee without xsi:type");
  const std::string_view xsi_type = TrimXmlSpace(*type);
  if (xsi_type == kXsiCanonicalUser) {
    CAIRN_ASSIGN_OR_RETURN(const XmlNode* id, UniqueChild(*grantee, "ID"));
    CAIRN_ASSIGN_OR_RETURN(std::string_view id_value, ValueOf(*id));
    return AddGrant(GranteeType::kCanonicalUser, id_value, *permission, user_exists, acl);
  }
  if (xsi_type == kXsiGroup) {
    CAIRN_ASSIGN_OR_RETURN(const XmlNode* uri, UniqueChild(*grantee, "URI"));
    CAIRN_ASSIGN_OR_RETURN(std::string_view uri_value, ValueOf(*uri));
    return AddGrant(GranteeType::kGroup, uri_value, *permission, user_exists, acl);
  }
  if (xsi_type == kXsiEmail) return Status::NotSupported("grants to e-mail addresses are not supported");
  return BadAcl("unknown grantee type '" + std::string(xsi_type) + "'");
}

}  // namespace

std::string_view PermissionName(AclPermission p) {
  for (const auto& [permission, name] : kPermissionNames) {
    if (permission == p) return name;
  }
  return "UNKNOWN";  // unreachable for a valid enum value
}

std::optional<AclPermission> PermissionFromName(std::string_view name) {
  for (const auto& [permission, n] : kPermissionNames) {
    if (n == name) return permission;
  }
  return std::nullopt;
}

Result<Acl> CannedAcl(std::string_view canned, std::string_view owner, std::string_view bucket_owner) {
  Acl acl;
  acl.owner = std::string(owner);
  acl.grants.push_back(Grant{GranteeType::kCanonicalUser, std::string(owner), AclPermission::kFullControl});
  const auto group = [&](std::string_view uri, AclPermission p) {
    acl.grants.push_back(Grant{GranteeType::kGroup, std::string(uri), p});
  };
  // On a bucket the caller passes bucket_owner == owner, which makes the bucket-owner ACLs
  // private there, as S3 documents.
  const auto bucket_owner_grant = [&](AclPermission p) {
    if (bucket_owner == owner) return;
    acl.grants.push_back(Grant{GranteeType::kCanonicalUser, std::string(bucket_owner), p});
  };
  if (canned == "private") {
    // the owner's grant alone
  } else if (canned == "public-read") {
    group(kAllUsersGroup, AclPermission::kRead);
  } else if (canned == "public-read-write") {
    group(kAllUsersGroup, AclPermission::kRead);
    group(kAllUsersGroup, AclPermission::kWrite);
  } else if (canned == "authenticated-read") {
    group(kAuthenticatedUsersGroup, AclPermission::kRead);
  } else if (canned == "bucket-owner-read") {
    bucket_owner_grant(AclPermission::kRead);
  } else if (canned == "bucket-owner-full-control") {
    bucket_owner_grant(AclPermission::kFullControl);
  } else if (canned == "log-delivery-write") {
    group(kLogDeliveryGroup, AclPermission::kWrite);
    group(kLogDeliveryGroup, AclPermission::kReadAcp);
  } else {
    return Status::InvalidArgument("unknown canned ACL '" + std::string(canned) + "'");
  }
  return acl;
}

Result<Acl> AclFromGrantHeaders(const std::vector<GrantHeader>& headers, std::string_view owner,
                                const std::function<bool(std::string_view)>& user_exists) {
  Acl acl;
  acl.owner = std::string(owner);
  for (const GrantHeader& h : headers) {
    const AclPermission* permission = nullptr;
    for (const auto& [name, p] : kGrantHeaders) {
      if (EqualsIgnoreCase(name, h.name)) permission = &p;
    }
    if (permission == nullptr) return Status::InvalidArgument("not a grant header: " + h.name);
    CAIRN_RETURN_IF_ERROR(ParseGrantValue(h.name, h.value, *permission, user_exists, &acl));
  }
  return acl;
}

std::string AclToXml(const Acl& acl, const std::function<std::string(std::string_view)>& display_name) {
  XmlWriter w;
  w.Declaration();
  w.Open("AccessControlPolicy", kS3XmlNamespace);
  const auto user = [&](std::string_view id) {
    w.Element("ID", id);
    const std::string name = display_name(id);
    if (!name.empty()) w.Element("DisplayName", name);
  };
  w.Open("Owner");
  user(acl.owner);
  w.Close();
  w.Open("AccessControlList");
  for (const Grant& g : acl.grants) {
    w.Open("Grant");
    const bool is_user = g.type == GranteeType::kCanonicalUser;
    w.OpenWithAttributes("Grantee",
                         {{"xmlns:xsi", kXsiNamespace}, {"xsi:type", is_user ? kXsiCanonicalUser : kXsiGroup}});
    if (is_user) {
      user(g.grantee);
    } else {
      w.Element("URI", g.grantee);
    }
    w.Close();
    w.Element("Permission", PermissionName(g.permission));
    w.Close();
  }
  w.Close();
  w.Close();
  return w.Take();
}

Result<Acl> AclFromXml(std::string_view body, std::string_view owner,
                       const std::function<bool(std::string_view)>& user_exists) {
  CAIRN_ASSIGN_OR_RETURN(XmlNode root, ParseXml(body));
  if (root.name != "AccessControlPolicy") return BadAcl("root element is not AccessControlPolicy");
  // S3 requires the Owner and the AccessControlList (which may be empty); everything is checked
  // for shape before the owner is compared, so a malformed body is always MalformedXml.
  CAIRN_ASSIGN_OR_RETURN(const XmlNode* owner_node, UniqueChild(root, "Owner"));
  CAIRN_ASSIGN_OR_RETURN(const XmlNode* owner_id, UniqueChild(*owner_node, "ID"));
  CAIRN_ASSIGN_OR_RETURN(std::string_view owner_value, ValueOf(*owner_id));
  CAIRN_ASSIGN_OR_RETURN(const XmlNode* list, UniqueChild(root, "AccessControlList"));

  Acl acl;
  acl.owner = std::string(owner);
  Status first_error;  // a semantic error (unknown id, e-mail grantee) waits for the shape check
  for (const XmlNode& grant : list->children) {
    if (grant.name != "Grant") continue;
    const Status s = ParseGrant(grant, user_exists, &acl);
    if (s.IsMalformedXml()) return s;
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  if (owner_value != owner) return Status::AccessDenied("the ACL's owner is not the resource's owner");
  if (!first_error.ok()) return first_error;
  return acl;
}

bool AclAllows(const Acl& acl, const AclRequester& requester, AclPermission wanted) {
  const bool known_user = !requester.anonymous && !requester.canonical_id.empty();
  if (known_user && requester.canonical_id == acl.owner &&
      (wanted == AclPermission::kReadAcp || wanted == AclPermission::kWriteAcp)) {
    return true;
  }
  for (const Grant& g : acl.grants) {
    if (g.permission != wanted && g.permission != AclPermission::kFullControl) continue;
    if (g.type == GranteeType::kCanonicalUser) {
      if (known_user && g.grantee == requester.canonical_id) return true;
    } else if (g.grantee == kAllUsersGroup) {
      return true;
    } else if (g.grantee == kAuthenticatedUsersGroup && !requester.anonymous) {
      return true;
    }
  }
  return false;
}

}  // namespace cairn::gateway
