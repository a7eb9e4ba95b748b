// ChainReplica alone: each test feeds inputs by hand and reads the outputs (docs/design/cluster.md,
// "Writes", "Reads", "Resync"). The simulator (chain_sim_test) covers the protocol as a whole.
#include "replication/chain.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/crc32c.h"

namespace cairn::replication {
namespace {

constexpr ChainId kChain = 1;
const Endpoint kClient = Endpoint::Client(9);

Member M(NodeId node, uint64_t incarnation = 1, bool serving = true) { return Member{{node, incarnation}, serving}; }

ChainView View(uint64_t version, std::vector<Member> members) { return ChainView{kChain, version, std::move(members)}; }

Update Up(uint64_t version, uint64_t seq, std::string key, std::string value, uint64_t first_seq = 1) {
  return Update{kChain, version, seq, first_seq, /*op_id=*/1000 + seq, {KvMutation{std::move(key), std::move(value)}},
                "0"};
}

// The messages of type T in `effects` sent to `to`.
template <class T>
std::vector<T> Sent(const Effects& effects, Endpoint to) {
  std::vector<T> out;
  for (const Outbound& send : effects.sends) {
    if (send.to == to) {
      if (const T* message = std::get_if<T>(&send.message)) out.push_back(*message);
    }
  }
  return out;
}

// A replica of node `node` under `view`, up as a founding member (empty state).
ChainReplica Founding(NodeId node, const ChainView& view, ReplicaOptions options = {}) {
  ChainReplica replica(kChain, node, options);
  replica.Bootstrap(1);
  (void)replica.OnView(view);
  return replica;
}

// Completes every durable write in `effects`, returning the outputs.
Effects Persist(ChainReplica& replica, const Effects& effects) {
  Effects all;
  for (const DiskWrite& write : effects.disk_writes) {
    Effects out = replica.OnDiskWriteDone(write.id);
    all.sends.insert(all.sends.end(), out.sends.begin(), out.sends.end());
    all.reports.insert(all.reports.end(), out.reports.begin(), out.reports.end());
    if (out.blob_copy) all.blob_copy = std::move(out.blob_copy);
    all.copy_complete = all.copy_complete || out.copy_complete;
  }
  return all;
}

TEST(ChainReplica, RefusesOtherChainVersions) {
  ChainReplica middle = Founding(2, View(2, {M(1), M(2), M(3)}));

  Effects older = middle.OnMessage(Endpoint::Replica(1), Up(/*version=*/1, 1, "k", "a"));
  ASSERT_EQ(Sent<StaleChain>(older, Endpoint::Replica(1)).size(), 1u);
  EXPECT_EQ(Sent<StaleChain>(older, Endpoint::Replica(1))[0].version, 2u);
  EXPECT_FALSE(older.refresh_view);

  // A version it has not seen yet: refused too, and the replica wants to re-read the table.
  Effects newer = middle.OnMessage(Endpoint::Replica(1), Up(/*version=*/3, 1, "k", "a"));
  EXPECT_EQ(Sent<StaleChain>(newer, Endpoint::Replica(1)).size(), 1u);
  EXPECT_TRUE(newer.refresh_view);
  EXPECT_TRUE(newer.disk_writes.empty());
  EXPECT_EQ(middle.last_applied(), 0u);

  Effects read = middle.OnMessage(kClient, ClientRead{1, kChain, /*chain_version=*/3, "k"});
  ASSERT_EQ(Sent<ClientReadReply>(read, kClient).size(), 1u);
  EXPECT_TRUE(Sent<ClientReadReply>(read, kClient)[0].status.IsBusy());

  Effects current = middle.OnMessage(Endpoint::Replica(1), Up(/*version=*/2, 1, "k", "a"));
  EXPECT_EQ(middle.last_applied(), 1u);
  EXPECT_EQ(current.disk_writes.size(), 1u);
  ASSERT_EQ(Sent<Update>(current, Endpoint::Replica(3)).size(), 1u);  // persisted and forwarded at once
  EXPECT_EQ(Sent<Update>(current, Endpoint::Replica(3))[0].chain_version, 2u);
}

// Peer reports: a predecessor names its successor stalled only when that successor's own disk stops
// taking updates, not when the successor waits on a slow successor of its own.
TEST(ChainReplica, StalledSuccessorIsTheOneThatStopsTakingUpdates) {
  const ChainView view = View(1, {M(1), M(2), M(3)});
  ChainReplica head = Founding(1, view);
  ChainReplica middle = Founding(2, view);
  Effects write = head.OnMessage(kClient, ClientWrite{1, kChain, 1, /*op_id=*/1, KvStateMachine::Put("k", "a")});
  (void)Persist(head, write);
  ASSERT_EQ(Sent<Update>(write, Endpoint::Replica(2)).size(), 1u);
  // The middle takes the update and persists it; the tail never answers (a hung disk).
  Effects forwarded = middle.OnMessage(Endpoint::Replica(1), Sent<Update>(write, Endpoint::Replica(2))[0]);
  ASSERT_EQ(Sent<Update>(forwarded, Endpoint::Replica(3)).size(), 1u);
  EXPECT_TRUE(Sent<Ack>(Persist(middle, forwarded), Endpoint::Replica(1)).empty());  // U waits on the tail

  for (int tick = 1; tick <= 10; ++tick) {
    Effects head_tick = head.OnTick();
    // The head resends; the middle answers the resend with what its disk holds.
    for (const Update& resent : Sent<Update>(head_tick, Endpoint::Replica(2))) {
      Effects answer = middle.OnMessage(Endpoint::Replica(1), resent);
      for (const Ack& ack : Sent<Ack>(answer, Endpoint::Replica(1))) {
        EXPECT_EQ(ack.seq, 0u);
        EXPECT_EQ(ack.durable, 1u);
        (void)head.OnMessage(Endpoint::Replica(2), ack);
      }
    }
    (void)middle.OnTick();
  }
  EXPECT_FALSE(head.StalledSuccessor()) << "the middle holds every update; its successor is the slow one";
  ASSERT_TRUE(middle.StalledSuccessor());
  EXPECT_EQ(middle.StalledSuccessor()->successor, (MemberId{3, 1}));
  EXPECT_GE(middle.StalledSuccessor()->ticks, 9u);

  // The tail answers at last: nobody stalls, and the write commits.
  Effects tail_ack = middle.OnMessage(Endpoint::Replica(3), Ack{kChain, 1, 1, 1});
  ASSERT_EQ(Sent<Ack>(tail_ack, Endpoint::Replica(1)).size(), 1u);
  Effects committed = head.OnMessage(Endpoint::Replica(2), Sent<Ack>(tail_ack, Endpoint::Replica(1))[0]);
  EXPECT_EQ(Sent<ClientWriteReply>(committed, kClient).size(), 1u);
  (void)middle.OnTick();
  (void)head.OnTick();
  EXPECT_FALSE(middle.StalledSuccessor());
  EXPECT_FALSE(head.StalledSuccessor());

  // Now the middle stops answering: the head's next update is neither persisted nor acknowledged.
  Effects second = head.OnMessage(kClient, ClientWrite{2, kChain, 1, /*op_id=*/2, KvStateMachine::Put("k", "b")});
  (void)Persist(head, second);
  for (int tick = 1; tick <= 10; ++tick) (void)head.OnTick();
  ASSERT_TRUE(head.StalledSuccessor());
  EXPECT_EQ(head.StalledSuccessor()->successor, (MemberId{2, 1}));

  // A new view (the manager's answer) starts counting again.
  (void)head.OnView(View(2, {M(1), M(3)}));
  EXPECT_FALSE(head.StalledSuccessor());
}

TEST(ChainReplica, ReorderedUpdateWaitsAndGapAsksForResync) {
  ChainReplica middle = Founding(2, View(1, {M(1), M(2), M(3)}));

  // seq 2 before seq 1, with first_seq 1: only reordering, dropped until the retransmission.
  Effects early = middle.OnMessage(Endpoint::Replica(1), Up(1, 2, "k", "b"));
  EXPECT_TRUE(early.disk_writes.empty());
  EXPECT_TRUE(early.reports.empty());
  EXPECT_EQ(middle.last_applied(), 0u);

  (void)middle.OnMessage(Endpoint::Replica(1), Up(1, 1, "k", "a"));
  (void)middle.OnMessage(Endpoint::Replica(1), Up(1, 2, "k", "b"));
  EXPECT_EQ(middle.last_applied(), 2u);

  // The predecessor forwards from seq 5 on: 3 and 4 will never come.
  Effects gap = middle.OnMessage(Endpoint::Replica(1), Up(1, 5, "k", "e", /*first_seq=*/5));
  ASSERT_EQ(gap.reports.size(), 1u);
  EXPECT_EQ(gap.reports[0].kind, ManagerReport::Kind::kNeedsResync);
  EXPECT_EQ(middle.phase(), ChainReplica::Phase::kIdle);
  EXPECT_EQ(middle.last_applied(), 2u);
}

TEST(ChainReplica, MiddleAcknowledgesWhenDurableAndSuccessorAcknowledged) {
  for (bool disk_first : {true, false}) {
    SCOPED_TRACE(disk_first ? "disk first" : "successor first");
    ChainReplica middle = Founding(2, View(1, {M(1), M(2), M(3)}));
    Effects update = middle.OnMessage(Endpoint::Replica(1), Up(1, 1, "k", "a"));
    EXPECT_TRUE(Sent<Ack>(update, Endpoint::Replica(1)).empty());
    Effects first = disk_first ? Persist(middle, update) : middle.OnMessage(Endpoint::Replica(3), Ack{kChain, 1, 1});
    EXPECT_TRUE(Sent<Ack>(first, Endpoint::Replica(1)).empty());
    Effects second = disk_first ? middle.OnMessage(Endpoint::Replica(3), Ack{kChain, 1, 1}) : Persist(middle, update);
    ASSERT_EQ(Sent<Ack>(second, Endpoint::Replica(1)).size(), 1u);
    EXPECT_EQ(Sent<Ack>(second, Endpoint::Replica(1))[0].seq, 1u);
  }
}

TEST(ChainReplica, TailAcknowledgesWhenDurable) {
  ChainReplica tail = Founding(3, View(1, {M(1), M(2), M(3)}));
  Effects update = tail.OnMessage(Endpoint::Replica(2), Up(1, 1, "k", "a"));
  EXPECT_TRUE(Sent<Ack>(update, Endpoint::Replica(2)).empty());
  EXPECT_TRUE(Sent<Update>(update, Endpoint::Replica(1)).empty());
  Effects durable = Persist(tail, update);
  ASSERT_EQ(Sent<Ack>(durable, Endpoint::Replica(2)).size(), 1u);

  // The deliberate bug the simulator must catch (ChainSimCatchesBugs.TailAcknowledgesBeforeDurable).
  ChainReplica buggy =
      Founding(3, View(1, {M(1), M(2), M(3)}), ReplicaOptions{.faults = {.tail_acks_before_durable = true}});
  EXPECT_EQ(Sent<Ack>(buggy.OnMessage(Endpoint::Replica(2), Up(1, 1, "k", "a")), Endpoint::Replica(2)).size(), 1u);
}

TEST(ChainReplica, RetransmittedUpdateIsAcknowledgedAgain) {
  ChainReplica tail = Founding(3, View(1, {M(1), M(2), M(3)}));
  (void)Persist(tail, tail.OnMessage(Endpoint::Replica(2), Up(1, 1, "k", "a")));
  Effects again = tail.OnMessage(Endpoint::Replica(2), Up(1, 1, "k", "a"));
  EXPECT_TRUE(again.disk_writes.empty());
  ASSERT_EQ(Sent<Ack>(again, Endpoint::Replica(2)).size(), 1u);
  EXPECT_EQ(tail.applied().ops.size(), 1u);
}

TEST(ChainReplica, HeadAnswersAtCommitAndRetriesGetTheRecordedResult) {
  ChainReplica head = Founding(1, View(1, {M(1), M(2)}));
  const ClientWrite write{/*request_id=*/1, kChain, 1, /*op_id=*/77, KvStateMachine::Put("k", "a")};
  Effects first = head.OnMessage(kClient, write);
  ASSERT_EQ(Sent<Update>(first, Endpoint::Replica(2)).size(), 1u);
  EXPECT_EQ(Sent<Update>(first, Endpoint::Replica(2))[0].seq, 1u);
  EXPECT_TRUE(Sent<ClientWriteReply>(first, kClient).empty());

  // A retry while the update is in flight: no second update, no answer yet.
  ClientWrite retry = write;
  retry.request_id = 2;
  Effects pending = head.OnMessage(kClient, retry);
  EXPECT_TRUE(pending.sends.empty());
  EXPECT_TRUE(pending.disk_writes.empty());

  EXPECT_TRUE(Sent<ClientWriteReply>(Persist(head, first), kClient).empty());  // not committed yet
  Effects commit = head.OnMessage(Endpoint::Replica(2), Ack{kChain, 1, 1});
  const auto replies = Sent<ClientWriteReply>(commit, kClient);
  ASSERT_EQ(replies.size(), 2u);
  for (const auto& reply : replies) {
    EXPECT_TRUE(reply.status.ok());
    EXPECT_EQ(reply.result, (WriteResult{1, "0"}));
  }

  // After the commit a retry is answered at once, from the record.
  retry.request_id = 3;
  Effects late = head.OnMessage(kClient, retry);
  EXPECT_TRUE(late.disk_writes.empty());
  ASSERT_EQ(Sent<ClientWriteReply>(late, kClient).size(), 1u);
  EXPECT_EQ(Sent<ClientWriteReply>(late, kClient)[0].result, (WriteResult{1, "0"}));
  EXPECT_TRUE(Sent<Update>(late, Endpoint::Replica(2)).empty());

  // A new op id is a new update.
  Effects next = head.OnMessage(kClient, ClientWrite{4, kChain, 1, /*op_id=*/78, KvStateMachine::Put("k", "b")});
  ASSERT_EQ(Sent<Update>(next, Endpoint::Replica(2)).size(), 1u);
  EXPECT_EQ(Sent<Update>(next, Endpoint::Replica(2))[0].seq, 2u);
}

// Results are kept for retries for op_retention_ms of stamps, then forgotten by updates that
// name them, the same way at every replica; an operation issued so long ago that its result may
// be forgotten is refused as of unknown outcome (Timeout), never applied again.
TEST(ChainReplica, OldResultsAreForgottenEverywhereAndLateRetriesRefused) {
  ReplicaOptions options;
  options.op_retention_ms = 1000;
  options.forget_batch = 2;
  ChainReplica head = Founding(1, View(1, {M(1), M(2)}), options);
  ChainReplica tail = Founding(2, View(1, {M(1), M(2)}), options);
  uint64_t request = 0;
  // Writes op 100 + i, issued at t0 + 100 i ms, each committed before the next.
  const uint64_t t0 = 1'700'000'000'000;
  auto write = [&](OpId op, uint64_t issued) -> std::vector<Update> {
    ClientWrite w{++request, kChain, 1, op, KvStateMachine::Put("k" + std::to_string(op), "v")};
    w.issued_ms = issued;
    Effects at_head = head.OnMessage(kClient, w);
    auto updates = Sent<Update>(at_head, Endpoint::Replica(2));
    (void)Persist(head, at_head);
    for (const Update& u : updates) {
      Effects acked = Persist(tail, tail.OnMessage(Endpoint::Replica(1), u));
      for (const Ack& ack : Sent<Ack>(acked, Endpoint::Replica(1))) (void)head.OnMessage(Endpoint::Replica(2), ack);
    }
    return updates;
  };
  for (int i = 0; i < 10; ++i) ASSERT_EQ(write(100 + i, t0 + 100 * i).size(), 1u);
  EXPECT_EQ(head.applied().ops.size(), 10u) << "nothing is a second old yet";
  EXPECT_EQ(head.applied().stamp_ms, t0 + 900);

  // Stamps never go back: a writer with a slow clock gets the latest stamp.
  auto slow = write(200, t0 + 450);
  ASSERT_EQ(slow.size(), 1u);
  EXPECT_EQ(slow[0].stamp_ms, t0 + 900);

  // At t0 + 1150, ops 100 and 101 (stamped t0 and t0 + 100) are past the retention: at most two
  // per update are forgotten, oldest first.
  auto later = write(300, t0 + 1150);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].forget, (std::vector<OpId>{100, 101}));
  auto next = write(301, t0 + 1160);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_TRUE(next[0].forget.empty()) << "op 102 (t0 + 200) is 960 ms old: kept";
  EXPECT_EQ(head.applied().ops.count(100), 0u);
  EXPECT_EQ(head.applied().ops.count(102), 1u);
  EXPECT_EQ(head.applied(), tail.applied());
  EXPECT_EQ(head.durable().store, tail.durable().store);
  EXPECT_EQ(tail.durable().store.ops.count(101), 0u);

