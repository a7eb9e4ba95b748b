#include "replication/replica_store.h"

#include <filesystem>

#include "fmt/format.h"
#include "replication/wire.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace cairn::replication {
namespace {

constexpr char kRecord = 'r';
constexpr char kOp = 'o';
constexpr char kLastSeq = 'm';
constexpr char kSyncLog = 'l';
constexpr char kComplete = 'c';
// The store's format, outside every chain's range: "V" -> one byte. Format 4 stamps every
// operation result and the chain's last sequence, and its sync log holds wire-format-4 updates
// (format 3 had wire-format-3 ones, without purge lists, and was never released; format 2 had no
// stamps; format 1 recorded a bool per operation and was never used outside tests).
constexpr std::string_view kFormatKey = "V";
constexpr char kFormat = 4;

void PutBe32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutBe64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutLe64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetBe64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}
uint32_t GetBe32(std::string_view s) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}
uint64_t GetLe64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(s[i])) << (8 * i);
  return v;
}

std::string ChainPrefix(ChainId chain) {
  std::string out = "C";
  PutBe32(&out, chain);
  return out;
}
std::string Key(ChainId chain, char kind, std::string_view rest = {}) {
  std::string out = ChainPrefix(chain);
  out.push_back(kind);
  out.append(rest);
  return out;
}
std::string Be64(uint64_t v) {
  std::string out;
  PutBe64(&out, v);
  return out;
}
std::string LastSeqValue(uint64_t seq, uint64_t stamp_ms) {
  std::string out;
  PutLe64(&out, seq);
  PutLe64(&out, stamp_ms);
  return out;
}
std::string RecordValue(const Record& record) {
  std::string out;
  out.push_back(record.value ? 1 : 0);
  PutLe64(&out, record.seq);
  if (record.value) out.append(*record.value);
  return out;
}
std::string OpValue(const WriteResult& result) {
  std::string out;
  PutLe64(&out, result.seq);
  PutLe64(&out, result.stamp_ms);
  out.append(result.result);
  return out;
}

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::OK();
  if (s.IsCorruption()) return Status::Corruption(fmt::format("replica store {}: {}", what, s.ToString()));
  return Status::IOError(fmt::format("replica store {}: {}", what, s.ToString()));
}

}  // namespace

ReplicaStore::Batch::Batch() : batch_(std::make_unique<rocksdb::WriteBatch>()) {}
ReplicaStore::Batch::~Batch() = default;
ReplicaStore::Batch::Batch(Batch&&) noexcept = default;
ReplicaStore::Batch& ReplicaStore::Batch::operator=(Batch&&) noexcept = default;

void ReplicaStore::Batch::Add(ChainId chain, const DiskWrite& write) {
  ++count_;
  switch (write.kind) {
    case DiskWrite::Kind::kApply: {
      const Update& u = *write.update;
      for (const std::string& key : u.purge) batch_->Delete(Key(chain, kRecord, key));  // tombstones only
      for (const KvMutation& m : u.mutations)
        batch_->Put(Key(chain, kRecord, m.key), RecordValue(Record{m.value, u.seq}));
      for (OpId op : u.forget) batch_->Delete(Key(chain, kOp, Be64(op)));
      batch_->Put(Key(chain, kOp, Be64(u.op_id)), OpValue(write.result));
      // Updates apply in sequence order, with stamps that never decrease: the last one written
      // holds the highest of both.
      batch_->Put(Key(chain, kLastSeq), LastSeqValue(u.seq, u.stamp_ms));
      break;
    }
    case DiskWrite::Kind::kSyncLog: {
      // The blob's bytes go to the blob store; the log keeps the update without them.
      const Update& u = *write.update;
      Update logged = u;
      logged.blob.reset();
      batch_->Put(Key(chain, kSyncLog, Be64(u.seq)), wire::Encode(Message{std::move(logged)}));
      break;
    }
    case DiskWrite::Kind::kInstall: {
      batch_->DeleteRange(ChainPrefix(chain), ChainPrefix(chain + 1));  // chain ids stay below 2^32-1
      const StoreState& image = *write.image;
      for (const auto& [key, record] : image.records) batch_->Put(Key(chain, kRecord, key), RecordValue(record));
      for (const auto& [op, result] : image.ops) batch_->Put(Key(chain, kOp, Be64(op)), OpValue(result));
      batch_->Put(Key(chain, kLastSeq), LastSeqValue(image.last_seq, image.stamp_ms));
      break;
    }
  }
}

