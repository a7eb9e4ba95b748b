// Tests of the metadata store behind the MetaStore interface: buckets, objects with replacement
// and preconditions, listing checked against a brute-force model, multipart uploads, durability
// across reopen, and detection of corrupted values. Every test runs against each implementation
// (value-parameterized): RocksDbMetaStore; CommandMetaStore over an in-memory transport that
// executes its commands and queries as a chain's head would (memory_kv.h); and ShardedMetaStore
// over three such stores, as cluster mode splits the metadata over chains (not for the corruption
// tests, which damage one state's bytes). For the command stores a "reopen" is a new store over the
// same transports: the state lives where the commands run. Tests of RocksDB itself (iterator step counts) run against RocksDbMetaStore only.
// Thread-safety: each test owns its store; the concurrency test shares one across threads.
#include "meta/meta_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/merge_operator.h>

#include <algorithm>
#include <random>
#include <set>
#include <thread>

#include "memory_kv.h"
#include "meta/command_meta_store.h"
#include "meta/format.h"
#include "meta/rocksdb_meta_store.h"
#include "meta/sharded_meta_store.h"
#include "test_util.h"

namespace cairn::meta {
namespace {

using ::cairn::test::TempDir;

enum class Backend { kRocksDb, kCommand, kSharded };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  switch (info.param) {
    case Backend::kRocksDb:
      return "RocksDb";
    case Backend::kCommand:
      return "Command";
    case Backend::kSharded:
      return "Sharded";
  }
  return "?";
}

engine::ChunkId Id(uint64_t n) { return engine::ChunkId{.hi = 7, .lo = n}; }

ObjectRecord Object(std::string_view bucket, std::string_view key, uint64_t size = 10, std::string etag = "e1",
                    uint64_t chunk = 1) {
  ObjectRecord r;
  r.bucket = std::string(bucket);
  r.key = std::string(key);
  r.size = size;
  r.etag = std::move(etag);
  r.last_modified_ms = 1700000000000;
  r.content_type = "text/plain";
  r.user_metadata = {{"color", "blue"}, {"x", ""}};
  r.chunks = {ChunkRef{.id = Id(chunk), .offset = 0, .length = static_cast<uint32_t>(size), .crc32c = 0xabcd}};
  return r;
}

PartRecord Part(uint32_t number, uint64_t size, std::string etag, uint64_t chunk) {
  return PartRecord{.part_number = number,
                    .etag = std::move(etag),
                    .size = size,
                    .last_modified_ms = 1700000000000 + number,
                    .chunks = {ChunkRef{.id = Id(chunk), .offset = 0, .length = static_cast<uint32_t>(size)}}};
}

class MetaStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { Open(/*sync_writes=*/true); }

  void Open(bool sync_writes) {
    store_.reset();
    if (GetParam() == Backend::kCommand) {
      store_ = std::make_unique<CommandMetaStore>(&transport_);
      return;
    }
    if (GetParam() == Backend::kSharded) {
      std::vector<std::unique_ptr<MetaStore>> shards;
      for (auto& transport : shard_transports_) shards.push_back(std::make_unique<CommandMetaStore>(&transport));
      // With the bucket cache: every change here goes through this store, which must see it.
      store_ = std::make_unique<ShardedMetaStore>(std::move(shards), std::chrono::seconds(1));
      return;
    }
    RocksDbMetaStore::Options options;
    options.sync_writes = sync_writes;
    auto opened = RocksDbMetaStore::Open(dir_.path() + "/meta", options);
    ASSERT_OK(opened);
    store_ = std::move(opened).value();
  }
  void Reopen() { Open(/*sync_writes=*/true); }

  void CreateBucket(std::string name) {
    ASSERT_OK(store_->CreateBucket(BucketInfo{.name = std::move(name), .owner = "owner1", .created_ms = 5}));
  }
  void Put(const ObjectRecord& r) { ASSERT_OK(store_->PutObject(r, {}, nullptr)); }

  uint64_t StatValue(const std::string& name) {
    auto stats = store_->Stats();
    EXPECT_OK(stats);
    if (!stats.ok()) return 0;
    auto it = stats->find(name);
    EXPECT_NE(it, stats->end()) << name;
    return it == stats->end() ? 0 : it->second;
  }

  TempDir dir_;
  test::MemoryTransport transport_;               // the command store's state
  test::MemoryTransport shard_transports_[3];     // the sharded store's states
  std::unique_ptr<MetaStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Backends, MetaStoreTest,
                         ::testing::Values(Backend::kRocksDb, Backend::kCommand, Backend::kSharded), BackendName);

// Tests of RocksDbMetaStore alone.
class RocksDbMetaStoreTest : public MetaStoreTest {};
INSTANTIATE_TEST_SUITE_P(RocksDbOnly, RocksDbMetaStoreTest, ::testing::Values(Backend::kRocksDb), BackendName);

// ---- Access control and identities ------------------------------------------------------------

Acl PublicRead(std::string owner) {
  return Acl{owner,
             {{GranteeType::kCanonicalUser, owner, AclPermission::kFullControl},
              {GranteeType::kGroup, "http://acs.amazonaws.com/groups/global/AllUsers", AclPermission::kRead}}};
}

TEST_P(MetaStoreTest, DeleteBucketChecksTheExpectedOwner) {
  CreateBucket("b");
  BucketInfo other{.name = "b", .owner = "someone-else", .created_ms = 5};
  EXPECT_TRUE(store_->DeleteBucket("b", &other).IsPreconditionFailed());
  other.owner = "owner1";
  other.created_ms = 6;  // the same owner's earlier bucket of that name
  EXPECT_TRUE(store_->DeleteBucket("b", &other).IsPreconditionFailed());
  ASSERT_OK(store_->GetBucket("b"));
  other.created_ms = 5;
  ASSERT_OK(store_->DeleteBucket("b", &other));
  EXPECT_TRUE(store_->GetBucket("b").status().IsNoSuchBucket());
}

