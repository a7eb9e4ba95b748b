// Engine implementation. The invariants that make crash recovery correct are spelled out in
// docs/design/engine.md; the ones a reader of this file needs most:
//  1. A caller is answered only after the record and everything it depends on (the segment file
//     and its directory entry) is durable.
//  2. Every record carries a sequence number; recovery keeps, per chunk id, the record with the
//     highest one, and a tombstone with sequence t hides every record of its id below t.
//     Compaction copies records with their sequence numbers, so copies are interchangeable.
//  3. The MANIFEST is the authority for which segments exist once compaction has run: a
//     compaction output counts only once a MANIFEST lists it, and a victim is deleted only after
//     a MANIFEST without it is durable.
//  4. A tombstone is dropped by compaction only when no segment that may hold a copy of the
//     chunk it deleted still exists.
#include "engine/engine.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <deque>
#include <unordered_map>

#include "common/crc32c.h"
#include "common/logging.h"

namespace cairn::engine {

using format::kRecordHeaderSize;
using format::kSegmentHeaderSize;
using format::RecordHeader;
using format::RecordType;

namespace {

constexpr size_t kScanWindow = 4u << 20;        // read size when scanning segments
constexpr size_t kCompactionFlush = 4u << 20;   // compaction output write size
constexpr size_t kSwitchBatch = 1024;           // index entries switched per lock hold
constexpr size_t kMaxDirectAlign = 4096;
// With O_DIRECT, chunks of at least this size are encoded by the caller's thread into an aligned
// record buffer that the commit thread writes in place (no copy on the commit thread). Such a
// record starts and ends at a kMaxDirectAlign boundary: a padding record before it and one inside
// its buffer after it make up the difference.
constexpr size_t kPreparedMinPayload = 128u << 10;

// Bytes a prepared record occupies: the record, then a padding record up to the next
// kMaxDirectAlign boundary (a padding record needs at least a header's room).
uint64_t PreparedBytes(uint32_t length) {
  const uint64_t rec = format::AlignUp(format::kRecordHeaderSize + uint64_t{length}, format::kRecordAlignment);
  uint64_t gap = format::AlignUp(rec, kMaxDirectAlign) - rec;
  if (gap != 0 && gap < format::kRecordHeaderSize) gap += kMaxDirectAlign;
  return rec + gap;
}

// Padding needed before a record at `pos` so that it starts at a kMaxDirectAlign boundary.
uint64_t GapToAlign(uint64_t pos, uint64_t align) {
  uint64_t gap = format::AlignUp(pos, align) - pos;
  if (gap != 0 && gap < format::kRecordHeaderSize) gap += align;
  return gap;
}

// Writes a padding record of `size` bytes (>= kRecordHeaderSize) at `out`.
void EncodePadding(std::byte* out, uint64_t size) {
  format::RecordHeader h;
  h.type = format::RecordType::kPadding;
  h.length = static_cast<uint32_t>(size - format::kRecordHeaderSize);
  std::memset(out + format::kRecordHeaderSize, 0, h.length);
  h.payload_crc = crc32c::Value(out + format::kRecordHeaderSize, h.length);
  h.seq = 0;
  format::EncodeRecordHeader(h, std::span<std::byte, format::kRecordHeaderSize>(out, format::kRecordHeaderSize));
}

uint64_t RecordBytesFor(uint32_t length) { return format::AlignUp(kRecordHeaderSize + uint64_t{length}, format::kRecordAlignment); }

std::string JoinPath(const std::string& dir, const std::string& name) { return dir + "/" + name; }

// Reads a segment sequentially through a window, for recovery scans and compaction.
class SegmentScanner {
 public:
  SegmentScanner(io::File* file, uint64_t file_size) : file_(file), size_(file_size) {}

  // Makes [pos, pos + n) available and returns it; an empty span when it passes the end of the
  // file or the read fails (then status() says why).
  std::span<const std::byte> Get(uint64_t pos, size_t n) {
    if (pos + n > size_) return {};
    if (pos >= win_start_ && pos + n <= win_start_ + win_.size()) {
      return {win_.data() + (pos - win_start_), n};
    }
    const size_t want = std::max<size_t>(n, std::min<uint64_t>(kScanWindow, size_ - pos));
    win_.resize(want);
    auto r = file_->ReadAt(pos, win_);
    if (!r.ok()) {
      status_ = r.status();
      win_.clear();
      return {};
    }
    win_.resize(*r);
    win_start_ = pos;
    if (*r < n) return {};
    return {win_.data(), n};
  }
  uint64_t size() const { return size_; }
  const Status& status() const { return status_; }

 private:
  io::File* file_;
  uint64_t size_;
  std::vector<std::byte> win_;
  uint64_t win_start_ = 0;
  Status status_;
};

enum class RecordCheck : uint8_t { kValid, kInvalid, kEnd };

// Checks the record at `pos`: header and payload checksums. kEnd when fewer than a header's
// bytes remain.
RecordCheck CheckRecordAt(SegmentScanner& sc, uint64_t pos, RecordHeader* h) {
  if (pos + kRecordHeaderSize > sc.size()) return RecordCheck::kEnd;
  auto hdr = sc.Get(pos, kRecordHeaderSize);
  if (hdr.empty()) return RecordCheck::kInvalid;
  if (format::DecodeRecordHeader(hdr, h) != format::HeaderCheck::kOk) return RecordCheck::kInvalid;
  if (pos + format::RecordSize(*h) > sc.size()) return RecordCheck::kInvalid;
  auto payload = sc.Get(pos + h->payload_offset, h->length);
  if (payload.size() != h->length) return RecordCheck::kInvalid;
  if (crc32c::Value(payload) != h->payload_crc) return RecordCheck::kInvalid;
  return RecordCheck::kValid;
}

// The bytes FindNextValidRecord examines per step (the scanner refills in kScanWindow reads).
constexpr size_t kScanPiece = 64 * 1024;

// Finds the first valid record after `pos` (at 8-byte aligned offsets). Windows that hold only
// zeros (the preallocated tail of a segment) are skipped quickly.
std::optional<uint64_t> FindNextValidRecord(SegmentScanner& sc, uint64_t pos) {
  uint64_t p = format::AlignUp(pos + 1, format::kRecordAlignment);
  while (p + kRecordHeaderSize <= sc.size()) {
    // Ask for a small piece: the scanner reads whole windows and serves pieces from them. Asking
    // for a whole window at every candidate re-read 4 MiB per 8 bytes of non-zero garbage (a
    // torn large record), which turned a start-up after kill -9 into minutes of reading.
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kScanPiece, sc.size() - p));
    auto win = sc.Get(p, n);
    if (win.empty()) return std::nullopt;
    size_t i = 0;
    // Skip zero words.
    while (i + 8 <= win.size()) {
      uint64_t w;
      std::memcpy(&w, win.data() + i, 8);
      if (w != 0) break;
      i += 8;
    }
    if (i + 8 > win.size()) {
      p += win.size() - (win.size() % 8);
      if (win.size() < 8) return std::nullopt;
      continue;
    }
    const uint64_t cand = p + i;
    if (format::GetU32(win.data() + i) == format::kRecordMagic) {
      RecordHeader h;
      if (CheckRecordAt(sc, cand, &h) == RecordCheck::kValid) return cand;
    }
    p = cand + 8;
  }
  return std::nullopt;
}

// A thread's scratch buffer for reads.
std::vector<std::byte>& ReadScratch() {
  thread_local std::vector<std::byte> buf;
  return buf;
}

}  // namespace

struct Engine::Segment {
  uint32_t id = 0;
  bool compaction_output = false;
  std::unique_ptr<io::File> writer;  // null once sealed
  std::unique_ptr<io::File> reader;  // buffered; also the descriptor handed out for sendfile
  // O_DIRECT reader: used while the segment is being written (page-cache reads of a file that
  // O_DIRECT writes are landing in can cache stale bytes), and for every read with direct_reads.
  std::unique_ptr<io::File> direct_reader;
  // Set (release) once no write will ever touch the file again; from then on page-cache reads
  // and sendfile are safe.
  std::atomic<bool> sealed{false};
  uint64_t end = kSegmentHeaderSize;  // GUARDED_BY(mu_): bytes of durable, applied records
  uint64_t live_bytes = 0;            // GUARDED_BY(mu_): chunk records the index points at
  uint64_t tomb_bytes = 0;            // GUARDED_BY(mu_): tombstone records (kept until compaction)
  uint64_t allocated = 0;             // preallocated file size (leader only)
};

