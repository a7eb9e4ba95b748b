// The S3 load generator behind `cairn bench s3`, in the spirit of MinIO's warp: N worker threads,
// each with its own keep-alive connection (bench/s3_client.h), drive one S3 endpoint with a named
// operation and report throughput, latency percentiles and errors by HTTP status, with the
// machine and the method, as one JSON object or as a table.
//
// Operations:
//   put     PUT fresh objects of `size` bytes.
//   get     prefill `keys` objects, then GET random ones (every body's length is checked; each
//           worker's first body is compared with the payload byte for byte).
//   mixed   prefill, then 70% GET of prefilled objects / 30% PUT of fresh ones.
//   delete  prefill `keys` objects, then DELETE each once (the run ends early when none remain).
//   list    prefill `prefill_keys` objects, then list the whole bucket once with ListObjectsV2,
//           1000 keys a page, following continuation tokens; reports keys/s and page latency.
// The bucket is created when missing. Objects are named <prefix><worker>/<n>; the default prefix
// is "bench/<8 random hex>/", so runs sharing a bucket do not collide. Payloads are deterministic
// pseudo-random bytes, sent as UNSIGNED-PAYLOAD unless sign_payload; Content-MD5 only with
// content_md5. Unless cleanup is off, the objects a run created are deleted at the end (not
// timed). Latency runs from the first byte written to the last byte of the response read.
//
// Thread-safety: RunS3Bench may be called from any thread; it runs its own worker threads.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace cairn::bench {

enum class S3Op : uint8_t { kPut, kGet, kMixed, kDelete, kList };

// Parses "put", "get", "mixed", "delete", "list".
Result<S3Op> ParseS3Op(std::string_view name);
std::string_view S3OpName(S3Op op);

struct S3BenchOptions {
  // "http://host:port". Required.
  std::string endpoint;
  // Credentials for SigV4; both required.
  std::string access_key;
  std::string secret_key;
  std::string region = "us-east-1";
  // Created when missing. Required.
  std::string bucket;
  S3Op op = S3Op::kPut;
  // Object size in bytes (0 is allowed: empty objects). Default 4 KiB.
  uint64_t size = 4096;
  // Worker threads, one connection each. Default 1.
  uint32_t concurrency = 1;
  // How long the measured phase runs, in seconds; exclusive with `count`. When both are 0, 10 s.
  double duration_s = 0;
  // Operations in the measured phase, over all workers; exclusive with `duration_s`.
  uint64_t count = 0;
  // Objects prefilled for get, mixed and delete; 0 chooses: for get and mixed enough to hold
  // 1 GiB (at most 10000, at least `concurrency`); for delete `count`, or 10000 with a duration.
  uint64_t keys = 0;
  // Objects written before a list (op list only). Default 0: list what the bucket holds.
  uint64_t prefill_keys = 0;
  // Threads (connections) that prefill and clean up; 0 means max(concurrency, 16).
  uint32_t fill_concurrency = 0;
  // Key prefix; empty means "bench/<8 random hex>/".
  std::string prefix;
  // Send the payload's SHA-256 as x-amz-content-sha256 instead of UNSIGNED-PAYLOAD.
  bool sign_payload = false;
  // Send Content-MD5 with every PUT.
  bool content_md5 = false;
  // Delete the objects this run created once it is over. Default on.
  bool cleanup = true;
  // When positive, the server's process on this machine: its CPU time and RSS are read from
  // /proc before and after the measured phase.
  int server_pid = 0;
};

// Runs the benchmark and returns the report. Keys: op, method, endpoint, bucket, prefix, size,
// concurrency, machine {nproc, kernel, cpu_model, memory_bytes}, payload ("UNSIGNED-PAYLOAD" or
// "sha256", content_md5). put/get/mixed/delete add duration_s (measured), ops (successful),
// ops_per_sec, mb_per_sec (10^6 bytes of object data per second), mean_us, p50_us, p99_us,
// p999_us, max_us, errors {total, by_status {"403": n, "transport": n}, first}, reconnects,
// prefill {objects, seconds, ops_per_sec} when there was one, and for mixed per-operation
// figures under "get" and "put". list adds keys, pages, seconds, keys_per_sec and page latency.
// server {cpu_seconds, cpu_cores, rss_bytes_before, rss_bytes_after, hwm_bytes} when server_pid
// is set; cleanup {objects, seconds} when it ran.
// Errors: InvalidArgument (options), a failure to reach the endpoint or create the bucket, any
// failed prefill PUT, and a run in which some worker failed 100 operations in a row.
Result<nlohmann::json> RunS3Bench(const S3BenchOptions& options);

// Renders a report as a human-readable two-column table.
std::string FormatS3ReportTable(const nlohmann::json& report);

}  // namespace cairn::bench
