// ChainChunkStore's reads (cluster/chain_data.h): a chunk of a chain this node serves is read from
// its own engine; one the engine lacks or that the node does not serve is read through the chain.
// One ChainHost on loopback (a chain of one member, its blobs in memory) stands for the chain;
// a real engine in a temporary directory stands for this node's own copy.
#include "cluster/chain_data.h"
#include "cluster/orphans.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "common/crc32c.h"
#include "common/executor.h"
#include "io/file.h"
#include "meta/command_meta_store.h"
#include "meta/memory_kv.h"
#include "replication/chain_host.h"
#include "test_util.h"

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;
using replication::ChainId;

constexpr const char* kSecret = "chain-data-test-secret-0123456789";
constexpr uint32_t kChains = 1;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::span(reinterpret_cast<const std::byte*>(s.data()), s.size());
}

class ChainChunkStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    replication::ChainHostOptions ho;
    ho.node = 1;
    ho.name = "n1";
    ho.secret = kSecret;
    ho.data_dir = dir_.path() + "/replicas";
    ho.blobs = &chain_blobs_;
    auto host = replication::ChainHost::Start(ho);
    ASSERT_OK(host);
    host_ = std::move(*host);
    peer_ = replication::PeerAddress{"n1", host_->address()};
    host_->SetPeers({{1, peer_}});
    host_->AddChain(0, 1, replication::ChainHost::StartMode::kFounding);
    view_ = replication::ChainView{0, 1, {{{1, 1}, true}}};
    host_->SetView(view_);

    replication::ChainClientOptions co;
    co.name = "s3";
    co.secret = kSecret;
    co.view = [this](ChainId) { return std::optional(view_); };
    co.address = [this](replication::NodeId) { return std::optional(peer_); };
    client_ = std::make_unique<replication::ChainClient>(co);

    auto env = io::Env::Create();
    ASSERT_OK(env);
    env_ = std::move(*env);
    engine::EngineOptions eo;
    eo.config.background_compaction = false;
    auto engine = engine::Engine::Open(env_.get(), dir_.path() + "/engine", eo);
    ASSERT_OK(engine);
    engine_ = std::move(*engine);
  }

  std::unique_ptr<ChainChunkStore> Store(bool serves) {
    LocalBlobs local{engine_.get(), [this, serves](ChainId) {
                       ++asked_;
                       return serves;
                     }};
    return std::make_unique<ChainChunkStore>(client_.get(), kChains, &io_, std::move(local));
  }

  // Writes the chunk through the chain (not into the local engine).
  void WriteThroughChain(ChainChunkStore& store, const engine::ChunkId& id, const std::string& bytes) {
    std::promise<Status> done;
    store.AppendAsync(id, Bytes(bytes), crc32c::Value(bytes.data(), bytes.size()),
                      [&](const Status& s) { done.set_value(s); });
    ASSERT_OK(done.get_future().get());
  }

  std::string ReadVia(ChainChunkStore& store, const engine::ChunkId& id, size_t size) {
    std::string out(size, '\0');
    Status s = store.Read(id, 0, std::span(reinterpret_cast<std::byte*>(out.data()), out.size()));
    return s.ok() ? out : "<" + s.ToString() + ">";
  }

  test::TempDir dir_;
  replication::MemoryBlobStore chain_blobs_;
  std::unique_ptr<replication::ChainHost> host_;
  replication::PeerAddress peer_;
  replication::ChainView view_;
  std::unique_ptr<replication::ChainClient> client_;
  std::unique_ptr<io::Env> env_;
  std::unique_ptr<engine::Engine> engine_;
  ThreadPool io_{2};
  std::atomic<int> asked_{0};
};

