// EtcdClient: a blocking etcd v3 client that speaks etcd's HTTP/JSON gateway (etcd 3.4).
//
// Cluster state lives in etcd (ARCHITECTURE decision 3, docs/design/cluster.md). This client covers
// what Cairn needs of it: keys (get, prefix scans, put, delete), transactions (the fencing
// primitive: compare mod_revision / create_revision / version / value / lease, then write),
// leases (grant, one keepalive at a time, time-to-live, revoke) and watches of a prefix.
//
// Wire: each call is one HTTP/1.1 POST of a JSON document to /v3/<service>/<method> on one of the
// endpoints; keys and values travel base64-encoded, int64 fields as JSON strings (etcd's gateway
// writes them so, and omits every field that holds its zero value: a missing "succeeded" is false,
// a missing "lease" is 0). Watches read /v3/watch, a chunked response that carries one JSON
// document per line for as long as the watch lives. Every request carries the gRPC metadata
// "hasleader: true", so a member cut off from its cluster's leader refuses at once
// (Unavailable) instead of answering stale or hanging.
//
// Endpoints and failover: endpoints are tried in order, starting with the last one that answered;
// an endpoint that cannot be connected to, or (for a read) fails at the transport or answers
// Unavailable, passes the call to the next. Idle keep-alive connections are pooled per endpoint,
// so calls from many threads run in parallel without a connect each.
//
// Timeouts: every call, failover included, ends within EtcdOptions::request_timeout (sockets are
// non-blocking and every wait is a poll(2) bounded by the call's deadline); one TCP connect waits
// at most connect_timeout, so that an unreachable endpoint does not use up the whole call.
// Resolving a host name (getaddrinfo) is the one wait not bounded; use addresses for endpoints.
//
// Errors: IOError when no endpoint answers (the message names each endpoint and what it said),
// Timeout when the deadline passed, and etcd's own refusals mapped from their gRPC codes:
// NotFound (no such lease; a revision that was compacted away), InvalidArgument (a request etcd
// rejects, e.g. an empty key), Busy (etcd's quota or rate limit), IOError (etcd unavailable, e.g.
// no leader), Internal (anything else). The message carries the endpoint and etcd's text.
// A write (put, delete, txn, lease grant/revoke, compact) is never sent twice: once its request
// was written to a socket, a failure is returned as it is, and the write may or may not have
// been applied. Re-read to learn which; a fenced transaction (compare on the revisions read) is
// safe to retry, because it fails if its first attempt was applied.
//
// Thread-safety: every EtcdClient method is thread-safe. An EtcdWatch runs its callbacks on a
// thread of its own; Cancel and the destructor stop that thread and join it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"
#include "common/status.h"

namespace cairn::cluster {

// One key as etcd stores it. Revisions are etcd's store revisions (one per transaction, counting
// up from 1 for the whole cluster).
struct EtcdKv {
  std::string key;              // any bytes
  std::string value;            // any bytes
  int64_t create_revision = 0;  // the revision that created the key (since its last deletion)
  int64_t mod_revision = 0;     // the revision of its last change
  int64_t version = 0;          // number of puts since creation (1 after the first)
  int64_t lease = 0;            // the lease it is bound to, 0 for none
};

struct EtcdOptions {
  // "http://host:port" or "host:port", tried in this order. Required; https is not supported.
  std::vector<std::string> endpoints;
  // Upper bound of one call, from start to answer, across every endpoint it tries. Default 2 s.
  std::chrono::milliseconds request_timeout{2000};
  // Upper bound of one TCP connect to one endpoint (never past the call's deadline). Default 0.5 s.
  std::chrono::milliseconds connect_timeout{500};
};

// The answer to a read of one key or a range of keys.
struct EtcdRange {
  std::vector<EtcdKv> kvs;  // in key order; empty when nothing matched
  int64_t count = 0;        // keys in the range, including those a limit left out
  int64_t revision = 0;     // the store revision the read saw
  bool more = false;        // a limit left keys out
};

// The answer to a delete.
struct EtcdDeleted {
  int64_t deleted = 0;   // keys deleted
  int64_t revision = 0;  // the store revision after the delete
};

struct EtcdLease {
  int64_t id = 0;
  int64_t ttl_seconds = 0;  // as granted: etcd raises a TTL below its minimum (1-2 s, set by its raft timing)
};

// One comparison of a transaction: "<target of key> <op> <operand>". A missing key has value "",
// version, create_revision and mod_revision 0, and lease 0.
struct EtcdCompare {
  enum class Target { kValue, kVersion, kCreateRevision, kModRevision, kLease };
  enum class Op { kEqual, kNotEqual, kLess, kGreater };

