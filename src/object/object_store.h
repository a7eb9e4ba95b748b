// The object layer: an object is chunks in a chunk store plus one metadata record, and the
// record's commit is the moment the object exists (ARCHITECTURE.md decision 1).
//
// ObjectWriter takes an object's body as it arrives, cuts it into chunks, stores them with a
// bounded number in flight, and commits the record once every chunk is durable. ObjectStore
// reads ranges back, deletes, and gives back the space of records that no longer count
// (overwritten, deleted, never committed). Design: docs/design/server.md.
//
// Thread-safety: ObjectStore is thread-safe. An ObjectWriter is used by one caller at a time;
// its callbacks arrive on other threads (the chunk store's completion thread or the blocking
// executor), never while the caller is inside a writer method.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "common/executor.h"
#include "common/result.h"
#include "engine/chunk_id.h"
#include "engine/engine.h"
#include "meta/meta_store.h"

namespace cairn::object {

// Where chunk bytes live: the local engine on a single node; chains of replicas in a cluster.
// Thread-safety: every method may be called from any thread.
class ChunkStore {
 public:
  virtual ~ChunkStore() = default;
  // Stores a chunk; `done` runs once it is durable or has failed, possibly on another thread.
  // `data` must stay valid until then. `done` must not block.
  virtual void AppendAsync(const engine::ChunkId& id, std::span<const std::byte> data, uint32_t crc32c,
                           std::function<void(const Status&)> done) = 0;
  // Copies [offset, offset + out.size()) of the chunk into `out`, verified. Blocks.
  virtual Status Read(const engine::ChunkId& id, uint64_t offset, std::span<std::byte> out) = 0;
  // Verifies the chunk and says where bytes [offset, offset + length) of it can be sent from
  // (a file range for sendfile, or the bytes themselves). Blocks.
  virtual Result<engine::SendableRange> ReadForSend(const engine::ChunkId& id, uint64_t offset, uint64_t length) = 0;
  // Deletes the chunk durably; NotFound when it is not there. Blocks.
  virtual Status Delete(const engine::ChunkId& id) = 0;
  // Deletes many; results[i] is what Delete(ids[i]) would return. Stores that can share the
  // durability cost (the engine's group commit) override it. Blocks.
  virtual void DeleteMany(std::span<const engine::ChunkId> ids, std::vector<Status>* results) {
    results->clear();
    for (const auto& id : ids) results->push_back(Delete(id));
  }
  // Calls fn for every stored chunk. Blocks.
  virtual void ForEachChunk(const std::function<void(const engine::ChunkId&)>& fn) = 0;
};

// ChunkStore over the local engine.
class EngineChunkStore final : public ChunkStore {
 public:
  explicit EngineChunkStore(engine::Engine* engine) : engine_(engine) {}
  void AppendAsync(const engine::ChunkId& id, std::span<const std::byte> data, uint32_t crc32c,
                   std::function<void(const Status&)> done) override;
  Status Read(const engine::ChunkId& id, uint64_t offset, std::span<std::byte> out) override;
  Result<engine::SendableRange> ReadForSend(const engine::ChunkId& id, uint64_t offset, uint64_t length) override;
  Status Delete(const engine::ChunkId& id) override;
  void DeleteMany(std::span<const engine::ChunkId> ids, std::vector<Status>* results) override;
  void ForEachChunk(const std::function<void(const engine::ChunkId&)>& fn) override;

 private:
  engine::Engine* engine_;
};

struct ObjectStoreOptions {
  // Bytes per chunk; the last chunk of an object may be shorter. Default 1 MiB.
  uint32_t chunk_size = 1u << 20;
  // Chunks one writer keeps in flight; bounds a writer's memory to about this many chunks.
  // Default 8.
  uint32_t max_chunks_in_flight = 8;
};

class ObjectStore;

class ObjectWriter {
 public:
  ~ObjectWriter();
  ObjectWriter(const ObjectWriter&) = delete;
  ObjectWriter& operator=(const ObjectWriter&) = delete;

  // Takes bytes of the body and returns how many it took: fewer than data.size() (possibly 0)
  // when max_chunks_in_flight chunks are in flight. Then the caller stops reading its source and
  // calls OnWritable. After a failure it takes nothing and Finish reports the error.
  size_t Write(std::span<const std::byte> data);
  // Runs `fn` once, as soon as Write can take bytes again (at once if it can now), on whatever
  // thread that happens on. Replaces an earlier callback not yet run.
  void OnWritable(std::function<void()> fn);
  // Bytes taken so far.
  uint64_t size() const;

