#!/usr/bin/env bash
# Cluster benchmarks on the local three-node cluster (scripts/cluster.sh, 64 chains of 3): the
# chains alone, then S3 through them against the single node (docs/benchmarks.md, "Cluster").
#
#   1. chain writes, small values: ops/s of 4 writers (each waits for its write's commit: every
#      replica has it on stable storage);
#   2. chain writes, 256 KiB values: MB/s of 4 writers;
#   3. failover: writers running, `kill -9` of node n3; the longest time any writer waited for an
#      acknowledgement is how long writes were unavailable (lease TTL 3 s by default);
#   4. resync: n3 restarted on its old directory; the time until every chain has it serving
#      again, and the data it copied over that time (every chain holds a replica on n3);
#   5. S3 PUT and GET, 4 KiB and 64 MiB, 3 nodes against the single node (below);
#   6. resync of a wiped node: n3 killed, its directory removed, started again empty; the time
#      until every chain has it serving, and the bytes its engine then holds (the chains' state
#      and every blob, copied from its predecessors).
#
# Run with `make bench-cluster` (it starts the cluster if needed; stop it with `make cluster-stop`).
# Uses tests/tools/chain_kv from the same build. Prints the machine and every figure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build/release}"
CAIRN="$BUILD/src/cairn"
KV="$BUILD/tests/chain_kv"
DIR="$ROOT/cluster"
ETCD=http://127.0.0.1:23790
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
[ -x "$KV" ] || { echo "no $KV: build first (make build)" >&2; exit 1; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "method: scripts/bench-cluster.sh, ${SECONDS_PER_RUN} s per run, 3 nodes on loopback, 64 chains of 3"
bash "$ROOT/scripts/cluster.sh" start "$CAIRN" >/dev/null
set -a; . "$DIR/credentials"; set +a

kv() { "$KV" --etcd "$ETCD" --secret-file "$DIR/secret" "$@"; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])['$1'])"; }
all_serving() {  # every chain has 3 serving members (asked of n1, else n2)
  { "$CAIRN" admin --endpoint http://127.0.0.1:9001 status --json 2>/dev/null ||
    "$CAIRN" admin --endpoint http://127.0.0.1:9002 status --json 2>/dev/null; } | python3 -c '
import json, sys
s = json.load(sys.stdin)
ok = s["chains"] and all(len(c["members"]) == 3 and all(m["state"] == "serving" for m in c["members"]) for c in s["chains"])
sys.exit(0 if ok else 1)'
}

wait_serving() {  # wait_serving SECONDS: until every chain has 3 serving members
  local deadline=$((SECONDS + $1))
  until all_serving; do
    [ $SECONDS -lt $deadline ] || { echo "the chains are not all serving after $1 s" >&2; exit 1; }
    sleep 0.2
  done
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
wait_serving 60

rates() {  # the ops/s and MB/s of a chain_kv write result on stdin
  python3 -c 'import json, sys
r = json.loads(sys.stdin.read().splitlines()[-1])
print("%.0f ops/s, %.1f MB/s" % (r["acked"] / r["seconds"], r["bytes"] / r["seconds"] / 1e6))'
}

out=$(kv write --seconds "$SECONDS_PER_RUN" --threads 4 --prefix small --log "$TMP/small.log")
echo "chain writes, small values (~10 B), 4 writers: $(echo "$out" | rates)"

out=$(kv write --seconds "$SECONDS_PER_RUN" --threads 4 --prefix big --keys 64 --value-size 262144 --log "$TMP/big.log")
echo "chain writes, 256 KiB values, 4 writers: $(echo "$out" | rates)"
# The 256 KiB values stay (no later run writes their keys): n3, a member of every chain, copies
# at least them when it resyncs.
held_bytes=$((4 * 64 * 262144))

role=$("$CAIRN" admin --endpoint http://127.0.0.1:9001 status --json | python3 -c '
import json, sys; print("the manager" if json.load(sys.stdin)["manager"] == "n3" else "not the manager")')
# A prefix of its own: keys an earlier run on this ./cluster wrote cannot stand in for lost ones.
kv write --seconds 12 --threads 4 --prefix "fail-$(date +%s%N)-" --unique-keys --log "$TMP/failover.log" \
  >"$TMP/failover.out" &
writer=$!
sleep 3
kill -9 "$(cat "$DIR/n3.pid")"
wait "$writer" || { echo "the writer failed: $(cat "$TMP/failover.out")" >&2; exit 1; }
echo "failover: kill -9 of n3 ($role) under 4 writers: writes unavailable at most" \
     "$(field max_gap_ms <"$TMP/failover.out") ms ($(field acked <"$TMP/failover.out") acknowledged," \
     "$(field failed <"$TMP/failover.out") failed)"
if ! kv verify --log "$TMP/failover.log" >"$TMP/verify.out"; then
  echo "failover: ACKNOWLEDGED WRITES LOST OR WRONG: $(cat "$TMP/verify.out")" >&2
  exit 1
fi
echo "failover: each of the $(field keys <"$TMP/verify.out") acknowledged writes read back from every member" \
     "($(field reads <"$TMP/verify.out") reads)"

start=$(date +%s.%N)
bash "$ROOT/scripts/cluster.sh" start "$CAIRN" >/dev/null
wait_serving 120
end=$(date +%s.%N)
python3 -c "
t = $end - $start
print(f'resync: n3 restarted, serving in every chain after {t:.1f} s (process start, registration, the manager\\'s rounds and the copies); it copied at least {$held_bytes/1e6:.0f} MB: {$held_bytes/1e6/t:.1f} MB/s')"

# 5. S3 through the chains against the single node, with `cairn bench s3`: PUT and GET of 4 KiB
#    (4 connections) and 64 MiB (2 connections) objects, on node n1 of the cluster (every object
#    on three nodes) and on a single node (chains of one) started here on a fresh directory.
#    Interleaved (cluster, single, cluster, single, ...), ROUNDS rounds; the medians are reported
#    and their ratio. Both run on this one machine: the cluster's three processes share its two
#    cores and its one disk, so the ratio is what replication costs here, not a cluster of
#    machines.
ROUNDS="${ROUNDS:-3}"
S3_SECONDS="${S3_SECONDS:-5}"
SINGLE_DIR="$TMP/single"
SINGLE_PORT=9010
CAIRN_ROOT_ACCESS_KEY="$AWS_ACCESS_KEY_ID" CAIRN_ROOT_SECRET_KEY="$AWS_SECRET_ACCESS_KEY" \
  "$CAIRN" server --data "$SINGLE_DIR" --listen "127.0.0.1:$SINGLE_PORT" >"$TMP/single.log" 2>&1 &
single=$!
trap 'kill "$single" 2>/dev/null || true; wait "$single" 2>/dev/null || true; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$SINGLE_PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done
s3bench() {  # s3bench ENDPOINT OP SIZE CONCURRENCY: one JSON result
  "$CAIRN" bench s3 --endpoint "$1" --bucket bench-cluster --op "$2" --size "$3" --concurrency "$4" \
    --duration "$S3_SECONDS" --json
}
for spec in "put 4KiB 4" "get 4KiB 4" "put 64MiB 2" "get 64MiB 2"; do
  read -r op size conc <<<"$spec"
  for round in $(seq "$ROUNDS"); do
    s3bench http://127.0.0.1:9001 "$op" "$size" "$conc" >"$TMP/c-$op-$size-$round.json"
    s3bench "http://127.0.0.1:$SINGLE_PORT" "$op" "$size" "$conc" >"$TMP/s-$op-$size-$round.json"
  done
  python3 - "$TMP" "$op" "$size" "$conc" "$ROUNDS" <<'PY'
import json, statistics, sys
tmp, op, size, conc, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def load(side):
    out = []
    for r in range(1, rounds + 1):
        with open(f"{tmp}/{side}-{op}-{size}-{r}.json") as f:
            out.append(json.loads(f.read().strip().splitlines()[-1]))
    return out
def med(runs, key):
    return statistics.median(run[key] for run in runs)
c, s = load("c"), load("s")
print(f"S3 {op.upper()} {size}, {conc} connections, medians of {rounds}: "
      f"3 nodes {med(c, 'ops_per_sec'):.0f} ops/s {med(c, 'mb_per_sec'):.1f} MB/s; "
      f"single node {med(s, 'ops_per_sec'):.0f} ops/s {med(s, 'mb_per_sec'):.1f} MB/s; "
      f"ratio {med(c, 'ops_per_sec') / med(s, 'ops_per_sec'):.2f} "
      f"(3-node p99 {med(c, 'p99_us') / 1000:.1f} ms, single {med(s, 'p99_us') / 1000:.1f} ms)")
PY
done

# 6. Resync of a wiped node: 1 GiB of objects (64 of 16 MiB, kept), then n3 killed, wiped and
#    started again.
"$CAIRN" bench s3 --endpoint http://127.0.0.1:9001 --bucket bench-resync --op put --size 16MiB --concurrency 2 \
  --count 64 --no-cleanup --json >"$TMP/resync-fill.json"
kill -9 "$(cat "$DIR/n3.pid")"
deadline=$((SECONDS + 60))
until "$CAIRN" admin --endpoint http://127.0.0.1:9001 status --json 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if all(not m["target"].startswith("n3/") for c in s["chains"] for m in c["members"]) else 1)'; do
  [ $SECONDS -lt $deadline ] || { echo "n3 is still a member 60 s after kill -9" >&2; exit 1; }
  sleep 0.2
done
rm -rf "$DIR/n3"
start=$(date +%s.%N)
bash "$ROOT/scripts/cluster.sh" start "$CAIRN" >/dev/null
wait_serving 600
end=$(date +%s.%N)
copied=$(curl -s http://127.0.0.1:9003/metrics | awk '$1 == "cairn_engine_live_bytes" {print $2}')
python3 -c "
t = $end - $start
b = float('$copied')
print(f'resync of a wiped node: n3 started empty, serving in every chain after {t:.1f} s; its engine then holds {b/1e6:.0f} MB of blobs: {b/1e6/t:.1f} MB/s')"
