// Plumbing shared by the workload generators in bench/: a fast seeded random source, a launcher
// that starts N worker threads at one instant and times them, per-thread latency histograms and
// their merge into percentiles, the first-error latch, a description of the machine, /proc
// readings and the two-column report table.
//
// Method the runners share: each worker keeps its own metrics::Histogram (log-linear, within ~3%
// of the value), so recording costs no shared cache line; histograms are merged after the run.
// Throughput is operations completed divided by the time from releasing the workers to the last
// one returning.
//
// Thread-safety: Rng and the histograms in a worker's stats belong to one thread; FirstError is
// safe to share; the free functions are safe to call concurrently.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"

namespace cairn::bench {

using Clock = std::chrono::steady_clock;

inline constexpr double kBytesPerMb = 1e6;

// splitmix64: fast, and good enough for ids, keys and operation choice.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n). REQUIRES: n > 0.
  uint64_t Below(uint64_t n) { return Next() % n; }
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// 64 bits from std::random_device.
uint64_t RandomSeed();

// Fills `out` with the splitmix64 stream of `seed`: the same seed gives the same bytes.
void FillPseudoRandom(uint64_t seed, std::span<std::byte> out);

uint64_t ElapsedMicros(Clock::time_point from, Clock::time_point to);
double Seconds(Clock::duration d);

// ---- Machine and process readings (Linux /proc and /sys) ----

// {nproc, kernel, cpu_model, memory_bytes}, plus {filesystem, device_model} of `dir` when it is
// not empty.
nlohmann::json MachineInfo(const std::string& dir = {});
// VmRSS of this process in bytes; 0 when unreadable.
uint64_t RssBytes();

// CPU time and memory of a process, from /proc/<pid>/stat and /proc/<pid>/status.
struct ProcessSample {
  bool ok = false;         // false when the process could not be read
  double cpu_seconds = 0;  // utime + stime
  uint64_t rss_bytes = 0;  // VmRSS
  uint64_t hwm_bytes = 0;  // VmHWM: peak RSS since the process started
};
ProcessSample SampleProcess(int pid);

// ---- Latency bookkeeping ----

// Sums per-thread histogram snapshots.
class LatencyMerge {
 public:
  void Add(const metrics::Histogram& h);
  uint64_t count() const { return total_.count; }
  // Adds ops, mean_us, p50_us, p99_us, p999_us and max_us to `out`.
  void Report(nlohmann::json& out) const;

 private:
  double Percentile(double q) const;
  metrics::Histogram::Snapshot total_;
};

// Remembers the first error any thread hit and tells the others to stop.
class FirstError {
 public:
  void Set(const Status& s);
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  Status status();

 private:
  std::mutex mu_;
  Status status_;  // guarded by mu_
  std::atomic<bool> failed_{false};
};

template <typename Stats>
struct WorkerRun {
  std::vector<std::unique_ptr<Stats>> stats;  // one per worker, index = worker number
  double elapsed = 0;                         // seconds from the common start until every worker returned
};

// Starts `n` threads at the same moment, each running body(worker, stats, rng, deadline) with its
// own default-constructed Stats and a seeded Rng, waits for all of them, and measures the elapsed
// time. `deadline` is the start plus `duration_s`, or Clock::time_point::max() when duration_s
// is not positive (the body then decides when to stop).
template <typename Stats, typename Body>
WorkerRun<Stats> RunWorkers(uint32_t n, double duration_s, Body&& body) {
  WorkerRun<Stats> run;
  for (uint32_t t = 0; t < n; ++t) run.stats.push_back(std::make_unique<Stats>());
  std::latch go(1);
  Clock::time_point deadline;
  const uint64_t seed = RandomSeed();
  std::vector<std::thread> workers;
  for (uint32_t t = 0; t < n; ++t) {
    workers.emplace_back([&, t] {
      Rng rng(seed ^ (0x2545F4914F6CDD1Dull * (t + 1)));
      go.wait();  // deadline is written before go is counted down
      body(t, *run.stats[t], rng, deadline);
    });
  }
  const Clock::time_point start = Clock::now();
  deadline = duration_s > 0
                 ? start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s))
                 : Clock::time_point::max();
  go.count_down();
  for (std::thread& w : workers) w.join();
  run.elapsed = Seconds(Clock::now() - start);
  return run;
}

// Renders a report as a two-column table under `title`: the `headline` keys first (those
// present), then every other key in order, nested objects flattened as "a.b".
std::string FormatTable(std::string_view title, const nlohmann::json& report,
                        const std::vector<std::string_view>& headline);

}  // namespace cairn::bench
