// Tests of the cluster-mode metadata codec and executors (meta/meta_commands.h): every command,
// query and reply round-trips and its encoding is canonical; truncated, extended or out-of-range
// input is refused; execution is deterministic and turns counters into plain puts.
// Thread-safety: single-threaded.
#include "meta/meta_commands.h"

#include <gtest/gtest.h>

#include <set>

#include "common/crc32c.h"
#include "memory_kv.h"
#include "meta/format.h"
#include "test_util.h"

namespace cairn::meta {
namespace {

using test::KvMap;
using test::MapReader;

Acl SampleAcl() {
  return Acl{"owner-id",
             {{GranteeType::kCanonicalUser, "owner-id", AclPermission::kFullControl},
              {GranteeType::kGroup, "http://acs.amazonaws.com/groups/global/AllUsers", AclPermission::kRead}}};
}

BucketInfo SampleBucket() {
  BucketInfo b{.name = "bucket", .owner = "owner-id", .created_ms = -5, .region = "eu"};
  b.versioning = Versioning::kSuspended;
  b.acl = SampleAcl();
  b.policy = "{\"Statement\":[]}";
  b.policy_users = {{"alice", "id-a"}, {"bob", "id-b"}};
  b.cors = "<CORSConfiguration/>";
  return b;
}

ChunkRef Chunk(uint64_t n, uint64_t offset) {
  return ChunkRef{.id = engine::ChunkId{.hi = ~n, .lo = n}, .offset = offset, .length = 100, .crc32c = 0xdeadbeef};
}

ObjectRecord SampleObject() {
  ObjectRecord r;
  r.bucket = "bucket";
  r.key = std::string("key\0with nul\xff", 14);
  r.size = 200;
  r.etag = "0123456789abcdef0123456789abcdef-2";
  r.last_modified_ms = 1700000000000;
  r.content_type = "text/plain";
  r.content_language = "fr";
  r.user_metadata = {{"color", "blue"}, {"empty", ""}};
  r.chunks = {Chunk(1, 0), Chunk(2, 100)};
  r.part_count = 2;
  r.part_sizes = {100, 100};
  r.acl = SampleAcl();
  return r;
}

PartRecord SamplePart(uint32_t number) {
  return PartRecord{.part_number = number, .etag = "p", .size = 100, .last_modified_ms = 7, .chunks = {Chunk(9, 0)}};
}

MultipartUpload SampleUpload(bool with_parts) {
  MultipartUpload u{.bucket = "bucket", .key = std::string("k\0", 2), .upload_id = "u1", .initiated_ms = 3};
  u.headers.content_type = "application/octet-stream";
  u.headers.user_metadata = {{"a", "b"}};
  u.acl = SampleAcl();
  if (with_parts) {
    u.parts[1] = SamplePart(1);
    u.parts[7] = SamplePart(7);
  }
  return u;
}

// One command of every kind, with every optional field present in one of them at least.
std::vector<Command> AllCommands() {
  return {
      command::CreateBucket{SampleBucket()},
      command::DeleteBucket{"bucket", BucketIdentity{"owner-id", 5}},
      command::DeleteBucket{"bucket", std::nullopt},
      command::UpdateBucket{"bucket", BucketInfo{.name = "bucket", .owner = "o"}, SampleBucket()},
      command::PutObject{SampleObject(), WritePrecondition{.if_match_etag = "\"e\"", .must_not_exist = true}},
      command::PutObject{SampleObject(), WritePrecondition{}},
      command::SetObjectAcl{"bucket", "key", SampleAcl(), ObjectVersion{"etag", -1}},
      command::SetObjectAcl{"bucket", "key", Acl{}, std::nullopt},
      command::DeleteObject{"bucket", ""},
      command::CreateUpload{SampleUpload(/*with_parts=*/false)},
      command::PutPart{"bucket", "key", "u1", SamplePart(10000)},
      command::CompleteUpload{
          "bucket", "key", "u1", {{1, "\"p1\""}, {2, "p2"}}, "etag-2", 99, {.must_not_exist = true}},
      command::AbortUpload{"bucket", "key", "u1"},
      command::CreateUser{UserRecord{"alice", std::string(64, 'a'), 12}},
      command::DeleteUser{"alice"},
      command::CreateAccessKey{AccessKeyRecord{"AKIA", "alice", std::string("sealed\0\x01", 8), false, 1}},
      command::SetAccessKeyEnabled{"AKIA", true},
      command::DeleteAccessKey{"AKIA"},
  };
}

std::vector<Query> AllQueries() {
  return {
      query::GetBucket{"bucket"},
      query::ListBuckets{},
      query::GetObject{"bucket", std::string("\0\xff", 2)},
      query::ListObjects{"bucket", {.prefix = "a/", .delimiter = "/", .start_after = "a/b", .max_keys = 0}},
      query::GetUpload{"bucket", "key", "u1"},
      query::GetUploadInfo{"bucket", "key", "u1"},
      query::ListParts{"bucket", "key", "u1", UINT32_MAX, 5},
      query::ListUploads{"bucket", {.prefix = "p", .key_marker = "k", .upload_id_marker = "u", .max_uploads = 3}},
      query::ListUsers{},
      query::ListAccessKeys{},
      query::ListChunkRefs{format::PartKey("u1", 3), 1000},
      query::Stats{},
  };
}

// One successful reply of every operation, and a few failures.
std::vector<Reply> AllReplies() {
  const AccessKeyRecord key{"AKIA", "alice", "sealed", true, 1};
  return {
      Reply{MetaOp::kCreateBucket, Status::OK(), std::monostate()},
      Reply{MetaOp::kUpdateBucket, Status::OK(), false},
      Reply{MetaOp::kPutObject, Status::OK(), std::optional<ObjectRecord>(SampleObject())},
      Reply{MetaOp::kPutObject, Status::OK(), std::optional<ObjectRecord>()},
      Reply{MetaOp::kDeleteObject, Status::OK(), SampleObject()},
      Reply{MetaOp::kCreateUpload, Status::OK(), std::string("u1")},
      Reply{MetaOp::kPutPart, Status::OK(), std::optional<PartRecord>(SamplePart(2))},
      Reply{MetaOp::kCompleteUpload, Status::OK(),
            CompleteUploadResult{SampleObject(), SampleObject(), {Chunk(3, 0), Chunk(4, 0)}}},
      Reply{MetaOp::kAbortUpload, Status::OK(), std::vector<ChunkRef>{Chunk(5, 0)}},
      Reply{MetaOp::kDeleteUser, Status::OK(), std::vector<AccessKeyRecord>{key, key}},
      Reply{MetaOp::kGetBucket, Status::OK(), SampleBucket()},
      Reply{MetaOp::kListBuckets, Status::OK(), std::vector<BucketInfo>{SampleBucket(), BucketInfo{.name = "b2"}}},
      Reply{MetaOp::kListObjects, Status::OK(),
            ListObjectsResult{{SampleObject()}, {"a/", "b/"}, /*is_truncated=*/true, "b/"}},
      Reply{MetaOp::kGetUpload, Status::OK(), SampleUpload(/*with_parts=*/true)},
      Reply{MetaOp::kListParts, Status::OK(), ListPartsResult{{SamplePart(1), SamplePart(2)}, true, 2}},
      Reply{MetaOp::kListUploads, Status::OK(),
            ListUploadsResult{{SampleUpload(/*with_parts=*/false)}, false, "k", "u1"}},
      Reply{MetaOp::kListUsers, Status::OK(), std::vector<UserRecord>{{"alice", "id", 1}}},
      Reply{MetaOp::kListAccessKeys, Status::OK(), std::vector<AccessKeyRecord>{}},
      Reply{MetaOp::kListChunkRefs, Status::OK(), logic::ChunkRefPage{{Chunk(6, 0)}, format::ObjectKey("b", "k")}},
      Reply{MetaOp::kStats, Status::OK(), std::map<std::string, uint64_t>{{"buckets", 1}, {"objects", UINT64_MAX}}},
      Reply{MetaOp::kGetObject, Status::NotFound("object k"), std::monostate()},
      Reply{MetaOp::kCompleteUpload, Status::InvalidPartOrder(), std::monostate()},
      Reply{MetaOp::kNone, Status::InvalidArgument("meta command: unknown tag 99"), std::monostate()},
  };
}

// Every strict prefix of `bytes`, and `bytes` with one byte more, must be refused by decode.
template <typename Decode>
void ExpectTruncationsAndTrailingBytesRefused(const std::string& bytes, Decode decode) {
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(decode(bytes.substr(0, n)).ok()) << "prefix " << n;
  EXPECT_FALSE(decode(bytes + '\0').ok());
}

TEST(MetaCommandCodecTest, EveryCommandRoundTripsCanonically) {
  std::set<size_t> kinds;
  for (const Command& c : AllCommands()) {
    kinds.insert(c.index());
    const std::string bytes = EncodeCommand(c);
    auto decoded = DecodeCommand(bytes);
    ASSERT_OK(decoded);
    EXPECT_EQ(*decoded, c) << "command " << c.index();
    EXPECT_EQ(EncodeCommand(*decoded), bytes);
    EXPECT_EQ(OpOf(c), static_cast<MetaOp>(bytes[1]));
    ExpectTruncationsAndTrailingBytesRefused(bytes, DecodeCommand);
    // A command is never a query.
    EXPECT_FALSE(DecodeQuery(bytes).ok());
  }
  EXPECT_EQ(kinds.size(), std::variant_size_v<Command>);
}

TEST(MetaCommandCodecTest, EveryQueryRoundTripsCanonically) {
  std::set<size_t> kinds;
  for (const Query& q : AllQueries()) {
    kinds.insert(q.index());
    const std::string bytes = EncodeQuery(q);
    auto decoded = DecodeQuery(bytes);
    ASSERT_OK(decoded);
    EXPECT_EQ(*decoded, q) << "query " << q.index();
    EXPECT_EQ(EncodeQuery(*decoded), bytes);
    ExpectTruncationsAndTrailingBytesRefused(bytes, DecodeQuery);
    EXPECT_FALSE(DecodeCommand(bytes).ok());
  }
  EXPECT_EQ(kinds.size(), std::variant_size_v<Query>);
}

TEST(MetaCommandCodecTest, EveryReplyRoundTripsCanonically) {
  for (const Reply& r : AllReplies()) {
    const std::string bytes = EncodeReply(r);
    auto decoded = DecodeReply(bytes);
    ASSERT_OK(decoded);
    EXPECT_EQ(*decoded, r) << "op " << static_cast<int>(r.op);
    EXPECT_EQ(EncodeReply(*decoded), bytes);
    ExpectTruncationsAndTrailingBytesRefused(bytes, DecodeReply);
  }
}

TEST(MetaCommandCodecTest, ARepliedValueOfTheWrongKindIsEncodedAsInternal) {
  auto decoded = DecodeReply(EncodeReply(Reply{MetaOp::kGetBucket, Status::OK(), std::string("not a bucket")}));
  ASSERT_OK(decoded);
  EXPECT_TRUE(decoded->status.IsInternal());
}

TEST(MetaCommandCodecTest, BadVersionTagEnumsAndBoolsAreRefused) {
  const std::string good = EncodeCommand(command::SetAccessKeyEnabled{"K", true});
  std::string bad = good;
  bad[0] = static_cast<char>(kMetaCodecVersion + 1);
  EXPECT_TRUE(DecodeCommand(bad).status().IsInvalidArgument());
  for (int tag : {0x00, 0x10, 0x41, 0xff}) {
    bad = good;
    bad[1] = static_cast<char>(tag);
    EXPECT_TRUE(DecodeCommand(bad).status().IsInvalidArgument()) << tag;
  }
  bad = good;
  bad.back() = 2;  // the enabled flag
  EXPECT_TRUE(DecodeCommand(bad).status().IsInvalidArgument());

  // A grant type or permission outside the enum.
  for (size_t field : {0u, 1u}) {
    Acl acl{"o", {{GranteeType::kGroup, "g", AclPermission::kWrite}}};
    if (field == 0) acl.grants[0].type = static_cast<GranteeType>(3);
    if (field == 1) acl.grants[0].permission = static_cast<AclPermission>(6);
    EXPECT_TRUE(
        DecodeCommand(EncodeCommand(command::SetObjectAcl{"b", "k", acl, std::nullopt})).status().IsInvalidArgument())
        << field;
  }

  // An unknown status code in a reply.
  std::string reply = EncodeReply(Reply{MetaOp::kCreateBucket, Status::NotFound(), std::monostate()});
  reply[2] = 0x77;
  reply[3] = 0x77;
  EXPECT_TRUE(DecodeReply(reply).status().IsCorruption());
}

TEST(MetaCommandCodecTest, AnEmbeddedRecordMustBeItsCanonicalEncoding) {
  const UserRecord user{"alice", "id", 1};
  const std::string db_key = format::UserKey("alice");
  const std::string value = format::EncodeUser(db_key, user);
  const std::string bytes = EncodeCommand(command::CreateUser{user});
  const size_t at = bytes.find(value);
  ASSERT_NE(at, std::string::npos);

  // A damaged record.
  std::string damaged = bytes;
  damaged[at + value.size() - 1] ^= 1;  // the record's crc
  EXPECT_TRUE(DecodeCommand(damaged).status().IsInvalidArgument());

  // A record of an older format version (a user's body is the same in version 2) decodes in the
  // store, but is not the encoding the encoder gives, so a command refuses it.
  std::string old_value = value;
  old_value[1] = 2;
  old_value.resize(old_value.size() - format::kValueCrcSize);
  uint32_t crc = crc32c::Value(db_key.data(), db_key.size());
  crc = crc32c::Extend(crc, old_value.data(), old_value.size());
  for (size_t i = 0; i < format::kValueCrcSize; ++i) old_value.push_back(static_cast<char>(crc >> (8 * i)));
  UserRecord decoded;
  ASSERT_OK(format::DecodeUser(db_key, old_value, &decoded));
  std::string old_bytes = bytes;
  old_bytes.replace(at, value.size(), old_value);
  EXPECT_TRUE(DecodeCommand(old_bytes).status().IsInvalidArgument());
}

// ---- Execution ----------------------------------------------------------------------------------

// Runs commands over a map, applying each outcome; returns every outcome.
std::vector<CommandOutcome> RunAll(KvMap* state, const std::vector<Command>& commands) {
  std::vector<CommandOutcome> outcomes;
  for (const Command& c : commands) {
    outcomes.push_back(ExecuteCommand(MapReader(state), EncodeCommand(c)));
    test::Apply(outcomes.back().mutations, state);
  }
  return outcomes;
}

Reply DecodedReply(const std::string& bytes) {
  auto reply = DecodeReply(bytes);
  EXPECT_OK(reply);
  return reply.ok() ? *reply : Reply{};
}

std::vector<Command> Workload() {
  ObjectRecord object = SampleObject();
  return {
      command::CreateBucket{SampleBucket()},
      command::PutObject{object, {}},
      command::PutObject{object, {.must_not_exist = true}},  // fails
      command::CreateUpload{SampleUpload(/*with_parts=*/false)},
      command::PutPart{"bucket", std::string("k\0", 2), "u1", SamplePart(1)},
      command::PutPart{"bucket", std::string("k\0", 2), "u1", SamplePart(2)},
      command::CompleteUpload{"bucket", std::string("k\0", 2), "u1", {{1, "p"}}, "etag-1", 5, {}},
      command::DeleteObject{"bucket", object.key},
      command::CreateUser{UserRecord{"alice", "id", 1}},
      command::CreateAccessKey{AccessKeyRecord{"AKIA", "alice", "s", true, 1}},
      command::DeleteUser{"alice"},
  };
}

TEST(MetaCommandExecuteTest, EqualStatesAndCommandsGiveEqualOutcomes) {
  KvMap a, b;
  const std::vector<CommandOutcome> first = RunAll(&a, Workload());
  const std::vector<CommandOutcome> second = RunAll(&b, Workload());
  ASSERT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].mutations, second[i].mutations) << i;
    EXPECT_EQ(first[i].result, second[i].result) << i;
  }
  EXPECT_EQ(a, b);
  // Executing the same command twice over one unchanged state gives the same outcome too.
  const std::string put = EncodeCommand(command::PutObject{SampleObject(), {}});
  const CommandOutcome once = ExecuteCommand(MapReader(&a), put);
  const CommandOutcome twice = ExecuteCommand(MapReader(&a), put);
  EXPECT_EQ(once.mutations, twice.mutations);
  EXPECT_EQ(once.result, twice.result);
  EXPECT_EQ(ExecuteQuery(MapReader(&a), EncodeQuery(query::Stats{})),
            ExecuteQuery(MapReader(&b), EncodeQuery(query::Stats{})));
}

