// Peer reports and evictions (docs/design/cluster.md, "Leases, failure detection and
// self-fencing"): what etcd cannot see.
//
// A node whose lease lives on but whose peers cannot reach it (a cut between nodes that spares
// etcd, a hung disk, a wedged process whose lease thread still runs) would stall every chain it is
// in. Its chain predecessors notice: a successor that stops taking updates for the peer timeout
// (ChainReplica::StalledSuccessor) is reported, `reports/<reporter node>/<target>` =
// {"incarnation"} (the reported member's), bound to the reporter's lease. The manager reads the
// reports every round and picks at most one node to evict (ChooseEviction); it writes
// `evict/<node>` = {"lease", "until_ms"} in a fenced transaction. The evicted node, reading its
// eviction under its current lease, fences itself, drops that lease and registers again: its
// chains then lose that incarnation as if its lease had expired, with nothing served in between,
// since the node itself stopped first. It registers with `quarantined_until_ms` = `until_ms`, and
// the manager gives it no new chain before then (a node restarted by its operator is placed at
// once: the quarantine is the evicted process's own). The manager deletes the record once the
// node's registration under the evicted lease is gone. A node that never acts on its eviction
// (its lease thread alive, the rest wedged) has its lease revoked by the manager after two TTLs,
// and the manager keeps its chains unchanged for one more TTL, by which time the node has fenced
// itself (its keepalives fail); it comes back unquarantined.
//
// Thread-safety: pure functions over values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/etcd.h"
#include "cluster/placement.h"
#include "common/result.h"

namespace cairn::cluster {

// `reports/<reporter>/<target>`: the reporter's replica of some chain has waited the peer timeout
// on `target` (under `incarnation`) to take updates.
struct PeerReport {
  std::string reporter;  // node id
  std::string target;    // target id, "<node>/<disk>"
  uint64_t incarnation = 0;
  bool operator==(const PeerReport&) const = default;
};

std::string PeerReportKey(std::string_view prefix, std::string_view reporter, std::string_view target);
std::string EncodePeerReport(const PeerReport& report);
// From a key and value under `<prefix>reports/`; Corruption when either does not parse.
Result<PeerReport> DecodePeerReport(std::string_view prefix, const EtcdKv& kv);

// `evict/<node>`: the manager evicted the node's registration under `lease`; the node registers
// again quarantined until `until_ms` (ms since the Unix epoch, the manager's clock).
struct Eviction {
  std::string node;
  int64_t lease = 0;
  uint64_t until_ms = 0;
  int64_t mod_revision = 0;  // as read, for the manager's fenced changes
  int64_t create_revision = 0;
  bool operator==(const Eviction&) const = default;
};

std::string EvictionKey(std::string_view prefix, std::string_view node);
std::string EncodeEviction(const Eviction& eviction);
Result<Eviction> DecodeEviction(std::string_view prefix, const EtcdKv& kv);

// The node to evict for these reports, if any. Only reports whose reporter is live and whose
// target is live under the reported incarnation count; so do reports between distinct nodes only.
//   1. A node reported by two or more distinct nodes is the one cut off (the most reported first).
//   2. Else a node that reports two or more distinct nodes, and is reported by fewer, is the one
//      cut off: it cannot reach several nodes that reach each other.
//   3. Else one report between two nodes (a single broken link): its target goes, so that the
//      chains through that link can move; the first report in (reporter, target) order, so one
//      end of a cut link leaves, not both.
// Ties go to the smallest node id.
std::optional<std::string> ChooseEviction(const std::vector<PeerReport>& reports, const std::vector<TargetInfo>& live);

}  // namespace cairn::cluster