  // A retry of a kept result is answered from it; a retry of op 100, issued at t0, is refused:
  // its result is gone, and applying it again could apply it twice.
  ClientWrite retry{++request, kChain, 1, 102, KvStateMachine::Put("k102", "v")};
  retry.issued_ms = t0 + 200;
  auto kept = Sent<ClientWriteReply>(head.OnMessage(kClient, retry), kClient);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_TRUE(kept[0].status.ok()) << kept[0].status;
  EXPECT_EQ(kept[0].result.seq, 3u);
  ClientWrite late{++request, kChain, 1, 100, KvStateMachine::Put("k100", "again")};
  late.issued_ms = t0;
  Effects refused = head.OnMessage(kClient, late);
  ASSERT_EQ(Sent<ClientWriteReply>(refused, kClient).size(), 1u);
  EXPECT_TRUE(Sent<ClientWriteReply>(refused, kClient)[0].status.IsTimeout());
  EXPECT_TRUE(Sent<Update>(refused, Endpoint::Replica(2)).empty());
  // So is a new operation issued over half the retention before the latest stamp (clock skew).
  late.op_id = 400;
  late.issued_ms = t0 + 1160 - 501;
  EXPECT_TRUE(Sent<ClientWriteReply>(head.OnMessage(kClient, late), kClient)[0].status.IsTimeout());
  late.issued_ms = t0 + 1160 - 499;
  EXPECT_EQ(Sent<Update>(head.OnMessage(kClient, late), Endpoint::Replica(2)).size(), 1u);

