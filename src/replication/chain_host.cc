#include "replication/chain_host.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <system_error>

#include "common/crc32c.h"
#include "common/logging.h"
#include "fmt/format.h"
#include "io/clock.h"
#include "replication/wire.h"

namespace cairn::replication {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// The chain a message is about; the replies a host never receives have none.
std::optional<ChainId> ChainOf(const Message& message) {
  return std::visit(Overloaded{
                        [](const ClientWriteReply&) -> std::optional<ChainId> { return std::nullopt; },
                        [](const ClientReadReply&) -> std::optional<ChainId> { return std::nullopt; },
                        [](const ClientQueryReply&) -> std::optional<ChainId> { return std::nullopt; },
                        [](const BlobReadReply&) -> std::optional<ChainId> { return std::nullopt; },
                        [](const auto& m) -> std::optional<ChainId> { return m.chain_id; },
                    },
                    message);
}

bool FromClient(const Message& message) {
  return std::holds_alternative<ClientWrite>(message) || std::holds_alternative<ClientRead>(message) ||
         std::holds_alternative<ClientQuery>(message) || std::holds_alternative<BlobRead>(message);
}

}  // namespace

// The sending side of one connection, on its own thread: to a peer (dialled, and dialled again
// after a failure) or back to a client on the connection it came in on. What cannot be sent is
// dropped and counted.
class ChainHost::Outbox {
 public:
  // A peer's outbox: dials `address` when it has something to send, and talks only to a process
  // that proves (in the handshake) to be `expected_peer`.
  Outbox(std::string address, std::string expected_peer, net::ConnectionOptions options, size_t max_queued,
         size_t max_bytes, std::atomic<uint64_t>* dropped)
      : address_(std::move(address)),
        expected_peer_(std::move(expected_peer)),
        options_(std::move(options)),
        max_queued_(max_queued),
        max_bytes_(max_bytes),
        dropped_(dropped) {
    thread_ = std::thread([this] { Loop(); });
  }
  // A client's outbox: sends on `connection`, never dials.
  Outbox(std::shared_ptr<net::Connection> connection, size_t max_queued, size_t max_bytes,
         std::atomic<uint64_t>* dropped)
      : connection_(std::move(connection)), max_queued_(max_queued), max_bytes_(max_bytes), dropped_(dropped) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Outbox() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      if (connection_) connection_->Close();
    }
    cv_.notify_all();
    thread_.join();
  }

  void Send(std::string body) {
    {
      std::lock_guard lock(mu_);
      queued_bytes_ += body.size();
      queue_.push_back(std::move(body));
      while (queue_.size() > 1 && (queue_.size() > max_queued_ || queued_bytes_ > max_bytes_)) {
        queued_bytes_ -= queue_.front().size();
        queue_.pop_front();
        dropped_->fetch_add(1);
      }
    }
    cv_.notify_all();
  }

  void SetAddress(const std::string& address) {
    std::lock_guard lock(mu_);
    if (address == address_) return;
    address_ = address;
    if (connection_ && !address_.empty()) connection_->Close();  // reconnect to the new address
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      if (!connection_ || broken_) {
        if (address_.empty()) {  // a client's connection broke: nobody to send to any more
          dropped_->fetch_add(queue_.size());
          queue_.clear();
          queued_bytes_ = 0;
          continue;
        }
        const std::string address = address_;
        lock.unlock();
        auto dialled = net::Connection::Dial(address, options_, std::chrono::milliseconds(500));
        lock.lock();
        if (dialled.ok() && (*dialled)->peer_id() != expected_peer_) {
          // A stale address now used by another node: what is queued is not for it.
          CAIRN_LOG_WARN("rpc {}: expected node {}, found {}", address, expected_peer_, (*dialled)->peer_id());
          dialled = Status::IOError("rpc " + address + ": another node answers");
        }
        if (!dialled.ok()) {
          CAIRN_LOG_DEBUG("rpc {}: {}", address, dialled.status().ToString());
          dropped_->fetch_add(queue_.size());
          queue_.clear();
          queued_bytes_ = 0;
          cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stop_; });
          continue;
        }
        connection_ = std::move(*dialled);
        broken_ = false;
        if (stop_) connection_->Close();
      }
      std::string body = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= body.size();
      std::shared_ptr<net::Connection> connection = connection_;
      lock.unlock();
      const Status sent = connection->Send(wire::kFrameChainMessage, 0, body);
      lock.lock();
      if (!sent.ok()) {
        dropped_->fetch_add(1);
        if (connection_ == connection) broken_ = true;
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::string address_;  // GUARDED_BY(mu_); empty for a client's outbox
  const std::string expected_peer_;
  const net::ConnectionOptions options_;
  std::shared_ptr<net::Connection> connection_;  // GUARDED_BY(mu_)
  bool broken_ = false;                          // GUARDED_BY(mu_)
  std::deque<std::string> queue_;                // GUARDED_BY(mu_)
  size_t queued_bytes_ = 0;                      // GUARDED_BY(mu_)
  bool stop_ = false;                            // GUARDED_BY(mu_)
  const size_t max_queued_;
  const size_t max_bytes_;
  std::atomic<uint64_t>* const dropped_;
  std::thread thread_;
};

