// Tests for S3 request interpretation (gateway/s3_request.h): query strings, the two addressing
// styles, operation names, Range and x-amz-copy-source-range, conditional headers in RFC 7232
// order, and the two date formats.
#include "gateway/s3_request.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gateway/sigv4.h"
#include "test_util.h"

namespace cairn::gateway {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

// The base domains of virtual-host addressing in these tests.
const std::vector<std::string> kDomains = {"localhost", "s3.example.com"};
// A Host that names no bucket: path-style addressing.
constexpr std::string_view kPathStyleHost = "127.0.0.1:9000";

// ---- QueryParams ---------------------------------------------------------------------------

QueryParams ParseQuery(std::string_view raw) {
  Result<QueryParams> q = QueryParams::Parse(raw);
  EXPECT_TRUE(q.ok()) << raw << " -> " << q.status();
  return q.ok() ? *q : QueryParams();
}

TEST(QueryParamsTest, EmptyQueryHasNoParameters) {
  EXPECT_TRUE(ParseQuery("").all().empty());
  EXPECT_TRUE(ParseQuery("&&&").all().empty());
  EXPECT_FALSE(ParseQuery("").Has("uploads"));
  EXPECT_EQ(ParseQuery("").Get("uploads"), std::nullopt);
}

TEST(QueryParamsTest, KeepsEveryPairInOrderAndGetReturnsTheFirst) {
  const QueryParams q = ParseQuery("a=1&b=2&a=3");
  EXPECT_EQ(q.all(), (Pairs{{"a", "1"}, {"b", "2"}, {"a", "3"}}));
  EXPECT_EQ(q.Get("a"), "1");
  EXPECT_EQ(q.Get("b"), "2");
  EXPECT_TRUE(q.Has("a"));
  EXPECT_FALSE(q.Has("c"));
  EXPECT_EQ(q.Get("c"), std::nullopt);
}

TEST(QueryParamsTest, NameWithoutEqualsHasAnEmptyValue) {
  const QueryParams q = ParseQuery("uploads&prefix=&delete");
  EXPECT_EQ(q.all(), (Pairs{{"uploads", ""}, {"prefix", ""}, {"delete", ""}}));
  EXPECT_TRUE(q.Has("uploads"));
  EXPECT_EQ(q.Get("uploads"), "");
}

TEST(QueryParamsTest, SkipsEmptyPairs) {
  EXPECT_EQ(ParseQuery("&a=1&&b&").all(), (Pairs{{"a", "1"}, {"b", ""}}));
}

TEST(QueryParamsTest, ValueRunsToTheNextAmpersandAndMayHoldEquals) {
  EXPECT_EQ(ParseQuery("a=b=c&d==").all(), (Pairs{{"a", "b=c"}, {"d", "="}}));
  EXPECT_EQ(ParseQuery("=x").all(), (Pairs{{"", "x"}}));
}

TEST(QueryParamsTest, PlusIsASpaceAndEscapesDecodeInNamesAndValues) {
  const QueryParams q = ParseQuery("prefix=a+b%2Bc&%41%62=%e2%82%AC&k%20=%26%3D");
  EXPECT_EQ(q.all(), (Pairs{{"prefix", "a b+c"}, {"Ab", "\xE2\x82\xAC"}, {"k ", "&="}}));
}

TEST(QueryParamsTest, NamesAreCaseSensitive) {
  const QueryParams q = ParseQuery("uploadId=x");
  EXPECT_TRUE(q.Has("uploadId"));
  EXPECT_FALSE(q.Has("uploadid"));
}

TEST(QueryParamsTest, RejectsMalformedEscapes) {
  for (const std::string_view raw : {"a=%", "a=%4", "a=%zz", "a=%4g", "%g0=1", "a=1&b=%", "%"}) {
    const Result<QueryParams> q = QueryParams::Parse(raw);
    EXPECT_TRUE(!q.ok() && q.status().IsInvalidArgument()) << raw;
  }
}

// ---- ResolveTarget: path style -------------------------------------------------------------

S3Target Resolve(std::string_view target, std::string_view host = kPathStyleHost) {
  Result<S3Target> t = ResolveTarget(target, host, kDomains);
  EXPECT_TRUE(t.ok()) << target << " (Host " << host << ") -> " << t.status();
  return t.ok() ? *t : S3Target();
}

TEST(ResolveTargetTest, SlashIsTheService) {
  const S3Target t = Resolve("/");
  EXPECT_EQ(t.bucket, "");
  EXPECT_EQ(t.key, "");
  EXPECT_FALSE(t.virtual_host);
}

TEST(ResolveTargetTest, PathStyleBucketOnly) {
  for (const std::string_view target : {"/bucket", "/bucket/", "/bucket?list-type=2", "/bucket/?prefix=a"}) {
    const S3Target t = Resolve(target);
    EXPECT_EQ(t.bucket, "bucket") << target;
    EXPECT_EQ(t.key, "") << target;
    EXPECT_FALSE(t.virtual_host) << target;
  }
}

TEST(ResolveTargetTest, PathStyleBucketAndKey) {
  const S3Target t = Resolve("/bucket/photos/2024/a.jpg");
  EXPECT_EQ(t.bucket, "bucket");
  EXPECT_EQ(t.key, "photos/2024/a.jpg");
  EXPECT_FALSE(t.virtual_host);
}

TEST(ResolveTargetTest, KeyIsThePercentDecodedRestByteForByte) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"/bucket/a//b", "a//b"},
      {"/bucket//a", "/a"},
      {"/bucket/a/", "a/"},
      {"/bucket/../x", "../x"},
      {"/bucket/./a/../b", "./a/../b"},
      {"/bucket/..", ".."},
      {"/bucket/a%2Fb", "a/b"},
      {"/bucket/a%2fb", "a/b"},
      {"/bucket/%2F", "/"},
      {"/bucket/my%20file.txt", "my file.txt"},
      {"/bucket/a+b", "a+b"},  // '+' in a path is a plus, not a space
      {"/bucket/a%2Bb", "a+b"},
      {"/bucket/%25", "%"},
      {"/bucket/a%3Fb", "a?b"},
      {"/bucket/caf%C3%A9/%E2%9C%93", "caf\xC3\xA9/\xE2\x9C\x93"},
      {"/bucket/caf\xC3\xA9", "caf\xC3\xA9"},  // raw UTF-8 passes through
      {"/bucket/%00", std::string_view("\0", 1)},
  };
  for (const auto& [target, key] : cases) {
    const S3Target t = Resolve(target);
    EXPECT_EQ(t.bucket, "bucket") << target;
    EXPECT_EQ(t.key, key) << target;
  }
}

