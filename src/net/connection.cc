#include "net/connection.h"

#include <algorithm>

#include "common/crypto.h"
#include "fmt/format.h"
#include "net/handshake.h"

namespace cairn::net {

Result<std::unique_ptr<Connection>> Connection::Dial(std::string_view address, const ConnectionOptions& options,
                                                     std::chrono::milliseconds connect_timeout) {
  CAIRN_ASSIGN_OR_RETURN(UniqueFd fd, Connect(address, connect_timeout));
  std::unique_ptr<Connection> conn(new Connection(std::move(fd), options));
  if (Status s = conn->Authenticate(/*client=*/true); !s.ok()) return s.WithContext(fmt::format("rpc {}", address));
  return conn;
}

Result<std::unique_ptr<Connection>> Connection::Accept(UniqueFd fd, const ConnectionOptions& options) {
  std::unique_ptr<Connection> conn(new Connection(std::move(fd), options));
  CAIRN_RETURN_IF_ERROR(conn->Authenticate(/*client=*/false));
  return conn;
}

Connection::~Connection() { Close(); }

Status Connection::Authenticate(bool client) {
  Nonce nonce;
  crypto::RandomBytes(nonce);
  Handshake handshake(client ? Handshake::Role::kClient : Handshake::Role::kServer, options_.node_id, options_.secret,
                      nonce);
  // One deadline for the whole handshake, however slowly the peer trickles its bytes: every
  // receive waits at most what is left of it.
  const auto deadline = std::chrono::steady_clock::now() + options_.handshake_timeout;
  SetSendTimeout(fd_.get(), options_.handshake_timeout);
  if (client) CAIRN_RETURN_IF_ERROR(SendFrame(handshake.Start()));
  while (!handshake.done()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Timeout("rpc handshake: timed out");
    SetReceiveTimeout(fd_.get(), std::min<std::chrono::milliseconds>(left, std::chrono::milliseconds(100)));
    auto received = ReceiveFrame();
    if (!received.ok() && received.status().IsTimeout()) continue;
    CAIRN_ASSIGN_OR_RETURN(Frame frame, std::move(received));
    CAIRN_ASSIGN_OR_RETURN(std::vector<Frame> replies, handshake.OnFrame(frame));
    for (const Frame& reply : replies) CAIRN_RETURN_IF_ERROR(SendFrame(reply));
  }
  SetReceiveTimeout(fd_.get(), std::chrono::milliseconds(0));
  SetSendTimeout(fd_.get(), std::chrono::milliseconds(0));
  peer_id_ = handshake.peer_id();
  return Status::OK();
}

Status Connection::SendFrame(const Frame& frame) {
  std::lock_guard lock(send_mu_);
  return SendPiece(frame.type, frame.request_id, frame.body);
}

Status Connection::Send(uint16_t type, uint64_t request_id, std::string_view body) {
  if (body.size() > options_.max_message) {
    return Status::InvalidArgument(fmt::format("rpc message of {} bytes is over the limit", body.size()));
  }
  std::lock_guard lock(send_mu_);
  while (body.size() > kMaxFrameBody) {
    CAIRN_RETURN_IF_ERROR(SendPiece(kFrameContinued, request_id, body.substr(0, kMaxFrameBody)));
    body.remove_prefix(kMaxFrameBody);
  }
  return SendPiece(type, request_id, body);
}

Status Connection::SendPiece(uint16_t type, uint64_t request_id, std::string_view body) {
  // The body goes out from where it lies: a chunk's bytes are not copied into a frame first.
  const FrameEnvelope e = EncodeFrameEnvelope(type, request_id, body);
  return SendAll(fd_.get(), {e.head, body, e.trailer});
}

Result<Frame> Connection::ReceiveFrame() {
  while (true) {
    if (std::optional<Frame> frame = decoder_.Next()) return std::move(*frame);
    if (!decoder_.status().ok()) return decoder_.status();
    receive_buffer_.resize(256 * 1024);
    CAIRN_ASSIGN_OR_RETURN(size_t n, ReceiveSome(fd_.get(), receive_buffer_.data(), receive_buffer_.size()));
    if (n == 0) return Status::IOError("rpc: connection closed by the peer");
    CAIRN_RETURN_IF_ERROR(decoder_.Feed(std::string_view(receive_buffer_.data(), n)));
  }
}

Result<Frame> Connection::Receive() {
  std::string joined;
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(Frame frame, ReceiveFrame());
    if (joined.size() + frame.body.size() > options_.max_message) {
      return Status::Corruption("rpc: message over the size limit");
    }
    if (frame.type == kFrameContinued) {
      joined.append(frame.body);
      continue;
    }
    if (!joined.empty()) {
      joined.append(frame.body);
      frame.body = std::move(joined);
    }
    return frame;
  }
}

void Connection::Close() { Shutdown(fd_.get()); }

}  // namespace cairn::net
