// Connection authentication (net/handshake.h): peers with the secret authenticate each other;
// a wrong secret, a replayed or reflected proof, and frames out of order are refused.
#include "net/handshake.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace cairn::net {
namespace {

Nonce MakeNonce(uint8_t seed) {
  Nonce n;
  for (size_t i = 0; i < n.size(); ++i) n[i] = static_cast<uint8_t>(seed * 31 + i);
  return n;
}

// Runs the exchange to its end; returns the first error of either side.
Status Exchange(Handshake& client, Handshake& server) {
  std::vector<Frame> to_server{client.Start()};
  std::vector<Frame> to_client;
  for (int round = 0; round < 4 && (!to_server.empty() || !to_client.empty()); ++round) {
    std::vector<Frame> next_to_client;
    for (const Frame& f : to_server) {
      auto out = server.OnFrame(f);
      if (!out.ok()) return out.status();
      next_to_client.insert(next_to_client.end(), out->begin(), out->end());
    }
    to_server.clear();
    for (const Frame& f : to_client) {
      auto out = client.OnFrame(f);
      if (!out.ok()) return out.status();
      to_server.insert(to_server.end(), out->begin(), out->end());
    }
    to_client = std::move(next_to_client);
  }
  return Status::OK();
}

TEST(HandshakeTest, PeersWithTheSecretAuthenticateEachOther) {
  Handshake client(Handshake::Role::kClient, "node-a", "s3cret", MakeNonce(1));
  Handshake server(Handshake::Role::kServer, "node-b", "s3cret", MakeNonce(2));
  ASSERT_OK(Exchange(client, server));
  EXPECT_TRUE(client.done());
  EXPECT_TRUE(server.done());
  EXPECT_EQ(client.peer_id(), "node-b");
  EXPECT_EQ(server.peer_id(), "node-a");
}

TEST(HandshakeTest, AWrongSecretIsRefusedOnBothSides) {
  Handshake client(Handshake::Role::kClient, "a", "right", MakeNonce(1));
  Handshake server(Handshake::Role::kServer, "b", "wrong", MakeNonce(2));
  EXPECT_TRUE(Exchange(client, server).IsAccessDenied());
  EXPECT_FALSE(server.done() && client.done());
  // Each side independently refuses the other's proof.
  Handshake c2(Handshake::Role::kClient, "a", "right", MakeNonce(3));
  Handshake s2(Handshake::Role::kServer, "b", "wrong", MakeNonce(4));
  auto server_frames = s2.OnFrame(c2.Start());
  ASSERT_OK(server_frames);
  ASSERT_EQ(server_frames->size(), 2u);  // Hello and Proof
  auto client_frames = c2.OnFrame((*server_frames)[0]);
  ASSERT_OK(client_frames);
  EXPECT_TRUE(c2.OnFrame((*server_frames)[1]).status().IsAccessDenied());
  EXPECT_TRUE(s2.OnFrame((*client_frames)[0]).status().IsAccessDenied());
}

TEST(HandshakeTest, AProofFromAnotherConnectionIsWorthless) {
  // Record a good exchange.
  Handshake client(Handshake::Role::kClient, "a", "k", MakeNonce(1));
  Handshake server(Handshake::Role::kServer, "b", "k", MakeNonce(2));
  auto s_out = server.OnFrame(client.Start());
  ASSERT_OK(s_out);
  const Frame recorded_proof = (*s_out)[1];
  // An impostor without the secret replays the server's Hello and proof to a new client.
  Handshake fresh(Handshake::Role::kClient, "a", "k", MakeNonce(9));
  (void)fresh.Start();
  ASSERT_OK(fresh.OnFrame((*s_out)[0]));
  EXPECT_TRUE(fresh.OnFrame(recorded_proof).status().IsAccessDenied());
}

TEST(HandshakeTest, AProofCannotBeReflected) {
  // A server that receives its own Hello back (a reflecting impostor) refuses the role.
  Handshake server(Handshake::Role::kServer, "b", "k", MakeNonce(2));
  Handshake probe(Handshake::Role::kServer, "b", "k", MakeNonce(5));
  auto out = server.OnFrame(Frame{kFrameHello, 0, std::string()});
  EXPECT_TRUE(out.status().IsInvalidArgument());
  Handshake client(Handshake::Role::kClient, "a", "k", MakeNonce(1));
  auto s_out = server.OnFrame(client.Start());
  ASSERT_OK(s_out);
  // Sending the server's own proof back to it does not verify (its role is in the proof).
  EXPECT_TRUE(server.OnFrame((*s_out)[1]).status().IsAccessDenied());
  (void)probe;
}

TEST(HandshakeTest, FramesOutOfOrderOrMalformedAreRefused) {
  Handshake server(Handshake::Role::kServer, "b", "k", MakeNonce(2));
  EXPECT_TRUE(server.OnFrame(Frame{kFrameProof, 0, std::string(32, 'x')}).status().IsInvalidArgument());
  EXPECT_TRUE(server.OnFrame(Frame{99, 0, "x"}).status().IsInvalidArgument());
  std::string hello;
  hello.push_back(1);
  hello.push_back(1);
  hello.push_back(3);
  hello += "abc";
  hello += std::string(31, 'n');  // one nonce byte short
  EXPECT_TRUE(server.OnFrame(Frame{kFrameHello, 0, hello}).status().IsInvalidArgument());
}

}  // namespace
}  // namespace cairn::net