  std::string key;
  Target target = Target::kModRevision;
  Op op = Op::kEqual;
  int64_t number = 0;  // the operand for every target but kValue
  std::string value;   // the operand for kValue

  static EtcdCompare Value(std::string key, Op op, std::string value);
  static EtcdCompare Version(std::string key, Op op, int64_t version);
  static EtcdCompare CreateRevision(std::string key, Op op, int64_t revision);
  static EtcdCompare ModRevision(std::string key, Op op, int64_t revision);
  static EtcdCompare Lease(std::string key, Op op, int64_t lease);
};

// One operation of a transaction branch.
struct EtcdOp {
  enum class Type { kPut, kDelete, kRange };

  Type type = Type::kRange;
  std::string key;
  bool prefix = false;  // kDelete and kRange: every key that starts with `key`
  std::string value;    // kPut
  int64_t lease = 0;    // kPut: the lease to bind the key to, 0 for none

  static EtcdOp Put(std::string key, std::string value, int64_t lease = 0);
  static EtcdOp Delete(std::string key);
  static EtcdOp DeletePrefix(std::string prefix);
  static EtcdOp Get(std::string key);
  static EtcdOp GetPrefix(std::string prefix);
};

struct EtcdTxnResult {
  bool succeeded = false;  // every comparison held, and the success branch ran
  int64_t revision = 0;    // the store revision after the transaction
  // The answer of each kRange op of the branch that ran, in the order of the ops.
  std::vector<EtcdRange> ranges;
};

struct EtcdWatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  // The key after a put; after a delete only its key and mod_revision (the deletion's revision).
  EtcdKv kv;
  int64_t revision = 0;  // the revision of this change (kv.mod_revision)
};

class EtcdWatch;

class EtcdClient {
 public:
  // Checks that one of the endpoints answers as an etcd server (bounded by request_timeout).
  // Errors: InvalidArgument or NotSupported for a malformed or https endpoint, IOError or
  // Timeout when none answers.
  static Result<std::unique_ptr<EtcdClient>> Connect(EtcdOptions options);

  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // Sets `key` to `value`, bound to `lease` when it is not 0 (NotFound when that lease does not
  // exist). Returns the store revision of the put.
  Result<int64_t> Put(std::string_view key, std::string_view value, int64_t lease = 0);
  // Reads one key: kvs is empty when it does not exist.
  Result<EtcdRange> Get(std::string_view key);
  // Reads every key that starts with `prefix` ("" for all keys), in key order; at most `limit`
  // of them when limit > 0.
  Result<EtcdRange> GetPrefix(std::string_view prefix, int64_t limit = 0);
  Result<EtcdDeleted> Delete(std::string_view key);
  Result<EtcdDeleted> DeletePrefix(std::string_view prefix);

  // Atomically: when every comparison holds, runs `success`, else `failure`. A key may be written
  // at most once per branch (etcd refuses the transaction otherwise: InvalidArgument).
  Result<EtcdTxnResult> Txn(const std::vector<EtcdCompare>& compares, const std::vector<EtcdOp>& success,
                            const std::vector<EtcdOp>& failure);

