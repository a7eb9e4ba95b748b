// Tests of the real Env back ends, psync and io_uring, through the same cases: each test runs
// once per back end. io_uring cases are skipped only when the kernel refuses io_uring. Files
// live under DiskTestRoot() so that O_DIRECT and fdatasync behave as on a real disk.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "io/file.h"
#include "test_util.h"

namespace cairn::io {
namespace {

std::vector<std::byte> Pattern(size_t n, uint32_t seed) {
  std::vector<std::byte> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    v[i] = static_cast<std::byte>(x >> 24);
  }
  return v;
}

iovec Iov(const std::byte* p, size_t n) { return iovec{const_cast<std::byte*>(p), n}; }

class EnvTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    auto env = Env::Create(GetParam());
    if (!env.ok()) GTEST_SKIP() << BackendName(GetParam()) << " unavailable: " << env.status();
    env_ = std::move(env).value();
    ASSERT_EQ(env_->backend(), GetParam());
  }

  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  std::unique_ptr<File> Open(const std::string& name, OpenOptions options = {.create = true}) {
    auto f = env_->OpenFile(Path(name), options);
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? std::move(f).value() : nullptr;
  }

  Status Write(File* f, uint64_t offset, const std::vector<std::byte>& data) {
    const iovec iov = Iov(data.data(), data.size());
    return f->WriteAt(offset, {&iov, 1});
  }

  std::vector<std::byte> Read(File* f, uint64_t offset, size_t n) {
    std::vector<std::byte> buf(n);
    auto r = f->ReadAt(offset, buf);
    EXPECT_TRUE(r.ok()) << r.status();
    buf.resize(r.ok() ? *r : 0);
    return buf;
  }

  test::TempDir dir_;
  std::unique_ptr<Env> env_;
};

TEST_P(EnvTest, WriteThenReadRoundTrips) {
  auto f = Open("a");
  const auto data = Pattern(10000, 1);
  ASSERT_OK(Write(f.get(), 0, data));
  EXPECT_EQ(Read(f.get(), 0, data.size()), data);
  EXPECT_EQ(*f->Size(), data.size());
}

TEST_P(EnvTest, IovecWriteIsContiguous) {
  auto f = Open("a");
  const auto a = Pattern(7, 1), b = Pattern(4096, 2), c = Pattern(1, 3);
  const iovec iov[] = {Iov(a.data(), a.size()), Iov(nullptr, 0), Iov(b.data(), b.size()), Iov(c.data(), c.size())};
  ASSERT_OK(f->WriteAt(100, iov));
  std::vector<std::byte> want = a;
  want.insert(want.end(), b.begin(), b.end());
  want.insert(want.end(), c.begin(), c.end());
  EXPECT_EQ(Read(f.get(), 100, want.size()), want);
}

TEST_P(EnvTest, ManyIovecsBeyondIovMax) {
  auto f = Open("a");
  const auto data = Pattern(3000 * 3, 4);
  std::vector<iovec> iov;
  for (size_t i = 0; i < 3000; ++i) iov.push_back(Iov(data.data() + i * 3, 3));
  ASSERT_OK(f->WriteAtAndSync(0, iov));
  EXPECT_EQ(Read(f.get(), 0, data.size()), data);
}

TEST_P(EnvTest, ReadIsShortOnlyAtEndOfFile) {
  auto f = Open("a");
  ASSERT_OK(Write(f.get(), 0, Pattern(100, 1)));
  EXPECT_EQ(Read(f.get(), 60, 100).size(), 40u);
  EXPECT_EQ(Read(f.get(), 100, 10).size(), 0u);
  EXPECT_EQ(Read(f.get(), 5000, 10).size(), 0u);
}

TEST_P(EnvTest, DirectWriteAndReadWithAlignedBuffer) {
  if (!env_->SupportsDirect(dir_.path())) GTEST_SKIP() << "no O_DIRECT in " << dir_.path();
  auto f = Open("d", {.create = true, .direct = true});
  ASSERT_NE(f, nullptr);
  const size_t align = f->DirectAlignment();
  ASSERT_GE(align, 512u);
  AlignedBuffer out(4 * align, align);
  ASSERT_EQ(reinterpret_cast<uintptr_t>(out.data()) % align, 0u);
  const auto data = Pattern(out.size(), 5);
  std::memcpy(out.data(), data.data(), data.size());
  const iovec iov = Iov(out.data(), out.size());
  ASSERT_OK(f->WriteAt(align, {&iov, 1}));
  AlignedBuffer in(out.size(), align);
  auto n = f->ReadAt(align, in.span());
  ASSERT_OK(n);
  ASSERT_EQ(*n, in.size());
  EXPECT_EQ(std::memcmp(in.data(), out.data(), in.size()), 0);
  // Reading past the end stops at end of file, even though the request is longer.
  AlignedBuffer big(8 * align, align);
  n = f->ReadAt(0, big.span());
  ASSERT_OK(n);
  EXPECT_EQ(*n, 5 * align);
}

