#include "replication/chain_client.h"

#include <random>
#include <system_error>
#include <thread>

#include "common/crypto.h"
#include "common/logging.h"
#include "io/clock.h"
#include "replication/wire.h"

namespace cairn::replication {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t RandomU64() {
  uint64_t v = 0;
  crypto::RandomBytes(std::span(reinterpret_cast<uint8_t*>(&v), sizeof v));
  return v;
}

std::optional<uint64_t> RequestIdOf(const Message& message) {
  if (const auto* w = std::get_if<ClientWriteReply>(&message)) return w->request_id;
  if (const auto* r = std::get_if<ClientReadReply>(&message)) return r->request_id;
  if (const auto* q = std::get_if<ClientQueryReply>(&message)) return q->request_id;
  if (const auto* b = std::get_if<BlobReadReply>(&message)) return b->request_id;
  return std::nullopt;
}

}  // namespace

ChainClient::ChainClient(ChainClientOptions options) : options_(std::move(options)) {}

ChainClient::~ChainClient() {
  std::unique_lock lock(mu_);
  for (auto& [node, link] : links_) link->connection->Close();
  cv_.wait(lock, [&] { return readers_ == 0; });
}

Result<std::shared_ptr<ChainClient::Link>> ChainClient::LinkTo(NodeId node) {
  {
    std::lock_guard lock(mu_);
    auto it = links_.find(node);
    if (it != links_.end() && it->second->alive) return it->second;
  }
  std::lock_guard dial(dial_mu_);
  {
    std::lock_guard lock(mu_);
    auto it = links_.find(node);
    if (it != links_.end() && it->second->alive) return it->second;
  }
  std::optional<PeerAddress> peer = options_.address ? options_.address(node) : std::nullopt;
  if (!peer) return Status::NotFound("no address for node " + std::to_string(node));
  net::ConnectionOptions connection_options{options_.name, options_.secret};
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<net::Connection> connection,
                         net::Connection::Dial(peer->rpc_address, connection_options, options_.attempt_timeout));
  if (connection->peer_id() != peer->name) {  // a stale address now used by another node
    return Status::IOError("rpc " + peer->rpc_address + ": expected node " + peer->name + ", found " +
                           connection->peer_id());
  }
  auto link = std::make_shared<Link>();
  link->connection = std::move(connection);
  std::lock_guard lock(mu_);
  try {
    std::thread([this, link] { ReadLoop(link); }).detach();
  } catch (const std::system_error& e) {
    return Status::Internal(std::string("chain client: no thread: ") + e.what());
  }
  ++readers_;
  if (auto old = links_.find(node); old != links_.end()) old->second->connection->Close();
  links_[node] = link;
  return link;
}

void ChainClient::ReadLoop(std::shared_ptr<Link> link) {
  while (true) {
    auto frame = link->connection->Receive();
    std::optional<Message> message;
    if (frame.ok() && frame->type == wire::kFrameChainMessage) {
      auto decoded = wire::Decode(frame->body);
      if (decoded.ok()) message = std::move(*decoded);
    }
    std::lock_guard lock(mu_);
    if (!message) {
      link->alive = false;
      link->connection->Close();
      --readers_;
      cv_.notify_all();
      return;
    }
    if (auto id = RequestIdOf(*message)) {
      auto it = waiting_.find(*id);
      if (it != waiting_.end()) {
        it->second = std::move(*message);
        cv_.notify_all();
      }
    }
  }
}