// An accepted connection: its reader thread, and the outbox replies to its clients go through.
struct ChainHost::Inbound {
  uint32_t id = 0;
  std::shared_ptr<net::Connection> connection;
  std::unique_ptr<Outbox> outbox;
};

ChainHost::ChainHost(ChainHostOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<ChainHost>> ChainHost::Start(ChainHostOptions options) {
  std::unique_ptr<ChainHost> host(new ChainHost(std::move(options)));
  CAIRN_RETURN_IF_ERROR(host->Init());
  return host;
}

Status ChainHost::Init() {
  CAIRN_ASSIGN_OR_RETURN(store_, ReplicaStore::Open(options_.data_dir));
  CAIRN_ASSIGN_OR_RETURN(ReplicaStore::Loaded loaded, store_->LoadAll());
  loaded_ = std::move(loaded.chains);
  complete_ = std::move(loaded.complete);
  CAIRN_ASSIGN_OR_RETURN(auto listening, net::Listen(options_.listen));
  listen_fd_ = std::move(listening.first);
  address_ = std::move(listening.second);
  ChainClientOptions copier;
  copier.name = options_.name;
  copier.secret = options_.secret;
  copier.address = [this](NodeId node) -> std::optional<PeerAddress> {
    std::lock_guard lock(peers_mu_);
    auto it = peers_.find(node);
    if (it == peers_.end()) return std::nullopt;
    return it->second;
  };
  copier_ = std::make_unique<ChainClient>(std::move(copier));
  event_thread_ = std::thread([this] { EventLoop(); });
  disk_thread_ = std::thread([this] { DiskLoop(); });
  for (int i = 0; i < kBlobThreads; ++i) {
    blob_reads_.threads.emplace_back([this] { BlobLoop(&blob_reads_); });
    blob_copies_.threads.emplace_back([this] { BlobLoop(&blob_copies_); });
  }
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return Status::OK();
}

ChainHost::~ChainHost() {
  // Set under each loop's mutex: a loop between its predicate and its wait cannot miss it.
  {
    std::scoped_lock lock(mu_, disk_mu_, blob_mu_);
    stopping_ = true;
  }
  net::Shutdown(listen_fd_.get());
  if (accept_thread_.joinable()) accept_thread_.join();
  cv_.notify_all();
  disk_cv_.notify_all();
  blob_cv_.notify_all();
  if (event_thread_.joinable()) event_thread_.join();
  if (disk_thread_.joinable()) disk_thread_.join();
  for (BlobQueue* queue : {&blob_reads_, &blob_copies_}) {
    for (std::thread& t : queue->threads) {
      if (t.joinable()) t.join();
    }
  }
  copier_.reset();
  std::map<uint32_t, std::shared_ptr<Inbound>> inbound;
  std::map<NodeId, std::unique_ptr<Outbox>> outboxes;
  {
    std::lock_guard lock(peers_mu_);
    inbound.swap(inbound_);
    outboxes.swap(outboxes_);
  }
  for (auto& [id, in] : inbound) in->connection->Close();
  // Connection threads end once their connection is closed, or their handshake's deadline passes.
  std::unique_lock lock(mu_);
  threads_cv_.wait(lock, [&] { return connection_threads_ == 0; });
}

// ---- Public inputs ----

void ChainHost::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void ChainHost::SetPeers(std::map<NodeId, PeerAddress> peers) {
  std::lock_guard lock(peers_mu_);
  for (auto& [node, outbox] : outboxes_) {
    auto it = peers.find(node);
    outbox->SetAddress(it == peers.end() ? std::string() : it->second.rpc_address);
  }
  peers_ = std::move(peers);
}

void ChainHost::AddChain(ChainId chain, uint64_t incarnation, StartMode mode) {
  ClearCopyProgress(chain);
  Post([this, chain, incarnation, mode] {
    auto& replica = replicas_[chain];
    if (replica && replica->up()) return;
    ReplicaOptions replica_options = options_.replica;
    replica_options.keep_durable_state = false;  // the store holds it; a take-back reloads it
    if (!replica_options.clock_ms) {
      replica_options.clock_ms = [] { return io::SystemClock::Default()->WallMicros() / 1000; };
    }
    if (options_.machine_for) {
      if (const StateMachine* machine = options_.machine_for(chain)) replica_options.machine = machine;
    }
    replica = std::make_unique<ChainReplica>(chain, options_.node, replica_options);
    auto it = loaded_.find(chain);
    if (mode == StartMode::kFounding) {
      if (it != loaded_.end()) loaded_.erase(it);
      // A blocking write on the event thread, once per chain and node.
      Status s = store_->DropChain(chain);
      if (s.ok()) s = store_->MarkComplete(chain);
      if (!s.ok()) {
        CAIRN_LOG_ERROR("node {}: chain {}: starting as a founding member: {}", options_.name, chain, s.ToString());
        replicas_.erase(chain);
        return;
      }
      complete_.insert(chain);
      replica->Bootstrap(incarnation);
    } else {
      if (it != loaded_.end()) {
        replica->Restore(std::move(it->second));
        loaded_.erase(it);
      }
      if (mode == StartMode::kRecovered && complete_.count(chain) == 0) {
        // Named the chain's serving member, but this disk never held a complete copy (emptied,
        // replaced, or a sync that never finished): serving it would replace every other copy.
        CAIRN_LOG_ERROR(
            "node {}: chain {}: the table names this node its serving member, but its disk never held "
            "a complete copy; it waits to be resynced",
            options_.name, chain);
        replica->Start(incarnation);
      } else if (mode == StartMode::kRecovered) {
        replica->Bootstrap(incarnation);  // from the restored state, complete
      } else {
        replica->Start(incarnation);
      }
    }
    replica->SetFenced(fenced_);
  });
}

void ChainHost::Recover(ChainId chain, uint64_t incarnation) {
  Post([this, chain, incarnation] {
    auto it = replicas_.find(chain);
    if (it == replicas_.end() || it->second->phase() == ChainReplica::Phase::kReady) return;
    recovering_[chain] = incarnation;
    RecoverWaiting();
  });
}

void ChainHost::RecoverWaiting() {
  for (auto it = recovering_.begin(); it != recovering_.end();) {
    auto r = replicas_.find(it->first);
    if (r == replicas_.end()) {
      it = recovering_.erase(it);
      continue;
    }
    ChainReplica& replica = *r->second;
    // Its durable writes in flight finish first: a restart before would let a later write reuse
    // a sequence number the disk already holds with other contents.
    if (replica.disk_writes_in_flight() > 0) {
      ++it;
      continue;
    }
    if (complete_.count(it->first) == 0) {
      if (refused_recovery_.insert(it->first).second) {  // once, not every round that asks again
        CAIRN_LOG_ERROR(
            "node {}: chain {}: the table names this node its serving member, but its disk never held "
            "a complete copy; it waits to be resynced",
            options_.name, it->first);
      }
      it = recovering_.erase(it);
      continue;
    }
    // Nothing in flight: the disk holds everything the replica wrote. (The replica keeps no copy
    // of its durable state: it is read back.)
    auto state = store_->LoadChain(it->first);
    if (!state.ok()) {
      FailDisk("chain " + std::to_string(it->first) + ": reading its stored state back", state.status());
      it = recovering_.erase(it);
      continue;
    }
    CAIRN_LOG_INFO("node {}: chain {}: taken back as serving member; restarting from its durable state", options_.name,
                   it->first);
    replica.Crash();
    replica.Restore(std::move(*state));
    replica.Bootstrap(it->second);
    replica.SetFenced(fenced_);
    it = recovering_.erase(it);
  }
}

void ChainHost::Rejoin(ChainId chain, uint64_t incarnation) {
  ClearCopyProgress(chain);  // a resync follows; the last one's figures would read as its own
  Post([this, chain, incarnation] {
    auto it = replicas_.find(chain);
    if (it != replicas_.end()) it->second->Rejoin(incarnation);
  });
}

std::future<bool> ChainHost::RemoveChain(ChainId chain) {
  auto removed = std::make_shared<std::promise<bool>>();
  std::future<bool> done = removed->get_future();
  if (stopping_) {
    removed->set_value(false);
    return done;
  }
  Post([this, chain, removed] {
    auto it = replicas_.find(chain);
    if (it != replicas_.end()) {
      const ChainReplica& r = *it->second;
      if (r.phase() != ChainReplica::Phase::kIdle || r.disk_writes_in_flight() > 0 || recovering_.count(chain) != 0) {
        removed->set_value(false);
        return;
      }
    }
    if (it == replicas_.end() && loaded_.count(chain) == 0 && complete_.count(chain) == 0) {
      removed->set_value(true);  // nothing here
      return;
    }
    // A blocking write on the event thread, once per chain left.
    if (Status s = store_->DropChain(chain); !s.ok()) {
      CAIRN_LOG_WARN("node {}: chain {}: dropping its stored state: {}", options_.name, chain, s.ToString());
      removed->set_value(false);
      return;
    }
    if (it != replicas_.end()) replicas_.erase(it);
    loaded_.erase(chain);
    complete_.erase(chain);
    refused_recovery_.erase(chain);
    ClearCopyProgress(chain);
    CAIRN_LOG_INFO("node {}: chain {}: forgotten (this node left it)", options_.name, chain);
    removed->set_value(true);
  });
  return done;
}

void ChainHost::SetView(const ChainView& view) {
  Post([this, view] {
    auto it = replicas_.find(view.chain_id);
    if (it == replicas_.end()) return;
    Process(view.chain_id, it->second->OnView(view));
  });
}

void ChainHost::SetFenced(bool fenced) {
  Post([this, fenced] {
    fence_requested_ = fenced;
    ApplyFence();
  });
}

void ChainHost::SetMayAcknowledge(std::function<bool()> may_acknowledge) {
  Post([this, may_acknowledge = std::move(may_acknowledge)] {
    may_acknowledge_ = may_acknowledge;
    ApplyFence();
  });
}

void ChainHost::ApplyFence() {
  const bool fenced = fence_requested_ || disk_failed_.load() || (may_acknowledge_ && !may_acknowledge_());
  if (fenced == fenced_) return;
  fenced_ = fenced;
  CAIRN_LOG_INFO("node {}: replicas {}", options_.name, fenced ? "fenced" : "unfenced");
  for (auto& [chain, replica] : replicas_) replica->SetFenced(fenced);
}

std::optional<std::vector<std::pair<ChainId, std::string>>> ChainHost::UnnamedBlobs(
    const std::vector<std::pair<ChainId, std::string>>& blobs, const std::set<ChainId>& left, bool drop,
    const std::atomic<bool>* cancel) {
  constexpr size_t kPage = 4096;  // lookups per visit of the event thread
  std::vector<std::pair<ChainId, std::string>> out;
  for (size_t first = 0; first < blobs.size(); first += kPage) {
    if (stopping_ || (cancel != nullptr && cancel->load())) return std::nullopt;
    const size_t end = std::min(blobs.size(), first + kPage);
    auto page = std::make_shared<std::vector<std::pair<ChainId, std::string>>>(blobs.begin() + first,
                                                                                blobs.begin() + end);
    auto unnamed = std::make_shared<std::vector<std::pair<ChainId, std::string>>>();
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> finished = done->get_future();
    Post([this, page, unnamed, done, drop, left] {
      for (auto& [chain, id] : *page) {
        auto it = replicas_.find(chain);
        // A chain the caller saw this node leave, and whose replica here (if any) is still out of
        // it: the table may have taken the node back since, which the replica shows once its
        // view arrives (then its state is asked, as any other's).
        const bool gone = left.count(chain) != 0 &&
                          (it == replicas_.end() || it->second->phase() == ChainReplica::Phase::kIdle);
        if (!gone) {
          // No state in memory to ask (no replica, or one down or restarting): names all.
          if (it == replicas_.end() || !it->second->up() || recovering_.count(chain) != 0) continue;
          const StoreState& state = it->second->applied();
          auto record = state.records.find(BlobKey(id));
          if (record != state.records.end() && record->second.value) continue;
        }
        if (drop) current_batch_.extra_blobs.push_back(id);
        unnamed->emplace_back(chain, std::move(id));
      }
      if (drop) FlushDisk();
      done->set_value();
    });
    if (finished.wait_for(std::chrono::seconds(5)) != std::future_status::ready || stopping_) return std::nullopt;
    for (auto& blob : *unnamed) out.push_back(std::move(blob));
  }
  return out;
}

std::optional<ReplicaInfo> ChainHost::Inspect(ChainId chain) {
  // Filled on the event thread; shared, since a visit that outlives the wait still writes it.
  auto info = std::make_shared<std::optional<ReplicaInfo>>();
  const bool done = VisitAll([chain, info](ChainId id, const ChainReplica& r) {
    if (id != chain) return;
    *info = ReplicaInfo{r.phase(),         r.view_version(), r.fenced(),  r.last_applied(), r.durable_level(),
                        r.exposed_level(), r.Quiescent(),    r.applied(), r.durable()};
  });
  if (!done || !info->has_value()) return std::nullopt;
  // The replica keeps no copy of its durable state (ReplicaOptions::keep_durable_state): it is
  // read from the store, with what the disk thread has committed so far.
  auto stored = store_->LoadChain(chain);
  if (!stored.ok()) return std::nullopt;
  (*info)->durable = std::move(*stored);
  return std::move(*info);
}

bool ChainHost::VisitAll(std::function<void(ChainId, const ChainReplica&)> fn) {
  if (stopping_) return false;
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  Post([this, done, fn = std::move(fn)] {
    for (const auto& [chain, replica] : replicas_) fn(chain, *replica);
    done->set_value();
  });
  return future.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
}

// ---- The event thread ----

void ChainHost::EventLoop() {
  auto next_tick = std::chrono::steady_clock::now() + options_.tick;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_until(lock, next_tick, [&] { return stopping_.load() || !tasks_.empty(); });
    if (stopping_) break;
    std::deque<std::function<void()>> tasks;
    tasks.swap(tasks_);
    lock.unlock();
    // The fence first: a lease lost (or given up) since the last batch stops these inputs too,
    // not only those after the next tick.
    ApplyFence();
    for (auto& task : tasks) task();
    if (std::chrono::steady_clock::now() >= next_tick) {
      ApplyFence();
      for (auto& [chain, replica] : replicas_) Process(chain, replica->OnTick());
      next_tick = std::chrono::steady_clock::now() + options_.tick;
    }
    FlushDisk();
    lock.lock();
  }
}

