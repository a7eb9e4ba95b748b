// The authorization decision (gateway/access.h): root, policies before ACLs, Deny over Allow,
// owner-only operations, bucket ACLs for listing and writing, object ACLs for reading, and what
// an anonymous requester may learn about missing buckets and keys.
#include "gateway/access.h"

#include <gtest/gtest.h>

#include "gateway/acl.h"
#include "test_util.h"

namespace cairn::gateway {
namespace {

using meta::Acl;
using meta::AclPermission;
using meta::GranteeType;

const Principal kRoot{false, true, "root", "root-id"};
const Principal kAlice{false, false, "alice", "alice-id"};
const Principal kBob{false, false, "bob", "bob-id"};
const Principal kAnonymous{};

meta::BucketInfo Bucket(std::string_view canned = "private") {
  meta::BucketInfo b;
  b.name = "b";
  b.owner = "alice-id";
  auto acl = CannedAcl(canned, "alice-id", "alice-id");
  EXPECT_OK(acl);
  b.acl = *acl;
  return b;
}

bool Allowed(const Principal& p, S3Op op, const meta::BucketInfo* bucket, const Acl* object_acl = nullptr,
             const BucketPolicy* policy = nullptr, std::map<std::string, std::string> context = {}) {
  AccessRequest r;
  r.op = op;
  r.bucket = "b";
  r.key = "dir/k";
  r.bucket_info = bucket;
  r.object_acl = object_acl;
  r.policy = policy;
  r.context = std::move(context);
  return Authorize(p, r).allowed;
}

BucketPolicy Policy(std::string_view json) {
  auto p = BucketPolicy::Parse(json, "b");
  EXPECT_OK(p);
  return std::move(*p);
}

TEST(AccessTest, EveryOperationHasAnAction) {
  for (int i = 1; i <= static_cast<int>(S3Op::kPostObject); ++i) {
    const auto op = static_cast<S3Op>(i);
    EXPECT_TRUE(AccessFor(op).action.starts_with("s3:")) << S3OpName(op);
  }
  EXPECT_TRUE(AccessFor(S3Op::kUnknown).action.empty());
  EXPECT_TRUE(AccessFor(S3Op::kPreflight).action.empty());
}

TEST(AccessTest, RootMayDoEverythingEvenAgainstADenyPolicy) {
  const meta::BucketInfo b = Bucket();
  const BucketPolicy deny =
      Policy(R"({"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]}]})");
  for (S3Op op : {S3Op::kGetObject, S3Op::kDeleteBucket, S3Op::kPutBucketPolicy, S3Op::kListObjects}) {
    EXPECT_TRUE(Allowed(kRoot, op, &b, nullptr, &deny)) << S3OpName(op);
  }
}

TEST(AccessTest, ServiceOperationsNeedAnAuthenticatedRequester) {
  EXPECT_TRUE(Allowed(kAlice, S3Op::kListBuckets, nullptr));
  EXPECT_TRUE(Allowed(kBob, S3Op::kCreateBucket, nullptr));
  EXPECT_FALSE(Allowed(kAnonymous, S3Op::kListBuckets, nullptr));
  EXPECT_FALSE(Allowed(kAnonymous, S3Op::kCreateBucket, nullptr));
}

TEST(AccessTest, MissingBucketsAreHiddenFromAnonymousOnly) {
  EXPECT_TRUE(Allowed(kBob, S3Op::kListObjects, nullptr));  // answers NoSuchBucket
  EXPECT_FALSE(Allowed(kAnonymous, S3Op::kListObjects, nullptr));
}

TEST(AccessTest, PrivateBucketIsTheOwnersAlone) {
  const meta::BucketInfo b = Bucket();
  const Acl object = *CannedAcl("private", "alice-id", "alice-id");
  for (S3Op op : {S3Op::kListObjects, S3Op::kPutObject, S3Op::kDeleteObject, S3Op::kGetBucketAcl,
                  S3Op::kPutBucketAcl, S3Op::kGetBucketPolicy, S3Op::kPutBucketCors, S3Op::kDeleteBucket,
                  S3Op::kGetBucketLocation}) {
    EXPECT_TRUE(Allowed(kAlice, op, &b)) << S3OpName(op);
    EXPECT_FALSE(Allowed(kBob, op, &b)) << S3OpName(op);
    EXPECT_FALSE(Allowed(kAnonymous, op, &b)) << S3OpName(op);
  }
  EXPECT_TRUE(Allowed(kAlice, S3Op::kGetObject, &b, &object));
  EXPECT_FALSE(Allowed(kBob, S3Op::kGetObject, &b, &object));
}