std::optional<Message> ChainClient::Call(NodeId node, uint64_t request_id, const Message& message) {
  auto link = LinkTo(node);
  if (!link.ok()) {
    CAIRN_LOG_DEBUG("chain client {}: node {}: {}", options_.name, node, link.status().ToString());
    // A node that cannot be reached (or refuses us) is not dialled again at once.
    std::this_thread::sleep_for(
        std::min<std::chrono::milliseconds>(options_.attempt_timeout, std::chrono::milliseconds(200)));
    return std::nullopt;
  }
  {
    std::lock_guard lock(mu_);
    waiting_[request_id];
  }
  std::optional<Message> answer;
  if ((*link)->connection->Send(wire::kFrameChainMessage, request_id, wire::Encode(message)).ok()) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, options_.attempt_timeout, [&] { return waiting_[request_id].has_value() || !(*link)->alive; });
    answer = std::move(waiting_[request_id]);
    waiting_.erase(request_id);
  } else {
    std::lock_guard lock(mu_);
    waiting_.erase(request_id);
    (*link)->alive = false;
    (*link)->connection->Close();  // its reader ends too
  }
  return answer;
}

Result<WriteResult> ChainClient::Write(ChainId chain, const std::string& key, const std::optional<std::string>& value,
                                       OpId op) {
  return Execute(chain, value ? KvStateMachine::Put(key, *value) : KvStateMachine::Delete(key), op);
}

Result<WriteResult> ChainClient::Execute(ChainId chain, const std::string& command, OpId op) {
  ClientWrite write;
  write.op_id = op;
  write.command = command;
  return Submit(chain, std::move(write));
}

Result<WriteResult> ChainClient::PutBlob(ChainId chain, Blob blob, OpId op) {
  ClientWrite write;
  write.op_id = op;
  write.blob = std::move(blob);
  return Submit(chain, std::move(write));
}

Result<WriteResult> ChainClient::DropBlobs(ChainId chain, std::vector<std::string> ids, OpId op) {
  ClientWrite write;
  write.op_id = op;
  write.drop_blobs = std::move(ids);
  return Submit(chain, std::move(write));
}

uint64_t ChainClient::NextRequestId() {
  std::lock_guard lock(mu_);
  return next_request_++;
}

