// The S3 load generator; see s3_bench.h for the operations and the report's keys.
//
// Layout of the objects a run touches: prefilled object i (get, mixed, delete, list) is
// <prefix><i % concurrency>/<i / concurrency>, so each worker's share sits under its own
// "directory"; fresh objects PUT by worker w during the run continue its numbering at
// ceil(keys / concurrency). Cleanup recomputes the names from the counts each worker kept.
//
// Thread-safety: the workers share the read-only payload and target, a few atomics and the
// first-error latch; each has its own S3Client and statistics until they are joined.
#include "bench/s3_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/s3_client.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/crypto.h"

namespace cairn::bench {
namespace {

using Json = nlohmann::json;

// Fraction of mixed operations that are GETs; the rest are PUTs of fresh objects.
constexpr double kMixedGetFraction = 0.7;
// The default get/mixed prefill holds this many bytes, within [concurrency, kMaxDefaultKeys]
// objects.
constexpr uint64_t kDefaultPrefillBytes = 1ull << 30;
constexpr uint64_t kMaxDefaultKeys = 10000;
// Objects prefilled for a timed delete run unless --keys says otherwise.
constexpr uint64_t kDefaultDeleteKeys = 10000;
constexpr uint32_t kMinFillConcurrency = 16;
constexpr double kDefaultDurationS = 10;
// A worker whose operations fail this many times in a row ends the run with an error.
constexpr uint64_t kMaxFailuresInRow = 100;
// Seed of the payload bytes: every run sends the same object contents.
constexpr uint64_t kPayloadSeed = 0x5EEDCA12B0B0F00Dull;
constexpr int kListPageKeys = 1000;
// How often a long prefill or cleanup logs its progress.
constexpr auto kProgressInterval = std::chrono::seconds(10);
constexpr size_t kRandomPrefixHexDigits = 8;

enum Kind : size_t { kGet = 0, kPut = 1, kDelete = 2, kNumKinds = 3 };
constexpr std::array<const char*, kNumKinds> kKindNames = {"get", "put", "delete"};

struct Payload {
  std::string bytes;
  std::string sha256_hex;  // set when payloads are signed
  std::string md5_base64;  // set when Content-MD5 is sent
};

// Where requests go and how they are made.
struct Target {
  Endpoint endpoint;
  ClientOptions client;
  std::string bucket;
  std::string prefix;
  uint32_t concurrency = 1;  // of the measured phase: fixes the prefilled objects' names
};

std::string Key(const Target& t, uint64_t worker, uint64_t n) { return fmt::format("{}{}/{}", t.prefix, worker, n); }

std::string PrefilledKey(const Target& t, uint64_t i) { return Key(t, i % t.concurrency, i / t.concurrency); }

Result<S3Client> ConnectTo(const Target& t) {
  S3Client client(t.client);
  CAIRN_RETURN_IF_ERROR(client.Connect(t.endpoint.host, t.endpoint.port));
  return client;
}

Request PutRequest(const Target& t, const std::string& key, const Payload& p) {
  Request r;
  r.method = "PUT";
  r.path = ObjectPath(t.bucket, key);
  r.body = p.bytes;
  r.content_sha256 = p.sha256_hex;  // empty: UNSIGNED-PAYLOAD
  if (!p.md5_base64.empty()) r.headers.emplace_back("content-md5", p.md5_base64);
  return r;
}

Request GetRequest(const Target& t, const std::string& key) {
  Request r;
  r.path = ObjectPath(t.bucket, key);
  r.discard_body = true;
  return r;
}

Request DeleteRequest(const Target& t, const std::string& key) {
  Request r;
  r.method = "DELETE";
  r.path = ObjectPath(t.bucket, key);
  return r;
}

// "PUT /b/k: 403 AccessDenied (message)".
std::string Describe(const Request& request, const Response& response) {
  std::string out = fmt::format("{} {}: {}", request.method, request.path, response.status);
  const std::string code = response.ErrorCode();
  if (!code.empty()) out += " " + code;
  const std::string message = response.ErrorMessage();
  if (!message.empty()) out += " (" + message + ")";
  return out;
}

// Sends a request that must succeed with one of the `ok` statuses.
Status Expect(S3Client& client, const Request& request, std::initializer_list<int> ok) {
  CAIRN_ASSIGN_OR_RETURN(const Response response, client.Send(request));
  if (std::find(ok.begin(), ok.end(), response.status) == ok.end()) {
    return Status::IOError("the server answered " + Describe(request, response));
  }
  return Status::OK();
}

// HEAD first (as warp does): an existing bucket needs no PUT.
Status EnsureBucket(S3Client& client, const Target& t) {
  Request r;
  r.method = "HEAD";
  r.path = ObjectPath(t.bucket, "");
  CAIRN_ASSIGN_OR_RETURN(const Response head, client.Send(r));
  if (head.status == 200) return Status::OK();
  r.method = "PUT";
  CAIRN_ASSIGN_OR_RETURN(const Response response, client.Send(r));
  if (response.status == 200) return Status::OK();
  if (response.status == 409 && response.ErrorCode() == "BucketAlreadyOwnedByYou") return Status::OK();
  return Status::IOError("create bucket: the server answered " + Describe(r, response));
}

// Runs fn(client, i) for every i in [0, n) on `threads` threads, each with its own connection,
// and returns the seconds it took. Stops at the first error and returns it.
Result<double> ParallelFor(const Target& t, uint32_t threads, uint64_t n, std::string_view what,
                           const std::function<Status(S3Client&, uint64_t)>& fn) {
  if (n == 0) return 0.0;
  threads = static_cast<uint32_t>(std::clamp<uint64_t>(n, 1, threads));
  std::vector<S3Client> clients;
  for (uint32_t i = 0; i < threads; ++i) {
    CAIRN_ASSIGN_OR_RETURN(S3Client c, ConnectTo(t));
    clients.push_back(std::move(c));
  }
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> done{0};
  std::atomic<uint32_t> running{threads};
  FirstError error;
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> workers;
  for (uint32_t w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      while (!error.failed()) {
        const uint64_t i = next.fetch_add(1, std::memory_order_relaxed);
        if (i >= n) break;
        const Status s = fn(clients[w], i);
        if (!s.ok()) {
          error.Set(s.WithContext(what));
          break;
        }
        done.fetch_add(1, std::memory_order_relaxed);
      }
      running.fetch_sub(1, std::memory_order_release);
    });
  }
  Clock::time_point last_report = start;
  while (running.load(std::memory_order_acquire) > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const Clock::time_point now = Clock::now();
    if (now - last_report >= kProgressInterval) {
      last_report = now;
      const uint64_t d = done.load(std::memory_order_relaxed);
      CAIRN_LOG_INFO("bench s3: {} {}/{} objects ({:.0f}/s)", what, d, n,
                     static_cast<double>(d) / Seconds(now - start));
    }
  }
  for (std::thread& w : workers) w.join();
  if (error.failed()) return error.status();
  return Seconds(Clock::now() - start);
}

