// A linearizability checker for the history of one register (one key), in the manner of Wing and
// Gong, with the memoization of Lowe ("Testing for linearizability", 2017): a depth-first search
// for an order of the operations that respects real time (an operation that responded before
// another was invoked comes first) and the register's sequential specification, remembering
// every (set of linearized operations, register value) already explored and found to fail.
//
// The register starts absent. Operations: put (answers whether the key had a value before),
// delete (likewise), get (answers the value or absent). Put values are unique within a history,
// so the register's state is "absent" or "the value of put number i". An operation without a
// response (the client gave up) may have taken effect at any time after its invocation, or
// never: it has no result to match and need not be linearized at all. A get without a response
// has no effect and is left out.
//
// Header-only: each tests/<layer>/*_test.cc is built alone (tests/CMakeLists.txt).
// Thread-safety: a pure function.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace cairn::replication::test {

inline constexpr uint64_t kNoResponse = std::numeric_limits<uint64_t>::max();

struct RegisterOp {
  enum class Kind : uint8_t { kPut, kDelete, kGet };
  Kind kind = Kind::kGet;
  std::string value;                // put: the value written, unique in the history
  uint64_t invoke = 0;              // logical time of the invocation (distinct times)
  uint64_t response = kNoResponse;  // logical time of the response
  bool existed = false;             // put, delete: the key had a value before
  std::optional<std::string> read;  // get: what it returned (nullopt: absent)
  std::string label;                // shown in explanations, e.g. "c2 op17 t=812ms"

  bool completed() const { return response != kNoResponse; }
};

struct LinearizabilityResult {
  bool ok = true;
  bool inconclusive = false;  // gave up after max_states: neither proved nor refuted
  std::string explanation;    // when !ok: the history
  uint64_t states = 0;        // search states explored
};

inline std::string DescribeRegisterOp(const RegisterOp& op) {
  std::string out;
  switch (op.kind) {
    case RegisterOp::Kind::kPut:
      out = "put(" + op.value + ")";
      break;
    case RegisterOp::Kind::kDelete:
      out = "delete()";
      break;
    case RegisterOp::Kind::kGet:
      out = "get()";
      break;
  }
  out += " [" + std::to_string(op.invoke) + ", " +
         (op.completed() ? std::to_string(op.response) : std::string("no response")) + "]";
  if (op.completed()) {
    if (op.kind == RegisterOp::Kind::kGet) {
      out += " -> " + (op.read ? *op.read : std::string("absent"));
    } else {
      out += op.existed ? " -> existed" : " -> was absent";
    }
  }
  if (!op.label.empty()) out += "  " + op.label;
  return out;
}

// REQUIRES: at most 64 operations after the gets without response are left out.
inline LinearizabilityResult CheckRegisterHistory(std::vector<RegisterOp> history, uint64_t max_states = 2'000'000) {
  LinearizabilityResult result;
  std::vector<RegisterOp> ops;
  for (RegisterOp& op : history) {
    if (op.kind == RegisterOp::Kind::kGet && !op.completed()) continue;
    ops.push_back(std::move(op));
  }
  std::sort(ops.begin(), ops.end(), [](const RegisterOp& a, const RegisterOp& b) { return a.invoke < b.invoke; });
  const size_t n = ops.size();
  if (n > 64) {
    result.ok = false;
    result.explanation = "history of " + std::to_string(n) + " operations is longer than the checker's 64";
    return result;
  }
  uint64_t completed_mask = 0;
  for (size_t i = 0; i < n; ++i) {
    if (ops[i].completed()) completed_mask |= uint64_t{1} << i;
  }
  constexpr int kAbsent = -1;
  std::set<std::pair<uint64_t, int>> failed;  // (linearized set, state) known not to complete

  // Returns true when the completed operations outside `done` can all be linearized from `state`.
  auto search = [&](auto&& self, uint64_t done, int state) -> bool {
    if ((done & completed_mask) == completed_mask) return true;
    if (failed.contains({done, state})) return false;
    if (++result.states > max_states) {
      result.inconclusive = true;
      return true;  // stop searching; reported as inconclusive
    }
    // Only operations invoked before the earliest pending response can come next.
    uint64_t first_response = kNoResponse;
    for (size_t i = 0; i < n; ++i) {
      if (!(done >> i & 1) && ops[i].completed()) first_response = std::min(first_response, ops[i].response);
    }
    for (size_t i = 0; i < n && ops[i].invoke < first_response; ++i) {
      if (done >> i & 1) continue;
      const RegisterOp& op = ops[i];
      int next = state;
      switch (op.kind) {
        case RegisterOp::Kind::kPut:
          if (op.completed() && op.existed != (state != kAbsent)) continue;
          next = static_cast<int>(i);
          break;
        case RegisterOp::Kind::kDelete:
          if (op.completed() && op.existed != (state != kAbsent)) continue;
          next = kAbsent;
          break;
        case RegisterOp::Kind::kGet: {
          std::optional<std::string> value;
          if (state != kAbsent) value = ops[state].value;
          if (value != op.read) continue;
          break;
        }
      }
      if (self(self, done | uint64_t{1} << i, next)) return true;
    }
    failed.insert({done, state});
    return false;
  };

  if (search(search, 0, kAbsent)) return result;
  result.ok = false;
  result.explanation = "no linearization of these " + std::to_string(n) + " operations:\n";
  for (const RegisterOp& op : ops) result.explanation += "  " + DescribeRegisterOp(op) + "\n";
  return result;
}

}  // namespace cairn::replication::test
