// Tests of how ShardedMetaStore splits the metadata: everything of a bucket in the shard its name
// picks, users and keys in shard 0, and the reads of the whole store (ListBuckets, Stats,
// ForEachChunkRef) gathered from every shard. The MetaStore semantics themselves are tested by
// meta_store_test, which runs every test against a sharded store as well.
// Thread-safety: each test owns its stores.
#include "meta/sharded_meta_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "memory_kv.h"
#include "meta/command_meta_store.h"
#include "meta/format.h"
#include "test_util.h"

namespace cairn::meta {
namespace {

constexpr uint32_t kShards = 4;

class ShardedMetaStoreTest : public ::testing::Test {
 protected:
  ShardedMetaStoreTest() {
    std::vector<std::unique_ptr<MetaStore>> shards;
    for (auto& transport : transports_) {
      direct_.push_back(std::make_unique<CommandMetaStore>(&transport));
      shards.push_back(std::make_unique<CommandMetaStore>(&transport));
    }
    store_ = std::make_unique<ShardedMetaStore>(std::move(shards));
  }

  // Keys of one shard's state.
  std::set<std::string> KeysOf(uint32_t shard) {
    std::set<std::string> keys;
    transports_[shard].WithState([&](test::KvMap* map) {
      for (const auto& [key, value] : *map) keys.insert(key);
    });
    return keys;
  }

  ObjectRecord Object(const std::string& bucket, const std::string& key, uint64_t chunk) {
    ObjectRecord r;
    r.bucket = bucket;
    r.key = key;
    r.size = 3;
    r.etag = "e";
    r.last_modified_ms = 1700000000000;
    r.chunks = {ChunkRef{.id = engine::ChunkId{.hi = 1, .lo = chunk}, .offset = 0, .length = 3}};
    return r;
  }

  test::MemoryTransport transports_[kShards];
  std::vector<std::unique_ptr<MetaStore>> direct_;  // each shard alone, over the same state
  std::unique_ptr<ShardedMetaStore> store_;
};

// The shard of a bucket is part of the stored layout: it must not change between versions.
TEST(BucketShardTest, IsTheCrc32cOfTheNameModuloTheCount) {
  EXPECT_EQ(BucketShard("photos", 1), 0u);
  EXPECT_EQ(BucketShard("", 16), 0u);                         // the CRC32C of nothing is 0
  EXPECT_EQ(BucketShard("123456789", 1u << 31), 0xE3069283u % (1u << 31));  // the check value
  EXPECT_EQ(BucketShard("123456789", 16), 0xE3069283u % 16);
}

TEST_F(ShardedMetaStoreTest, ABucketAndEverythingInItLiveInItsShard) {
  std::set<uint32_t> used;
  for (int i = 0; i < 24; ++i) {
    const std::string name = "bucket-" + std::to_string(i);
    ASSERT_OK(store_->CreateBucket(BucketInfo{.name = name, .owner = "o", .created_ms = i}));
    ASSERT_OK(store_->PutObject(Object(name, "k", static_cast<uint64_t>(i)), {}, nullptr));
    MultipartUpload upload;
    upload.bucket = name;
    upload.key = "m";
    upload.upload_id = "0123456789abcdef0123456789abcd" + std::to_string(10 + i);
    ASSERT_OK(store_->CreateUpload(upload));
    ASSERT_OK(store_->PutPart(name, "m", upload.upload_id,
                              PartRecord{.part_number = 1, .etag = "p", .size = 3, .last_modified_ms = 1}, nullptr));

    const uint32_t shard = BucketShard(name, kShards);
    used.insert(shard);
    for (uint32_t s = 0; s < kShards; ++s) {
      const std::set<std::string> keys = KeysOf(s);
      const bool here = s == shard;
      EXPECT_EQ(keys.count(format::BucketKey(name)), here ? 1u : 0u) << name << " shard " << s;
      EXPECT_EQ(keys.count(format::ObjectKey(name, "k")), here ? 1u : 0u) << name << " shard " << s;
      EXPECT_EQ(keys.count(format::UploadKey(name, "m", upload.upload_id)), here ? 1u : 0u) << name;
      EXPECT_EQ(keys.count(format::PartKey(upload.upload_id, 1)), here ? 1u : 0u) << name;
    }
    // The shard alone answers for the bucket.
    EXPECT_OK(direct_[shard]->GetObject(name, "k"));
  }
  EXPECT_EQ(used.size(), kShards) << "24 names should reach every one of 4 shards";
}

TEST_F(ShardedMetaStoreTest, UsersAndKeysLiveInShardZero) {
  ASSERT_OK(store_->CreateUser(UserRecord{.name = "alice"}));
  AccessKeyRecord key;
  key.access_key = "AKIAEXAMPLE";
  key.user = "alice";
  key.sealed_secret = "s";
  ASSERT_OK(store_->CreateAccessKey(key));
  EXPECT_EQ(KeysOf(0).count(format::UserKey("alice")), 1u);
  EXPECT_EQ(KeysOf(0).count(format::AccessKeyKey("AKIAEXAMPLE")), 1u);
  for (uint32_t s = 1; s < kShards; ++s) EXPECT_TRUE(KeysOf(s).empty()) << s;
  ASSERT_OK(store_->ListUsers());
  EXPECT_EQ(store_->ListUsers()->size(), 1u);
  EXPECT_EQ(store_->ListAccessKeys()->size(), 1u);
}

TEST_F(ShardedMetaStoreTest, WholeStoreReadsGatherEveryShard) {
  std::vector<std::string> names;
  for (int i = 23; i >= 0; --i) names.push_back("b" + std::to_string(i));
  for (size_t i = 0; i < names.size(); ++i) {
    ASSERT_OK(store_->CreateBucket(BucketInfo{.name = names[i], .owner = "o", .created_ms = 1}));
    ASSERT_OK(store_->PutObject(Object(names[i], "k", 100 + i), {}, nullptr));
  }
  auto listed = store_->ListBuckets();
  ASSERT_OK(listed);
  std::vector<std::string> got;
  for (const auto& b : *listed) got.push_back(b.name);
  std::vector<std::string> want = names;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want) << "every shard's buckets, in name order";