TEST(ResolveTargetTest, QueryIsSplitOffAtTheFirstQuestionMark) {
  const S3Target t = Resolve("/bucket/key?versionId=3&x&y=a?b");
  EXPECT_EQ(t.key, "key");
  EXPECT_EQ(t.query.all(), (Pairs{{"versionId", "3"}, {"x", ""}, {"y", "a?b"}}));
}

TEST(ResolveTargetTest, BucketIsDecodedBeforeItsFirstSlash) {
  // An encoded slash does not split bucket from key: the bucket name is then invalid, which
  // name validation (not this function) reports.
  const S3Target t = Resolve("/bu%2Fcket/key");
  EXPECT_EQ(t.bucket, "bu/cket");
  EXPECT_EQ(t.key, "key");
}

TEST(ResolveTargetTest, RejectsMalformedEscapes) {
  for (const std::string_view target : {"/bucket/a%zz", "/bucket/a%", "/bu%ket/key", "/bucket/key?a=%4"}) {
    const Result<S3Target> t = ResolveTarget(target, kPathStyleHost, kDomains);
    EXPECT_TRUE(!t.ok() && t.status().IsInvalidArgument()) << target;
  }
}

TEST(ResolveTargetTest, RejectsTargetsThatAreNotOriginForm) {
  for (const std::string_view target :
       {"", "bucket/key", "*", "http://localhost/bucket/key", "localhost:9000", "?list-type=2"}) {
    const Result<S3Target> t = ResolveTarget(target, kPathStyleHost, kDomains);
    EXPECT_TRUE(!t.ok() && t.status().IsInvalidArgument()) << target;
  }
}

// ---- ResolveTarget: virtual-host style -----------------------------------------------------

TEST(ResolveTargetTest, VirtualHostWithAndWithoutPort) {
  for (const std::string_view host : {"bucket.localhost", "bucket.localhost:9000", "bucket.s3.example.com",
                                      "bucket.s3.example.com:443", " bucket.localhost:9000 "}) {
    const S3Target t = Resolve("/photos/a.jpg", host);
    EXPECT_TRUE(t.virtual_host) << host;
    EXPECT_EQ(t.bucket, "bucket") << host;
    EXPECT_EQ(t.key, "photos/a.jpg") << host;
  }
}

TEST(ResolveTargetTest, VirtualHostDomainIsCaseInsensitive) {
  for (const std::string_view host : {"bucket.LOCALHOST", "bucket.LocalHost:9000", "bucket.S3.Example.COM"}) {
    const S3Target t = Resolve("/key", host);
    EXPECT_TRUE(t.virtual_host) << host;
    EXPECT_EQ(t.bucket, "bucket") << host;
    EXPECT_EQ(t.key, "key") << host;
  }
}

TEST(ResolveTargetTest, VirtualHostBucketMayHoldDots) {
  const S3Target t = Resolve("/key", "my.dotted.bucket.s3.example.com");
  EXPECT_EQ(t.bucket, "my.dotted.bucket");
  EXPECT_EQ(t.key, "key");
}

