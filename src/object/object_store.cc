#include "object/object_store.h"

#include <algorithm>
#include <condition_variable>
#include <random>
#include <unordered_set>

#include "common/crc32c.h"
#include "common/logging.h"
#include "engine/engine.h"

namespace cairn::object {

// ---- EngineChunkStore ------------------------------------------------------------------------

void EngineChunkStore::AppendAsync(const engine::ChunkId& id, std::span<const std::byte> data, uint32_t crc32c,
                                   std::function<void(const Status&)> done) {
  engine_->AppendAsync(id, data, crc32c,
                       [done = std::move(done)](const Status& s, const engine::ChunkLocation&) { done(s); });
}

Status EngineChunkStore::Read(const engine::ChunkId& id, uint64_t offset, std::span<std::byte> out) {
  return engine_->Read(id, offset, out);
}

Result<engine::SendableRange> EngineChunkStore::ReadForSend(const engine::ChunkId& id, uint64_t offset,
                                                            uint64_t length) {
  return engine_->ReadForSend(id, offset, length);
}

Status EngineChunkStore::Delete(const engine::ChunkId& id) { return engine_->Delete(id); }

void EngineChunkStore::DeleteMany(std::span<const engine::ChunkId> ids, std::vector<Status>* results) {
  engine_->DeleteMany(ids, results);
}

void EngineChunkStore::ForEachChunk(const std::function<void(const engine::ChunkId&)>& fn) {
  engine_->ForEachChunk([&](const engine::ChunkInfo& c) { fn(c.id); });
}

engine::ChunkId NewChunkId() {
  thread_local std::mt19937_64 gen([] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }());
  return engine::ChunkId{gen(), gen()};
}

// ---- ObjectWriter ----------------------------------------------------------------------------

struct ObjectWriter::State : std::enable_shared_from_this<State> {
  ObjectStore* store = nullptr;

  std::mutex mu;
  std::vector<std::byte> current;      // GUARDED_BY(mu): the chunk being filled
  uint64_t taken = 0;                  // GUARDED_BY(mu)
  uint32_t in_flight = 0;              // GUARDED_BY(mu)
  std::vector<meta::ChunkRef> chunks;  // GUARDED_BY(mu): every chunk submitted, in order
  Status error;                        // GUARDED_BY(mu): the first failure
  std::function<void()> writable;      // GUARDED_BY(mu)
  bool finishing = false;              // GUARDED_BY(mu): Finish called
  bool aborted = false;                // GUARDED_BY(mu)
  bool settled = false;                // GUARDED_BY(mu): commit or clean-up scheduled
  bool settle_inline = false;          // GUARDED_BY(mu): a *Sync finish settles on its own thread
  std::condition_variable drained;     // signalled when in_flight drops to 0 under settle_inline
  uint64_t size_hint = UINT64_MAX;     // the body's expected size, to size chunk buffers
  // Set by Finish: writes the metadata that makes the chunks count (the commit point).
  ObjectWriter::CommitFn commit;
  std::function<void(Status)> done;

  struct Submission {
    engine::ChunkId id;
    std::shared_ptr<std::vector<std::byte>> bytes;
    uint32_t crc = 0;
  };

  // Reserves the next chunk's buffer: a whole chunk, or what the size hint says is left, so a
  // 4 KiB PUT does not allocate (and map, and unmap) a 1 MiB buffer.
  void ReserveLocked() {
    const uint64_t left = size_hint > taken ? size_hint - taken : 0;
    current.reserve(static_cast<size_t>(std::min<uint64_t>(store->options_.chunk_size, left)));
  }

  bool WindowOpen() const { return in_flight < store->options_.max_chunks_in_flight; }

  // Moves the filled bytes into a submission and records its ChunkRef.
  // REQUIRES: mu held, current not empty.
  Submission TakeChunkLocked() {
    Submission s;
    s.id = NewChunkId();
    s.bytes = std::make_shared<std::vector<std::byte>>(std::move(current));
    current = {};
    ReserveLocked();
    s.crc = crc32c::Value(*s.bytes);
    const uint64_t offset = chunks.empty() ? 0 : chunks.back().offset + chunks.back().length;
    chunks.push_back(meta::ChunkRef{s.id, offset, static_cast<uint32_t>(s.bytes->size()), s.crc});
    ++in_flight;
    return s;
  }

  // REQUIRES: mu not held (the store may call back at once).
  void Submit(Submission s) {
    auto self = shared_from_this();
    std::span<const std::byte> data(*s.bytes);
    store->chunks_->AppendAsync(s.id, data, s.crc, [self, bytes = s.bytes](const Status& st) { self->ChunkDone(st); });
  }