void ChainHost::Deliver(ChainId chain, Endpoint from, const Message& message) {
  auto it = replicas_.find(chain);
  if (it == replicas_.end() || !it->second->up()) {
    // No replica of that chain here: a client learns so at once instead of timing out.
    if (const auto* write = std::get_if<ClientWrite>(&message)) {
      SendToClient(from.id, ClientWriteReply{
                                write->request_id, write->op_id, Status::Busy("no replica of the chain here"), {}, 0});
    } else if (const auto* read = std::get_if<ClientRead>(&message)) {
      SendToClient(from.id, ClientReadReply{read->request_id, Status::Busy("no replica of the chain here"), {}, 0});
    } else if (const auto* query = std::get_if<ClientQuery>(&message)) {
      SendToClient(from.id, ClientQueryReply{query->request_id, Status::Busy("no replica of the chain here"), {}, 0});
    } else if (const auto* blob = std::get_if<BlobRead>(&message)) {
      SendTo(from, BlobReadReply{blob->request_id, Status::Busy("no replica of the chain here"), {}, 0});
    }
    return;
  }
  if (const auto* write = std::get_if<ClientWrite>(&message);
      write != nullptr && write->blob && options_.blobs != nullptr && !options_.blobs->ValidId(write->blob->id)) {
    ClientWriteReply reply{write->request_id, write->op_id, Status::InvalidArgument("not a blob id here"), {}, 0};
    SendTo(from, reply);
    return;
  }
  Process(chain, it->second->OnMessage(from, message));
}