TEST(ResolveTargetTest, VirtualHostBucketOnly) {
  for (const std::string_view target : {"/", "/?list-type=2&prefix=a"}) {
    const S3Target t = Resolve(target, "bucket.localhost:9000");
    EXPECT_TRUE(t.virtual_host) << target;
    EXPECT_EQ(t.bucket, "bucket") << target;
    EXPECT_EQ(t.key, "") << target;
  }
  EXPECT_EQ(Resolve("/?list-type=2", "bucket.localhost").query.Get("list-type"), "2");
}

TEST(ResolveTargetTest, VirtualHostKeyIsTheWholeDecodedPath) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"/bucket/key", "bucket/key"},  // the path never names the bucket here
      {"/a//b", "a//b"},
      {"//x", "/x"},
      {"/../x", "../x"},
      {"/a%2Fb", "a/b"},
      {"/my%20file", "my file"},
      {"/a+b", "a+b"},
      {"/%E2%9C%93", "\xE2\x9C\x93"},
  };
  for (const auto& [target, key] : cases) {
    const S3Target t = Resolve(target, "bucket.localhost:9000");
    EXPECT_EQ(t.bucket, "bucket") << target;
    EXPECT_EQ(t.key, key) << target;
  }
}

TEST(ResolveTargetTest, HostsOutsideTheDomainsArePathStyle) {
  for (const std::string_view host : {"localhost", "localhost:9000", "s3.example.com", "LOCALHOST:9000",
                                      ".localhost", "bucketlocalhost", "bucket.otherhost", "bucket.localhost.",
                                      "example.com", "", "bucket.localhost:9000:"}) {
    const S3Target t = Resolve("/bucket/key", host);
    EXPECT_FALSE(t.virtual_host) << host;
    EXPECT_EQ(t.bucket, "bucket") << host;
    EXPECT_EQ(t.key, "key") << host;
  }
}

TEST(ResolveTargetTest, IpHostsArePathStyle) {
  for (const std::string_view host : {"127.0.0.1", "127.0.0.1:9000", "10.1.2.3:80", "[::1]", "[::1]:9000",
                                      "[fe80::1%25eth0]:9000"}) {
    const S3Target t = Resolve("/bucket/key", host);
    EXPECT_FALSE(t.virtual_host) << host;
    EXPECT_EQ(t.bucket, "bucket") << host;
    EXPECT_EQ(t.key, "key") << host;
  }
}

TEST(ResolveTargetTest, EmptyDomainIsIgnored) {
  Result<S3Target> t = ResolveTarget("/bucket/key", "a.b", {""});
  ASSERT_OK(t);
  EXPECT_FALSE(t->virtual_host);
  EXPECT_EQ(t->bucket, "bucket");
  t = ResolveTarget("/bucket/key", "bucket.localhost", {});
  ASSERT_OK(t);
  EXPECT_FALSE(t->virtual_host);
}

TEST(SplitTargetTest, SplitsAtTheFirstQuestionMark) {
  std::string_view path, query;
  SplitTarget("/b/k?a=1?2", &path, &query);
  EXPECT_EQ(path, "/b/k");
  EXPECT_EQ(query, "a=1?2");
  SplitTarget("/b/k", &path, &query);
  EXPECT_EQ(path, "/b/k");
  EXPECT_EQ(query, "");
  SplitTarget("/b/k?", &path, &query);
  EXPECT_EQ(path, "/b/k");
  EXPECT_EQ(query, "");
}

// ---- ClassifyOperation ---------------------------------------------------------------------

S3Op Classify(std::string_view method, std::string_view target, bool has_copy_source = false,
              std::string_view host = kPathStyleHost) {
  const S3Target t = Resolve(target, host);
  return ClassifyOperation(method, t, has_copy_source);
}

struct OpCase {
  std::string_view method;
  std::string_view target;
  bool copy_source;
  S3Op op;
};

