// Chain replication: one replica of one chain, as a deterministic state machine.
//
// A ChainReplica is what one target holds for one chain (docs/design/cluster.md, "Chains",
// "Writes", "Reads", "Resync"; ARCHITECTURE decision 2: van Renesse and Schneider's chain
// replication with CRAQ reads). It does no I/O and reads no clock: every method takes one input
// (a message from a named peer, "durable write N completed", "the chain table now says ...", a
// tick) and returns the outputs that input caused (messages to send, durable writes to start,
// reports for the manager). The caller owns the sockets, the disk and the time; the simulator in
// tests/replication/ drives many replicas through a fake network from one seed.
//
// What the replica keeps:
//   durable  DurableState: key -> {value or tombstone, seq}, the results of applied operation ids,
//            the last applied sequence number, and the updates recorded during a resync. It is
//            what survives a crash: durable writes change it when they complete, in order.
//   volatile the chain view (version, members, own role), everything applied in memory, the
//            updates not yet known committed (with the version of their key they replaced, for
//            CRAQ reads), the clients waiting at the head.
//
// Sequence levels, for a replica of a chain version (L >= D >= U, L >= A >= U, L >= E):
//   L  last applied (in memory)              D  durable through (own disk)
//   A  acknowledged by the successor         U  acknowledged upstream = min(D, A); the tail's A is
//                                               infinite, so the tail acknowledges when durable.
//   E  committed, as far as this replica knows.
// At the head, U is the committed sequence: every replica of the chain has those updates durably,
// the head answers the writers, and announces U to the other members (Commit), which is their E.
// Reads (CRAQ) see committed versions only: a replica whose last update of a key is at most E
// answers it; otherwise it asks the head which version of the key is committed and answers that
// one. Commit happens at the head in this chain (the tail acknowledges when durable, and a
// replica upstream may not be durable yet), so the head, not the tail, is the authority; E never
// goes back, also when the head changes (a new head acknowledged everything the old one committed).
//
// Thread-safety: none. One replica is driven by one thread (the simulator, or later the chain
// service's event loop).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/kv.h"
#include "common/status.h"
#include "replication/state_machine.h"

namespace cairn::replication {

using ChainId = uint32_t;
using NodeId = uint32_t;
// Chosen by the caller of a write, unique per operation, reused by the caller's retries.
using OpId = uint64_t;

// A target as the chain table names it: a node and the incarnation of the node's registration
// (its lease). A node that restarts, or loses its lease, registers again with a new incarnation
// and is not the member its old table entry names: it must be appended again and resync.
struct MemberId {
  NodeId node = 0;
  uint64_t incarnation = 0;
  bool operator==(const MemberId&) const = default;
};

// Where a node's replicas listen, and the name its RPC handshake proves (for the hosts that carry
// this state machine over sockets: chain_host.h, chain_client.h).
struct PeerAddress {
  std::string name;         // the node's id string
  std::string rpc_address;  // "host:port"
};

struct Member {
  MemberId id;
  // false: syncing (appended by the manager, copying its predecessor). At most one member is
  // syncing, and it is the last one.
  bool serving = true;
};

// One version of one chain, as the manager wrote it in the chain table.
struct ChainView {
  ChainId chain_id = 0;
  uint64_t version = 0;
  std::vector<Member> members;  // head first
};

// Where a message comes from or goes to.
struct Endpoint {
  enum class Kind : uint8_t { kReplica, kClient };
  Kind kind = Kind::kReplica;
  uint32_t id = 0;