TEST(MetaCommandExecuteTest, CountersBecomePutsOfTheirNewValue) {
  KvMap state;
  const CommandOutcome created = RunAll(&state, {command::CreateBucket{BucketInfo{.name = "b"}}})[0];
  ASSERT_EQ(created.mutations.size(), 2u);
  EXPECT_EQ(created.mutations[0].key, format::BucketKey("b"));
  EXPECT_EQ(created.mutations[1], (KvMutation{format::CounterKey("buckets"), format::EncodeCounter(1)}));
  const CommandOutcome second = RunAll(&state, {command::CreateBucket{BucketInfo{.name = "c"}}})[0];
  EXPECT_EQ(second.mutations.back(), (KvMutation{format::CounterKey("buckets"), format::EncodeCounter(2)}));

  // A completion changes several counters at once; each is one put of its resolved value.
  RunAll(&state, {command::CreateUpload{MultipartUpload{.bucket = "b", .key = "k", .upload_id = "u"}},
                  command::PutPart{"b", "k", "u", SamplePart(1)}, command::PutPart{"b", "k", "u", SamplePart(2)}});
  const CommandOutcome done =
      RunAll(&state, {command::CompleteUpload{"b", "k", "u", {{1, "p"}, {2, "p"}}, "e", 1, {}}})[0];
  ASSERT_OK(DecodedReply(done.result).status);
  std::map<std::string, int64_t> counters;
  for (const KvMutation& m : done.mutations) {
    if (!m.key.starts_with(format::kCounterPrefix)) continue;
    ASSERT_TRUE(m.value.has_value());
    counters[m.key.substr(format::kCounterPrefix.size())] = *format::DecodeCounter(*m.value);
  }
  EXPECT_EQ(counters,
            (std::map<std::string, int64_t>{{"object_bytes", 200}, {"objects", 1}, {"parts", 0}, {"uploads", 0}}));
}