struct Engine::Writer {
  RecordType type = RecordType::kChunk;
  ChunkId id;
  std::span<const std::byte> data;
  uint32_t crc = 0;
  Status status;
  ChunkLocation location;
  bool done = false;              // GUARDED_BY(write_mu_); synchronous writers only
  std::condition_variable cv;     // synchronous writers wait here
  Engine::AppendCallback callback;  // asynchronous writers: called once, then the Writer is freed
  // A prepared record (large chunks with O_DIRECT): header room, payload, padding, as written.
  io::AlignedBuffer prepared;
  // Filled in by the leader while building the batch.
  bool write = false;  // a record is written for this writer
  uint64_t seq = 0;
  Writer* alias = nullptr;  // same id appended earlier in the batch with the same content
  std::array<std::byte, format::kTombstonePayloadSize> tomb{};
};

struct Engine::ScanState {
  std::unordered_map<ChunkId, uint64_t> tombs;  // highest tombstone sequence per id
  uint64_t max_seq = 0;
};

Engine::Engine(io::Env* env, std::string dir, const EngineOptions& options)
    : env_(env), dir_(std::move(dir)), options_(options) {}

Engine::~Engine() {
  if (!closed_.load()) {
    Status s = Close();
    if (!s.ok()) CAIRN_LOG_WARN("engine {}: close: {}", dir_, s.ToString());
  }
}

uint64_t Engine::RecordBytes(uint32_t length) const { return RecordBytesFor(length); }

Result<std::unique_ptr<Engine>> Engine::Open(io::Env* env, const std::string& dir, const EngineOptions& options) {
  if (options.config.segment_size < (1u << 20) || options.config.segment_size > (3ull << 30)) {
    return Status::InvalidArgument("engine segment_size must be between 1 MiB and 3 GiB");
  }
  std::unique_ptr<Engine> e(new Engine(env, dir, options));
  CAIRN_RETURN_IF_ERROR(env->CreateDirs(dir));
  e->direct_ = options.config.direct_io && env->SupportsDirect(dir);
  if (options.config.direct_io && !e->direct_) {
    CAIRN_LOG_INFO("engine {}: O_DIRECT not supported here; writing through the page cache", dir);
  }
  if (e->direct_) {
    // The alignment every O_DIRECT write of this engine uses, fixed for its lifetime.
    const std::string probe = dir + "/align.tmp";
    CAIRN_ASSIGN_OR_RETURN(auto f, env->OpenFile(probe, {.create = true, .direct = true}));
    e->align_ = std::max<size_t>(f->DirectAlignment(), format::kRecordAlignment);
    f.reset();
    CAIRN_RETURN_IF_ERROR(env->DeleteFile(probe));
    if (e->align_ > kMaxDirectAlign) return Status::NotSupported("direct-I/O alignment above 4 KiB");
  }
  const uint64_t start = options.clock->NowMicros();
  CAIRN_RETURN_IF_ERROR(e->Recover().WithContext("engine " + dir + ": recovery"));
  e->recovery_micros_ = options.clock->NowMicros() - start;
  if (e->recovery_scanned_ > options.config.checkpoint_interval_bytes / 4) {
    std::lock_guard<std::mutex> l(e->maintenance_mu_);
    CAIRN_RETURN_IF_ERROR(e->CheckpointLocked());
  }
  e->opened_ = true;
  e->commit_thread_ = std::thread([raw = e.get()] { raw->CommitLoop(); });
  e->bg_thread_ = std::thread([raw = e.get()] { raw->BackgroundLoop(); });
  return e;
}

// ---------------------------------------------------------------------------------------------
// Recovery

Status Engine::LoadManifest(std::set<uint32_t>* live, uint32_t* max_id, bool* present) {
  *present = false;
  const std::string path = JoinPath(dir_, format::kManifestFileName);
  CAIRN_ASSIGN_OR_RETURN(bool exists, env_->FileExists(path));
  if (!exists) return Status::OK();
  CAIRN_ASSIGN_OR_RETURN(auto file, env_->OpenFile(path, {.read_only = true}));
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size < 28 || size > (64u << 20)) return Status::Corruption("MANIFEST has a bad size");
  std::vector<std::byte> buf(size);
  CAIRN_ASSIGN_OR_RETURN(size_t n, file->ReadAt(0, buf));
  if (n != size) return Status::Corruption("MANIFEST short read");
  const std::byte* p = buf.data();
  const uint32_t count = format::GetU32(p + 12);
  if (format::GetU64(p) == format::kManifestMagic && format::GetU32(p + 8) > format::kManifestFormatVersion) {
    return Status::NotSupported("MANIFEST has a newer format version than this build reads");
  }
  if (format::GetU64(p) != format::kManifestMagic || format::GetU32(p + 8) != format::kManifestFormatVersion ||
      size != 24 + 4ull * count + 4 || format::GetU32(p + size - 4) != crc32c::Value(p, size - 4)) {
    return Status::Corruption("MANIFEST fails its checks");
  }
  *max_id = format::GetU32(p + 16);
  for (uint32_t i = 0; i < count; ++i) live->insert(format::GetU32(p + 24 + 4 * i));
  *present = true;
  return Status::OK();
}

Status Engine::WriteManifest(const std::set<uint32_t>& leave_out) {
  std::vector<uint32_t> ids;
  uint32_t max_id;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [id, seg] : segments_) {
      if (!leave_out.contains(id)) ids.push_back(id);
    }
    // A segment whose id is allocated but whose file is still being created must be listed too:
    // recovery deletes unlisted regular segments whose id is not above max_id.
    ids.insert(ids.end(), creating_.begin(), creating_.end());
    max_id = next_segment_id_ - 1;
  }
  std::vector<std::byte> buf(24 + 4 * ids.size() + 4);
  std::byte* p = buf.data();
  format::PutU64(p, format::kManifestMagic);
  format::PutU32(p + 8, format::kManifestFormatVersion);
  format::PutU32(p + 12, static_cast<uint32_t>(ids.size()));
  format::PutU32(p + 16, max_id);
  format::PutU32(p + 20, 0);
  for (size_t i = 0; i < ids.size(); ++i) format::PutU32(p + 24 + 4 * i, ids[i]);
  format::PutU32(p + buf.size() - 4, crc32c::Value(p, buf.size() - 4));
  const std::string tmp = JoinPath(dir_, std::string(format::kManifestFileName) + ".tmp");
  {
    CAIRN_ASSIGN_OR_RETURN(auto file, env_->OpenFile(tmp, {.create = true}));
    CAIRN_RETURN_IF_ERROR(file->Truncate(0));
    iovec iov{buf.data(), buf.size()};
    CAIRN_RETURN_IF_ERROR(file->WriteAtAndSync(0, {&iov, 1}));
  }
  CAIRN_RETURN_IF_ERROR(env_->RenameFile(tmp, JoinPath(dir_, format::kManifestFileName)));
  return env_->SyncDir(dir_);
}

Status Engine::LoadCheckpoint(std::map<uint32_t, uint64_t>* coverage, bool* loaded) {
  *loaded = false;
  const std::string path = JoinPath(dir_, format::kCheckpointFileName);
  CAIRN_ASSIGN_OR_RETURN(bool exists, env_->FileExists(path));
  if (!exists) return Status::OK();
  CAIRN_ASSIGN_OR_RETURN(auto file, env_->OpenFile(path, {.read_only = true}));
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  SegmentScanner sc(file.get(), size);
  auto hdr = sc.Get(0, format::kCheckpointHeaderSize);
  if (hdr.empty()) return Status::Corruption("checkpoint header unreadable");
  const std::byte* p = hdr.data();
  if (format::GetU64(p) != format::kCheckpointMagic || format::GetU32(p + 8) != format::kCheckpointFormatVersion ||
      format::GetU32(p + 32) != crc32c::Value(p, 32)) {
    return Status::Corruption("checkpoint header fails its checks");
  }
  const uint32_t nseg = format::GetU32(p + 12);
  const uint64_t nentries = format::GetU64(p + 16);
  const uint64_t next_seq = format::GetU64(p + 24);
  uint64_t pos = format::kCheckpointHeaderSize;
  auto segs = sc.Get(pos, 16ull * nseg + 8);
  if (segs.size() != 16ull * nseg + 8) return Status::Corruption("checkpoint segment table truncated");
  if (format::GetU32(segs.data() + 16ull * nseg) != crc32c::Value(segs.data(), 16ull * nseg)) {
    return Status::Corruption("checkpoint segment table crc");
  }
  std::map<uint32_t, uint64_t> cov;
  for (uint32_t i = 0; i < nseg; ++i) {
    const uint32_t id = format::GetU32(segs.data() + 16 * i);
    cov[id] = format::GetU64(segs.data() + 16 * i + 8);
    covered_tombs_[id] = format::GetU32(segs.data() + 16 * i + 4);
  }
  pos += 16ull * nseg + 8;
  if (nentries > size / format::kCheckpointEntrySize) return Status::Corruption("checkpoint entry count");
  index_.Reserve(nentries);
  uint64_t seen = 0;
  while (seen < nentries) {
    auto bh = sc.Get(pos, 8);
    if (bh.empty()) return Status::Corruption("checkpoint block header truncated");
    const uint32_t n = format::GetU32(bh.data());
    const uint32_t crc = format::GetU32(bh.data() + 4);
    if (n == 0 || n > format::kCheckpointBlockEntries) return Status::Corruption("checkpoint block size");
    auto body = sc.Get(pos + 8, size_t{n} * format::kCheckpointEntrySize);
    if (body.empty() || crc32c::Value(body) != crc) return Status::Corruption("checkpoint block crc");
    for (uint32_t i = 0; i < n; ++i) {
      const std::byte* q = body.data() + size_t{i} * format::kCheckpointEntrySize;
      IndexEntry e;
      e.id.hi = format::GetU64(q);
      e.id.lo = format::GetU64(q + 8);
      e.seq = format::GetU64(q + 16);
      e.segment = format::GetU32(q + 24);
      e.offset = format::GetU32(q + 28);
      e.length = format::GetU32(q + 32);
      e.payload_crc = format::GetU32(q + 36);
      if (e.segment == 0) return Status::Corruption("checkpoint entry with segment 0");
      index_.Put(e);
    }
    seen += n;
    pos += 8 + size_t{n} * format::kCheckpointEntrySize;
  }
  next_seq_ = std::max<uint64_t>(next_seq_, next_seq);
  *coverage = std::move(cov);
  *loaded = true;
  return Status::OK();
}

