#include "replication/chain.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <memory>
#include <utility>

#include "common/crc32c.h"

namespace cairn::replication {
namespace {

constexpr uint64_t kNoSuccessor = std::numeric_limits<uint64_t>::max();

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

std::string ValueText(const std::optional<std::string>& value) { return value ? "=" + *value : " deleted"; }

std::string OpText(OpId op) { return "op" + std::to_string(op >> 32) + "." + std::to_string(op & 0xffffffffu); }

Record Lookup(const StoreState& store, const std::string& key) {
  auto it = store.records.find(key);
  return it == store.records.end() ? Record{} : it->second;
}

}  // namespace

std::string BlobKey(std::string_view id) {
  std::string key(kBlobKeyPrefix);
  key.append(id);
  return key;
}

bool IsBlobKey(std::string_view key) { return key.starts_with(kBlobKeyPrefix); }

namespace {

void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetLe(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(in[at + i])} << (8 * i);
  return v;
}

// The query that lists blobs: the blob key prefix, "?", u32 max, then the id to start after.
constexpr std::string_view kBlobListTag = "?";

}  // namespace

std::string EncodeBlobDescriptor(uint64_t size, uint32_t crc32c, uint64_t stamp_ms) {
  std::string out;
  PutLe(out, size, 8);
  PutLe(out, crc32c, 4);
  PutLe(out, stamp_ms, 8);
  return out;
}

std::optional<BlobInfo> DecodeBlobDescriptor(std::string_view id, std::string_view value) {
  // 12 bytes: a descriptor from before stamps (its age unknown: 0).
  if (value.size() != 20 && value.size() != 12) return std::nullopt;
  BlobInfo info;
  info.id = std::string(id);
  info.size = GetLe(value, 0, 8);
  info.crc32c = static_cast<uint32_t>(GetLe(value, 8, 4));
  if (value.size() == 20) info.stamp_ms = GetLe(value, 12, 8);
  return info;
}

std::string BlobListQuery(std::string_view after_id, uint32_t max) {
  std::string out(kBlobKeyPrefix);
  out.append(kBlobListTag);
  PutLe(out, max, 4);
  out.append(after_id);
  return out;
}

Result<std::vector<BlobInfo>> DecodeBlobList(std::string_view answer) {
  std::vector<BlobInfo> out;
  size_t at = 0;
  while (at < answer.size()) {
    if (answer.size() - at < 4) return Status::Corruption("blob list: truncated");
    const uint64_t id_size = GetLe(answer, at, 4);
    at += 4;
    if (answer.size() - at < id_size + 20) return Status::Corruption("blob list: truncated");
    BlobInfo info;
    info.id = std::string(answer.substr(at, id_size));
    at += id_size;
    info.size = GetLe(answer, at, 8);
    info.crc32c = static_cast<uint32_t>(GetLe(answer, at + 8, 4));
    info.stamp_ms = GetLe(answer, at + 12, 8);
    at += 20;
    out.push_back(std::move(info));
  }
  return out;
}

namespace {

bool BlobIntact(const Blob& blob) { return crc32c::Value(blob.data().data(), blob.data().size()) == blob.crc32c; }

// The update as the logs keep it: the blob's bytes are in the blob store.
Update WithoutBlobBytes(Update update) {
  update.blob.reset();
  return update;
}

}  // namespace

WriteResult ApplyToStore(StoreState& store, const Update& update) {
  for (const std::string& key : update.purge) {
    auto it = store.records.find(key);
    if (it != store.records.end() && !it->second.value) store.records.erase(it);
  }
  for (const KvMutation& mutation : update.mutations) {
    store.records[mutation.key] = Record{mutation.value, update.seq};
  }
  for (OpId op : update.forget) store.ops.erase(op);
  WriteResult result{update.seq, update.result, update.stamp_ms};
  store.ops[update.op_id] = result;
  store.last_seq = std::max(store.last_seq, update.seq);
  store.stamp_ms = std::max(store.stamp_ms, update.stamp_ms);
  return result;
}

namespace {

// Iterates a record map, showing each key as `visible` says (nullopt: skip it; an error ends the
// iteration).
class RecordIterator final : public KvIterator {
 public:
  using Visible = std::function<Result<std::optional<std::string>>(const std::string& key, const Record& latest)>;
  RecordIterator(const std::map<std::string, Record>& records, Visible visible)
      : records_(records), visible_(std::move(visible)), it_(records.end()) {}

  void Seek(std::string_view key) override {
    it_ = records_.lower_bound(std::string(key));
    Settle();
  }
  void Next() override {
    ++it_;
    Settle();
  }
  bool Valid() const override { return status_.ok() && it_ != records_.end(); }
  std::string_view key() const override { return it_->first; }
  std::string_view value() const override { return value_; }
  Status status() const override { return status_; }

 private:
  // Moves to the first visible key at or after it_.
  void Settle() {
    for (; it_ != records_.end(); ++it_) {
      auto visible = visible_(it_->first, it_->second);
      if (!visible.ok()) {
        status_ = visible.status();
        return;
      }
      if (*visible) {
        value_ = std::move(**visible);
        return;
      }
    }
  }

  const std::map<std::string, Record>& records_;
  Visible visible_;
  std::map<std::string, Record>::const_iterator it_;
  std::string value_;
  Status status_;
};

// A reader whose Get and iteration both go through one `visible` function.
class VisibleReader final : public KvReader {
 public:
  VisibleReader(const std::map<std::string, Record>& records, RecordIterator::Visible visible)
      : records_(records), visible_(std::move(visible)) {}
  Result<std::optional<std::string>> Get(std::string_view key) const override {
    auto it = records_.find(std::string(key));
    return visible_(std::string(key), it == records_.end() ? Record{} : it->second);
  }
  std::unique_ptr<KvIterator> NewIterator() const override {
    return std::make_unique<RecordIterator>(records_, visible_);
  }

 private:
  const std::map<std::string, Record>& records_;
  RecordIterator::Visible visible_;
};

Result<std::optional<std::string>> LatestValue(const std::string& key, const Record& record) {
  if (IsBlobKey(key)) return std::optional<std::string>();  // the chain's own, not the machine's
  return record.value;
}

std::string MutationsText(const std::vector<KvMutation>& mutations) {
  std::string out;
  for (const KvMutation& m : mutations) out += " " + m.key + ValueText(m.value);
  return out;
}

}  // namespace

Result<std::optional<std::string>> StoreReader::Get(std::string_view key) const {
  auto it = store_.records.find(std::string(key));
  if (it == store_.records.end()) return std::optional<std::string>();
  return LatestValue(it->first, it->second);
}

std::unique_ptr<KvIterator> StoreReader::NewIterator() const {
  return std::make_unique<RecordIterator>(store_.records, LatestValue);
}

