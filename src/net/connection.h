// An authenticated RPC connection: a TCP socket that has passed the mutual handshake
// (net/handshake.h) and carries framed messages (net/frame.h).
//
// A message is one frame, or, when its body is larger than a frame can hold (a resync's
// snapshot), a run of kFrameContinued frames carrying the body's first pieces followed by one
// frame of the message's own type with the last piece; the receiver joins them. A message is
// bounded by ConnectionOptions::max_message.
//
// Thread-safety: Send and Close may be called from any thread (sends are serialized, so the
// frames of one message are never interleaved with another's); Receive from one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/frame.h"
#include "net/socket.h"

namespace cairn::net {

// A frame carrying a piece of a larger message (1 and 2 are the handshake's).
inline constexpr uint16_t kFrameContinued = 3;

struct ConnectionOptions {
  std::string node_id;  // this side's id, as the handshake presents it
  std::string secret;   // the cluster secret
  std::chrono::milliseconds handshake_timeout{3000};
  size_t max_message = 256u << 20;
};

class Connection {
 public:
  // Connects to `address` and authenticates (client role).
  static Result<std::unique_ptr<Connection>> Dial(std::string_view address, const ConnectionOptions& options,
                                                  std::chrono::milliseconds connect_timeout);
  // Authenticates an accepted socket (server role).
  static Result<std::unique_ptr<Connection>> Accept(UniqueFd fd, const ConnectionOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends one message. IOError once the connection is broken or closed.
  Status Send(uint16_t type, uint64_t request_id, std::string_view body);
  // The next message. Blocks; IOError when the peer closed or the connection was closed,
  // Corruption when a frame was damaged (the connection is then useless).
  Result<Frame> Receive();
  // Wakes a blocked Receive and makes later calls fail.
  void Close();

  // The peer's node id, proven by the handshake.
  const std::string& peer_id() const { return peer_id_; }

 private:
  Connection(UniqueFd fd, ConnectionOptions options) : fd_(std::move(fd)), options_(std::move(options)) {}
  // Runs the handshake to its end.
  Status Authenticate(bool client);
  // The next frame off the socket.
  Result<Frame> ReceiveFrame();
  Status SendFrame(const Frame& frame);
  // One frame. REQUIRES: send_mu_ held.
  Status SendPiece(uint16_t type, uint64_t request_id, std::string_view body);

  UniqueFd fd_;
  const ConnectionOptions options_;
  std::string peer_id_;
  std::mutex send_mu_;
  FrameDecoder decoder_;  // used by the receiving thread only
  std::string receive_buffer_;
};

}  // namespace cairn::net
