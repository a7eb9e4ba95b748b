#!/usr/bin/env bash
# Cluster benchmarks on the local three-node cluster (scripts/cluster.sh, 64 chains of 3): what the
# chains do before S3 runs through them (docs/benchmarks.md, "Cluster").
#
#   1. chain writes, small values: ops/s of 4 writers (each waits for its write's commit: every
#      replica has it on stable storage);
#   2. chain writes, 256 KiB values: MB/s of 4 writers;
#   3. failover: writers running, `kill -9` of node n3; the longest time any writer waited for an
#      acknowledgement is how long writes were unavailable (lease TTL 3 s by default);
#   4. resync: n3 restarted on its old directory; the time until every chain has it serving
#      again, and the data it copied over that time (every chain holds a replica on n3).
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
