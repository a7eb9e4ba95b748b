// Time and randomness behind interfaces, so that tests control them.
//
// SystemClock reads the real clocks; ManualClock is advanced by the test. Random is a seeded
// generator: the same seed gives the same sequence, so a failing test replays from its seed.
// Thread-safety: SystemClock is stateless; ManualClock is thread-safe; Random is not (one per
// thread or guarded by the caller).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

namespace cairn::io {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time in microseconds, for durations and deadlines.
  virtual uint64_t NowMicros() = 0;
  // Wall-clock time in microseconds since the Unix epoch, for timestamps shown to people.
  virtual uint64_t WallMicros() = 0;
};

class SystemClock final : public Clock {
 public:
  uint64_t NowMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  uint64_t WallMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static SystemClock* Default() {
    static SystemClock clock;
    return &clock;
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(uint64_t start_micros = 0) : now_(start_micros) {}
  uint64_t NowMicros() override { return now_.load(std::memory_order_relaxed); }
  uint64_t WallMicros() override { return now_.load(std::memory_order_relaxed); }
  void Advance(uint64_t micros) { now_.fetch_add(micros, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> now_;
};

class Random {
 public:
  explicit Random(uint64_t seed) : gen_(seed) {}
  uint64_t Next() { return gen_(); }
  // Uniform in [0, n). REQUIRES: n > 0.
  uint64_t Uniform(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(gen_); }
  // True with probability p.
  bool OneIn(double p) { return std::uniform_real_distribution<double>(0.0, 1.0)(gen_) < p; }

 private:
  std::mt19937_64 gen_;
};

}  // namespace cairn::io
