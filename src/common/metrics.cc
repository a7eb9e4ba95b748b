// Metrics registry and Prometheus rendering; the bucket arithmetic of Histogram.
//
// Thread-safety: see metrics.h. The registry's maps are guarded by mu_; the metric objects they
// own are atomics and need no lock, so PrometheusText reads them under mu_ only to walk the maps.
#include "common/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace cairn::metrics {
namespace {

constexpr std::array<double, 3> kQuantiles = {0.5, 0.99, 0.999};
constexpr std::array<std::string_view, 3> kQuantileLabels = {"0.5", "0.99", "0.999"};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "metrics: %s\n", message.c_str());
  std::abort();
}

bool IsMetricNameChar(char c, bool first) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  return alpha || (!first && c >= '0' && c <= '9');
}

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsMetricNameChar(name[i], i == 0)) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  // Like a metric name without ':'.
  return IsValidMetricName(name) && name.find(':') == std::string_view::npos;
}

// Sorts by label name and checks the names; aborts on a programming error.
Labels Canonical(std::string_view metric, Labels labels, bool is_histogram) {
  std::sort(labels.begin(), labels.end());
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string& label = labels[i].first;
    if (!IsValidLabelName(label)) Die(fmt::format("{}: invalid label name \"{}\"", metric, label));
    if (i > 0 && labels[i - 1].first == label) Die(fmt::format("{}: label \"{}\" given twice", metric, label));
    if (is_histogram && label == "quantile") Die(fmt::format("{}: label \"quantile\" is reserved", metric));
  }
  return labels;
}

// Escapes a label value: backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Escapes HELP text: backslash and newline.
std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="1",b="2"} with an optional extra label last; empty when there are no labels at all.
std::string RenderLabels(const Labels& labels, std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += fmt::format("{}=\"{}\"", name, EscapeLabelValue(value));
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += fmt::format("{}=\"{}\"", extra_name, EscapeLabelValue(extra_value));
  }
  out += '}';
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

template <typename T>
T* GetOrCreate(std::map<Labels, std::unique_ptr<T>>& series, Labels labels) {
  std::unique_ptr<T>& slot = series[std::move(labels)];
  if (slot == nullptr) slot = std::make_unique<T>();
  return slot.get();
}

}  // namespace

// ---- Histogram ----

size_t Histogram::BucketIndex(uint64_t value) {
  if (value < kSubBuckets) return static_cast<size_t>(value);
  const unsigned exponent = static_cast<unsigned>(std::bit_width(value)) - 1;  // >= kSubBucketBits
  if (exponent >= kMaxExponent) return kNumBuckets - 1;
  const unsigned shift = exponent - kSubBucketBits;
  const uint64_t sub = (value >> shift) - kSubBuckets;  // the leading 1 removed: [0, kSubBuckets)
  return static_cast<size_t>(kSubBuckets + shift * kSubBuckets + sub);
}

uint64_t Histogram::BucketLower(size_t index) {
  if (index < kSubBuckets) return index;
  const uint64_t group = (index - kSubBuckets) / kSubBuckets;  // = exponent - kSubBucketBits
  const uint64_t sub = (index - kSubBuckets) % kSubBuckets;
  return (kSubBuckets + sub) << group;
}

uint64_t Histogram::BucketWidth(size_t index) {
  if (index < kSubBuckets) return 1;
  return uint64_t{1} << ((index - kSubBuckets) / kSubBuckets);
}

uint64_t Histogram::Count() const {
  uint64_t total = 0;
  for (const auto& b : buckets_) total += b.load(std::memory_order_relaxed);
  return total;
}

Histogram::Snapshot Histogram::TakeSnapshot() const {
  Snapshot snap;
  for (size_t i = 0; i < kNumBuckets; ++i) {
    snap.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    snap.count += snap.buckets[i];
  }
  snap.sum = sum_.load(std::memory_order_relaxed);
  snap.max = max_.load(std::memory_order_relaxed);
  return snap;
}