TEST_P(MetaStoreTest, GetUploadInfoHasNoParts) {
  CreateBucket("b");
  MultipartUpload u{.bucket = "b", .key = "k"};
  u.acl.owner = "initiator";
  auto id = store_->CreateUpload(u);
  ASSERT_OK(id);
  ASSERT_OK(store_->PutPart("b", "k", *id, Part(1, 5, "p1", 1), nullptr));
  auto info = store_->GetUploadInfo("b", "k", *id);
  ASSERT_OK(info);
  EXPECT_EQ(info->acl.owner, "initiator");
  EXPECT_TRUE(info->parts.empty());
  EXPECT_TRUE(store_->GetUploadInfo("b", "k", "nope").status().IsNoSuchUpload());
}

TEST_P(MetaStoreTest, UpdateBucketChangesAclPolicyAndCorsDurably) {
  CreateBucket("b");
  ASSERT_OK(store_->UpdateBucket("b", [](BucketInfo* b) {
    b->acl = PublicRead("owner1");
    b->policy = "{}";
    b->cors = "<CORSConfiguration/>";
    return Status::OK();
  }));
  Reopen();
  auto b = store_->GetBucket("b");
  ASSERT_OK(b);
  EXPECT_EQ(b->acl, PublicRead("owner1"));
  EXPECT_EQ(b->policy, "{}");
  EXPECT_EQ(b->cors, "<CORSConfiguration/>");
  EXPECT_EQ(b->owner, "owner1");
  EXPECT_EQ(b->created_ms, 5);
}

TEST_P(MetaStoreTest, UpdateBucketRefusesIdentityChangesAndKeepsMutateErrors) {
  CreateBucket("b");
  EXPECT_TRUE(store_
                  ->UpdateBucket("b",
                                 [](BucketInfo* b) {
                                   b->owner = "thief";
                                   return Status::OK();
                                 })
                  .IsInvalidArgument());
  EXPECT_TRUE(store_
                  ->UpdateBucket("b",
                                 [](BucketInfo* b) {
                                   b->policy = "x";
                                   return Status::Busy("no");
                                 })
                  .IsBusy());
  auto b = store_->GetBucket("b");
  ASSERT_OK(b);
  EXPECT_EQ(b->owner, "owner1");
  EXPECT_TRUE(b->policy.empty());
  EXPECT_TRUE(store_->UpdateBucket("nope", [](BucketInfo*) { return Status::OK(); }).IsNoSuchBucket());
}

TEST_P(MetaStoreTest, SetObjectAclReplacesOnlyTheAcl) {
  CreateBucket("b");
  ObjectRecord r = Object("b", "k");
  Put(r);
  // A record from before ACLs takes the given owner.
  ASSERT_OK(store_->SetObjectAcl("b", "k", PublicRead("u1"), &r));
  auto got = store_->GetObject("b", "k");
  ASSERT_OK(got);
  r.acl = PublicRead("u1");
  EXPECT_EQ(*got, r);
  // The owner never changes: it is who wrote the object.
  ASSERT_OK(store_->SetObjectAcl("b", "k", PublicRead("someone-else"), nullptr));
  got = store_->GetObject("b", "k");
  ASSERT_OK(got);
  EXPECT_EQ(got->acl.owner, "u1");
  // Not applied to a newer version than the one the caller read, even one with the same etag.
  ObjectRecord older = r;
  older.last_modified_ms -= 1;
  EXPECT_TRUE(store_->SetObjectAcl("b", "k", Acl{}, &older).IsPreconditionFailed());
  older = r;
  older.etag = "other-etag";
  EXPECT_TRUE(store_->SetObjectAcl("b", "k", Acl{}, &older).IsPreconditionFailed());
  EXPECT_TRUE(store_->SetObjectAcl("b", "missing", Acl{}, nullptr).IsNotFound());
  EXPECT_TRUE(store_->SetObjectAcl("nope", "k", Acl{}, nullptr).IsNoSuchBucket());
}

TEST_P(MetaStoreTest, UploadAclBecomesTheObjectAcl) {
  CreateBucket("b");
  MultipartUpload u{.bucket = "b", .key = "k"};
  u.acl = PublicRead("u2");
  auto id = store_->CreateUpload(u);
  ASSERT_OK(id);
  ASSERT_OK(store_->PutPart("b", "k", *id, Part(1, 5, "p1", 1), nullptr));
  auto done = store_->CompleteUpload("b", "k", *id, {{1, "p1"}}, "etag", 1, {});
  ASSERT_OK(done);
  EXPECT_EQ(done->object.acl, PublicRead("u2"));
  auto got = store_->GetObject("b", "k");
  ASSERT_OK(got);
  EXPECT_EQ(got->acl, PublicRead("u2"));
}