TEST_P(EnvTest, WriteAtAndSyncBuffered) {
  auto f = Open("a");
  const auto data = Pattern((size_t{1} << 20) + 3, 6);
  const iovec iov = Iov(data.data(), data.size());
  ASSERT_OK(f->WriteAtAndSync(3, {&iov, 1}));
  EXPECT_EQ(*f->Size(), data.size() + 3);
  EXPECT_EQ(Read(f.get(), 3, data.size()), data);
}

TEST_P(EnvTest, WriteAtAndSyncDirect) {
  if (!env_->SupportsDirect(dir_.path())) GTEST_SKIP() << "no O_DIRECT in " << dir_.path();
  auto f = Open("d", {.create = true, .direct = true});
  ASSERT_NE(f, nullptr);
  const size_t align = f->DirectAlignment();
  AlignedBuffer buf(size_t{1} << 20, align);
  const auto data = Pattern(buf.size(), 7);
  std::memcpy(buf.data(), data.data(), data.size());
  // Two iovecs, to make the pieces straddle an iovec boundary.
  const iovec iov[] = {Iov(buf.data(), 3 * align), Iov(buf.data() + 3 * align, buf.size() - 3 * align)};
  ASSERT_OK(f->WriteAtAndSync(align, iov));
  AlignedBuffer in(buf.size(), align);
  auto n = f->ReadAt(align, in.span());
  ASSERT_OK(n);
  ASSERT_EQ(*n, in.size());
  EXPECT_EQ(std::memcmp(in.data(), buf.data(), in.size()), 0);
}

TEST_P(EnvTest, SyncAndEmptyWrites) {
  auto f = Open("a");
  ASSERT_OK(f->Sync());
  ASSERT_OK(f->WriteAt(0, {}));
  ASSERT_OK(f->WriteAtAndSync(0, {}));
  EXPECT_EQ(*f->Size(), 0u);
}

TEST_P(EnvTest, ConcurrentWritersToDistinctRanges) {
  auto f = Open("a");
  constexpr int kThreads = 8;
  constexpr size_t kRange = 300 * 1024 + 17;
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const auto data = Pattern(kRange, 100 + t);
      // Several calls per thread: plain writes and synced writes interleaved.
      const size_t half = kRange / 2;
      const iovec a = Iov(data.data(), half);
      const iovec b = Iov(data.data() + half, kRange - half);
      Status s = f->WriteAt(t * kRange, {&a, 1});
      if (s.ok()) s = f->WriteAtAndSync(t * kRange + half, {&b, 1});
      results[t] = s;
    });
  }
  for (auto& th : threads) th.join();
  for (const Status& s : results) ASSERT_OK(s);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(Read(f.get(), t * kRange, kRange), Pattern(kRange, 100 + t)) << t;
}

// RLIMIT_FSIZE makes the kernel cut a write short at the limit and refuse the rest with EFBIG:
// the partial write must be resumed, and the refusal returned rather than reported as success.
TEST_P(EnvTest, ShortWriteIsResumedAndItsErrorReturned) {
  auto f = Open("a");
  constexpr rlim_t kLimit = 100000;
  rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  if (old_limit.rlim_cur != RLIM_INFINITY && old_limit.rlim_cur < kLimit) GTEST_SKIP() << "RLIMIT_FSIZE too low";
  const auto old_handler = signal(SIGXFSZ, SIG_IGN);
  rlimit limit = old_limit;
  limit.rlim_cur = kLimit;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  const auto data = Pattern(size_t{1} << 20, 9);
  const iovec iov = Iov(data.data(), data.size());
  const Status s = f->WriteAtAndSync(0, {&iov, 1});
  setrlimit(RLIMIT_FSIZE, &old_limit);
  signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(s.IsIOError()) << s;
  EXPECT_EQ(*f->Size(), kLimit);
  EXPECT_EQ(Read(f.get(), 0, kLimit), std::vector<std::byte>(data.begin(), data.begin() + kLimit));
}