  // A new head (the tail, alone) picks up forgetting where the old one was, from its own state.
  (void)tail.OnView(View(2, {M(2)}));
  ClientWrite at_new{++request, kChain, 2, 500, KvStateMachine::Put("k500", "v")};
  at_new.issued_ms = t0 + 1400;
  (void)Persist(tail, tail.OnMessage(kClient, at_new));
  EXPECT_EQ(tail.applied().ops.count(102), 0u);
  EXPECT_EQ(tail.applied().ops.count(103), 0u);
  EXPECT_EQ(tail.applied().ops.count(104), 1u) << "two per update";
}

// A head with a clock keeps the stamps near it: a writer whose clock runs ahead by more than a
// quarter of the retention is refused (else its stamp would make everybody else's writes look
// too old to take), and so is an unstamped write.
TEST(ChainReplica, AHeadWithAClockRefusesWritesFromTheFutureAndUnstamped) {
  uint64_t now = 1'700'000'000'000;
  ReplicaOptions options;
  options.op_retention_ms = 1000;
  options.clock_ms = [&now] { return now; };
  ChainReplica head = Founding(1, View(1, {M(1)}), options);
  auto taken = [&](OpId op, uint64_t issued) {
    ClientWrite w{op, kChain, 1, op, KvStateMachine::Put("k", "v")};
    w.issued_ms = issued;
    (void)Persist(head, head.OnMessage(kClient, w));
    return head.applied().ops.count(op) == 1;
  };
  auto refusal = [&](OpId op, uint64_t issued) {
    ClientWrite w{op, kChain, 1, op, KvStateMachine::Put("k", "v")};
    w.issued_ms = issued;
    auto replies = Sent<ClientWriteReply>(head.OnMessage(kClient, w), kClient);
    return replies.size() == 1 ? replies[0].status : Status::Busy("no refusal");
  };
  EXPECT_TRUE(taken(1, now + 250));  // a quarter of the retention ahead: taken
  EXPECT_EQ(head.applied().stamp_ms, now + 250);
  EXPECT_TRUE(refusal(2, now + 251).IsTimeout());
  EXPECT_TRUE(refusal(3, 0).IsInvalidArgument());
  EXPECT_EQ(head.applied().ops.size(), 1u);
  // A writer on time is not refused because of the one ahead: the stamps moved by 250 ms only.
  EXPECT_TRUE(taken(4, now - 200));
  // Nor one whose clock lags a little; one that lags more than max_issued_age_ms is refused.
  EXPECT_TRUE(refusal(5, now - options.max_issued_age_ms - 1).IsTimeout());
}