  static Endpoint Replica(NodeId node) { return {Kind::kReplica, node}; }
  static Endpoint Client(uint32_t client) { return {Kind::kClient, client}; }
  auto operator<=>(const Endpoint&) const = default;
};

// The stored version of a key. A delete is stored as a tombstone (no value) with its sequence
// number, until the head purges it once committed (Update::purge): an absent key and a
// tombstone read alike ("no value"), so a tombstone is kept only while a replica may not yet
// know its delete committed.
struct Record {
  std::optional<std::string> value;
  uint64_t seq = 0;
  bool operator==(const Record&) const = default;
};

// The recorded result of an applied write; a retried operation id is answered with it.
struct WriteResult {
  uint64_t seq = 0;
  std::string result;     // the state machine's result of the command (StateMachine::Outcome)
  uint64_t stamp_ms = 0;  // the update's stamp (Update::stamp_ms)
  bool operator==(const WriteResult&) const = default;
};

// Bytes a chain stores beside its state machine (the chunks of objects): immutable, named by an id
// unique in the cluster, kept by each replica in its node's BlobStore (the engine), never in the
// replicated state. The state holds each stored blob's descriptor (size and CRC32C) under
// BlobKey(id), which is how a resync knows which blobs to copy; the state machines never see
// those keys (StoreReader hides them). The CRC is verified by every replica before it writes
// (ARCHITECTURE decision 6) and by the blob store on every read.
//
// The bytes are shared, never changed once made: the copies of an update a replica keeps (in
// flight to its successor, pending its commit, on the way to its disk) all point at one buffer.
// A blob may also borrow bytes it does not own (Borrowed): a writer whose bytes outlive its call.
struct Blob {
  Blob() = default;
  Blob(std::string id_in, std::string bytes_in, uint32_t crc) : id(std::move(id_in)), crc32c(crc) {
    auto owned = std::make_shared<const std::string>(std::move(bytes_in));
    view_ = *owned;
    owner_ = std::move(owned);
  }
  // Bytes owned elsewhere. REQUIRES: they stay valid, unchanged, while this blob or a copy of it
  // (a message holding it) exists.
  static Blob Borrowed(std::string id, std::string_view bytes, uint32_t crc) {
    Blob blob;
    blob.id = std::move(id);
    blob.view_ = bytes;
    blob.crc32c = crc;
    return blob;
  }
  std::string_view data() const { return view_; }
  bool operator==(const Blob& other) const {
    return id == other.id && crc32c == other.crc32c && data() == other.data();
  }

  std::string id;
  uint32_t crc32c = 0;

