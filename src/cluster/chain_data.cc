#include "cluster/chain_data.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>

#include "common/logging.h"
#include "common/metrics.h"
#include "meta/meta_commands.h"
#include "meta/sharded_meta_store.h"

namespace cairn::cluster {
namespace {

std::span<const std::byte> AsBytes(std::string_view s) {
  return std::span(reinterpret_cast<const std::byte*>(s.data()), s.size());
}

Result<engine::ChunkId> ChunkIdOf(const std::string& blob_id) {
  auto id = engine::ChunkId::FromString(blob_id);
  if (!id) return Status::InvalidArgument("blob id is not a chunk id");
  return *id;
}

}  // namespace

// ---- Metadata ----

const MetaStateMachine& MetaStateMachine::Instance() {
  static const MetaStateMachine machine;
  return machine;
}

replication::StateMachine::Outcome MetaStateMachine::Execute(const KvReader& state, std::string_view command) const {
  meta::CommandOutcome outcome = meta::ExecuteCommand(state, command);
  return Outcome{std::move(outcome.mutations), std::move(outcome.result)};
}

Result<std::string> MetaStateMachine::Query(const KvReader& committed, std::string_view query) const {
  return meta::ExecuteQueryOrReaderError(committed, query);
}

uint32_t MetadataChains(uint32_t chain_count) { return std::max<uint32_t>(1, chain_count / 4); }

Result<std::string> ChainMetaTransport::Write(std::string command) {
  CAIRN_ASSIGN_OR_RETURN(replication::WriteResult result, client_->Execute(chain_, command));
  return std::move(result.result);
}

Result<std::string> ChainMetaTransport::Query(std::string query) { return client_->Query(chain_, query); }

std::unique_ptr<meta::MetaStore> NewChainMetaStore(replication::ChainClient* client, uint32_t chain_count) {
  std::vector<std::unique_ptr<meta::MetaStore>> shards;
  for (uint32_t chain = 0; chain < MetadataChains(chain_count); ++chain) {
    shards.push_back(std::make_unique<meta::CommandMetaStore>(std::make_unique<ChainMetaTransport>(client, chain)));
  }
  return std::make_unique<meta::ShardedMetaStore>(std::move(shards), kBucketCacheTtl);
}

// ---- Chunks ----

replication::ChainId ChainOfChunk(const engine::ChunkId& id, uint32_t chain_count) {
  return static_cast<replication::ChainId>(engine::HashChunkId(id) % std::max<uint32_t>(chain_count, 1));
}

void ChainChunkStore::AppendAsync(const engine::ChunkId& id, std::span<const std::byte> data, uint32_t crc32c,
                                  std::function<void(const Status&)> done) {
  // The bytes stay valid until `done` runs (ChunkStore's contract), and the write is over by then:
  // the blob borrows them instead of copying a chunk.
  replication::Blob blob = replication::Blob::Borrowed(
      id.ToString(), std::string_view(reinterpret_cast<const char*>(data.data()), data.size()), crc32c);
  const replication::ChainId chain = ChainOfChunk(id, chain_count_);
  io_->Post([this, chain, blob = std::move(blob), done = std::move(done)]() mutable {
    auto written = client_->PutBlob(chain, std::move(blob));
    Status status = written.status();
    // A refusal of the chunk itself (a reused id, damaged bytes) is this server's fault, not the
    // client's: never an S3 error about its request (AlreadyExists would read BucketAlreadyExists).
    if (!written.ok() && !status.IsTimeout() && !status.IsBusy()) status = Status::Internal(status.ToString());
    done(written.ok() ? Status::OK() : status.WithContext("chunk on chain " + std::to_string(chain)));
  });
}

namespace {

// A chain this node serves should hold every chunk it names on the node's own disk: a miss is a
// chunk lost here (or damaged), which the tests watch.
void CountLocalMiss(const engine::ChunkId& id, const Status& why) {
  static metrics::Counter* misses = metrics::Registry::Default().GetCounter(
      "cairn_chunk_local_read_misses_total",
      "Chunk reads of a chain this node serves that did not find the chunk intact on its own disk and went to "
      "another replica");
  misses->Increment();
  CAIRN_LOG_DEBUG("chunk {}: local read failed ({}); reading another replica", id.ToString(), why.ToString());
}

}  // namespace

bool ChainChunkStore::ReadsLocally(const engine::ChunkId& id) const {
  return local_.engine != nullptr && local_.serves && local_.serves(ChainOfChunk(id, chain_count_));
}

Status ChainChunkStore::Read(const engine::ChunkId& id, uint64_t offset, std::span<std::byte> out) {
  if (ReadsLocally(id)) {
    Status s = local_.engine->Read(id, offset, out);
    if (s.ok()) return s;
    CountLocalMiss(id, s);
  }
  CAIRN_ASSIGN_OR_RETURN(std::string bytes,
                         client_->ReadBlob(ChainOfChunk(id, chain_count_), id.ToString(), offset, out.size()));
  if (bytes.size() != out.size()) return Status::Corruption("chunk read answered with the wrong length");
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return Status::OK();
}

Result<engine::SendableRange> ChainChunkStore::ReadForSend(const engine::ChunkId& id, uint64_t offset,
                                                           uint64_t length) {
  if (ReadsLocally(id)) {
    auto range = local_.engine->ReadForSend(id, offset, length);
    if (range.ok()) return range;
    CountLocalMiss(id, range.status());
  }
  CAIRN_ASSIGN_OR_RETURN(std::string bytes,
                         client_->ReadBlob(ChainOfChunk(id, chain_count_), id.ToString(), offset, length));
  engine::SendableRange range;
  range.length = bytes.size();
  range.bytes.resize(bytes.size());
  std::memcpy(range.bytes.data(), bytes.data(), bytes.size());
  return range;
}

Status ChainChunkStore::Delete(const engine::ChunkId& id) {
  return client_->DropBlobs(ChainOfChunk(id, chain_count_), {id.ToString()}).status();
}

void ChainChunkStore::DeleteMany(std::span<const engine::ChunkId> ids, std::vector<Status>* results) {
  // One update per chain drops all of that chain's chunks.
  std::map<replication::ChainId, std::vector<size_t>> by_chain;
  for (size_t i = 0; i < ids.size(); ++i) by_chain[ChainOfChunk(ids[i], chain_count_)].push_back(i);
  results->assign(ids.size(), Status::OK());
  for (const auto& [chain, indexes] : by_chain) {
    std::vector<std::string> blob_ids;
    for (size_t i : indexes) blob_ids.push_back(ids[i].ToString());
    Status status = client_->DropBlobs(chain, std::move(blob_ids)).status();
    for (size_t i : indexes) (*results)[i] = status;
  }
}

void ChainChunkStore::ForEachChunk(const std::function<void(const engine::ChunkId&)>&) {}

// ---- A node's blobs ----

void EngineBlobStore::ForEach(const std::function<void(const std::string& id)>& fn) {
  engine_->ForEachChunk([&fn](const engine::ChunkInfo& info) { fn(info.id.ToString()); });
}

Status EngineBlobStore::PutMany(const std::vector<const replication::Blob*>& blobs) {
  // Appended together, they share the engine's writes and fdatasyncs.
  std::mutex mu;
  std::condition_variable cv;
  size_t pending = blobs.size();
  Status first;
  for (const replication::Blob* blob : blobs) {
    auto id = ChunkIdOf(blob->id);
    if (!id.ok()) {
      std::lock_guard lock(mu);
      if (first.ok()) first = id.status();
      --pending;
      continue;
    }
    engine_->AppendAsync(*id, AsBytes(blob->data()), blob->crc32c,
                         [&](const Status& status, const engine::ChunkLocation&) {
                           std::lock_guard lock(mu);
                           if (!status.ok() && first.ok()) first = status;
                           if (--pending == 0) cv.notify_all();
                         });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return pending == 0; });
  return first;
}