constexpr OpCase kOpCases[] = {
    {"GET", "/", false, S3Op::kListBuckets},
    {"PUT", "/b", false, S3Op::kCreateBucket},
    {"DELETE", "/b", false, S3Op::kDeleteBucket},
    {"HEAD", "/b", false, S3Op::kHeadBucket},
    {"GET", "/b?location", false, S3Op::kGetBucketLocation},
    {"GET", "/b?versioning", false, S3Op::kGetBucketVersioning},
    {"GET", "/b?acl", false, S3Op::kGetBucketAcl},
    {"GET", "/b", false, S3Op::kListObjects},
    {"GET", "/b/", false, S3Op::kListObjects},
    {"GET", "/b?prefix=a&delimiter=%2F&marker=x", false, S3Op::kListObjects},
    {"GET", "/b?list-type=1", false, S3Op::kListObjects},
    {"GET", "/b?list-type=2&continuation-token=x", false, S3Op::kListObjectsV2},
    {"GET", "/b?versions", false, S3Op::kListObjectVersions},
    {"GET", "/b?uploads", false, S3Op::kListMultipartUploads},
    {"POST", "/b?delete", false, S3Op::kDeleteObjects},
    {"PUT", "/b/k", false, S3Op::kPutObject},
    {"PUT", "/b/k", true, S3Op::kCopyObject},
    {"GET", "/b/k", false, S3Op::kGetObject},
    {"GET", "/b/k?versionId=null&partNumber=1", false, S3Op::kGetObject},
    {"HEAD", "/b/k", false, S3Op::kHeadObject},
    {"DELETE", "/b/k", false, S3Op::kDeleteObject},
    {"GET", "/b/k?acl", false, S3Op::kGetObjectAcl},
    {"GET", "/b/k?tagging", false, S3Op::kGetObjectTagging},
    {"POST", "/b/k?uploads", false, S3Op::kCreateMultipartUpload},
    {"PUT", "/b/k?partNumber=1&uploadId=u", false, S3Op::kUploadPart},
    {"PUT", "/b/k?partNumber=2&uploadId=u", true, S3Op::kUploadPartCopy},
    {"POST", "/b/k?uploadId=u", false, S3Op::kCompleteMultipartUpload},
    {"DELETE", "/b/k?uploadId=u", false, S3Op::kAbortMultipartUpload},
    {"GET", "/b/k?uploadId=u", false, S3Op::kListParts},
    {"PUT", "/b?acl", false, S3Op::kPutBucketAcl},
    {"PUT", "/b/k?acl", false, S3Op::kPutObjectAcl},
    {"GET", "/b?policy", false, S3Op::kGetBucketPolicy},
    {"PUT", "/b?policy", false, S3Op::kPutBucketPolicy},
    {"DELETE", "/b?policy", false, S3Op::kDeleteBucketPolicy},
    {"GET", "/b?cors", false, S3Op::kGetBucketCors},
    {"PUT", "/b?cors", false, S3Op::kPutBucketCors},
    {"DELETE", "/b?cors", false, S3Op::kDeleteBucketCors},
    {"POST", "/b", false, S3Op::kPostObject},
    {"OPTIONS", "/b/k", false, S3Op::kPreflight},
};

TEST(ClassifyOperationTest, NamesEveryOperation) {
  std::set<S3Op> seen;
  for (const OpCase& c : kOpCases) {
    EXPECT_EQ(Classify(c.method, c.target, c.copy_source), c.op)
        << c.method << " " << c.target << " -> " << S3OpName(Classify(c.method, c.target, c.copy_source))
        << ", want " << S3OpName(c.op);
    seen.insert(c.op);
  }
  // The table covers every operation between kUnknown and the last one, kPreflight.
  EXPECT_EQ(seen.size(), static_cast<size_t>(S3Op::kPreflight));
}

TEST(ClassifyOperationTest, VirtualHostRootIsTheBucketNotTheService) {
  EXPECT_EQ(Classify("GET", "/", false, "b.localhost"), S3Op::kListObjects);
  EXPECT_EQ(Classify("GET", "/?list-type=2", false, "b.localhost"), S3Op::kListObjectsV2);
  EXPECT_EQ(Classify("PUT", "/", false, "b.localhost:9000"), S3Op::kCreateBucket);
  EXPECT_EQ(Classify("PUT", "/k", false, "b.localhost:9000"), S3Op::kPutObject);
  EXPECT_EQ(Classify("GET", "/b/k", false, "b.localhost:9000"), S3Op::kGetObject);
}

TEST(ClassifyOperationTest, OperationNamesAreDistinct) {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(S3Op::kPreflight); ++i) names.insert(S3OpName(static_cast<S3Op>(i)));
  EXPECT_EQ(names.size(), static_cast<size_t>(S3Op::kPreflight) + 1);
  EXPECT_EQ(S3OpName(S3Op::kPutObject), "PutObject");
  EXPECT_EQ(S3OpName(S3Op::kUnknown), "Unknown");
}

TEST(ClassifyOperationTest, UnimplementedSubresourcesAreUnknown) {
  for (const std::string_view method : {"GET", "PUT", "DELETE", "POST", "HEAD"}) {
    for (const std::string_view target :
         {"/b?lifecycle", "/b?tagging", "/b?website", "/b?encryption", "/b?replication",
          "/b?notification", "/b?object-lock", "/b?publicAccessBlock", "/b?policyStatus", "/b?logging",
          "/b?ownershipControls", "/b?requestPayment", "/b?accelerate", "/b/k?policy", "/b/k?cors",
          "/b/k?tagging", "/b/k?retention", "/b/k?legal-hold", "/b/k?torrent", "/b/k?restore",
          "/b/k?select&select-type=2", "/b/k?attributes", "/?policy"}) {
      if (method == "GET" && target == "/b/k?tagging") continue;  // GetObjectTagging is answered
      EXPECT_EQ(Classify(method, target), S3Op::kUnknown) << method << " " << target;
    }
  }
}