TEST(MetaCommandExecuteTest, MalformedOrFailingCommandsChangeNothing) {
  KvMap state;
  for (const std::string& bytes : {std::string(), std::string("\x01"), std::string("\x01\x01"),
                                   EncodeQuery(query::Stats{}), EncodeCommand(command::DeleteUser{"x"}) + "!"}) {
    const CommandOutcome outcome = ExecuteCommand(MapReader(&state), bytes);
    EXPECT_TRUE(outcome.mutations.empty());
    const Reply reply = DecodedReply(outcome.result);
    EXPECT_EQ(reply.op, MetaOp::kNone);
    EXPECT_TRUE(reply.status.IsInvalidArgument()) << reply.status;
  }
  const CommandOutcome missing = ExecuteCommand(MapReader(&state), EncodeCommand(command::DeleteUser{"x"}));
  EXPECT_TRUE(missing.mutations.empty());
  EXPECT_TRUE(DecodedReply(missing.result).status.IsNotFound());
  EXPECT_TRUE(DecodedReply(ExecuteQuery(MapReader(&state), EncodeCommand(command::DeleteUser{"x"})))
                  .status.IsInvalidArgument());
}

TEST(MetaCommandExecuteTest, UpdateBucketStoresOnlyOverTheExpectedRecord) {
  KvMap state;
  const BucketInfo original{.name = "b", .owner = "o", .created_ms = 1};
  RunAll(&state, {command::CreateBucket{original}});
  BucketInfo updated = original;
  updated.policy = "p";
  BucketInfo stale = original;
  stale.cors = "old";
  const CommandOutcome conflict =
      ExecuteCommand(MapReader(&state), EncodeCommand(command::UpdateBucket{"b", stale, updated}));
  EXPECT_TRUE(conflict.mutations.empty());
  EXPECT_EQ(DecodedReply(conflict.result), (Reply{MetaOp::kUpdateBucket, Status::OK(), false}));

  BucketInfo thief = original;
  thief.owner = "thief";
  EXPECT_TRUE(
      DecodedReply(ExecuteCommand(MapReader(&state), EncodeCommand(command::UpdateBucket{"b", original, thief})).result)
          .status.IsInvalidArgument());

  const CommandOutcome stored = RunAll(&state, {command::UpdateBucket{"b", original, updated}})[0];
  EXPECT_EQ(DecodedReply(stored.result), (Reply{MetaOp::kUpdateBucket, Status::OK(), true}));
  EXPECT_EQ(DecodedReply(ExecuteQuery(MapReader(&state), EncodeQuery(query::GetBucket{"b"}))).value,
            ReplyValue(updated));
}

