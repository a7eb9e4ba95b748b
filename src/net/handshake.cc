#include "net/handshake.h"

#include "common/crypto.h"

namespace cairn::net {
namespace {

constexpr uint8_t kVersion = 1;
constexpr std::string_view kContext = "cairn-rpc-v1";
constexpr size_t kMaxNodeId = 255;

}  // namespace

Handshake::Handshake(Role role, std::string node_id, std::string secret, const Nonce& nonce)
    : role_(role), node_id_(std::move(node_id)), secret_(std::move(secret)), nonce_(nonce) {}

std::string Handshake::EncodeHello() const {
  std::string body;
  body.push_back(static_cast<char>(kVersion));
  body.push_back(static_cast<char>(role_));
  body.push_back(static_cast<char>(node_id_.size()));
  body.append(node_id_);
  body.append(reinterpret_cast<const char*>(nonce_.data()), nonce_.size());
  return body;
}

std::string Handshake::ProofFor(Role prover, const Nonce& prover_nonce, const Nonce& verifier_nonce,
                                const std::string& prover_id, const std::string& verifier_id) const {
  // Length-prefixed fields: no two different field lists give the same message.
  std::string msg(kContext);
  msg.push_back(static_cast<char>(prover));
  msg.append(reinterpret_cast<const char*>(prover_nonce.data()), prover_nonce.size());
  msg.append(reinterpret_cast<const char*>(verifier_nonce.data()), verifier_nonce.size());
  msg.push_back(static_cast<char>(prover_id.size()));
  msg.append(prover_id);
  msg.push_back(static_cast<char>(verifier_id.size()));
  msg.append(verifier_id);
  const crypto::Sha256Digest mac = crypto::HmacSha256(secret_, msg);
  return std::string(reinterpret_cast<const char*>(mac.data()), mac.size());
}

Frame Handshake::Start() {
  hello_sent_ = true;
  return Frame{kFrameHello, 0, EncodeHello()};
}

Result<std::vector<Frame>> Handshake::OnFrame(const Frame& frame) {
  std::vector<Frame> out;
  if (frame.type == kFrameHello) {
    if (peer_hello_) return Status::InvalidArgument("handshake: a second Hello");
    if (role_ == Role::kClient && !hello_sent_) return Status::InvalidArgument("handshake: Hello before Start");
    const std::string& b = frame.body;
    if (b.size() < 3 || static_cast<uint8_t>(b[0]) != kVersion) {
      return Status::InvalidArgument("handshake: unknown version");
    }
    const Role peer_role = static_cast<Role>(static_cast<uint8_t>(b[1]));
    if (peer_role == role_ || (peer_role != Role::kClient && peer_role != Role::kServer)) {
      return Status::AccessDenied("handshake: the peer claims the wrong role");
    }
    const size_t id_len = static_cast<uint8_t>(b[2]);
    if (id_len == 0 || id_len > kMaxNodeId || b.size() != 3 + id_len + kNonceSize) {
      return Status::InvalidArgument("handshake: malformed Hello");
    }
    peer_id_ = b.substr(3, id_len);
    std::copy(b.begin() + 3 + static_cast<std::ptrdiff_t>(id_len), b.end(), peer_nonce_.begin());
    if (peer_nonce_ == nonce_) return Status::AccessDenied("handshake: the peer echoed our nonce");
    peer_hello_ = true;
    if (!hello_sent_) {
      hello_sent_ = true;
      out.push_back(Frame{kFrameHello, 0, EncodeHello()});
    }
    out.push_back(Frame{kFrameProof, 0, ProofFor(role_, nonce_, peer_nonce_, node_id_, peer_id_)});
    proof_sent_ = true;
    return out;
  }
  if (frame.type == kFrameProof) {
    if (!peer_hello_ || peer_verified_) return Status::InvalidArgument("handshake: Proof out of order");
    const Role peer_role = role_ == Role::kClient ? Role::kServer : Role::kClient;
    const std::string want = ProofFor(peer_role, peer_nonce_, nonce_, peer_id_, node_id_);
    if (!crypto::ConstantTimeEquals(frame.body, want)) {
      return Status::AccessDenied("handshake: the peer does not know the cluster secret");
    }
    peer_verified_ = true;
    return out;
  }
  return Status::InvalidArgument("handshake: frame type " + std::to_string(frame.type) + " before authentication");
}

}  // namespace cairn::net