TEST(ClassifyOperationTest, VersioningWritesAndOddPolicyMethodsAreUnknown) {
  EXPECT_EQ(Classify("PUT", "/b?versioning"), S3Op::kUnknown);
  EXPECT_EQ(Classify("POST", "/b?policy"), S3Op::kUnknown);
  EXPECT_EQ(Classify("HEAD", "/b?cors"), S3Op::kUnknown);
  EXPECT_EQ(Classify("PUT", "/b/k?acl", /*has_copy_source=*/true), S3Op::kPutObjectAcl);
}

TEST(ClassifyOperationTest, OtherMethodsAndShapesAreUnknown) {
  EXPECT_EQ(Classify("PUT", "/"), S3Op::kUnknown);
  EXPECT_EQ(Classify("DELETE", "/"), S3Op::kUnknown);
  EXPECT_EQ(Classify("HEAD", "/"), S3Op::kUnknown);
  EXPECT_EQ(Classify("POST", "/"), S3Op::kUnknown);
  EXPECT_EQ(Classify("POST", "/b?x=1"), S3Op::kUnknown);
  EXPECT_EQ(Classify("POST", "/b?uploads"), S3Op::kUnknown);
  EXPECT_EQ(Classify("POST", "/b/k"), S3Op::kUnknown);
  EXPECT_EQ(Classify("POST", "/b/k?delete"), S3Op::kUnknown);
  EXPECT_EQ(Classify("PATCH", "/b/k"), S3Op::kUnknown);
  EXPECT_EQ(Classify("OPTIONS", "/"), S3Op::kUnknown);
  EXPECT_EQ(Classify("get", "/b/k"), S3Op::kUnknown);  // methods are case-sensitive
}

// ---- ParseRange ----------------------------------------------------------------------------

struct RangeOutcome {
  RangeResult result;
  ByteRange range;
};

RangeOutcome Range(std::string_view header, uint64_t size) {
  ByteRange range{12345, 67890};
  const RangeResult result = ParseRange(header, size, &range);
  return {result, range};
}

void ExpectRange(std::string_view header, uint64_t size, uint64_t first, uint64_t last) {
  const RangeOutcome r = Range(header, size);
  ASSERT_EQ(r.result, RangeResult::kSatisfiable) << header << " of " << size;
  EXPECT_EQ(r.range.first, first) << header << " of " << size;
  EXPECT_EQ(r.range.last, last) << header << " of " << size;
}

TEST(ParseRangeTest, FirstLast) {
  ExpectRange("bytes=0-9", 100, 0, 9);
  ExpectRange("bytes=0-0", 100, 0, 0);
  ExpectRange("bytes=99-99", 100, 99, 99);
  ExpectRange("bytes=10-19", 100, 10, 19);
  EXPECT_EQ(Range("bytes=10-19", 100).range.length(), 10u);
}

TEST(ParseRangeTest, FirstOnlyRunsToTheEnd) {
  ExpectRange("bytes=10-", 100, 10, 99);
  ExpectRange("bytes=0-", 100, 0, 99);
  ExpectRange("bytes=99-", 100, 99, 99);
}

TEST(ParseRangeTest, SuffixIsTheLastBytes) {
  ExpectRange("bytes=-10", 100, 90, 99);
  ExpectRange("bytes=-1", 100, 99, 99);
  ExpectRange("bytes=-100", 100, 0, 99);
}

TEST(ParseRangeTest, SuffixLargerThanTheObjectIsTheWholeObject) {
  ExpectRange("bytes=-200", 100, 0, 99);
  ExpectRange("bytes=-18446744073709551615", 100, 0, 99);
}

TEST(ParseRangeTest, LastBeyondTheSizeIsClamped) {
  ExpectRange("bytes=50-1000", 100, 50, 99);
  ExpectRange("bytes=0-100", 100, 0, 99);
  ExpectRange("bytes=0-18446744073709551615", 100, 0, 99);
}

TEST(ParseRangeTest, FirstAtOrBeyondTheSizeIsUnsatisfiable) {
  EXPECT_EQ(Range("bytes=100-", 100).result, RangeResult::kUnsatisfiable);
  EXPECT_EQ(Range("bytes=100-200", 100).result, RangeResult::kUnsatisfiable);
  EXPECT_EQ(Range("bytes=1000-1000", 100).result, RangeResult::kUnsatisfiable);
}

TEST(ParseRangeTest, ZeroLengthSuffixIsUnsatisfiable) {
  EXPECT_EQ(Range("bytes=-0", 100).result, RangeResult::kUnsatisfiable);
}

TEST(ParseRangeTest, EveryRangeOfAnEmptyObjectIsUnsatisfiable) {
  for (const std::string_view header : {"bytes=0-", "bytes=0-0", "bytes=0-9", "bytes=-1", "bytes=-0"}) {
    EXPECT_EQ(Range(header, 0).result, RangeResult::kUnsatisfiable) << header;
  }
}

TEST(ParseRangeTest, UnitIsCaseInsensitiveAndOuterSpaceIgnored) {
  ExpectRange("Bytes=0-9", 100, 0, 9);
  ExpectRange("BYTES=-5", 100, 95, 99);
  ExpectRange("  bytes=0-9\t", 100, 0, 9);
}

