// The chain table and how the manager rebuilds it (docs/design/cluster.md, "The chain table").
//
// Rebuild keeps what it can and changes as few chains as it can:
//   - members are incarnations: a (target, incarnation) pair, the incarnation being the lease of
//     the node's registration. A node that restarted or lost its lease is not the member its old
//     entry names (its copy may lack what was written since);
//   - a syncing last member that reported its copy complete under the chain's current version
//     becomes serving;
//   - a member whose target is no longer live (or is live under another incarnation) leaves its
//     chain, except the last serving one: the chain keeps it (degraded, unable to serve) until
//     that target returns, since it holds the only complete copy. When it returns under a new
//     incarnation while the chain has no live serving member, it is taken back, serving, under
//     that incarnation: its disk holds every committed update (each was durable on every member
//     before it was acknowledged), and nobody else has a complete copy;
//   - a chain short of `replicas` members, and with no member syncing, gets one new member
//     appended as a **syncing** tail (it copies from its predecessor before it serves; one at a
//     time, so that every syncing member copies from a serving one), chosen among live targets
//     on nodes the chain does not use yet, preferring zones the chain does not use yet, then the
//     target in the fewest chains (ties: fewest chains headed, then target id, so the result is
//     deterministic);
//   - a chain being created (never had members) gets all its members at once, serving: there is
//     nothing to copy;
//   - a chain with no serving member (only syncing ones left, or none) is reported lost and
//     gets no new member: nothing is left to copy from;
//   - every chain that changed gets version + 1; the others keep theirs.
// Two replicas never share a node; with fewer live nodes than `replicas`, chains run short.
//
// Pure functions over values: the manager reads the table and the live targets from etcd, calls
// Rebuild, and writes the chains that changed in one fenced transaction.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace cairn::cluster {

struct TargetInfo {
  std::string id;    // "<node>/<disk>"
  std::string node;  // the node it is on
  std::string zone;  // "" when zones are not used
  uint64_t incarnation = 0;  // the lease of the node's registration

  friend bool operator==(const TargetInfo&, const TargetInfo&) = default;
};

enum class ReplicaState : uint8_t { kServing, kSyncing };

struct ChainMember {
  std::string target;
  ReplicaState state = ReplicaState::kServing;
  uint64_t incarnation = 0;

  friend bool operator==(const ChainMember&, const ChainMember&) = default;
};

struct Chain {
  uint32_t id = 0;
  uint64_t version = 0;               // 0: never had members
  std::vector<ChainMember> members;   // head first

  friend bool operator==(const Chain&, const Chain&) = default;
};

// A syncing member's report that its copy is complete (etcd `sync/<chain>/<target>`).
struct SyncReport {
  uint32_t chain = 0;
  std::string target;
  uint64_t incarnation = 0;
  uint64_t version = 0;  // the chain version the copy was made under
};

struct RebuildResult {
  std::vector<Chain> chains;           // ids 0 .. chain_count-1
  std::vector<uint32_t> changed;       // ids of chains whose version went up
  std::vector<uint32_t> lost;          // chains with no member left (data lost)
  std::vector<uint32_t> short_chains;  // chains with fewer than `replicas` members afterwards
};

// `current` may be empty (a new cluster) or hold fewer chains than chain_count (new ones are
// created). REQUIRES: replicas >= 1.
// Targets of `excluded_nodes` (evicted nodes, peer_reports.h) keep the chains they are in but
// are never added to one.
RebuildResult Rebuild(const std::vector<Chain>& current, const std::vector<TargetInfo>& live, uint32_t chain_count,
                      uint32_t replicas, const std::vector<SyncReport>& synced = {},
                      const std::set<std::string>& excluded_nodes = {});

}  // namespace cairn::cluster