Result<std::string> EngineBlobStore::Read(const replication::BlobInfo& blob, uint64_t offset, uint64_t length) {
  CAIRN_ASSIGN_OR_RETURN(engine::ChunkId id, ChunkIdOf(blob.id));
  std::string out(length, '\0');
  CAIRN_RETURN_IF_ERROR(engine_->Read(id, offset, std::span(reinterpret_cast<std::byte*>(out.data()), out.size())));
  return out;
}

bool EngineBlobStore::Has(const replication::BlobInfo& blob) {
  auto id = ChunkIdOf(blob.id);
  if (!id.ok()) return false;
  auto info = engine_->Stat(*id);
  if (!info.ok() || info->length != blob.size || info->payload_crc != blob.crc32c) return false;
  // A copy kept from before a restart counts only if its bytes still match (ReadAll verifies).
  return engine_->ReadAll(*id).ok();
}

Status EngineBlobStore::DeleteMany(const std::vector<std::string>& ids) {
  std::vector<engine::ChunkId> chunks;
  for (const std::string& blob_id : ids) {
    CAIRN_ASSIGN_OR_RETURN(engine::ChunkId id, ChunkIdOf(blob_id));
    chunks.push_back(id);
  }
  std::vector<Status> results;
  engine_->DeleteMany(chunks, &results);  // one group commit for all
  for (const Status& s : results) {
    if (!s.ok() && !s.IsNotFound()) return s;
  }
  return Status::OK();
}

Status EngineBlobStore::Delete(const std::string& blob_id) {
  CAIRN_ASSIGN_OR_RETURN(engine::ChunkId id, ChunkIdOf(blob_id));
  Status status = engine_->Delete(id);
  return status.IsNotFound() ? Status::OK() : status;
}

}  // namespace cairn::cluster