  // Grants a lease of `ttl_seconds`; its id is chosen by etcd.
  Result<EtcdLease> LeaseGrant(int64_t ttl_seconds);
  // Renews the lease once and returns its TTL in seconds, counted by etcd from when it processed
  // the renewal, which is after this call started: the lease lives at least until
  // start-of-call + TTL. NotFound when the lease has expired or was revoked.
  Result<int64_t> LeaseKeepAlive(int64_t id);
  // Revokes the lease and deletes every key bound to it. NotFound when it does not exist.
  Status LeaseRevoke(int64_t id);
  // The lease's remaining time to live in seconds. NotFound when it has expired or was revoked.
  Result<int64_t> LeaseTimeToLive(int64_t id);

  // Discards the history before `revision`: watches and reads of older revisions then fail with
  // NotFound. NotFound too when `revision` was already compacted away.
  Status Compact(int64_t revision);

  // Watches every key that starts with `prefix`: `on_event` receives each change from
  // `start_revision` on (0: from now), in revision order, on the watch's own thread. Returns once
  // etcd has confirmed the watch. The watch ends at its first error, reported once through
  // `on_error` (on the same thread), after which no callback runs: NotFound when etcd has
  // compacted the history past start_revision (re-read, then watch from the revision read + 1),
  // IOError when the stream breaks (watch again from the last revision seen + 1). A dead peer is
  // noticed through TCP keepalive within about 30 s. The callbacks must not throw, nor destroy or
  // cancel their own watch. The watch does not need the client to outlive it. Errors of the
  // call itself are those of the other calls (IOError, Timeout; InvalidArgument when etcd refuses).
  Result<std::unique_ptr<EtcdWatch>> Watch(std::string_view prefix, int64_t start_revision,
                                           std::function<void(const EtcdWatchEvent&)> on_event,
                                           std::function<void(const Status&)> on_error);

  // Implementation types, defined in etcd.cc.
  struct Endpoint;
  struct Reply;

 private:
  EtcdClient(EtcdOptions options, std::vector<Endpoint> endpoints);

  // Posts `body` to `path` and returns etcd's JSON answer as text, failing over across endpoints
  // (see the file comment). `idempotent`: the request may be sent again to another endpoint after
  // a transport failure.
  Result<std::string> Call(std::string_view path, const std::string& body, bool idempotent);
  // One attempt on one endpoint. Sets *sent once the whole request was written.
  Result<Reply> Exchange(size_t endpoint, std::string_view request, std::chrono::steady_clock::time_point deadline,
                         bool* sent);
  // An idle pooled connection to the endpoint whose peer has not closed it, or -1.
  int TakeIdle(size_t endpoint);
  void ReturnIdle(size_t endpoint, int fd);

  const EtcdOptions options_;
  const std::vector<Endpoint> endpoints_;
  std::atomic<size_t> preferred_{0};  // the endpoint that answered last; calls start there

  std::mutex mu_;
  std::vector<std::vector<int>> idle_;  // GUARDED_BY(mu_): per endpoint, idle keep-alive sockets
};

// A running watch (see EtcdClient::Watch). Destroying it cancels it.
class EtcdWatch {
 public:
  ~EtcdWatch();
  EtcdWatch(const EtcdWatch&) = delete;
  EtcdWatch& operator=(const EtcdWatch&) = delete;

  // Stops the watch and waits for its thread: no callback runs once Cancel returns, and the
  // cancellation itself is not reported. Idempotent. REQUIRES: not called from the watch's own
  // callbacks.
  void Cancel();

  // Implementation type, defined in etcd.cc: the socket, the HTTP parser and the unread bytes.
  struct Stream;

 private:
  friend class EtcdClient;
  EtcdWatch(std::unique_ptr<Stream> stream, std::function<void(const EtcdWatchEvent&)> on_event,
            std::function<void(const Status&)> on_error);
  void Run();

  std::unique_ptr<Stream> stream_;
  std::function<void(const EtcdWatchEvent&)> on_event_;
  std::function<void(const Status&)> on_error_;
  std::atomic<bool> stopping_{false};
  std::mutex cancel_mu_;  // serializes Cancel
  std::thread thread_;
};

}  // namespace cairn::cluster