 private:
  std::shared_ptr<const void> owner_;  // keeps view_'s bytes; null for borrowed or empty bytes
  std::string_view view_;
};

struct BlobInfo {
  std::string id;
  uint64_t size = 0;
  uint32_t crc32c = 0;
  // The stamp of the update that stored it (Update::stamp_ms): how old it is, for the collection
  // of blobs no metadata names (cluster/orphans.h). 0: unknown.
  uint64_t stamp_ms = 0;
  bool operator==(const BlobInfo&) const = default;
};

// Keys from kBlobKeyPrefix on are the chain's own; a state machine's keys must sort before it.
inline constexpr std::string_view kBlobKeyPrefix =
    "\xff\xff"
    "blob/";
std::string BlobKey(std::string_view id);
bool IsBlobKey(std::string_view key);
// The descriptor stored under BlobKey: u64 size, u32 crc32c, u64 stamp_ms, little-endian.
std::string EncodeBlobDescriptor(uint64_t size, uint32_t crc32c, uint64_t stamp_ms);
std::optional<BlobInfo> DecodeBlobDescriptor(std::string_view id, std::string_view value);

// The chain's own query (ClientQuery, answered by the head, never by the state machine): a page
// of the blobs the chain stores, in id order, after `after_id` ("" from the first), at most
// `max` of them. The answer: per blob u32 id length, id, u64 size, u32 crc32c, u64 stamp_ms; an
// answer holding fewer than `max` is the last page.
std::string BlobListQuery(std::string_view after_id, uint32_t max);
Result<std::vector<BlobInfo>> DecodeBlobList(std::string_view answer);

// A replica's store: the state machine the chain replicates.
//
// `ops` holds the results of recent operations only (design "Writes", "Operation results"): each
// update may name operations the head has forgotten (Update::forget), and every replica drops
// them as it applies the update, so all hold the same results.
struct StoreState {
  std::map<std::string, Record> records;
  std::map<OpId, WriteResult> ops;
  uint64_t last_seq = 0;
  uint64_t stamp_ms = 0;  // the highest update stamp applied
  bool operator==(const StoreState&) const = default;
};

// ---- Messages (the future RPC bodies; src/net encodes them) ----

// An update travelling down the chain. `first_seq` is the lowest sequence the sender forwards in
// this chain version (its acknowledged level when it installed the version, plus one): a
// receiver whose last applied sequence is below first_seq - 1 has missed updates nobody will
// send again, which is a gap; anything else out of order is only reordering, and the sender
// retransmits what stays unacknowledged.
struct Update {
  ChainId chain_id = 0;
  uint64_t chain_version = 0;
  uint64_t seq = 0;
  uint64_t first_seq = 0;
  OpId op_id = 0;
  // What the head's state machine made of the command: applied in order by every replica.
  std::vector<KvMutation> mutations;
  std::string result;
  // A blob stored by this update (its descriptor is among the mutations); every replica writes it
  // to its blob store, durably, before the update counts as durable there.
  std::optional<Blob> blob;
  // The head's stamp: the largest of the writer's issued_ms and every earlier stamp (so stamps
  // never decrease along the sequence), in milliseconds of the writers' clocks.
  uint64_t stamp_ms = 0;
  // Operations whose recorded results every replica drops with this update (committed ones,
  // older than the head's retention; oldest first).
  std::vector<OpId> forget;
  // Keys whose tombstones every replica removes with this update, before its mutations: deletes
  // the head knows committed, oldest first, none of this update's own keys.
  std::vector<std::string> purge;
  bool operator==(const Update&) const = default;
};

// Cumulative: every update through `seq` is durable at the sender and everything after it.
// `durable`: every update through it is durable at the sender itself (its own disk, whatever its
// successors hold), so that a predecessor can tell a successor that stopped taking updates from
// one whose own successor is slow (peer reports, docs/design/cluster.md).
struct Ack {
  ChainId chain_id = 0;
  uint64_t chain_version = 0;
  uint64_t seq = 0;
  uint64_t durable = 0;
  bool operator==(const Ack&) const = default;
};

// Refusal of a chain request made under another version; carries the refuser's version (0: it
// has none, e.g. just restarted).
struct StaleChain {
  ChainId chain_id = 0;
  uint64_t version = 0;
  bool operator==(const StaleChain&) const = default;
};

struct ClientWrite {
  uint64_t request_id = 0;
  ChainId chain_id = 0;
  uint64_t chain_version = 0;
  OpId op_id = 0;
  std::string command;  // for the chain's StateMachine; empty: none
  // Stored with the command, atomically: a blob to store (refused unless its CRC matches), and
  // blobs to delete (every replica deletes them from its blob store once the update is durable).
  std::optional<Blob> blob;
  std::vector<std::string> drop_blobs;
  // When the writer first sent this operation (ms since the Unix epoch, its clock), the same on
  // every retry; 0: unstamped (a head with a clock refuses it). A head whose stamps have moved
  // more than half its retention past it refuses the write with Timeout (its result may be
  // forgotten: the outcome is unknown), so a late retry never applies an operation twice.
  uint64_t issued_ms = 0;
  bool operator==(const ClientWrite&) const = default;
};

// status: OK, or Busy (fenced, not the head, not serving, stale or unseen chain version: the
// caller refreshes its chain view and retries with the same op id), or Timeout (issued too long
// ago: the outcome is unknown), or a refusal of the blob (Corruption, AlreadyExists).
struct ClientWriteReply {
  uint64_t request_id = 0;
  OpId op_id = 0;
  Status status;
  WriteResult result;
  uint64_t chain_version = 0;
  bool operator==(const ClientWriteReply&) const = default;
};

struct ClientRead {
  uint64_t request_id = 0;
  ChainId chain_id = 0;
  uint64_t chain_version = 0;
  std::string key;
  bool operator==(const ClientRead&) const = default;
};

// On OK, `record` is the committed version of the key (no value: absent or deleted).
struct ClientReadReply {
  uint64_t request_id = 0;
  Status status;
  Record record;
  uint64_t chain_version = 0;
  bool operator==(const ClientReadReply&) const = default;
};

// A query of the state machine, answered by the head over committed state (linearizable: the
// head decides commit in this chain).
struct ClientQuery {
  uint64_t request_id = 0;
  ChainId chain_id = 0;
  uint64_t chain_version = 0;
  std::string query;
  bool operator==(const ClientQuery&) const = default;
};

// status: OK with the state machine's answer, or Busy as for writes.
struct ClientQueryReply {
  uint64_t request_id = 0;
  Status status;
  std::string result;
  uint64_t chain_version = 0;
  bool operator==(const ClientQueryReply&) const = default;
};

// Bytes [offset, offset + length) of a blob, from any serving replica that holds it.
struct BlobRead {
  uint64_t request_id = 0;
  ChainId chain_id = 0;
  uint64_t chain_version = 0;
  std::string id;
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const BlobRead&) const = default;
};