void Engine::ApplyScannedChunk(const RecordHeader& h, uint32_t segment, uint64_t offset, ScanState& state) {
  auto t = state.tombs.find(h.id);
  if (t != state.tombs.end() && t->second > h.seq) return;  // deleted later
  const IndexEntry* cur = index_.Find(h.id);
  if (cur != nullptr && cur->seq >= h.seq) return;  // an equal copy (compaction) or a newer record
  index_.Put(IndexEntry{h.id, h.seq, segment, static_cast<uint32_t>(offset), h.length, h.payload_crc});
}

Status Engine::ScanSegment(Segment& seg, uint64_t start, ScanState& state) {
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, seg.reader->Size());
  SegmentScanner sc(seg.reader.get(), size);
  uint64_t pos = std::max<uint64_t>(start, kSegmentHeaderSize);
  while (true) {
    RecordHeader h;
    const RecordCheck c = CheckRecordAt(sc, pos, &h);
    if (!sc.status().ok()) return sc.status();
    if (c == RecordCheck::kValid) {
      state.max_seq = std::max(state.max_seq, h.seq);
      if (h.type == RecordType::kChunk) {
        ApplyScannedChunk(h, seg.id, pos, state);
      } else if (h.type == RecordType::kTombstone) {
        seg.tomb_bytes += format::RecordSize(h);
        uint64_t& t = state.tombs[h.id];
        t = std::max(t, h.seq);
        const IndexEntry* cur = index_.Find(h.id);
        if (cur != nullptr && cur->seq < h.seq) index_.Erase(h.id);
      }
      pos += format::RecordSize(h);
      continue;
    }
    if (c == RecordCheck::kEnd && pos >= size) break;
    // A bad record: either the torn tail of the last write before a crash, or corruption in the
    // middle. If any valid record follows, it is the latter: skip the bad bytes and go on.
    auto next = FindNextValidRecord(sc, pos);
    if (!sc.status().ok()) return sc.status();
    if (!next) break;
    CAIRN_LOG_ERROR("engine {}: segment {} bytes [{}, {}) are corrupt; skipped", dir_, seg.id, pos, *next);
    corruptions_.fetch_add(1);
    pos = *next;
  }
  recovery_scanned_ += pos - std::min(pos, start);
  if (pos < size) {
    // Cut the torn tail (and the preallocated zeros after the last record).
    recovery_truncated_ += size - pos;
    CAIRN_RETURN_IF_ERROR(seg.reader->Truncate(pos));
    CAIRN_RETURN_IF_ERROR(seg.reader->Sync());
  }
  seg.end = pos;
  return Status::OK();
}