TEST(ParseRangeTest, MultipleRangesAreIgnored) {
  for (const std::string_view header : {"bytes=0-1,2-3", "bytes=0-1, 5-", "bytes=-5,0-1", "bytes=0-1,"}) {
    EXPECT_EQ(Range(header, 100).result, RangeResult::kNone) << header;
  }
}

TEST(ParseRangeTest, InvalidSyntaxIsIgnored) {
  for (const std::string_view header :
       {"", "bytes", "bytes=", "bytes=-", "bytes=5", "bytes=abc", "bytes=a-b", "bytes=5-3", "bytes=1-2-3",
        "bytes=+1-2", "bytes=0x1-2", "bytes=1.5-2", "bytes 0-9", "bytes:0-9", "items=0-9", "=0-9", "bytes=--5",
        "bytes=99999999999999999999999-"}) {
    const RangeOutcome r = Range(header, 100);
    EXPECT_EQ(r.result, RangeResult::kNone) << header;
    // The range is left alone when there is none.
    EXPECT_EQ(r.range.first, 12345u) << header;
  }
}

TEST(ParseRangeTest, InvalidSyntaxIsIgnoredEvenForAnEmptyObject) {
  EXPECT_EQ(Range("bytes=5-3", 0).result, RangeResult::kNone);
  EXPECT_EQ(Range("bytes=0-1,2-3", 0).result, RangeResult::kNone);
}

TEST(ParseRangeTest, HugeObjects) {
  constexpr uint64_t kMax = UINT64_MAX;
  ExpectRange("bytes=0-", kMax, 0, kMax - 1);
  ExpectRange("bytes=-1", kMax, kMax - 1, kMax - 1);
  ExpectRange("bytes=18446744073709551614-", kMax, kMax - 1, kMax - 1);
  EXPECT_EQ(Range("bytes=18446744073709551615-", kMax).result, RangeResult::kUnsatisfiable);
}

// ---- ParseCopySourceRange ------------------------------------------------------------------

TEST(ParseCopySourceRangeTest, BothEndsGiven) {
  const std::optional<ByteRange> r = ParseCopySourceRange("bytes=0-9");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first, 0u);
  EXPECT_EQ(r->last, 9u);
  const std::optional<ByteRange> one = ParseCopySourceRange(" bytes=5-5 ");
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->first, 5u);
  EXPECT_EQ(one->last, 5u);
  const std::optional<ByteRange> big = ParseCopySourceRange("bytes=0-18446744073709551615");
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(big->last, UINT64_MAX);
}

TEST(ParseCopySourceRangeTest, RejectsEverythingElse) {
  for (const std::string_view header :
       {"", "bytes=", "bytes=0-", "bytes=-5", "bytes=5-4", "0-9", "bytes=a-b", "bytes=0-1,2-3", "bytes=0-9x",
        "bytes=0", "bytes=+0-9", "bytes=0-18446744073709551616"}) {
    EXPECT_FALSE(ParseCopySourceRange(header).has_value()) << header;
  }
}

// ---- EtagListMatches -----------------------------------------------------------------------

TEST(EtagListMatchesTest, QuotedAndBareEtags) {
  EXPECT_TRUE(EtagListMatches("\"abc\"", "abc"));
  EXPECT_TRUE(EtagListMatches("abc", "abc"));
  EXPECT_TRUE(EtagListMatches("  \"abc\"  ", "abc"));
  EXPECT_FALSE(EtagListMatches("\"abd\"", "abc"));
  EXPECT_FALSE(EtagListMatches("\"ABC\"", "abc"));  // etags compare exactly
  EXPECT_TRUE(EtagListMatches("\"d41d8cd98f00b204e9800998ecf8427e-2\"", "d41d8cd98f00b204e9800998ecf8427e-2"));
}

TEST(EtagListMatchesTest, StarMatchesAnything) {
  EXPECT_TRUE(EtagListMatches("*", "abc"));
  EXPECT_TRUE(EtagListMatches(" * ", "abc"));
  EXPECT_TRUE(EtagListMatches("\"x\", *", "abc"));
}

TEST(EtagListMatchesTest, WeakFormMatches) {
  EXPECT_TRUE(EtagListMatches("W/\"abc\"", "abc"));
  EXPECT_FALSE(EtagListMatches("W/\"abd\"", "abc"));
}

TEST(EtagListMatchesTest, Lists) {
  EXPECT_TRUE(EtagListMatches("\"x\", \"abc\"", "abc"));
  EXPECT_TRUE(EtagListMatches("\"abc\",\"x\"", "abc"));
  EXPECT_TRUE(EtagListMatches("\"x\",W/\"abc\"", "abc"));
  EXPECT_TRUE(EtagListMatches(",,\"abc\",", "abc"));
  EXPECT_FALSE(EtagListMatches("\"x\", \"y\"", "abc"));
  EXPECT_FALSE(EtagListMatches("", "abc"));
  EXPECT_FALSE(EtagListMatches(",", "abc"));
}