// A committed delete's tombstone is purged by a later update, on every replica alike; one not
// known committed is kept, and so is one the purging update writes again.
TEST(ChainReplica, CommittedTombstonesArePurgedEverywhere) {
  ChainReplica head = Founding(1, View(1, {M(1), M(2)}));
  ChainReplica tail = Founding(2, View(1, {M(1), M(2)}));
  uint64_t request = 0;
  // Sends a write through head and tail; commits it unless `commit` is false. The updates sent.
  auto write = [&](std::string command, bool commit = true) {
    ClientWrite w{++request, kChain, 1, 100 + request, std::move(command)};
    Effects at_head = head.OnMessage(kClient, w);
    auto updates = Sent<Update>(at_head, Endpoint::Replica(2));
    (void)Persist(head, at_head);
    for (const Update& u : updates) {
      Effects acked = Persist(tail, tail.OnMessage(Endpoint::Replica(1), u));
      if (!commit) continue;
      for (const Ack& ack : Sent<Ack>(acked, Endpoint::Replica(1))) (void)head.OnMessage(Endpoint::Replica(2), ack);
    }
    return updates;
  };
  write(KvStateMachine::Put("a", "1"));
  write(KvStateMachine::Put("b", "1"));
  write(KvStateMachine::Delete("a"));  // seq 3, committed
  ASSERT_EQ(head.applied().records.count("a"), 1u);
  auto next = write(KvStateMachine::Put("c", "1"));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].purge, (std::vector<std::string>{"a"}));
  EXPECT_EQ(head.applied().records.count("a"), 0u);
  EXPECT_EQ(tail.applied().records.count("a"), 0u);
  EXPECT_EQ(head.durable().store, tail.durable().store);

  // A delete not yet committed keeps its tombstone; once committed, it goes with the next write,
  // unless that write is of the same key (its new version replaces the tombstone instead).
  write(KvStateMachine::Delete("b"), /*commit=*/false);  // seq 5: applied everywhere, not committed
  auto while_pending = write(KvStateMachine::Put("d", "1"), /*commit=*/false);
  ASSERT_EQ(while_pending.size(), 1u);
  EXPECT_TRUE(while_pending[0].purge.empty());
  // Both commit now (the tail acknowledges everything it holds).
  (void)head.OnMessage(Endpoint::Replica(2), Ack{kChain, 1, head.last_applied()});
  auto same_key = write(KvStateMachine::Put("b", "2"));
  ASSERT_EQ(same_key.size(), 1u);
  EXPECT_TRUE(same_key[0].purge.empty());
  EXPECT_EQ(head.applied().records.at("b"), (Record{"2", same_key[0].seq}));
  write(KvStateMachine::Delete("c"));
  auto last = write(KvStateMachine::Put("e", "1"));
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].purge, (std::vector<std::string>{"c"}));
  EXPECT_EQ(head.applied(), tail.applied());
  EXPECT_EQ(head.durable().store, tail.durable().store);
  for (const auto& [key, record] : head.applied().records) EXPECT_TRUE(record.value.has_value()) << key;
  // Reads of a purged key answer "no value", as they did for its tombstone.
  auto reply = Sent<ClientReadReply>(tail.OnMessage(kClient, ClientRead{1, kChain, 1, "c"}), kClient);
  ASSERT_EQ(reply.size(), 1u);
  EXPECT_TRUE(reply[0].status.ok());
  EXPECT_FALSE(reply[0].record.value.has_value());
}

TEST(ChainReplica, OnlyTheHeadTakesWrites) {
  ChainReplica middle = Founding(2, View(1, {M(1), M(2), M(3)}));
  Effects out = middle.OnMessage(kClient, ClientWrite{1, kChain, 1, 5, KvStateMachine::Put("k", "a")});
  ASSERT_EQ(Sent<ClientWriteReply>(out, kClient).size(), 1u);
  EXPECT_TRUE(Sent<ClientWriteReply>(out, kClient)[0].status.IsBusy());
  EXPECT_EQ(middle.last_applied(), 0u);
}

TEST(ChainReplica, HeadAnnouncesTheCommit) {
  ChainReplica head = Founding(1, View(1, {M(1), M(2), M(3)}));
  Effects write = head.OnMessage(kClient, ClientWrite{1, kChain, 1, 7, KvStateMachine::Put("k", "a")});
  (void)Persist(head, write);
  Effects commit = head.OnMessage(Endpoint::Replica(2), Ack{kChain, 1, 1});
  for (NodeId member : {2u, 3u}) {
    ASSERT_EQ(Sent<Commit>(commit, Endpoint::Replica(member)).size(), 1u);
    EXPECT_EQ(Sent<Commit>(commit, Endpoint::Replica(member))[0].seq, 1u);
  }
}

TEST(ChainReplica, CraqReadOfUncommittedKeyAsksTheHead) {
  ChainReplica middle = Founding(2, View(1, {M(1), M(2), M(3)}));
  // seq 1 (k=a): durable here, acknowledged by the tail, and announced committed by the head.
  (void)Persist(middle, middle.OnMessage(Endpoint::Replica(1), Up(1, 1, "k", "a")));
  (void)middle.OnMessage(Endpoint::Replica(3), Ack{kChain, 1, 1});
  (void)middle.OnMessage(Endpoint::Replica(1), Commit{kChain, 1, 1});
  // seq 2 (k=b): durable and acknowledged here, but not known committed: k is dirty.
  (void)Persist(middle, middle.OnMessage(Endpoint::Replica(1), Up(1, 2, "k", "b")));
  (void)middle.OnMessage(Endpoint::Replica(3), Ack{kChain, 1, 2});

  Effects read = middle.OnMessage(kClient, ClientRead{1, kChain, 1, "k"});
  EXPECT_TRUE(Sent<ClientReadReply>(read, kClient).empty());
  const auto queries = Sent<VersionQuery>(read, Endpoint::Replica(1));
  ASSERT_EQ(queries.size(), 1u);

  // The head says seq 1 is the committed version of k: the answer is a, not b.
  Effects answer = middle.OnMessage(Endpoint::Replica(1), VersionReply{kChain, 1, queries[0].query_id, {}, 1});
  ASSERT_EQ(Sent<ClientReadReply>(answer, kClient).size(), 1u);
  EXPECT_EQ(Sent<ClientReadReply>(answer, kClient)[0].record, (Record{"a", 1}));

  // Once the head has committed seq 2, the same question gets b.
  Effects read2 = middle.OnMessage(kClient, ClientRead{2, kChain, 1, "k"});
  const auto query2 = Sent<VersionQuery>(read2, Endpoint::Replica(1));
  ASSERT_EQ(query2.size(), 1u);
  Effects answer2 = middle.OnMessage(Endpoint::Replica(1), VersionReply{kChain, 1, query2[0].query_id, {}, 2});
  ASSERT_EQ(Sent<ClientReadReply>(answer2, kClient).size(), 1u);
  EXPECT_EQ(Sent<ClientReadReply>(answer2, kClient)[0].record, (Record{"b", 2}));

  // A key whose last update is known committed is answered locally.
  Effects clean = middle.OnMessage(kClient, ClientRead{3, kChain, 1, "other"});
  EXPECT_TRUE(Sent<VersionQuery>(clean, Endpoint::Replica(1)).empty());
  ASSERT_EQ(Sent<ClientReadReply>(clean, kClient).size(), 1u);
  EXPECT_EQ(Sent<ClientReadReply>(clean, kClient)[0].record, Record{});

  // And after the head's announcement, k too.
  (void)middle.OnMessage(Endpoint::Replica(1), Commit{kChain, 1, 2});
  Effects local = middle.OnMessage(kClient, ClientRead{4, kChain, 1, "k"});
  EXPECT_TRUE(Sent<VersionQuery>(local, Endpoint::Replica(1)).empty());
  ASSERT_EQ(Sent<ClientReadReply>(local, kClient).size(), 1u);
  EXPECT_EQ(Sent<ClientReadReply>(local, kClient)[0].record, (Record{"b", 2}));
}