TEST_F(ChainChunkStoreTest, AServedChainIsReadLocallyAndAMissingLocalCopyThroughTheChain) {
  auto store = Store(/*serves=*/true);
  const engine::ChunkId id{.hi = 1, .lo = 1};
  const std::string chain_bytes(3000, 'c');
  WriteThroughChain(*store, id, chain_bytes);
  // Not in the local engine: the chain answers.
  EXPECT_EQ(ReadVia(*store, id, chain_bytes.size()), chain_bytes);
  EXPECT_GT(asked_.load(), 0);

  // In the local engine (as on a serving member): read there, the chain is not asked. (The local
  // copy differs here only to tell the two paths apart; on a real node they are equal.)
  const std::string local_bytes(3000, 'l');
  ASSERT_OK(engine_->Append(id, Bytes(local_bytes), crc32c::Value(local_bytes.data(), local_bytes.size())));
  EXPECT_EQ(ReadVia(*store, id, local_bytes.size()), local_bytes);
  auto range = store->ReadForSend(id, 10, 100);
  ASSERT_OK(range);
  EXPECT_EQ(range->length, 100u);
}

TEST_F(ChainChunkStoreTest, AChainNotServedHereIsReadThroughTheChain) {
  auto store = Store(/*serves=*/false);
  const engine::ChunkId id{.hi = 1, .lo = 2};
  const std::string chain_bytes(500, 'c');
  WriteThroughChain(*store, id, chain_bytes);
  const std::string local_bytes(500, 'l');
  ASSERT_OK(engine_->Append(id, Bytes(local_bytes), crc32c::Value(local_bytes.data(), local_bytes.size())));
  EXPECT_EQ(ReadVia(*store, id, chain_bytes.size()), chain_bytes) << "not a member: its engine is not asked";
}

// The orphan collector drops the old blobs no record names, and only those: a named blob, and an
// unnamed one younger than the grace, stay.
TEST_F(ChainChunkStoreTest, OrphanCollectionDropsOldUnnamedBlobsOnly) {
  auto store = Store(/*serves=*/false);
  const engine::ChunkId named{.hi = 2, .lo = 1}, orphan{.hi = 2, .lo = 2};
  WriteThroughChain(*store, named, std::string(100, 'n'));
  WriteThroughChain(*store, orphan, std::string(100, 'o'));
  // The metadata names one of them.
  meta::test::MemoryTransport transport;
  meta::CommandMetaStore meta(&transport);
  ASSERT_OK(meta.CreateBucket(meta::BucketInfo{.name = "b", .owner = "o", .created_ms = 1}));
  meta::ObjectRecord record;
  record.bucket = "b";
  record.key = "k";
  record.size = 100;
  record.chunks = {meta::ChunkRef{.id = named, .offset = 0, .length = 100}};
  ASSERT_OK(meta.PutObject(record, {}, nullptr));

  auto listed = client_->Query(0, replication::BlobListQuery("", 10));
  ASSERT_OK(listed);
  auto blobs = replication::DecodeBlobList(*listed);
  ASSERT_OK(blobs);
  ASSERT_EQ(blobs->size(), 2u);
  const uint64_t written = (*blobs)[0].stamp_ms;
  EXPECT_GT(written, 0u) << "a blob's descriptor carries its update's stamp";

  OrphanCollectorOptions options;
  options.grace = std::chrono::hours(1);
  options.page = 1;  // every blob a page of its own
  OrphanCollector collector(client_.get(), kChains, &meta, options);
  // Within the grace: nothing goes, named or not.
  auto young = collector.RunOnce(written + 1000);
  ASSERT_OK(young);
  EXPECT_EQ(*young, (OrphanPass{2, 0, 0}));
  // Past it: the unnamed one goes, the named one stays.
  auto old = collector.RunOnce(written + 2 * 3600 * 1000);
  ASSERT_OK(old);
  EXPECT_EQ(*old, (OrphanPass{2, 2, 1}));
  EXPECT_EQ(ReadVia(*store, named, 100), std::string(100, 'n'));
  EXPECT_NE(ReadVia(*store, orphan, 100), std::string(100, 'o'));
  auto after = collector.RunOnce(written + 2 * 3600 * 1000);
  ASSERT_OK(after);
  EXPECT_EQ(*after, (OrphanPass{1, 1, 0}));
}

}  // namespace
}  // namespace cairn::cluster