Status Engine::Recover() {
  // Leftover temporary files from an interrupted MANIFEST or checkpoint write.
  CAIRN_ASSIGN_OR_RETURN(auto names, env_->ListDir(dir_));
  for (const auto& n : names) {
    if (n.size() > 4 && n.substr(n.size() - 4) == ".tmp") CAIRN_RETURN_IF_ERROR(env_->DeleteFile(JoinPath(dir_, n)));
  }

  std::set<uint32_t> manifest_live;
  uint32_t manifest_max = 0;
  bool manifest_present = false;
  bool trust_all = false;  // MANIFEST unreadable: keep every segment, duplicates are harmless
  if (Status s = LoadManifest(&manifest_live, &manifest_max, &manifest_present); !s.ok()) {
    if (!s.IsCorruption()) return s;
    CAIRN_LOG_ERROR("engine {}: {}; keeping every segment and rescanning", dir_, s.ToString());
    trust_all = true;
  }

  uint32_t max_seen = manifest_max;
  std::vector<uint32_t> ids;
  for (const auto& n : names) {
    if (auto id = format::ParseSegmentFileName(n)) ids.push_back(*id);
  }
  std::sort(ids.begin(), ids.end());
  for (uint32_t id : ids) {
    max_seen = std::max(max_seen, id);
    const std::string path = JoinPath(dir_, format::SegmentFileName(id));
    auto seg = std::make_shared<Segment>();
    seg->id = id;
    CAIRN_ASSIGN_OR_RETURN(seg->reader, env_->OpenFile(path, {}));
    CAIRN_ASSIGN_OR_RETURN(uint64_t size, seg->reader->Size());
    std::vector<std::byte> hb(kSegmentHeaderSize);
    CAIRN_ASSIGN_OR_RETURN(size_t got, seg->reader->ReadAt(0, hb));
    if (got >= 12 && format::GetU64(hb.data()) == format::kSegmentMagic &&
        format::GetU32(hb.data() + 8) > format::kSegmentFormatVersion) {
      // Written by a newer Cairn: never treat it as damaged (that would delete it).
      return Status::NotSupported("segment " + std::to_string(id) + " has format version " +
                                  std::to_string(format::GetU32(hb.data() + 8)) + "; this build reads version " +
                                  std::to_string(format::kSegmentFormatVersion));
    }
    auto header = got == kSegmentHeaderSize ? format::DecodeSegmentHeader(hb) : std::nullopt;
    if (!header || header->segment_id != id) {
      // A segment whose creation never completed holds nothing that was acknowledged: records
      // are acknowledged only after the header and the directory entry are durable.
      SegmentScanner sc(seg->reader.get(), size);
      RecordHeader rh;
      if (CheckRecordAt(sc, kSegmentHeaderSize, &rh) != RecordCheck::kValid) {
        CAIRN_LOG_WARN("engine {}: removing segment {} with an unfinished header", dir_, id);
        seg.reset();
        CAIRN_RETURN_IF_ERROR(env_->DeleteFile(path));
        continue;
      }
      CAIRN_LOG_ERROR("engine {}: segment {} header is corrupt; treating it as a regular segment", dir_, id);
      corruptions_.fetch_add(1);
      header = format::SegmentHeader{0, id, 0};
    }
    seg->compaction_output = (header->flags & format::kSegmentFlagCompactionOutput) != 0;
    bool live;
    if (trust_all) {
      live = true;
    } else if (manifest_present) {
      live = manifest_live.contains(id) || (id > manifest_max && !seg->compaction_output);
    } else {
      live = !seg->compaction_output;
    }
    if (!live) {
      CAIRN_LOG_INFO("engine {}: removing segment {} ({})", dir_, id,
                     seg->compaction_output ? "unfinished compaction output" : "compacted away");
      seg.reset();
      CAIRN_RETURN_IF_ERROR(env_->DeleteFile(path));
      continue;
    }
    if (options_.config.direct_reads && direct_) {
      CAIRN_ASSIGN_OR_RETURN(seg->direct_reader, env_->OpenFile(path, {.read_only = true, .direct = true}));
    }
    seg->sealed.store(true, std::memory_order_release);
    segments_[id] = std::move(seg);
  }
  CAIRN_RETURN_IF_ERROR(env_->SyncDir(dir_));
  next_segment_id_ = max_seen + 1;

  std::map<uint32_t, uint64_t> coverage;
  bool loaded = false;
  if (Status s = LoadCheckpoint(&coverage, &loaded); !s.ok()) {
    if (!s.IsCorruption()) return s;
    CAIRN_LOG_ERROR("engine {}: {}; rebuilding the index from the segments", dir_, s.ToString());
    loaded = false;
  }
  if (loaded) {
    // The checkpoint must not claim more of a segment than the file holds.
    for (const auto& [id, end] : coverage) {
      auto it = segments_.find(id);
      if (it == segments_.end()) continue;
      auto size = it->second->reader->Size();
      if (!size.ok() || *size < end) {
        CAIRN_LOG_ERROR("engine {}: checkpoint covers segment {} past its end; rebuilding the index", dir_, id);
        loaded = false;
        break;
      }
    }
  }
  if (!loaded) {
    index_ = ChunkIndex();
    coverage.clear();
  } else {
    for (const auto& [id, bytes] : covered_tombs_) {
      if (auto it = segments_.find(id); it != segments_.end()) it->second->tomb_bytes = bytes;
    }
    // Entries in segments that no longer exist were dead when their segment was compacted.
    index_.EraseIf([&](const IndexEntry& e) { return !segments_.contains(e.segment); });
  }
  recovered_from_checkpoint_ = loaded;

  ScanState state;
  for (auto& [id, seg] : segments_) {
    auto it = coverage.find(id);
    const uint64_t start = it == coverage.end() ? kSegmentHeaderSize : it->second;
    CAIRN_RETURN_IF_ERROR(ScanSegment(*seg, start, state).WithContext("segment " + std::to_string(id)));
  }
  next_seq_ = std::max<uint64_t>(next_seq_, state.max_seq + 1);

  // Live bytes per segment, from the index; tombstones are counted by their segment scan only
  // approximately (as dead) until compaction rewrites them.
  index_.ForEach([&](const IndexEntry& e) {
    auto it = segments_.find(e.segment);
    if (it != segments_.end()) it->second->live_bytes += RecordBytes(e.length);
  });
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// Write path

Result<std::shared_ptr<Engine::Segment>> Engine::CreateSegment(uint32_t id, bool compaction_output) {
  const std::string path = JoinPath(dir_, format::SegmentFileName(id));
  auto seg = std::make_shared<Segment>();
  seg->id = id;
  seg->compaction_output = compaction_output;
  auto cleanup = [&](Status s) {
    seg->writer.reset();
    seg->reader.reset();
    Status d = env_->DeleteFile(path);
    (void)d;
    return s;
  };
  CAIRN_ASSIGN_OR_RETURN(seg->writer, env_->OpenFile(path, {.create = true, .exclusive = true, .direct = direct_}));
  if (Status s = seg->writer->Allocate(0, options_.config.segment_size); !s.ok()) {
    if (!s.IsNotSupported()) return cleanup(s);
  } else {
    seg->allocated = options_.config.segment_size;
  }
  io::AlignedBuffer hb(kSegmentHeaderSize, kMaxDirectAlign);
  format::SegmentHeader h{compaction_output ? format::kSegmentFlagCompactionOutput : 0u, id,
                          options_.clock->WallMicros()};
  format::EncodeSegmentHeader(h, std::span<std::byte, kSegmentHeaderSize>(hb.data(), kSegmentHeaderSize));
  iovec iov{hb.data(), kSegmentHeaderSize};
  if (Status s = seg->writer->WriteAtAndSync(0, {&iov, 1}); !s.ok()) return cleanup(s);
  if (Status s = env_->SyncDir(dir_); !s.ok()) return cleanup(s);
  auto reader = env_->OpenFile(path, {});
  if (!reader.ok()) return cleanup(reader.status());
  seg->reader = std::move(*reader);
  if (direct_) {
    auto dr = env_->OpenFile(path, {.read_only = true, .direct = true});
    if (!dr.ok()) return cleanup(dr.status());
    seg->direct_reader = std::move(*dr);
  }
  return seg;
}

void Engine::SealSegment(Segment& seg) {
  if (!seg.writer) return;
  seg.sealed.store(true, std::memory_order_release);
  uint64_t end;
  {
    std::lock_guard<std::mutex> l(mu_);
    end = seg.end;
  }
  // Give back the preallocated space after the last record. Failure only costs space.
  Status s = seg.writer->Truncate(end);
  if (s.ok()) s = seg.writer->Sync();
  if (!s.ok()) CAIRN_LOG_WARN("engine {}: sealing segment {}: {}", dir_, seg.id, s.ToString());
  seg.writer.reset();
}

Status Engine::RollSegment() {
  if (active_) {
    SealSegment(*active_);
    active_.reset();
  }
  uint32_t id;
  {
    std::lock_guard<std::mutex> l(mu_);
    id = next_segment_id_++;
    creating_.insert(id);
  }
  if (options_.sync_point) options_.sync_point("RollSegment:IdAllocated");
  auto created = CreateSegment(id, /*compaction_output=*/false);
  std::lock_guard<std::mutex> l(mu_);
  creating_.erase(id);
  if (!created.ok()) return created.status();
  auto seg = std::move(*created);
  segments_[id] = seg;
  active_ = std::move(seg);
  return Status::OK();
}

void Engine::Enqueue(Writer* w) {
  {
    std::lock_guard<std::mutex> l(write_mu_);
    writers_.push_back(w);
  }
  commit_cv_.notify_one();
}

Status Engine::Submit(Writer& w) {
  Enqueue(&w);
  std::unique_lock<std::mutex> l(write_mu_);
  w.cv.wait(l, [&] { return w.done; });
  return w.status;
}

void Engine::CommitLoop() {
  std::vector<Writer*> batch;
  std::unique_lock<std::mutex> l(write_mu_);
  while (true) {
    commit_cv_.wait(l, [&] { return !writers_.empty() || stop_commit_; });
    if (writers_.empty()) break;  // stopping, and nothing left to write
    // Take every writer queued, up to the batch byte limit: they share one write and one sync.
    batch.clear();
    uint64_t bytes = 0;
    for (Writer* x : writers_) {
      const uint64_t b = RecordBytes(static_cast<uint32_t>(x->data.size()));
      if (!batch.empty() && bytes + b > options_.config.max_batch_bytes) break;
      batch.push_back(x);
      bytes += b;
    }
    l.unlock();
    WriteBatch(batch);
    // Completion callbacks run here, outside the lock and before the synchronous waiters are
    // released; a Writer with a callback is owned by this thread from here on.
    for (Writer* x : batch) {
      if (x->callback) x->callback(x->status, x->location);
    }
    l.lock();
    for (Writer* x : batch) {
      writers_.pop_front();
      if (x->callback) {
        delete x;
      } else {
        x->done = true;
        x->cv.notify_one();
      }
    }
  }
}

void Engine::WriteBatch(std::vector<Writer*>& batch) {
  // 1. Decide, under the index lock, what each writer needs written.
  {
    std::lock_guard<std::mutex> l(mu_);
    std::unordered_map<ChunkId, Writer*> pending;  // appends earlier in this batch
    for (Writer* w : batch) {
      w->write = false;
      w->alias = nullptr;
      auto p = pending.find(w->id);
      if (w->type == RecordType::kChunk) {
        const IndexEntry* e = index_.Find(w->id);
        if (e != nullptr) {
          if (e->length == w->data.size() && e->payload_crc == w->crc) {
            w->location = {e->segment, e->offset, e->length, e->payload_crc};
          } else {
            w->status = Status::AlreadyExists("chunk " + w->id.ToString() + " exists with other content");
          }
        } else if (p != pending.end() && p->second->type == RecordType::kChunk) {
          if (p->second->data.size() == w->data.size() && p->second->crc == w->crc) {
            w->alias = p->second;
          } else {
            w->status = Status::AlreadyExists("chunk " + w->id.ToString() + " appended twice with other content");
          }
        } else {
          w->write = true;
          pending[w->id] = w;
        }
      } else {
        format::TombstonePayload t;
        if (p != pending.end() && p->second->type == RecordType::kChunk) {
          t.segments[0] = format::kNoSegment;  // filled in once the batch's segment is known
          w->write = true;
          pending[w->id] = w;
        } else if (const IndexEntry* e = index_.Find(w->id); e != nullptr && p == pending.end()) {
          t.deleted_seq = e->seq;
          t.segments[0] = e->segment;
          if (compacting_.contains(e->segment)) t.segments[1] = compaction_output_;
          w->write = true;
          pending[w->id] = w;
        } else {
          w->status = Status::NotFound("chunk " + w->id.ToString());
        }
        format::EncodeTombstone(t, w->tomb);
      }
    }
  }

  // 2. Lay the records out, rolling to a new segment when they do not fit.
  uint64_t bytes = 0;
  for (Writer* w : batch) {
    if (!w->write) continue;
    if (w->prepared.size() != 0) {
      bytes += w->prepared.size() + kMaxDirectAlign + kRecordHeaderSize;  // worst-case gap before it
    } else {
      bytes += RecordBytes(w->type == RecordType::kChunk ? static_cast<uint32_t>(w->data.size())
                                                         : format::kTombstonePayloadSize);
    }
  }
  if (bytes == 0) return;
  auto fail_all = [&](const Status& s) {
    for (Writer* w : batch) {
      if (w->write || w->alias != nullptr) w->status = s;
    }
  };
  const uint64_t worst = bytes + 2 * kMaxDirectAlign;
  uint64_t end = 0;
  if (active_) {
    std::lock_guard<std::mutex> l(mu_);
    end = active_->end;
  }
  if (!active_ || (end + worst > options_.config.segment_size && end > kSegmentHeaderSize)) {
    if (Status s = RollSegment(); !s.ok()) {
      fail_all(s);
      return;
    }
    end = kSegmentHeaderSize;
  }
  Segment& seg = *active_;
  // Fill in tombstones for chunks appended earlier in this same batch.
  for (Writer* w : batch) {
    if (w->write && w->type == RecordType::kTombstone) {
      auto t = format::DecodeTombstone(w->tomb);
      if (t.segments[0] == format::kNoSegment) {
        t.segments[0] = seg.id;
        format::EncodeTombstone(t, w->tomb);
      }
    }
  }

  // 3. Encode. With O_DIRECT, small records are copied into the aligned batch buffer and
  //    prepared (large) records are written from their own buffers; every piece is aligned, and the
  //    group ends with a padding record at the device's alignment. Without O_DIRECT, headers and
  //    payloads go out as iovecs.
  uint64_t pos = end;
  std::vector<iovec> iov;
  std::vector<std::array<std::byte, kRecordHeaderSize>> headers;
  headers.reserve(batch.size() + 1);
  static const std::array<std::byte, format::kRecordAlignment> kZeros{};
  std::unordered_map<ChunkId, uint64_t> seq_of;  // for tombstones of same-batch appends
  if (direct_) {
    // Small records and paddings: at most `bytes` plus the final padding.
    const uint64_t need = bytes + align_ + kRecordHeaderSize;
    if (batch_buf_.size() < need) batch_buf_ = io::AlignedBuffer(std::max<uint64_t>(need, 1u << 20), kMaxDirectAlign);
  }
  std::byte* out = direct_ ? batch_buf_.data() : nullptr;
  std::byte* region = out;  // start of the small-record region not yet in `iov`
  auto flush_region = [&] {
    if (out != region) iov.push_back({region, static_cast<size_t>(out - region)});
    region = out;
  };
  auto pad = [&](uint64_t gap) {
    if (gap == 0) return;
    EncodePadding(out, gap);
    out += gap;
    pos += gap;
  };
  auto emit = [&](const RecordHeader& h, std::span<const std::byte> payload) {
    headers.emplace_back();
    format::EncodeRecordHeader(h, headers.back());
    const uint64_t size = format::RecordSize(h);
    if (direct_) {
      std::memcpy(out, headers.back().data(), kRecordHeaderSize);
      if (!payload.empty()) std::memcpy(out + kRecordHeaderSize, payload.data(), payload.size());
      std::memset(out + kRecordHeaderSize + payload.size(), 0, size - kRecordHeaderSize - payload.size());
      out += size;
    } else {
      iov.push_back({headers.back().data(), kRecordHeaderSize});
      if (!payload.empty()) iov.push_back({const_cast<std::byte*>(payload.data()), payload.size()});
      const size_t tail = size - kRecordHeaderSize - payload.size();
      if (tail > 0) iov.push_back({const_cast<std::byte*>(kZeros.data()), tail});
    }
    pos += size;
  };
  for (Writer* w : batch) {
    if (!w->write) continue;
    RecordHeader h;
    h.type = w->type;
    h.id = w->id;
    h.seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
    w->seq = h.seq;
    if (w->type == RecordType::kChunk) {
      h.length = static_cast<uint32_t>(w->data.size());
      h.payload_crc = w->crc;
      seq_of[w->id] = h.seq;
      if (w->prepared.size() != 0) {
        pad(GapToAlign(pos, kMaxDirectAlign));
        flush_region();
        w->location = {seg.id, static_cast<uint32_t>(pos), h.length, h.payload_crc};
        format::EncodeRecordHeader(h, std::span<std::byte, kRecordHeaderSize>(w->prepared.data(), kRecordHeaderSize));
        iov.push_back({w->prepared.data(), w->prepared.size()});
        pos += w->prepared.size();
      } else {
        w->location = {seg.id, static_cast<uint32_t>(pos), h.length, h.payload_crc};
        emit(h, w->data);
      }
    } else {
      auto t = format::DecodeTombstone(w->tomb);
      if (auto it = seq_of.find(w->id); it != seq_of.end() && t.deleted_seq == 0) {
        t.deleted_seq = it->second;
        format::EncodeTombstone(t, w->tomb);
      }
      h.length = format::kTombstonePayloadSize;
      h.payload_crc = crc32c::Value(w->tomb.data(), w->tomb.size());
      emit(h, w->tomb);
    }
  }
  if (direct_) {
    pad(GapToAlign(pos, align_));
    flush_region();
  }
  const uint64_t padded = pos - end;

  // 4. One write, one fdatasync for the whole group.
  Status s = seg.writer->WriteAtAndSync(end, iov);
  if (!s.ok()) {
    // The bytes after `end` are unknown now; abandon this segment so the next batch starts a
    // fresh one, and cut what may have landed.
    CAIRN_LOG_ERROR("engine {}: write of {} bytes to segment {} failed: {}", dir_, padded, seg.id, s.ToString());
    fail_all(s);
    SealSegment(seg);
    active_.reset();
    return;
  }
  group_commits_.fetch_add(1, std::memory_order_relaxed);

  // 5. Publish: the records are durable, so the index may point at them.
  {
    std::lock_guard<std::mutex> l(mu_);
    for (Writer* w : batch) {
      if (!w->write) continue;
      if (w->type == RecordType::kChunk) {
        index_.Put(IndexEntry{w->id, w->seq, seg.id, w->location.offset, w->location.length, w->crc});
        seg.live_bytes += RecordBytes(w->location.length);
        appends_.fetch_add(1, std::memory_order_relaxed);
      } else {
        if (const IndexEntry* e = index_.Find(w->id); e != nullptr) {
          auto it = segments_.find(e->segment);
          if (it != segments_.end()) it->second->live_bytes -= std::min(it->second->live_bytes, RecordBytes(e->length));
          index_.Erase(w->id);
        }
        seg.tomb_bytes += RecordBytes(format::kTombstonePayloadSize);
        deletes_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    seg.end = end + padded;
    bytes_since_checkpoint_ += padded;
  }
  for (Writer* w : batch) {
    if (w->alias != nullptr) w->location = w->alias->location;
  }
}

Result<ChunkLocation> Engine::Append(const ChunkId& id, std::span<const std::byte> data, uint32_t payload_crc) {
  if (closed_.load(std::memory_order_relaxed)) return Status::Cancelled("engine closed");
  if (data.size() > format::kMaxChunkSize) return Status::InvalidArgument("chunk larger than 64 MiB");
  if (crc32c::Value(data) != payload_crc) {
    return Status::ChecksumMismatch("chunk " + id.ToString() + ": payload does not match its crc32c");
  }
  Writer w;
  w.type = RecordType::kChunk;
  w.id = id;
  w.data = data;
  w.crc = payload_crc;
  Prepare(w);
  CAIRN_RETURN_IF_ERROR(Submit(w));
  return w.location;
}

void Engine::AppendAsync(const ChunkId& id, std::span<const std::byte> data, uint32_t payload_crc,
                         AppendCallback done) {
  Status refused;
  if (closed_.load(std::memory_order_relaxed)) {
    refused = Status::Cancelled("engine closed");
  } else if (data.size() > format::kMaxChunkSize) {
    refused = Status::InvalidArgument("chunk larger than 64 MiB");
  } else if (crc32c::Value(data) != payload_crc) {
    refused = Status::ChecksumMismatch("chunk " + id.ToString() + ": payload does not match its crc32c");
  }
  if (!refused.ok()) {
    done(refused, ChunkLocation{});
    return;
  }
  auto* w = new Writer;
  w->type = RecordType::kChunk;
  w->id = id;
  w->data = data;
  w->crc = payload_crc;
  w->callback = std::move(done);
  Prepare(*w);
  Enqueue(w);
}

void Engine::Prepare(Writer& w) const {
  if (!direct_ || w.data.size() < kPreparedMinPayload) return;
  const uint32_t length = static_cast<uint32_t>(w.data.size());
  const uint64_t total = PreparedBytes(length);
  const uint64_t rec = RecordBytes(length);
  w.prepared = io::AlignedBuffer(total, kMaxDirectAlign);
  std::byte* p = w.prepared.data();
  // The header (with its sequence number) is written by the commit thread; the rest is final.
  std::memcpy(p + kRecordHeaderSize, w.data.data(), length);
  std::memset(p + kRecordHeaderSize + length, 0, rec - kRecordHeaderSize - length);
  if (total > rec) EncodePadding(p + rec, total - rec);
}

Status Engine::Delete(const ChunkId& id) {
  if (closed_.load(std::memory_order_relaxed)) return Status::Cancelled("engine closed");
  Writer w;
  w.type = RecordType::kTombstone;
  w.id = id;
  return Submit(w);
}

void Engine::DeleteMany(std::span<const ChunkId> ids, std::vector<Status>* results) {
  results->assign(ids.size(), Status::OK());
  if (closed_.load(std::memory_order_relaxed)) {
    for (auto& r : *results) r = Status::Cancelled("engine closed");
    return;
  }
  std::deque<Writer> writers;
  for (const ChunkId& id : ids) {
    Writer& w = writers.emplace_back();
    w.type = RecordType::kTombstone;
    w.id = id;
  }
  {
    std::lock_guard<std::mutex> l(write_mu_);
    for (Writer& w : writers) writers_.push_back(&w);
  }
  commit_cv_.notify_one();
  std::unique_lock<std::mutex> l(write_mu_);
  for (size_t i = 0; i < writers.size(); ++i) {
    writers[i].cv.wait(l, [&] { return writers[i].done; });
    (*results)[i] = writers[i].status;
  }
}

// ---------------------------------------------------------------------------------------------
// Read path

Result<std::pair<std::shared_ptr<Engine::Segment>, IndexEntry>> Engine::Lookup(const ChunkId& id) {
  std::lock_guard<std::mutex> l(mu_);
  const IndexEntry* e = index_.Find(id);
  if (e == nullptr) return Status::NotFound("chunk " + id.ToString());
  auto it = segments_.find(e->segment);
  if (it == segments_.end()) return Status::Internal("index points at a missing segment");
  return std::make_pair(it->second, *e);
}

// Reads the record of `e` into `buf` and verifies it; the payload starts at buf[*payload_start].
Status Engine::ReadRecord(const std::shared_ptr<Segment>& seg, const IndexEntry& e, std::vector<std::byte>& buf,
                          size_t* payload_start) {
  const uint64_t rec = kRecordHeaderSize + uint64_t{e.length};
  const bool direct = seg->direct_reader && (options_.config.direct_reads || !seg->sealed.load(std::memory_order_acquire));
  if (direct) {
    const size_t a = seg->direct_reader->DirectAlignment();
    const uint64_t start = format::AlignDown(e.offset, a);
    const uint64_t stop = format::AlignUp(e.offset + rec, a);
    thread_local io::AlignedBuffer abuf;
    if (abuf.size() < stop - start) abuf = io::AlignedBuffer(std::max<uint64_t>(stop - start, 1u << 16), std::max<size_t>(a, 512));
    CAIRN_ASSIGN_OR_RETURN(size_t n, seg->direct_reader->ReadAt(start, {abuf.data(), stop - start}));
    if (n < e.offset - start + rec) return Status::Corruption("short read of chunk record");
    buf.assign(abuf.data() + (e.offset - start), abuf.data() + (e.offset - start) + rec);
  } else {
    buf.resize(rec);
    CAIRN_ASSIGN_OR_RETURN(size_t n, seg->reader->ReadAt(e.offset, buf));
    if (n < rec) return Status::Corruption("short read of chunk record");
  }
  RecordHeader h;
  const auto check = format::DecodeRecordHeader(buf, &h);
  std::string why;
  if (check != format::HeaderCheck::kOk) {
    why = "bad record header";
  } else if (h.type != RecordType::kChunk || h.id != e.id || h.length != e.length || h.payload_crc != e.payload_crc ||
             h.payload_offset != kRecordHeaderSize) {
    why = "record header does not match the index";
  } else if (crc32c::Value(buf.data() + kRecordHeaderSize, e.length) != e.payload_crc) {
    why = "payload checksum mismatch";
  }
  if (!why.empty()) {
    corruptions_.fetch_add(1, std::memory_order_relaxed);
    CAIRN_LOG_ERROR("engine {}: chunk {} in segment {} at {}: {}", dir_, e.id.ToString(), seg->id, e.offset, why);
    return Status::Corruption("chunk " + e.id.ToString() + ": " + why);
  }
  *payload_start = kRecordHeaderSize;
  return Status::OK();
}

Status Engine::Read(const ChunkId& id, uint64_t offset, std::span<std::byte> out) {
  CAIRN_ASSIGN_OR_RETURN(auto found, Lookup(id));
  auto& [seg, e] = found;
  if (offset > e.length || out.size() > e.length - offset) return Status::InvalidArgument("range past the end of the chunk");
  auto& buf = ReadScratch();
  size_t start = 0;
  CAIRN_RETURN_IF_ERROR(ReadRecord(seg, e, buf, &start));
  if (!out.empty()) std::memcpy(out.data(), buf.data() + start + offset, out.size());
  return Status::OK();
}

Result<std::vector<std::byte>> Engine::ReadAll(const ChunkId& id) {
  CAIRN_ASSIGN_OR_RETURN(auto found, Lookup(id));
  auto& [seg, e] = found;
  auto& buf = ReadScratch();
  size_t start = 0;
  CAIRN_RETURN_IF_ERROR(ReadRecord(seg, e, buf, &start));
  return std::vector<std::byte>(buf.begin() + static_cast<ptrdiff_t>(start), buf.begin() + static_cast<ptrdiff_t>(start + e.length));
}

Result<SendableRange> Engine::ReadForSend(const ChunkId& id, uint64_t offset, uint64_t length) {
  CAIRN_ASSIGN_OR_RETURN(auto found, Lookup(id));
  auto& [seg, e] = found;
  if (offset > e.length || length > e.length - offset) return Status::InvalidArgument("range past the end of the chunk");
  auto& buf = ReadScratch();
  size_t start = 0;
  CAIRN_RETURN_IF_ERROR(ReadRecord(seg, e, buf, &start));
  SendableRange r;
  r.length = length;
  if (!seg->sealed.load(std::memory_order_acquire)) {
    // Still being written with O_DIRECT: the page cache must not be involved, so hand out the
    // verified bytes instead of a descriptor.
    r.bytes.assign(buf.begin() + static_cast<ptrdiff_t>(start + offset),
                   buf.begin() + static_cast<ptrdiff_t>(start + offset + length));
    return r;
  }
  r.fd = seg->reader->fd();
  r.offset = uint64_t{e.offset} + kRecordHeaderSize + offset;
  r.pin = seg;
  return r;
}

Result<ChunkInfo> Engine::Stat(const ChunkId& id) {
  std::lock_guard<std::mutex> l(mu_);
  const IndexEntry* e = index_.Find(id);
  if (e == nullptr) return Status::NotFound("chunk " + id.ToString());
  return ChunkInfo{e->id, e->length, e->payload_crc};
}

void Engine::ForEachChunk(const std::function<void(const ChunkInfo&)>& fn) {
  std::vector<IndexEntry> shard;
  for (size_t i = 0; i < ChunkIndex::kShards; ++i) {
    shard.clear();
    {
      std::lock_guard<std::mutex> l(mu_);
      index_.CopyShard(i, &shard);
    }
    for (const auto& e : shard) fn(ChunkInfo{e.id, e.length, e.payload_crc});
  }
}

EngineStats Engine::Stats() {
  EngineStats s;
  {
    std::lock_guard<std::mutex> l(mu_);
    s.chunks = index_.size();
    s.index_memory_bytes = index_.MemoryBytes();
    for (const auto& [id, seg] : segments_) {
      SegmentStats ss;
      ss.id = id;
      ss.size = seg->end;
      ss.live_bytes = seg->live_bytes;
      const uint64_t used = seg->end - kSegmentHeaderSize;
      ss.dead_bytes = used - std::min(used, seg->live_bytes + seg->tomb_bytes);
      ss.active = !seg->sealed.load(std::memory_order_acquire) && !seg->compaction_output;
      ss.compaction_output = seg->compaction_output;
      s.live_bytes += ss.live_bytes;
      s.dead_bytes += ss.dead_bytes;
      s.segments.push_back(ss);
    }
  }
  s.appends = appends_.load();
  s.deletes = deletes_.load();
  s.group_commits = group_commits_.load();
  s.corruptions_detected = corruptions_.load();
  s.compactions = compactions_.load();
  s.compaction_bytes_reclaimed = reclaimed_.load();
  s.compaction_max_pause_us = max_pause_us_.load();
  s.checkpoints = checkpoints_.load();
  s.recovery_scanned_bytes = recovery_scanned_;
  s.recovery_truncated_bytes = recovery_truncated_;
  s.recovery_micros = recovery_micros_;
  s.recovered_from_checkpoint = recovered_from_checkpoint_;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Checkpoint

Status Engine::Checkpoint() {
  std::lock_guard<std::mutex> l(maintenance_mu_);
  return CheckpointLocked();
}

Status Engine::CheckpointLocked() {
  // Coverage is taken first: every record below a segment's `end` is already reflected in the
  // index, and anything that changes while the shards are copied lies past it and is rescanned.
  struct Covered {
    uint32_t id;
    uint32_t tomb_bytes;
    uint64_t end;
  };
  std::vector<Covered> coverage;
  uint64_t next_seq;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [id, seg] : segments_) coverage.push_back({id, static_cast<uint32_t>(seg->tomb_bytes), seg->end});
    bytes_since_checkpoint_ = 0;
  }
  next_seq = next_seq_.load(std::memory_order_relaxed);  // recovery also takes the scanned maximum
  const std::string tmp = JoinPath(dir_, std::string(format::kCheckpointFileName) + ".tmp");
  CAIRN_ASSIGN_OR_RETURN(auto file, env_->OpenFile(tmp, {.create = true}));
  CAIRN_RETURN_IF_ERROR(file->Truncate(0));
  std::vector<std::byte> buf(format::kCheckpointHeaderSize + 16 * coverage.size() + 8);
  std::byte* p = buf.data() + format::kCheckpointHeaderSize;
  for (size_t i = 0; i < coverage.size(); ++i) {
    format::PutU32(p + 16 * i, coverage[i].id);
    format::PutU32(p + 16 * i + 4, coverage[i].tomb_bytes);
    format::PutU64(p + 16 * i + 8, coverage[i].end);
  }
  format::PutU32(p + 16 * coverage.size(), crc32c::Value(p, 16 * coverage.size()));
  format::PutU32(p + 16 * coverage.size() + 4, 0);
  uint64_t off = 0;
  auto write = [&](std::span<const std::byte> b) -> Status {
    iovec iov{const_cast<std::byte*>(b.data()), b.size()};
    CAIRN_RETURN_IF_ERROR(file->WriteAt(off, {&iov, 1}));
    off += b.size();
    return Status::OK();
  };
  CAIRN_RETURN_IF_ERROR(write(buf));
  uint64_t total = 0;
  std::vector<IndexEntry> shard;
  std::vector<std::byte> block;
  for (size_t i = 0; i < ChunkIndex::kShards; ++i) {
    shard.clear();
    {
      std::lock_guard<std::mutex> l(mu_);
      index_.CopyShard(i, &shard);
    }
    for (size_t b = 0; b < shard.size(); b += format::kCheckpointBlockEntries) {
      const size_t n = std::min<size_t>(format::kCheckpointBlockEntries, shard.size() - b);
      block.assign(8 + n * format::kCheckpointEntrySize, std::byte{0});
      for (size_t k = 0; k < n; ++k) {
        const IndexEntry& e = shard[b + k];
        std::byte* q = block.data() + 8 + k * format::kCheckpointEntrySize;
        format::PutU64(q, e.id.hi);
        format::PutU64(q + 8, e.id.lo);
        format::PutU64(q + 16, e.seq);
        format::PutU32(q + 24, e.segment);
        format::PutU32(q + 28, e.offset);
        format::PutU32(q + 32, e.length);
        format::PutU32(q + 36, e.payload_crc);
      }
      format::PutU32(block.data(), static_cast<uint32_t>(n));
      format::PutU32(block.data() + 4, crc32c::Value(block.data() + 8, n * format::kCheckpointEntrySize));
      CAIRN_RETURN_IF_ERROR(write(block));
      total += n;
    }
  }
  std::byte* h = buf.data();
  format::PutU64(h, format::kCheckpointMagic);
  format::PutU32(h + 8, format::kCheckpointFormatVersion);
  format::PutU32(h + 12, static_cast<uint32_t>(coverage.size()));
  format::PutU64(h + 16, total);
  format::PutU64(h + 24, next_seq);
  format::PutU32(h + 32, crc32c::Value(h, 32));
  format::PutU32(h + 36, 0);
  iovec hiov{h, format::kCheckpointHeaderSize};
  CAIRN_RETURN_IF_ERROR(file->WriteAtAndSync(0, {&hiov, 1}));
  file.reset();
  CAIRN_RETURN_IF_ERROR(env_->RenameFile(tmp, JoinPath(dir_, format::kCheckpointFileName)));
  CAIRN_RETURN_IF_ERROR(env_->SyncDir(dir_));
  checkpoints_.fetch_add(1);
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// Compaction

Result<uint64_t> Engine::CompactNow(bool force) {
  std::vector<uint32_t> victims;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [id, seg] : segments_) {
      if (!seg->sealed.load(std::memory_order_acquire)) continue;  // active or still being written
      const uint64_t used = seg->end - kSegmentHeaderSize;
      const uint64_t dead = used - std::min(used, seg->live_bytes + seg->tomb_bytes);
      if (used == 0 || dead == 0) continue;
      if (force || static_cast<double>(dead) >= options_.config.compaction_dead_ratio * static_cast<double>(used)) {
        victims.push_back(id);
      }
    }
  }
  uint64_t reclaimed = 0;
  // Group victims so that one output segment holds their live records.
  std::vector<uint32_t> group;
  uint64_t group_live = 0;
  auto flush = [&]() -> Status {
    if (group.empty()) return Status::OK();
    std::lock_guard<std::mutex> l(maintenance_mu_);
    CAIRN_ASSIGN_OR_RETURN(uint64_t r, CompactSegments(group));
    reclaimed += r;
    group.clear();
    group_live = 0;
    return Status::OK();
  };
  for (uint32_t id : victims) {
    uint64_t live;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = segments_.find(id);
      if (it == segments_.end()) continue;
      live = it->second->live_bytes;
    }
    if (!group.empty() && group_live + live > options_.config.segment_size / 2) CAIRN_RETURN_IF_ERROR(flush());
    group.push_back(id);
    group_live += live;
  }
  CAIRN_RETURN_IF_ERROR(flush());
  return reclaimed;
}

