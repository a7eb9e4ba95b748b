// Engine: the append-only chunk store of one disk directory.
//
// Chunks (a 128-bit id, up to kMaxChunkSize bytes and their CRC32C) are appended as records to
// segment files; an in-memory index maps each id to its record. Appends and deletes from many
// threads are grouped: one thread writes the whole group and issues one fdatasync for all of it
// (group commit), and no caller is answered before its record is on stable storage. Deletes are
// durable tombstones. A background compactor rewrites segments whose dead fraction passes a
// threshold. The index is checkpointed, so that reopening reads the checkpoint and rescans only
// what was written after it; a torn or corrupt tail is found and cut on reopen.
// Formats: docs/formats/engine.md. Design: docs/design/engine.md.
//
// Thread-safety: every public method is thread-safe. Append and Delete block until durable.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "common/result.h"
#include "engine/chunk_id.h"
#include "engine/format.h"
#include "engine/index.h"
#include "io/clock.h"
#include "io/file.h"

namespace cairn::engine {

struct ChunkLocation {
  uint32_t segment = 0;
  uint32_t offset = 0;  // offset of the record in the segment file
  uint32_t length = 0;  // payload bytes
  uint32_t payload_crc = 0;
};

struct ChunkInfo {
  ChunkId id;
  uint32_t length = 0;
  uint32_t payload_crc = 0;
};

// Stored bytes to be sent to a socket without copying through user space (sendfile/splice).
// The chunk's checksum was verified when this was made. When fd >= 0, the bytes are
// [offset, offset + length) of fd, and `pin` keeps the segment file open even if compaction
// deletes it meanwhile; drop it when the transfer is done. When fd < 0 the chunk sits in the
// segment still being written (read with O_DIRECT, never through the page cache) and `bytes`
// holds the verified range instead.
struct SendableRange {
  std::shared_ptr<const void> pin;
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::vector<std::byte> bytes;
};

struct SegmentStats {
  uint32_t id = 0;
  uint64_t size = 0;        // bytes used, header included
  uint64_t live_bytes = 0;  // bytes of records the index points at
  uint64_t dead_bytes = 0;  // size - header - live_bytes - tombstone bytes
  bool active = false;      // the segment appends go to
  bool compaction_output = false;
};

struct EngineStats {
  uint64_t chunks = 0;
  uint64_t live_bytes = 0;
  uint64_t dead_bytes = 0;
  uint64_t index_memory_bytes = 0;
  uint64_t appends = 0;
  uint64_t deletes = 0;
  uint64_t group_commits = 0;        // fdatasync calls that acknowledged appends/deletes
  uint64_t corruptions_detected = 0; // reads refused and records skipped for bad checksums
  uint64_t compactions = 0;
  uint64_t compaction_bytes_reclaimed = 0;
  uint64_t compaction_max_pause_us = 0;  // longest time compaction held the index lock
  uint64_t checkpoints = 0;
  // Open(): what recovery did.
  uint64_t recovery_scanned_bytes = 0;
  uint64_t recovery_truncated_bytes = 0;
  uint64_t recovery_micros = 0;
  bool recovered_from_checkpoint = false;
  std::vector<SegmentStats> segments;
};

struct EngineOptions {
  EngineConfig config;
  io::Clock* clock = io::SystemClock::Default();
  // Tests only: called with the name of a point in the engine's code when execution reaches it,
  // so that a test can force one interleaving (RocksDB's TEST_SYNC_POINT, at run time). Points:
  // "RollSegment:IdAllocated" (commit thread, no engine lock held). Null in production.
  std::function<void(std::string_view point)> sync_point;
};

class Engine {
 public:
  // Opens (creating if needed) the engine in `dir`, recovering from whatever a crash left.
  // `env` must outlive the engine.
  static Result<std::unique_ptr<Engine>> Open(io::Env* env, const std::string& dir, const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Stops background work and writes a final checkpoint. Later calls fail with kCancelled.
  // Called by the destructor when not called before.
  Status Close();

  // Stores a chunk and returns once its record is durable. `payload_crc` must be the CRC32C of
  // `data` (computed where the bytes entered the system); a mismatch is kChecksumMismatch and
  // nothing is written. Appending an id that is already live returns the existing location when
  // length and crc match (a retried append), and kAlreadyExists otherwise.
  Result<ChunkLocation> Append(const ChunkId& id, std::span<const std::byte> data, uint32_t payload_crc);

  // Append without waiting: `done` is called once, with the outcome Append would have returned,
  // after the record is durable (or has failed). Appends in flight together share writes and
  // fdatasyncs, so one caller with several in flight gets the device's bandwidth. `data` must stay
  // valid until `done` runs. `done` runs on the engine's commit thread (or on the caller's, when
  // the request is refused before queueing): it must be quick and must not call blocking Engine
  // methods (AppendAsync is fine).
  using AppendCallback = std::function<void(const Status&, const ChunkLocation&)>;
  void AppendAsync(const ChunkId& id, std::span<const std::byte> data, uint32_t payload_crc, AppendCallback done);

  // Deletes a chunk durably (tombstone). kNotFound when no such chunk is live.
  Status Delete(const ChunkId& id);
  // Deletes many chunks at once: their tombstones share writes and fdatasyncs (one group commit
  // for a batch, instead of one per chunk). results[i] is what Delete(ids[i]) would have returned.
  void DeleteMany(std::span<const ChunkId> ids, std::vector<Status>* results);

  // Copies bytes [offset, offset + out.size()) of the chunk into `out` after verifying the whole
  // chunk's checksum. kCorruption (and the bytes are not returned) on a mismatch; kInvalidArgument
  // when the range passes the end of the chunk; kNotFound when the chunk is not live.
  Status Read(const ChunkId& id, uint64_t offset, std::span<std::byte> out);
  // Reads the whole chunk.
  Result<std::vector<std::byte>> ReadAll(const ChunkId& id);
  // Verifies the chunk and returns where bytes [offset, offset + length) of it lie on disk.
  Result<SendableRange> ReadForSend(const ChunkId& id, uint64_t offset, uint64_t length);
  Result<ChunkInfo> Stat(const ChunkId& id);

  // Calls fn for every live chunk; a snapshot taken shard by shard, so chunks appended or deleted
  // during the call may or may not be seen.
  void ForEachChunk(const std::function<void(const ChunkInfo&)>& fn);

  EngineStats Stats();

  // Runs one compaction pass now on every segment past the dead-ratio threshold (or, with
  // `force`, on every sealed segment holding dead bytes). Returns the bytes reclaimed.
  Result<uint64_t> CompactNow(bool force = false);
  // Writes an index checkpoint now.
  Status Checkpoint();

  const std::string& dir() const { return dir_; }
  bool direct_io() const { return direct_; }

 private:
  struct Segment;
  struct Writer;
  struct ScanState;

  Engine(io::Env* env, std::string dir, const EngineOptions& options);

  // ---- recovery ----
  Status Recover();
  Status LoadManifest(std::set<uint32_t>* live, uint32_t* max_id, bool* present);
  // Writes a MANIFEST listing every segment except `leave_out`.
  Status WriteManifest(const std::set<uint32_t>& leave_out);
  Status LoadCheckpoint(std::map<uint32_t, uint64_t>* coverage, bool* loaded);
  Status ScanSegment(Segment& seg, uint64_t start, ScanState& state);
  void ApplyScannedChunk(const format::RecordHeader& h, uint32_t segment, uint64_t offset, ScanState& state);

  // ---- write path ----
  Result<std::shared_ptr<Segment>> CreateSegment(uint32_t id, bool compaction_output);
  // Encodes a large chunk's record into its own aligned buffer, on the caller's thread.
  void Prepare(Writer& w) const;
  void Enqueue(Writer* w);
  Status Submit(Writer& w);  // Enqueue, then wait until the commit thread is done with w
  void CommitLoop();
  void WriteBatch(std::vector<Writer*>& batch);
  Status RollSegment();
  void SealSegment(Segment& seg);

  // ---- read path ----
  Status ReadRecord(const std::shared_ptr<Segment>& seg, const IndexEntry& e, std::vector<std::byte>& buf,
                    size_t* payload_start);
  Result<std::pair<std::shared_ptr<Segment>, IndexEntry>> Lookup(const ChunkId& id);

  // ---- background ----
  void BackgroundLoop();
  Result<uint64_t> CompactSegments(const std::vector<uint32_t>& victims);
  Status CheckpointLocked();  // REQUIRES: maintenance_mu_ held
  uint64_t RecordBytes(uint32_t length) const;

  io::Env* const env_;
  const std::string dir_;
  const EngineOptions options_;
  bool direct_ = false;        // segments written with O_DIRECT
  size_t align_ = 1;           // O_DIRECT write alignment, fixed in Open (1 without O_DIRECT)

  // mu_ guards the index, the segment table and the compaction bookkeeping. Held only for
  // lookups and updates, never across I/O.
  std::mutex mu_;
  ChunkIndex index_;                                        // GUARDED_BY(mu_)
  std::map<uint32_t, std::shared_ptr<Segment>> segments_;   // GUARDED_BY(mu_)
  std::set<uint32_t> compacting_;                           // GUARDED_BY(mu_): victims in flight
  uint32_t compaction_output_ = format::kNoSegment;         // GUARDED_BY(mu_)
  uint32_t next_segment_id_ = 1;                            // GUARDED_BY(mu_)
  std::set<uint32_t> creating_;                             // GUARDED_BY(mu_): regular segments being created
  uint64_t bytes_since_checkpoint_ = 0;                     // GUARDED_BY(mu_)

  // Group commit: writers queue here and one commit thread writes whatever has queued as one
  // group with one fdatasync. Only the commit thread touches the active segment's write state
  // (active_, batch_buf_) and allocates sequence numbers.
  std::mutex write_mu_;
  std::condition_variable commit_cv_;
  std::deque<Writer*> writers_;  // GUARDED_BY(write_mu_)
  bool stop_commit_ = false;     // GUARDED_BY(write_mu_)
  std::thread commit_thread_;
  std::shared_ptr<Segment> active_;
  std::atomic<uint64_t> next_seq_{1};
  io::AlignedBuffer batch_buf_;

  // Serializes compaction and checkpoints (maintenance never runs concurrently with itself).
  std::mutex maintenance_mu_;

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  bool stop_ = false;  // GUARDED_BY(bg_mu_)
  std::thread bg_thread_;
  std::atomic<bool> closed_{false};
  bool opened_ = false;  // recovery finished; set once in Open before any thread starts

  // Counters for Stats().
  std::atomic<uint64_t> appends_{0}, deletes_{0}, group_commits_{0}, corruptions_{0};
  std::atomic<uint64_t> compactions_{0}, reclaimed_{0}, max_pause_us_{0}, checkpoints_{0};
  uint64_t recovery_scanned_ = 0, recovery_truncated_ = 0, recovery_micros_ = 0;
  bool recovered_from_checkpoint_ = false;
  std::map<uint32_t, uint64_t> covered_tombs_;  // recovery only: tombstone bytes per covered segment
};

}  // namespace cairn::engine