std::string_view MessageName(const Message& message) {
  return std::visit(Overloaded{
                        [](const Update&) { return "Update"; },
                        [](const Ack&) { return "Ack"; },
                        [](const Commit&) { return "Commit"; },
                        [](const StaleChain&) { return "StaleChain"; },
                        [](const ClientWrite&) { return "ClientWrite"; },
                        [](const ClientWriteReply&) { return "ClientWriteReply"; },
                        [](const ClientRead&) { return "ClientRead"; },
                        [](const ClientReadReply&) { return "ClientReadReply"; },
                        [](const SyncRequest&) { return "SyncRequest"; },
                        [](const SyncData&) { return "SyncData"; },
                        [](const VersionQuery&) { return "VersionQuery"; },
                        [](const VersionReply&) { return "VersionReply"; },
                        [](const ClientQuery&) { return "ClientQuery"; },
                        [](const ClientQueryReply&) { return "ClientQueryReply"; },
                        [](const BlobRead&) { return "BlobRead"; },
                        [](const BlobReadReply&) { return "BlobReadReply"; },
                    },
                    message);
}

std::string Describe(const Message& message) {
  std::string out(MessageName(message));
  auto v = [](uint64_t version) { return " v" + std::to_string(version); };
  out += std::visit(
      Overloaded{
          [&](const Update& m) {
            return v(m.chain_version) + " s" + std::to_string(m.seq) + " f" + std::to_string(m.first_seq) + " " +
                   OpText(m.op_id) + MutationsText(m.mutations);
          },
          [&](const Ack& m) { return v(m.chain_version) + " s" + std::to_string(m.seq); },
          [&](const Commit& m) { return v(m.chain_version) + " s" + std::to_string(m.seq); },
          [&](const StaleChain& m) { return v(m.version); },
          [&](const ClientWrite& m) {
            return v(m.chain_version) + " r" + std::to_string(m.request_id) + " " + OpText(m.op_id) + " command of " +
                   std::to_string(m.command.size()) + " bytes";
          },
          [&](const ClientWriteReply& m) {
            return " r" + std::to_string(m.request_id) + " " + (m.status.ok() ? "ok" : m.status.ToString()) + " s" +
                   std::to_string(m.result.seq) + " result of " + std::to_string(m.result.result.size()) + " bytes";
          },
          [&](const ClientRead& m) { return v(m.chain_version) + " r" + std::to_string(m.request_id) + " " + m.key; },
          [&](const ClientReadReply& m) {
            return " r" + std::to_string(m.request_id) + " " + (m.status.ok() ? "ok" : m.status.ToString()) + " s" +
                   std::to_string(m.record.seq) + ValueText(m.record.value);
          },
          [&](const SyncRequest& m) { return v(m.chain_version); },
          [&](const SyncData& m) {
            return v(m.chain_version) + " at s" + std::to_string(m.snapshot.last_seq) + " keys " +
                   std::to_string(m.snapshot.records.size());
          },
          [&](const VersionQuery& m) { return v(m.chain_version) + " q" + std::to_string(m.query_id) + " " + m.key; },
          [&](const VersionReply& m) {
            return v(m.chain_version) + " q" + std::to_string(m.query_id) + " " +
                   (m.status.ok() ? "ok" : m.status.ToString()) + " s" + std::to_string(m.seq);
          },
          [&](const ClientQuery& m) {
            return v(m.chain_version) + " r" + std::to_string(m.request_id) + " query of " +
                   std::to_string(m.query.size()) + " bytes";
          },
          [&](const BlobRead& m) {
            return v(m.chain_version) + " r" + std::to_string(m.request_id) + " blob of " +
                   std::to_string(m.id.size()) + " bytes id [" + std::to_string(m.offset) + ", +" +
                   std::to_string(m.length) + ")";
          },
          [&](const BlobReadReply& m) {
            return " r" + std::to_string(m.request_id) + " " + (m.status.ok() ? "ok" : m.status.ToString()) + " " +
                   std::to_string(m.bytes.size()) + " bytes";
          },
          [&](const ClientQueryReply& m) {
            return " r" + std::to_string(m.request_id) + " " + (m.status.ok() ? "ok" : m.status.ToString()) +
                   " result of " + std::to_string(m.result.size()) + " bytes";
          },
      },
      message);
  return out;
}

ChainReplica::ChainReplica(ChainId chain_id, NodeId node, ReplicaOptions options)
    : chain_id_(chain_id),
      node_(node),
      options_(options),
      machine_(options.machine ? *options.machine : KvStateMachine::Instance()) {}

// ---- Lifecycle ----

void ChainReplica::ResetVolatile() {
  view_.reset();
  self_ = -1;
  complete_ = false;
  if (options_.keep_durable_state) {
    applied_ = durable_.store;
  } else {
    // The durable state is moved, not copied; only its levels stay (a copy would double the memory
    // of every chain, and the caller's disk holds it).
    applied_ = std::move(durable_.store);
    durable_.store = StoreState{};
    durable_.store.last_seq = applied_.last_seq;
    durable_.store.stamp_ms = applied_.stamp_ms;
    durable_.sync_log.clear();
  }
  pending_.clear();
  durable_level_ = durable_.store.last_seq;
  downstream_acked_ = 0;
  successor_durable_ = 0;
  durable_at_last_tick_ = 0;
  stalled_ticks_ = 0;
  acked_level_ = durable_.store.last_seq;
  exposed_level_ = durable_.store.last_seq;
  ack_sent_ = 0;
  first_seq_ = acked_level_ + 1;
  acked_at_last_tick_ = 0;
  commit_sent_ = 0;
  waiters_.clear();
  sync_buffer_.clear();
  sync_first_ = 0;
  sync_next_ = 0;
  installed_ = false;
  install_durable_ = false;
  blobs_copied_ = false;
  parked_reads_.clear();
  op_order_.clear();
  op_order_valid_ = false;
  tomb_order_.clear();
  tomb_order_valid_ = false;
  ++session_;
}

void ChainReplica::Bootstrap(uint64_t incarnation) {
  Start(incarnation);
  complete_ = true;
}

void ChainReplica::Restore(DurableState state) {
  if (phase_ != Phase::kDown) return;
  durable_ = std::move(state);
}

void ChainReplica::Start(uint64_t incarnation) {
  disk_.clear();
  ResetVolatile();
  phase_ = Phase::kIdle;
  incarnation_ = incarnation;
}

void ChainReplica::Crash() {
  disk_.clear();  // not yet durable: lost
  ResetVolatile();
  phase_ = Phase::kDown;
}

void ChainReplica::Rejoin(uint64_t incarnation) {
  if (phase_ == Phase::kDown) return;
  incarnation_ = incarnation;
  self_ = -1;  // the view stays: a newer version is installed when it comes
  LeaveChain();
  parked_reads_.clear();
  ++session_;
}

void ChainReplica::LeaveChain() {
  phase_ = Phase::kIdle;
  complete_ = false;
  installed_ = false;
  pending_.clear();
  waiters_.clear();
  sync_buffer_.clear();
  sync_first_ = 0;
}