void ChainHost::Process(ChainId chain, Effects effects) {
  // Durable writes join the batch before anything else runs (a message to this node itself
  // starts its own writes), so the batch keeps the order the writes were started in.
  for (const DiskWrite& write : effects.disk_writes) {
    current_batch_.batch.Add(chain, write);
    current_batch_.writes.emplace_back(chain, write.id);
    if (write.update != nullptr && write.update->blob) current_batch_.blobs.push_back(*write.update->blob);
    if (write.kind == DiskWrite::Kind::kApply) {
      for (const KvMutation& m : write.update->mutations) {
        if (!m.value && IsBlobKey(m.key)) current_batch_.dropped_blobs.push_back(m.key.substr(kBlobKeyPrefix.size()));
      }
    }
  }
  for (Outbound& out : effects.sends) {
    if (out.to.kind == Endpoint::Kind::kClient) {
      SendToClient(out.to.id, out.message);
    } else if (out.to.id == options_.node) {
      Deliver(chain, Endpoint::Replica(options_.node), out.message);
    } else {
      SendToPeer(out.to.id, out.message);
    }
  }
  for (const ManagerReport& report : effects.reports) {
    if (options_.on_report) options_.on_report(report);
  }
  for (BlobReadJob& job : effects.blob_reads) {
    RunBlob(&blob_reads_, [this, job = std::move(job)] { ReadBlobFor(job); });
  }
  if (effects.copy_complete) {
    // Only now may this replica be taken back as the chain's serving member after a restart.
    if (Status marked = store_->MarkComplete(chain); marked.ok()) {
      complete_.insert(chain);
    } else {
      CAIRN_LOG_WARN("node {}: chain {}: marking the copy complete: {}", options_.name, chain, marked.ToString());
    }
  }
  if (effects.blob_copy) {
    RunBlob(&blob_copies_, [this, chain, job = std::move(*effects.blob_copy)] { CopyBlobs(chain, job); });
  }
  if (effects.refresh_view && options_.on_refresh) options_.on_refresh(chain);
}