  void ChunkDone(const Status& s) {
    std::function<void()> cb;
    bool settle = false;
    {
      std::lock_guard<std::mutex> l(mu);
      --in_flight;
      if (!s.ok() && error.ok()) error = s;
      if (settle_inline && in_flight == 0) drained.notify_all();
      if (writable && (WindowOpen() || !error.ok())) cb = std::move(writable);
      settle = ReadyToSettleLocked();
    }
    if (cb) cb();
    if (settle) ScheduleSettle();
  }

  // True (once) when every chunk is back and the writer was finished or aborted.
  bool ReadyToSettleLocked() {
    if (settled || settle_inline || in_flight != 0 || !(finishing || aborted)) return false;
    settled = true;
    return true;
  }

  void ScheduleSettle() {
    auto self = shared_from_this();
    store->blocking_->Post([self] { self->Settle(); });
  }

  // Marks the writer finishing and takes what is buffered as the last chunk, to be submitted.
  // REQUIRES: mu held.
  std::optional<Submission> StartFinishLocked() {
    finishing = true;
    if (!current.empty() && error.ok()) return TakeChunkLocked();
    return std::nullopt;
  }

  // Once no chunk is in flight: runs `commit_fn` (null: the write was abandoned) unless a chunk
  // failed, and deletes the chunks when nothing committed.
  Status CommitOrReclaim(const ObjectWriter::CommitFn* commit_fn) {
    std::vector<meta::ChunkRef> written;
    Status s;
    uint64_t size;
    {
      std::lock_guard<std::mutex> l(mu);
      written = chunks;
      s = error;
      size = taken;
    }
    bool outcome_unknown = false;
    if (s.ok()) {
      s = commit_fn == nullptr ? Status::Cancelled("write aborted") : (*commit_fn)(written, size);
      // A commit that timed out (cluster mode: no answer from the metadata chain before the
      // deadline) may still be applied later: its chunks must stay, or a committed record would
      // name deleted chunks. If it never commits they are orphans, for a collector.
      outcome_unknown = s.IsTimeout();
    }
    if (outcome_unknown) {
      CAIRN_LOG_WARN("object writer: the commit's outcome is unknown ({}); its {} chunks are kept", s.ToString(),
                     written.size());
    } else if (!s.ok()) {
      Status r = store->Reclaim(written);
      if (!r.ok()) CAIRN_LOG_WARN("object writer: reclaiming chunks of a write that did not commit: {}", r.ToString());
    }
    return s;
  }

  // Runs on the blocking executor once no chunk is in flight.
  void Settle() {
    bool abandoned;
    {
      std::lock_guard<std::mutex> l(mu);
      abandoned = aborted || !finishing;
    }
    Status s = CommitOrReclaim(abandoned ? nullptr : &commit);
    if (done) done(s);
  }
};

ObjectWriter::~ObjectWriter() {
  bool finished;
  {
    std::lock_guard<std::mutex> l(state_->mu);
    finished = state_->finishing || state_->aborted;
  }
  if (!finished) Abort();
}

size_t ObjectWriter::Write(std::span<const std::byte> data) {
  State& st = *state_;
  const uint32_t chunk_size = st.store->options_.chunk_size;
  size_t took = 0;
  while (true) {
    std::unique_lock<std::mutex> l(st.mu);
    if (!st.error.ok() || st.finishing || st.aborted) break;
    if (st.current.size() == chunk_size) {
      if (!st.WindowOpen()) break;
      auto sub = st.TakeChunkLocked();
      l.unlock();
      st.Submit(std::move(sub));
      continue;
    }
    if (took == data.size()) break;
    const size_t n = std::min<size_t>(chunk_size - st.current.size(), data.size() - took);
    st.current.insert(st.current.end(), data.begin() + static_cast<ptrdiff_t>(took),
                      data.begin() + static_cast<ptrdiff_t>(took + n));
    st.taken += n;
    took += n;
  }
  return took;
}

void ObjectWriter::OnWritable(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> l(state_->mu);
    if (state_->WindowOpen() == false && state_->error.ok()) {
      state_->writable = std::move(fn);
      return;
    }
  }
  fn();
}

uint64_t ObjectWriter::size() const {
  std::lock_guard<std::mutex> l(state_->mu);
  return state_->taken;
}

namespace {

// Turns a commit's Status into the record it committed (kept alive by `rec`) for `done`.
template <typename T>
std::function<void(Status)> DeliverRecord(std::shared_ptr<T> rec, std::function<void(Result<T>)> done) {
  return [rec = std::move(rec), done = std::move(done)](Status s) {
    if (s.ok()) {
      done(std::move(*rec));
    } else {
      done(std::move(s));
    }
  };
}

}  // namespace