// ---- Roles ----

std::optional<NodeId> ChainReplica::Predecessor() const {
  if (!view_ || self_ <= 0) return std::nullopt;
  return view_->members[self_ - 1].id.node;
}

std::optional<NodeId> ChainReplica::Successor() const {
  if (!view_ || self_ < 0 || IsTail()) return std::nullopt;
  return view_->members[self_ + 1].id.node;
}

std::optional<NodeId> ChainReplica::Head() const {
  if (!view_ || view_->members.empty()) return std::nullopt;
  return view_->members.front().id.node;
}

bool ChainReplica::VersionOk(uint64_t version) const {
  if (!view_) return false;
  return version == view_->version || options_.faults.skip_version_check;
}

bool ChainReplica::Quiescent() const {
  if (phase_ != Phase::kReady) return false;
  if (!pending_.empty() || !disk_.empty() || !waiters_.empty() || !parked_reads_.empty()) return false;
  if (acked_level_ != applied_.last_seq || exposed_level_ != applied_.last_seq) return false;
  return !Successor() || downstream_acked_ == applied_.last_seq;
}

std::optional<ChainReplica::Stall> ChainReplica::StalledSuccessor() const {
  if (phase_ != Phase::kReady || !Serves() || stalled_ticks_ == 0 || !Successor()) return std::nullopt;
  return Stall{view_->members[self_ + 1].id, stalled_ticks_};
}

// ---- Views ----

Effects ChainReplica::OnView(const ChainView& view) {
  Effects out;
  if (phase_ == Phase::kDown || view.chain_id != chain_id_) return out;
  if (view_ && view.version <= view_->version) return out;
  view_ = view;
  self_ = -1;
  for (size_t i = 0; i < view.members.size(); ++i) {
    if (view.members[i].id == MemberId{node_, incarnation_}) self_ = static_cast<int>(i);
  }
  InstallView(out);
  return out;
}

void ChainReplica::InstallView(Effects& out) {
  for (const ParkedRead& read : parked_reads_) FailRead(read.client, read.request_id, "chain version changed", out);
  parked_reads_.clear();
  if (self_ < 0) {
    if (phase_ != Phase::kIdle) LeaveChain();
    return;
  }
  if (view_->members[self_].serving) {
    if (phase_ == Phase::kIdle && complete_) {
      phase_ = Phase::kReady;  // a founding member
    } else if (phase_ != Phase::kReady) {
      // Listed as serving without a complete copy: the table is wrong about this incarnation.
      // Serve nothing; the manager replaces the member when this incarnation's lease goes.
      LeaveChain();
      return;
    }
  } else if (!(phase_ == Phase::kReady && installed_)) {
    // Appended as the syncing tail, or the chain changed while syncing: copy from the (new)
    // predecessor from the start.
    StartSyncSession(out);
    return;
  }
  // A complete copy carries on in the new version: everything not acknowledged upstream is
  // forwarded again (the successor may be new) and the successor's acknowledgements restart.
  downstream_acked_ = acked_level_;
  successor_durable_ = acked_level_;
  durable_at_last_tick_ = acked_level_;
  stalled_ticks_ = 0;
  first_seq_ = acked_level_ + 1;
  acked_at_last_tick_ = acked_level_;
  ack_sent_ = 0;
  commit_sent_ = 0;
  if (!IsHead()) waiters_.clear();  // their clients retry at the head of this version
  if (Successor()) Forward(acked_level_ + 1, applied_.last_seq, out);
  // An installed copy still copying its blobs starts over from this version's predecessor (the
  // job of the old version answers for an old predecessor, and is ignored).
  if (installed_ && install_durable_ && !blobs_copied_) CopyBlobs(BlobsNamed(nullptr), out);
  Progress(out);
}

void ChainReplica::StartSyncSession(Effects& out) {
  phase_ = Phase::kSyncing;
  complete_ = false;
  installed_ = false;
  ++session_;
  pending_.clear();
  waiters_.clear();
  sync_buffer_.clear();
  sync_first_ = 0;
  sync_next_ = 0;
  durable_level_ = 0;
  acked_level_ = 0;
  exposed_level_ = 0;
  ack_sent_ = 0;
  if (Serves() && Predecessor()) {
    out.sends.push_back({Endpoint::Replica(*Predecessor()), SyncRequest{chain_id_, view_->version}});
  }
}

// ---- Messages ----

Effects ChainReplica::OnMessage(Endpoint from, const Message& message) {
  Effects out;
  if (phase_ == Phase::kDown) return out;
  const bool from_replica = from.kind == Endpoint::Kind::kReplica;
  std::visit(Overloaded{
                 [&](const Update& m) {
                   if (from_replica) HandleUpdate(from.id, m, out);
                 },
                 [&](const Ack& m) {
                   if (from_replica) HandleAck(from.id, m, out);
                 },
                 [&](const Commit& m) {
                   if (from_replica) HandleCommit(from.id, m);
                 },
                 [&](const StaleChain& m) {
                   if (m.version > view_version()) out.refresh_view = true;
                 },
                 [&](const ClientWrite& m) { HandleClientWrite(from, m, out); },
                 [&](const ClientWriteReply&) {},
                 [&](const ClientRead& m) { HandleClientRead(from, m, out); },
                 [&](const ClientReadReply&) {},
                 [&](const ClientQuery& m) { HandleClientQuery(from, m, out); },
                 [&](const ClientQueryReply&) {},
                 [&](const BlobRead& m) { HandleBlobRead(from, m, out); },
                 [&](const BlobReadReply&) {},
                 [&](const SyncRequest& m) {
                   if (from_replica) HandleSyncRequest(from.id, m, out);
                 },
                 [&](const SyncData& m) {
                   if (from_replica) HandleSyncData(from.id, m, out);
                 },
                 [&](const VersionQuery& m) {
                   if (from_replica) HandleVersionQuery(from.id, m, out);
                 },
                 [&](const VersionReply& m) {
                   // Only the head decides what is committed.
                   if (from_replica && Head() == from.id) HandleVersionReply(m, out);
                 },
             },
             message);
  return out;
}

void ChainReplica::Refuse(Endpoint from, uint64_t their_version, Effects& out) {
  if (their_version > view_version()) out.refresh_view = true;
  out.sends.push_back({from, StaleChain{chain_id_, view_version()}});
}