TEST_P(MetaStoreTest, UsersAndAccessKeysPersistAndDeleteTogether) {
  ASSERT_OK(store_->CreateUser(UserRecord{"alice", "id-a", 1}));
  ASSERT_OK(store_->CreateUser(UserRecord{"bob", "id-b", 2}));
  EXPECT_TRUE(store_->CreateUser(UserRecord{"alice", "id-x", 3}).IsAlreadyExists());
  ASSERT_OK(store_->CreateAccessKey(AccessKeyRecord{"K1", "alice", "sealed1", true, 10}));
  ASSERT_OK(store_->CreateAccessKey(AccessKeyRecord{"K2", "alice", "sealed2", true, 11}));
  ASSERT_OK(store_->CreateAccessKey(AccessKeyRecord{"K3", "bob", "sealed3", true, 12}));
  EXPECT_TRUE(store_->CreateAccessKey(AccessKeyRecord{"K1", "bob", "s", true, 1}).IsAlreadyExists());
  EXPECT_TRUE(store_->CreateAccessKey(AccessKeyRecord{"K9", "carol", "s", true, 1}).IsNotFound());
  ASSERT_OK(store_->SetAccessKeyEnabled("K2", false));
  EXPECT_TRUE(store_->SetAccessKeyEnabled("K9", false).IsNotFound());
  Reopen();

  auto users = store_->ListUsers();
  ASSERT_OK(users);
  EXPECT_EQ(*users, (std::vector<UserRecord>{{"alice", "id-a", 1}, {"bob", "id-b", 2}}));
  auto keys = store_->ListAccessKeys();
  ASSERT_OK(keys);
  EXPECT_EQ(*keys, (std::vector<AccessKeyRecord>{{"K1", "alice", "sealed1", true, 10},
                                                 {"K2", "alice", "sealed2", false, 11},
                                                 {"K3", "bob", "sealed3", true, 12}}));

  auto removed = store_->DeleteUser("alice");
  ASSERT_OK(removed);
  EXPECT_EQ(removed->size(), 2u);
  EXPECT_TRUE(store_->DeleteUser("alice").status().IsNotFound());
  ASSERT_OK(store_->DeleteAccessKey("K3"));
  EXPECT_TRUE(store_->DeleteAccessKey("K3").IsNotFound());
  Reopen();
  users = store_->ListUsers();
  ASSERT_OK(users);
  EXPECT_EQ(*users, (std::vector<UserRecord>{{"bob", "id-b", 2}}));
  keys = store_->ListAccessKeys();
  ASSERT_OK(keys);
  EXPECT_TRUE(keys->empty());
}

// ---- Buckets ---------------------------------------------------------------------------------

TEST_P(MetaStoreTest, BucketsAreCreatedListedInOrderAndDeleted) {
  CreateBucket("charlie");
  CreateBucket("alpha");
  CreateBucket("bravo");
  EXPECT_TRUE(store_->CreateBucket(BucketInfo{.name = "alpha"}).IsAlreadyExists());

  auto list = store_->ListBuckets();
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].name, "alpha");
  EXPECT_EQ((*list)[1].name, "bravo");
  EXPECT_EQ((*list)[2].name, "charlie");

  auto got = store_->GetBucket("bravo");
  ASSERT_OK(got);
  EXPECT_EQ(*got, (BucketInfo{.name = "bravo", .owner = "owner1", .created_ms = 5}));

  ASSERT_OK(store_->DeleteBucket("bravo", nullptr));
  EXPECT_TRUE(store_->GetBucket("bravo").status().IsNoSuchBucket());
  EXPECT_TRUE(store_->DeleteBucket("bravo", nullptr).IsNoSuchBucket());
  EXPECT_EQ(StatValue("buckets"), 2u);
}

TEST_P(MetaStoreTest, BucketNamesMustBeNonEmptyWithoutNul) {
  EXPECT_TRUE(store_->CreateBucket(BucketInfo{.name = ""}).IsInvalidArgument());
  EXPECT_TRUE(store_->CreateBucket(BucketInfo{.name = std::string("a\0b", 3)}).IsInvalidArgument());
}

TEST_P(MetaStoreTest, BucketWithObjectOrUploadIsNotEmpty) {
  CreateBucket("b");
  Put(Object("b", "k"));
  EXPECT_TRUE(store_->DeleteBucket("b", nullptr).IsBucketNotEmpty());
  ASSERT_OK(store_->DeleteObject("b", "k"));

  auto id = store_->CreateUpload(MultipartUpload{.bucket = "b", .key = "k"});
  ASSERT_OK(id);
  EXPECT_TRUE(store_->DeleteBucket("b", nullptr).IsBucketNotEmpty());
  ASSERT_OK(store_->AbortUpload("b", "k", *id));
  ASSERT_OK(store_->DeleteBucket("b", nullptr));
}

TEST_P(MetaStoreTest, BucketsWhoseNamesShareAPrefixDoNotMix) {
  CreateBucket("ab");
  CreateBucket("ab.c");
  Put(Object("ab", "z"));
  Put(Object("ab.c", "a"));
  auto page = store_->ListObjects("ab", {});
  ASSERT_OK(page);
  ASSERT_EQ(page->objects.size(), 1u);
  EXPECT_EQ(page->objects[0].key, "z");
  ASSERT_OK(store_->DeleteObject("ab", "z"));
  ASSERT_OK(store_->DeleteBucket("ab", nullptr));
}

// ---- Objects ---------------------------------------------------------------------------------

TEST_P(MetaStoreTest, PutGetRoundTripsEveryField) {
  CreateBucket("b");
  ObjectRecord r = Object("b", "dir/file.txt", 3000, "0123456789abcdef0123456789abcdef-2");
  r.content_encoding = "gzip";
  r.content_disposition = "attachment";
  r.cache_control = "no-cache";
  r.expires = "Wed, 21 Oct 2015 07:28:00 GMT";
  r.storage_class = "STANDARD_IA";
  r.chunks.push_back(ChunkRef{.id = Id(9), .offset = 3000, .length = 5, .crc32c = 1});
  r.part_count = 2;
  r.part_sizes = {3000, 5};
  Put(r);
  auto got = store_->GetObject("b", "dir/file.txt");
  ASSERT_OK(got);
  EXPECT_EQ(*got, r);
}