Result<uint64_t> Engine::CompactSegments(const std::vector<uint32_t>& victim_ids) {
  struct Moved {
    ChunkId id;
    uint32_t victim, old_offset, new_offset, length;
  };
  std::vector<std::shared_ptr<Segment>> victims;
  uint32_t out_id;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (uint32_t id : victim_ids) {
      auto it = segments_.find(id);
      if (it == segments_.end() || !it->second->sealed.load(std::memory_order_acquire)) continue;
      victims.push_back(it->second);
      compacting_.insert(id);
    }
    if (victims.empty()) return uint64_t{0};
    out_id = next_segment_id_++;
    compaction_output_ = out_id;
  }
  auto finish = [&]() {
    std::lock_guard<std::mutex> l(mu_);
    compacting_.clear();
    compaction_output_ = format::kNoSegment;
  };

  std::shared_ptr<Segment> out;
  uint64_t out_pos = kSegmentHeaderSize;   // file offset of out_buf[0]
  io::AlignedBuffer out_buf(kCompactionFlush + 2 * kMaxDirectAlign, kMaxDirectAlign);
  size_t out_len = 0;
  uint64_t kept_tomb_bytes = 0;
  std::vector<Moved> moved;
  uint64_t victim_bytes = 0;
  const size_t a = direct_ ? align_ : 1;

  auto write_out = [&](bool final) -> Status {
    size_t n = final ? out_len : format::AlignDown(out_len, a);
    if (n == 0) return final ? out->writer->Sync() : Status::OK();
    iovec iov{out_buf.data(), n};
    CAIRN_RETURN_IF_ERROR(final ? out->writer->WriteAtAndSync(out_pos, {&iov, 1}) : out->writer->WriteAt(out_pos, {&iov, 1}));
    std::memmove(out_buf.data(), out_buf.data() + n, out_len - n);
    out_len -= n;
    out_pos += n;
    return Status::OK();
  };
  auto fail = [&](Status s) -> Result<uint64_t> {
    CAIRN_LOG_ERROR("engine {}: compaction of {} segment(s) failed: {}", dir_, victims.size(), s.ToString());
    if (out) {
      std::lock_guard<std::mutex> l(mu_);
      // Nothing points into the output yet (the switch comes after the first MANIFEST).
      segments_.erase(out->id);
    }
    finish();
    if (out) {
      out->writer.reset();
      Status d = env_->DeleteFile(JoinPath(dir_, format::SegmentFileName(out_id)));
      (void)d;
    }
    return s;
  };

  for (const auto& v : victims) {
    uint64_t end;
    {
      std::lock_guard<std::mutex> l(mu_);
      end = v->end;
    }
    victim_bytes += end;
    SegmentScanner sc(v->reader.get(), end);
    uint64_t pos = kSegmentHeaderSize;
    while (pos < end) {
      RecordHeader h;
      const RecordCheck c = CheckRecordAt(sc, pos, &h);
      if (c != RecordCheck::kValid) {
        if (!sc.status().ok()) return fail(sc.status());
        auto next = FindNextValidRecord(sc, pos);
        corruptions_.fetch_add(1);
        CAIRN_LOG_ERROR("engine {}: compaction found corrupt bytes in segment {} at {}", dir_, v->id, pos);
        if (!next) break;
        pos = *next;
        continue;
      }
      const uint64_t size = format::RecordSize(h);
      bool keep = false;
      {
        std::lock_guard<std::mutex> l(mu_);
        if (h.type == RecordType::kChunk) {
          const IndexEntry* e = index_.Find(h.id);
          keep = e != nullptr && e->segment == v->id && e->offset == pos && e->seq == h.seq;
        } else if (h.type == RecordType::kTombstone) {
          auto t = format::DecodeTombstone(std::span<const std::byte, format::kTombstonePayloadSize>(
              sc.Get(pos + h.payload_offset, format::kTombstonePayloadSize).data(), format::kTombstonePayloadSize));
          for (uint32_t target : t.segments) {
            if (target != format::kNoSegment && !compacting_.contains(target) && segments_.contains(target)) keep = true;
          }
        }
      }
      if (keep) {
        if (!out) {
          auto created = CreateSegment(out_id, /*compaction_output=*/true);
          if (!created.ok()) return fail(created.status());
          out = std::move(*created);
          std::lock_guard<std::mutex> l(mu_);
          segments_[out_id] = out;
        }
        auto rec = sc.Get(pos, size);
        if (rec.size() != size) return fail(Status::IOError("short read during compaction"));
        if (h.type == RecordType::kChunk) {
          moved.push_back({h.id, v->id, static_cast<uint32_t>(pos), static_cast<uint32_t>(out_pos + out_len), h.length});
        }
        if (out_len + size + 2 * kMaxDirectAlign > out_buf.size()) {
          if (Status s = write_out(false); !s.ok()) return fail(s);
          if (out_len + size + 2 * kMaxDirectAlign > out_buf.size()) {
            io::AlignedBuffer bigger(out_len + size + 2 * kMaxDirectAlign, kMaxDirectAlign);
            std::memcpy(bigger.data(), out_buf.data(), out_len);
            out_buf = std::move(bigger);
          }
        }
        std::memcpy(out_buf.data() + out_len, rec.data(), size);
        out_len += size;
        if (h.type == RecordType::kTombstone) kept_tomb_bytes += size;
        if (out_len >= kCompactionFlush) {
          if (Status s = write_out(false); !s.ok()) return fail(s);
        }
      }
      pos += size;
    }
  }
  uint64_t out_end = kSegmentHeaderSize;
  if (out) {
    if (direct_) {
      const uint64_t tail = out_pos + out_len;
      uint64_t gap = format::AlignUp(tail, a) - tail;
      if (gap != 0 && gap < kRecordHeaderSize) gap += a;
      if (gap > 0) {
        RecordHeader h;
        h.type = RecordType::kPadding;
        h.length = static_cast<uint32_t>(gap - kRecordHeaderSize);
        std::memset(out_buf.data() + out_len, 0, gap);
        h.payload_crc = crc32c::Value(out_buf.data() + out_len + kRecordHeaderSize, h.length);
        format::EncodeRecordHeader(h, std::span<std::byte, kRecordHeaderSize>(out_buf.data() + out_len, kRecordHeaderSize));
        out_len += gap;
      }
    }
    if (Status s = write_out(true); !s.ok()) return fail(s);
    out_end = out_pos;
    // Give back the unused preallocation before the output becomes permanent.
    if (Status s = out->writer->Truncate(out_end); s.ok()) {
      Status sync = out->writer->Sync();
      (void)sync;
    }
    out->writer.reset();
    out->sealed.store(true, std::memory_order_release);
    std::lock_guard<std::mutex> l(mu_);
    out->end = out_end;
    // Until the switch, every copied chunk counts as live so the output is not picked as a victim.
    out->live_bytes = out_end - kSegmentHeaderSize;
  }

  // Commit, step 1: the output exists (victims still do too). A crash from here on leaves
  // duplicates with equal sequence numbers, which recovery tolerates.
  if (out) {
    if (Status s = WriteManifest({}); !s.ok()) return fail(s);
  }

  // Step 2: switch the index to the copies, a batch per lock hold.
  uint64_t out_live = 0;
  for (size_t i = 0; i < moved.size(); i += kSwitchBatch) {
    const uint64_t t0 = options_.clock->NowMicros();
    {
      std::lock_guard<std::mutex> l(mu_);
      for (size_t k = i; k < std::min(moved.size(), i + kSwitchBatch); ++k) {
        const Moved& m = moved[k];
        const IndexEntry* e = index_.Find(m.id);
        if (e != nullptr && e->segment == m.victim && e->offset == m.old_offset) {
          IndexEntry ne = *e;
          ne.segment = out_id;
          ne.offset = m.new_offset;
          index_.Put(ne);
          out_live += RecordBytes(m.length);
        }
      }
    }
    const uint64_t pause = options_.clock->NowMicros() - t0;
    uint64_t prev = max_pause_us_.load();
    while (pause > prev && !max_pause_us_.compare_exchange_weak(prev, pause)) {
    }
  }

  // Step 3: a MANIFEST without the victims; then they may go.
  if (out) {
    std::lock_guard<std::mutex> l(mu_);
    out->live_bytes = out_live;
    out->tomb_bytes = kept_tomb_bytes;
  }
  std::set<uint32_t> victim_set;
  for (const auto& v : victims) victim_set.insert(v->id);
  if (Status s = WriteManifest(victim_set); !s.ok()) {
    // The victims stay listed; their records are duplicates now and a later pass removes them.
    finish();
    return s;
  }
  uint64_t reclaimed;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& v : victims) segments_.erase(v->id);
    compacting_.clear();
    compaction_output_ = format::kNoSegment;
    reclaimed = victim_bytes - std::min(victim_bytes, out_end);
    bytes_since_checkpoint_ += out_end;
  }
  for (const auto& v : victims) {
    Status s = env_->DeleteFile(JoinPath(dir_, format::SegmentFileName(v->id)));
    if (!s.ok()) CAIRN_LOG_WARN("engine {}: removing compacted segment {}: {}", dir_, v->id, s.ToString());
  }
  Status ds = env_->SyncDir(dir_);
  (void)ds;
  compactions_.fetch_add(1);
  reclaimed_.fetch_add(reclaimed);
  CAIRN_LOG_INFO("engine {}: compacted {} segment(s) into {}, reclaimed {} bytes", dir_, victims.size(),
                 out ? format::SegmentFileName(out_id) : std::string("nothing"), reclaimed);
  return reclaimed;
}