void ChainReplica::HandleUpdate(NodeId from, const Update& update, Effects& out) {
  if (!Serves()) return;  // fenced: acknowledges nothing; the sender retransmits
  if (update.chain_id != chain_id_) return;
  if (!VersionOk(update.chain_version) || phase_ == Phase::kIdle) {
    Refuse(Endpoint::Replica(from), update.chain_version, out);
    return;
  }
  if (Predecessor() != from && !options_.faults.skip_version_check) return;
  // Bytes damaged on the way are never written (the predecessor resends the update). Checked only
  // for the update that is written next: retransmitted duplicates are not checksummed again.
  auto intact = [&update] { return !update.blob || BlobIntact(*update.blob); };

  if (phase_ == Phase::kSyncing) {
    // Design "Resync", step 1: record every new update, contiguous from the predecessor's
    // first_seq; the snapshot fills in everything before.
    if (sync_first_ == 0) {
      sync_first_ = update.first_seq;
      sync_next_ = update.first_seq;
    }
    if (update.seq == sync_next_) {
      if (!intact()) return;
      sync_buffer_.push_back(WithoutBlobBytes(update));
      ++sync_next_;
      PendingWrite write;
      write.kind = PendingWrite::Kind::kSyncLog;
      write.level_after = update.seq;
      write.update = update;
      StartWrite(std::move(write), out);
    } else if (update.seq < sync_next_ && update.seq <= acked_level_ && acked_level_ > 0) {
      out.sends.push_back({Endpoint::Replica(from), Ack{chain_id_, view_->version, acked_level_, durable_level_}});
      ack_sent_ = std::max(ack_sent_, acked_level_);
    }
    return;
  }

  const uint64_t last = applied_.last_seq;
  if (update.seq <= last) {
    // A retransmission: our acknowledgement may have been lost, or our successor is slow and the
    // predecessor wants to know whether we still take updates. Answered once per resent batch
    // (which starts just past what we acknowledged), with what our own disk holds.
    if (update.seq <= acked_level_ + 1) {
      out.sends.push_back({Endpoint::Replica(from), Ack{chain_id_, view_->version, acked_level_, durable_level_}});
      ack_sent_ = std::max(ack_sent_, acked_level_);
    }
    return;
  }
  if (update.seq == last + 1) {
    if (!intact()) return;
    Apply(update, out);
    Progress(out);
    return;
  }
  if (update.first_seq > last + 1) {
    // The predecessor will never send (last, first_seq): this copy cannot continue.
    out.reports.push_back(
        {ManagerReport::Kind::kNeedsResync, chain_id_, view_->version, MemberId{node_, incarnation_}});
    LeaveChain();
    return;
  }
  // Reordered ahead of a missing update: dropped, the retransmission brings both in order.
}

void ChainReplica::Apply(const Update& update, Effects& out) {
  Update forwarded = update;
  forwarded.chain_id = chain_id_;
  forwarded.chain_version = view_->version;
  forwarded.first_seq = first_seq_;
  PendingUpdate pending{forwarded, {}};
  pending.priors.reserve(forwarded.mutations.size());
  for (const KvMutation& mutation : forwarded.mutations) pending.priors.push_back(Lookup(applied_, mutation.key));
  if (op_order_valid_) {
    for (OpId op : forwarded.forget) {
      if (auto it = applied_.ops.find(op); it != applied_.ops.end()) op_order_.erase(it->second.seq);
    }
    op_order_[forwarded.seq] = forwarded.op_id;
  }
  if (tomb_order_valid_) {
    for (const std::string& key : forwarded.purge) {
      if (auto it = applied_.records.find(key); it != applied_.records.end()) tomb_order_.erase({it->second.seq, key});
    }
    for (const KvMutation& mutation : forwarded.mutations) {
      if (auto it = applied_.records.find(mutation.key); it != applied_.records.end() && !it->second.value) {
        tomb_order_.erase({it->second.seq, mutation.key});  // replaced by this update
      }
      if (!mutation.value) tomb_order_.insert({forwarded.seq, mutation.key});
    }
  }
  const WriteResult result = ApplyToStore(applied_, forwarded);
  pending_[forwarded.seq] = std::move(pending);
  PendingWrite write;
  write.kind = PendingWrite::Kind::kApply;
  write.result = result;
  write.level_after = forwarded.seq;
  write.update = forwarded;
  StartWrite(std::move(write), out);
  // Persist and forward concurrently (design "Writes", step 3).
  if (auto successor = Successor()) out.sends.push_back({Endpoint::Replica(*successor), std::move(forwarded)});
}

void ChainReplica::StartWrite(PendingWrite write, Effects& out) {
  write.id = next_write_id_++;
  write.session = session_;
  std::string what;
  switch (write.kind) {
    case PendingWrite::Kind::kApply:
      what = "apply s" + std::to_string(write.update.seq);
      break;
    case PendingWrite::Kind::kSyncLog:
      what = "synclog s" + std::to_string(write.update.seq);
      break;
    case PendingWrite::Kind::kInstall:
      what = "install at s" + std::to_string(write.level_after);
      break;
  }
  disk_.push_back(std::move(write));
  const PendingWrite& queued = disk_.back();  // a deque keeps its elements in place as it grows
  out.disk_writes.push_back({queued.id, std::move(what), queued.kind,
                             queued.kind == PendingWrite::Kind::kInstall ? nullptr : &queued.update,
                             queued.kind == PendingWrite::Kind::kInstall ? &queued.image : nullptr, queued.result});
}

void ChainReplica::Forward(uint64_t from_seq, uint64_t to_seq, Effects& out) {
  auto successor = Successor();
  if (!successor || !Serves()) return;
  for (auto it = pending_.lower_bound(from_seq); it != pending_.end() && it->first <= to_seq; ++it) {
    Update update = it->second.update;
    update.chain_version = view_->version;
    update.first_seq = first_seq_;
    out.sends.push_back({Endpoint::Replica(*successor), std::move(update)});
  }
}

void ChainReplica::HandleAck(NodeId from, const Ack& ack, Effects& out) {
  if (!Serves() || ack.chain_id != chain_id_ || !VersionOk(ack.chain_version)) return;
  if (phase_ != Phase::kReady) return;
  if (Successor() != from && !options_.faults.skip_version_check) return;
  downstream_acked_ = std::max(downstream_acked_, std::min(ack.seq, applied_.last_seq));
  successor_durable_ = std::max({successor_durable_, downstream_acked_, std::min(ack.durable, applied_.last_seq)});
  Progress(out);
}

void ChainReplica::Progress(Effects& out) {
  if (phase_ == Phase::kSyncing) {
    acked_level_ = std::max(acked_level_, durable_level_);
  } else if (phase_ == Phase::kReady) {
    const uint64_t last = applied_.last_seq;
    uint64_t own = durable_level_;
    if (options_.faults.tail_acks_before_durable && IsTail()) own = last;
    const uint64_t downstream = Successor() ? downstream_acked_ : kNoSuccessor;
    acked_level_ = std::max(acked_level_, std::min({own, downstream, last}));
    if (IsHead()) Expose(acked_level_);  // the head's U is the commit
    Expose(exposed_level_);              // drops what is acknowledged and known committed
  } else {
    return;
  }
  if (!Serves()) return;
  if (auto predecessor = Predecessor(); predecessor && acked_level_ > ack_sent_) {
    out.sends.push_back({Endpoint::Replica(*predecessor), Ack{chain_id_, view_->version, acked_level_, durable_level_}});
    ack_sent_ = acked_level_;
  }
  if (phase_ == Phase::kReady && IsHead()) {
    while (!waiters_.empty() && waiters_.begin()->first <= acked_level_) {
      ReplyWrite(waiters_.begin()->second, out);
      waiters_.erase(waiters_.begin());
    }
    if (exposed_level_ > commit_sent_) BroadcastCommit(out);
  }
}

