// ChainClient: writes and reads of chain-replicated keys, from any process holding the cluster
// secret (a node's gateway, a test, a tool).
//
// A write goes to the head of the chain's current view with a fresh operation id, and is retried
// with the same id (so it applies at most once) until a head answers OK or the call's deadline
// passes: after a refusal (Busy: a stale or unseen version, a fenced or syncing replica) or a
// lost answer, the client asks the caller to re-read the chain table and tries the then-current
// head. A read goes to any serving member, a different one on each attempt. The answer is
// OK only when the chain committed it (chain.h): a timed-out write may or may not have applied,
// exactly as the design says for writes in flight (docs/design/cluster.md, "Writes").
//
// Connections are opened on first use, one per node, authenticated with the cluster secret.
// Thread-safety: every method is thread-safe; calls from many threads share the connections.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"
#include "net/connection.h"
#include "replication/chain.h"

namespace cairn::replication {

struct ChainClientOptions {
  std::string name;    // the id this client's handshakes present
  std::string secret;  // the cluster secret
  // One attempt waits this long for its answer.
  std::chrono::milliseconds attempt_timeout{1000};
  // A call gives up (Timeout) after this long.
  std::chrono::milliseconds deadline{10000};
  // The caller's copy of the chain table and of the nodes' RPC addresses and names (a connection
  // is used only when the node that answers proves to be the one named).
  std::function<std::optional<ChainView>(ChainId)> view;
  std::function<std::optional<PeerAddress>(NodeId)> address;
  // A replica refused the version the client used, or did not answer: re-read the table.
  std::function<void(ChainId)> refresh;
  // True: stop retrying (the caller's node left the cluster): a call fails at once with Timeout
  // (for a write, its outcome is unknown). Null: never.
  std::function<bool()> abandoned;
};

class ChainClient {
 public:
  explicit ChainClient(ChainClientOptions options);
  ~ChainClient();
  ChainClient(const ChainClient&) = delete;
  ChainClient& operator=(const ChainClient&) = delete;

  // Runs a command of the chain's state machine (state_machine.h) and returns once it is
  // committed, with its result. `op`: the operation id (0: a random one), sent with every retry;
  // reusing the id of an applied command returns its recorded result while the chain keeps it
  // (ReplicaOptions::op_retention_ms: each call stamps the time of its own first attempt, so a
  // call reusing an id much later is refused with Timeout, or, once the result is forgotten and
  // the stamp is recent, applied again).
  Result<WriteResult> Execute(ChainId chain, const std::string& command, OpId op = 0);
  // Stores a blob on every replica of `chain` (durable everywhere when it returns OK); with a
  // command, atomically with it. Corruption when its CRC does not match its bytes.
  Result<WriteResult> PutBlob(ChainId chain, Blob blob, OpId op = 0);
  // Deletes blobs from every replica (absent ones are no error).
  Result<WriteResult> DropBlobs(ChainId chain, std::vector<std::string> ids, OpId op = 0);
  // Bytes [offset, offset + length) of a blob, from a serving replica. A replica that lacks the
  // blob or holds a damaged copy is passed over for the next; NotFound when none has it.
  Result<std::string> ReadBlob(ChainId chain, const std::string& id, uint64_t offset, uint64_t length);
  // One attempt at `node` under chain version `version`, without the table (a host copying the
  // blobs of a resync from its predecessor).
  Result<std::string> ReadBlobAt(NodeId node, ChainId chain, uint64_t version, const std::string& id, uint64_t offset,
                                 uint64_t length);
  // A query of the chain's state machine, answered by the head over committed state.
  Result<std::string> Query(ChainId chain, const std::string& query);
  // KvStateMachine chains: writes `value` under `key` (no value: deletes), as Execute.
  Result<WriteResult> Write(ChainId chain, const std::string& key, const std::optional<std::string>& value,
                            OpId op = 0);
  // The committed version of `key` (no value: absent or deleted).
  Result<Record> Read(ChainId chain, const std::string& key);
  // The same, asked of one member only (tests that check every replica answers alike).
  Result<Record> ReadFrom(ChainId chain, const std::string& key, NodeId node);

 private:
  struct Link {
    std::shared_ptr<net::Connection> connection;
    bool alive = true;
  };

  // Sends `write` to the head until it is committed (ToHead).
  Result<WriteResult> Submit(ChainId chain, ClientWrite write);
  // Sends the request `make(request_id, chain_version)` builds to the head of the chain's current
  // view until it answers OK, refuses for good (a status other than Busy), or the deadline
  // passes (Timeout, with the last refusal). `what` names the request in that error.
  template <class Reply>
  Result<Reply> ToHead(ChainId chain, std::string_view what, const std::function<Message(uint64_t, uint64_t)>& make);
  uint64_t NextRequestId();
  bool Abandoned() const { return options_.abandoned && options_.abandoned(); }
  // Sends `message` to `node` and waits for the answer to `request_id`; nullopt on no answer.
  std::optional<Message> Call(NodeId node, uint64_t request_id, const Message& message);
  Result<std::shared_ptr<Link>> LinkTo(NodeId node);
  Result<Record> ReadImpl(ChainId chain, const std::string& key, std::optional<NodeId> only);
  void ReadLoop(std::shared_ptr<Link> link);

  const ChainClientOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<NodeId, std::shared_ptr<Link>> links_;       // GUARDED_BY(mu_)
  std::map<uint64_t, std::optional<Message>> waiting_;  // GUARDED_BY(mu_): request id -> answer
  size_t readers_ = 0;                                  // GUARDED_BY(mu_): reader threads running
  uint64_t next_request_ = 1;                           // GUARDED_BY(mu_)
  std::mutex dial_mu_;                                  // one dial at a time
};

}  // namespace cairn::replication