double Histogram::Snapshot::Percentile(double q) const {
  if (count == 0) return std::numeric_limits<double>::quiet_NaN();
  q = std::isnan(q) ? 0.0 : std::clamp(q, 0.0, 1.0);
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count))));
  uint64_t seen = 0;
  for (size_t i = 0; i < kNumBuckets; ++i) {
    seen += buckets[i];
    if (seen < rank) continue;
    if (i == kNumBuckets - 1) return static_cast<double>(max);  // the overflow bucket has no upper bound
    const double middle = static_cast<double>(BucketLower(i)) + static_cast<double>(BucketWidth(i) - 1) / 2.0;
    return std::min(middle, static_cast<double>(max));
  }
  return static_cast<double>(max);  // unreachable while count is the sum of buckets
}

// ---- Registry ----

std::string_view Registry::KindName(Kind kind) {
  switch (kind) {
    case Kind::kCounter:
      return "counter";
    case Kind::kGauge:
      return "gauge";
    case Kind::kHistogram:
      break;
  }
  return "summary";
}

Registry::Registry() = default;
Registry::~Registry() = default;

Registry& Registry::Default() {
  static Registry* const registry = new Registry;  // leaked on purpose: see metrics.h
  return *registry;
}

Registry::Family& Registry::FamilyFor(std::string_view name, std::string_view help, Kind kind) {
  if (!IsValidMetricName(name)) Die(fmt::format("invalid metric name \"{}\"", name));
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{kind, std::string(help), {}, {}, {}}).first;
  }
  if (it->second.kind != kind) {
    Die(fmt::format("{} registered as a {} and requested as a {}", name, KindName(it->second.kind), KindName(kind)));
  }
  return it->second;
}

Counter* Registry::GetCounter(std::string_view name, std::string_view help, Labels labels) {
  Labels canonical = Canonical(name, std::move(labels), /*is_histogram=*/false);
  std::lock_guard<std::mutex> lock(mu_);
  return GetOrCreate(FamilyFor(name, help, Kind::kCounter).counters, std::move(canonical));
}

Gauge* Registry::GetGauge(std::string_view name, std::string_view help, Labels labels) {
  Labels canonical = Canonical(name, std::move(labels), /*is_histogram=*/false);
  std::lock_guard<std::mutex> lock(mu_);
  return GetOrCreate(FamilyFor(name, help, Kind::kGauge).gauges, std::move(canonical));
}

Histogram* Registry::GetHistogram(std::string_view name, std::string_view help, Labels labels) {
  Labels canonical = Canonical(name, std::move(labels), /*is_histogram=*/true);
  std::lock_guard<std::mutex> lock(mu_);
  return GetOrCreate(FamilyFor(name, help, Kind::kHistogram).histograms, std::move(canonical));
}

std::string Registry::PrometheusText() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    out += fmt::format("# HELP {} {}\n", name, EscapeHelp(family.help));
    out += fmt::format("# TYPE {} {}\n", name, KindName(family.kind));
    switch (family.kind) {
      case Kind::kCounter:
        for (const auto& [labels, counter] : family.counters) {
          out += fmt::format("{}{} {}\n", name, RenderLabels(labels), counter->Value());
        }
        break;
      case Kind::kGauge:
        for (const auto& [labels, gauge] : family.gauges) {
          out += fmt::format("{}{} {}\n", name, RenderLabels(labels), FormatValue(gauge->Value()));
        }
        break;
      case Kind::kHistogram:
        for (const auto& [labels, histogram] : family.histograms) {
          const Histogram::Snapshot snap = histogram->TakeSnapshot();
          for (size_t i = 0; i < kQuantiles.size(); ++i) {
            out += fmt::format("{}{} {}\n", name, RenderLabels(labels, "quantile", kQuantileLabels[i]),
                               FormatValue(snap.Percentile(kQuantiles[i])));
          }
          const std::string rendered = RenderLabels(labels);
          out += fmt::format("{}_sum{} {}\n", name, rendered, snap.sum);
          out += fmt::format("{}_count{} {}\n", name, rendered, snap.count);
        }
        break;
    }
  }
  return out;
}

}  // namespace cairn::metrics
