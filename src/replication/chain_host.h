// ChainHost: the chain replicas of one node, over real sockets and a real disk.
//
// The replicas are ChainReplica state machines (chain.h), one per chain the node is a member of.
// The host owns what they leave to their caller (docs/design/cluster.md, "Internal RPC"):
//   - the network: an RPC listener whose connections pass the cluster-secret handshake
//     (net/connection.h), and one long-lived outgoing connection per peer node, each with its own
//     sender thread, so that a slow or dead peer never stalls the others. Messages travel as
//     wire.h bodies. A message to a peer that cannot be reached is dropped: the protocol
//     retransmits what matters, on its ticks;
//   - the disk: every durable write goes to the node's ReplicaStore; one writer thread commits
//     what has queued and syncs once (group commit across chains), then reports the writes done,
//     in the order they were started;
//   - the time: every replica is ticked at a fixed period.
// All replica inputs run on one event thread, in the order they arrive; the replicas themselves
// are not thread-safe and never leave it.
//
// The caller (the node's cluster glue, or a test) tells the host which chains to hold (AddChain),
// the chain views the manager wrote (SetView), the other nodes' addresses (SetPeers) and whether
// the node is fenced (its lease could be about to expire); it hears the replicas' reports for the
// manager and their requests to re-read the chain table through callbacks, called on the event
// thread (they must not block on the host).
//
// Thread-safety: every public method is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "net/connection.h"
#include "replication/blob_store.h"
#include "replication/chain.h"
#include "replication/chain_client.h"
#include "replication/replica_store.h"

namespace cairn::replication {

struct ChainHostOptions {
  NodeId node = 0;
  std::string name;                    // this node's id string
  std::string listen = "127.0.0.1:0";  // the RPC address
  std::string secret;                  // the cluster secret
  std::string data_dir;                // the ReplicaStore's directory
  std::chrono::milliseconds tick{20};
  // A snapshot is asked for again after a second, not a tick: it can take that long to send.
  ReplicaOptions replica{.sync_request_ticks = 50};
  // Messages queued for one peer beyond this count or these bytes are dropped, oldest first (the
  // protocol resends).
  size_t max_queued_per_peer = 4096;
  size_t max_queued_bytes_per_peer = 256u << 20;
  // Connections still in their handshake beyond this are closed at once.
  size_t max_handshakes = 64;
  // Where the blobs of this node's replicas go (chain.h, "Blob"); must outlive the host. Null: a
  // blob write fails the disk (fail-stop), so only chains without blobs may run on such a host.
  BlobStore* blobs = nullptr;
  // The state machine of each chain's replica; null (or a null answer): `replica.machine`.
  std::function<const StateMachine*(ChainId)> machine_for;
  std::function<void(const ManagerReport&)> on_report;
  std::function<void(ChainId)> on_refresh;
};

// A replica's state, for tests, status and metrics.
struct ReplicaInfo {
  ChainReplica::Phase phase = ChainReplica::Phase::kDown;
  uint64_t version = 0;
  bool fenced = false;
  uint64_t last_applied = 0;
  uint64_t durable_level = 0;
  uint64_t exposed_level = 0;
  bool quiescent = false;
  StoreState applied;
  DurableState durable;
};

// How far the blob copy of a resync got (ChainHost::CopyProgress): the blobs the installed copy
// names, and the bytes among them, that are in this node's blob store (copied, or kept from
// before). A job that could not copy every blob is followed by one for the rest, which starts
// counting again.
struct BlobCopyProgress {
  uint64_t chain_version = 0;  // of the job
  uint64_t blobs = 0;
  uint64_t blobs_done = 0;
  uint64_t bytes = 0;
  uint64_t bytes_done = 0;
  bool finished = false;  // the job ended (every blob here, or a new job follows for the rest)
  bool operator==(const BlobCopyProgress&) const = default;
};

class ChainHost {
 public:
  // Opens the store, listens and starts the threads. The replicas start down; AddChain brings
  // each up.
  static Result<std::unique_ptr<ChainHost>> Start(ChainHostOptions options);
  // Stops every thread and closes every connection. Durable writes already handed to the disk
  // may or may not complete: to the replicas this is a crash.
  ~ChainHost();
  ChainHost(const ChainHost&) = delete;
  ChainHost& operator=(const ChainHost&) = delete;

  // The address the RPC listener is bound to.
  const std::string& address() const { return address_; }