// ---- EvaluateConditions --------------------------------------------------------------------

constexpr std::string_view kEtag = "abc";
constexpr int64_t kMtime = 1369353600;  // Fri, 24 May 2013 00:00:00 GMT
constexpr std::string_view kBefore = "Thu, 23 May 2013 00:00:00 GMT";
constexpr std::string_view kAt = "Fri, 24 May 2013 00:00:00 GMT";
constexpr std::string_view kAfter = "Sat, 25 May 2013 00:00:00 GMT";

struct Conditions {
  std::optional<std::string> if_match;
  std::optional<std::string> if_none_match;
  std::optional<std::string> if_modified_since;
  std::optional<std::string> if_unmodified_since;
};

ConditionResult Evaluate(Conditions c, int64_t mtime = kMtime) {
  ConditionalHeaders h;
  h.if_match = std::move(c.if_match);
  h.if_none_match = std::move(c.if_none_match);
  h.if_modified_since = std::move(c.if_modified_since);
  h.if_unmodified_since = std::move(c.if_unmodified_since);
  return EvaluateConditions(h, kEtag, mtime);
}

std::string S(std::string_view s) { return std::string(s); }

TEST(EvaluateConditionsTest, NoConditionsProceed) { EXPECT_EQ(Evaluate({}), ConditionResult::kProceed); }

TEST(EvaluateConditionsTest, IfMatch) {
  EXPECT_EQ(Evaluate({.if_match = "\"abc\""}), ConditionResult::kProceed);
  EXPECT_EQ(Evaluate({.if_match = "*"}), ConditionResult::kProceed);
  EXPECT_EQ(Evaluate({.if_match = "\"x\", \"abc\""}), ConditionResult::kProceed);
  EXPECT_EQ(Evaluate({.if_match = "\"x\""}), ConditionResult::kPreconditionFailed);
}

TEST(EvaluateConditionsTest, IfUnmodifiedSince) {
  EXPECT_EQ(Evaluate({.if_unmodified_since = S(kAfter)}), ConditionResult::kProceed);
  EXPECT_EQ(Evaluate({.if_unmodified_since = S(kAt)}), ConditionResult::kProceed);
  EXPECT_EQ(Evaluate({.if_unmodified_since = S(kBefore)}), ConditionResult::kPreconditionFailed);
  EXPECT_EQ(Evaluate({.if_unmodified_since = S(kAt)}, kMtime + 1), ConditionResult::kPreconditionFailed);
}

TEST(EvaluateConditionsTest, IfNoneMatch) {
  EXPECT_EQ(Evaluate({.if_none_match = "\"abc\""}), ConditionResult::kNotModified);
  EXPECT_EQ(Evaluate({.if_none_match = "*"}), ConditionResult::kNotModified);
  EXPECT_EQ(Evaluate({.if_none_match = "W/\"abc\""}), ConditionResult::kNotModified);
  EXPECT_EQ(Evaluate({.if_none_match = "\"x\""}), ConditionResult::kProceed);
}

TEST(EvaluateConditionsTest, IfModifiedSince) {
  EXPECT_EQ(Evaluate({.if_modified_since = S(kBefore)}), ConditionResult::kProceed);
  EXPECT_EQ(Evaluate({.if_modified_since = S(kAt)}), ConditionResult::kNotModified);
  EXPECT_EQ(Evaluate({.if_modified_since = S(kAfter)}), ConditionResult::kNotModified);
  EXPECT_EQ(Evaluate({.if_modified_since = S(kAt)}, kMtime + 1), ConditionResult::kProceed);
}

TEST(EvaluateConditionsTest, IfMatchBeatsIfUnmodifiedSince) {
  // S3: If-Match true and If-Unmodified-Since false -> 200.
  EXPECT_EQ(Evaluate({.if_match = "\"abc\"", .if_unmodified_since = S(kBefore)}), ConditionResult::kProceed);
  EXPECT_EQ(Evaluate({.if_match = "\"x\"", .if_unmodified_since = S(kAfter)}), ConditionResult::kPreconditionFailed);
}

TEST(EvaluateConditionsTest, IfNoneMatchBeatsIfModifiedSince) {
  // S3: If-None-Match false and If-Modified-Since true -> 304.
  EXPECT_EQ(Evaluate({.if_none_match = "\"abc\"", .if_modified_since = S(kBefore)}), ConditionResult::kNotModified);
  // If-None-Match true: If-Modified-Since is not consulted.
  EXPECT_EQ(Evaluate({.if_none_match = "\"x\"", .if_modified_since = S(kAt)}), ConditionResult::kProceed);
}