TEST_P(MetaStoreTest, PutReplacesAndReturnsTheReplacedRecord) {
  CreateBucket("b");
  std::optional<ObjectRecord> replaced;
  ASSERT_OK(store_->PutObject(Object("b", "k", 10, "e1", 1), {}, &replaced));
  EXPECT_FALSE(replaced.has_value());
  ASSERT_OK(store_->PutObject(Object("b", "k", 20, "e2", 2), {}, &replaced));
  ASSERT_TRUE(replaced.has_value());
  EXPECT_EQ(replaced->etag, "e1");
  EXPECT_EQ(replaced->chunks[0].id, Id(1));
  EXPECT_EQ(store_->GetObject("b", "k")->etag, "e2");
  EXPECT_EQ(StatValue("objects"), 1u);
  EXPECT_EQ(StatValue("object_bytes"), 20u);
}

TEST_P(MetaStoreTest, MissingBucketAndMissingKeyAreDistinct) {
  CreateBucket("b");
  EXPECT_TRUE(store_->GetObject("b", "nope").status().IsNotFound());
  EXPECT_TRUE(store_->GetObject("nobucket", "k").status().IsNoSuchBucket());
  EXPECT_TRUE(store_->PutObject(Object("nobucket", "k"), {}, nullptr).IsNoSuchBucket());
  EXPECT_TRUE(store_->ListObjects("nobucket", {}).status().IsNoSuchBucket());
  EXPECT_TRUE(store_->PutObject(Object("b", ""), {}, nullptr).IsInvalidArgument());
}

TEST_P(MetaStoreTest, DeleteReturnsTheDeletedRecord) {
  CreateBucket("b");
  Put(Object("b", "k", 10, "e1", 4));
  auto deleted = store_->DeleteObject("b", "k");
  ASSERT_OK(deleted);
  EXPECT_EQ(deleted->chunks[0].id, Id(4));
  EXPECT_TRUE(store_->GetObject("b", "k").status().IsNotFound());
  EXPECT_TRUE(store_->DeleteObject("b", "k").status().IsNotFound());
  EXPECT_EQ(StatValue("objects"), 0u);
  EXPECT_EQ(StatValue("object_bytes"), 0u);
}

TEST_P(MetaStoreTest, ConditionalPut) {
  CreateBucket("b");
  const WritePrecondition if_none_match{.must_not_exist = true};
  ASSERT_OK(store_->PutObject(Object("b", "k", 1, "e1"), if_none_match, nullptr));
  EXPECT_TRUE(store_->PutObject(Object("b", "k", 1, "e2"), if_none_match, nullptr).IsPreconditionFailed());

  EXPECT_TRUE(store_->PutObject(Object("b", "k", 1, "e2"), {.if_match_etag = "e9"}, nullptr).IsPreconditionFailed());
  ASSERT_OK(store_->PutObject(Object("b", "k", 1, "e2"), {.if_match_etag = "\"e1\""}, nullptr));
  ASSERT_OK(store_->PutObject(Object("b", "k", 1, "e3"), {.if_match_etag = "*"}, nullptr));
  EXPECT_TRUE(store_->PutObject(Object("b", "other", 1, "e1"), {.if_match_etag = "e1"}, nullptr).IsNotFound());
  EXPECT_EQ(store_->GetObject("b", "k")->etag, "e3");
  EXPECT_TRUE(store_->GetObject("b", "other").status().IsNotFound());
}

TEST_P(MetaStoreTest, KeysAreOrderedByTheirBytesIncludingNulAndFF) {
  CreateBucket("b");
  const std::vector<std::string> keys = {std::string("a\0b", 3), "a", "a\xff", "a\x01", "\xff\xff", "A"};
  for (const auto& k : keys) Put(Object("b", k));
  auto page = store_->ListObjects("b", {});
  ASSERT_OK(page);
  std::vector<std::string> got;
  for (const auto& o : page->objects) got.push_back(o.key);
  std::vector<std::string> want = keys;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  EXPECT_EQ(want.front(), "A");
  EXPECT_EQ(want[2], std::string("a\0b", 3));
}

TEST_P(MetaStoreTest, ConcurrentReplacementsHandEachRecordBackExactlyOnce) {
  Open(/*sync_writes=*/false);
  CreateBucket("b");
  constexpr int kThreads = 4;
  constexpr int kPuts = 100;
  std::vector<std::vector<std::string>> replaced(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        std::optional<ObjectRecord> old;
        const std::string etag = std::to_string(t) + "-" + std::to_string(i);
        EXPECT_OK(store_->PutObject(Object("b", "hot", 1, etag), {}, &old));
        if (old) replaced[t].push_back(old->etag);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::multiset<std::string> seen;
  for (const auto& v : replaced) seen.insert(v.begin(), v.end());
  seen.insert(store_->GetObject("b", "hot")->etag);
  ASSERT_EQ(seen.size(), size_t{kThreads * kPuts});
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size());
}

// ---- Listing ---------------------------------------------------------------------------------

struct Item {
  std::string name;
  bool is_prefix = false;
  friend bool operator==(const Item&, const Item&) = default;
};

void PrintTo(const Item& item, std::ostream* os) {
  *os << (item.is_prefix ? "P:" : "K:") << ::testing::PrintToString(item.name);
}

// The listing by definition (see ListObjectsResult), over a sorted set of keys.
std::vector<Item> ModelListing(const std::set<std::string>& keys, const std::string& prefix,
                               const std::string& delimiter, const std::string& start_after) {
  std::vector<Item> out;
  for (const std::string& k : keys) {
    if (k.compare(0, prefix.size(), prefix) != 0 || k <= start_after) continue;
    const size_t pos = delimiter.empty() ? std::string::npos : k.find(delimiter, prefix.size());
    if (pos == std::string::npos) {
      out.push_back({k, false});
      continue;
    }
    const std::string common = k.substr(0, pos + delimiter.size());
    if (common == start_after) continue;
    if (!out.empty() && out.back().is_prefix && out.back().name == common) continue;
    out.push_back({common, true});
  }
  return out;
}

