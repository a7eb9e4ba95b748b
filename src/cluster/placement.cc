#include "cluster/placement.h"

#include <algorithm>
#include <map>
#include <set>

namespace cairn::cluster {

RebuildResult Rebuild(const std::vector<Chain>& current, const std::vector<TargetInfo>& live, uint32_t chain_count,
                      uint32_t replicas, const std::vector<SyncReport>& synced,
                      const std::set<std::string>& excluded_nodes) {
  std::map<std::string, const TargetInfo*> by_id;
  for (const TargetInfo& t : live) by_id[t.id] = &t;

  RebuildResult out;
  out.chains.resize(chain_count);
  for (uint32_t i = 0; i < chain_count; ++i) out.chains[i].id = i;
  for (const Chain& c : current) {
    if (c.id < chain_count) out.chains[c.id] = c;
  }

  std::vector<bool> changed(chain_count, false);
  auto live_target = [&](const ChainMember& m) {
    auto it = by_id.find(m.target);
    return it != by_id.end() && it->second->incarnation == m.incarnation;
  };

  // Pass 0: a syncing last member whose copy is complete under this version starts serving.
  for (const SyncReport& r : synced) {
    if (r.chain >= chain_count) continue;
    Chain& c = out.chains[r.chain];
    if (c.members.empty() || c.version != r.version) continue;
    ChainMember& last = c.members.back();
    if (last.state != ReplicaState::kSyncing || last.target != r.target || last.incarnation != r.incarnation ||
        !live_target(last)) {
      continue;
    }
    last.state = ReplicaState::kServing;
    changed[c.id] = true;
  }

  // Pass 1: members whose target is gone leave, but never the last serving one.
  for (Chain& c : out.chains) {
    bool any_live_serving = std::any_of(c.members.begin(), c.members.end(), [&](const ChainMember& m) {
      return m.state == ReplicaState::kServing && live_target(m);
    });
    if (!any_live_serving) {
      // A serving member back under a new incarnation holds every committed update: take it back.
      for (ChainMember& m : c.members) {
        auto it = by_id.find(m.target);
        if (m.state != ReplicaState::kServing || it == by_id.end()) continue;
        m.incarnation = it->second->incarnation;
        any_live_serving = true;
        changed[c.id] = true;
        break;
      }
    }
    bool kept_serving = any_live_serving;
    const size_t before = c.members.size();
    std::erase_if(c.members, [&](const ChainMember& m) {
      if (live_target(m)) return false;
      if (m.state == ReplicaState::kServing && !kept_serving) {
        kept_serving = true;  // the only complete copy: kept until it returns
        return false;
      }
      return true;
    });
    if (c.members.size() != before) changed[c.id] = true;
  }

  // Load of each live target after pass 1: chains it belongs to, chains it heads.
  std::map<std::string, std::pair<uint32_t, uint32_t>> load;
  for (const TargetInfo& t : live) load[t.id] = {0, 0};
  for (const Chain& c : out.chains) {
    for (size_t i = 0; i < c.members.size(); ++i) {
      if (!live_target(c.members[i])) continue;  // a kept, absent member
      auto& l = load[c.members[i].target];
      ++l.first;
      if (i == 0) ++l.second;
    }
  }

  // Pass 2: fill short chains, one member at a time round-robin over the chains, so that load
  // spreads evenly instead of the first chains taking the least loaded targets every time.
  auto serving = [](const Chain& c) {
    return std::count_if(c.members.begin(), c.members.end(),
                         [](const ChainMember& m) { return m.state == ReplicaState::kServing; });
  };
  auto syncing = [&](const Chain& c) { return static_cast<int64_t>(c.members.size()) - serving(c); };
  for (uint32_t round = 0; round < replicas; ++round) {
    for (Chain& c : out.chains) {
      if (c.members.size() >= replicas) continue;
      const bool creating = c.version == 0;  // never had members: nothing to copy
      if (!creating && (serving(c) == 0 || syncing(c) > 0)) continue;  // lost, or one syncs already
      std::set<std::string> nodes, zones;
      for (const ChainMember& m : c.members) {
        if (!live_target(m)) {  // a kept, absent member: its node is still taken
          nodes.insert(m.target.substr(0, m.target.find('/')));
          continue;
        }
        auto it = by_id.find(m.target);
        nodes.insert(it->second->node);
        zones.insert(it->second->zone);
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
        if (nodes.count(t.node) != 0 || excluded_nodes.count(t.node) != 0) continue;
        if (best == nullptr || better(&t, best)) best = &t;
      }
      if (best == nullptr) continue;  // no node left that the chain does not use
      auto& l = load[best->id];
      ++l.first;
      if (c.members.empty()) ++l.second;
      c.members.push_back({best->id, creating ? ReplicaState::kServing : ReplicaState::kSyncing, best->incarnation});
      changed[c.id] = true;
    }
  }

  for (Chain& c : out.chains) {
    if (changed[c.id]) {
      ++c.version;
      out.changed.push_back(c.id);
    }
    if (c.version > 0 && serving(c) == 0) {
      out.lost.push_back(c.id);
    } else if (c.members.size() < replicas) {
      out.short_chains.push_back(c.id);
    }
  }
  return out;
}

}  // namespace cairn::cluster
