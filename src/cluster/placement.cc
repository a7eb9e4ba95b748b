#include "cluster/placement.h"

#include <algorithm>
#include <map>
#include <set>

namespace cairn::cluster {

RebuildResult Rebuild(const std::vector<Chain>& current, const std::vector<TargetInfo>& live, uint32_t chain_count,
                      uint32_t replicas) {
  std::map<std::string, const TargetInfo*> by_id;
  for (const TargetInfo& t : live) by_id[t.id] = &t;

  RebuildResult out;
  out.chains.resize(chain_count);
  for (uint32_t i = 0; i < chain_count; ++i) out.chains[i].id = i;
  for (const Chain& c : current) {
    if (c.id < chain_count) out.chains[c.id] = c;
  }

  // Pass 1: members whose target is gone leave.
  std::vector<bool> changed(chain_count, false);
  for (Chain& c : out.chains) {
    const size_t before = c.members.size();
    std::erase_if(c.members, [&](const ChainMember& m) { return by_id.find(m.target) == by_id.end(); });
    if (c.members.size() != before) changed[c.id] = true;
  }

  // Load of each live target after pass 1: chains it belongs to, chains it heads.
  std::map<std::string, std::pair<uint32_t, uint32_t>> load;
  for (const TargetInfo& t : live) load[t.id] = {0, 0};
  for (const Chain& c : out.chains) {
    for (size_t i = 0; i < c.members.size(); ++i) {
      auto& l = load[c.members[i].target];
      ++l.first;
      if (i == 0) ++l.second;
    }
  }

  // Pass 2: fill short chains, one member at a time round-robin over the chains, so that load
  // spreads evenly instead of the first chains taking the least loaded targets every time.
  for (uint32_t round = 0; round < replicas; ++round) {
    for (Chain& c : out.chains) {
      if (c.members.size() >= replicas) continue;
      const bool creating = c.version == 0;  // never had members: nothing to copy
      if (c.members.empty() && !creating) continue;  // lost: nothing to copy from
      std::set<std::string> nodes, zones;
      for (const ChainMember& m : c.members) {
        const TargetInfo* t = by_id[m.target];
        nodes.insert(t->node);
        zones.insert(t->zone);
      }
      const TargetInfo* best = nullptr;
      auto better = [&](const TargetInfo* a, const TargetInfo* b) {
        const bool a_new_zone = zones.count(a->zone) == 0, b_new_zone = zones.count(b->zone) == 0;
        if (a_new_zone != b_new_zone) return a_new_zone;
        const auto& la = load[a->id];
        const auto& lb = load[b->id];
        if (la.first != lb.first) return la.first < lb.first;
        if (la.second != lb.second) return la.second < lb.second;
        return a->id < b->id;
      };
      for (const TargetInfo& t : live) {
        if (nodes.count(t.node) != 0) continue;
        if (best == nullptr || better(&t, best)) best = &t;
      }
      if (best == nullptr) continue;  // no node left that the chain does not use
      auto& l = load[best->id];
      ++l.first;
      if (c.members.empty()) ++l.second;
      c.members.push_back({best->id, creating ? ReplicaState::kServing : ReplicaState::kSyncing});
      changed[c.id] = true;
    }
  }

  for (Chain& c : out.chains) {
    if (changed[c.id]) {
      ++c.version;
      out.changed.push_back(c.id);
    }
    if (c.members.empty()) {
      if (c.version > 0) out.lost.push_back(c.id);
    } else if (c.members.size() < replicas) {
      out.short_chains.push_back(c.id);
    }
  }
  return out;
}

}  // namespace cairn::cluster
