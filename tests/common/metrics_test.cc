// Tests for common/metrics: counters and gauges, histogram buckets and percentiles, concurrent
// recording, registry identity, and the exact Prometheus text of a small registry.
#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "test_util.h"

namespace cairn::metrics {
namespace {

// The true q-quantile of `values` by the same rank rule Percentile uses.
double ExactQuantile(std::vector<uint64_t> values, double q) {
  std::sort(values.begin(), values.end());
  const auto rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * static_cast<double>(values.size()))));
  return static_cast<double>(values[rank - 1]);
}

void ExpectWithin(double estimate, double truth, double relative) {
  EXPECT_LE(std::abs(estimate - truth), relative * truth) << "estimate " << estimate << " truth " << truth;
}

TEST(MetricsTest, CounterAdds) {
  Counter c;
  EXPECT_EQ(c.Value(), 0u);
  c.Increment();
  c.Increment(41);
  EXPECT_EQ(c.Value(), 42u);
}

TEST(MetricsTest, GaugeSetsAndAdds) {
  Gauge g;
  g.Set(10);
  g.Add(-3);
  EXPECT_EQ(g.Value(), 7.0);
  g.Set(0.25);
  g.Add(0.5);
  EXPECT_DOUBLE_EQ(g.Value(), 0.75);
}

TEST(HistogramTest, BucketsTileTheRange) {
  // Every bucket starts where the previous one ended, and each value maps into its bucket.
  uint64_t next = 0;
  for (size_t i = 0; i < Histogram::kNumBuckets; ++i) {
    ASSERT_EQ(Histogram::BucketLower(i), next) << i;
    ASSERT_EQ(Histogram::BucketIndex(next), i);
    const uint64_t last = next + Histogram::BucketWidth(i) - 1;
    ASSERT_EQ(Histogram::BucketIndex(last), i);
    // Resolution: a bucket is at most 1/16 of its lower bound wide.
    if (next >= Histogram::kSubBuckets) {
      ASSERT_LE(Histogram::BucketWidth(i) * 16, next);
    }
    next = last + 1;
  }
  EXPECT_EQ(next, uint64_t{1} << Histogram::kMaxExponent);
  EXPECT_EQ(Histogram::BucketIndex(UINT64_MAX), Histogram::kNumBuckets - 1);
}

TEST(HistogramTest, EmptyHasNoPercentile) {
  Histogram h;
  EXPECT_EQ(h.Count(), 0u);
  EXPECT_TRUE(std::isnan(h.Percentile(0.5)));
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 1; v <= 10; ++v) h.Record(v);
  EXPECT_EQ(h.Count(), 10u);
  EXPECT_EQ(h.Sum(), 55u);
  EXPECT_EQ(h.Max(), 10u);
  EXPECT_EQ(h.Percentile(0.5), 5.0);
  EXPECT_EQ(h.Percentile(0.9), 9.0);
  EXPECT_EQ(h.Percentile(1.0), 10.0);
  EXPECT_EQ(h.Percentile(0.0), 1.0);
}

TEST(HistogramTest, UniformDistributionWithinResolution) {
  Histogram h;
  std::vector<uint64_t> values;
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<uint64_t> dist(1, 1'000'000);
  for (int i = 0; i < 100'000; ++i) {
    values.push_back(dist(rng));
    h.Record(values.back());
  }
  for (double q : {0.5, 0.9, 0.99, 0.999}) ExpectWithin(h.Percentile(q), ExactQuantile(values, q), 1.0 / 32);
  EXPECT_EQ(h.Max(), *std::max_element(values.begin(), values.end()));
}

TEST(HistogramTest, LogNormalLatenciesWithinResolution) {
  // Latency-like: median around 400 µs, long tail into tens of milliseconds.
  Histogram h;
  std::vector<uint64_t> values;
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(/*m=*/6.0, /*s=*/1.2);
  for (int i = 0; i < 200'000; ++i) {
    values.push_back(static_cast<uint64_t>(dist(rng)) + 1);
    h.Record(values.back());
  }
  for (double q : {0.5, 0.99, 0.999}) ExpectWithin(h.Percentile(q), ExactQuantile(values, q), 1.0 / 32);
}

TEST(HistogramTest, TopPercentileNeverExceedsMax) {
  Histogram h;
  // 2^20 is the lowest value of a bucket 65536 wide, whose middle lies above it.
  h.Record(uint64_t{1} << 20);
  EXPECT_EQ(h.Percentile(0.999), 1048576.0);
}

TEST(HistogramTest, HugeValuesClampToLastBucket) {
  Histogram h;
  const uint64_t ten_hours_us = 36'000'000'000ULL;
  h.Record(ten_hours_us);
  EXPECT_EQ(h.Count(), 1u);
  EXPECT_EQ(h.Max(), ten_hours_us);
  EXPECT_EQ(h.Percentile(0.5), static_cast<double>(ten_hours_us));
}