// status: OK with the bytes (verified by the blob store), NotFound (no such blob here),
// InvalidArgument (the range passes its end), Corruption (the stored copy is bad: read another
// replica), or Busy as for reads.
struct BlobReadReply {
  uint64_t request_id = 0;
  Status status;
  std::string bytes;
  uint64_t chain_version = 0;
  bool operator==(const BlobReadReply&) const = default;
};

// A syncing tail asks its predecessor for a snapshot.
struct SyncRequest {
  ChainId chain_id = 0;
  uint64_t chain_version = 0;
  bool operator==(const SyncRequest&) const = default;
};

// The predecessor's applied state; snapshot.last_seq is the sequence it was taken at.
struct SyncData {
  ChainId chain_id = 0;
  uint64_t chain_version = 0;
  StoreState snapshot;
  bool operator==(const SyncData&) const = default;
};

// The head announces its committed sequence to the other members.
struct Commit {
  ChainId chain_id = 0;
  uint64_t chain_version = 0;
  uint64_t seq = 0;
  bool operator==(const Commit&) const = default;
};

// CRAQ: a replica holding an update of `key` that it does not know committed asks the head which
// sequence of the key is committed.
struct VersionQuery {
  ChainId chain_id = 0;
  uint64_t chain_version = 0;
  uint64_t query_id = 0;
  std::string key;
  bool operator==(const VersionQuery&) const = default;
};

struct VersionReply {
  ChainId chain_id = 0;
  uint64_t chain_version = 0;
  uint64_t query_id = 0;
  Status status;
  uint64_t seq = 0;  // 0: the key has no committed value (never written, or its tombstone purged)
  bool operator==(const VersionReply&) const = default;
};

using Message = std::variant<Update, Ack, Commit, StaleChain, ClientWrite, ClientWriteReply, ClientRead,
                             ClientReadReply, SyncRequest, SyncData, VersionQuery, VersionReply, ClientQuery,
                             ClientQueryReply, BlobRead, BlobReadReply>;

// "Update", "Ack", ...
std::string_view MessageName(const Message& message);
// One line for traces: the name and the fields that matter.
std::string Describe(const Message& message);

// What survives a crash.
struct DurableState {
  StoreState store;
  // Updates recorded while syncing (design "Resync", step 1), merged into `store` when the
  // predecessor's snapshot is installed.
  std::vector<Update> sync_log;
};

// For the manager; in the cluster these go through etcd (`sync/<chain>/<target>`, reports).
struct ManagerReport {
  enum class Kind : uint8_t {
    kSyncDone,     // the syncing member holds a complete copy: mark it serving
    kNeedsResync,  // the member found a gap in its sequence: remove it and append it again
  };
  Kind kind = Kind::kSyncDone;
  ChainId chain_id = 0;
  uint64_t chain_version = 0;
  MemberId member;
};

struct Outbound {
  Endpoint to;
  Message message;
};

// A durable write the caller starts; it answers OnDiskWriteDone(id) when the write is on stable
// storage. Writes complete in the order they were started (one log per target).
//
// What to write: kApply applies `update` to the stored state (ApplyToStore); kSyncLog appends
// `update` to the sync log; kInstall replaces the stored state with `image` and empties the sync
// log. The pointers stay valid until the replica's next input: a caller that writes later must
// copy (or encode) what they point at first.
struct DiskWrite {
  enum class Kind : uint8_t { kApply, kSyncLog, kInstall };
  uint64_t id = 0;
  std::string what;  // for traces
  Kind kind = Kind::kApply;
  const Update* update = nullptr;     // kApply, kSyncLog
  const StoreState* image = nullptr;  // kInstall
  // kApply: what applying the update returns; the same on every replica and on the disk (writes
  // apply in sequence order to the same state), stored for retries of its operation id.
  WriteResult result;
};