  // Stores what is buffered, waits for every chunk, then commits `record` with its size and
  // chunks filled in (the caller sets bucket, key, etag, headers and time). `done` gets the
  // committed record, or the error; on any error the chunks written are deleted again, except
  // Timeout from the commit (its outcome is unknown: the record may still commit, so the chunks
  // stay). A record
  // the commit replaced has its chunks reclaimed before `done` runs. Call once.
  void Finish(meta::ObjectRecord record, meta::WritePrecondition precondition,
              std::function<void(Result<meta::ObjectRecord>)> done);
  // As Finish, for a part of multipart upload `upload_id`: commits `part` (size and chunks filled
  // in) with MetaStore::PutPart; a part it replaced has its chunks reclaimed.
  void FinishPart(std::string bucket, std::string key, std::string upload_id, meta::PartRecord part,
                  std::function<void(Result<meta::PartRecord>)> done);
  // The general form: once every chunk is durable, `commit` runs on the blocking executor with
  // the chunks and the size and writes whatever metadata makes them count; when it (or a chunk)
  // fails, the chunks are deleted. `done` gets the outcome. Call one Finish form once.
  using CommitFn = std::function<Status(const std::vector<meta::ChunkRef>& chunks, uint64_t size)>;
  void FinishWith(CommitFn commit, std::function<void(Status)> done);

  // The same three, for a caller that waits anyway (a connection thread): they block until the
  // chunks are durable and run the commit on the calling thread, saving two thread hand-offs.
  Result<meta::ObjectRecord> FinishSync(meta::ObjectRecord record, const meta::WritePrecondition& precondition);
  Result<meta::PartRecord> FinishPartSync(const std::string& bucket, const std::string& key,
                                          const std::string& upload_id, meta::PartRecord part);
  Status FinishWithSync(const CommitFn& commit);
  // Gives up: nothing is committed and the chunks written are deleted (in the background).
  // Equivalent to destroying the writer without Finish.
  void Abort();

 private:
  friend class ObjectStore;
  struct State;
  explicit ObjectWriter(std::shared_ptr<State> state) : state_(std::move(state)) {}
  // Commit functions writing an object record or a part into *rec (size and chunks filled in).
  static CommitFn ObjectCommit(ObjectStore* store, meta::ObjectRecord* rec, meta::WritePrecondition precondition);
  static CommitFn PartCommit(ObjectStore* store, meta::PartRecord* rec, std::string bucket, std::string key,
                             std::string upload_id);

  std::shared_ptr<State> state_;
};

class ObjectStore {
 public:
  // `chunks`, `meta` and `blocking` must outlive the store and every writer it made. Blocking
  // work (metadata writes, deletions) runs on `blocking`.
  ObjectStore(ChunkStore* chunks, meta::MetaStore* meta, Executor* blocking, ObjectStoreOptions options = {});

  // `size_hint`: the body's expected size when known; it only sizes buffers.
  std::unique_ptr<ObjectWriter> NewWriter(uint64_t size_hint = UINT64_MAX);

  // Copies bytes [offset, offset + out.size()) of the object into `out`, chunk by chunk, each
  // chunk verified. InvalidArgument when the range passes the end. Blocks.
  Status ReadRange(const meta::ObjectRecord& record, uint64_t offset, std::span<std::byte> out);

  // Hands bytes [offset, offset + length) of the object to `sink`, one verified piece per chunk
  // (ChunkStore::ReadForSend), in order; stops at the first error, the sink's included. Blocks.
  Status SendRange(const meta::ObjectRecord& record, uint64_t offset, uint64_t length,
                   const std::function<Status(engine::SendableRange&)>& sink);

  // Deletes the object: its record first (the commit point of a delete), then its chunks.
  // Returns the deleted record. NotFound when there is none. Blocks.
  Result<meta::ObjectRecord> Delete(std::string_view bucket, std::string_view key);

  // Deletes the given chunks, logging (not failing on) chunks already gone. Blocks.
  Status Reclaim(const std::vector<meta::ChunkRef>& chunks);

  // Deletes every chunk that no committed record or stored part references and returns how
  // many went. REQUIRES: no writer is active (at start-up), since a writer's chunks are
  // unreferenced until its commit. Blocks.
  Result<uint64_t> CollectOrphans();

  const ObjectStoreOptions& options() const { return options_; }

 private:
  friend class ObjectWriter;

  ChunkStore* chunks_;
  meta::MetaStore* meta_;
  Executor* blocking_;
  ObjectStoreOptions options_;
};

// A fresh random chunk id (128 bits from the operating system's generator, mixed per thread).
engine::ChunkId NewChunkId();

}  // namespace cairn::object
