// The object layer over a real engine and metadata store, and over a fake chunk store that can
// fail and hold completions back.
#include "object/object_store.h"

#include <condition_variable>
#include <future>
#include <map>
#include <random>

#include "common/crc32c.h"
#include "engine/engine.h"
#include "io/file.h"
#include "meta/rocksdb_meta_store.h"
#include "test_util.h"

namespace cairn::object {
namespace {

std::vector<std::byte> Body(uint64_t seed, size_t n) {
  std::vector<std::byte> v(n);
  std::mt19937_64 g(seed);
  for (auto& b : v) b = static_cast<std::byte>(g());
  return v;
}

meta::ObjectRecord Record(const std::string& key) {
  meta::ObjectRecord r;
  r.bucket = "b";
  r.key = key;
  r.etag = "0123456789abcdef0123456789abcdef";
  r.content_type = "application/octet-stream";
  return r;
}

// A chunk store in memory whose appends complete only when the test says so, or fail.
class FakeChunkStore final : public ChunkStore {
 public:
  void AppendAsync(const engine::ChunkId& id, std::span<const std::byte> data, uint32_t,
                   std::function<void(const Status&)> done) override {
    std::unique_lock<std::mutex> l(mu_);
    pending_.push_back({id, std::vector<std::byte>(data.begin(), data.end()), std::move(done)});
    cv_.notify_all();
  }
  Status Read(const engine::ChunkId& id, uint64_t offset, std::span<std::byte> out) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = stored_.find(id);
    if (it == stored_.end()) return Status::NotFound("chunk");
    std::copy_n(it->second.begin() + static_cast<ptrdiff_t>(offset), out.size(), out.begin());
    return Status::OK();
  }
  Result<engine::SendableRange> ReadForSend(const engine::ChunkId& id, uint64_t offset, uint64_t length) override {
    engine::SendableRange r;
    r.length = length;
    r.bytes.resize(length);
    CAIRN_RETURN_IF_ERROR(Read(id, offset, r.bytes));
    return r;
  }
  Status Delete(const engine::ChunkId& id) override {
    std::lock_guard<std::mutex> l(mu_);
    return stored_.erase(id) == 1 ? Status::OK() : Status::NotFound("chunk");
  }
  void ForEachChunk(const std::function<void(const engine::ChunkId&)>& fn) override {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [id, bytes] : stored_) fn(id);
  }
  size_t Pending() {
    std::lock_guard<std::mutex> l(mu_);
    return pending_.size();
  }
  size_t Stored() {
    std::lock_guard<std::mutex> l(mu_);
    return stored_.size();
  }
  // Completes the oldest pending append with `s` (storing it when OK).
  void CompleteOne(Status s = Status::OK()) {
    Waiting p;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return !pending_.empty(); });
      p = std::move(pending_.front());
      pending_.erase(pending_.begin());
      if (s.ok()) stored_[p.id] = std::move(p.bytes);
    }
    p.done(s);
  }

 private:
  struct Waiting {
    engine::ChunkId id;
    std::vector<std::byte> bytes;
    std::function<void(const Status&)> done;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Waiting> pending_;
  std::map<engine::ChunkId, std::vector<std::byte>> stored_;
};

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = io::Env::Create();
    ASSERT_OK(env);
    env_ = std::move(*env);
    engine::EngineOptions eo;
    eo.config.segment_size = 8 << 20;
    eo.config.background_compaction = false;
    auto e = engine::Engine::Open(env_.get(), dir_.path() + "/engine", eo);
    ASSERT_OK(e);
    engine_ = std::move(*e);
    auto m = meta::RocksDbMetaStore::Open(dir_.path() + "/meta");
    ASSERT_OK(m);
    meta_ = std::move(*m);
    meta::BucketInfo b;
    b.name = "b";
    b.owner = "root";
    ASSERT_OK(meta_->CreateBucket(b));
    chunks_ = std::make_unique<EngineChunkStore>(engine_.get());
    store_ = std::make_unique<ObjectStore>(chunks_.get(), meta_.get(), &pool_, ObjectStoreOptions{64 << 10, 4});
  }

  // Writes `body` in pieces of `piece` bytes, waiting whenever the writer's window is full.
  Result<meta::ObjectRecord> Put(ObjectStore& store, const std::string& key, std::span<const std::byte> body,
                                 size_t piece = 10000, meta::WritePrecondition pre = {}) {
    auto w = store.NewWriter();
    size_t pos = 0;
    while (pos < body.size()) {
      const size_t n = w->Write(body.subspan(pos, std::min(piece, body.size() - pos)));
      pos += n;
      if (n == 0) {
        std::promise<void> p;
        w->OnWritable([&] { p.set_value(); });
        p.get_future().wait();
      }
    }
    std::promise<Result<meta::ObjectRecord>> done;
    w->Finish(Record(key), pre, [&](Result<meta::ObjectRecord> r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }

  void ExpectObject(const std::string& key, const std::vector<std::byte>& body) {
    auto rec = meta_->GetObject("b", key);
    ASSERT_OK(rec);
    EXPECT_EQ(rec->size, body.size());
    std::vector<std::byte> got(body.size());
    ASSERT_OK(store_->ReadRange(*rec, 0, got));
    EXPECT_EQ(got, body);
  }

  test::TempDir dir_;
  std::unique_ptr<io::Env> env_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<meta::MetaStore> meta_;
  std::unique_ptr<EngineChunkStore> chunks_;
  ThreadPool pool_{2};
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(ObjectStoreTest, PutsAndReadsBackObjectsOfEveryShape) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{65535}, size_t{65536}, size_t{65537}, size_t{1000000}}) {
    const std::string key = "k" + std::to_string(size);
    auto body = Body(size, size);
    auto r = Put(*store_, key, body);
    ASSERT_OK(r);
    EXPECT_EQ(r->chunks.size(), (size + 65535) / 65536);
    ExpectObject(key, body);
  }
}