void ChainHost::FlushDisk() {
  if (current_batch_.writes.empty() && current_batch_.extra_blobs.empty()) return;
  if (disk_failed_) {  // never completes: nothing that depends on it is acknowledged
    current_batch_ = DiskBatch();
    return;
  }
  {
    std::lock_guard lock(disk_mu_);
    disk_queue_.push_back(std::move(current_batch_));
  }
  current_batch_ = DiskBatch();
  disk_cv_.notify_one();
}

void ChainHost::SendToPeer(NodeId peer, const Message& message) {
  std::string body = wire::Encode(message);
  std::lock_guard lock(peers_mu_);
  auto& outbox = outboxes_[peer];
  if (!outbox) {
    auto it = peers_.find(peer);
    if (it == peers_.end()) {
      outboxes_.erase(peer);
      dropped_.fetch_add(1);
      return;
    }
    net::ConnectionOptions options{options_.name, options_.secret};
    outbox = std::make_unique<Outbox>(it->second.rpc_address, it->second.name, options, options_.max_queued_per_peer,
                                      options_.max_queued_bytes_per_peer, &dropped_);
  }
  outbox->Send(std::move(body));
}

void ChainHost::SendToClient(uint32_t client, const Message& message) {
  std::string body = wire::Encode(message);
  std::lock_guard lock(peers_mu_);
  auto it = inbound_.find(client);
  if (it == inbound_.end()) {
    dropped_.fetch_add(1);
    return;
  }
  it->second->outbox->Send(std::move(body));
}