TEST(ChainReplica, HeadAnswersItsCommittedVersion) {
  ChainReplica head = Founding(1, View(1, {M(1), M(2)}));
  (void)Persist(head, head.OnMessage(kClient, ClientWrite{1, kChain, 1, 7, KvStateMachine::Put("k", "a")}));
  (void)head.OnMessage(Endpoint::Replica(2), Ack{kChain, 1, 1});
  (void)Persist(
      head, head.OnMessage(kClient, ClientWrite{2, kChain, 1, 8, KvStateMachine::Put("k", "b")}));  // not acknowledged
  Effects read = head.OnMessage(kClient, ClientRead{3, kChain, 1, "k"});
  ASSERT_EQ(Sent<ClientReadReply>(read, kClient).size(), 1u);
  EXPECT_EQ(Sent<ClientReadReply>(read, kClient)[0].record, (Record{"a", 1}));

  Effects query = head.OnMessage(Endpoint::Replica(2), VersionQuery{kChain, 1, 5, "k"});
  ASSERT_EQ(Sent<VersionReply>(query, Endpoint::Replica(2)).size(), 1u);
  EXPECT_EQ(Sent<VersionReply>(query, Endpoint::Replica(2))[0].seq, 1u);
}

TEST(ChainReplica, TailDoesNotShowWhatIsNotCommitted) {
  // The tail has seq 1 durably and acknowledged it, but the head (whose copy may not be durable
  // yet) has not committed it: a read at the tail asks the head.
  ChainReplica tail = Founding(3, View(1, {M(1), M(2), M(3)}));
  (void)Persist(tail, tail.OnMessage(Endpoint::Replica(2), Up(1, 1, "k", "a")));
  EXPECT_EQ(tail.acked_level(), 1u);
  Effects read = tail.OnMessage(kClient, ClientRead{1, kChain, 1, "k"});
  EXPECT_TRUE(Sent<ClientReadReply>(read, kClient).empty());
  EXPECT_EQ(Sent<VersionQuery>(read, Endpoint::Replica(1)).size(), 1u);
}

TEST(ChainReplica, FencedReplicaRefusesAndStaysSilent) {
  ChainReplica head = Founding(1, View(1, {M(1), M(2)}));
  head.SetFenced(true);
  Effects write = head.OnMessage(kClient, ClientWrite{1, kChain, 1, 5, KvStateMachine::Put("k", "a")});
  ASSERT_EQ(Sent<ClientWriteReply>(write, kClient).size(), 1u);
  EXPECT_TRUE(Sent<ClientWriteReply>(write, kClient)[0].status.IsBusy());
  EXPECT_EQ(head.last_applied(), 0u);

  ChainReplica tail = Founding(2, View(1, {M(1), M(2)}));
  Effects update = tail.OnMessage(Endpoint::Replica(1), Up(1, 1, "k", "a"));
  tail.SetFenced(true);
  EXPECT_TRUE(Persist(tail, update).sends.empty());  // durable, but no acknowledgement while fenced
  EXPECT_TRUE(tail.OnTick().sends.empty());
  tail.SetFenced(false);
  EXPECT_EQ(Sent<Ack>(tail.OnTick(), Endpoint::Replica(1)).size(), 1u);
}

TEST(ChainReplica, SyncingTailRecordsNewUpdatesThenInstallsTheSnapshot) {
  // Node 3 held k=old and stale=x from an earlier life; it comes back under incarnation 2.
  ChainReplica replica(kChain, 3);
  replica.Bootstrap(1);
  (void)replica.OnView(View(1, {M(3)}));
  (void)Persist(replica, replica.OnMessage(kClient, ClientWrite{1, kChain, 1, 500, KvStateMachine::Put("k", "old")}));
  (void)Persist(replica, replica.OnMessage(kClient, ClientWrite{2, kChain, 1, 501, KvStateMachine::Put("stale", "x")}));
  replica.Crash();
  replica.Start(2);
  EXPECT_EQ(replica.durable().store.records.size(), 2u);

  // Appended after node 1 as the syncing tail: it asks for a snapshot.
  Effects joined = replica.OnView(View(5, {M(1), M(3, 2, /*serving=*/false)}));
  EXPECT_EQ(replica.phase(), ChainReplica::Phase::kSyncing);
  EXPECT_EQ(Sent<SyncRequest>(joined, Endpoint::Replica(1)).size(), 1u);

  // New updates arrive first (node 1 forwards from seq 4 on) and are acknowledged when durable.
  Effects update = replica.OnMessage(Endpoint::Replica(1), Up(5, 4, "j", "new", /*first_seq=*/4));
  Effects durable = Persist(replica, update);
  ASSERT_EQ(Sent<Ack>(durable, Endpoint::Replica(1)).size(), 1u);
  EXPECT_EQ(Sent<Ack>(durable, Endpoint::Replica(1))[0].seq, 4u);

  // Node 1's snapshot, taken at seq 3, knows nothing of `stale` and has k=mine.
  StoreState snapshot;
  snapshot.records["k"] = Record{"mine", 3};
  snapshot.ops[900] = WriteResult{3, "0"};
  snapshot.last_seq = 3;
  Effects install = replica.OnMessage(Endpoint::Replica(1), SyncData{kChain, 5, snapshot});
  EXPECT_EQ(replica.phase(), ChainReplica::Phase::kReady);
  EXPECT_EQ(replica.applied().records.size(), 2u);
  EXPECT_EQ(replica.applied().records.at("k"), (Record{"mine", 3}));
  EXPECT_EQ(replica.applied().records.at("j"), (Record{"new", 4}));
  EXPECT_EQ(replica.last_applied(), 4u);
  EXPECT_TRUE(install.reports.empty());           // not before the copy is durable
  EXPECT_TRUE(replica.OnTick().reports.empty());  // nor on a tick while its write is in flight

  Effects done = Persist(replica, install);
  ASSERT_EQ(done.reports.size(), 1u);
  EXPECT_EQ(done.reports[0].kind, ManagerReport::Kind::kSyncDone);
  EXPECT_EQ(done.reports[0].member, (MemberId{3, 2}));
  EXPECT_EQ(replica.durable().store, replica.applied());

  // Marked serving: it answers reads, once it knows what is committed (until then it asks the head).
  (void)replica.OnView(View(6, {M(1), M(3, 2)}));
  Effects ask = replica.OnMessage(kClient, ClientRead{6, kChain, 6, "k"});
  EXPECT_EQ(Sent<VersionQuery>(ask, Endpoint::Replica(1)).size(), 1u);
  (void)replica.OnMessage(Endpoint::Replica(1), Commit{kChain, 6, 4});
  Effects read = replica.OnMessage(kClient, ClientRead{7, kChain, 6, "k"});
  ASSERT_EQ(Sent<ClientReadReply>(read, kClient).size(), 1u);
  EXPECT_EQ(Sent<ClientReadReply>(read, kClient)[0].record, (Record{"mine", 3}));
}