void ChainReplica::Expose(uint64_t level) {
  exposed_level_ = std::max(exposed_level_, std::min(level, applied_.last_seq));
  pending_.erase(pending_.begin(), pending_.upper_bound(std::min(acked_level_, exposed_level_)));
}

void ChainReplica::BroadcastCommit(Effects& out) {
  for (const Member& member : view_->members) {
    if (member.id.node == node_) continue;
    out.sends.push_back({Endpoint::Replica(member.id.node), Commit{chain_id_, view_->version, exposed_level_}});
  }
  commit_sent_ = exposed_level_;
}

void ChainReplica::HandleCommit(NodeId from, const Commit& commit) {
  if (!Serves() || commit.chain_id != chain_id_ || !VersionOk(commit.chain_version)) return;
  if (phase_ != Phase::kReady || (Head() != from && !options_.faults.skip_version_check)) return;
  Expose(commit.seq);
}

std::optional<Record> ChainReplica::CommittedVersion(const std::string& key) const {
  const Record latest = Lookup(applied_, key);
  if (latest.seq <= exposed_level_) return latest;
  // The first update of the key above E replaced the committed version.
  for (auto it = pending_.upper_bound(exposed_level_); it != pending_.end(); ++it) {
    const std::vector<KvMutation>& mutations = it->second.update.mutations;
    for (size_t i = 0; i < mutations.size(); ++i) {
      if (mutations[i].key != key) continue;
      const Record& prior = it->second.priors[i];
      if (prior.seq <= exposed_level_) return prior;
      return std::nullopt;
    }
  }
  return std::nullopt;  // replaced by an installed copy: not known here
}

std::optional<Record> ChainReplica::VersionAt(const std::string& key, uint64_t seq) const {
  const Record latest = Lookup(applied_, key);
  if (latest.seq == seq) return latest;
  for (const auto& [pending_seq, pending] : pending_) {
    const std::vector<KvMutation>& mutations = pending.update.mutations;
    std::optional<Record> written;  // the last mutation of the key in this update wins
    for (size_t i = 0; i < mutations.size(); ++i) {
      if (mutations[i].key != key) continue;
      if (!written && pending.priors[i].seq == seq) return pending.priors[i];
      written = Record{mutations[i].value, pending_seq};
    }
    if (written && pending_seq == seq) return written;
  }
  return std::nullopt;
}

void ChainReplica::ReplyWrite(const Waiter& waiter, Effects& out) const {
  ClientWriteReply reply;
  reply.request_id = waiter.request_id;
  reply.op_id = waiter.op_id;
  if (auto it = applied_.ops.find(waiter.op_id); it != applied_.ops.end()) {
    reply.result = it->second;
  } else {
    // Only committed results are forgotten, and their waiters were answered at the commit: this
    // is a defence, not a path.
    reply.status = Status::Timeout("the operation's result was forgotten; its outcome is unknown");
  }
  reply.chain_version = view_version();
  out.sends.push_back({waiter.client, std::move(reply)});
}

ClientWriteReply ChainReplica::WriteRefusal(const ClientWrite& write, Status why) const {
  ClientWriteReply reply;
  reply.request_id = write.request_id;
  reply.op_id = write.op_id;
  reply.status = std::move(why);
  reply.chain_version = view_version();
  return reply;
}

void ChainReplica::HandleClientWrite(Endpoint from, const ClientWrite& write, Effects& out) {
  if (!Serves()) {
    out.sends.push_back({from, WriteRefusal(write, Status::Busy("fenced"))});
    return;
  }
  if (write.chain_id != chain_id_ || !VersionOk(write.chain_version)) {
    if (write.chain_version > view_version()) out.refresh_view = true;
    out.sends.push_back({from, WriteRefusal(write, Status::Busy("stale chain version"))});
    return;
  }
  if (phase_ != Phase::kReady || !IsHead() || !IsServing()) {
    out.sends.push_back({from, WriteRefusal(write, Status::Busy("not the head"))});
    return;
  }
  const Waiter waiter{from, write.request_id, write.op_id};
  if (auto it = applied_.ops.find(write.op_id); it != applied_.ops.end()) {
    // A retry: answer with the recorded result once that update is committed.
    if (it->second.seq <= acked_level_ || options_.faults.head_replies_before_commit) {
      ReplyWrite(waiter, out);
    } else {
      waiters_.emplace(it->second.seq, waiter);
    }
    return;
  }
  auto refuse = [&](Status why) { out.sends.push_back({from, WriteRefusal(write, std::move(why))}); };
  // A write's stamp must lie within the head's clock bounds (ReplicaOptions::clock_ms).
  if (options_.clock_ms) {
    const uint64_t now = options_.clock_ms();
    if (write.issued_ms == 0) return refuse(Status::InvalidArgument("unstamped write (no issued_ms)"));
    if (write.issued_ms > now + options_.op_retention_ms / 4) {
      return refuse(Status::Timeout("operation issued " + std::to_string(write.issued_ms - now) +
                                    " ms in the head's future: the clocks disagree"));
    }
    if (write.issued_ms + options_.max_issued_age_ms < now) {
      return refuse(Status::Timeout("operation issued " + std::to_string(now - write.issued_ms) +
                                    " ms before the head's clock: too old, or the clocks disagree"));
    }
  }
  // Not recorded: new, or applied so long ago that its result is forgotten. A result is forgotten
  // only once the stamps are op_retention_ms past it, and an update's stamp is at least its
  // writer's issued_ms, so an operation issued over half that long before the latest stamp may
  // be one of them: refused as of unknown outcome, never applied a second time.
  if (write.issued_ms != 0 && write.issued_ms + options_.op_retention_ms / 2 < applied_.stamp_ms) {
    return refuse(Status::Timeout("operation issued " + std::to_string(applied_.stamp_ms - write.issued_ms) +
                                  " ms before the chain's latest write: its result may be forgotten"));
  }
  if (write.blob && !BlobIntact(*write.blob)) {
    return refuse(Status::Corruption("blob " + std::to_string(write.blob->data().size()) +
                                     " bytes: its CRC32C does not match its bytes"));
  }
  if (write.blob) {
    // Ids are never reused for other bytes: the blob stores would refuse the second one.
    auto it = applied_.records.find(BlobKey(write.blob->id));
    const auto stored =
        it != applied_.records.end() && it->second.value ? DecodeBlobDescriptor(write.blob->id, *it->second.value)
                                                         : std::nullopt;
    if (stored && (stored->size != write.blob->data().size() || stored->crc32c != write.blob->crc32c)) {
      return refuse(Status::AlreadyExists("blob id already stored with other bytes"));
    }
  }
  Update update;
  update.chain_id = chain_id_;
  update.chain_version = view_->version;
  update.seq = applied_.last_seq + 1;
  update.op_id = write.op_id;
  update.stamp_ms = std::max(applied_.stamp_ms, write.issued_ms);
  update.forget = ResultsToForget(update.stamp_ms);
  // The command meets the state every replica will have reached at this sequence number.
  if (!write.command.empty()) {
    StateMachine::Outcome outcome = machine_.Execute(StoreReader(applied_), write.command);
    update.mutations = std::move(outcome.mutations);
    update.result = std::move(outcome.result);
  }
  if (write.blob) {
    update.mutations.push_back(
        {BlobKey(write.blob->id),
         EncodeBlobDescriptor(write.blob->data().size(), write.blob->crc32c, update.stamp_ms)});
    update.blob = write.blob;
  }
  for (const std::string& id : write.drop_blobs) update.mutations.push_back({BlobKey(id), std::nullopt});
  update.purge = TombstonesToPurge(update.mutations);
  Apply(update, out);
  if (options_.faults.head_replies_before_commit) {
    ReplyWrite(waiter, out);
  } else {
    waiters_.emplace(update.seq, waiter);
  }
  Progress(out);
}