// ---- The disk ----

void ChainHost::DiskLoop() {
  std::unique_lock lock(disk_mu_);
  while (true) {
    disk_cv_.wait(lock, [&] { return stopping_.load() || !disk_queue_.empty(); });
    if (stopping_) return;
    std::deque<DiskBatch> batches;
    batches.swap(disk_queue_);
    lock.unlock();
    // Extras go first: before any blob of these batches is written (an update applied after the
    // decision to drop one may store it again), and before anything of them is reported done (an
    // install among them, or after them, that names one again then finds it gone, and copies it).
    std::vector<std::string> extras;
    for (DiskBatch& batch : batches) {
      for (std::string& id : batch.extra_blobs) extras.push_back(std::move(id));
    }
    if (!extras.empty() && options_.blobs != nullptr) {
      if (Status deleted = options_.blobs->DeleteMany(extras); !deleted.ok()) {
        CAIRN_LOG_WARN("node {}: deleting blobs no replica names: {}", options_.name, deleted.ToString());
      }
    }
    Status status;
    // A blob is durable before the update that names it: after a crash, a record never names a
    // blob the node lacks (a blob without its record is an orphan, reclaimed later).
    std::vector<const Blob*> blobs;
    for (const DiskBatch& batch : batches) {
      for (const Blob& blob : batch.blobs) blobs.push_back(&blob);
    }
    if (!blobs.empty()) {
      status =
          options_.blobs != nullptr ? options_.blobs->PutMany(blobs) : Status::Internal("this host has no blob store");
    }
    // One sync, with the last batch that writes anything (a batch of extras only writes nothing).
    size_t last_write = batches.size();
    for (size_t i = 0; i < batches.size(); ++i) {
      if (!batches[i].writes.empty()) last_write = i;
    }
    for (size_t i = 0; i < batches.size() && status.ok(); ++i) {
      if (batches[i].writes.empty()) continue;
      status = store_->Commit(batches[i].batch, /*sync=*/i == last_write);
    }
    if (!status.ok()) {
      // Nothing of these batches is reported done, so nothing depending on them is acknowledged;
      // the node stops taking part (fenced) until an operator looks at its disk.
      FailDisk("replica store write", status);
      lock.lock();
      disk_queue_.clear();
      return;
    }
    std::vector<std::pair<ChainId, uint64_t>> done;
    for (DiskBatch& batch : batches) done.insert(done.end(), batch.writes.begin(), batch.writes.end());
    Post([this, done = std::move(done)] {
      for (const auto& [chain, id] : done) {
        auto it = replicas_.find(chain);
        if (it != replicas_.end()) Process(chain, it->second->OnDiskWriteDone(id));
      }
      if (!recovering_.empty()) RecoverWaiting();
    });
    // Dropped blobs go once the updates dropping them are durable, after those are reported: the
    // deletes are not on any write's way to its acknowledgement.
    if (options_.blobs != nullptr &&
        std::any_of(batches.begin(), batches.end(), [](const DiskBatch& b) { return !b.dropped_blobs.empty(); })) {
      std::vector<std::string> dropped;
      for (DiskBatch& batch : batches) {
        for (std::string& id : batch.dropped_blobs) dropped.push_back(std::move(id));
      }
      if (Status deleted = options_.blobs->DeleteMany(dropped); !deleted.ok()) {
        CAIRN_LOG_WARN("node {}: deleting dropped blobs: {}", options_.name, deleted.ToString());
      }
    }
    lock.lock();
  }
}

