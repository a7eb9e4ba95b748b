// Metrics: counters, gauges and latency histograms, kept in a registry that renders them in the
// Prometheus text exposition format (version 0.0.4).
//
//   static metrics::Counter* puts = metrics::Registry::Default().GetCounter(
//       "cairn_requests_total", "S3 requests served", {{"op", "put"}, {"status", "200"}});
//   puts->Increment();
//
// A metric is identified by its name and its constant labels; asking again for the same name and
// labels (in any order) returns the same object, whose address never changes while its registry
// lives. Histograms record microseconds in fixed log-linear buckets (every power of two split
// into 16 linear sub-buckets, exact below 32 µs, covering up to 2^32 µs ≈ 71 minutes), so a
// percentile is exact to within 1/32 (≈3%) of its value. They are rendered as Prometheus
// summaries with quantiles 0.5, 0.99 and 0.999.
//
// Thread-safety: Counter, Gauge and Histogram updates and reads are lock-free (relaxed atomics)
// and may come from any number of threads. A reader sees each field as some recent value, not an
// atomic snapshot of the whole metric: a histogram's _sum may be a few samples ahead of or behind
// its _count. Registry methods take the registry's mutex; look a metric up once and keep the
// pointer rather than calling Get* on a hot path. Registry::Default() is never destroyed, so its
// metrics may be used from static destructors and detached threads.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cairn::metrics {

// Constant labels of one series, e.g. {{"op", "put"}, {"status", "200"}}. Names match
// [a-zA-Z_][a-zA-Z0-9_]* and appear at most once; values are any UTF-8 text.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing count.
class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down. Stored as a double: integers up to 2^53 are exact.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A distribution of latencies in microseconds. Record is wait-free apart from a compare-and-swap
// loop on the maximum, taken only when a new maximum arrives.
class Histogram {
 public:
  // Bucket layout: values below kSubBuckets have a bucket each; above, each range
  // [2^e, 2^(e+1)) for e in [kSubBucketBits, kMaxExponent) is split into kSubBuckets equal
  // buckets of width 2^(e - kSubBucketBits). Values of 2^kMaxExponent and above share the last
  // bucket (Max() still reports them exactly).
  static constexpr unsigned kSubBucketBits = 4;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;
  static constexpr unsigned kMaxExponent = 32;
  static constexpr size_t kNumBuckets = kSubBuckets + (kMaxExponent - kSubBucketBits) * kSubBuckets;

  // A copy of the counts, taken bucket by bucket; consistent enough for reporting.
  struct Snapshot {
    std::array<uint64_t, kNumBuckets> buckets{};
    uint64_t count = 0;  // the sum of `buckets`
    uint64_t sum = 0;
    uint64_t max = 0;
    // See Histogram::Percentile.
    double Percentile(double q) const;
  };

  void Record(uint64_t micros) {
    buckets_[BucketIndex(micros)].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(micros, std::memory_order_relaxed);
    uint64_t prev = max_.load(std::memory_order_relaxed);
    while (micros > prev && !max_.compare_exchange_weak(prev, micros, std::memory_order_relaxed)) {
    }
  }

  uint64_t Count() const;
  uint64_t Sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t Max() const { return max_.load(std::memory_order_relaxed); }
  // Estimates the q-quantile (q in [0, 1], clamped): the smallest recorded value v such that at
  // least q of the samples are <= v, reported as the middle of v's bucket and never above Max().
  // Within half a bucket width (<= 1/32 of the value) of the true answer. NaN when empty.
  double Percentile(double q) const { return TakeSnapshot().Percentile(q); }
  Snapshot TakeSnapshot() const;

  static size_t BucketIndex(uint64_t value);
  // The smallest value that falls in bucket `index`, and the number of values it holds.
  static uint64_t BucketLower(size_t index);
  static uint64_t BucketWidth(size_t index);

 private:
  std::array<std::atomic<uint64_t>, kNumBuckets> buckets_{};
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> max_{0};
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The process-wide registry that the server exposes.
  static Registry& Default();

  // Return the metric called `name` with `labels`, creating it on first use. `help` is kept from
  // the first call for the name. REQUIRES: `name` matches [a-zA-Z_:][a-zA-Z0-9_:]*; label names are
  // valid and distinct (and not "quantile" for histograms); the name is not already registered as
  // another kind of metric. These are programming errors: the process aborts with a message.
  Counter* GetCounter(std::string_view name, std::string_view help, Labels labels = {});
  Gauge* GetGauge(std::string_view name, std::string_view help, Labels labels = {});
  Histogram* GetHistogram(std::string_view name, std::string_view help, Labels labels = {});

  // Every metric in the Prometheus text format: families ordered by name, each with one HELP and
  // one TYPE line, its series ordered by labels. Histograms are summaries: quantile 0.5, 0.99 and
  // 0.999 series, then name_sum and name_count.
  std::string PrometheusText() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Family {
    Kind kind;
    std::string help;
    // Only the map matching `kind` is used. Keys are label sets sorted by label name.
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };

  // "counter", "gauge" or "summary": the Prometheus TYPE.
  static std::string_view KindName(Kind kind);
  Family& FamilyFor(std::string_view name, std::string_view help, Kind kind);  // REQUIRES: mu_ held

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;  // guarded by mu_
};

}  // namespace cairn::metrics
