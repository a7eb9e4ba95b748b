// Tests for S3 ACLs: canned ACL expansion, x-amz-grant-* headers, the AccessControlPolicy document
// in both directions (including the exact body botocore sends and every truncation of it) and
// permission checks.
#include "gateway/acl.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace cairn::gateway {
namespace {

using meta::Acl;
using meta::AclPermission;
using meta::Grant;
using meta::GranteeType;

constexpr std::string_view kOwner = "owner-id";
constexpr std::string_view kOther = "other-id";

Grant User(std::string_view id, AclPermission p) { return Grant{GranteeType::kCanonicalUser, std::string(id), p}; }
Grant Group(std::string_view uri, AclPermission p) { return Grant{GranteeType::kGroup, std::string(uri), p}; }
Acl MakeAcl(std::string_view owner, std::vector<Grant> grants) { return Acl{std::string(owner), std::move(grants)}; }

bool KnownUser(std::string_view id) { return id == kOwner || id == kOther || id == "id"; }
std::string DisplayName(std::string_view id) { return id == "id" ? "name" : id == kOwner ? "Owner Name" : ""; }

Result<Acl> FromHeaders(std::vector<GrantHeader> headers) { return AclFromGrantHeaders(headers, kOwner, KnownUser); }
Result<Acl> FromHeader(std::string_view name, std::string_view value) {
  return FromHeaders({GrantHeader{std::string(name), std::string(value)}});
}
Result<Acl> FromXml(std::string_view body, std::string_view owner = kOwner) {
  return AclFromXml(body, owner, KnownUser);
}

// ---- Permission names -----------------------------------------------------------------------

TEST(AclPermissionTest, NamesRoundTripAndAreCaseSensitive) {
  for (const AclPermission p : {AclPermission::kRead, AclPermission::kWrite, AclPermission::kReadAcp,
                                AclPermission::kWriteAcp, AclPermission::kFullControl}) {
    EXPECT_EQ(PermissionFromName(PermissionName(p)), p);
  }
  EXPECT_EQ(PermissionName(AclPermission::kReadAcp), "READ_ACP");
  EXPECT_EQ(PermissionName(AclPermission::kFullControl), "FULL_CONTROL");
  EXPECT_EQ(PermissionFromName("read"), std::nullopt);
  EXPECT_EQ(PermissionFromName("FULLCONTROL"), std::nullopt);
  EXPECT_EQ(PermissionFromName(""), std::nullopt);
}

// ---- Canned ACLs ----------------------------------------------------------------------------

TEST(CannedAclTest, Private) {
  Result<Acl> acl = CannedAcl("private", kOwner, kOther);
  ASSERT_OK(acl);
  EXPECT_EQ(*acl, MakeAcl(kOwner, {User(kOwner, AclPermission::kFullControl)}));
}

TEST(CannedAclTest, PublicRead) {
  Result<Acl> acl = CannedAcl("public-read", kOwner, kOwner);
  ASSERT_OK(acl);
  EXPECT_EQ(*acl,
            MakeAcl(kOwner, {User(kOwner, AclPermission::kFullControl), Group(kAllUsersGroup, AclPermission::kRead)}));
}

TEST(CannedAclTest, PublicReadWrite) {
  Result<Acl> acl = CannedAcl("public-read-write", kOwner, kOwner);
  ASSERT_OK(acl);
  EXPECT_EQ(*acl,
            MakeAcl(kOwner, {User(kOwner, AclPermission::kFullControl), Group(kAllUsersGroup, AclPermission::kRead),
                             Group(kAllUsersGroup, AclPermission::kWrite)}));
}

TEST(CannedAclTest, AuthenticatedRead) {
  Result<Acl> acl = CannedAcl("authenticated-read", kOwner, kOwner);
  ASSERT_OK(acl);
  EXPECT_EQ(*acl, MakeAcl(kOwner, {User(kOwner, AclPermission::kFullControl),
                                   Group(kAuthenticatedUsersGroup, AclPermission::kRead)}));
}

TEST(CannedAclTest, BucketOwnerReadGrantsTheBucketOwnerOnAnotherOwnersObject) {
  Result<Acl> acl = CannedAcl("bucket-owner-read", kOwner, kOther);
  ASSERT_OK(acl);
  EXPECT_EQ(*acl, MakeAcl(kOwner, {User(kOwner, AclPermission::kFullControl), User(kOther, AclPermission::kRead)}));
}

TEST(CannedAclTest, BucketOwnerFullControlGrantsTheBucketOwnerOnAnotherOwnersObject) {
  Result<Acl> acl = CannedAcl("bucket-owner-full-control", kOwner, kOther);
  ASSERT_OK(acl);
  EXPECT_EQ(*acl,
            MakeAcl(kOwner, {User(kOwner, AclPermission::kFullControl), User(kOther, AclPermission::kFullControl)}));
}

TEST(CannedAclTest, BucketOwnerAclsAreLikePrivateWhenTheOwnerIsTheBucketOwner) {
  const Acl priv = MakeAcl(kOwner, {User(kOwner, AclPermission::kFullControl)});
  for (const std::string_view canned : {"bucket-owner-read", "bucket-owner-full-control"}) {
    Result<Acl> acl = CannedAcl(canned, kOwner, kOwner);
    ASSERT_OK(acl);
    EXPECT_EQ(*acl, priv) << canned;
  }
}

TEST(CannedAclTest, LogDeliveryWrite) {
  Result<Acl> acl = CannedAcl("log-delivery-write", kOwner, kOwner);
  ASSERT_OK(acl);
  EXPECT_EQ(*acl,
            MakeAcl(kOwner, {User(kOwner, AclPermission::kFullControl), Group(kLogDeliveryGroup, AclPermission::kWrite),
                             Group(kLogDeliveryGroup, AclPermission::kReadAcp)}));
}

TEST(CannedAclTest, UnknownOrMiscasedNamesAreInvalidArgument) {
  for (const std::string_view canned : {"", "Private", "PUBLIC-READ", "public_read", "aws-exec-read ", "nope"}) {
    EXPECT_TRUE(CannedAcl(canned, kOwner, kOwner).status().IsInvalidArgument()) << canned;
  }
}

// ---- x-amz-grant-* headers ------------------------------------------------------------------

TEST(GrantHeaderTest, EachHeaderGivesItsPermission) {
  Result<Acl> acl = FromHeaders({{"x-amz-grant-read", "id=other-id"},
                                 {"x-amz-grant-write", "id=other-id"},
                                 {"x-amz-grant-read-acp", "id=other-id"},
                                 {"x-amz-grant-write-acp", "id=other-id"},
                                 {"x-amz-grant-full-control", "id=owner-id"}});
  ASSERT_OK(acl);
  EXPECT_EQ(*acl, MakeAcl(kOwner, {User(kOther, AclPermission::kRead), User(kOther, AclPermission::kWrite),
                                   User(kOther, AclPermission::kReadAcp), User(kOther, AclPermission::kWriteAcp),
                                   User(kOwner, AclPermission::kFullControl)}));
}

TEST(GrantHeaderTest, TheOwnerGetsNoImplicitGrant) {
  Result<Acl> acl = FromHeader("x-amz-grant-read", "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"");
  ASSERT_OK(acl);
  EXPECT_EQ(*acl, MakeAcl(kOwner, {Group(kAllUsersGroup, AclPermission::kRead)}));
  Result<Acl> none = FromHeaders({});
  ASSERT_OK(none);
  EXPECT_EQ(*none, MakeAcl(kOwner, {}));
}

TEST(GrantHeaderTest, AcceptsQuotesSpacesAndAnyCaseOfTheKeys) {
  const Acl want = MakeAcl(kOwner, {User(kOther, AclPermission::kRead)});
  for (const std::string_view value : {"id=other-id", "id=\"other-id\"", "ID=other-id", "Id = \"other-id\"",
                                       "  id  =  other-id  ", "\tid=\"other-id\" "}) {
    Result<Acl> acl = FromHeader("x-amz-grant-read", value);
    ASSERT_TRUE(acl.ok()) << value << " -> " << acl.status();
    EXPECT_EQ(*acl, want) << value;
  }
}

TEST(GrantHeaderTest, ParsesSeveralGranteesInOrder) {
  Result<Acl> acl = FromHeader("x-amz-grant-read",
                               "id=\"other-id\", uri=\"http://acs.amazonaws.com/groups/global/AuthenticatedUsers\" ,"
                               "URI=http://acs.amazonaws.com/groups/s3/LogDelivery,id=owner-id");
  ASSERT_OK(acl);
  EXPECT_EQ(*acl,
            MakeAcl(kOwner, {User(kOther, AclPermission::kRead), Group(kAuthenticatedUsersGroup, AclPermission::kRead),
                             Group(kLogDeliveryGroup, AclPermission::kRead), User(kOwner, AclPermission::kRead)}));
}

TEST(GrantHeaderTest, MalformedValuesAreInvalidArgument) {
  for (const std::string_view value :
       {"", "   ", "id", "id=", "id=\"\"", "=other-id", "id=\"other-id", "id=other-id,", ",id=other-id",
        "id=other-id,,id=owner-id", "id=\"other-id\"x", "id=\"other-id\" id=owner-id", "id other-id", "id==other-id",
        "id=other\"-id", "foo=bar", "canonical=other-id"}) {
    Result<Acl> acl = FromHeader("x-amz-grant-read", value);
    EXPECT_TRUE(acl.status().IsInvalidArgument()) << "'" << value << "' -> " << acl.status();
  }
}

TEST(GrantHeaderTest, UnknownGroupUriIsInvalidArgument) {
  for (const std::string_view value : {"uri=http://acs.amazonaws.com/groups/global/Nobody",
                                       "uri=\"http://acs.amazonaws.com/groups/global/allusers\"", "uri=AllUsers"}) {
    EXPECT_TRUE(FromHeader("x-amz-grant-read", value).status().IsInvalidArgument()) << value;
  }
}

TEST(GrantHeaderTest, EmailAddressIsNotSupported) {
  EXPECT_TRUE(FromHeader("x-amz-grant-read", "emailAddress=\"a@example.com\"").status().IsNotSupported());
  EXPECT_TRUE(FromHeader("x-amz-grant-write", "id=other-id, EMAILADDRESS=a@example.com").status().IsNotSupported());
}

TEST(GrantHeaderTest, UnknownIdIsInvalidArgumentInvalidId) {
  Result<Acl> acl = FromHeader("x-amz-grant-full-control", "id=\"nobody\"");
  ASSERT_TRUE(acl.status().IsInvalidArgument()) << acl.status();
  EXPECT_EQ(acl.status().message(), "Invalid id");
}

TEST(GrantHeaderTest, AsksUserExistsForEveryId) {
  std::vector<std::string> asked;
  Result<Acl> acl = AclFromGrantHeaders({{"x-amz-grant-read", "id=a, id=b"}, {"x-amz-grant-write", "id=c"}}, kOwner,
                                        [&](std::string_view id) {
                                          asked.emplace_back(id);
                                          return true;
                                        });
  ASSERT_OK(acl);
  EXPECT_EQ(asked, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(GrantHeaderTest, AHeaderThatIsNotAGrantHeaderIsInvalidArgument) {
  EXPECT_TRUE(FromHeader("x-amz-acl", "id=other-id").status().IsInvalidArgument());
}

// ---- AccessControlPolicy XML ----------------------------------------------------------------

// The body botocore sends for put_bucket_acl(AccessControlPolicy=...), and what S3 returns.
constexpr std::string_view kBotocoreBody =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>id</ID><DisplayName>name"
    "</DisplayName></Owner><AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
    "xsi:type=\"CanonicalUser\"><ID>id</ID><DisplayName>name</DisplayName></Grantee><Permission>FULL_CONTROL"
    "</Permission></Grant><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">"
    "<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant>"
    "</AccessControlList></AccessControlPolicy>";

const Acl kBotocoreAcl =
    MakeAcl("id", {User("id", AclPermission::kFullControl), Group(kAllUsersGroup, AclPermission::kRead)});

TEST(AclXmlTest, WritesTheDocumentS3Returns) { EXPECT_EQ(AclToXml(kBotocoreAcl, DisplayName), kBotocoreBody); }

TEST(AclXmlTest, LeavesOutAnEmptyDisplayName) {
  const std::string xml = AclToXml(MakeAcl(kOther, {User(kOther, AclPermission::kRead)}), DisplayName);
  EXPECT_NE(xml.find("<Owner><ID>other-id</ID></Owner>"), std::string::npos) << xml;
  EXPECT_EQ(xml.find("DisplayName"), std::string::npos) << xml;
}

TEST(AclXmlTest, ReadsTheBotocoreBody) {
  Result<Acl> acl = FromXml(kBotocoreBody, "id");
  ASSERT_OK(acl);
  EXPECT_EQ(*acl, kBotocoreAcl);
}

TEST(AclXmlTest, RoundTrips) {
  const std::vector<Acl> acls = {
      MakeAcl(kOwner, {}),
      MakeAcl(kOwner, {User(kOwner, AclPermission::kFullControl)}),
      MakeAcl(kOwner,
              {User(kOther, AclPermission::kRead), User(kOther, AclPermission::kWrite),
               User(kOther, AclPermission::kReadAcp), User(kOther, AclPermission::kWriteAcp),
               Group(kAllUsersGroup, AclPermission::kRead), Group(kAuthenticatedUsersGroup, AclPermission::kWrite),
               Group(kLogDeliveryGroup, AclPermission::kReadAcp), User(kOwner, AclPermission::kFullControl)}),
  };
  for (const Acl& acl : acls) {
    const std::string xml = AclToXml(acl, DisplayName);
    Result<Acl> back = FromXml(xml);
    ASSERT_TRUE(back.ok()) << xml << " -> " << back.status();
    EXPECT_EQ(*back, acl) << xml;
  }
  for (const std::string_view canned : {"private", "public-read", "public-read-write", "authenticated-read",
                                        "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write"}) {
    Result<Acl> acl = CannedAcl(canned, kOwner, kOther);
    ASSERT_OK(acl);
    Result<Acl> back = FromXml(AclToXml(*acl, DisplayName));
    ASSERT_TRUE(back.ok()) << canned << " -> " << back.status();
    EXPECT_EQ(*back, *acl) << canned;
  }
}

TEST(AclXmlTest, AcceptsAnEmptyListPrettyPrintingAndOtherPrefixes) {
  Result<Acl> empty =
      FromXml("<AccessControlPolicy><Owner><ID>owner-id</ID></Owner><AccessControlList/></AccessControlPolicy>");
  ASSERT_OK(empty);
  EXPECT_EQ(*empty, MakeAcl(kOwner, {}));

  Result<Acl> pretty = FromXml(
      "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
      "  <Owner>\n    <ID> owner-id </ID>\n  </Owner>\n  <AccessControlList>\n"
      "    <Grant>\n      <Grantee xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\" i:type=\"Group\">\n"
      "        <URI>\n http://acs.amazonaws.com/groups/global/AuthenticatedUsers\n</URI>\n      </Grantee>\n"
      "      <Permission> WRITE </Permission>\n    </Grant>\n  </AccessControlList>\n</AccessControlPolicy>\n");
  ASSERT_OK(pretty);
  EXPECT_EQ(*pretty, MakeAcl(kOwner, {Group(kAuthenticatedUsersGroup, AclPermission::kWrite)}));
}

// A document with one grant whose Grant element body is `grant`.
std::string OneGrant(std::string_view grant, std::string_view owner = kOwner) {
  return "<AccessControlPolicy><Owner><ID>" + std::string(owner) + "</ID></Owner><AccessControlList><Grant>" +
         std::string(grant) + "</Grant></AccessControlList></AccessControlPolicy>";
}
constexpr std::string_view kUserGrantee =
    "<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">"
    "<ID>other-id</ID></Grantee>";

TEST(AclXmlTest, MalformedDocumentsAreMalformedXml) {
  const std::string grantee(kUserGrantee);
  const std::vector<std::string> bodies = {
      "",
      "<AccessControlPolicy>",
      "not xml",
      // wrong root
      "<AccessControlList><Owner><ID>owner-id</ID></Owner><AccessControlList/></AccessControlList>",
      // no Owner, Owner without ID, ID with children, no AccessControlList, repeated list
      "<AccessControlPolicy><AccessControlList/></AccessControlPolicy>",
      "<AccessControlPolicy><Owner/><AccessControlList/></AccessControlPolicy>",
      "<AccessControlPolicy><Owner><ID><X/></ID></Owner><AccessControlList/></AccessControlPolicy>",
      "<AccessControlPolicy><Owner><ID>owner-id</ID></Owner></AccessControlPolicy>",
      "<AccessControlPolicy><Owner><ID>owner-id</ID></Owner><AccessControlList/><AccessControlList/>"
      "</AccessControlPolicy>",
      // missing or repeated Permission / Grantee, unknown permission
      OneGrant(grantee),
      OneGrant("<Permission>READ</Permission>"),
      OneGrant(grantee + "<Permission>READ</Permission><Permission>WRITE</Permission>"),
      OneGrant(grantee + grantee + "<Permission>READ</Permission>"),
      OneGrant(grantee + "<Permission>read</Permission>"),
      OneGrant(grantee + "<Permission>EVERYTHING</Permission>"),
      OneGrant(grantee + "<Permission></Permission>"),
      // unknown or missing xsi:type, a grantee without its ID or URI
      OneGrant("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Robot\"><ID>other-id</ID>"
               "</Grantee><Permission>READ</Permission>"),
      OneGrant("<Grantee><ID>other-id</ID></Grantee><Permission>READ</Permission>"),
      OneGrant("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">"
               "<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission>"),
      OneGrant("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\"><ID>other-id</ID>"
               "</Grantee><Permission>READ</Permission>"),
  };
  for (const std::string& body : bodies) {
    Result<Acl> acl = FromXml(body);
    EXPECT_TRUE(acl.status().IsMalformedXml()) << body << " -> " << acl.status();
  }
}

TEST(AclXmlTest, OwnerMismatchIsAccessDenied) {
  Result<Acl> acl = FromXml(kBotocoreBody, kOwner);
  ASSERT_TRUE(acl.status().IsAccessDenied()) << acl.status();
  EXPECT_EQ(acl.status().message(), "the ACL's owner is not the resource's owner");
}

TEST(AclXmlTest, UnknownIdIsInvalidArgument) {
  Result<Acl> acl = FromXml(OneGrant(
      "<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>nobody</ID>"
      "</Grantee><Permission>READ</Permission>"));
  ASSERT_TRUE(acl.status().IsInvalidArgument()) << acl.status();
  EXPECT_EQ(acl.status().message(), "Invalid id");
}

TEST(AclXmlTest, UnknownGroupIsInvalidArgument) {
  Result<Acl> acl = FromXml(
      OneGrant("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">"
               "<URI>http://acs.amazonaws.com/groups/global/Everyone</URI></Grantee><Permission>READ</Permission>"));
  EXPECT_TRUE(acl.status().IsInvalidArgument()) << acl.status();
}

TEST(AclXmlTest, EmailGranteeIsNotSupported) {
  Result<Acl> acl = FromXml(
      OneGrant("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"AmazonCustomerByEmail\">"
               "<EmailAddress>a@example.com</EmailAddress></Grantee><Permission>READ</Permission>"));
  EXPECT_TRUE(acl.status().IsNotSupported()) << acl.status();
}

TEST(AclXmlTest, ShapeErrorsComeBeforeOwnerAndGranteeErrors) {
  // An unknown id in the first grant, a missing Permission in the second, another owner.
  const std::string body =
      "<AccessControlPolicy><Owner><ID>other-id</ID></Owner><AccessControlList><Grant><Grantee "
      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>nobody</ID></Grantee>"
      "<Permission>READ</Permission></Grant><Grant>" +
      std::string(kUserGrantee) + "</Grant></AccessControlList></AccessControlPolicy>";
  EXPECT_TRUE(FromXml(body).status().IsMalformedXml()) << FromXml(body).status();
}

TEST(AclXmlTest, EveryTruncationOfTheBotocoreBodyFailsCleanly) {
  for (size_t len = 0; len < kBotocoreBody.size(); ++len) {
    const std::string prefix(kBotocoreBody.substr(0, len));
    Result<Acl> acl = FromXml(prefix, "id");
    EXPECT_TRUE(acl.status().IsMalformedXml()) << len << ": " << acl.status();
  }
  const std::string full = AclToXml(MakeAcl(kOwner, {User(kOther, AclPermission::kWrite)}), DisplayName);
  for (size_t len = 0; len < full.size(); ++len) {
    const std::string prefix(full.substr(0, len));
    EXPECT_TRUE(FromXml(prefix).status().IsMalformedXml()) << len;
  }
}

// ---- AclAllows ------------------------------------------------------------------------------

const AclRequester kAnonymous{};
const AclRequester kOwnerUser{false, std::string(kOwner)};
const AclRequester kOtherUser{false, std::string(kOther)};
const AclRequester kThirdUser{false, "third-id"};

constexpr AclPermission kAll[] = {AclPermission::kRead, AclPermission::kWrite, AclPermission::kReadAcp,
                                  AclPermission::kWriteAcp, AclPermission::kFullControl};

TEST(AclAllowsTest, TheOwnerMayAlwaysReadAndWriteTheAclButNeedsGrantsForData) {
  const Acl bare = MakeAcl(kOwner, {});
  EXPECT_TRUE(AclAllows(bare, kOwnerUser, AclPermission::kReadAcp));
  EXPECT_TRUE(AclAllows(bare, kOwnerUser, AclPermission::kWriteAcp));
  EXPECT_FALSE(AclAllows(bare, kOwnerUser, AclPermission::kRead));
  EXPECT_FALSE(AclAllows(bare, kOwnerUser, AclPermission::kWrite));
  EXPECT_FALSE(AclAllows(bare, kOwnerUser, AclPermission::kFullControl));
  EXPECT_FALSE(AclAllows(bare, kOtherUser, AclPermission::kReadAcp));
}

TEST(AclAllowsTest, FullControlImpliesEverything) {
  const Acl acl = MakeAcl(kOwner, {User(kOther, AclPermission::kFullControl)});
  for (const AclPermission p : kAll) {
    EXPECT_TRUE(AclAllows(acl, kOtherUser, p)) << PermissionName(p);
    EXPECT_FALSE(AclAllows(acl, kThirdUser, p)) << PermissionName(p);
    EXPECT_FALSE(AclAllows(acl, kAnonymous, p)) << PermissionName(p);
  }
  Result<Acl> priv = CannedAcl("private", kOwner, kOwner);
  ASSERT_OK(priv);
  for (const AclPermission p : kAll) EXPECT_TRUE(AclAllows(*priv, kOwnerUser, p)) << PermissionName(p);
}

TEST(AclAllowsTest, AUserGrantGivesExactlyThatPermissionToThatUser) {
  const Acl acl = MakeAcl(kOwner, {User(kOther, AclPermission::kRead)});
  EXPECT_TRUE(AclAllows(acl, kOtherUser, AclPermission::kRead));
  EXPECT_FALSE(AclAllows(acl, kOtherUser, AclPermission::kWrite));
  EXPECT_FALSE(AclAllows(acl, kOtherUser, AclPermission::kReadAcp));
  EXPECT_FALSE(AclAllows(acl, kOtherUser, AclPermission::kFullControl));
  EXPECT_FALSE(AclAllows(acl, kThirdUser, AclPermission::kRead));
  EXPECT_FALSE(AclAllows(acl, kAnonymous, AclPermission::kRead));
}

TEST(AclAllowsTest, AllUsersIncludesAnonymousRequesters) {
  Result<Acl> acl = CannedAcl("public-read", kOwner, kOwner);
  ASSERT_OK(acl);
  EXPECT_TRUE(AclAllows(*acl, kAnonymous, AclPermission::kRead));
  EXPECT_TRUE(AclAllows(*acl, kThirdUser, AclPermission::kRead));
  EXPECT_FALSE(AclAllows(*acl, kAnonymous, AclPermission::kWrite));
  EXPECT_FALSE(AclAllows(*acl, kAnonymous, AclPermission::kReadAcp));
}

TEST(AclAllowsTest, AuthenticatedUsersExcludesAnonymousRequesters) {
  Result<Acl> acl = CannedAcl("authenticated-read", kOwner, kOwner);
  ASSERT_OK(acl);
  EXPECT_FALSE(AclAllows(*acl, kAnonymous, AclPermission::kRead));
  EXPECT_TRUE(AclAllows(*acl, kThirdUser, AclPermission::kRead));
  EXPECT_FALSE(AclAllows(*acl, kThirdUser, AclPermission::kWrite));
}

TEST(AclAllowsTest, LogDeliveryGrantsNobodyHere) {
  Result<Acl> acl = CannedAcl("log-delivery-write", kOwner, kOwner);
  ASSERT_OK(acl);
  EXPECT_FALSE(AclAllows(*acl, kThirdUser, AclPermission::kWrite));
  EXPECT_FALSE(AclAllows(*acl, kAnonymous, AclPermission::kWrite));
}

TEST(AclAllowsTest, AnAnonymousRequesterNeverMatchesAUserGrant) {
  // Defensive: a grant to an empty id and an anonymous requester with an id both stay closed.
  const Acl acl = MakeAcl("", {User("", AclPermission::kFullControl), User(kOther, AclPermission::kRead)});
  EXPECT_FALSE(AclAllows(acl, kAnonymous, AclPermission::kRead));
  EXPECT_FALSE(AclAllows(acl, kAnonymous, AclPermission::kReadAcp));
  EXPECT_FALSE(AclAllows(acl, AclRequester{true, std::string(kOther)}, AclPermission::kRead));
}

}  // namespace
}  // namespace cairn::gateway
