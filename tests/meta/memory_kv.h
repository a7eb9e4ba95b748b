// Test helpers for the cluster-mode metadata path: an ordered key-value state in a std::map seen
// through KvReader, and a CommandTransport that executes commands and queries against such a
// state in-process, as a chain's head would (ExecuteCommand, then apply the mutations).
//
// Thread-safety: MapReader is as safe as its map (no writer while it reads). MemoryTransport is
// thread-safe: one mutex serializes every command, query and raw access.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/kv.h"
#include "meta/command_meta_store.h"
#include "meta/meta_commands.h"

namespace cairn::meta::test {

using KvMap = std::map<std::string, std::string, std::less<>>;

class MapReader final : public KvReader {
 public:
  explicit MapReader(const KvMap* map) : map_(map) {}

  Result<std::optional<std::string>> Get(std::string_view key) const override {
    auto it = map_->find(key);
    if (it == map_->end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  std::unique_ptr<KvIterator> NewIterator() const override { return std::make_unique<Iterator>(map_); }

 private:
  class Iterator final : public KvIterator {
   public:
    explicit Iterator(const KvMap* map) : map_(map), it_(map->end()) {}
    void Seek(std::string_view key) override { it_ = map_->lower_bound(key); }
    void Next() override { ++it_; }
    bool Valid() const override { return it_ != map_->end(); }
    std::string_view key() const override { return it_->first; }
    std::string_view value() const override { return it_->second; }
    Status status() const override { return Status::OK(); }

   private:
    const KvMap* map_;
    KvMap::const_iterator it_;
  };

  const KvMap* map_;
};

// Applies an outcome's mutations to the map.
inline void Apply(const std::vector<KvMutation>& mutations, KvMap* map) {
  for (const KvMutation& m : mutations) {
    if (m.value) {
      map->insert_or_assign(m.key, *m.value);
    } else {
      map->erase(m.key);
    }
  }
}

class MemoryTransport final : public CommandTransport {
 public:
  Result<std::string> Write(std::string command) override {
    std::lock_guard lock(mu_);
    CommandOutcome outcome = ExecuteCommand(MapReader(&state_), command);
    Apply(outcome.mutations, &state_);
    return std::move(outcome.result);
  }

  Result<std::string> Query(std::string query) override {
    std::lock_guard lock(mu_);
    return ExecuteQuery(MapReader(&state_), query);
  }

  // Runs fn on the state itself, as a test that damages stored values does.
  void WithState(const std::function<void(KvMap*)>& fn) {
    std::lock_guard lock(mu_);
    fn(&state_);
  }

 private:
  std::mutex mu_;
  KvMap state_;  // guarded by mu_
};

}  // namespace cairn::meta::test
