// Mutual authentication of an RPC connection with the cluster secret (docs/design/cluster.md,
// "Internal RPC").
//
//   client -> server   Hello  {version, node id, 32-byte random nonce}
//   server -> client   Hello  {version, node id, nonce}
//   each side          Proof  HMAC-SHA256(secret, "cairn-rpc-v1" | role | own nonce | peer nonce
//                                          | own id | peer id)
//
// A side is authenticated when the peer's proof verifies. Both nonces enter every proof, so a
// proof recorded from another connection is worthless, and the role ("client" / "server") enters
// too, so a proof cannot be reflected back to the side that sent it. A process without the
// secret learns nothing it could use and gets AccessDenied.
//
// The handshake is a state machine over frames (net/frame.h), with no I/O of its own, so the
// simulator and the tests drive it directly.
// Thread-safety: one Handshake per connection, used by one thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "net/frame.h"

namespace cairn::net {

inline constexpr uint16_t kFrameHello = 1;
inline constexpr uint16_t kFrameProof = 2;
inline constexpr size_t kNonceSize = 32;
using Nonce = std::array<uint8_t, kNonceSize>;

class Handshake {
 public:
  enum class Role : uint8_t { kClient = 1, kServer = 2 };

  // `nonce` must be fresh random bytes (crypto::RandomBytes) for every connection; tests pass
  // fixed ones.
  Handshake(Role role, std::string node_id, std::string secret, const Nonce& nonce);

  // The client's first frame. REQUIRES: role is kClient, called once, first.
  Frame Start();
  // Takes the peer's next frame; returns the frames to send in answer. Errors: AccessDenied
  // when the peer's proof does not verify (a wrong secret) or it claims the wrong role;
  // InvalidArgument for a frame out of order or malformed. After an error the connection must
  // be closed.
  Result<std::vector<Frame>> OnFrame(const Frame& frame);

  bool done() const { return peer_verified_ && proof_sent_; }
  // The peer's node id, as its Hello claimed it and its proof confirmed. Valid once done().
  const std::string& peer_id() const { return peer_id_; }

 private:
  std::string ProofFor(Role prover, const Nonce& prover_nonce, const Nonce& verifier_nonce,
                       const std::string& prover_id, const std::string& verifier_id) const;
  std::string EncodeHello() const;

  const Role role_;
  const std::string node_id_;
  const std::string secret_;
  const Nonce nonce_;
  bool hello_sent_ = false;
  bool peer_hello_ = false;
  bool proof_sent_ = false;
  bool peer_verified_ = false;
  Nonce peer_nonce_{};
  std::string peer_id_;
};

}  // namespace cairn::net