std::vector<OpId> ChainReplica::ResultsToForget(uint64_t stamp_ms) {
  if (!op_order_valid_) {
    op_order_.clear();
    for (const auto& [op, result] : applied_.ops) op_order_[result.seq] = op;
    op_order_valid_ = true;
  }
  // Committed ones only: their writers have been answered, and a retry is answered from here
  // until the retention has passed.
  std::vector<OpId> forget;
  for (auto it = op_order_.begin(); it != op_order_.end() && forget.size() < options_.forget_batch;) {
    const auto op = applied_.ops.find(it->second);
    if (op == applied_.ops.end() || op->second.seq != it->first) {
      it = op_order_.erase(it);  // no longer the result recorded at that sequence
      continue;
    }
    if (it->first > acked_level_ || op->second.stamp_ms + options_.op_retention_ms >= stamp_ms) break;
    forget.push_back(it->second);
    ++it;
  }
  return forget;
}

std::vector<std::string> ChainReplica::TombstonesToPurge(const std::vector<KvMutation>& mutations) {
  if (!tomb_order_valid_) {
    tomb_order_.clear();
    for (const auto& [key, record] : applied_.records) {
      if (!record.value) tomb_order_.insert({record.seq, key});
    }
    tomb_order_valid_ = true;
  }
  // Committed deletes only: a replica that does not know one committed yet may still have to
  // answer the version it replaced, and reads a purged key as it reads the tombstone (no value).
  std::vector<std::string> purge;
  for (auto it = tomb_order_.begin(); it != tomb_order_.end() && purge.size() < options_.purge_batch;) {
    const uint64_t seq = it->first;
    const std::string& key = it->second;
    if (seq > acked_level_) break;
    const auto record = applied_.records.find(key);
    if (record == applied_.records.end() || record->second.value || record->second.seq != seq) {
      it = tomb_order_.erase(it);  // no longer that tombstone
      continue;
    }
    const bool mutated =
        std::any_of(mutations.begin(), mutations.end(), [&](const KvMutation& m) { return m.key == key; });
    if (!mutated) purge.push_back(key);
    ++it;
  }
  return purge;
}

void ChainReplica::ReplyRead(Endpoint client, uint64_t request_id, const Record& record, Effects& out) const {
  ClientReadReply reply;
  reply.request_id = request_id;
  reply.record = record;
  reply.chain_version = view_version();
  out.sends.push_back({client, std::move(reply)});
}

void ChainReplica::FailRead(Endpoint client, uint64_t request_id, std::string_view why, Effects& out) const {
  ClientReadReply reply;
  reply.request_id = request_id;
  reply.status = Status::Busy(why);
  reply.chain_version = view_version();
  out.sends.push_back({client, std::move(reply)});
}

void ChainReplica::HandleClientRead(Endpoint from, const ClientRead& read, Effects& out) {
  if (!Serves()) return FailRead(from, read.request_id, "fenced", out);
  if (read.chain_id != chain_id_ || !VersionOk(read.chain_version)) {
    if (read.chain_version > view_version()) out.refresh_view = true;
    return FailRead(from, read.request_id, "stale chain version", out);
  }
  if (phase_ != Phase::kReady || !IsServing()) return FailRead(from, read.request_id, "not serving", out);
  if (IsBlobKey(read.key)) return ReplyRead(from, read.request_id, Record{}, out);  // the chain's own
  if (options_.faults.read_dirty_locally) return ReplyRead(from, read.request_id, Lookup(applied_, read.key), out);
  // CRAQ: a key whose last update here is known committed is answered locally; so is every key
  // at the head, which knows the commit. Otherwise the head names the committed version.
  if (Lookup(applied_, read.key).seq <= exposed_level_ || IsHead()) {
    auto committed = CommittedVersion(read.key);
    if (!committed) return FailRead(from, read.request_id, "committed version not held", out);
    return ReplyRead(from, read.request_id, *committed, out);
  }
  ParkedRead parked{from, read.request_id, read.key, next_query_id_++, 0};
  out.sends.push_back({Endpoint::Replica(*Head()), VersionQuery{chain_id_, view_->version, parked.query_id, read.key}});
  parked_reads_.push_back(std::move(parked));
}

Status ChainReplica::ListBlobs(std::string_view query, std::string* answer) const {
  const size_t head = kBlobKeyPrefix.size() + kBlobListTag.size();
  if (query.size() < head + 4 || query.substr(kBlobKeyPrefix.size(), kBlobListTag.size()) != kBlobListTag) {
    return Status::InvalidArgument("not a blob listing");
  }
  const uint64_t max = GetLe(query, head, 4);
  const std::string after = BlobKey(query.substr(head + 4));
  uint64_t listed = 0;
  for (auto it = applied_.records.upper_bound(after);
       it != applied_.records.end() && IsBlobKey(it->first) && listed < max; ++it) {
    if (!it->second.value) continue;
    const std::string_view id = std::string_view(it->first).substr(kBlobKeyPrefix.size());
    auto info = DecodeBlobDescriptor(id, *it->second.value);
    if (!info) continue;
    PutLe(*answer, id.size(), 4);
    answer->append(id);
    PutLe(*answer, info->size, 8);
    PutLe(*answer, info->crc32c, 4);
    PutLe(*answer, info->stamp_ms, 8);
    ++listed;
  }
  return Status::OK();
}