TEST(ChainReplica, CrashKeepsOnlyDurableWritesAndTheOldMemberIsNotThisOne) {
  ChainReplica alone = Founding(1, View(1, {M(1)}));
  (void)Persist(alone, alone.OnMessage(kClient, ClientWrite{1, kChain, 1, 10, KvStateMachine::Put("k", "a")}));
  (void)alone.OnMessage(kClient, ClientWrite{2, kChain, 1, 11, KvStateMachine::Put("k", "b")});  // never durable
  EXPECT_EQ(alone.last_applied(), 2u);
  alone.Crash();
  alone.Start(2);
  EXPECT_EQ(alone.last_applied(), 1u);
  EXPECT_EQ(alone.durable().store.records.at("k"), (Record{"a", 1}));

  // The table still names incarnation 1: that member is not this process.
  (void)alone.OnView(View(2, {M(1, /*incarnation=*/1)}));
  EXPECT_EQ(alone.phase(), ChainReplica::Phase::kIdle);
  Effects read = alone.OnMessage(kClient, ClientRead{3, kChain, 2, "k"});
  ASSERT_EQ(Sent<ClientReadReply>(read, kClient).size(), 1u);
  EXPECT_TRUE(Sent<ClientReadReply>(read, kClient)[0].status.IsBusy());
}

// ---- Commands of a state machine ------------------------------------------------------------

// A machine with multi-key and conditional commands, to test what the key-value one cannot:
//   "set k1=v1 k2=v2 ..."   sets every key in one update; result "ok"
//   "cas k expected new"    sets k to new only when its value is `expected` ("-" = absent);
//                           result "ok" or "was <value>"
// Queries: "get k" -> the value or "-"; "scan" -> "k=v;" for every key in order.
class TestMachine final : public StateMachine {
 public:
  Outcome Execute(const KvReader& state, std::string_view command) const override {
    std::vector<std::string> words = Split(command);
    Outcome outcome;
    if (!words.empty() && words[0] == "set") {
      for (size_t i = 1; i < words.size(); ++i) {
        const size_t eq = words[i].find('=');
        outcome.mutations.push_back({words[i].substr(0, eq), words[i].substr(eq + 1)});
      }
      outcome.result = "ok";
    } else if (words.size() == 4 && words[0] == "cas") {
      auto current = state.Get(words[1]);
      const std::string now = current.ok() && current->has_value() ? **current : "-";
      if (now == words[2]) {
        outcome.mutations.push_back({words[1], words[3]});
        outcome.result = "ok";
      } else {
        outcome.result = "was " + now;
      }
    } else {
      outcome.result = "?";
    }
    return outcome;
  }
  Result<std::string> Query(const KvReader& committed, std::string_view query) const override {
    std::vector<std::string> words = Split(query);
    if (words.size() == 2 && words[0] == "get") {
      CAIRN_ASSIGN_OR_RETURN(std::optional<std::string> value, committed.Get(words[1]));
      return value.value_or("-");
    }
    std::string out;
    auto it = committed.NewIterator();
    for (it->Seek(""); it->Valid(); it->Next()) out += std::string(it->key()) + "=" + std::string(it->value()) + ";";
    if (!it->status().ok()) return it->status();
    return out;
  }

 private:
  static std::vector<std::string> Split(std::string_view s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
      const size_t end = std::min(s.find(' ', start), s.size());
      if (end > start) out.emplace_back(s.substr(start, end - start));
      start = end + 1;
    }
    return out;
  }
};

const TestMachine kTestMachine;

ReplicaOptions WithTestMachine() {
  ReplicaOptions options;
  options.machine = &kTestMachine;
  return options;
}

ClientWrite Command(uint64_t request_id, OpId op, std::string command) {
  return ClientWrite{request_id, kChain, 1, op, std::move(command)};
}

std::string QueryAt(ChainReplica& replica, std::string query, Status* status = nullptr) {
  Effects out = replica.OnMessage(kClient, ClientQuery{99, kChain, replica.view_version(), std::move(query)});
  auto replies = Sent<ClientQueryReply>(out, kClient);
  if (replies.size() != 1) return "<" + std::to_string(replies.size()) + " replies>";
  if (status != nullptr) *status = replies[0].status;
  return replies[0].status.ok() ? replies[0].result : "<" + replies[0].status.ToString() + ">";
}

