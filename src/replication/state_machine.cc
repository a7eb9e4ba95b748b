#include "replication/state_machine.h"

#include <cstdint>

namespace cairn::replication {
namespace {

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

const KvStateMachine& KvStateMachine::Instance() {
  static const KvStateMachine machine;
  return machine;
}

std::string KvStateMachine::Put(std::string_view key, std::string_view value) {
  std::string out = "P";
  PutU32(out, static_cast<uint32_t>(key.size()));
  out.append(key);
  out.append(value);
  return out;
}

std::string KvStateMachine::Delete(std::string_view key) {
  std::string out = "D";
  out.append(key);
  return out;
}

std::optional<std::string> KvStateMachine::DecodeQueryResult(std::string_view result) {
  if (result.empty() || result[0] != '=') return std::nullopt;
  return std::string(result.substr(1));
}

StateMachine::Outcome KvStateMachine::Execute(const KvReader& state, std::string_view command) const {
  Outcome outcome;
  KvMutation mutation;
  if (!command.empty() && command[0] == 'D') {
    mutation.key = std::string(command.substr(1));
  } else if (command.size() >= 5 && command[0] == 'P') {
    uint32_t key_size = 0;
    for (int i = 0; i < 4; ++i) key_size |= uint32_t{static_cast<uint8_t>(command[1 + i])} << (8 * i);
    if (key_size > command.size() - 5) {
      outcome.result = "?";
      return outcome;
    }
    mutation.key = std::string(command.substr(5, key_size));
    mutation.value = std::string(command.substr(5 + key_size));
  } else {
    outcome.result = "?";
    return outcome;
  }
  auto before = state.Get(mutation.key);
  outcome.result = before.ok() && before->has_value() ? "1" : "0";
  outcome.mutations.push_back(std::move(mutation));
  return outcome;
}

Result<std::string> KvStateMachine::Query(const KvReader& committed, std::string_view query) const {
  auto value = committed.Get(query);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return std::string();
  return "=" + **value;
}

}  // namespace cairn::replication