  auto stats = store_->Stats();
  ASSERT_OK(stats);
  EXPECT_EQ(stats->at("buckets"), names.size());
  EXPECT_EQ(stats->at("objects"), names.size());
  EXPECT_EQ(stats->at("object_bytes"), 3 * names.size());

  std::set<uint64_t> chunks;
  ASSERT_OK(store_->ForEachChunkRef([&](const ChunkRef& ref) {
    chunks.insert(ref.id.lo);
    return Status::OK();
  }));
  EXPECT_EQ(chunks.size(), names.size());
  EXPECT_EQ(*chunks.begin(), 100u);
  EXPECT_EQ(*chunks.rbegin(), 100u + names.size() - 1);

  // The walk stops at the first error.
  int visited = 0;
  Status stop = store_->ForEachChunkRef([&](const ChunkRef&) {
    ++visited;
    return Status::Busy("enough");
  });
  EXPECT_TRUE(stop.IsBusy());
  EXPECT_EQ(visited, 1);
}

// A bucket name is unique across shards because it has one shard: the same name twice is refused
// there, and deleting a non-empty bucket is refused by the shard that holds its objects.
TEST_F(ShardedMetaStoreTest, UniquenessAndEmptinessAreTheShardsOwn) {
  ASSERT_OK(store_->CreateBucket(BucketInfo{.name = "x", .owner = "o", .created_ms = 1}));
  EXPECT_TRUE(store_->CreateBucket(BucketInfo{.name = "x", .owner = "p", .created_ms = 2}).IsAlreadyExists());
  ASSERT_OK(store_->PutObject(Object("x", "k", 1), {}, nullptr));
  EXPECT_TRUE(store_->DeleteBucket("x", nullptr).IsBucketNotEmpty());
  ASSERT_OK(store_->DeleteObject("x", "k"));
  ASSERT_OK(store_->DeleteBucket("x", nullptr));
  EXPECT_TRUE(store_->GetBucket("x").status().IsNoSuchBucket());
}

// The bucket cache: GetBucket answers from a copy for the TTL; this store's own changes are seen
// at once, another store's within the TTL, and a missing bucket is never cached.
TEST(ShardedBucketCacheTest, OwnChangesAtOnceOthersWithinTheTtlMissesNever) {
  test::MemoryTransport transport;
  std::vector<std::unique_ptr<MetaStore>> shards;
  shards.push_back(std::make_unique<CommandMetaStore>(&transport));
  ShardedMetaStore cached(std::move(shards), std::chrono::milliseconds(300));
  CommandMetaStore other(&transport);  // another node, over the same state

  // A miss is not cached: a bucket made elsewhere is found at once.
  EXPECT_TRUE(cached.GetBucket("b").status().IsNoSuchBucket());
  ASSERT_OK(other.CreateBucket(BucketInfo{.name = "b", .owner = "o", .created_ms = 1}));
  ASSERT_OK(cached.GetBucket("b"));

  // Another node's change is seen once the copy expires, not before.
  ASSERT_OK(other.UpdateBucket("b", [](BucketInfo* b) {
    b->policy = "p1";
    return Status::OK();
  }));
  EXPECT_EQ(cached.GetBucket("b")->policy, "") << "answered from the copy";
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  EXPECT_EQ(cached.GetBucket("b")->policy, "p1");

  // Its own changes are seen at once.
  ASSERT_OK(cached.UpdateBucket("b", [](BucketInfo* b) {
    b->policy = "p2";
    return Status::OK();
  }));
  EXPECT_EQ(cached.GetBucket("b")->policy, "p2");
  ASSERT_OK(cached.DeleteBucket("b", nullptr));
  EXPECT_TRUE(cached.GetBucket("b").status().IsNoSuchBucket());
  ASSERT_OK(cached.CreateBucket(BucketInfo{.name = "b", .owner = "o2", .created_ms = 2}));
  EXPECT_EQ(cached.GetBucket("b")->owner, "o2");

  // A bucket deleted elsewhere: writes are refused where they commit, whatever the copy says.
  ASSERT_OK(other.DeleteBucket("b", nullptr));
  ASSERT_OK(cached.GetBucket("b"));  // still the copy
  ObjectRecord r;
  r.bucket = "b";
  r.key = "k";
  EXPECT_TRUE(cached.PutObject(r, {}, nullptr).IsNoSuchBucket());
}

}  // namespace
}  // namespace cairn::meta