void ChainReplica::HandleClientQuery(Endpoint from, const ClientQuery& query, Effects& out) {
  ClientQueryReply reply;
  reply.request_id = query.request_id;
  reply.chain_version = view_version();
  if (!Serves()) {
    reply.status = Status::Busy("fenced");
  } else if (query.chain_id != chain_id_ || !VersionOk(query.chain_version)) {
    if (query.chain_version > view_version()) out.refresh_view = true;
    reply.status = Status::Busy("stale chain version");
  } else if (phase_ != Phase::kReady || !IsHead() || !IsServing()) {
    reply.status = Status::Busy("not the head");
  } else if (query.query.starts_with(kBlobKeyPrefix)) {
    reply.status = ListBlobs(query.query, &reply.result);
  } else {
    // The head knows what is committed; every key's committed version is the one it shows.
    auto committed = [this](const std::string& key, const Record&) -> Result<std::optional<std::string>> {
      if (IsBlobKey(key)) return std::optional<std::string>();
      auto record = CommittedVersion(key);
      if (!record) return Status::Busy("committed version not held");
      return record->value;
    };
    VisibleReader reader(applied_.records, committed);
    auto result = machine_.Query(reader, query.query);
    if (result.ok()) {
      reply.result = std::move(*result);
    } else {
      reply.status = result.status();
    }
  }
  out.sends.push_back({from, std::move(reply)});
}

void ChainReplica::HandleVersionQuery(NodeId from, const VersionQuery& query, Effects& out) {
  VersionReply reply;
  reply.chain_id = chain_id_;
  reply.chain_version = view_version();
  reply.query_id = query.query_id;
  if (!Serves()) {
    reply.status = Status::Busy("fenced");
  } else if (query.chain_id != chain_id_ || !VersionOk(query.chain_version)) {
    if (query.chain_version > view_version()) out.refresh_view = true;
    reply.status = Status::Busy("stale chain version");
  } else if (phase_ != Phase::kReady || !IsHead()) {
    reply.status = Status::Busy("not the head");
  } else if (auto committed = CommittedVersion(query.key)) {
    reply.seq = committed->seq;
  } else {
    reply.status = Status::Busy("committed version not held");
  }
  out.sends.push_back({Endpoint::Replica(from), std::move(reply)});
}

void ChainReplica::HandleVersionReply(const VersionReply& reply, Effects& out) {
  auto it = std::find_if(parked_reads_.begin(), parked_reads_.end(),
                         [&](const ParkedRead& read) { return read.query_id == reply.query_id; });
  if (it == parked_reads_.end()) return;
  ParkedRead read = std::move(*it);
  parked_reads_.erase(it);
  if (!Serves()) return FailRead(read.client, read.request_id, "fenced", out);
  if (!reply.status.ok() || !VersionOk(reply.chain_version) || phase_ != Phase::kReady) {
    return FailRead(read.client, read.request_id, "head refused", out);
  }
  // No committed value at the head (never written, or deleted and its tombstone purged): that is
  // the answer. Sequence 0 says nothing of how recent it is, so it is not compared below (a local
  // committed version with a higher sequence may be older than a purged delete).
  if (reply.seq == 0) return ReplyRead(read.client, read.request_id, Record{std::nullopt, 0}, out);
  // The committed version the head named, or our own committed one if it is newer by now (the
  // commit only moves forward).
  if (auto committed = CommittedVersion(read.key); committed && committed->seq >= reply.seq) {
    return ReplyRead(read.client, read.request_id, *committed, out);
  }
  if (auto version = VersionAt(read.key, reply.seq)) return ReplyRead(read.client, read.request_id, *version, out);
  // The key has no record here any more: its tombstone was purged, which happens only to
  // committed deletes after every write before them; absent is committed.
  if (!applied_.records.contains(read.key)) {
    return ReplyRead(read.client, read.request_id, Record{std::nullopt, 0}, out);
  }
  FailRead(read.client, read.request_id, "committed version not held", out);
}

void ChainReplica::HandleSyncRequest(NodeId from, const SyncRequest& request, Effects& out) {
  if (!Serves() || request.chain_id != chain_id_) return;
  if (!VersionOk(request.chain_version)) return Refuse(Endpoint::Replica(from), request.chain_version, out);
  if (phase_ != Phase::kReady || Successor() != from) return;
  // Design "Resync", step 2: everything applied here, taken after the successor joined (it has
  // been receiving every newer update since).
  out.sends.push_back({Endpoint::Replica(from), SyncData{chain_id_, view_->version, applied_}});
}

void ChainReplica::HandleSyncData(NodeId from, const SyncData& data, Effects& out) {
  if (!Serves() || data.chain_id != chain_id_ || !VersionOk(data.chain_version)) return;
  if (phase_ != Phase::kSyncing || Predecessor() != from) return;
  // The copy replaces what this replica held (writes that never committed, keys deleted while
  // it was away); the updates recorded since joining are kept where they are newer.
  StoreState image = data.snapshot;
  if (options_.faults.sync_keeps_stale_state) {
    for (const auto& [key, record] : durable_.store.records) {
      auto it = image.records.find(key);
      if (it == image.records.end() || it->second.seq < record.seq) image.records[key] = record;
    }
    for (const auto& [op, result] : durable_.store.ops) image.ops.emplace(op, result);
  }
  for (const Update& update : sync_buffer_) {
    if (update.seq > data.snapshot.last_seq) ApplyToStore(image, update);
  }
  sync_buffer_.clear();
  applied_ = image;
  op_order_.clear();
  op_order_valid_ = false;
  tomb_order_.clear();
  tomb_order_valid_ = false;
  pending_.clear();  // the copy's updates are not known committed here: reads of them ask the head
  phase_ = Phase::kReady;
  complete_ = true;
  installed_ = true;
  install_durable_ = false;
  blobs_copied_ = false;
  PendingWrite write;
  write.kind = PendingWrite::Kind::kInstall;
  write.level_after = image.last_seq;
  write.image = std::move(image);
  StartWrite(std::move(write), out);
  // Acknowledgements continue from the durable level of the recorded updates.
  downstream_acked_ = acked_level_;
  first_seq_ = acked_level_ + 1;
  Progress(out);
}

// ---- Disk and time ----