// A blob read the caller performs (a read of the replica's blob store) and answers `client` with
// a BlobReadReply.
struct BlobReadJob {
  Endpoint client;
  uint64_t request_id = 0;
  uint64_t chain_version = 0;
  BlobInfo blob;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// After a resync installed its copy: the blobs the copy names, which the caller copies from
// `from` (with BlobReads) unless its blob store already holds them, then answers with
// OnBlobsCopied. Until then the replica does not report its sync done.
struct BlobCopyJob {
  NodeId from = 0;
  uint64_t chain_version = 0;
  std::vector<BlobInfo> blobs;
};

// The outputs of one input.
struct Effects {
  std::vector<Outbound> sends;
  std::vector<DiskWrite> disk_writes;
  std::vector<BlobReadJob> blob_reads;
  std::optional<BlobCopyJob> blob_copy;
  // A resync's copy is now complete on disk (its install durable, its blobs copied): the caller
  // marks its store so (ReplicaStore::MarkComplete).
  bool copy_complete = false;
  std::vector<ManagerReport> reports;
  // The replica saw a chain version newer than its own: the caller re-reads the chain table.
  bool refresh_view = false;
};

// Deliberate bugs, for the tests that prove the simulator and its checkers catch them. Never set
// outside tests; every flag defaults to the correct behaviour.
struct TestFaults {
  bool tail_acks_before_durable = false;    // the tail acknowledges on apply, not on durability
  bool head_replies_before_commit = false;  // the head answers the client on apply
  bool skip_version_check = false;          // chain messages of any version are accepted
  bool read_dirty_locally = false;          // CRAQ: an uncommitted key is answered with the newest local version
  bool ignore_fence = false;                // a fenced replica keeps serving
  bool sync_keeps_stale_state = false;      // resync merges the snapshot into the old state by seq
};

struct ReplicaOptions {
  // Updates (re)sent to the successor per tick when it has not acknowledged progress. Default 32.
  uint32_t resend_window = 32;
  // Ticks a CRAQ read waits for the head's answer before failing with Busy. Default 3.
  uint32_t version_query_ticks = 3;
  // The head announces its committed sequence again every this many ticks (Commit messages can
  // be lost). Default 3.
  uint32_t commit_resend_ticks = 3;
  // A syncing member asks its predecessor for the snapshot again after this many ticks without
  // one. Default 5.
  uint32_t sync_request_ticks = 5;
  // How long the head keeps an operation's result for retries, in stamp milliseconds (Update::
  // stamp_ms): older committed results are forgotten, at most forget_batch per update. The update
  // names what to forget, so replicas stay equal whatever their setting; but a head refuses late
  // retries by its own setting, which must therefore be the same on every node (no longer than
  // twice that of any head before it): it is a constant, changed only by tests. Default 10
  // minutes: far beyond a client's retries, and more than twice any sane clock skew.
  uint64_t op_retention_ms = 10 * 60 * 1000;
  uint32_t forget_batch = 64;
  // Committed tombstones purged per update, at most.
  uint32_t purge_batch = 64;
  // Keep a copy of the durable state in memory (durable()): what a crash (Crash) goes back to, for
  // the simulator and unit tests. A host whose disk holds that state sets false and halves the
  // replica's memory: durable() then keeps only the durable levels (last sequence and stamp) and
  // the replica's state is moved into its applied state at Start or Bootstrap; after a Crash or
  // a Rejoin the caller must Restore the state from its disk before bringing it up as complete.
  bool keep_durable_state = true;
  // The head's clock, in the writers' unit (ms since the Unix epoch); null: none (unit tests).
  // With a clock the head refuses unstamped writes (InvalidArgument), writes issued more than a
  // quarter of the retention in its future (Timeout: one writer whose clock runs ahead cannot
  // push the stamps past everybody else's writes), and writes issued more than max_issued_age_ms
  // before it (Timeout: retries last seconds, and a writer whose clock lags cannot store blobs
  // that look older than they are to the orphan collector). So every stamp is within those
  // bounds of the head's clock.
  std::function<uint64_t()> clock_ms;
  uint64_t max_issued_age_ms = 150'000;
  // What the chain replicates; null: KvStateMachine. Must outlive the replica.
  const StateMachine* machine = nullptr;
  TestFaults faults;
};

class ChainReplica {
 public:
  enum class Phase : uint8_t {
    kDown,     // crashed
    kIdle,     // up, but not a member of the chain view it knows (or has no view)
    kSyncing,  // syncing member waiting for its predecessor's snapshot
    kReady,    // holds a complete copy: a serving member, or a syncing one whose copy is installed
  };