// Crash tests fork children that keep using the Env: the child must not share the parent's ring.
TEST_P(EnvTest, ForkedChildCanDoIo) {
  auto f = Open("a");
  const auto data = Pattern(200000, 10);
  ASSERT_OK(Write(f.get(), 0, data));  // the parent's thread now has its ring, if any
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const iovec iov = Iov(data.data(), data.size());
    std::vector<std::byte> buf(data.size());
    const bool ok = f->WriteAtAndSync(data.size(), {&iov, 1}).ok() && f->ReadAt(0, buf).ok() && buf == data;
    _exit(ok ? 0 : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
  EXPECT_EQ(Read(f.get(), data.size(), data.size()), data);
}

TEST_P(EnvTest, TruncateAndAllocate) {
  auto f = Open("a");
  ASSERT_OK(Write(f.get(), 0, Pattern(5000, 1)));
  ASSERT_OK(f->Truncate(1000));
  EXPECT_EQ(*f->Size(), 1000u);
  const Status s = f->Allocate(0, 1 << 20);
  if (!s.IsNotSupported()) {
    ASSERT_OK(s);
    EXPECT_EQ(*f->Size(), 1u << 20);
  }
}

TEST_P(EnvTest, DirectoryOperations) {
  ASSERT_OK(env_->CreateDirs(Path("sub/deeper")));
  ASSERT_OK(env_->CreateDirs(Path("sub/deeper")));  // exists already: fine
  Open("x");
  Open("sub/y");
  auto names = env_->ListDir(dir_.path());
  ASSERT_OK(names);
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"sub", "x"}));

  ASSERT_OK(env_->RenameFile(Path("x"), Path("sub/z")));
  EXPECT_FALSE(*env_->FileExists(Path("x")));
  EXPECT_TRUE(*env_->FileExists(Path("sub/z")));
  ASSERT_OK(env_->SyncDir(Path("sub")));

  ASSERT_OK(env_->DeleteFile(Path("sub/z")));
  EXPECT_FALSE(*env_->FileExists(Path("sub/z")));
  EXPECT_TRUE(env_->DeleteFile(Path("sub/z")).IsNotFound());

  auto free_bytes = env_->FreeSpace(dir_.path());
  ASSERT_OK(free_bytes);
  EXPECT_GT(*free_bytes, 0u);
}

TEST_P(EnvTest, ErrorsAreStatuses) {
  auto missing = env_->OpenFile(Path("missing"), {});
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status();
  Open("e");
  EXPECT_TRUE(env_->OpenFile(Path("e"), {.create = true, .exclusive = true}).status().IsAlreadyExists());
  EXPECT_TRUE(env_->ListDir(Path("nodir")).status().IsNotFound());
  EXPECT_TRUE(env_->SyncDir(Path("nodir")).IsNotFound());
  EXPECT_TRUE(env_->RenameFile(Path("nodir/a"), Path("b")).IsNotFound());

  auto ro = env_->OpenFile(Path("e"), {.read_only = true});
  ASSERT_OK(ro);
  const auto data = Pattern(10, 1);
  const Status s = Write(ro->get(), 0, data);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsIOError()) << s;  // EBADF
}

INSTANTIATE_TEST_SUITE_P(Backends, EnvTest, ::testing::Values(Backend::kPsync, Backend::kIoUring),
                         [](const ::testing::TestParamInfo<Backend>& p) {
                           return std::string(p.param == Backend::kPsync ? "Psync" : "IoUring");
                         });

TEST(BackendTest, NamesRoundTrip) {
  for (Backend b : {Backend::kAuto, Backend::kIoUring, Backend::kPsync}) EXPECT_EQ(*ParseBackend(BackendName(b)), b);
  EXPECT_EQ(*ParseBackend("uring"), Backend::kIoUring);
  EXPECT_TRUE(ParseBackend("aio").status().IsInvalidArgument());
}

TEST(BackendTest, AutoPicksARealBackend) {
  auto env = Env::Create(Backend::kAuto);
  ASSERT_OK(env);
  EXPECT_NE((*env)->backend(), Backend::kAuto);
  const bool uring = Env::Create(Backend::kIoUring).ok();
  EXPECT_EQ((*env)->backend(), uring ? Backend::kIoUring : Backend::kPsync);
}

TEST(AlignedBufferTest, AlignedZeroedAndMovable) {
  AlignedBuffer a(1000, 4096);
  EXPECT_EQ(a.size(), 4096u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data()) % 4096, 0u);
  EXPECT_TRUE(std::all_of(a.data(), a.data() + a.size(), [](std::byte b) { return b == std::byte{0}; }));
  std::byte* p = a.data();
  AlignedBuffer b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from state is specified
  AlignedBuffer c;
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.size(), 4096u);
}

}  // namespace
}  // namespace cairn::io