  // Replaces the table of the other nodes' names and addresses.
  void SetPeers(std::map<NodeId, PeerAddress> peers);
  enum class StartMode : uint8_t {
    // A founding member of a new chain: whatever the disk held of the chain is dropped; the
    // replica starts empty and complete.
    kFounding,
    // The chain's serving member taken back after a restart (placement.h): the disk holds every
    // committed update, so the replica starts from it, complete.
    kRecovered,
    // Any other restart: the replica starts from its disk but serves nothing until the manager
    // appends it as a syncing tail and its resync completes.
    kRestarted,
  };
  // Brings up this node's replica of `chain` under `incarnation`. Does nothing if the replica is
  // already up.
  void AddChain(ChainId chain, uint64_t incarnation, StartMode mode);
  // The node registered again under a new incarnation: the replica leaves its chain and, like a
  // restarted one, must be appended and resync before it serves.
  void Rejoin(ChainId chain, uint64_t incarnation);
  // Forgets the chain: its replica here (when it is out of the chain, idle, with no durable write
  // in flight) and what the store holds of it, so that a chain this node left long ago costs it
  // neither memory nor disk. Its blobs are the local extras' pass's (UnnamedBlobs). Should the
  // table name this node again, AddChain starts it empty and it resyncs like a new member. The
  // future turns true once nothing of the chain is left here; false when the replica is still in
  // the chain or busy, or the host is stopping.
  std::future<bool> RemoveChain(ChainId chain);
  // The table took this replica back as the chain's serving member under `incarnation` (a cold
  // restart, placement.h): once its durable writes in flight are done, it restarts from its
  // durable state, complete. Does nothing when the replica is ready.
  void Recover(ChainId chain, uint64_t incarnation);
  // Delivers a chain view (the chain's replica must have been added).
  void SetView(const ChainView& view);
  // The replicas are fenced while any of these holds: the caller asked for it (SetFenced), the
  // `may_acknowledge` function says no (checked on every tick, so a node cut off from etcd
  // fences itself on its lease's clock, not on its next successful etcd read), or the store
  // failed a write (for good: the node stops taking part until restarted).
  void SetFenced(bool fenced);
  void SetMayAcknowledge(std::function<bool()> may_acknowledge);
  bool disk_failed() const { return disk_failed_.load(); }

  // Runs on the event thread and waits for it (at most 5 s); nullopt when the chain has no
  // replica here or the host is stopping. Not to be called from the host's callbacks.
  // (It copies the replica's whole state and reads the chain's stored state as `durable`: for
  // tests and tools.)
  std::optional<ReplicaInfo> Inspect(ChainId chain);
  // Calls fn for every replica, on the event thread, and waits (at most 5 s in all; false when
  // that passed or the host is stopping: fn may then still run, so it must own what it uses).
  // Reads a replica's state without copying it. Not to be called from the host's callbacks.
  bool VisitAll(std::function<void(ChainId, const ChainReplica&)> fn);
  // The last blob copy of `chain`'s resync on this node; nullopt when none ran since the replica
  // was added or rejoined. Thread-safe.
  std::optional<BlobCopyProgress> CopyProgress(ChainId chain) const;
  // Count of messages dropped because their peer was unreachable or its queue was full.
  uint64_t dropped_messages() const { return dropped_.load(); }

  // Extras: blobs in this node's blob store that no replica here names (copies of a chain the node
  // is no longer in, a resync copy that landed after its chain dropped the blob, a failed delete).
  // Of `blobs` (chain, id), returns the unnamed ones: those of a chain in `left` (the caller saw
  // the table name this node in no member of it) whose replica here is missing or idle (not
  // taken back since), and those whose chain's replica here is up and has no live descriptor of
  // the id. Any other chain with no replica here, or whose replica is down or restarting, names
  // all (its state is not in memory to ask). With `drop`, the unnamed ones are also queued for
  // deletion from the blob store: the disk thread deletes them before it writes the blobs of any
  // durable write started after this call, and before it reports any such write done (so that an
  // update storing one again keeps it, and a resync that names one again copies it). Runs on the
  // event thread, in pages; nullopt when the host is stopping, `cancel` (may be null) turned true,
  // or a page took more than 5 s. Not to be called from the host's callbacks.
  std::optional<std::vector<std::pair<ChainId, std::string>>> UnnamedBlobs(
      const std::vector<std::pair<ChainId, std::string>>& blobs, const std::set<ChainId>& left, bool drop,
      const std::atomic<bool>* cancel = nullptr);