TEST_F(ObjectStoreTest, RangesAcrossChunkBoundaries) {
  auto body = Body(1, 300000);
  auto r = Put(*store_, "k", body);
  ASSERT_OK(r);
  for (auto [off, len] : std::vector<std::pair<size_t, size_t>>{{0, 1}, {65535, 2}, {60000, 140000}, {299999, 1}, {5, 0}}) {
    std::vector<std::byte> got(len);
    ASSERT_OK(store_->ReadRange(*r, off, got));
    EXPECT_TRUE(std::equal(got.begin(), got.end(), body.begin() + static_cast<ptrdiff_t>(off))) << off;
  }
  std::vector<std::byte> past(2);
  EXPECT_TRUE(store_->ReadRange(*r, 299999, past).IsInvalidArgument());
}

TEST_F(ObjectStoreTest, OverwriteAndDeleteGiveTheSpaceBack) {
  ASSERT_OK(Put(*store_, "k", Body(1, 200000)));
  const uint64_t after_first = engine_->Stats().chunks;
  EXPECT_EQ(after_first, 4u);
  auto second = Body(2, 70000);
  ASSERT_OK(Put(*store_, "k", second));
  EXPECT_EQ(engine_->Stats().chunks, 2u);  // the first version's chunks are gone
  ExpectObject("k", second);
  ASSERT_OK(store_->Delete("b", "k"));
  EXPECT_EQ(engine_->Stats().chunks, 0u);
  EXPECT_TRUE(meta_->GetObject("b", "k").status().IsNotFound());
}

TEST_F(ObjectStoreTest, FailedPreconditionCommitsNothingAndReclaims) {
  ASSERT_OK(Put(*store_, "k", Body(1, 1000)));
  meta::WritePrecondition pre;
  pre.must_not_exist = true;
  auto r = Put(*store_, "k", Body(2, 100000), 10000, pre);
  EXPECT_TRUE(r.status().IsPreconditionFailed()) << r.status().ToString();
  EXPECT_EQ(engine_->Stats().chunks, 1u);
  ExpectObject("k", Body(1, 1000));
}

TEST_F(ObjectStoreTest, OrphansFromUncommittedWritesAreCollected) {
  ASSERT_OK(Put(*store_, "kept", Body(1, 100000)));
  // What a crash between storing a chunk and committing its record leaves behind: a chunk that
  // no record references.
  auto stray = Body(3, 5000);
  ASSERT_OK(engine_->Append(engine::ChunkId{7, 7}, stray, crc32c::Value(stray)));
  auto n = store_->CollectOrphans();
  ASSERT_OK(n);
  EXPECT_GE(*n, 1u);
  EXPECT_TRUE(engine_->Stat(engine::ChunkId{7, 7}).status().IsNotFound());
  ExpectObject("kept", Body(1, 100000));
}

// The writer alone, over a chunk store whose completions the test controls.
class ObjectWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = meta::RocksDbMetaStore::Open(dir_.path());
    ASSERT_OK(m);
    meta_ = std::move(*m);
    meta::BucketInfo b;
    b.name = "b";
    ASSERT_OK(meta_->CreateBucket(b));
  }

  FakeChunkStore chunks_;
  test::TempDir dir_;
  std::unique_ptr<meta::MetaStore> meta_;
  ThreadPool pool_{1};
};