ObjectWriter::CommitFn ObjectWriter::ObjectCommit(ObjectStore* store, meta::ObjectRecord* rec,
                                                  meta::WritePrecondition precondition) {
  return
      [store, rec, precondition = std::move(precondition)](const std::vector<meta::ChunkRef>& chunks, uint64_t size) {
        rec->size = size;
        rec->chunks = chunks;
        std::optional<meta::ObjectRecord> replaced;
        CAIRN_RETURN_IF_ERROR(store->meta_->PutObject(*rec, precondition, &replaced));
        if (replaced) {
          Status r = store->Reclaim(replaced->chunks);
          if (!r.ok())
            CAIRN_LOG_WARN("object {}/{}: reclaiming the replaced version: {}", rec->bucket, rec->key, r.ToString());
        }
        return Status::OK();
      };
}

ObjectWriter::CommitFn ObjectWriter::PartCommit(ObjectStore* store, meta::PartRecord* rec, std::string bucket,
                                                std::string key, std::string upload_id) {
  return [store, rec, bucket = std::move(bucket), key = std::move(key), upload_id = std::move(upload_id)](
             const std::vector<meta::ChunkRef>& chunks, uint64_t size) {
    rec->size = size;
    rec->chunks = chunks;
    std::optional<meta::PartRecord> replaced;
    CAIRN_RETURN_IF_ERROR(store->meta_->PutPart(bucket, key, upload_id, *rec, &replaced));
    if (replaced) {
      Status r = store->Reclaim(replaced->chunks);
      if (!r.ok()) CAIRN_LOG_WARN("upload {}: reclaiming a replaced part: {}", upload_id, r.ToString());
    }
    return Status::OK();
  };
}

void ObjectWriter::Finish(meta::ObjectRecord record, meta::WritePrecondition precondition,
                          std::function<void(Result<meta::ObjectRecord>)> done) {
  auto committed = std::make_shared<meta::ObjectRecord>(std::move(record));
  auto commit = ObjectCommit(state_->store, committed.get(), std::move(precondition));
  FinishWith([committed, commit = std::move(commit)](const std::vector<meta::ChunkRef>& chunks,
                                                     uint64_t size) { return commit(chunks, size); },
             DeliverRecord(committed, std::move(done)));
}

void ObjectWriter::FinishPart(std::string bucket, std::string key, std::string upload_id, meta::PartRecord part,
                              std::function<void(Result<meta::PartRecord>)> done) {
  auto committed = std::make_shared<meta::PartRecord>(std::move(part));
  auto commit = PartCommit(state_->store, committed.get(), std::move(bucket), std::move(key), std::move(upload_id));
  FinishWith([committed, commit = std::move(commit)](const std::vector<meta::ChunkRef>& chunks,
                                                     uint64_t size) { return commit(chunks, size); },
             DeliverRecord(committed, std::move(done)));
}

void ObjectWriter::FinishWith(CommitFn commit, std::function<void(Status)> done) {
  State& st = *state_;
  std::optional<State::Submission> last;
  bool settle;
  {
    std::lock_guard<std::mutex> l(st.mu);
    st.commit = std::move(commit);
    st.done = std::move(done);
    last = st.StartFinishLocked();
    settle = st.ReadyToSettleLocked();
  }
  if (last) st.Submit(std::move(*last));
  if (settle) st.ScheduleSettle();
}

Status ObjectWriter::FinishWithSync(const CommitFn& commit) {
  State& st = *state_;
  std::optional<State::Submission> last;
  {
    std::lock_guard<std::mutex> l(st.mu);
    st.settle_inline = true;
    last = st.StartFinishLocked();
  }
  if (last) st.Submit(std::move(*last));
  {
    std::unique_lock<std::mutex> l(st.mu);
    st.drained.wait(l, [&] { return st.in_flight == 0; });
    st.settled = true;
  }
  return st.CommitOrReclaim(&commit);
}

Result<meta::ObjectRecord> ObjectWriter::FinishSync(meta::ObjectRecord record,
                                                    const meta::WritePrecondition& precondition) {
  meta::ObjectRecord committed = std::move(record);
  CAIRN_RETURN_IF_ERROR(FinishWithSync(ObjectCommit(state_->store, &committed, precondition)));
  return committed;
}

Result<meta::PartRecord> ObjectWriter::FinishPartSync(const std::string& bucket, const std::string& key,
                                                      const std::string& upload_id, meta::PartRecord part) {
  meta::PartRecord committed = std::move(part);
  CAIRN_RETURN_IF_ERROR(FinishWithSync(PartCommit(state_->store, &committed, bucket, key, upload_id)));
  return committed;
}