template <class Reply>
Result<Reply> ChainClient::ToHead(ChainId chain, std::string_view what,
                                  const std::function<Message(uint64_t, uint64_t)>& make) {
  const auto deadline = Clock::now() + options_.deadline;
  Status last = Status::Timeout("no chain view");
  while (Clock::now() < deadline) {
    if (Abandoned()) return Status::Timeout("chain " + std::to_string(chain) + ": the node left the cluster");
    std::optional<ChainView> view = options_.view ? options_.view(chain) : std::nullopt;
    if (view && !view->members.empty()) {
      const uint64_t request_id = NextRequestId();
      auto answer = Call(view->members.front().id.node, request_id, make(request_id, view->version));
      auto* reply = answer ? std::get_if<Reply>(&*answer) : nullptr;
      if (reply != nullptr && reply->status.ok()) return std::move(*reply);
      if (reply != nullptr && !reply->status.IsBusy()) return reply->status;  // refused for good
      last = reply != nullptr ? reply->status : Status::Timeout("no answer from the head");
    }
    if (options_.refresh) options_.refresh(chain);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::Timeout("chain " + std::to_string(chain) + " " + std::string(what) + ": " + last.ToString());
}

Result<WriteResult> ChainClient::Submit(ChainId chain, ClientWrite write) {
  if (write.op_id == 0) write.op_id = RandomU64() | 1;
  // Every retry below carries the time of the first attempt (ClientWrite::issued_ms).
  if (write.issued_ms == 0) write.issued_ms = io::SystemClock::Default()->WallMicros() / 1000;
  write.chain_id = chain;
  CAIRN_ASSIGN_OR_RETURN(ClientWriteReply reply,
                         ToHead<ClientWriteReply>(chain, "write", [&write](uint64_t request_id, uint64_t version) {
                           write.request_id = request_id;
                           write.chain_version = version;
                           return Message(write);  // the blob's bytes are shared, not copied
                         }));
  return std::move(reply.result);
}

Result<std::string> ChainClient::ReadBlobAt(NodeId node, ChainId chain, uint64_t version, const std::string& id,
                                            uint64_t offset, uint64_t length) {
  const uint64_t request_id = NextRequestId();
  auto answer = Call(node, request_id, BlobRead{request_id, chain, version, id, offset, length});
  const auto* reply = answer ? std::get_if<BlobReadReply>(&*answer) : nullptr;
  if (reply == nullptr) return Status::Timeout("no answer from node " + std::to_string(node));
  if (!reply->status.ok()) return reply->status;
  if (reply->bytes.size() != length) return Status::Corruption("blob read answered with the wrong length");
  return std::move(reply->bytes);
}

Result<std::string> ChainClient::ReadBlob(ChainId chain, const std::string& id, uint64_t offset, uint64_t length) {
  const auto deadline = Clock::now() + options_.deadline;
  Status last = Status::Timeout("no chain view");
  size_t turn = static_cast<size_t>(RandomU64() % 1024);
  while (Clock::now() < deadline) {
    if (Abandoned()) return Status::Timeout("chain " + std::to_string(chain) + ": the node left the cluster");
    std::optional<ChainView> view = options_.view ? options_.view(chain) : std::nullopt;
    std::vector<NodeId> serving;
    if (view) {
      for (const Member& m : view->members) {
        if (m.serving) serving.push_back(m.id.node);
      }
    }
    // Every serving member once, from a different one each time; a missing or damaged copy sends
    // the reader on to the next.
    size_t not_found = 0;
    bool other = false;
    for (size_t i = 0; i < serving.size(); ++i) {
      auto bytes = ReadBlobAt(serving[turn++ % serving.size()], chain, view->version, id, offset, length);
      if (bytes.ok()) return bytes;
      last = bytes.status();
      if (last.IsInvalidArgument()) return last;
      if (last.IsNotFound()) {
        ++not_found;
      } else {
        other = true;
      }
    }
    if (!serving.empty() && not_found == serving.size() && !other) {
      return Status::NotFound("chain " + std::to_string(chain) + ": no replica holds the blob");
    }
    if (options_.refresh) options_.refresh(chain);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::Timeout("chain " + std::to_string(chain) + " blob read: " + last.ToString());
}

Result<std::string> ChainClient::Query(ChainId chain, const std::string& query) {
  CAIRN_ASSIGN_OR_RETURN(ClientQueryReply reply,
                         ToHead<ClientQueryReply>(chain, "query", [&](uint64_t request_id, uint64_t version) {
                           return Message(ClientQuery{request_id, chain, version, query});
                         }));
  return std::move(reply.result);
}

Result<Record> ChainClient::Read(ChainId chain, const std::string& key) { return ReadImpl(chain, key, std::nullopt); }

Result<Record> ChainClient::ReadFrom(ChainId chain, const std::string& key, NodeId node) {
  return ReadImpl(chain, key, node);
}

Result<Record> ChainClient::ReadImpl(ChainId chain, const std::string& key, std::optional<NodeId> only) {
  const auto deadline = Clock::now() + options_.deadline;
  Status last = Status::Timeout("no chain view");
  size_t turn = static_cast<size_t>(RandomU64() % 1024);
  while (Clock::now() < deadline) {
    if (Abandoned()) return Status::Timeout("chain " + std::to_string(chain) + ": the node left the cluster");
    std::optional<ChainView> view = options_.view(chain);
    std::vector<NodeId> serving;
    if (view) {
      for (const Member& m : view->members) {
        if (m.serving && (!only || m.id.node == *only)) serving.push_back(m.id.node);
      }
    }
    if (!serving.empty()) {
      uint64_t request_id;
      {
        std::lock_guard lock(mu_);
        request_id = next_request_++;
      }
      const NodeId node = serving[turn++ % serving.size()];
      auto answer = Call(node, request_id, ClientRead{request_id, chain, view->version, key});
      const auto* reply = answer ? std::get_if<ClientReadReply>(&*answer) : nullptr;
      if (reply != nullptr && reply->status.ok()) return reply->record;
      last = reply != nullptr ? reply->status : Status::Timeout("no answer");
    }
    if (options_.refresh) options_.refresh(chain);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::Timeout("chain " + std::to_string(chain) + " read: " + last.ToString());
}

}  // namespace cairn::replication