TEST(MetaCommandExecuteTest, ChunkRefPagesVisitPartsThenObjectsOnce) {
  KvMap state;
  std::vector<Command> setup = {command::CreateBucket{BucketInfo{.name = "b"}},
                                command::CreateUpload{MultipartUpload{.bucket = "b", .key = "m", .upload_id = "u"}}};
  for (uint32_t n = 1; n <= 5; ++n) setup.push_back(command::PutPart{"b", "m", "u", SamplePart(n)});
  for (int i = 0; i < 5; ++i) {
    ObjectRecord o = SampleObject();
    o.bucket = "b";
    o.key = "k" + std::to_string(i);
    setup.push_back(command::PutObject{o, {}});
  }
  RunAll(&state, setup);
  std::vector<ChunkRef> visited;
  std::string after;
  int pages = 0;
  do {
    const Reply reply =
        DecodedReply(ExecuteQuery(MapReader(&state), EncodeQuery(query::ListChunkRefs{after, /*max_chunks=*/3})));
    ASSERT_OK(reply.status);
    const auto& page = std::get<logic::ChunkRefPage>(reply.value);
    visited.insert(visited.end(), page.chunks.begin(), page.chunks.end());
    after = page.next_after_key;
    ASSERT_LT(++pages, 20);
  } while (!after.empty());
  ASSERT_EQ(visited.size(), 5u + 5u * 2u);  // one chunk per part, two per object
  for (size_t i = 0; i < visited.size(); ++i) EXPECT_EQ(visited[i] == Chunk(9, 0), i < 5) << i;  // parts first
}