// One page as a single ordered list; checks the page's own invariants.
std::vector<Item> PageItems(const ListObjectsResult& page, uint32_t max_keys) {
  std::vector<Item> items;
  for (const auto& o : page.objects) items.push_back({o.key, false});
  for (const auto& p : page.common_prefixes) items.push_back({p, true});
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.name < b.name; });
  EXPECT_LE(items.size(), max_keys);
  if (page.is_truncated) {
    EXPECT_EQ(items.size(), max_keys);
  }
  EXPECT_EQ(page.next_start_after, items.empty() ? "" : items.back().name);
  return items;
}

std::string RandomString(std::mt19937_64& rng, int max_tokens) {
  static const std::vector<std::string> kAlphabet = {
      "a", "b", "/", "%", " ", "\xc3\xa9" /* é */, "\xe6\x97\xa5" /* 日 */, "z"};
  std::string s;
  const int n = 1 + static_cast<int>(rng() % max_tokens);
  for (int i = 0; i < n; ++i) s += kAlphabet[rng() % kAlphabet.size()];
  return s;
}

TEST_P(MetaStoreTest, ListingMatchesTheModelForRandomQueriesAndPaging) {
  Open(/*sync_writes=*/false);
  CreateBucket("b");
  const uint64_t seed = 20240601;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::set<std::string> keys;
  while (keys.size() < 500) keys.insert(RandomString(rng, 6));
  for (const auto& k : keys) Put(Object("b", k));
  const std::vector<std::string> key_list(keys.begin(), keys.end());
  const std::vector<std::string> delimiters = {"", "/", "%", "\xc3\xa9", "a/", "\xe6\x97\xa5", " "};

  auto pick_string = [&]() -> std::string {
    switch (rng() % 4) {
      case 0:
        return "";
      case 1: {  // a byte prefix of an existing key (may cut a UTF-8 sequence)
        const std::string& k = key_list[rng() % key_list.size()];
        return k.substr(0, rng() % (k.size() + 1));
      }
      case 2:
        return key_list[rng() % key_list.size()];
      default:
        return RandomString(rng, 3);
    }
  };

  for (int query = 0; query < 400; ++query) {
    const std::string prefix = rng() % 3 == 0 ? std::string() : pick_string();
    const std::string delimiter = delimiters[rng() % delimiters.size()];
    std::string start_after = rng() % 2 == 0 ? std::string() : pick_string();
    const uint32_t max_keys = rng() % 4 == 0 ? 1000 : 1 + static_cast<uint32_t>(rng() % 7);
    SCOPED_TRACE(::testing::Message() << "query " << query << " prefix " << ::testing::PrintToString(prefix)
                                      << " delimiter " << ::testing::PrintToString(delimiter) << " start_after "
                                      << ::testing::PrintToString(start_after) << " max_keys " << max_keys);
    const std::vector<Item> want = ModelListing(keys, prefix, delimiter, start_after);
    std::vector<Item> got;
    for (int page_no = 0; page_no <= static_cast<int>(keys.size()); ++page_no) {
      auto page = store_->ListObjects(
          "b", {.prefix = prefix, .delimiter = delimiter, .start_after = start_after, .max_keys = max_keys});
      ASSERT_OK(page);
      const std::vector<Item> items = PageItems(*page, max_keys);
      got.insert(got.end(), items.begin(), items.end());
      if (!page->is_truncated) break;
      start_after = page->next_start_after;
    }
    ASSERT_EQ(got, want);
  }
}

TEST_P(MetaStoreTest, MaxKeysZeroReturnsNothingButReportsTruncation) {
  CreateBucket("b");
  Put(Object("b", "k"));
  auto page = store_->ListObjects("b", {.max_keys = 0});
  ASSERT_OK(page);
  EXPECT_TRUE(page->objects.empty());
  EXPECT_TRUE(page->is_truncated);
}

TEST_P(RocksDbMetaStoreTest, ACommonPrefixGroupIsSkippedWithBoundedIteratorSteps) {
  Open(/*sync_writes=*/false);
  CreateBucket("b");
  for (int i = 0; i < 10000; ++i) Put(Object("b", "big/" + std::to_string(i)));
  for (const char* k : {"a", "big0", "c/x", "c/y", "d"}) Put(Object("b", k));

  const uint64_t before = StatValue(RocksDbMetaStore::kListIteratorSteps);
  auto page = store_->ListObjects("b", {.delimiter = "/"});
  ASSERT_OK(page);
  const uint64_t steps = StatValue(RocksDbMetaStore::kListIteratorSteps) - before;
  EXPECT_EQ(PageItems(*page, 1000),
            (std::vector<Item>{{"a", false}, {"big/", true}, {"big0", false}, {"c/", true}, {"d", false}}));
  EXPECT_LE(steps, 10u);

  // Continuing after the group, as a client paging with max-keys=2 does, also skips it.
  const uint64_t before_page = StatValue(RocksDbMetaStore::kListIteratorSteps);
  page = store_->ListObjects("b", {.delimiter = "/", .start_after = "big/", .max_keys = 2});
  ASSERT_OK(page);
  EXPECT_EQ(PageItems(*page, 2), (std::vector<Item>{{"big0", false}, {"c/", true}}));
  EXPECT_TRUE(page->is_truncated);
  EXPECT_LE(StatValue(RocksDbMetaStore::kListIteratorSteps) - before_page, 5u);
}