 private:
  class Outbox;
  struct Inbound;
  struct DiskBatch {
    ReplicaStore::Batch batch;
    std::vector<std::pair<ChainId, uint64_t>> writes;  // in start order
    std::vector<Blob> blobs;                           // written, durably, before the batch
    std::vector<std::string> dropped_blobs;            // deleted once the batch is durable
    std::vector<std::string> extra_blobs;              // deleted before any blob of the batch is written
  };

  explicit ChainHost(ChainHostOptions options);
  Status Init();

  // Event thread.
  void Post(std::function<void()> task);
  void EventLoop();
  void Deliver(ChainId chain, Endpoint from, const Message& message);
  // Applies the fence that SetFenced, may_acknowledge and the disk decide.
  void ApplyFence();
  // The node's disk failed (a write, or reading back what was written): fenced for good, from
  // any thread; the node then leaves the cluster (disk_failed).
  void FailDisk(std::string_view what, const Status& why);
  // Restarts the replicas waiting in recovering_ whose durable writes are done.
  void RecoverWaiting();
  void Process(ChainId chain, Effects effects);
  void FlushDisk();

  // Other threads.
  void AcceptLoop();
  void ServeConnection(int fd);
  void ReadLoop(std::shared_ptr<Inbound> inbound);
  void DiskLoop();
  // Blob reads, and resync copies, each on threads of their own (a long copy never delays reads),
  // off the event and disk threads: kBlobThreads each, so that reads of different blobs, and the
  // copies of different chains, overlap their disk and network waits.
  static constexpr int kBlobThreads = 4;
  struct BlobQueue {
    std::deque<std::function<void()>> jobs;  // GUARDED_BY(blob_mu_)
    std::vector<std::thread> threads;
  };
  void BlobLoop(BlobQueue* queue);
  void RunBlob(BlobQueue* queue, std::function<void()> job);
  void ReadBlobFor(const BlobReadJob& job);
  void CopyBlobs(ChainId chain, const BlobCopyJob& job);
  void ClearCopyProgress(ChainId chain);
  void SendTo(Endpoint to, const Message& message);

  void SendToPeer(NodeId peer, const Message& message);
  void SendToClient(uint32_t client, const Message& message);

  const ChainHostOptions options_;
  std::unique_ptr<ReplicaStore> store_;
  net::UniqueFd listen_fd_;
  std::string address_;
  std::atomic<bool> stopping_{false};

  // Event thread state (touched only by tasks running on it).
  std::map<ChainId, std::unique_ptr<ChainReplica>> replicas_;
  std::map<ChainId, DurableState> loaded_;  // what the disk held at Start, until AddChain takes it
  std::set<ChainId> complete_;              // chains whose stored copy was once complete
  bool fence_requested_ = false;
  bool fenced_ = false;  // what the replicas were last told
  std::function<bool()> may_acknowledge_;
  std::map<ChainId, uint64_t> recovering_;  // chain -> incarnation, waiting for durable writes
  std::set<ChainId> refused_recovery_;      // chains whose take-back was refused (logged once)
  DiskBatch current_batch_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mu_)
  size_t connection_threads_ = 0;            // GUARDED_BY(mu_): running; the destructor waits for none
  size_t handshakes_ = 0;                    // GUARDED_BY(mu_): connections still in their handshake
  std::condition_variable threads_cv_;

  std::mutex peers_mu_;
  std::map<NodeId, PeerAddress> peers_;                   // GUARDED_BY(peers_mu_)
  std::map<NodeId, std::unique_ptr<Outbox>> outboxes_;    // GUARDED_BY(peers_mu_)
  std::map<uint32_t, std::shared_ptr<Inbound>> inbound_;  // GUARDED_BY(peers_mu_): by client id
  uint32_t next_inbound_id_ = 1;                          // GUARDED_BY(peers_mu_)

  std::mutex disk_mu_;
  std::condition_variable disk_cv_;
  std::deque<DiskBatch> disk_queue_;  // GUARDED_BY(disk_mu_)
  std::atomic<bool> disk_failed_{false};

  std::mutex blob_mu_;
  std::condition_variable blob_cv_;
  BlobQueue blob_reads_;
  BlobQueue blob_copies_;
  std::unique_ptr<ChainClient> copier_;  // reads the blobs a resync copies
  mutable std::mutex progress_mu_;
  std::map<ChainId, BlobCopyProgress> progress_;  // GUARDED_BY(progress_mu_)

  std::atomic<uint64_t> dropped_{0};
  std::thread event_thread_;
  std::thread accept_thread_;
  std::thread disk_thread_;
};

}  // namespace cairn::replication