// A reader whose Gets of one key fail, as a replica's reader does for a key whose committed
// version it does not hold.
class FailingReader final : public KvReader {
 public:
  FailingReader(const KvMap* map, std::string failing_key) : map_(map), failing_key_(std::move(failing_key)) {}
  Result<std::optional<std::string>> Get(std::string_view key) const override {
    if (key == failing_key_) return Status::Busy("not committed here");
    return map_.Get(key);
  }
  std::unique_ptr<KvIterator> NewIterator() const override { return map_.NewIterator(); }

 private:
  MapReader map_;
  std::string failing_key_;
};

TEST(MetaCommandExecuteTest, AReaderErrorIsAReplyOrReturnedAsIs) {
  KvMap state;
  RunAll(&state, {command::CreateBucket{BucketInfo{.name = "b"}}});
  const FailingReader reader(&state, format::BucketKey("b"));
  const std::string query = EncodeQuery(query::GetBucket{"b"});
  EXPECT_TRUE(DecodedReply(ExecuteQuery(reader, query)).status.IsBusy());
  EXPECT_TRUE(ExecuteQueryOrReaderError(reader, query).status().IsBusy());
  // A failure of the operation itself is a reply.
  auto missing = ExecuteQueryOrReaderError(reader, EncodeQuery(query::GetBucket{"c"}));
  ASSERT_OK(missing);
  EXPECT_TRUE(DecodedReply(*missing).status.IsNoSuchBucket());
}

}  // namespace
}  // namespace cairn::meta
