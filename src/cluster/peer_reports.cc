#include "cluster/peer_reports.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace cairn::cluster {
namespace {

// The node of a target id "<node>/<disk>".
std::string NodeOf(std::string_view target) { return std::string(target.substr(0, target.find('/'))); }

}  // namespace

std::string PeerReportKey(std::string_view prefix, std::string_view reporter, std::string_view target) {
  return std::string(prefix) + "reports/" + std::string(reporter) + "/" + std::string(target);
}

std::string EncodePeerReport(const PeerReport& report) {
  return nlohmann::json{{"incarnation", report.incarnation}}.dump();
}

Result<PeerReport> DecodePeerReport(std::string_view prefix, const EtcdKv& kv) {
  const std::string reports = std::string(prefix) + "reports/";
  if (!kv.key.starts_with(reports)) return Status::Corruption("peer report key " + kv.key);
  const std::string_view rest = std::string_view(kv.key).substr(reports.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) {
    return Status::Corruption("peer report key " + kv.key);
  }
  const auto j = nlohmann::json::parse(kv.value, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("incarnation") || !j["incarnation"].is_number_unsigned()) {
    return Status::Corruption("peer report " + kv.key);
  }
  return PeerReport{std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1)),
                    j["incarnation"].get<uint64_t>()};
}

std::string EvictionKey(std::string_view prefix, std::string_view node) {
  return std::string(prefix) + "evict/" + std::string(node);
}

std::string EncodeEviction(const Eviction& eviction) {
  return nlohmann::json{{"lease", eviction.lease}, {"until_ms", eviction.until_ms}}.dump();
}

Result<Eviction> DecodeEviction(std::string_view prefix, const EtcdKv& kv) {
  const std::string evict = std::string(prefix) + "evict/";
  if (!kv.key.starts_with(evict) || kv.key.size() == evict.size()) return Status::Corruption("eviction key " + kv.key);
  const auto j = nlohmann::json::parse(kv.value, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("lease") || !j["lease"].is_number_integer() ||
      !j.contains("until_ms") || !j["until_ms"].is_number_unsigned()) {
    return Status::Corruption("eviction " + kv.key);
  }
  return Eviction{kv.key.substr(evict.size()), j["lease"].get<int64_t>(), j["until_ms"].get<uint64_t>(),
                  kv.mod_revision, kv.create_revision};
}

std::optional<std::string> ChooseEviction(const std::vector<PeerReport>& reports, const std::vector<TargetInfo>& live) {
  std::set<std::string> live_nodes;
  for (const TargetInfo& t : live) live_nodes.insert(t.node);
  auto counts = [&](const PeerReport& r) {
    if (live_nodes.count(r.reporter) == 0) return false;
    const std::string target_node = NodeOf(r.target);
    if (target_node == r.reporter) return false;
    return std::any_of(live.begin(), live.end(),
                       [&](const TargetInfo& t) { return t.id == r.target && t.incarnation == r.incarnation; });
  };
  std::map<std::string, std::set<std::string>> reported_by, reporting;
  std::vector<std::pair<std::string, std::string>> links;  // (reporter, target node)
  for (const PeerReport& r : reports) {
    if (!counts(r)) continue;
    const std::string target_node = NodeOf(r.target);
    reported_by[target_node].insert(r.reporter);
    reporting[r.reporter].insert(target_node);
    links.emplace_back(r.reporter, target_node);
  }
  if (links.empty()) return std::nullopt;

  // 1. Reported by several nodes: the most reported, then the smallest id (std::map is ordered).
  const std::string* best = nullptr;
  size_t most = 1;
  for (const auto& [node, by] : reported_by) {
    if (by.size() > most) {
      most = by.size();
      best = &node;
    }
  }
  if (best != nullptr) return *best;
  // 2. Reporting several nodes (each reported by one node at most here).
  for (const auto& [node, targets] : reporting) {
    if (targets.size() >= 2 && reported_by[node].size() < targets.size()) return node;
  }
  // 3. A single broken link.
  std::sort(links.begin(), links.end());
  return links.front().second;
}

}  // namespace cairn::cluster