  ChainReplica(ChainId chain_id, NodeId node, ReplicaOptions options = {});

  // Lifecycle. The replica starts down.
  // Up, complete by definition, from the durable state: a founding member of a new chain (empty
  // state), or, after Restore, the chain's serving member taken back after a restart (its disk
  // holds every committed update).
  void Bootstrap(uint64_t incarnation);
  // Sets the durable state a down replica restarts with (what the caller's disk holds), before
  // Start. REQUIRES: the replica is down.
  void Restore(DurableState state);
  // Up after a restart, with the durable state only. It serves nothing until the manager appends
  // it (under this incarnation) and its resync completes.
  void Start(uint64_t incarnation);
  // Power loss: volatile state and writes not yet durable are gone.
  void Crash();
  // The node lost its lease and registered again: membership ends, durable writes in flight
  // still complete. Like Start, it must be appended and resync before serving.
  void Rejoin(uint64_t incarnation);
  // Fenced (its lease could be about to expire): the replica answers clients Busy, drops chain
  // messages, and sends nothing, until unfenced (after a keepalive succeeded and the caller
  // delivered the current chain view).
  void SetFenced(bool fenced) { fenced_ = fenced; }

  // Inputs.
  [[nodiscard]] Effects OnView(const ChainView& view);
  [[nodiscard]] Effects OnMessage(Endpoint from, const Message& message);
  [[nodiscard]] Effects OnDiskWriteDone(uint64_t write_id);
  // The BlobCopyJob of `chain_version` ended; `missing`: the blobs it could not copy. Those the
  // state no longer names (deleted meanwhile) are not needed; for the others a new job follows.
  [[nodiscard]] Effects OnBlobsCopied(uint64_t chain_version, const std::vector<std::string>& missing);
  // Retransmission and timeouts; the caller ticks at a fixed period.
  [[nodiscard]] Effects OnTick();

  // Inspection (tests, metrics, status).
  NodeId node() const { return node_; }
  uint64_t incarnation() const { return incarnation_; }
  Phase phase() const { return phase_; }
  bool up() const { return phase_ != Phase::kDown; }
  bool fenced() const { return fenced_; }
  uint64_t view_version() const { return view_ ? view_->version : 0; }
  // The chain view this replica works under; null before the first one.
  const ChainView* view() const { return view_ ? &*view_ : nullptr; }
  const DurableState& durable() const { return durable_; }
  const StoreState& applied() const { return applied_; }
  uint64_t last_applied() const { return applied_.last_seq; }
  uint64_t durable_level() const { return durable_level_; }
  uint64_t acked_level() const { return acked_level_; }
  uint64_t exposed_level() const { return exposed_level_; }
  // Durable writes started and not yet reported done.
  size_t disk_writes_in_flight() const { return disk_.size(); }
  // True when a member with nothing in flight: no pending updates, durable writes, parked reads or
  // waiting clients, and everything applied is acknowledged.
  bool Quiescent() const;
  // The successor, when it has stopped taking updates: for `ticks` consecutive ticks it lacked
  // updates this replica sent and what its own disk holds (Ack::durable) did not move. A successor
  // that holds them all but waits on its own successor does not count. For the peer reports of
  // the cluster (docs/design/cluster.md); nullopt while none stalls.
  struct Stall {
    MemberId successor;
    uint32_t ticks = 0;
  };
  std::optional<Stall> StalledSuccessor() const;