ReplicaStore::ReplicaStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}
ReplicaStore::~ReplicaStore() = default;

Result<std::unique_ptr<ReplicaStore>> ReplicaStore::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError(fmt::format("replica store {}: {}", dir, ec.message()));
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  rocksdb::DB* raw = nullptr;
  CAIRN_RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(options, dir, &raw), "open " + dir));
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string format;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), kFormatKey, &format);
  if (s.IsNotFound()) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    it->SeekToFirst();
    CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "open " + dir));
    if (it->Valid()) return Status::Corruption("replica store " + dir + " was written in an older format");
    rocksdb::WriteOptions sync;
    sync.sync = true;
    CAIRN_RETURN_IF_ERROR(FromRocks(db->Put(sync, kFormatKey, std::string(1, kFormat)), "open " + dir));
  } else {
    CAIRN_RETURN_IF_ERROR(FromRocks(s, "open " + dir));
    if (format != std::string(1, kFormat)) return Status::Corruption("replica store " + dir + ": unknown format");
  }
  return std::unique_ptr<ReplicaStore>(new ReplicaStore(std::move(db)));
}

Status ReplicaStore::Commit(Batch& batch, bool sync) {
  if (batch.count_ == 0) return Status::OK();
  rocksdb::WriteOptions options;
  options.sync = sync;
  return FromRocks(db_->Write(options, batch.batch_.get()), "write");
}

Result<ReplicaStore::Loaded> ReplicaStore::LoadAll() { return Load(std::nullopt); }

Result<DurableState> ReplicaStore::LoadChain(ChainId chain) {
  CAIRN_ASSIGN_OR_RETURN(Loaded loaded, Load(chain));
  return std::move(loaded.chains[chain]);
}

Result<ReplicaStore::Loaded> ReplicaStore::Load(std::optional<ChainId> only) {
  Loaded loaded;
  std::map<ChainId, DurableState>& out = loaded.chains;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = only ? ChainPrefix(*only) : std::string();
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    const std::string_view value(it->value().data(), it->value().size());
    if (!key.starts_with(prefix)) break;
    if (key == kFormatKey) continue;
    if (key.size() < 6 || key[0] != 'C') return Status::Corruption("replica store: unknown key");
    const ChainId chain = GetBe32(key.substr(1, 4));
    DurableState& state = out[chain];
    const std::string_view rest = key.substr(6);
    switch (key[5]) {
      case kLastSeq:
        if (value.size() != 16) return Status::Corruption("replica store: bad sequence");
        state.store.last_seq = GetLe64(value);
        state.store.stamp_ms = GetLe64(value.substr(8));
        break;
      case kRecord: {
        if (value.size() < 9 || static_cast<uint8_t>(value[0]) > 1)
          return Status::Corruption("replica store: bad record");
        Record record;
        record.seq = GetLe64(value.substr(1));
        if (value[0] == 1) record.value = std::string(value.substr(9));
        state.store.records.emplace(std::string(rest), std::move(record));
        break;
      }
      case kOp: {
        if (rest.size() != 8 || value.size() < 16) return Status::Corruption("replica store: bad op result");
        state.store.ops.emplace(GetBe64(rest),
                                WriteResult{GetLe64(value), std::string(value.substr(16)), GetLe64(value.substr(8))});
        break;
      }
      case kSyncLog: {
        CAIRN_ASSIGN_OR_RETURN(Message message, wire::Decode(value));
        const auto* update = std::get_if<Update>(&message);
        if (update == nullptr) return Status::Corruption("replica store: sync log entry is not an update");
        state.sync_log.push_back(*update);
        break;
      }
      case kComplete:
        loaded.complete.insert(chain);
        break;
      default:
        return Status::Corruption("replica store: unknown key kind");
    }
  }
  CAIRN_RETURN_IF_ERROR(FromRocks(it->status(), "scan"));
  return loaded;
}

Status ReplicaStore::MarkComplete(ChainId chain) {
  rocksdb::WriteOptions options;
  options.sync = true;
  return FromRocks(db_->Put(options, Key(chain, kComplete), ""), "mark complete");
}

Status ReplicaStore::DropChain(ChainId chain) {
  rocksdb::WriteOptions options;
  options.sync = true;
  rocksdb::WriteBatch batch;
  batch.DeleteRange(ChainPrefix(chain), ChainPrefix(chain + 1));
  return FromRocks(db_->Write(options, &batch), "drop chain");
}

}  // namespace cairn::replication
