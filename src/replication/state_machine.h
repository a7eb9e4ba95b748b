// What a chain replicates: a deterministic state machine over an ordered key-value state.
//
// A caller's write is a command (bytes the state machine defines). The chain's head evaluates it
// against its state (every update applied before it, in sequence order) and turns it into an
// Update: the key mutations it makes and the result the caller gets. Every replica applies the
// same mutations in the same order, so the state is the same everywhere, and a precondition is
// evaluated once, at the head, against exactly the state every later replica will have reached
// at that sequence number. A read is a query, evaluated by the head against the committed state
// (docs/design/cluster.md, "Writes", "Reads").
//
// The metadata of the object store is one such machine (meta/meta_commands.h); KvStateMachine
// below is the smallest one (put and delete of one key), used by the simulator, the loopback
// tests and tests/tools/chain_kv.
//
// Thread-safety: Execute and Query are const and are called from one replica thread at a time;
// an implementation keeps no state between calls.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/kv.h"

namespace cairn::replication {

class StateMachine {
 public:
  struct Outcome {
    std::vector<KvMutation> mutations;  // applied in order; may be empty (a refused precondition)
    std::string result;                 // what the caller gets, recorded for retries of its operation id
  };
  virtual ~StateMachine() = default;
  // Deterministic: the same state and command give the same outcome. Never fails: a command it
  // cannot decode gives no mutations and a result that says so.
  virtual Outcome Execute(const KvReader& state, std::string_view command) const = 0;
  // Read-only, over committed state. An error of the reader (the head does not hold some key's
  // committed version) may be returned: the caller retries.
  virtual Result<std::string> Query(const KvReader& committed, std::string_view query) const = 0;
};

// Commands: 'P' key-length(u32 LE) key value = put; 'D' key = delete. The result is one byte: '1'
// when the key had a value before, '0' otherwise ('?' for an undecodable command, which changes
// nothing). A query is a key; its result is "" for an absent key, or "=" followed by the value.
class KvStateMachine final : public StateMachine {
 public:
  static const KvStateMachine& Instance();

  static std::string Put(std::string_view key, std::string_view value);
  static std::string Delete(std::string_view key);
  // Whether a result says the key had a value before the write.
  static bool Existed(std::string_view result) { return result == "1"; }
  static std::optional<std::string> DecodeQueryResult(std::string_view result);

  Outcome Execute(const KvReader& state, std::string_view command) const override;
  Result<std::string> Query(const KvReader& committed, std::string_view query) const override;
};

}  // namespace cairn::replication