 private:
  struct PendingWrite {
    using Kind = DiskWrite::Kind;
    uint64_t id = 0;
    uint64_t session = 0;
    uint64_t level_after = 0;  // the durable level once this write is on disk (same session)
    Kind kind = Kind::kApply;
    Update update;       // kApply, kSyncLog
    WriteResult result;  // kApply
    StoreState image;    // kInstall
    bool done = false;
  };
  // An update not yet known committed, and the versions of its keys it replaced (priors[i] for
  // update.mutations[i]; for a key mutated twice by one update, the first one holds the prior).
  struct PendingUpdate {
    Update update;
    std::vector<Record> priors;
  };
  struct Waiter {
    Endpoint client;
    uint64_t request_id = 0;
    OpId op_id = 0;
  };
  struct ParkedRead {
    Endpoint client;
    uint64_t request_id = 0;
    std::string key;
    uint64_t query_id = 0;
    uint32_t ticks = 0;
  };

  // Role in the current view; meaningful when phase_ is kSyncing or kReady.
  bool IsHead() const { return self_ == 0; }
  bool IsTail() const { return view_ && self_ + 1 == static_cast<int>(view_->members.size()); }
  bool IsServing() const { return view_ && self_ >= 0 && view_->members[self_].serving; }
  std::optional<NodeId> Predecessor() const;
  std::optional<NodeId> Successor() const;
  std::optional<NodeId> Head() const;
  bool VersionOk(uint64_t version) const;
  bool Serves() const { return !fenced_ || options_.faults.ignore_fence; }

  void ResetVolatile();
  void LeaveChain();
  void StartSyncSession(Effects& out);
  void InstallView(Effects& out);

  void HandleUpdate(NodeId from, const Update& update, Effects& out);
  void HandleAck(NodeId from, const Ack& ack, Effects& out);
  void HandleCommit(NodeId from, const Commit& commit);
  void HandleClientWrite(Endpoint from, const ClientWrite& write, Effects& out);
  void HandleClientRead(Endpoint from, const ClientRead& read, Effects& out);
  void HandleClientQuery(Endpoint from, const ClientQuery& query, Effects& out);
  // Answers a BlobListQuery from the applied state (a blob stored by an update not yet committed
  // is listed too: the listing is for the collection of old blobs, which spares young ones).
  Status ListBlobs(std::string_view query, std::string* answer) const;
  void HandleBlobRead(Endpoint from, const BlobRead& read, Effects& out);
  // The blobs the applied state names, of those in `ids` (all when null).
  std::vector<BlobInfo> BlobsNamed(const std::vector<std::string>* ids) const;
  // Starts copying `blobs` from the predecessor under the current view (done at once when there
  // are none), or reports the sync done once they are all here.
  void CopyBlobs(std::vector<BlobInfo> blobs, Effects& out);
  void HandleSyncRequest(NodeId from, const SyncRequest& request, Effects& out);
  void HandleSyncData(NodeId from, const SyncData& data, Effects& out);
  void HandleVersionQuery(NodeId from, const VersionQuery& query, Effects& out);
  void HandleVersionReply(const VersionReply& reply, Effects& out);

  // Applies `update` (REQUIRES: seq == L + 1) in memory, starts its durable write, forwards it.
  void Apply(const Update& update, Effects& out);
  // Head: the committed operations whose results an update stamped `stamp_ms` forgets, oldest
  // first, at most options_.forget_batch.
  std::vector<OpId> ResultsToForget(uint64_t stamp_ms);
  // Head: the committed tombstones an update with `mutations` purges, oldest first, at most
  // options_.purge_batch, none of the mutated keys.
  std::vector<std::string> TombstonesToPurge(const std::vector<KvMutation>& mutations);
  void StartWrite(PendingWrite write, Effects& out);
  // Recomputes U; moves newly acknowledged updates to the clean state; sends the upstream ack,
  // answers clients at the head, reports a completed sync.
  void Progress(Effects& out);
  // Reports to the manager that this syncing member holds its complete copy on disk.
  void ReportSyncDone(Effects& out) const;
  void Forward(uint64_t from_seq, uint64_t to_seq, Effects& out);
  // Raises E to `level` (at most L) and drops the updates no longer needed.
  void Expose(uint64_t level);
  void BroadcastCommit(Effects& out);
  // The committed version of `key` (the last one at most E), if this replica still holds it.
  std::optional<Record> CommittedVersion(const std::string& key) const;
  // The version of `key` written at `seq`, if this replica holds it.
  std::optional<Record> VersionAt(const std::string& key, uint64_t seq) const;
  void ReplyWrite(const Waiter& waiter, Effects& out) const;
  void ReplyRead(Endpoint client, uint64_t request_id, const Record& record, Effects& out) const;
  void FailRead(Endpoint client, uint64_t request_id, std::string_view why, Effects& out) const;
  void Refuse(Endpoint from, uint64_t their_version, Effects& out);
  ClientWriteReply WriteRefusal(const ClientWrite& write, Status why) const;