Json FillReport(uint64_t objects, double seconds) {
  return Json{{"objects", objects},
              {"seconds", seconds},
              {"ops_per_sec", seconds > 0 ? static_cast<double>(objects) / seconds : 0.0}};
}

// ---------------------------------------------------------------------------------------------
// Timed runs

struct S3WorkerStats {
  std::array<metrics::Histogram, kNumKinds> latency;
  std::array<uint64_t, kNumKinds> ops{};
  std::array<uint64_t, kNumKinds> bytes{};
  std::map<std::string, uint64_t> errors;  // "403", "transport", "short-body", "corrupt"
  std::string first_error;
  uint64_t fresh_attempted = 0;  // fresh keys this worker PUT (or tried to)
  uint64_t delete_next = 0;      // n of this worker's next prefilled object to DELETE
  bool exhausted = false;        // delete: no prefilled object left for this worker
};

struct TimedSetup {
  const S3BenchOptions* options = nullptr;
  const Target* target = nullptr;
  const Payload* payload = nullptr;
  uint64_t keys = 0;         // prefilled objects
  uint64_t first_fresh = 0;  // n of the first fresh object of each worker
};

// One operation of a worker: builds the request, sends it, checks and records the outcome.
// Returns false when the operation failed.
bool DoOperation(const TimedSetup& setup, uint32_t worker, Kind kind, S3Client& client, S3WorkerStats& ws, Rng& rng,
                 bool* verified) {
  const Target& t = *setup.target;
  const std::string& payload = setup.payload->bytes;
  Request request;
  uint64_t offset = 0;
  bool mismatch = false;
  switch (kind) {
    case kGet: {
      request = GetRequest(t, PrefilledKey(t, rng.Below(setup.keys)));
      if (!*verified) {  // compare this worker's first body with the payload, as it streams in
        request.on_body = [&](std::string_view piece) {
          if (offset + piece.size() > payload.size() ||
              std::memcmp(payload.data() + offset, piece.data(), piece.size()) != 0) {
            mismatch = true;
          }
          offset += piece.size();
        };
      }
      break;
    }
    case kPut:
      request = PutRequest(t, Key(t, worker, setup.first_fresh + ws.fresh_attempted++), *setup.payload);
      break;
    case kDelete:
      request = DeleteRequest(t, Key(t, worker, ws.delete_next++));
      break;
    case kNumKinds:
      return false;
  }
  const Clock::time_point t0 = Clock::now();
  Result<Response> response = client.Send(request);
  const Clock::time_point t1 = Clock::now();

  std::string error;
  if (!response.ok()) {
    error = "transport";
    if (ws.first_error.empty())
      ws.first_error = fmt::format("{} {}: {}", request.method, request.path, response.status().ToString());
  } else {
    const int status = response->status;
    const bool status_ok = kind == kDelete ? (status == 204 || status == 200) : status == 200;
    if (!status_ok) {
      error = std::to_string(status);
      if (ws.first_error.empty()) ws.first_error = Describe(request, *response);
    } else if (kind == kGet && response->body_bytes != payload.size()) {
      error = "short-body";
      if (ws.first_error.empty()) {
        ws.first_error =
            fmt::format("GET {}: {} body bytes, expected {}", request.path, response->body_bytes, payload.size());
      }
    } else if (kind == kGet && !*verified) {
      *verified = true;
      if (mismatch) {
        error = "corrupt";
        if (ws.first_error.empty()) ws.first_error = "GET " + request.path + ": body differs from what was PUT";
      }
    }
  }
  if (!error.empty()) {
    ++ws.errors[error];
    return false;
  }
  ws.latency[kind].Record(ElapsedMicros(t0, t1));
  ++ws.ops[kind];
  if (kind != kDelete) ws.bytes[kind] += payload.size();
  return true;
}