Effects ChainReplica::OnDiskWriteDone(uint64_t write_id) {
  Effects out;
  if (phase_ == Phase::kDown) return out;
  for (PendingWrite& write : disk_) {
    if (write.id == write_id) write.done = true;
  }
  while (!disk_.empty() && disk_.front().done) {
    PendingWrite& write = disk_.front();
    switch (write.kind) {
      case PendingWrite::Kind::kApply:
        if (options_.keep_durable_state) {
          ApplyToStore(durable_.store, write.update);
        } else {
          durable_.store.last_seq = std::max(durable_.store.last_seq, write.update.seq);
          durable_.store.stamp_ms = std::max(durable_.store.stamp_ms, write.update.stamp_ms);
        }
        break;
      case PendingWrite::Kind::kSyncLog:
        if (options_.keep_durable_state) durable_.sync_log.push_back(WithoutBlobBytes(std::move(write.update)));
        break;
      case PendingWrite::Kind::kInstall:
        if (options_.keep_durable_state) {
          durable_.store = std::move(write.image);
        } else {
          durable_.store = StoreState{};
          durable_.store.last_seq = write.image.last_seq;
          durable_.store.stamp_ms = write.image.stamp_ms;
        }
        durable_.sync_log.clear();
        // The copy is on disk only now: the logged updates may have raised the durable level
        // long before, so that level says nothing about the install.
        if (write.session == session_) {
          install_durable_ = true;
          // The copy names blobs its predecessor stored before this replica joined: they are
          // copied now, and the sync is done only once they are here.
          CopyBlobs(BlobsNamed(nullptr), out);
        }
        break;
    }
    if (write.session == session_) durable_level_ = std::max(durable_level_, write.level_after);
    disk_.pop_front();
  }
  Progress(out);
  if (Serves()) ReportSyncDone(out);
  return out;
}

Effects ChainReplica::OnBlobsCopied(uint64_t chain_version, const std::vector<std::string>& missing) {
  Effects out;
  if (phase_ != Phase::kReady || !installed_ || !install_durable_ || blobs_copied_) return out;
  // A job of an earlier view: the view change started another one, from the new predecessor.
  if (!view_ || chain_version != blob_copy_version_) return out;
  CopyBlobs(BlobsNamed(&missing), out);
  if (blobs_copied_ && Serves()) ReportSyncDone(out);
  return out;
}

void ChainReplica::CopyBlobs(std::vector<BlobInfo> blobs, Effects& out) {
  blob_copy_version_ = 0;
  if (blobs.empty()) {
    blobs_copied_ = true;
    out.copy_complete = true;
    return;
  }
  if (!Predecessor()) return;  // nobody to copy from in this view: the next view starts the copy
  blob_copy_version_ = view_->version;
  out.blob_copy = BlobCopyJob{*Predecessor(), view_->version, std::move(blobs)};
}

std::vector<BlobInfo> ChainReplica::BlobsNamed(const std::vector<std::string>* ids) const {
  std::vector<BlobInfo> out;
  auto add = [&](const std::string& key, const Record& record) {
    if (!record.value) return;
    auto info = DecodeBlobDescriptor(std::string_view(key).substr(kBlobKeyPrefix.size()), *record.value);
    if (info) out.push_back(std::move(*info));
  };
  if (ids != nullptr) {
    for (const std::string& id : *ids) {
      auto it = applied_.records.find(BlobKey(id));
      if (it != applied_.records.end()) add(it->first, it->second);
    }
    return out;
  }
  for (auto it = applied_.records.lower_bound(std::string(kBlobKeyPrefix));
       it != applied_.records.end() && IsBlobKey(it->first); ++it) {
    add(it->first, it->second);
  }
  return out;
}

void ChainReplica::HandleBlobRead(Endpoint from, const BlobRead& read, Effects& out) {
  BlobReadReply reply;
  reply.request_id = read.request_id;
  reply.chain_version = view_version();
  if (!Serves()) {
    reply.status = Status::Busy("fenced");
  } else if (read.chain_id != chain_id_ || !VersionOk(read.chain_version)) {
    if (read.chain_version > view_version()) out.refresh_view = true;
    reply.status = Status::Busy("stale chain version");
  } else if (phase_ != Phase::kReady || !IsServing()) {
    reply.status = Status::Busy("not serving");
  } else {
    // A blob is immutable: a descriptor here, committed or not, names the bytes every replica
    // holds (readers only ask for blobs of committed records).
    auto it = applied_.records.find(BlobKey(read.id));
    std::optional<BlobInfo> info;
    if (it != applied_.records.end() && it->second.value) info = DecodeBlobDescriptor(read.id, *it->second.value);
    if (!info) {
      reply.status = Status::NotFound("no such blob in this chain");
    } else if (read.offset > info->size || read.length > info->size - read.offset) {
      reply.status = Status::InvalidArgument("blob range past its end");
    } else {
      out.blob_reads.push_back(
          BlobReadJob{from, read.request_id, view_->version, std::move(*info), read.offset, read.length});
      return;
    }
  }
  out.sends.push_back({from, std::move(reply)});
}

Effects ChainReplica::OnTick() {
  Effects out;
  if (phase_ == Phase::kDown) return out;
  for (auto it = parked_reads_.begin(); it != parked_reads_.end();) {
    if (++it->ticks > options_.version_query_ticks) {
      FailRead(it->client, it->request_id, "head did not answer", out);
      it = parked_reads_.erase(it);
    } else {
      ++it;
    }
  }
  if (!Serves()) {
    stalled_ticks_ = 0;  // a fenced replica sends nothing, so its successor cannot be judged
    return out;
  }
  if (phase_ == Phase::kSyncing) {
    // The request (or its snapshot) may be lost; ask again, but not every tick: each request
    // makes the predecessor copy and send its whole state.
    if (Predecessor() && ++sync_request_ticks_ >= options_.sync_request_ticks) {
      sync_request_ticks_ = 0;
      out.sends.push_back({Endpoint::Replica(*Predecessor()), SyncRequest{chain_id_, view_->version}});
    }
    Progress(out);
    return out;
  }
  if (phase_ != Phase::kReady) return out;
  // Retransmit what the successor has not acknowledged when nothing moved for a whole tick.
  if (Successor() && downstream_acked_ < applied_.last_seq) {
    if (downstream_acked_ == acked_at_last_tick_) {
      Forward(downstream_acked_ + 1, std::min(applied_.last_seq, downstream_acked_ + options_.resend_window), out);
    }
    acked_at_last_tick_ = downstream_acked_;
    // The successor stalls when what its own disk holds stops moving while it lacks updates we
    // sent; a successor holding all of them waits on its own successor, which it watches itself.
    if (successor_durable_ >= applied_.last_seq || successor_durable_ != durable_at_last_tick_) {
      stalled_ticks_ = 0;
    } else {
      ++stalled_ticks_;
    }
    durable_at_last_tick_ = successor_durable_;
  } else {
    stalled_ticks_ = 0;
  }
  Progress(out);
  if (IsHead() && ++ticks_ % options_.commit_resend_ticks == 0 && exposed_level_ > 0) BroadcastCommit(out);
  ReportSyncDone(out);
  return out;
}

void ChainReplica::ReportSyncDone(Effects& out) const {
  if (phase_ == Phase::kReady && installed_ && install_durable_ && blobs_copied_ && !IsServing()) {
    out.reports.push_back({ManagerReport::Kind::kSyncDone, chain_id_, view_->version, MemberId{node_, incarnation_}});
  }
}

}  // namespace cairn::replication
