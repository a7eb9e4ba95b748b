// engine_crash_child: the process that tests/engine/crash_test.cc kills with SIGKILL.
//
//   engine_crash_child --dir D --log L --seed S --threads T
//
// Opens the engine in D with a configuration that makes background work frequent (1 MiB
// segments, a checkpoint every 2 MiB, background compaction every 20 ms at a 0.3 dead ratio) and
// runs T worker threads and one forced-compaction thread until it is killed; it never exits by
// itself. It prints "ready" on standard output once the engine is open.
//
// Every acknowledged operation is recorded in L, one write(2) per line on an O_APPEND descriptor,
// so a line is either wholly in the file or absent when the process dies:
//   "A <id> <length> <crc>\n"  after Append returned OK (crc: 8 hex digits);
//   "d <id>\n"                 before Delete is issued (intent);
//   "D <id>\n"                 after Delete returned OK;
//   "c\n" / "C <bytes>\n"      before / after a forced compaction pass.
// Ids are <hi = S, lo = thread << 40 | counter>, so they are unique as long as every run gets a
// fresh seed. A payload is a function of its id and length only (ChunkPayload below, which must
// stay identical to the one in tests/engine/crash_test.cc), so the parent can check the bytes.
//
// Any unexpected result (an error from the engine, a read that does not return the bytes
// appended) aborts the process: the parent treats every death other than SIGKILL as a failure.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/crc32c.h"
#include "engine/crash_payload.h"
#include "engine/engine.h"
#include "io/file.h"

namespace cairn::engine {
namespace {

constexpr uint64_t kSegmentSize = 1ull << 20;
constexpr uint64_t kCheckpointIntervalBytes = 2ull << 20;
constexpr uint64_t kCompactionIntervalMs = 20;
constexpr double kCompactionDeadRatio = 0.3;
constexpr auto kForcedCompactionPeriod = std::chrono::milliseconds(50);

constexpr size_t kMaxSmallChunk = 64u << 10;
constexpr size_t kLargeChunk = 300u << 10;
constexpr int kLargeChunkPercent = 3;
// Operation mix, in percent of a worker's iterations (the rest are reads).
constexpr int kAppendPercent = 70;
constexpr int kDeletePercent = 15;
constexpr int kThreadShift = 40;

using crash::ChunkPayload;
using crash::SplitMix64;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "engine_crash_child: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Appends one line to the operation log with a single write(2).
void LogLine(int fd, const std::string& line) {
  const ssize_t n = ::write(fd, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) Die("write to the operation log failed: " + std::string(strerror(errno)));
}

struct Acked {
  ChunkId id;
  size_t length = 0;
};

void Worker(Engine* engine, int log_fd, uint64_t seed, uint64_t thread) {
  std::mt19937_64 rng(seed ^ (thread * 0x9E3779B97F4A7C15ull) ^ 0x5DEECE66Dull);
  std::vector<Acked> acked;  // this thread's live chunks of this run
  uint64_t counter = 0;
  while (true) {
    const int op = static_cast<int>(rng() % 100);
    if (op < kAppendPercent || acked.empty()) {
      const ChunkId id{seed, (thread << kThreadShift) | counter++};
      const size_t length = static_cast<int>(rng() % 100) < kLargeChunkPercent
                                ? kLargeChunk
                                : 1 + static_cast<size_t>(rng() % kMaxSmallChunk);
      const std::vector<std::byte> data = ChunkPayload(id, length);
      const uint32_t crc = crc32c::Value(data);
      auto r = engine->Append(id, data, crc);
      if (!r.ok()) Die("Append " + id.ToString() + ": " + r.status().ToString());
      char line[96];
      std::snprintf(line, sizeof(line), "A %s %zu %08" PRIx32 "\n", id.ToString().c_str(), length, crc);
      LogLine(log_fd, line);
      acked.push_back({id, length});
    } else if (op < kAppendPercent + kDeletePercent) {
      const size_t i = rng() % acked.size();
      const Acked victim = acked[i];
      acked[i] = acked.back();
      acked.pop_back();
      LogLine(log_fd, "d " + victim.id.ToString() + "\n");
      Status s = engine->Delete(victim.id);
      if (!s.ok()) Die("Delete " + victim.id.ToString() + ": " + s.ToString());
      LogLine(log_fd, "D " + victim.id.ToString() + "\n");
    } else {
      const Acked& c = acked[rng() % acked.size()];
      auto r = engine->ReadAll(c.id);
      if (!r.ok()) Die("ReadAll " + c.id.ToString() + ": " + r.status().ToString());
      if (*r != ChunkPayload(c.id, c.length)) Die("ReadAll " + c.id.ToString() + " returned wrong bytes");
    }
  }
}

void ForcedCompactor(Engine* engine, int log_fd) {
  while (true) {
    std::this_thread::sleep_for(kForcedCompactionPeriod);
    LogLine(log_fd, "c\n");
    auto r = engine->CompactNow(/*force=*/true);
    if (!r.ok()) Die("CompactNow: " + r.status().ToString());
    LogLine(log_fd, "C " + std::to_string(*r) + "\n");
  }
}

[[noreturn]] void Usage() {
  std::fprintf(stderr, "usage: engine_crash_child --dir D --log L --seed S --threads T\n");
  std::exit(2);
}

int Main(int argc, char** argv) {
  std::string dir, log_path;
  uint64_t seed = 0;
  uint64_t threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--dir") {
      dir = value;
    } else if (flag == "--log") {
      log_path = value;
    } else if (flag == "--seed") {
      seed = std::strtoull(value, nullptr, 0);
    } else if (flag == "--threads") {
      threads = std::strtoull(value, nullptr, 0);
    } else {
      Usage();
    }
  }
  if (argc % 2 != 1 || dir.empty() || log_path.empty() || threads == 0) Usage();

  auto env = io::Env::Create();
  if (!env.ok()) Die("Env::Create: " + env.status().ToString());
  EngineOptions options;
  options.config.segment_size = kSegmentSize;
  options.config.checkpoint_interval_bytes = kCheckpointIntervalBytes;
  options.config.compaction_interval_ms = kCompactionIntervalMs;
  options.config.compaction_dead_ratio = kCompactionDeadRatio;
  options.config.background_compaction = true;
  auto engine = Engine::Open(env->get(), dir, options);
  if (!engine.ok()) Die("Engine::Open " + dir + ": " + engine.status().ToString());
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) Die("open " + log_path + ": " + strerror(errno));

  std::vector<std::thread> workers;
  for (uint64_t t = 0; t < threads; ++t) workers.emplace_back(Worker, engine->get(), log_fd, seed, t);
  workers.emplace_back(ForcedCompactor, engine->get(), log_fd);
  std::printf("ready\n");
  std::fflush(stdout);
  // The threads never return; the process ends only when it is killed (or aborts).
  for (auto& w : workers) w.join();
  return 1;
}

}  // namespace
}  // namespace cairn::engine

int main(int argc, char** argv) { return cairn::engine::Main(argc, argv); }