// ---- Multipart -------------------------------------------------------------------------------

class MultipartTest : public MetaStoreTest {
 protected:
  void SetUp() override {
    MetaStoreTest::SetUp();
    CreateBucket("b");
    MultipartUpload upload{.bucket = "b", .key = "big.bin", .initiated_ms = 77};
    upload.headers.content_type = "application/octet-stream";
    upload.headers.user_metadata = {{"k", "v"}};
    auto id = store_->CreateUpload(upload);
    ASSERT_OK(id);
    id_ = *id;
    for (uint32_t n = 1; n <= 3; ++n)
      ASSERT_OK(store_->PutPart("b", "big.bin", id_, Part(n, 100 * n, "p" + std::to_string(n), 10 + n), nullptr));
  }
  std::string id_;
};

INSTANTIATE_TEST_SUITE_P(Backends, MultipartTest,
                         ::testing::Values(Backend::kRocksDb, Backend::kCommand, Backend::kSharded), BackendName);

TEST_P(MultipartTest, UploadIdIsGeneratedAndPartsAreStored) {
  EXPECT_EQ(id_.size(), 32u);
  auto upload = store_->GetUpload("b", "big.bin", id_);
  ASSERT_OK(upload);
  EXPECT_EQ(upload->initiated_ms, 77);
  EXPECT_EQ(upload->headers.content_type, "application/octet-stream");
  ASSERT_EQ(upload->parts.size(), 3u);
  EXPECT_EQ(upload->parts.at(2), Part(2, 200, "p2", 12));
  EXPECT_EQ(StatValue("uploads"), 1u);
  EXPECT_EQ(StatValue("parts"), 3u);
  EXPECT_TRUE(store_->GetUpload("b", "big.bin", "nope").status().IsNoSuchUpload());
  EXPECT_TRUE(store_->GetUpload("b", "other", id_).status().IsNoSuchUpload());
}

TEST_P(MultipartTest, PutPartReplacesTheSameNumberAndReturnsTheOldPart) {
  std::optional<PartRecord> replaced;
  ASSERT_OK(store_->PutPart("b", "big.bin", id_, Part(2, 222, "p2b", 99), &replaced));
  ASSERT_TRUE(replaced.has_value());
  EXPECT_EQ(replaced->chunks[0].id, Id(12));
  EXPECT_EQ(store_->GetUpload("b", "big.bin", id_)->parts.at(2).etag, "p2b");
  EXPECT_EQ(StatValue("parts"), 3u);
  EXPECT_TRUE(store_->PutPart("b", "big.bin", id_, Part(0, 1, "x", 1), nullptr).IsInvalidArgument());
  EXPECT_TRUE(store_->PutPart("b", "big.bin", "nope", Part(1, 1, "x", 1), nullptr).IsNoSuchUpload());
}

TEST_P(MultipartTest, ListPartsPages) {
  auto page = store_->ListParts("b", "big.bin", id_, /*part_number_marker=*/0, /*max_parts=*/2);
  ASSERT_OK(page);
  ASSERT_EQ(page->parts.size(), 2u);
  EXPECT_TRUE(page->is_truncated);
  EXPECT_EQ(page->next_part_number_marker, 2u);
  page = store_->ListParts("b", "big.bin", id_, page->next_part_number_marker, 2);
  ASSERT_OK(page);
  ASSERT_EQ(page->parts.size(), 1u);
  EXPECT_EQ(page->parts[0].part_number, 3u);
  EXPECT_FALSE(page->is_truncated);
}

TEST_P(MultipartTest, CompleteCommitsTheChosenPartsAndReturnsTheRest) {
  Put(Object("b", "big.bin", 5, "old", 50));
  EXPECT_TRUE(store_->CompleteUpload("b", "big.bin", id_, {{3, "p3"}, {1, "p1"}}, "etag-2", 1, {})
                  .status()
                  .IsInvalidPartOrder());
  EXPECT_TRUE(
      store_->CompleteUpload("b", "big.bin", id_, {{1, "p1"}, {3, "wrong"}}, "etag-2", 1, {}).status().IsInvalidPart());
  EXPECT_TRUE(
      store_->CompleteUpload("b", "big.bin", id_, {{1, "p1"}, {4, "p4"}}, "etag-2", 1, {}).status().IsInvalidPart());
  EXPECT_TRUE(store_->CompleteUpload("b", "big.bin", id_, {{1, "p1"}}, "etag-1", 1, {.must_not_exist = true})
                  .status()
                  .IsPreconditionFailed());

  auto done = store_->CompleteUpload("b", "big.bin", id_, {{1, "\"p1\""}, {3, "p3"}}, "\"abc-2\"", 1234, {});
  ASSERT_OK(done);
  const ObjectRecord& o = done->object;
  EXPECT_EQ(o.size, 400u);
  EXPECT_EQ(o.etag, "abc-2");
  EXPECT_EQ(o.last_modified_ms, 1234);
  EXPECT_EQ(o.part_count, 2u);
  EXPECT_EQ(o.part_sizes, (std::vector<uint64_t>{100, 300}));
  ASSERT_EQ(o.chunks.size(), 2u);
  EXPECT_EQ(o.chunks[1], (ChunkRef{.id = Id(13), .offset = 100, .length = 300}));
  EXPECT_EQ(o.content_type, "application/octet-stream");
  EXPECT_EQ(o.user_metadata, (UserMetadata{{"k", "v"}}));
  ASSERT_TRUE(done->replaced.has_value());
  EXPECT_EQ(done->replaced->etag, "old");
  EXPECT_EQ(done->unused_chunks, (std::vector<ChunkRef>{{.id = Id(12), .offset = 0, .length = 200}}));

  EXPECT_EQ(*store_->GetObject("b", "big.bin"), o);
  EXPECT_TRUE(store_->GetUpload("b", "big.bin", id_).status().IsNoSuchUpload());
  EXPECT_TRUE(store_->PutPart("b", "big.bin", id_, Part(4, 1, "x", 1), nullptr).IsNoSuchUpload());
  EXPECT_EQ(StatValue("uploads"), 0u);
  EXPECT_EQ(StatValue("parts"), 0u);
  EXPECT_EQ(StatValue("objects"), 1u);
  EXPECT_EQ(StatValue("object_bytes"), 400u);
}