TEST(AccessTest, CannedBucketAcls) {
  const meta::BucketInfo pr = Bucket("public-read");
  EXPECT_TRUE(Allowed(kAnonymous, S3Op::kListObjects, &pr));
  EXPECT_TRUE(Allowed(kBob, S3Op::kListObjects, &pr));
  EXPECT_FALSE(Allowed(kAnonymous, S3Op::kPutObject, &pr));
  EXPECT_FALSE(Allowed(kBob, S3Op::kGetBucketAcl, &pr));

  const meta::BucketInfo prw = Bucket("public-read-write");
  EXPECT_TRUE(Allowed(kAnonymous, S3Op::kPutObject, &prw));
  EXPECT_TRUE(Allowed(kBob, S3Op::kDeleteObject, &prw));
  EXPECT_FALSE(Allowed(kBob, S3Op::kPutBucketPolicy, &prw));  // owner-only stays owner-only

  const meta::BucketInfo ar = Bucket("authenticated-read");
  EXPECT_TRUE(Allowed(kBob, S3Op::kListObjects, &ar));
  EXPECT_FALSE(Allowed(kAnonymous, S3Op::kListObjects, &ar));
}

TEST(AccessTest, ObjectReadsFollowTheObjectAclNotTheBucketOwner) {
  const meta::BucketInfo b = Bucket("public-read-write");
  // Bob wrote it privately into Alice's bucket: Alice owns the bucket but cannot read it...
  const Acl bobs = *CannedAcl("private", "bob-id", "alice-id");
  EXPECT_TRUE(Allowed(kBob, S3Op::kGetObject, &b, &bobs));
  EXPECT_FALSE(Allowed(kAlice, S3Op::kGetObject, &b, &bobs));
  // ...unless he granted her, as bucket-owner-read does; she may still delete it (bucket WRITE).
  const Acl owner_read = *CannedAcl("bucket-owner-read", "bob-id", "alice-id");
  EXPECT_TRUE(Allowed(kAlice, S3Op::kGetObject, &b, &owner_read));
  EXPECT_FALSE(Allowed(kAlice, S3Op::kPutObjectAcl, &b, &owner_read));
  const Acl owner_full = *CannedAcl("bucket-owner-full-control", "bob-id", "alice-id");
  EXPECT_TRUE(Allowed(kAlice, S3Op::kPutObjectAcl, &b, &owner_full));
  EXPECT_TRUE(Allowed(kAlice, S3Op::kDeleteObject, &b, &bobs));
  // The object's owner may always read and change its ACL.
  const Acl no_grants{"bob-id", {}};
  EXPECT_TRUE(Allowed(kBob, S3Op::kGetObjectAcl, &b, &no_grants));
  EXPECT_TRUE(Allowed(kBob, S3Op::kPutObjectAcl, &b, &no_grants));
  EXPECT_FALSE(Allowed(kBob, S3Op::kGetObject, &b, &no_grants));
}

TEST(AccessTest, MissingObjectsAnswerToThoseWhoMayList) {
  const meta::BucketInfo priv = Bucket();
  EXPECT_TRUE(Allowed(kAlice, S3Op::kGetObject, &priv, nullptr));  // NoSuchKey
  EXPECT_FALSE(Allowed(kBob, S3Op::kGetObject, &priv, nullptr));   // AccessDenied: no probing
  const meta::BucketInfo pr = Bucket("public-read");
  EXPECT_TRUE(Allowed(kAnonymous, S3Op::kHeadObject, &pr, nullptr));
}

TEST(AccessTest, RecordsFromBeforeAclsBelongToTheBucketOwner) {
  meta::BucketInfo b = Bucket();
  b.acl = Acl{};
  const Acl legacy{};
  EXPECT_TRUE(Allowed(kAlice, S3Op::kListObjects, &b));
  EXPECT_TRUE(Allowed(kAlice, S3Op::kGetObject, &b, &legacy));
  EXPECT_FALSE(Allowed(kBob, S3Op::kGetObject, &b, &legacy));
  const Acl effective = EffectiveAcl(legacy, "alice-id");
  EXPECT_EQ(effective.owner, "alice-id");
  ASSERT_EQ(effective.grants.size(), 1u);
  EXPECT_EQ(effective.grants[0].permission, AclPermission::kFullControl);
}