TEST(ChainCommands, AMultiKeyCommandIsOneUpdateAppliedEverywhere) {
  ChainReplica head = Founding(1, View(1, {M(1), M(2)}), WithTestMachine());
  ChainReplica tail = Founding(2, View(1, {M(1), M(2)}), WithTestMachine());
  Effects write = head.OnMessage(kClient, Command(1, 7, "set a=1 b=2 c=3"));
  const auto updates = Sent<Update>(write, Endpoint::Replica(2));
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].mutations, (std::vector<KvMutation>{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
  EXPECT_EQ(updates[0].result, "ok");
  (void)Persist(head, write);
  Effects at_tail = tail.OnMessage(Endpoint::Replica(1), updates[0]);
  EXPECT_EQ(tail.applied(), head.applied());
  Effects acked = Persist(tail, at_tail);
  ASSERT_EQ(Sent<Ack>(acked, Endpoint::Replica(1)).size(), 1u);
  Effects commit = head.OnMessage(Endpoint::Replica(2), Sent<Ack>(acked, Endpoint::Replica(1))[0]);
  ASSERT_EQ(Sent<ClientWriteReply>(commit, kClient).size(), 1u);
  EXPECT_EQ(Sent<ClientWriteReply>(commit, kClient)[0].result, (WriteResult{1, "ok"}));
  EXPECT_EQ(head.durable().store, tail.durable().store);
}

TEST(ChainCommands, ConditionsMeetEveryEarlierUpdateAndQueriesOnlyCommittedOnes) {
  ChainReplica head = Founding(1, View(1, {M(1), M(2)}), WithTestMachine());
  Effects first = head.OnMessage(kClient, Command(1, 1, "set a=1 b=1"));
  (void)Persist(head, first);
  // Not committed yet (the tail has not acknowledged): a condition already sees it, since every
  // replica applies this update before the next one, but a query does not.
  Effects cas = head.OnMessage(kClient, Command(2, 2, "cas a 1 2"));
  ASSERT_EQ(Sent<Update>(cas, Endpoint::Replica(2)).size(), 1u);
  EXPECT_EQ(Sent<Update>(cas, Endpoint::Replica(2))[0].result, "ok");
  Effects refused = head.OnMessage(kClient, Command(3, 3, "cas b 5 6"));
  EXPECT_EQ(Sent<Update>(refused, Endpoint::Replica(2))[0].result, "was 1");
  EXPECT_TRUE(Sent<Update>(refused, Endpoint::Replica(2))[0].mutations.empty());
  (void)Persist(head, cas);
  (void)Persist(head, refused);
  EXPECT_EQ(QueryAt(head, "scan"), "");
  EXPECT_EQ(QueryAt(head, "get a"), "-");

  // The first update commits: the query shows it, and not the second.
  (void)head.OnMessage(Endpoint::Replica(2), Ack{kChain, 1, 1});
  EXPECT_EQ(QueryAt(head, "scan"), "a=1;b=1;");
  (void)head.OnMessage(Endpoint::Replica(2), Ack{kChain, 1, 3});
  EXPECT_EQ(QueryAt(head, "scan"), "a=2;b=1;");
  EXPECT_EQ(QueryAt(head, "get a"), "2");
}

TEST(ChainCommands, QueriesGoToTheHeadOnly) {
  ChainReplica tail = Founding(2, View(1, {M(1), M(2)}), WithTestMachine());
  Status status;
  QueryAt(tail, "scan", &status);
  EXPECT_TRUE(status.IsBusy()) << status;
  tail.SetFenced(true);
  ChainReplica head = Founding(1, View(1, {M(1), M(2)}), WithTestMachine());
  head.SetFenced(true);
  QueryAt(head, "scan", &status);
  EXPECT_TRUE(status.IsBusy()) << status;
}

TEST(ChainCommands, CraqReadsSeeTheCommittedVersionOfEveryKeyOfAPendingUpdate) {
  ChainReplica head = Founding(1, View(1, {M(1), M(2)}), WithTestMachine());
  ChainReplica tail = Founding(2, View(1, {M(1), M(2)}), WithTestMachine());
  auto run = [&](uint64_t op, std::string command) {
    Effects write = head.OnMessage(kClient, Command(op, op, std::move(command)));
    (void)Persist(head, write);
    Effects at_tail = tail.OnMessage(Endpoint::Replica(1), Sent<Update>(write, Endpoint::Replica(2))[0]);
    return Persist(tail, at_tail);
  };
  Effects acked = run(1, "set a=1 b=1");
  (void)head.OnMessage(Endpoint::Replica(2), Sent<Ack>(acked, Endpoint::Replica(1))[0]);
  (void)tail.OnMessage(Endpoint::Replica(1), Commit{kChain, 1, 1});
  (void)run(2, "set b=2 a=2 b=3");  // applied at both, not committed

  // The tail asks the head which version of each key is committed: seq 1's.
  for (const std::string key : {"a", "b"}) {
    Effects read = tail.OnMessage(kClient, ClientRead{5, kChain, 1, key});
    const auto queries = Sent<VersionQuery>(read, Endpoint::Replica(1));
    ASSERT_EQ(queries.size(), 1u) << key;
    Effects answer = head.OnMessage(Endpoint::Replica(2), queries[0]);
    const auto replies = Sent<VersionReply>(answer, Endpoint::Replica(2));
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].seq, 1u);
    Effects done = tail.OnMessage(Endpoint::Replica(1), replies[0]);
    ASSERT_EQ(Sent<ClientReadReply>(done, kClient).size(), 1u);
    EXPECT_EQ(Sent<ClientReadReply>(done, kClient)[0].record, (Record{"1", 1})) << key;
  }
  // Once seq 2 is committed, b is its last write in that update.
  (void)tail.OnMessage(Endpoint::Replica(1), Commit{kChain, 1, 2});
  Effects read = tail.OnMessage(kClient, ClientRead{6, kChain, 1, "b"});
  ASSERT_EQ(Sent<ClientReadReply>(read, kClient).size(), 1u);
  EXPECT_EQ(Sent<ClientReadReply>(read, kClient)[0].record, (Record{"3", 2}));
}

TEST(ChainBlobs, AReplicaNeverWritesABlobThatFailsItsChecksum) {
  ChainReplica head = Founding(1, View(1, {M(1), M(2)}));
  ChainReplica tail = Founding(2, View(1, {M(1), M(2)}));
  Blob blob{"id", "bytes of the blob", 0};
  blob.crc32c = crc32c::Value(blob.data().data(), blob.data().size());
  ClientWrite write{1, kChain, 1, 5, "", blob, {}};
  Effects at_head = head.OnMessage(kClient, write);
  ASSERT_EQ(at_head.disk_writes.size(), 1u);
  ASSERT_NE(at_head.disk_writes[0].update->blob, std::nullopt);
  Update update = Sent<Update>(at_head, Endpoint::Replica(2)).at(0);
  EXPECT_EQ(update.mutations, (std::vector<KvMutation>{{BlobKey("id"), EncodeBlobDescriptor(17, blob.crc32c, update.stamp_ms)}}));

  Update damaged = update;
  std::string flipped(damaged.blob->data());
  flipped[3] ^= 1;
  damaged.blob = Blob{damaged.blob->id, flipped, damaged.blob->crc32c};
  Effects dropped = tail.OnMessage(Endpoint::Replica(1), damaged);
  EXPECT_TRUE(dropped.disk_writes.empty());
  EXPECT_TRUE(dropped.sends.empty());
  EXPECT_EQ(tail.last_applied(), 0u);
  Effects applied = tail.OnMessage(Endpoint::Replica(1), update);  // the retransmission
  EXPECT_EQ(applied.disk_writes.size(), 1u);
  EXPECT_EQ(tail.last_applied(), 1u);

  // At the head, a damaged blob is refused for good (not Busy: a retry cannot help).
  write.op_id = 6;
  std::string bad(write.blob->data());
  bad[0] ^= 1;
  write.blob = Blob{write.blob->id, bad, write.blob->crc32c};
  Effects refused = head.OnMessage(kClient, write);
  ASSERT_EQ(Sent<ClientWriteReply>(refused, kClient).size(), 1u);
  EXPECT_TRUE(Sent<ClientWriteReply>(refused, kClient)[0].status.IsCorruption());
  EXPECT_TRUE(refused.disk_writes.empty());
}