TEST_P(MultipartTest, AbortReturnsEveryChunk) {
  auto chunks = store_->AbortUpload("b", "big.bin", id_);
  ASSERT_OK(chunks);
  ASSERT_EQ(chunks->size(), 3u);
  EXPECT_EQ((*chunks)[2].id, Id(13));
  EXPECT_TRUE(store_->AbortUpload("b", "big.bin", id_).status().IsNoSuchUpload());
  EXPECT_EQ(StatValue("parts"), 0u);
}

TEST_P(MultipartTest, ListUploadsOrdersByKeyThenIdAndPages) {
  ASSERT_OK(store_->AbortUpload("b", "big.bin", id_));
  // Keys that an unescaped encoding would misorder: "a" < "a\0b" < "a\x01".
  const std::vector<std::string> keys = {"a", std::string("a\0b", 3), "a\x01", "b"};
  std::vector<std::pair<std::string, std::string>> want;
  for (const auto& k : keys) {
    for (const char* id : {"id2", "id1"}) {
      ASSERT_OK(store_->CreateUpload(MultipartUpload{.bucket = "b", .key = k, .upload_id = id}));
      want.emplace_back(k, id);
    }
  }
  std::sort(want.begin(), want.end());
  EXPECT_TRUE(
      store_->CreateUpload(MultipartUpload{.bucket = "b", .key = "a", .upload_id = "id1"}).status().IsAlreadyExists());

  std::vector<std::pair<std::string, std::string>> got;
  ListUploadsOptions options{.max_uploads = 3};
  for (int i = 0; i < 10; ++i) {
    auto page = store_->ListUploads("b", options);
    ASSERT_OK(page);
    for (const auto& u : page->uploads) got.emplace_back(u.key, u.upload_id);
    if (!page->is_truncated) break;
    options.key_marker = page->next_key_marker;
    options.upload_id_marker = page->next_upload_id_marker;
  }
  EXPECT_EQ(got, want);

  auto after_key = store_->ListUploads("b", {.key_marker = "a"});
  ASSERT_OK(after_key);
  ASSERT_EQ(after_key->uploads.size(), 6u);
  EXPECT_EQ(after_key->uploads[0].key, std::string("a\0b", 3));
  auto with_prefix = store_->ListUploads("b", {.prefix = std::string("a\0", 2)});
  ASSERT_OK(with_prefix);
  EXPECT_EQ(with_prefix->uploads.size(), 2u);
}

TEST_P(MultipartTest, ForEachChunkRefVisitsObjectsAndParts) {
  Put(Object("b", "x", 10, "e", 70));
  std::set<engine::ChunkId> seen;
  ASSERT_OK(store_->ForEachChunkRef([&](const ChunkRef& c) {
    seen.insert(c.id);
    return Status::OK();
  }));
  EXPECT_EQ(seen, (std::set<engine::ChunkId>{Id(11), Id(12), Id(13), Id(70)}));
  EXPECT_TRUE(store_->ForEachChunkRef([](const ChunkRef&) { return Status::Cancelled(); }).IsCancelled());
}

// ---- Durability and corruption ---------------------------------------------------------------

TEST_P(MultipartTest, EverythingSurvivesReopen) {
  Put(Object("b", "k", 42, "e42", 5));
  Reopen();
  EXPECT_EQ(store_->GetBucket("b")->owner, "owner1");
  EXPECT_EQ(store_->GetObject("b", "k")->size, 42u);
  EXPECT_EQ(store_->GetUpload("b", "big.bin", id_)->parts.size(), 3u);
  EXPECT_EQ(StatValue("objects"), 1u);
  EXPECT_EQ(StatValue("object_bytes"), 42u);
  EXPECT_EQ(StatValue("parts"), 3u);
}

// The counter merge operator, as the store defines it, so that a raw RocksDB handle can open
// (and flush) the store's database.
class TestCounterAdd final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger*) const override {
    const int64_t base = existing ? *format::DecodeCounter(existing->ToStringView()) : 0;
    *new_value = format::EncodeCounter(base + *format::DecodeCounter(value.ToStringView()));
    return true;
  }
  const char* Name() const override { return "cairn.meta.CounterAdd"; }
};

// The stored state, read and written behind the store's back.
class RawState {
 public:
  virtual ~RawState() = default;
  virtual std::string Get(const std::string& key) = 0;  // REQUIRES: the key exists
  virtual void Put(const std::string& key, const std::string& value) = 0;
};