TEST(HistogramTest, ConcurrentRecordSumsExactly) {
  Histogram h;
  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 250'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&h, t] {
      for (uint64_t i = 0; i < kPerThread; ++i) h.Record(i % 5000 + static_cast<uint64_t>(t));
    });
  }
  for (std::thread& th : threads) th.join();
  uint64_t expected_sum = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (uint64_t i = 0; i < kPerThread; ++i) expected_sum += i % 5000 + static_cast<uint64_t>(t);
  }
  EXPECT_EQ(h.Count(), kThreads * kPerThread);
  EXPECT_EQ(h.Sum(), expected_sum);
  EXPECT_EQ(h.Max(), 4999u + kThreads - 1);
}

TEST(MetricsTest, ConcurrentCounterAndGauge) {
  Counter c;
  Gauge g;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100'000; ++i) {
        c.Increment();
        g.Add(1);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(c.Value(), 400'000u);
  EXPECT_EQ(g.Value(), 400'000.0);
}

TEST(RegistryTest, SameNameAndLabelsGiveSameObject) {
  Registry r;
  Counter* a = r.GetCounter("requests_total", "Requests", {{"op", "put"}, {"status", "200"}});
  Counter* b = r.GetCounter("requests_total", "ignored", {{"status", "200"}, {"op", "put"}});
  Counter* c = r.GetCounter("requests_total", "Requests", {{"op", "get"}, {"status", "200"}});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(r.GetHistogram("lat_us", "Latency"), r.GetHistogram("lat_us", "Latency"));
  EXPECT_EQ(r.GetGauge("g", "G"), r.GetGauge("g", "G"));
}

TEST(RegistryTest, DefaultIsASingleton) { EXPECT_EQ(&Registry::Default(), &Registry::Default()); }

TEST(RegistryDeathTest, KindConflictAborts) {
  Registry r;
  r.GetCounter("x", "X");
  EXPECT_DEATH(r.GetGauge("x", "X"), "registered as a counter");
  EXPECT_DEATH(r.GetCounter("bad-name", "X"), "invalid metric name");
  EXPECT_DEATH(r.GetHistogram("h", "H", {{"quantile", "1"}}), "reserved");
}

TEST(RegistryTest, PrometheusTextIsExact) {
  Registry r;
  r.GetCounter("cairn_requests_total", "S3 requests served.", {{"op", "put"}, {"status", "200"}})->Increment(3);
  r.GetCounter("cairn_requests_total", "S3 requests served.", {{"op", "get"}, {"status", "404"}})->Increment();
  r.GetGauge("cairn_open_segments", "Open segment files.")->Set(12);
  r.GetGauge("cairn_disk_used_ratio", "Fraction of the disk in use.", {{"path", "/d\"1\\"}})->Set(0.375);
  Histogram* h = r.GetHistogram("cairn_put_latency_us", "Put latency in microseconds.\nEnd to end.", {{"op", "put"}});
  for (uint64_t v = 1; v <= 10; ++v) h->Record(v);
  r.GetHistogram("cairn_get_latency_us", "Get latency in microseconds.");  // empty

  EXPECT_EQ(r.PrometheusText(),
            "# HELP cairn_disk_used_ratio Fraction of the disk in use.\n"
            "# TYPE cairn_disk_used_ratio gauge\n"
            "cairn_disk_used_ratio{path=\"/d\\\"1\\\\\"} 0.375\n"
            "# HELP cairn_get_latency_us Get latency in microseconds.\n"
            "# TYPE cairn_get_latency_us summary\n"
            "cairn_get_latency_us{quantile=\"0.5\"} NaN\n"
            "cairn_get_latency_us{quantile=\"0.99\"} NaN\n"
            "cairn_get_latency_us{quantile=\"0.999\"} NaN\n"
            "cairn_get_latency_us_sum 0\n"
            "cairn_get_latency_us_count 0\n"
            "# HELP cairn_open_segments Open segment files.\n"
            "# TYPE cairn_open_segments gauge\n"
            "cairn_open_segments 12\n"
            "# HELP cairn_put_latency_us Put latency in microseconds.\\nEnd to end.\n"
            "# TYPE cairn_put_latency_us summary\n"
            "cairn_put_latency_us{op=\"put\",quantile=\"0.5\"} 5\n"
            "cairn_put_latency_us{op=\"put\",quantile=\"0.99\"} 10\n"
            "cairn_put_latency_us{op=\"put\",quantile=\"0.999\"} 10\n"
            "cairn_put_latency_us_sum{op=\"put\"} 55\n"
            "cairn_put_latency_us_count{op=\"put\"} 10\n"
            "# HELP cairn_requests_total S3 requests served.\n"
            "# TYPE cairn_requests_total counter\n"
            "cairn_requests_total{op=\"get\",status=\"404\"} 1\n"
            "cairn_requests_total{op=\"put\",status=\"200\"} 3\n");
}

TEST(RegistryTest, EmptyRegistryRendersNothing) {
  Registry r;
  EXPECT_EQ(r.PrometheusText(), "");
}

}  // namespace
}  // namespace cairn::metrics