TEST(EvaluateConditionsTest, PreconditionFailedBeatsNotModified) {
  EXPECT_EQ(Evaluate({.if_match = "\"x\"", .if_none_match = "\"abc\""}), ConditionResult::kPreconditionFailed);
  EXPECT_EQ(Evaluate({.if_modified_since = S(kAt), .if_unmodified_since = S(kBefore)}),
            ConditionResult::kPreconditionFailed);
  EXPECT_EQ(Evaluate({.if_match = "\"abc\"", .if_none_match = "\"abc\""}), ConditionResult::kNotModified);
}

TEST(EvaluateConditionsTest, UnparseableDatesAreIgnored) {
  for (const std::string_view date : {"yesterday", "", "2013-05-23", "20130523T000000Z", "Thu, 23 May 2013 00:00:00",
                                      "Thu, 32 May 2013 00:00:00 GMT", "Xyz, 23 May 2013 00:00:00 GMT"}) {
    EXPECT_EQ(Evaluate({.if_unmodified_since = S(date)}), ConditionResult::kProceed) << date;
    EXPECT_EQ(Evaluate({.if_modified_since = S(date)}), ConditionResult::kProceed) << date;
  }
}

TEST(EvaluateConditionsTest, DatesMayCarrySurroundingSpace) {
  EXPECT_EQ(Evaluate({.if_unmodified_since = " " + S(kBefore) + " "}), ConditionResult::kPreconditionFailed);
  EXPECT_EQ(Evaluate({.if_modified_since = "\t" + S(kAt)}), ConditionResult::kNotModified);
}

// ---- Date formatting -----------------------------------------------------------------------

TEST(FormatHttpDateTest, KnownValues) {
  EXPECT_EQ(FormatHttpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(1369353600), "Fri, 24 May 2013 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 7231's example
  EXPECT_EQ(FormatHttpDate(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(4102444799), "Thu, 31 Dec 2099 23:59:59 GMT");
  EXPECT_EQ(FormatHttpDate(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
}

TEST(FormatHttpDateTest, ParsesBack) {
  for (int64_t t = 0; t < 4102444800; t += 86400 * 37 + 3671) {
    EXPECT_EQ(ParseHttpDate(FormatHttpDate(t)), t) << FormatHttpDate(t);
  }
}

TEST(FormatIso8601Test, KnownValues) {
  EXPECT_EQ(FormatIso8601(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIso8601(7), "1970-01-01T00:00:00.007Z");
  EXPECT_EQ(FormatIso8601(1369353600000), "2013-05-24T00:00:00.000Z");
  EXPECT_EQ(FormatIso8601(1369353600123), "2013-05-24T00:00:00.123Z");
  EXPECT_EQ(FormatIso8601(951782399999), "2000-02-28T23:59:59.999Z");
  EXPECT_EQ(FormatIso8601(4102444799999), "2099-12-31T23:59:59.999Z");
}

// Regression: years below 1000 were written with fewer than four digits ("May 426"), which no
// parser of either format reads back (found by fuzz_http).
TEST(FormatHttpDateTest, YearsHaveFourDigits) {
  EXPECT_EQ(FormatHttpDate(-48711456000), "Mon, 25 May 0426 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(-62135596800), "Mon, 01 Jan 0001 00:00:00 GMT");
  EXPECT_EQ(FormatHttpDate(253402214400), "Fri, 31 Dec 9999 00:00:00 GMT");
  EXPECT_EQ(ParseHttpDate(FormatHttpDate(-48711456000)), -48711456000);
  EXPECT_EQ(FormatIso8601(-48711456000000), "0426-05-25T00:00:00.000Z");
  EXPECT_EQ(FormatIso8601(-62135596800000), "0001-01-01T00:00:00.000Z");
}

// Regression: milliseconds before the epoch printed as ".-01Z" with the wrong second.
TEST(FormatIso8601Test, BeforeTheEpochRoundsDown) {
  EXPECT_EQ(FormatIso8601(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatIso8601(-1000), "1969-12-31T23:59:59.000Z");
  EXPECT_EQ(FormatIso8601(-1001), "1969-12-31T23:59:58.999Z");
}

// The multipart ETag as S3 computes it: md5 of the concatenated binary part md5s, "-N". The
// expected values were computed independently (python3 hashlib) for parts "a" and "b", and for
// the one part "hello".
TEST(MultipartEtagTest, MatchesS3sDefinition) {
  const std::string md5_a = "0cc175b9c0f1b6a831c399e269772661";  // md5("a")
  const std::string md5_b = "92eb5ffee6ae2fec3ad71c777531578f";  // md5("b")
  EXPECT_EQ(MultipartEtag({md5_a, "\"" + md5_b + "\""}), "96e024ba2074fe77e8e965ba43a704be-2");
  EXPECT_EQ(MultipartEtag({"5d41402abc4b2a76b9719d911017c592"}), "62109206880d38a4010a98e11243924a-1");
  EXPECT_EQ(MultipartEtag({"not-hex"}), std::nullopt);
  EXPECT_EQ(MultipartEtag({md5_a + "-2"}), std::nullopt);
}

}  // namespace
}  // namespace cairn::gateway
