// Tests of FaultEnv: injected errors (n-th call, probability from a seed), simulated power cuts
// (DropUnsyncedData) and bit flips on read. FaultEnv wraps the psync Env here.
#include "io/fault_env.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <vector>

#include "test_util.h"

namespace cairn::io {
namespace {

class FaultEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto base = Env::Create(Backend::kPsync);
    ASSERT_OK(base);
    base_ = std::move(base).value();
    env_ = std::make_unique<FaultEnv>(base_.get(), /*seed=*/42);
  }

  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  std::unique_ptr<File> Create(Env* env, const std::string& name) {
    auto f = env->OpenFile(Path(name), {.create = true});
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? std::move(f).value() : nullptr;
  }
  std::unique_ptr<File> Create(const std::string& name) { return Create(env_.get(), name); }

  static Status Append(File* f, const std::string& s) {
    const iovec iov{const_cast<char*>(s.data()), s.size()};
    auto size = f->Size();
    if (!size.ok()) return size.status();
    return f->WriteAt(*size, {&iov, 1});
  }

  uint64_t SizeOnDisk(const std::string& name) {
    auto f = base_->OpenFile(Path(name), {});
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? *(*f)->Size() : 0;
  }
  bool Exists(const std::string& name) { return *base_->FileExists(Path(name)); }

  test::TempDir dir_;
  std::unique_ptr<Env> base_;
  std::unique_ptr<FaultEnv> env_;
};

TEST_F(FaultEnvTest, NthWriteFailsWithEio) {
  auto f = Create("seg");
  env_->AddRule({.op = FaultOp::kWrite, .error = EIO, .nth = 2});
  EXPECT_OK(Append(f.get(), "one"));
  const Status s = Append(f.get(), "two");
  EXPECT_TRUE(s.IsIOError()) << s;
  EXPECT_OK(Append(f.get(), "three"));  // not sticky: only the second call fails
  EXPECT_EQ(env_->InjectedCount(), 1u);
  EXPECT_EQ(*f->Size(), 8u);  // the failed write never reached the file
}

TEST_F(FaultEnvTest, StickyRuleKeepsFailingAndMatchesPath) {
  auto seg = Create("seg-1");
  auto other = Create("index");
  env_->AddRule({.op = FaultOp::kWrite, .path_contains = "seg-", .error = EIO, .nth = 1, .sticky = true});
  EXPECT_FALSE(Append(seg.get(), "a").ok());
  EXPECT_FALSE(Append(seg.get(), "b").ok());
  EXPECT_OK(Append(other.get(), "c"));
  env_->ClearRules();
  EXPECT_OK(Append(seg.get(), "d"));
}

TEST_F(FaultEnvTest, EnospcOnWriteIsNoSpace) {
  auto f = Create("seg");
  env_->AddRule({.op = FaultOp::kWrite, .error = ENOSPC, .nth = 1});
  const Status s = Append(f.get(), "x");
  EXPECT_TRUE(s.IsNoSpace()) << s;
}

TEST_F(FaultEnvTest, SyncFaultsHitSyncAndWriteAtAndSync) {
  auto f = Create("seg");
  env_->AddRule({.op = FaultOp::kSync, .error = EIO, .nth = 1, .sticky = true});
  EXPECT_TRUE(f->Sync().IsIOError());
  const std::string data = "payload";
  const iovec iov{const_cast<char*>(data.data()), data.size()};
  EXPECT_TRUE(f->WriteAtAndSync(0, {&iov, 1}).IsIOError());
  // The write went through, the sync did not: a power cut loses it.
  EXPECT_EQ(*f->Size(), data.size());
  ASSERT_OK(env_->SyncDir(dir_.path()));
  ASSERT_OK(env_->DropUnsyncedData());
  EXPECT_EQ(SizeOnDisk("seg"), 0u);
}

TEST_F(FaultEnvTest, ProbabilityIsReproducibleFromSeed) {
  auto pattern = [this](uint64_t seed) {
    FaultEnv env(base_.get(), seed);
    auto f = Create(&env, "p" + std::to_string(seed));
    env.AddRule({.op = FaultOp::kWrite, .error = EIO, .probability = 0.3});
    std::string fired;
    for (int i = 0; i < 200; ++i) fired += Append(f.get(), "x").ok() ? '.' : 'X';
    return fired;
  };
  const std::string a = pattern(7);
  EXPECT_EQ(a, pattern(7));
  EXPECT_NE(a, pattern(8));
  const auto failures = std::count(a.begin(), a.end(), 'X');
  EXPECT_GT(failures, 30);
  EXPECT_LT(failures, 90);
}

TEST_F(FaultEnvTest, OpenRenameDeleteFaults) {
  env_->AddRule({.op = FaultOp::kOpen, .path_contains = "bad", .error = EIO, .nth = 1});
  EXPECT_TRUE(env_->OpenFile(Path("bad"), {.create = true}).status().IsIOError());
  auto f = Create("good");
  env_->AddRule({.op = FaultOp::kRename, .error = EIO, .nth = 1});
  EXPECT_TRUE(env_->RenameFile(Path("good"), Path("better")).IsIOError());
  EXPECT_TRUE(Exists("good"));
  env_->AddRule({.op = FaultOp::kDelete, .error = EIO, .nth = 1});
  EXPECT_TRUE(env_->DeleteFile(Path("good")).IsIOError());
  EXPECT_TRUE(Exists("good"));
}