TEST(ChainBlobs, ASyncedMemberReportsOnlyOnceItsBlobsAreCopied) {
  ChainReplica head = Founding(1, View(1, {M(1)}));
  Blob blob{"b", "xyz", 0};
  blob.crc32c = crc32c::Value(blob.data().data(), blob.data().size());
  (void)Persist(head, head.OnMessage(kClient, ClientWrite{1, kChain, 1, 5, "", blob, {}}));

  ChainReplica joiner(kChain, 2);
  joiner.Start(1);
  const ChainView two = View(2, {M(1), M(2, 1, /*serving=*/false)});
  (void)head.OnView(two);
  Effects asked = joiner.OnView(two);
  ASSERT_EQ(Sent<SyncRequest>(asked, Endpoint::Replica(1)).size(), 1u);
  Effects snapshot = head.OnMessage(Endpoint::Replica(2), Sent<SyncRequest>(asked, Endpoint::Replica(1))[0]);
  Effects installed = joiner.OnMessage(Endpoint::Replica(1), Sent<SyncData>(snapshot, Endpoint::Replica(2)).at(0));
  Effects durable = Persist(joiner, installed);
  EXPECT_TRUE(durable.reports.empty());  // the blob is not here yet
  EXPECT_FALSE(durable.copy_complete);   // nor may the store say its copy is complete
  ASSERT_TRUE(durable.blob_copy.has_value());
  EXPECT_EQ(durable.blob_copy->from, 1u);
  EXPECT_EQ(durable.blob_copy->blobs, (std::vector<BlobInfo>{{"b", 3, blob.crc32c}}));
  // Copying failed: a new job for what the state still names.
  Effects again = joiner.OnBlobsCopied(2, {"b"});
  EXPECT_TRUE(again.reports.empty());
  ASSERT_TRUE(again.blob_copy.has_value());
  EXPECT_TRUE(joiner.OnBlobsCopied(1, {}).reports.empty());  // an older session's job
  Effects done = joiner.OnBlobsCopied(2, {});
  ASSERT_EQ(done.reports.size(), 1u);
  EXPECT_EQ(done.reports[0].kind, ManagerReport::Kind::kSyncDone);
  EXPECT_TRUE(done.copy_complete);
}

TEST(ChainBlobs, AViewChangeDuringTheCopyStartsItOverFromTheNewPredecessor) {
  ChainReplica head = Founding(1, View(1, {M(1), M(2)}));
  ChainReplica middle = Founding(2, View(1, {M(1), M(2)}));
  Blob blob{"b", "xyz", 0};
  blob.crc32c = crc32c::Value(blob.data().data(), blob.data().size());
  Effects stored = head.OnMessage(kClient, ClientWrite{1, kChain, 1, 5, "", blob, {}});
  (void)Persist(head, stored);
  (void)Persist(middle, middle.OnMessage(Endpoint::Replica(1), Sent<Update>(stored, Endpoint::Replica(2)).at(0)));

  ChainReplica joiner(kChain, 3);
  joiner.Start(1);
  const ChainView two = View(2, {M(1), M(2), M(3, 1, /*serving=*/false)});
  (void)head.OnView(two);
  (void)middle.OnView(two);
  Effects asked = joiner.OnView(two);
  Effects snapshot = middle.OnMessage(Endpoint::Replica(3), Sent<SyncRequest>(asked, Endpoint::Replica(2)).at(0));
  Effects durable =
      Persist(joiner, joiner.OnMessage(Endpoint::Replica(2), Sent<SyncData>(snapshot, Endpoint::Replica(3)).at(0)));
  ASSERT_TRUE(durable.blob_copy.has_value());
  EXPECT_EQ(durable.blob_copy->from, 2u);

  // Node 2 leaves while the copy runs: the copy starts again from node 1, and the old job's
  // answer (even "nothing missing") does not count.
  Effects moved = joiner.OnView(View(3, {M(1), M(3, 1, /*serving=*/false)}));
  ASSERT_TRUE(moved.blob_copy.has_value());
  EXPECT_EQ(moved.blob_copy->from, 1u);
  EXPECT_EQ(moved.blob_copy->chain_version, 3u);
  EXPECT_TRUE(joiner.OnBlobsCopied(2, {}).reports.empty());
  Effects done = joiner.OnBlobsCopied(3, {});
  ASSERT_EQ(done.reports.size(), 1u);
  EXPECT_EQ(done.reports[0].chain_version, 3u);
}

TEST(ChainBlobs, AnIdIsNeverStoredAgainWithOtherBytes) {
  ChainReplica alone = Founding(1, View(1, {M(1)}));
  Blob blob{"b", "first", 0};
  blob.crc32c = crc32c::Value(blob.data().data(), blob.data().size());
  (void)Persist(alone, alone.OnMessage(kClient, ClientWrite{1, kChain, 1, 5, "", blob, {}}));
  Blob other{"b", "other bytes", 0};
  other.crc32c = crc32c::Value(other.data().data(), other.data().size());
  Effects refused = alone.OnMessage(kClient, ClientWrite{2, kChain, 1, 6, "", other, {}});
  ASSERT_EQ(Sent<ClientWriteReply>(refused, kClient).size(), 1u);
  EXPECT_TRUE(Sent<ClientWriteReply>(refused, kClient)[0].status.IsAlreadyExists());
  EXPECT_TRUE(refused.disk_writes.empty());
  // The same bytes again (a retry under a new operation id, so with another stamp) are fine.
  ClientWrite retry{3, kChain, 1, 7, "", blob, {}};
  retry.issued_ms = 1'700'000'000'000;
  Effects again = alone.OnMessage(kClient, retry);
  EXPECT_EQ(again.disk_writes.size(), 1u);
}

// The chain's own query lists its blobs (id, size, CRC, stamp) in id order, by pages, at the head
// only; dropped blobs are not listed.
TEST(ChainBlobs, TheHeadListsTheBlobsByPages) {
  ChainReplica head = Founding(1, View(1, {M(1)}));
  for (int i = 0; i < 5; ++i) {
    Blob blob{"blob" + std::to_string(i), std::string(10 + i, 'x'), 0};
    blob.crc32c = crc32c::Value(blob.data().data(), blob.data().size());
    ClientWrite write{static_cast<uint64_t>(i + 1), kChain, 1, static_cast<OpId>(100 + i), "", blob, {}};
    write.issued_ms = 1'700'000'000'000 + i;
    (void)Persist(head, head.OnMessage(kClient, write));
  }
  (void)Persist(head, head.OnMessage(kClient, ClientWrite{9, kChain, 1, 200, "", std::nullopt, {"blob1"}}));
  auto page = [&](std::string after, uint32_t max) {
    auto replies = Sent<ClientQueryReply>(
        head.OnMessage(kClient, ClientQuery{1, kChain, 1, BlobListQuery(after, max)}), kClient);
    EXPECT_EQ(replies.size(), 1u);
    EXPECT_TRUE(replies[0].status.ok()) << replies[0].status;
    auto blobs = DecodeBlobList(replies[0].result);
    EXPECT_TRUE(blobs.ok());
    return blobs.ok() ? *blobs : std::vector<BlobInfo>{};
  };
  auto first = page("", 2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0], (BlobInfo{"blob0", 10, crc32c::Value(std::string(10, 'x').data(), 10), 1'700'000'000'000}));
  EXPECT_EQ(first[1].id, "blob2");  // blob1 was dropped
  auto rest = page(first[1].id, 10);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[1].id, "blob4");
  EXPECT_EQ(rest[1].stamp_ms, 1'700'000'000'004u);
  EXPECT_TRUE(page("blob4", 10).empty());
  // Not the head: refused like any query.
  ChainReplica tail = Founding(2, View(1, {M(1), M(2)}));
  auto refused = Sent<ClientQueryReply>(tail.OnMessage(kClient, ClientQuery{1, kChain, 1, BlobListQuery("", 1)}), kClient);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_TRUE(refused[0].status.IsBusy());
}

}  // namespace
}  // namespace cairn::replication