// What each worker wrote or left behind, for cleanup.
struct WorkerLeftovers {
  uint64_t fresh = 0;    // fresh keys attempted: n in [first_fresh, first_fresh + fresh)
  uint64_t deleted = 0;  // prefilled objects with n below this were deleted (or tried)
};

struct TimedResult {
  Json report;
  std::vector<WorkerLeftovers> leftovers;  // one per worker
};

Result<TimedResult> RunTimed(const TimedSetup& setup, std::vector<S3Client>& clients) {
  const S3BenchOptions& o = *setup.options;
  const uint32_t n = o.concurrency;
  std::atomic<uint64_t> issued{0};
  FirstError abort;
  const ProcessSample server_before = o.server_pid > 0 ? SampleProcess(o.server_pid) : ProcessSample{};

  WorkerRun<S3WorkerStats> run = RunWorkers<S3WorkerStats>(
      n, o.count > 0 ? 0.0 : o.duration_s, [&](uint32_t w, S3WorkerStats& ws, Rng& rng, Clock::time_point deadline) {
        S3Client& client = clients[w];
        bool verified = false;
        uint64_t failures_in_row = 0;
        while (!abort.failed()) {
          Kind kind = kPut;
          switch (o.op) {
            case S3Op::kGet:
              kind = kGet;
              break;
            case S3Op::kMixed:
              kind = rng.Unit() < kMixedGetFraction ? kGet : kPut;
              break;
            case S3Op::kDelete:
              kind = kDelete;
              if (ws.delete_next * n + w >= setup.keys) {
                ws.exhausted = true;
                return;
              }
              break;
            case S3Op::kPut:
            case S3Op::kList:
              break;
          }
          if (o.count > 0 && issued.fetch_add(1, std::memory_order_relaxed) >= o.count) break;
          if (DoOperation(setup, w, kind, client, ws, rng, &verified)) {
            failures_in_row = 0;
          } else if (++failures_in_row >= kMaxFailuresInRow) {
            abort.Set(Status::IOError(fmt::format("worker {} failed {} operations in a row; first error: {}", w,
                                                  failures_in_row, ws.first_error)));
            break;
          }
          if (Clock::now() >= deadline) break;
        }
      });
  const ProcessSample server_after = o.server_pid > 0 ? SampleProcess(o.server_pid) : ProcessSample{};
  if (abort.failed()) return abort.status();

  const double elapsed = run.elapsed;
  LatencyMerge all;
  std::array<LatencyMerge, kNumKinds> by_kind;
  std::array<uint64_t, kNumKinds> bytes{};
  std::map<std::string, uint64_t> errors;
  uint64_t error_total = 0;
  std::string first_error;
  bool exhausted = false;
  for (const auto& ws : run.stats) {
    for (size_t k = 0; k < kNumKinds; ++k) {
      all.Add(ws->latency[k]);
      by_kind[k].Add(ws->latency[k]);
      bytes[k] += ws->bytes[k];
    }
    for (const auto& [what, count] : ws->errors) {
      errors[what] += count;
      error_total += count;
    }
    if (first_error.empty()) first_error = ws->first_error;
    exhausted = exhausted || ws->exhausted;
  }
  uint64_t reconnects = 0;
  for (const S3Client& c : clients) reconnects += c.reconnects();

  Json out;
  out["duration_s"] = elapsed;
  all.Report(out);
  const double total_bytes = static_cast<double>(bytes[kGet] + bytes[kPut]);
  out["ops_per_sec"] = static_cast<double>(all.count()) / elapsed;
  out["mb_per_sec"] = total_bytes / kBytesPerMb / elapsed;
  out["errors"] = Json{{"total", error_total}, {"by_status", errors}, {"first", first_error}};
  out["reconnects"] = reconnects;
  // With --count the run may end exactly as the objects do; only a timed run can run short.
  if (o.op == S3Op::kDelete && o.count == 0) out["ran_out_of_objects"] = exhausted;
  if (o.op == S3Op::kMixed) {
    for (size_t k : {kGet, kPut}) {
      Json part;
      by_kind[k].Report(part);
      part["ops_per_sec"] = static_cast<double>(by_kind[k].count()) / elapsed;
      part["mb_per_sec"] = static_cast<double>(bytes[k]) / kBytesPerMb / elapsed;
      out[kKindNames[k]] = part;
    }
  }
  if (o.server_pid > 0 && server_before.ok && server_after.ok) {
    const double cpu = server_after.cpu_seconds - server_before.cpu_seconds;
    out["server"] = Json{{"pid", o.server_pid},
                         {"cpu_seconds", cpu},
                         {"cpu_cores", cpu / elapsed},
                         {"rss_bytes_before", server_before.rss_bytes},
                         {"rss_bytes_after", server_after.rss_bytes},
                         {"hwm_bytes", server_after.hwm_bytes}};
  }
  TimedResult result{std::move(out), {}};
  for (const auto& ws : run.stats) result.leftovers.push_back({ws->fresh_attempted, ws->delete_next});
  return result;
}