  const ChainId chain_id_;
  const NodeId node_;
  const ReplicaOptions options_;
  const StateMachine& machine_;

  // Durable: survives Crash.
  DurableState durable_;

  // Volatile.
  Phase phase_ = Phase::kDown;
  uint64_t incarnation_ = 0;
  bool fenced_ = false;
  bool complete_ = false;  // holds a complete copy of the chain's state (founding member, or synced)
  std::optional<ChainView> view_;
  int self_ = -1;  // index in view_->members, -1 when not a member

  StoreState applied_;  // L = applied_.last_seq
  // Updates in (min(U, E), L], by seq: awaiting durability, the successor's acknowledgement, or
  // news of their commit. After a resync installs a copy, the copy's updates are not here.
  std::map<uint64_t, PendingUpdate> pending_;
  uint64_t durable_level_ = 0;     // D
  uint64_t downstream_acked_ = 0;  // A
  uint64_t acked_level_ = 0;       // U
  uint64_t exposed_level_ = 0;     // E
  uint64_t ack_sent_ = 0;          // highest U sent upstream in this view
  uint64_t first_seq_ = 1;         // first_seq of what this replica forwards in this view
  uint64_t acked_at_last_tick_ = 0;
  // The successor's own durable level as its acknowledgements last told it (at least A), its value
  // at the last tick, and the ticks it has not moved while short of L (StalledSuccessor).
  uint64_t successor_durable_ = 0;
  uint64_t durable_at_last_tick_ = 0;
  uint32_t stalled_ticks_ = 0;
  uint64_t commit_sent_ = 0;  // head: the E last announced in this view
  uint64_t ticks_ = 0;

  std::deque<PendingWrite> disk_;
  uint64_t next_write_id_ = 1;
  // Durable levels only count writes of the current session: a session starts at Start, Rejoin
  // and every resync, so that writes left over from before never acknowledge anything.
  uint64_t session_ = 0;

  std::multimap<uint64_t, Waiter> waiters_;  // head: clients waiting for seq to commit

  // Syncing (phase kSyncing): updates received in this view, contiguous from sync_first_.
  std::vector<Update> sync_buffer_;
  uint64_t sync_first_ = 0;  // 0 until the first update arrives
  uint64_t sync_next_ = 0;
  // Ready after a resync, until the manager marks this member serving.
  bool installed_ = false;
  bool install_durable_ = false;    // the installed copy's write completed (this session)
  bool blobs_copied_ = false;       // the installed copy's blobs are in the blob store (this session)
  uint64_t blob_copy_version_ = 0;  // the view version of the BlobCopyJob out, 0: none

  uint32_t sync_request_ticks_ = 0;  // ticks since the last SyncRequest

  std::vector<ParkedRead> parked_reads_;
  uint64_t next_query_id_ = 1;

  // The operations of applied_.ops by sequence, oldest first, for the head to choose what to
  // forget. Built when this replica first heads a write, then kept up to date by Apply whatever
  // the role; dropped whenever applied_ is replaced.
  std::map<uint64_t, OpId> op_order_;
  bool op_order_valid_ = false;
  // The same for the tombstones of applied_.records: (seq, key), oldest first.
  std::set<std::pair<uint64_t, std::string>> tomb_order_;
  bool tomb_order_valid_ = false;
};

// Applies an update's mutations to a store and records its result for its operation id.
WriteResult ApplyToStore(StoreState& store, const Update& update);

// The live values of a store (tombstones hidden), for a StateMachine. Reads the store in place:
// it must not change while the reader or its iterators are in use.
class StoreReader final : public KvReader {
 public:
  explicit StoreReader(const StoreState& store) : store_(store) {}
  Result<std::optional<std::string>> Get(std::string_view key) const override;
  std::unique_ptr<KvIterator> NewIterator() const override;

 private:
  const StoreState& store_;
};

}  // namespace cairn::replication