TEST_F(ObjectWriterTest, WindowBoundsChunksInFlight) {
  ObjectStore store(&chunks_, meta_.get(), &pool_, ObjectStoreOptions{1000, 2});
  auto w = store.NewWriter();
  auto body = Body(1, 10000);
  // Two chunks go out, a third fills the buffer, then nothing more is taken.
  EXPECT_EQ(w->Write(body), 3000u);
  EXPECT_EQ(chunks_.Pending(), 2u);
  EXPECT_EQ(w->Write(std::span(body).subspan(3000)), 0u);
  std::promise<void> writable;
  w->OnWritable([&] { writable.set_value(); });
  chunks_.CompleteOne();
  writable.get_future().wait();
  EXPECT_EQ(w->Write(std::span(body).subspan(3000)), 1000u);
  std::promise<Result<meta::ObjectRecord>> done;
  w->Finish(Record("k"), {}, [&](Result<meta::ObjectRecord> r) { done.set_value(std::move(r)); });
  while (chunks_.Pending() > 0) chunks_.CompleteOne();
  auto r = done.get_future().get();
  ASSERT_OK(r);
  EXPECT_EQ(r->size, 4000u);
  EXPECT_EQ(r->chunks.size(), 4u);
}

TEST_F(ObjectWriterTest, AChunkFailureFailsTheWriteAndRemovesWhatWasStored) {
  ObjectStore store(&chunks_, meta_.get(), &pool_, ObjectStoreOptions{1000, 4});
  auto w = store.NewWriter();
  auto body = Body(1, 2500);
  EXPECT_EQ(w->Write(body), 2500u);
  std::promise<Result<meta::ObjectRecord>> done;
  w->Finish(Record("k"), {}, [&](Result<meta::ObjectRecord> r) { done.set_value(std::move(r)); });
  chunks_.CompleteOne();
  chunks_.CompleteOne(Status::IOError("disk"));
  chunks_.CompleteOne();
  auto r = done.get_future().get();
  EXPECT_TRUE(r.status().IsIOError());
  EXPECT_EQ(chunks_.Stored(), 0u);
  EXPECT_TRUE(meta_->GetObject("b", "k").status().IsNotFound());
}

TEST_F(ObjectWriterTest, AbandonedWriterRemovesItsChunks) {
  ObjectStore store(&chunks_, meta_.get(), &pool_, ObjectStoreOptions{1000, 4});
  {
    auto w = store.NewWriter();
    auto body = Body(1, 3000);
    EXPECT_EQ(w->Write(body), 3000u);
  }  // destroyed without Finish
  while (chunks_.Pending() > 0) chunks_.CompleteOne();
  // The clean-up runs on the pool once every chunk is back.
  for (int i = 0; i < 1000 && chunks_.Stored() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(chunks_.Stored(), 0u);
}

TEST_F(ObjectWriterTest, FinishSyncCommitsOnTheCallersThreadOnceChunksAreDurable) {
  ObjectStore store(&chunks_, meta_.get(), &pool_, ObjectStoreOptions{1000, 4});
  auto w = store.NewWriter(2500);
  auto body = Body(7, 2500);
  EXPECT_EQ(w->Write(body), 2500u);
  std::thread completer([&] {
    for (int i = 0; i < 3; ++i) chunks_.CompleteOne();
  });
  auto r = w->FinishSync(Record("k"), {});
  completer.join();
  ASSERT_OK(r);
  EXPECT_EQ(r->size, 2500u);
  EXPECT_EQ(r->chunks.size(), 3u);
  auto stored = meta_->GetObject("b", "k");
  ASSERT_OK(stored);
  EXPECT_EQ(*stored, *r);
}

TEST_F(ObjectWriterTest, FinishPartSyncFailureRemovesTheChunks) {
  ObjectStore store(&chunks_, meta_.get(), &pool_, ObjectStoreOptions{1000, 4});
  auto w = store.NewWriter();
  auto body = Body(3, 1500);
  EXPECT_EQ(w->Write(body), 1500u);
  std::thread completer([&] {
    chunks_.CompleteOne();
    chunks_.CompleteOne();
  });
  meta::PartRecord part;
  part.part_number = 1;
  part.etag = "0123456789abcdef0123456789abcdef";
  // No such upload: the commit fails after the chunks are stored, and they are deleted again.
  auto r = w->FinishPartSync("b", "k", "no-such-upload", part);
  completer.join();
  EXPECT_TRUE(r.status().IsNoSuchUpload()) << r.status().ToString();
  EXPECT_EQ(chunks_.Stored(), 0u);
}

}  // namespace
}  // namespace cairn::object