// ---- Blobs ----

void ChainHost::RunBlob(BlobQueue* queue, std::function<void()> job) {
  {
    std::lock_guard lock(blob_mu_);
    queue->jobs.push_back(std::move(job));
  }
  blob_cv_.notify_all();
}

void ChainHost::BlobLoop(BlobQueue* queue) {
  std::unique_lock lock(blob_mu_);
  while (true) {
    blob_cv_.wait(lock, [&] { return stopping_.load() || !queue->jobs.empty(); });
    if (stopping_) return;
    std::function<void()> job = std::move(queue->jobs.front());
    queue->jobs.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

void ChainHost::SendTo(Endpoint to, const Message& message) {
  if (to.kind == Endpoint::Kind::kClient) {
    SendToClient(to.id, message);
  } else {
    SendToPeer(to.id, message);
  }
}

void ChainHost::ReadBlobFor(const BlobReadJob& job) {
  BlobReadReply reply;
  reply.request_id = job.request_id;
  reply.chain_version = job.chain_version;
  if (options_.blobs == nullptr) {
    reply.status = Status::NotFound("this host has no blob store");
  } else {
    auto bytes = options_.blobs->Read(job.blob, job.offset, job.length);
    if (bytes.ok()) {
      reply.bytes = std::move(*bytes);
    } else {
      reply.status = bytes.status();
      if (reply.status.IsCorruption()) {
        CAIRN_LOG_ERROR("node {}: a stored blob failed its checksum: {}", options_.name, reply.status.ToString());
      }
    }
  }
  SendTo(job.client, reply);
}

namespace {
// A resync writes the blobs it copies in batches of at most this many, or this many bytes.
constexpr size_t kCopyBatchBlobs = 32;
constexpr uint64_t kCopyBatchBytes = 32 << 20;
}  // namespace

void ChainHost::FailDisk(std::string_view what, const Status& why) {
  CAIRN_LOG_ERROR("node {}: {} failed, fencing every replica for good: {}", options_.name, what, why.ToString());
  disk_failed_ = true;
  Post([this] { ApplyFence(); });
}

void ChainHost::ClearCopyProgress(ChainId chain) {
  std::lock_guard lock(progress_mu_);
  progress_.erase(chain);
}

std::optional<BlobCopyProgress> ChainHost::CopyProgress(ChainId chain) const {
  std::lock_guard lock(progress_mu_);
  auto it = progress_.find(chain);
  if (it == progress_.end()) return std::nullopt;
  return it->second;
}

void ChainHost::CopyBlobs(ChainId chain, const BlobCopyJob& job) {
  BlobCopyProgress progress{job.chain_version, job.blobs.size(), 0, 0, 0, false};
  for (const BlobInfo& info : job.blobs) progress.bytes += info.size;
  auto publish = [&] {
    std::lock_guard lock(progress_mu_);
    // A job of an older view, still running beside the new one, does not overwrite its figures.
    auto it = progress_.find(chain);
    if (it == progress_.end() || it->second.chain_version <= progress.chain_version) progress_[chain] = progress;
  };
  publish();
  auto count_done = [&](const BlobInfo& info) {
    ++progress.blobs_done;
    progress.bytes_done += info.size;
    publish();
  };
  std::vector<std::string> missing;
  bool give_up = false;  // the predecessor does not answer, or not for this version: stop asking
  // Copied blobs are written in batches, one durable write each (a sync per blob would bound the
  // copy by the disk's sync rate).
  std::vector<std::pair<const BlobInfo*, Blob>> batch;
  uint64_t batch_bytes = 0;
  auto flush = [&] {
    if (batch.empty()) return;
    std::vector<const Blob*> blobs;
    for (const auto& [info, blob] : batch) blobs.push_back(&blob);
    const Status s = options_.blobs->PutMany(blobs);
    for (const auto& [info, blob] : batch) {
      if (s.ok()) {
        count_done(*info);
      } else {
        missing.push_back(info->id);
      }
    }
    if (!s.ok()) {
      // The node's own disk refused a write: fail-stop, as for any other durable write here
      // (DiskLoop), rather than asking for the copy again and again.
      FailDisk("chain " + std::to_string(chain) + ": writing copied blobs", s);
      give_up = true;
    }
    batch.clear();
    batch_bytes = 0;
  };
  for (const BlobInfo& info : job.blobs) {
    if (stopping_) return;
    if (options_.blobs == nullptr || give_up) {
      missing.push_back(info.id);
      continue;
    }
    if (options_.blobs->Has(info)) {  // kept from before a restart, or written meanwhile
      count_done(info);
      continue;
    }
    auto bytes = copier_->ReadBlobAt(job.from, chain, job.chain_version, info.id, 0, info.size);
    Status status = bytes.status();
    if (bytes.ok()) {
      Blob blob{info.id, std::move(*bytes), info.crc32c};
      if (crc32c::Value(blob.data().data(), blob.data().size()) == info.crc32c) {
        batch_bytes += blob.data().size();
        batch.emplace_back(&info, std::move(blob));
        if (batch.size() >= kCopyBatchBlobs || batch_bytes >= kCopyBatchBytes) flush();
        continue;
      }
      status = Status::Corruption("copied blob fails its checksum");
    }
    CAIRN_LOG_DEBUG("node {}: chain {}: copying a blob: {}", options_.name, chain, status.ToString());
    missing.push_back(info.id);
    // NotFound: that blob was dropped meanwhile (or is missing there); the others may be there.
    give_up = !status.IsNotFound();
  }
  if (options_.blobs != nullptr) flush();
  progress.finished = true;
  publish();
  if (!missing.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // then a new job
  Post([this, chain, version = job.chain_version, missing = std::move(missing)] {
    auto it = replicas_.find(chain);
    if (it != replicas_.end()) Process(chain, it->second->OnBlobsCopied(version, missing));
  });
}

// ---- The network ----

void ChainHost::AcceptLoop() {
  while (!stopping_) {
    const int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EINVAL) return;  // shut down
      CAIRN_LOG_WARN("node {}: rpc accept: {}", options_.name, std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (handshakes_ >= options_.max_handshakes) {
        ::close(fd);  // too many connections that have not proven anything yet
        continue;
      }
      ++handshakes_;
      ++connection_threads_;
    }
    try {
      std::thread([this, fd] { ServeConnection(fd); }).detach();
    } catch (const std::system_error& e) {
      CAIRN_LOG_WARN("node {}: rpc: no thread for a connection: {}", options_.name, e.what());
      ::close(fd);
      std::lock_guard lock(mu_);
      --handshakes_;
      --connection_threads_;
      threads_cv_.notify_all();
    }
  }
}

void ChainHost::ServeConnection(int fd) {
  net::ConnectionOptions options{options_.name, options_.secret};
  auto accepted = net::Connection::Accept(net::UniqueFd(fd), options);
  {
    std::lock_guard lock(mu_);
    --handshakes_;
  }
  if (!accepted.ok()) {
    CAIRN_LOG_WARN("node {}: rpc connection refused: {}", options_.name, accepted.status().ToString());
  } else {
    auto inbound = std::make_shared<Inbound>();
    inbound->connection = std::move(*accepted);
    inbound->outbox = std::make_unique<Outbox>(inbound->connection, options_.max_queued_per_peer,
                                               options_.max_queued_bytes_per_peer, &dropped_);
    bool registered = false;
    {
      std::lock_guard peers_lock(peers_mu_);
      if (!stopping_) {
        inbound->id = next_inbound_id_++;
        inbound_[inbound->id] = inbound;
        registered = true;
      }
    }
    if (registered) {
      ReadLoop(inbound);
      std::lock_guard peers_lock(peers_mu_);
      inbound_.erase(inbound->id);
    }
  }
  std::lock_guard lock(mu_);
  --connection_threads_;
  threads_cv_.notify_all();
}

void ChainHost::ReadLoop(std::shared_ptr<Inbound> inbound) {
  while (!stopping_) {
    auto frame = inbound->connection->Receive();
    if (!frame.ok()) {
      CAIRN_LOG_DEBUG("node {}: rpc from {}: {}", options_.name, inbound->connection->peer_id(),
                      frame.status().ToString());
      return;
    }
    if (frame->type != wire::kFrameChainMessage) {
      CAIRN_LOG_WARN("node {}: rpc from {}: unexpected frame type {}", options_.name, inbound->connection->peer_id(),
                     frame->type);
      return;
    }
    auto message = wire::Decode(frame->body);
    if (!message.ok()) {
      CAIRN_LOG_WARN("node {}: rpc from {}: {}", options_.name, inbound->connection->peer_id(),
                     message.status().ToString());
      return;
    }
    const std::optional<ChainId> chain = ChainOf(*message);
    if (!chain) continue;
    Endpoint from = Endpoint::Client(inbound->id);
    if (!FromClient(*message)) {
      // Replica messages count only from a node of the peer table, named as its handshake proved.
      std::optional<NodeId> node;
      {
        std::lock_guard lock(peers_mu_);
        for (const auto& [id, peer] : peers_) {
          if (peer.name == inbound->connection->peer_id()) node = id;
        }
      }
      if (!node) continue;
      from = Endpoint::Replica(*node);
    }
    Post([this, chain = *chain, from, message = std::move(*message)] { Deliver(chain, from, message); });
  }
}

}  // namespace cairn::replication