class CorruptionTest : public MetaStoreTest {
 protected:
  // Runs fn on the raw state while the store is closed: the RocksDB database through a raw
  // handle, or the command store's key-value state.
  template <typename Fn>
  void WithRawState(Fn fn) {
    store_.reset();
    if (GetParam() == Backend::kCommand) {
      transport_.WithState([&](test::KvMap* map) {
        struct MapState final : RawState {
          explicit MapState(test::KvMap* m) : map(m) {}
          std::string Get(const std::string& key) override { return map->at(key); }
          void Put(const std::string& key, const std::string& value) override { (*map)[key] = value; }
          test::KvMap* map;
        } state(map);
        fn(&state);
      });
      Reopen();
      return;
    }
    rocksdb::Options options;
    options.merge_operator = std::make_shared<TestCounterAdd>();
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.path() + "/meta", &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    struct DbState final : RawState {
      explicit DbState(rocksdb::DB* d) : db(d) {}
      std::string Get(const std::string& key) override {
        std::string value;
        EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), key, &value).ok());
        return value;
      }
      void Put(const std::string& key, const std::string& value) override {
        EXPECT_TRUE(db->Put(rocksdb::WriteOptions(), key, value).ok());
      }
      rocksdb::DB* db;
    } state(db.get());
    fn(&state);
    ASSERT_TRUE(db->Close().ok());
    db.reset();
    Reopen();
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, CorruptionTest, ::testing::Values(Backend::kRocksDb, Backend::kCommand),
                         BackendName);

TEST_P(CorruptionTest, AFlippedByteIsReportedAsCorruption) {
  CreateBucket("b");
  Put(Object("b", "k"));
  WithRawState([](RawState* state) {
    const std::string key = format::ObjectKey("b", "k");
    std::string value = state->Get(key);
    value[value.size() / 2] ^= 0x10;
    state->Put(key, value);
  });
  EXPECT_TRUE(store_->GetObject("b", "k").status().IsCorruption());
  EXPECT_TRUE(store_->ListObjects("b", {}).status().IsCorruption());
  EXPECT_TRUE(store_->ForEachChunkRef([](const ChunkRef&) { return Status::OK(); }).IsCorruption());
  EXPECT_TRUE(store_->PutObject(Object("b", "k"), {}, nullptr).IsCorruption());
}

TEST_P(CorruptionTest, ADamagedBucketRecordIsReportedAfterReopen) {
  CreateBucket("b");
  CreateBucket("c");
  WithRawState([](RawState* state) {
    const std::string key = format::BucketKey("b");
    std::string value = state->Get(key);
    value[value.size() / 2] ^= 0x10;
    state->Put(key, value);
  });
  EXPECT_TRUE(store_->GetBucket("b").status().IsCorruption());
  ASSERT_OK(store_->GetBucket("c"));
}

TEST_P(CorruptionTest, AValueUnderAnotherKeyIsReportedAsCorruption) {
  CreateBucket("b");
  Put(Object("b", "k1"));
  WithRawState(
      [](RawState* state) { state->Put(format::ObjectKey("b", "k2"), state->Get(format::ObjectKey("b", "k1"))); });
  EXPECT_OK(store_->GetObject("b", "k1"));
  EXPECT_TRUE(store_->GetObject("b", "k2").status().IsCorruption());
}

// ---- Format ----------------------------------------------------------------------------------

TEST(MetaFormatTest, TruncatedOrUnknownVersionValuesAreRejected) {
  const std::string key = format::ObjectKey("b", "k");
  const std::string value = format::EncodeObject(key, Object("b", "k"));
  ObjectRecord out;
  ASSERT_OK(format::DecodeObject(key, value, &out));
  for (size_t n = 0; n < value.size(); ++n) {
    EXPECT_TRUE(format::DecodeObject(key, value.substr(0, n), &out).IsCorruption()) << n;
  }
  // A different type tag with a valid checksum is still refused.
  const std::string bucket_key = format::BucketKey("b");
  EXPECT_TRUE(format::DecodeObject(bucket_key, format::EncodeBucket(bucket_key, {}), &out).IsCorruption());
}

TEST(MetaFormatTest, UploadKeysRoundTripAndSortByKeyThenId) {
  const std::string odd_key("x\0\x01y\0", 5);
  std::string bucket, key, id;
  ASSERT_TRUE(format::ParseUploadKey(format::UploadKey("bk", odd_key, "u1"), &bucket, &key, &id));
  EXPECT_EQ(bucket, "bk");
  EXPECT_EQ(key, odd_key);
  EXPECT_EQ(id, "u1");
  EXPECT_LT(format::UploadKey("b", "a", "zzz"), format::UploadKey("b", std::string("a\0", 2), "aaa"));
  EXPECT_LT(format::UploadKey("b", std::string("a\0", 2), "zzz"), format::UploadKey("b", "a\x01", "aaa"));
  EXPECT_LT(format::PartKey("u", 2), format::PartKey("u", 256));
}

}  // namespace
}  // namespace cairn::meta

namespace cairn::meta {
namespace {

// GetBucket answers from memory; what it answers must be what the database holds, across every
// mutation and a reopen, and a damaged bucket record is still reported as Corruption.
TEST_P(MetaStoreTest, BucketReadsFollowEveryMutationAndReopen) {
  CreateBucket("b");
  ASSERT_OK(store_->UpdateBucket("b", [](BucketInfo* b) {
    b->policy = "p1";
    return Status::OK();
  }));
  ASSERT_EQ(store_->GetBucket("b")->policy, "p1");
  ASSERT_OK(store_->DeleteBucket("b", nullptr));
  EXPECT_TRUE(store_->GetBucket("b").status().IsNoSuchBucket());
  CreateBucket("b");
  EXPECT_TRUE(store_->GetBucket("b")->policy.empty());
  ASSERT_OK(store_->UpdateBucket("b", [](BucketInfo* b) {
    b->cors = "c";
    return Status::OK();
  }));
  Reopen();
  auto b = store_->GetBucket("b");
  ASSERT_OK(b);
  EXPECT_EQ(b->cors, "c");
  EXPECT_EQ(b->owner, "owner1");
}

}  // namespace
}  // namespace cairn::meta