TEST_F(FaultEnvTest, DropUnsyncedDataCutsTheUnsyncedTail) {
  auto f = Create("seg");
  ASSERT_OK(env_->SyncDir(dir_.path()));
  ASSERT_OK(Append(f.get(), std::string(100, 'a')));
  ASSERT_OK(f->Sync());
  ASSERT_OK(Append(f.get(), std::string(50, 'b')));
  const std::string more(20, 'c');
  const iovec iov{const_cast<char*>(more.data()), more.size()};
  ASSERT_OK(f->WriteAtAndSync(150, {&iov, 1}));
  ASSERT_OK(Append(f.get(), std::string(7, 'd')));
  f.reset();
  ASSERT_OK(env_->DropUnsyncedData());
  EXPECT_EQ(SizeOnDisk("seg"), 170u);
}

TEST_F(FaultEnvTest, DropUnsyncedDataRemovesFilesWhoseDirWasNeverSynced) {
  ASSERT_OK(env_->CreateDirs(Path("a")));
  ASSERT_OK(env_->CreateDirs(Path("b")));
  auto lost = Create("a/seg");
  auto kept = Create("b/seg");
  for (File* f : {lost.get(), kept.get()}) {
    ASSERT_OK(Append(f, "durable data"));
    ASSERT_OK(f->Sync());
  }
  ASSERT_OK(env_->SyncDir(Path("b") + "/"));
  ASSERT_OK(env_->DropUnsyncedData());
  EXPECT_FALSE(Exists("a/seg"));  // data synced, name never: gone, as after a real power cut
  EXPECT_TRUE(Exists("b/seg"));
  EXPECT_EQ(SizeOnDisk("b/seg"), 12u);
}

TEST_F(FaultEnvTest, RenamedFileNeedsSyncDir) {
  auto f = Create("tmp");
  ASSERT_OK(Append(f.get(), "checkpoint"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(env_->SyncDir(dir_.path()));
  ASSERT_OK(env_->RenameFile(Path("tmp"), Path("CURRENT")));
  ASSERT_OK(env_->DropUnsyncedData());
  EXPECT_FALSE(Exists("CURRENT"));

  f = Create("tmp2");
  ASSERT_OK(Append(f.get(), "checkpoint"));
  ASSERT_OK(f->Sync());
  ASSERT_OK(env_->RenameFile(Path("tmp2"), Path("CURRENT")));
  ASSERT_OK(env_->SyncDir(dir_.path()));
  ASSERT_OK(env_->DropUnsyncedData());
  EXPECT_TRUE(Exists("CURRENT"));
  EXPECT_EQ(SizeOnDisk("CURRENT"), 10u);
}

TEST_F(FaultEnvTest, PreExistingFileKeepsItsSizeUntilWritten) {
  {
    auto plain = Create(base_.get(), "old");
    ASSERT_OK(Append(plain.get(), "written before the fault env saw it"));
  }
  auto f = env_->OpenFile(Path("old"), {});
  ASSERT_OK(f);
  ASSERT_OK(Append(f->get(), " and an unsynced tail"));
  ASSERT_OK(env_->DropUnsyncedData());
  EXPECT_EQ(SizeOnDisk("old"), 35u);
}

TEST_F(FaultEnvTest, BitFlipChangesExactlyOneBitPerRead) {
  auto f = Create("chunk-1");
  std::string data(4096, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  ASSERT_OK(Append(f.get(), data));
  env_->SetReadBitFlips("chunk-", 1.0);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::byte> buf(data.size());
    auto n = f->ReadAt(0, buf);
    ASSERT_OK(n);
    ASSERT_EQ(*n, data.size());
    int flipped = 0;
    for (size_t i = 0; i < data.size(); ++i) {
      flipped += std::popcount(static_cast<unsigned>(static_cast<uint8_t>(buf[i]) ^ static_cast<uint8_t>(data[i])));
    }
    EXPECT_EQ(flipped, 1) << "round " << round;
  }
  EXPECT_EQ(env_->InjectedCount(), 20u);
  env_->SetReadBitFlips("chunk-", 0.0);
  std::vector<std::byte> buf(data.size());
  ASSERT_OK(f->ReadAt(0, buf));
  EXPECT_EQ(std::memcmp(buf.data(), data.data(), data.size()), 0);
}

TEST_F(FaultEnvTest, BitFlipsOnlyForMatchingPaths) {
  auto f = Create("index");
  ASSERT_OK(Append(f.get(), "abcdef"));
  env_->SetReadBitFlips("chunk-", 1.0);
  std::vector<std::byte> buf(6);
  ASSERT_OK(f->ReadAt(0, buf));
  EXPECT_EQ(std::memcmp(buf.data(), "abcdef", 6), 0);
}

}  // namespace
}  // namespace cairn::io