TEST(AccessTest, PolicyAllowOpensDenyClosesAndDenyWins) {
  meta::BucketInfo priv = Bucket();
  priv.policy_users = {{"bob", "bob-id"}};
  const BucketPolicy allow_bob = Policy(
      R"({"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/dir/*"}]})");
  const Acl object = *CannedAcl("private", "alice-id", "alice-id");
  EXPECT_TRUE(Allowed(kBob, S3Op::kGetObject, &priv, &object, &allow_bob));
  EXPECT_FALSE(Allowed(kBob, S3Op::kPutObject, &priv, nullptr, &allow_bob));
  EXPECT_FALSE(Allowed(kAnonymous, S3Op::kGetObject, &priv, &object, &allow_bob));

  meta::BucketInfo pr = Bucket("public-read");
  const BucketPolicy deny_anon = Policy(
      R"({"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",
          "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]})");
  EXPECT_FALSE(Allowed(kAnonymous, S3Op::kListObjects, &pr, nullptr, &deny_anon, {{"aws:sourceip", "10.1.2.3"}}));
  EXPECT_TRUE(Allowed(kAnonymous, S3Op::kListObjects, &pr, nullptr, &deny_anon, {{"aws:sourceip", "127.0.0.1"}}));
  // A Deny also closes the owner's own bucket (but not root's, tested above).
  EXPECT_FALSE(Allowed(kAlice, S3Op::kListObjects, &pr, nullptr, &deny_anon, {{"aws:sourceip", "10.9.9.9"}}));

  const BucketPolicy both = Policy(
      R"({"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/*"},
                       {"Effect":"Deny","Principal":{"AWS":"bob"},"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/*"}]})");
  EXPECT_TRUE(Allowed(kBob, S3Op::kPutObject, &priv, nullptr, &both));
  EXPECT_FALSE(Allowed(kBob, S3Op::kDeleteObject, &priv, nullptr, &both));
}

TEST(AccessTest, PolicySeesThePrincipalsNameAndId) {
  meta::BucketInfo priv = Bucket();
  priv.policy_users = {{"bob", "bob-id"}};
  const BucketPolicy by_name = Policy(
      R"({"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",
          "Condition":{"StringEquals":{"aws:username":"bob"}}}]})");
  EXPECT_TRUE(Allowed(kBob, S3Op::kListObjects, &priv, nullptr, &by_name));
  EXPECT_FALSE(Allowed(kAnonymous, S3Op::kListObjects, &priv, nullptr, &by_name));
}

TEST(AccessTest, OwnerMayAlwaysManageItsPolicy) {
  const meta::BucketInfo priv = Bucket();
  const BucketPolicy deny_all = Policy(
      R"({"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]}]})");
  for (S3Op op : {S3Op::kGetBucketPolicy, S3Op::kPutBucketPolicy, S3Op::kDeleteBucketPolicy}) {
    EXPECT_TRUE(Allowed(kAlice, op, &priv, nullptr, &deny_all)) << S3OpName(op);
    EXPECT_FALSE(Allowed(kBob, op, &priv, nullptr, &deny_all)) << S3OpName(op);
  }
  EXPECT_FALSE(Allowed(kAlice, S3Op::kListObjects, &priv, nullptr, &deny_all));
  EXPECT_FALSE(Allowed(kAlice, S3Op::kPutBucketCors, &priv, nullptr, &deny_all));
}

TEST(AccessTest, PolicyReadOfAMissingKeyNeedsListPermission) {
  const meta::BucketInfo priv = Bucket();
  const BucketPolicy get_only = Policy(
      R"({"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]})");
  const Acl object = *CannedAcl("private", "alice-id", "alice-id");
  EXPECT_TRUE(Allowed(kAnonymous, S3Op::kGetObject, &priv, &object, &get_only));
  EXPECT_FALSE(Allowed(kAnonymous, S3Op::kGetObject, &priv, nullptr, &get_only));  // AccessDenied, not 404
  EXPECT_FALSE(Allowed(kBob, S3Op::kHeadObject, &priv, nullptr, &get_only));
  const BucketPolicy get_and_list = Policy(
      R"({"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},
                       {"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}]})");
  EXPECT_TRUE(Allowed(kAnonymous, S3Op::kGetObject, &priv, nullptr, &get_and_list));  // NoSuchKey
  const meta::BucketInfo pr = Bucket("public-read");
  EXPECT_TRUE(Allowed(kAnonymous, S3Op::kGetObject, &pr, nullptr, &get_only));  // READ by ACL lists
}

TEST(AccessTest, APolicyNamesTheUserThatHadTheNameWhenItWasPut) {
  meta::BucketInfo priv = Bucket();
  priv.policy_users = {{"bob", "old-bob-id"}};
  const BucketPolicy allow_bob = Policy(
      R"({"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}]})");
  EXPECT_FALSE(Allowed(kBob, S3Op::kListObjects, &priv, nullptr, &allow_bob));  // a new "bob"
  priv.policy_users = {{"bob", "bob-id"}};
  EXPECT_TRUE(Allowed(kBob, S3Op::kListObjects, &priv, nullptr, &allow_bob));
}

TEST(AccessTest, ABucketPolicyCannotOpenAnotherUsersObject) {
  const meta::BucketInfo b = Bucket("public-read-write");
  const BucketPolicy open_all = Policy(
      R"({"Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:PutObjectAcl"],"Resource":"arn:aws:s3:::b/*"}]})");
  const Acl bobs = *CannedAcl("private", "bob-id", "alice-id");
  EXPECT_FALSE(Allowed(kAnonymous, S3Op::kGetObject, &b, &bobs, &open_all));
  EXPECT_FALSE(Allowed(kAlice, S3Op::kGetObject, &b, &bobs, &open_all));
  EXPECT_FALSE(Allowed(kAlice, S3Op::kPutObjectAcl, &b, &bobs, &open_all));
  EXPECT_TRUE(Allowed(kBob, S3Op::kGetObject, &b, &bobs, &open_all));
  const Acl alices = *CannedAcl("private", "alice-id", "alice-id");
  EXPECT_TRUE(Allowed(kAnonymous, S3Op::kGetObject, &b, &alices, &open_all));
}

TEST(AccessTest, MultipartUploadsBelongToTheirInitiator) {
  const meta::BucketInfo b = Bucket("public-read-write");
  const std::string bobs = "bob-id";
  auto allowed = [&](const Principal& p, S3Op op) {
    AccessRequest r;
    r.op = op;
    r.bucket = "b";
    r.key = "k";
    r.bucket_info = &b;
    r.upload_initiator = &bobs;
    return Authorize(p, r).allowed;
  };
  for (S3Op op : {S3Op::kUploadPart, S3Op::kUploadPartCopy, S3Op::kCompleteMultipartUpload}) {
    EXPECT_TRUE(allowed(kBob, op)) << S3OpName(op);
    EXPECT_FALSE(allowed(kAlice, op)) << S3OpName(op);
    EXPECT_FALSE(allowed(kAnonymous, op)) << S3OpName(op);
  }
  for (S3Op op : {S3Op::kAbortMultipartUpload, S3Op::kListParts}) {
    EXPECT_TRUE(allowed(kBob, op)) << S3OpName(op);
    EXPECT_TRUE(allowed(kAlice, op)) << S3OpName(op);  // the bucket owner
    EXPECT_FALSE(allowed(kAnonymous, op)) << S3OpName(op);
  }
  EXPECT_TRUE(allowed(kRoot, S3Op::kCompleteMultipartUpload));
}

TEST(AccessTest, SettingAnAclOnWriteAlsoNeedsPutObjectAcl) {
  const meta::BucketInfo b = Bucket("public-read-write");
  const BucketPolicy no_public = Policy(
      R"({"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:PutObjectAcl","Resource":"arn:aws:s3:::b/*"}]})");
  AccessRequest r;
  r.op = S3Op::kPutObject;
  r.bucket = "b";
  r.key = "k";
  r.bucket_info = &b;
  r.policy = &no_public;
  EXPECT_TRUE(Authorize(kBob, r).allowed);
  r.sets_acl = true;
  EXPECT_FALSE(Authorize(kBob, r).allowed);
}

TEST(AccessTest, AnUnreadableStoredPolicyLetsOnlyTheOwnerReplaceIt) {
  const meta::BucketInfo pr = Bucket("public-read");
  AccessRequest r;
  r.bucket = "b";
  r.bucket_info = &pr;
  r.policy_unreadable = true;
  r.op = S3Op::kListObjects;
  EXPECT_FALSE(Authorize(kAnonymous, r).allowed);  // the ACL alone would allow it
  EXPECT_FALSE(Authorize(kAlice, r).allowed);
  EXPECT_TRUE(Authorize(kRoot, r).allowed);
  r.op = S3Op::kPutBucketPolicy;
  EXPECT_TRUE(Authorize(kAlice, r).allowed);
  EXPECT_FALSE(Authorize(kBob, r).allowed);
}

}  // namespace
}  // namespace cairn::gateway