void ObjectWriter::Abort() {
  bool settle;
  {
    std::lock_guard<std::mutex> l(state_->mu);
    if (state_->finishing || state_->aborted) return;
    state_->aborted = true;
    settle = state_->ReadyToSettleLocked();
  }
  if (settle) state_->ScheduleSettle();
}

// ---- ObjectStore -----------------------------------------------------------------------------

ObjectStore::ObjectStore(ChunkStore* chunks, meta::MetaStore* meta, Executor* blocking, ObjectStoreOptions options)
    : chunks_(chunks), meta_(meta), blocking_(blocking), options_(options) {}

std::unique_ptr<ObjectWriter> ObjectStore::NewWriter(uint64_t size_hint) {
  auto state = std::make_shared<ObjectWriter::State>();
  state->store = this;
  state->size_hint = size_hint;
  state->ReserveLocked();
  return std::unique_ptr<ObjectWriter>(new ObjectWriter(std::move(state)));
}

Status ObjectStore::ReadRange(const meta::ObjectRecord& record, uint64_t offset, std::span<std::byte> out) {
  if (offset > record.size || out.size() > record.size - offset) {
    return Status::InvalidArgument("range past the end of the object");
  }
  const uint64_t end = offset + out.size();
  // Chunks are in offset order; find the first that ends after `offset`.
  auto it = std::upper_bound(record.chunks.begin(), record.chunks.end(), offset,
                             [](uint64_t off, const meta::ChunkRef& c) { return off < c.offset + c.length; });
  for (; it != record.chunks.end() && it->offset < end; ++it) {
    const uint64_t from = std::max(offset, it->offset);
    const uint64_t to = std::min(end, it->offset + it->length);
    CAIRN_RETURN_IF_ERROR(chunks_->Read(it->id, from - it->offset, out.subspan(from - offset, to - from))
                              .WithContext("object " + record.bucket + "/" + record.key));
  }
  return Status::OK();
}

Status ObjectStore::SendRange(const meta::ObjectRecord& record, uint64_t offset, uint64_t length,
                              const std::function<Status(engine::SendableRange&)>& sink) {
  if (offset > record.size || length > record.size - offset) {
    return Status::InvalidArgument("range past the end of the object");
  }
  const uint64_t end = offset + length;
  auto it = std::upper_bound(record.chunks.begin(), record.chunks.end(), offset,
                             [](uint64_t off, const meta::ChunkRef& c) { return off < c.offset + c.length; });
  for (; it != record.chunks.end() && it->offset < end; ++it) {
    const uint64_t from = std::max(offset, it->offset);
    const uint64_t to = std::min(end, it->offset + it->length);
    auto piece = chunks_->ReadForSend(it->id, from - it->offset, to - from);
    if (!piece.ok()) return piece.status().WithContext("object " + record.bucket + "/" + record.key);
    CAIRN_RETURN_IF_ERROR(sink(*piece));
  }
  return Status::OK();
}

Result<meta::ObjectRecord> ObjectStore::Delete(std::string_view bucket, std::string_view key) {
  CAIRN_ASSIGN_OR_RETURN(meta::ObjectRecord record, meta_->DeleteObject(bucket, key));
  Status r = Reclaim(record.chunks);
  if (!r.ok())
    CAIRN_LOG_WARN("object {}/{}: reclaiming chunks after delete: {}", record.bucket, record.key, r.ToString());
  return record;
}

Status ObjectStore::Reclaim(const std::vector<meta::ChunkRef>& chunks) {
  std::vector<engine::ChunkId> ids;
  ids.reserve(chunks.size());
  for (const auto& c : chunks) ids.push_back(c.id);
  std::vector<Status> results;
  chunks_->DeleteMany(ids, &results);
  for (const Status& s : results) {
    if (!s.ok() && !s.IsNotFound()) return s;
  }
  return Status::OK();
}

Result<uint64_t> ObjectStore::CollectOrphans() {
  std::unordered_set<engine::ChunkId> referenced;
  CAIRN_RETURN_IF_ERROR(meta_->ForEachChunkRef([&](const meta::ChunkRef& c) {
    referenced.insert(c.id);
    return Status::OK();
  }));
  std::vector<engine::ChunkId> orphans;
  chunks_->ForEachChunk([&](const engine::ChunkId& id) {
    if (!referenced.contains(id)) orphans.push_back(id);
  });
  uint64_t deleted = 0;
  std::vector<Status> results;
  chunks_->DeleteMany(orphans, &results);
  for (const Status& s : results) {
    if (s.ok()) {
      ++deleted;
    } else if (!s.IsNotFound()) {
      return s;
    }
  }
  return deleted;
}

}  // namespace cairn::object
