// The engine workload generator behind `cairn bench engine`: drives one engine::Engine on a
// directory with a named workload and reports throughput, latency percentiles, the machine and
// the method, as one JSON object or as a table.
//
// Workloads (in the manner of LevelDB's db_bench):
//   append  N threads each append fresh random 128-bit ids with a `size`-byte payload whose CRC32C
//           is computed once, for `duration_s` seconds. Every Append returns only once durable.
//   read    prefills chunks, closes and reopens the engine (no engine-side cache survives; the page
//           cache does unless direct reads are on), then N threads read random whole chunks.
//   mixed   like read, but each operation is a read with probability 0.7, else a fresh append.
//   reopen  fills `count` small chunks, closes the engine, then times Open and reports the index
//           memory, what recovery did and the process RSS.
// The benchmark writes only inside `dir` (created when missing) and deletes nothing.
//
// Thread-safety: RunEngineBench may be called from one thread at a time per directory; it runs
// its own worker threads internally.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/result.h"

namespace cairn::bench {

enum class Workload : uint8_t { kAppend, kRead, kMixed, kReopen };

// Parses "append", "read", "mixed", "reopen".
Result<Workload> ParseWorkload(std::string_view name);
std::string_view WorkloadName(Workload w);

struct EngineBenchOptions {
  // Engine directory; created when missing. Required.
  std::string dir;
  Workload workload = Workload::kAppend;
  // Payload bytes of each chunk. Default 4 KiB (64 bytes is a sensible choice for reopen).
  uint64_t size = 4096;
  // Worker threads issuing operations (append, read, mixed). Default 1.
  uint32_t concurrency = 1;
  // Appends each worker keeps in flight with Engine::AppendAsync (append workload only); 1 means
  // synchronous Append, one at a time. Default 1.
  uint32_t depth = 1;
  // Seconds the measured phase runs (append, read, mixed). Default 10.
  double duration_s = 10.0;
  // Chunks written before a read or mixed run; 0 means enough chunks of `size` to hold
  // max(1 GiB, 4 x concurrency chunks).
  uint64_t prefill = 0;
  // Chunks written before the reopen measurement. Default 10 million.
  uint64_t count = 10'000'000;
  // Threads used to write prefill and reopen chunks (many writers share a group commit).
  // Default 64.
  uint32_t fill_concurrency = 64;
  // The engine's configuration; direct_reads and io_backend are read from here too.
  EngineConfig engine;
};

// Runs the workload and returns the report. Keys common to every workload: workload, method (one
// line), dir, size, io_backend (the back end actually used), direct_io and direct_reads (as in
// effect, not as asked), machine {nproc, kernel, cpu_model, memory_bytes, filesystem,
// device_model}, engine (Stats() after the run). append/read/mixed add concurrency, duration_s
// (measured), ops, ops_per_sec, mb_per_sec (10^6 bytes), mean_us, p50_us, p99_us, p999_us,
// max_us, and prefill {chunks, seconds} for read/mixed; mixed also reports reads and appends
// separately. reopen adds count, fill {...}, open_ms, recovered_from_checkpoint,
// recovery_scanned_bytes, index_memory_bytes, index_bytes_per_chunk and rss_bytes_* (VmRSS).
// Any engine or I/O error ends the run and is returned.
Result<nlohmann::json> RunEngineBench(const EngineBenchOptions& options);

// Renders a report as a human-readable two-column table.
std::string FormatReportTable(const nlohmann::json& report);

}  // namespace cairn::bench