// ---------------------------------------------------------------------------------------------
// Listing

size_t CountOccurrences(std::string_view text, std::string_view what) {
  size_t count = 0;
  for (size_t pos = text.find(what); pos != std::string_view::npos; pos = text.find(what, pos + what.size())) {
    ++count;
  }
  return count;
}

Result<Json> RunList(const S3BenchOptions& o, const Target& t) {
  CAIRN_ASSIGN_OR_RETURN(S3Client client, ConnectTo(t));
  metrics::Histogram page_latency;
  uint64_t keys = 0;
  uint64_t pages = 0;
  std::string token;
  const ProcessSample server_before = o.server_pid > 0 ? SampleProcess(o.server_pid) : ProcessSample{};
  const Clock::time_point start = Clock::now();
  while (true) {
    Request r;
    r.path = ObjectPath(t.bucket, "");
    r.query = fmt::format("list-type=2&max-keys={}", kListPageKeys);
    if (!token.empty()) r.query += "&continuation-token=" + gateway::UriEncode(token, /*keep_slash=*/false);
    const Clock::time_point t0 = Clock::now();
    CAIRN_ASSIGN_OR_RETURN(const Response response, client.Send(r));
    page_latency.Record(ElapsedMicros(t0, Clock::now()));
    if (response.status != 200) return Status::IOError("list: the server answered " + Describe(r, response));
    ++pages;
    keys += CountOccurrences(response.body, "<Contents>");
    if (XmlText(response.body, "IsTruncated") != "true") break;
    token = XmlText(response.body, "NextContinuationToken");
    if (token.empty()) return Status::IOError("list: IsTruncated is true but NextContinuationToken is missing");
  }
  const double seconds = Seconds(Clock::now() - start);
  const ProcessSample server_after = o.server_pid > 0 ? SampleProcess(o.server_pid) : ProcessSample{};

  Json out;
  out["keys"] = keys;
  out["pages"] = pages;
  out["seconds"] = seconds;
  out["keys_per_sec"] = seconds > 0 ? static_cast<double>(keys) / seconds : 0.0;
  Json page;
  LatencyMerge merge;
  merge.Add(page_latency);
  merge.Report(page);
  page.erase("ops");
  out["page"] = page;
  if (o.server_pid > 0 && server_before.ok && server_after.ok) {
    const double cpu = server_after.cpu_seconds - server_before.cpu_seconds;
    out["server"] = Json{{"pid", o.server_pid},
                         {"cpu_seconds", cpu},
                         {"cpu_cores", seconds > 0 ? cpu / seconds : 0.0},
                         {"rss_bytes_before", server_before.rss_bytes},
                         {"rss_bytes_after", server_after.rss_bytes},
                         {"hwm_bytes", server_after.hwm_bytes}};
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Options, payload, method

Status Validate(const S3BenchOptions& o) {
  if (o.endpoint.empty()) return Status::InvalidArgument("--endpoint is required");
  if (o.bucket.empty()) return Status::InvalidArgument("--bucket is required");
  if (o.access_key.empty() || o.secret_key.empty()) {
    return Status::InvalidArgument("--access-key and --secret-key are required");
  }
  if (o.concurrency == 0) return Status::InvalidArgument("--concurrency must be positive");
  if (o.duration_s < 0) return Status::InvalidArgument("--duration cannot be negative");
  if (o.duration_s > 0 && o.count > 0) return Status::InvalidArgument("give --duration or --count, not both");
  return Status::OK();
}

uint64_t DefaultKeys(const S3BenchOptions& o) {
  if (o.op == S3Op::kPut || o.op == S3Op::kList) return 0;
  if (o.keys > 0) return o.keys;
  switch (o.op) {
    case S3Op::kGet:
    case S3Op::kMixed: {
      const uint64_t by_bytes = o.size == 0 ? kMaxDefaultKeys : (kDefaultPrefillBytes + o.size - 1) / o.size;
      return std::max<uint64_t>(std::min(by_bytes, kMaxDefaultKeys), o.concurrency);
    }
    case S3Op::kDelete:
      return o.count > 0 ? o.count : kDefaultDeleteKeys;
    case S3Op::kPut:
    case S3Op::kList:
      return 0;
  }
  return 0;
}

std::string RandomPrefix() {
  Rng rng(RandomSeed());
  return fmt::format("bench/{:0{}x}/", rng.Next() & 0xFFFFFFFFull, kRandomPrefixHexDigits);
}

Payload MakePayload(const S3BenchOptions& o) {
  Payload p;
  p.bytes.resize(o.size);
  FillPseudoRandom(kPayloadSeed, std::as_writable_bytes(std::span(p.bytes.data(), p.bytes.size())));
  if (o.sign_payload) p.sha256_hex = crypto::HexEncode(crypto::Sha256(p.bytes));
  if (o.content_md5) p.md5_base64 = crypto::Base64Encode(crypto::Md5(p.bytes));
  return p;
}

std::string Method(const S3BenchOptions& o, const Target& t, uint64_t keys, uint32_t fill) {
  const std::string size = FormatByteSize(o.size);
  const std::string payload = o.sign_payload ? "x-amz-content-sha256 = SHA-256 of the payload (precomputed)"
                                             : "x-amz-content-sha256: UNSIGNED-PAYLOAD";
  const std::string md5 = o.content_md5 ? ", Content-MD5 (precomputed)" : "";
  const std::string span =
      o.count > 0 ? fmt::format("{} operations in all", o.count) : fmt::format("{}s", o.duration_s);
  std::string what;
  switch (o.op) {
    case S3Op::kPut:
      what = fmt::format("PUT fresh objects of {} ({}{})", size, payload, md5);
      break;
    case S3Op::kGet:
      what = fmt::format(
          "prefill {} objects of {} with {} threads, then GET random ones whole (length checked; each "
          "worker's first body compared byte for byte)",
          keys, size, fill);
      break;
    case S3Op::kMixed:
      what = fmt::format(
          "prefill {} objects of {} with {} threads, then {:.0f}% GET of random prefilled objects / "
          "{:.0f}% PUT of fresh ones ({}{})",
          keys, size, fill, kMixedGetFraction * 100, (1 - kMixedGetFraction) * 100, payload, md5);
      break;
    case S3Op::kDelete:
      what = fmt::format("prefill {} objects of {} with {} threads, then DELETE each at most once", keys, size, fill);
      break;
    case S3Op::kList:
      return fmt::format(
          "prefill {} objects of {} with {} threads, then list the whole bucket once on one "
          "keep-alive connection: ListObjectsV2, max-keys {}, following continuation tokens; keys/s "
          "= <Contents> entries / wall time of the pass",
          o.prefill_keys, size, fill, kListPageKeys);
  }
  return fmt::format(
      "{} worker{}, one keep-alive HTTP/1.1 connection each, SigV4 header auth, path-style {}/{}; {} "
      "for {}; latency from the first request byte written to the last response byte read; ops/s "
      "and MB/s (10^6 B of object data) count successful operations only",
      o.concurrency, o.concurrency == 1 ? "" : "s", t.bucket, t.prefix + "<worker>/<n>", what, span);
}

// Deletes what the run created or left: prefilled objects not deleted by the run and every fresh
// key a worker tried to PUT.
// `leftovers` is empty when no timed run happened (list).
Result<Json> Cleanup(const Target& t, uint32_t threads, uint64_t keys, const std::vector<WorkerLeftovers>& leftovers) {
  std::vector<WorkerLeftovers> left = leftovers;
  left.resize(t.concurrency);
  std::vector<std::string> names;
  const uint64_t first_fresh = (keys + t.concurrency - 1) / t.concurrency;
  for (uint64_t i = 0; i < keys; ++i) {
    if (i / t.concurrency >= left[i % t.concurrency].deleted) names.push_back(PrefilledKey(t, i));
  }
  for (uint32_t w = 0; w < t.concurrency; ++w) {
    for (uint64_t j = 0; j < left[w].fresh; ++j) names.push_back(Key(t, w, first_fresh + j));
  }
  CAIRN_ASSIGN_OR_RETURN(const double seconds,
                         ParallelFor(t, threads, names.size(), "cleanup", [&](S3Client& c, uint64_t i) {
                           return Expect(c, DeleteRequest(t, names[i]), {200, 204, 404});
                         }));
  return FillReport(names.size(), seconds);
}

}  // namespace

Result<S3Op> ParseS3Op(std::string_view name) {
  if (name == "put") return S3Op::kPut;
  if (name == "get") return S3Op::kGet;
  if (name == "mixed") return S3Op::kMixed;
  if (name == "delete") return S3Op::kDelete;
  if (name == "list") return S3Op::kList;
  return Status::InvalidArgument(fmt::format("unknown op \"{}\" (expected put, get, mixed, delete, list)", name));
}

std::string_view S3OpName(S3Op op) {
  switch (op) {
    case S3Op::kPut:
      return "put";
    case S3Op::kGet:
      return "get";
    case S3Op::kMixed:
      return "mixed";
    case S3Op::kDelete:
      return "delete";
    case S3Op::kList:
      return "list";
  }
  return "unknown";
}

Result<Json> RunS3Bench(const S3BenchOptions& input) {
  CAIRN_RETURN_IF_ERROR(Validate(input));
  S3BenchOptions o = input;
  if (o.duration_s == 0 && o.count == 0) o.duration_s = kDefaultDurationS;
  Target t;
  CAIRN_ASSIGN_OR_RETURN(t.endpoint, ParseEndpoint(o.endpoint));
  t.client.credentials = {o.access_key, o.secret_key};
  t.client.region = o.region;
  t.bucket = o.bucket;
  t.prefix = o.prefix.empty() ? RandomPrefix() : o.prefix;
  t.concurrency = o.concurrency;
  const uint32_t fill = o.fill_concurrency > 0 ? o.fill_concurrency : std::max(o.concurrency, kMinFillConcurrency);
  const uint64_t keys = o.op == S3Op::kList ? o.prefill_keys : DefaultKeys(o);
  const Payload payload = MakePayload(o);

  CAIRN_ASSIGN_OR_RETURN(S3Client control, ConnectTo(t));
  CAIRN_RETURN_IF_ERROR(EnsureBucket(control, t));

  Json report;
  report["op"] = S3OpName(o.op);
  report["method"] = Method(o, t, keys, fill);
  report["endpoint"] = o.endpoint;
  report["bucket"] = o.bucket;
  report["prefix"] = t.prefix;
  report["size"] = o.size;
  report["concurrency"] = o.concurrency;
  report["payload"] = o.sign_payload ? "sha256" : "UNSIGNED-PAYLOAD";
  report["content_md5"] = o.content_md5;
  report["machine"] = MachineInfo();

  if (keys > 0) {
    CAIRN_ASSIGN_OR_RETURN(const double seconds, ParallelFor(t, fill, keys, "prefill", [&](S3Client& c, uint64_t i) {
                             return Expect(c, PutRequest(t, PrefilledKey(t, i), payload), {200});
                           }));
    report["prefill"] = FillReport(keys, seconds);
  }

  std::vector<WorkerLeftovers> leftovers;
  if (o.op == S3Op::kList) {
    CAIRN_ASSIGN_OR_RETURN(Json run, RunList(o, t));
    report.update(run);
  } else {
    std::vector<S3Client> clients;
    for (uint32_t w = 0; w < o.concurrency; ++w) {
      CAIRN_ASSIGN_OR_RETURN(S3Client c, ConnectTo(t));
      clients.push_back(std::move(c));
    }
    TimedSetup setup;
    setup.options = &o;
    setup.target = &t;
    setup.payload = &payload;
    setup.keys = keys;
    setup.first_fresh = (keys + o.concurrency - 1) / o.concurrency;
    CAIRN_ASSIGN_OR_RETURN(TimedResult run, RunTimed(setup, clients));
    report.update(run.report);
    leftovers = std::move(run.leftovers);
  }

  if (o.cleanup) {
    CAIRN_ASSIGN_OR_RETURN(Json cleanup, Cleanup(t, fill, keys, leftovers));
    report["cleanup"] = std::move(cleanup);
  }
  return report;
}

std::string FormatS3ReportTable(const Json& report) {
  return FormatTable("cairn bench s3", report,
                     {"op", "size", "concurrency", "duration_s", "ops_per_sec", "mb_per_sec", "p50_us", "p99_us",
                      "p999_us", "keys", "seconds", "keys_per_sec"});
}

}  // namespace cairn::bench
