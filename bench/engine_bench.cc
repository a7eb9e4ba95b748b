// The engine workload generator; see engine_bench.h for the workloads and the report's keys.
//
// Method: every worker thread keeps its own latency histogram (metrics::Histogram, log-linear,
// within ~3% of the value) so that recording costs no shared cache line; the histograms are
// merged after the run. Latency is measured around each engine call with the steady clock.
// Throughput is operations completed divided by the time from releasing the workers to the last
// one finishing (each finishes the operation in flight when the duration ends).
//
// Thread-safety: RunEngineBench runs worker threads that share only the engine, the read-only
// payload and id list, and a few atomics; everything else is per thread until joined.
#include "bench/engine_bench.h"

#include <fmt/format.h>
#include <malloc.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "common/crc32c.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "engine/engine.h"
#include "io/file.h"

namespace cairn::bench {
namespace {

using engine::ChunkId;
using engine::Engine;
using Json = nlohmann::json;

// Fraction of mixed-workload operations that are reads.
constexpr double kMixedReadFraction = 0.7;
// The default prefill holds at least this many bytes.
constexpr uint64_t kDefaultPrefillBytes = 1ull << 30;
// ... and at least this many chunks per reader thread.
constexpr uint64_t kDefaultPrefillChunksPerThread = 4;
// How often a long fill logs its progress.
constexpr auto kProgressInterval = std::chrono::seconds(10);

// A fresh random 128-bit chunk id.
ChunkId NextId(Rng& rng) {
  ChunkId id;
  id.hi = rng.Next();
  id.lo = rng.Next();
  return id;
}

// The payload every chunk carries: random bytes and their CRC32C, computed once.
struct Payload {
  std::vector<std::byte> bytes;
  uint32_t crc = 0;
};

Payload MakePayload(uint64_t size) {
  Payload p;
  p.bytes.resize(size);
  FillPseudoRandom(RandomSeed(), p.bytes);
  p.crc = crc32c::Value(p.bytes);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Engine set-up and filling

struct Setup {
  std::unique_ptr<io::Env> env;
  std::unique_ptr<Engine> engine;
};

Result<std::unique_ptr<Engine>> OpenEngine(io::Env* env, const EngineBenchOptions& options) {
  engine::EngineOptions eo;
  eo.config = options.engine;
  return Engine::Open(env, options.dir, eo);
}

struct FillResult {
  uint64_t chunks = 0;
  double seconds = 0;
};

// Appends `count` fresh chunks from `threads` threads. When `ids` is not null it is resized to
// `count` and receives every id written.
Result<FillResult> Fill(Engine& engine, uint64_t count, uint32_t threads, const Payload& payload,
                        std::vector<ChunkId>* ids) {
  if (ids != nullptr) ids->assign(count, ChunkId{});
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> done{0};
  FirstError error;
  const uint64_t seed = RandomSeed();
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> workers;
  const uint32_t n = static_cast<uint32_t>(std::max<uint64_t>(1, std::min<uint64_t>(threads, count)));
  for (uint32_t t = 0; t < n; ++t) {
    workers.emplace_back([&, t] {
      Rng rng(seed ^ (0x51ED27A3ull * (t + 1)));
      while (!error.failed()) {
        const uint64_t i = next.fetch_add(1, std::memory_order_relaxed);
        if (i >= count) break;
        const ChunkId id = NextId(rng);
        Result<engine::ChunkLocation> r = engine.Append(id, payload.bytes, payload.crc);
        if (!r.ok()) {
          error.Set(r.status().WithContext("fill: append"));
          break;
        }
        if (ids != nullptr) (*ids)[i] = id;
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  // Report progress of long fills so that a 10-million-chunk run does not look hung.
  Clock::time_point last_report = start;
  while (done.load(std::memory_order_relaxed) < count && !error.failed()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const Clock::time_point now = Clock::now();
    if (now - last_report >= kProgressInterval) {
      last_report = now;
      const uint64_t d = done.load(std::memory_order_relaxed);
      CAIRN_LOG_INFO("bench: filled {}/{} chunks ({:.0f}/s)", d, count, static_cast<double>(d) / Seconds(now - start));
    }
  }
  for (std::thread& w : workers) w.join();
  if (error.failed()) return error.status();
  return FillResult{count, Seconds(Clock::now() - start)};
}

// ---------------------------------------------------------------------------------------------
// Timed runs

enum OpKind : size_t { kOpRead = 0, kOpAppend = 1, kNumOpKinds = 2 };

struct WorkerStats {
  std::array<metrics::Histogram, kNumOpKinds> latency;
  std::array<uint64_t, kNumOpKinds> ops{};
};

using EngineWorkerRun = WorkerRun<WorkerStats>;

// Runs `concurrency` threads for `duration_s`, each keeping `depth` appends in flight through
// AppendAsync; latency is measured from submission to the completion callback.
Result<Json> RunAsyncAppends(Engine& engine, const EngineBenchOptions& options, const Payload& payload) {
  const uint32_t n = std::max<uint32_t>(1, options.concurrency);
  FirstError error;
  EngineWorkerRun run = RunWorkers<WorkerStats>(
      n, options.duration_s, [&](uint32_t /*worker*/, WorkerStats& ws, Rng& rng, Clock::time_point deadline) {
        std::mutex mu;
        std::condition_variable cv;
        uint32_t in_flight = 0;  // guarded by mu
        std::unique_lock<std::mutex> l(mu);
        while (!error.failed() && Clock::now() < deadline) {
          cv.wait(l, [&] { return in_flight < options.depth; });
          ++in_flight;
          l.unlock();
          const Clock::time_point t0 = Clock::now();
          engine.AppendAsync(NextId(rng), payload.bytes, payload.crc,
                             [&, t0](const Status& s, const engine::ChunkLocation&) {
                               if (!s.ok()) {
                                 error.Set(s.WithContext("append"));
                               } else {
                                 ws.latency[kOpAppend].Record(ElapsedMicros(t0, Clock::now()));
                               }
                               std::lock_guard<std::mutex> g(mu);
                               if (s.ok()) ++ws.ops[kOpAppend];
                               --in_flight;
                               cv.notify_one();
                             });
          l.lock();
        }
        cv.wait(l, [&] { return in_flight == 0; });
      });
  if (error.failed()) return error.status();
  LatencyMerge all;
  for (const auto& ws : run.stats) all.Add(ws->latency[kOpAppend]);
  Json out;
  out["concurrency"] = n;
  out["depth"] = options.depth;
  out["duration_s"] = run.elapsed;
  all.Report(out);
  const double ops = static_cast<double>(all.count());
  out["ops_per_sec"] = ops / run.elapsed;
  out["mb_per_sec"] = ops * static_cast<double>(options.size) / kBytesPerMb / run.elapsed;
  return out;
}

// Runs `concurrency` threads for `duration_s`, each choosing its operations with `read_fraction`
// (0: appends only, 1: reads only, of random ids from `ids`).
Result<Json> RunTimed(Engine& engine, const EngineBenchOptions& options, const Payload& payload,
                      const std::vector<ChunkId>& ids, double read_fraction) {
  const uint32_t n = std::max<uint32_t>(1, options.concurrency);
  FirstError error;
  EngineWorkerRun run = RunWorkers<WorkerStats>(
      n, options.duration_s, [&](uint32_t /*worker*/, WorkerStats& ws, Rng& rng, Clock::time_point deadline) {
        std::vector<std::byte> out(payload.bytes.size());
        bool checked = false;
        while (!error.failed()) {
          const bool read = read_fraction >= 1.0 || (read_fraction > 0.0 && rng.Unit() < read_fraction);
          const Clock::time_point t0 = Clock::now();
          Status s;
          if (read) {
            const ChunkId& id = ids[rng.Below(ids.size())];
            s = engine.Read(id, /*offset=*/0, out);
            if (s.ok() && !checked) {
              checked = true;
              if (out != payload.bytes)
                s = Status::Corruption("read returned bytes that differ from what was appended");
            }
          } else {
            s = engine.Append(NextId(rng), payload.bytes, payload.crc).status();
          }
          const Clock::time_point t1 = Clock::now();
          if (!s.ok()) {
            error.Set(s.WithContext(read ? "read" : "append"));
            break;
          }
          const size_t kind = read ? kOpRead : kOpAppend;
          ws.latency[kind].Record(ElapsedMicros(t0, t1));
          ++ws.ops[kind];
          if (t1 >= deadline) break;
        }
      });
  if (error.failed()) return error.status();
  const double elapsed = run.elapsed;
  const auto& stats = run.stats;

  LatencyMerge all;
  std::array<LatencyMerge, kNumOpKinds> by_kind;
  for (const auto& ws : stats) {
    for (size_t k = 0; k < kNumOpKinds; ++k) {
      all.Add(ws->latency[k]);
      by_kind[k].Add(ws->latency[k]);
    }
  }
  Json out;
  out["concurrency"] = n;
  out["duration_s"] = elapsed;
  all.Report(out);
  const double ops = static_cast<double>(all.count());
  out["ops_per_sec"] = ops / elapsed;
  out["mb_per_sec"] = ops * static_cast<double>(options.size) / kBytesPerMb / elapsed;
  if (read_fraction > 0.0 && read_fraction < 1.0) {
    const std::array<const char*, kNumOpKinds> names = {"reads", "appends"};
    for (size_t k = 0; k < kNumOpKinds; ++k) {
      Json part;
      by_kind[k].Report(part);
      part["ops_per_sec"] = static_cast<double>(by_kind[k].count()) / elapsed;
      out[names[k]] = part;
    }
  }
  return out;
}

Json EngineStatsJson(const engine::EngineStats& s) {
  return Json{{"chunks", s.chunks},
              {"live_bytes", s.live_bytes},
              {"index_memory_bytes", s.index_memory_bytes},
              {"appends", s.appends},
              {"group_commits", s.group_commits},
              {"appends_per_group_commit",
               s.group_commits == 0 ? 0.0 : static_cast<double>(s.appends) / static_cast<double>(s.group_commits)},
              {"segments", s.segments.size()},
              {"compactions", s.compactions},
              {"checkpoints", s.checkpoints}};
}

std::string Method(const EngineBenchOptions& o, uint64_t prefill) {
  const std::string size = FormatByteSize(o.size);
  switch (o.workload) {
    case Workload::kAppend:
      return fmt::format(
          "{} threads append fresh random ids of {} (payload crc precomputed) for {}s; each "
          "Append returns when durable (group commit)",
          o.concurrency, size, o.duration_s);
    case Workload::kRead:
      return fmt::format(
          "prefill {} chunks of {}, close and reopen the engine, then {} threads Read random whole "
          "chunks for {}s ({})",
          prefill, size, o.concurrency, o.duration_s,
          o.engine.direct_reads ? "O_DIRECT reads" : "buffered reads: the page cache helps");
    case Workload::kMixed:
      return fmt::format(
          "prefill {} chunks of {}, close and reopen, then {} threads do {:.0f}% Read of random "
          "prefilled chunks / {:.0f}% Append of fresh ids for {}s",
          prefill, size, o.concurrency, kMixedReadFraction * 100, (1 - kMixedReadFraction) * 100, o.duration_s);
    case Workload::kReopen:
      return fmt::format(
          "fill {} chunks of {} with {} threads, Close, then time Engine::Open (wall clock) and read "
          "Stats() and VmRSS",
          o.count, size, o.fill_concurrency);
  }
  return {};
}

Status Validate(const EngineBenchOptions& o) {
  if (o.dir.empty()) return Status::InvalidArgument("--dir is required");
  if (o.size == 0) return Status::InvalidArgument("--size must be positive");
  if (o.concurrency == 0) return Status::InvalidArgument("--concurrency must be positive");
  if (o.fill_concurrency == 0) return Status::InvalidArgument("--fill-concurrency must be positive");
  if (o.workload != Workload::kReopen && !(o.duration_s > 0)) {
    return Status::InvalidArgument("--duration must be positive");
  }
  if (o.workload == Workload::kReopen && o.count == 0) return Status::InvalidArgument("--count must be positive");
  return Status::OK();
}

Result<Json> RunReopen(Setup& setup, const EngineBenchOptions& options, const Payload& payload, Json report) {
  CAIRN_ASSIGN_OR_RETURN(FillResult fill,
                         Fill(*setup.engine, options.count, options.fill_concurrency, payload, /*ids=*/nullptr));
  report["count"] = options.count;
  report["fill"] = Json{{"chunks", fill.chunks},
                        {"seconds", fill.seconds},
                        {"ops_per_sec", static_cast<double>(fill.chunks) / fill.seconds},
                        {"concurrency", options.fill_concurrency}};
  CAIRN_RETURN_IF_ERROR(setup.engine->Close());
  setup.engine.reset();
  malloc_trim(0);  // so that the RSS before Open does not count memory the fill left cached in malloc
  const uint64_t rss_before = RssBytes();

  const Clock::time_point t0 = Clock::now();
  CAIRN_ASSIGN_OR_RETURN(setup.engine, OpenEngine(setup.env.get(), options));
  const double open_s = Seconds(Clock::now() - t0);
  const uint64_t rss_after = RssBytes();
  const engine::EngineStats s = setup.engine->Stats();

  report["open_ms"] = open_s * 1e3;
  report["recovery_micros"] = s.recovery_micros;
  report["recovered_from_checkpoint"] = s.recovered_from_checkpoint;
  report["recovery_scanned_bytes"] = s.recovery_scanned_bytes;
  report["recovery_truncated_bytes"] = s.recovery_truncated_bytes;
  report["chunks"] = s.chunks;
  report["index_memory_bytes"] = s.index_memory_bytes;
  const double chunks = static_cast<double>(std::max<uint64_t>(1, s.chunks));
  report["index_bytes_per_chunk"] = static_cast<double>(s.index_memory_bytes) / chunks;
  report["rss_bytes_before_open"] = rss_before;
  report["rss_bytes_after_open"] = rss_after;
  report["rss_bytes_per_chunk"] = static_cast<double>(rss_after > rss_before ? rss_after - rss_before : 0) / chunks;
  report["engine"] = EngineStatsJson(s);
  return report;
}

}  // namespace

Result<Workload> ParseWorkload(std::string_view name) {
  if (name == "append") return Workload::kAppend;
  if (name == "read") return Workload::kRead;
  if (name == "mixed") return Workload::kMixed;
  if (name == "reopen") return Workload::kReopen;
  return Status::InvalidArgument(fmt::format("unknown workload \"{}\" (expected append, read, mixed, reopen)", name));
}

std::string_view WorkloadName(Workload w) {
  switch (w) {
    case Workload::kAppend:
      return "append";
    case Workload::kRead:
      return "read";
    case Workload::kMixed:
      return "mixed";
    case Workload::kReopen:
      return "reopen";
  }
  return "unknown";
}

Result<Json> RunEngineBench(const EngineBenchOptions& options) {
  CAIRN_RETURN_IF_ERROR(Validate(options));
  CAIRN_ASSIGN_OR_RETURN(io::Backend backend, io::ParseBackend(options.engine.io_backend));
  Setup setup;
  CAIRN_ASSIGN_OR_RETURN(setup.env, io::Env::Create(backend));
  CAIRN_RETURN_IF_ERROR(setup.env->CreateDirs(options.dir));
  CAIRN_ASSIGN_OR_RETURN(setup.engine, OpenEngine(setup.env.get(), options));
  const uint64_t preexisting = setup.engine->Stats().chunks;
  const Payload payload = MakePayload(options.size);

  uint64_t prefill = options.prefill;
  if (prefill == 0) {
    prefill = std::max<uint64_t>((kDefaultPrefillBytes + options.size - 1) / options.size,
                                 kDefaultPrefillChunksPerThread * options.concurrency);
  }
  Json report;
  report["workload"] = WorkloadName(options.workload);
  report["method"] = Method(options, prefill);
  report["dir"] = options.dir;
  report["size"] = options.size;
  report["io_backend"] = io::BackendName(setup.env->backend());
  report["direct_io"] = setup.engine->direct_io();
  report["direct_reads"] = options.engine.direct_reads && setup.engine->direct_io();
  report["preexisting_chunks"] = preexisting;
  report["machine"] = MachineInfo(options.dir);

  if (options.workload == Workload::kReopen) {
    Result<Json> r = RunReopen(setup, options, payload, std::move(report));
    if (!r.ok()) return r.status();
    CAIRN_RETURN_IF_ERROR(setup.engine->Close());
    return r;
  }

  std::vector<ChunkId> ids;
  double read_fraction = 0.0;
  if (options.workload != Workload::kAppend) {
    read_fraction = options.workload == Workload::kRead ? 1.0 : kMixedReadFraction;
    CAIRN_ASSIGN_OR_RETURN(FillResult fill, Fill(*setup.engine, prefill, options.fill_concurrency, payload, &ids));
    report["prefill"] = Json{{"chunks", fill.chunks},
                             {"seconds", fill.seconds},
                             {"ops_per_sec", static_cast<double>(fill.chunks) / fill.seconds}};
    // Reopen, so that reads find nothing the engine kept from writing them.
    CAIRN_RETURN_IF_ERROR(setup.engine->Close());
    setup.engine.reset();
    CAIRN_ASSIGN_OR_RETURN(setup.engine, OpenEngine(setup.env.get(), options));
  }
  CAIRN_ASSIGN_OR_RETURN(Json run, (options.depth > 1 && read_fraction == 0.0)
                                       ? RunAsyncAppends(*setup.engine, options, payload)
                                       : RunTimed(*setup.engine, options, payload, ids, read_fraction));
  report.update(run);
  report["engine"] = EngineStatsJson(setup.engine->Stats());
  CAIRN_RETURN_IF_ERROR(setup.engine->Close());
  return report;
}

std::string FormatReportTable(const Json& report) {
  return FormatTable("cairn bench engine", report,
                     {"workload", "size", "concurrency", "duration_s", "ops_per_sec", "mb_per_sec", "p50_us", "p99_us",
                      "p999_us", "open_ms", "io_backend", "direct_io"});
}

}  // namespace cairn::bench
