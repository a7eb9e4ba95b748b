// The chain simulator (sim.h) over many seeds, its determinism, the deliberate bugs it must catch,
// and the linearizability checker it relies on.
//
//   chain_sim_test                                   seeds 1..300
//   CAIRN_SIM_SEEDS=5000 chain_sim_test              seeds 1..5000 (make soak)
//   CAIRN_SIM_FIRST_SEED=5001 CAIRN_SIM_SEEDS=5000   seeds 5001..10000
//   CAIRN_SIM_SEED=42 chain_sim_test --gtest_filter=ChainSim.Seeds
//                                                    replays seed 42 alone, printing its trace tail
//   CAIRN_SIM_SEED=42 CAIRN_SIM_TRACE=1 ...          the same, printing the whole trace
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "replication/linearizability.h"
#include "replication/sim.h"

namespace cairn::replication::test {
namespace {

std::optional<uint64_t> EnvNumber(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  return std::strtoull(text, nullptr, 10);
}

std::string FailureReport(uint64_t seed, const SimResult& result, std::string_view bug = {}) {
  std::string out = FailureHeadline(seed, result, bug) + "\n" + result.details + "\ntrace tail:\n";
  for (const std::string& line : result.trace_tail) out += "  " + line + "\n";
  return out;
}

// ---- The invariants hold ----

TEST(ChainSim, Seeds) {
  // CAIRN_SIM_BUG=<name> replays a run of ChainSimCatchesBugs (the seed range then fails).
  const char* bug = std::getenv("CAIRN_SIM_BUG");
  TestFaults faults;
  if (bug != nullptr && *bug != '\0') {
    auto named = BugByName(bug);
    ASSERT_TRUE(named.has_value()) << "unknown CAIRN_SIM_BUG " << bug;
    faults = *named;
  } else {
    bug = "";
  }
  std::vector<uint64_t> seeds;
  if (auto one = EnvNumber("CAIRN_SIM_SEED")) {
    seeds.push_back(*one);
  } else {
    const uint64_t count = EnvNumber("CAIRN_SIM_SEEDS").value_or(300);
    const uint64_t first = EnvNumber("CAIRN_SIM_FIRST_SEED").value_or(1);
    for (uint64_t seed = first; seed < first + count; ++seed) seeds.push_back(seed);
  }
  SimStats total;
  std::vector<uint64_t> failed;
  for (uint64_t seed : seeds) {
    const bool full_trace = seeds.size() == 1 && EnvNumber("CAIRN_SIM_TRACE").value_or(0) != 0;
    SimResult result = RunSimulation(SimOptions{.seed = seed, .faults = faults, .keep_trace = full_trace});
    for (const std::string& line : result.trace) std::cout << line << "\n";
    total.ops += result.stats.ops;
    total.ops_ok += result.stats.ops_ok;
    total.ops_gave_up += result.stats.ops_gave_up;
    total.crashes += result.stats.crashes;
    total.partitions += result.stats.partitions;
    total.view_changes += result.stats.view_changes;
    total.syncs += result.stats.syncs;
    total.evictions += result.stats.evictions;
    total.writes += result.stats.writes;
    total.results_kept += result.stats.results_kept;
    total.tombstones_kept += result.stats.tombstones_kept;
    total.events += result.stats.events;
    total.lin_states = std::max(total.lin_states, result.stats.lin_states);
    if (!result.ok) {
      failed.push_back(seed);
      if (failed.size() <= 3) ADD_FAILURE() << FailureReport(seed, result, bug);
    } else if (seeds.size() == 1) {
      std::string tail;
      for (const std::string& line : result.trace_tail) tail += "  " + line + "\n";
      std::cout << "seed " << seed << " passed; trace tail:\n" << tail;
    }
  }
  std::cout << seeds.size() << " seeds, " << failed.size() << " failed; " << total.ops << " operations ("
            << total.ops_ok << " answered, " << total.ops_gave_up << " given up), " << total.crashes << " crashes, "
            << total.partitions << " partitions, " << total.view_changes << " chain versions, " << total.syncs
            << " resyncs, " << total.evictions << " evictions on peer reports, " << total.events
            << " events; at most " << total.lin_states
            << " linearizability search states in one seed; " << total.results_kept << " results kept of "
            << total.writes << " writes, " << total.tombstones_kept << " tombstones kept\n";
  if (!failed.empty()) {
    std::string list;
    for (uint64_t seed : failed) list += " " + std::to_string(seed);
    ADD_FAILURE() << failed.size() << " seeds failed:" << list;
  }
}

TEST(ChainSim, SameSeedSameTrace) {
  const SimResult a = RunSimulation(SimOptions{.seed = 7, .keep_trace = true});
  const SimResult b = RunSimulation(SimOptions{.seed = 7, .keep_trace = true});
  const SimResult c = RunSimulation(SimOptions{.seed = 8, .keep_trace = true});
  ASSERT_TRUE(a.ok) << FailureReport(7, a);
  EXPECT_EQ(a.trace, b.trace);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_NE(a.trace_hash, c.trace_hash);
  EXPECT_GT(a.trace.size(), 500u);
}

// ---- Deliberate bugs are caught ----

struct Caught {
  uint64_t seed = 0;  // 0: not caught
  SimResult result;
};

// Runs seeds 1..max_seeds with the bug `name` and returns the first failure.
Caught FirstFailure(std::string_view name, uint64_t max_seeds) {
  const TestFaults faults = BugByName(name).value();
  for (uint64_t seed = 1; seed <= max_seeds; ++seed) {
    SimResult result = RunSimulation(SimOptions{.seed = seed, .faults = faults});
    if (!result.ok) return Caught{seed, std::move(result)};
  }
  return {};
}

void ExpectCaught(std::string_view bug, uint64_t max_seeds) {
  const Caught caught = FirstFailure(bug, max_seeds);
  ASSERT_NE(caught.seed, 0u) << "the bug " << bug << " went unnoticed for " << max_seeds << " seeds";
  std::cout << FailureHeadline(caught.seed, caught.result, bug) << "\n  " << caught.result.details.substr(0, 600)
            << "\n";
}

TEST(ChainSimCatchesBugs, HeadAnswersBeforeCommit) { ExpectCaught("head_replies_before_commit", 20); }

TEST(ChainSimCatchesBugs, TailAcknowledgesBeforeDurable) { ExpectCaught("tail_acks_before_durable", 50); }

TEST(ChainSimCatchesBugs, DirtyKeyReadLocally) { ExpectCaught("read_dirty_locally", 100); }

TEST(ChainSimCatchesBugs, FencedReplicaKeepsServing) { ExpectCaught("ignore_fence", 300); }

TEST(ChainSimCatchesBugs, ResyncKeepsStaleState) { ExpectCaught("sync_keeps_stale_state", 300); }

TEST(ChainSimCatchesBugs, VersionCheckSkipped) { ExpectCaught("skip_version_check", 300); }

// ---- The linearizability checker ----

RegisterOp Put(std::string value, uint64_t invoke, uint64_t response, bool existed) {
  return RegisterOp{.kind = RegisterOp::Kind::kPut,
                    .value = std::move(value),
                    .invoke = invoke,
                    .response = response,
                    .existed = existed};
}
RegisterOp Delete(uint64_t invoke, uint64_t response, bool existed) {
  return RegisterOp{.kind = RegisterOp::Kind::kDelete, .invoke = invoke, .response = response, .existed = existed};
}
RegisterOp Get(std::optional<std::string> read, uint64_t invoke, uint64_t response) {
  return RegisterOp{.kind = RegisterOp::Kind::kGet, .invoke = invoke, .response = response, .read = std::move(read)};
}

TEST(Linearizability, SequentialHistory) {
  EXPECT_TRUE(CheckRegisterHistory({Get(std::nullopt, 1, 2), Put("a", 3, 4, false), Get("a", 5, 6),
                                    Put("b", 7, 8, true), Delete(9, 10, true), Get(std::nullopt, 11, 12)})
                  .ok);
}

TEST(Linearizability, StaleReadAfterWriteCompleted) {
  const auto result = CheckRegisterHistory({Put("a", 1, 2, false), Put("b", 3, 4, true), Get("a", 5, 6)});
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.explanation.find("get()"), std::string::npos);
}

TEST(Linearizability, ConcurrentWriteMayBeSeenEitherWay) {
  EXPECT_TRUE(CheckRegisterHistory({Put("a", 1, 10, false), Get("a", 2, 3), Get("a", 4, 5)}).ok);
  EXPECT_TRUE(CheckRegisterHistory({Put("a", 1, 10, false), Get(std::nullopt, 2, 3), Get("a", 4, 5)}).ok);
  // ... but once seen it cannot be unseen.
  EXPECT_FALSE(CheckRegisterHistory({Put("a", 1, 10, false), Get("a", 2, 3), Get(std::nullopt, 4, 5)}).ok);
}

TEST(Linearizability, WriteWithoutResponseMayTakeEffectLateOrNever) {
  EXPECT_TRUE(CheckRegisterHistory({Put("a", 1, kNoResponse, false), Get(std::nullopt, 5, 6), Get("a", 7, 8)}).ok);
  EXPECT_TRUE(CheckRegisterHistory({Put("a", 1, kNoResponse, false), Get(std::nullopt, 5, 6)}).ok);
  // It takes effect once at most: seen, overwritten, it cannot come back.
  EXPECT_FALSE(
      CheckRegisterHistory({Put("a", 1, kNoResponse, false), Get("a", 2, 3), Put("b", 4, 5, true), Get("a", 6, 7)}).ok);
}

TEST(Linearizability, RecordedResultsMustFit) {
  // A delete that answered "existed" needs a value before it.
  EXPECT_FALSE(CheckRegisterHistory({Delete(1, 2, true)}).ok);
  EXPECT_TRUE(CheckRegisterHistory({Put("a", 1, kNoResponse, false), Delete(2, 3, true)}).ok);
  // A retried put applied twice would answer "existed" for its own value.
  EXPECT_FALSE(CheckRegisterHistory({Put("a", 1, 2, false), Delete(3, 4, true), Put("b", 5, 6, true)}).ok);
}

TEST(Linearizability, ManyConcurrentOperationsStayCheap) {
  std::vector<RegisterOp> ops;
  uint64_t t = 1;
  for (int i = 0; i < 20; ++i) {
    ops.push_back(Put("v" + std::to_string(i), t, kNoResponse, false));
    t += 2;
  }
  ops.push_back(Get("v7", t, t + 1));
  const auto result = CheckRegisterHistory(ops);
  EXPECT_TRUE(result.ok);
  EXPECT_FALSE(result.inconclusive);
}

}  // namespace
}  // namespace cairn::replication::test