// ---------------------------------------------------------------------------------------------
// Background work and shutdown

void Engine::BackgroundLoop() {
  std::unique_lock<std::mutex> l(bg_mu_);
  while (!stop_) {
    bg_cv_.wait_for(l, std::chrono::milliseconds(options_.config.compaction_interval_ms));
    if (stop_) break;
    l.unlock();
    bool need_checkpoint;
    {
      std::lock_guard<std::mutex> g(mu_);
      need_checkpoint = bytes_since_checkpoint_ >= options_.config.checkpoint_interval_bytes;
    }
    if (need_checkpoint) {
      Status s = Checkpoint();
      if (!s.ok()) CAIRN_LOG_WARN("engine {}: checkpoint: {}", dir_, s.ToString());
    }
    if (options_.config.background_compaction) {
      auto r = CompactNow(false);
      if (!r.ok()) CAIRN_LOG_WARN("engine {}: compaction: {}", dir_, r.status().ToString());
    }
    l.lock();
  }
}

Status Engine::Close() {
  if (closed_.exchange(true)) return Status::Cancelled("engine already closed");
  {
    std::lock_guard<std::mutex> l(bg_mu_);
    stop_ = true;
  }
  bg_cv_.notify_all();
  if (bg_thread_.joinable()) bg_thread_.join();
  // The commit thread finishes every queued writer, then exits.
  {
    std::lock_guard<std::mutex> l(write_mu_);
    stop_commit_ = true;
  }
  commit_cv_.notify_all();
  if (commit_thread_.joinable()) commit_thread_.join();
  if (active_) {
    SealSegment(*active_);
    active_.reset();
  }
  // An engine whose recovery did not finish must not persist its half-built index.
  if (!opened_) return Status::OK();
  std::lock_guard<std::mutex> l(maintenance_mu_);
  return CheckpointLocked();
}

}  // namespace cairn::engine
