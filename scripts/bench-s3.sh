#!/usr/bin/env bash
# Benchmarks `cairn server` over S3 with `cairn bench s3` and prints a markdown report.
#
# usage: scripts/bench-s3.sh [DIR]
#   DIR            disk path for the server's data (default /work/benchdata/s3). The script works in
#                  a fresh subdirectory of DIR, removes it at the end, and removes DIR too if it
#                  created it.
#   CAIRN          the binary (default build/release/src/cairn)
#   BENCH_SECONDS  seconds per measured run (default 5)
#   SIZES          object sizes (default "4KiB 1MiB 64MiB")
#   CONCURRENCIES  client connections (default "1 16 64")
#   LIST_KEYS      objects listed by the list run (default 1000000; 0 skips it)
#   PORT           port to listen on (default: a free one)
#
# Matrix: for each size, PUT then GET at each concurrency, BENCH_SECONDS each. GET runs prefill
# their own objects first (1 GiB worth, at least one per connection); every run deletes what it
# wrote afterwards. 64 MiB objects run at concurrency 64 only when MemAvailable is at least
# 8 GiB (64 connections x 64 MiB x 2); otherwise they are capped at 16 and the report says so.
# Then LIST_KEYS 64-byte objects are written and the whole bucket is listed once
# (ListObjectsV2, 1000 keys a page).
# The server's CPU time and RSS come from /proc/<pid>/stat and /proc/<pid>/status: the table's
# CPU column is the server's CPU seconds over the measured phase divided by its wall time (taken
# by the bench itself, --server-pid), and the RSS columns are read by this script before and
# after each run (prefill and cleanup included). Client and server share the machine's cores.
# Exits 0 when the server stayed up, whether or not each run succeeded (failed runs are listed).
set -euo pipefail

DIR=${1:-/work/benchdata/s3}
CAIRN=${CAIRN:-build/release/src/cairn}
SECS=${BENCH_SECONDS:-5}
SIZES=${SIZES:-"4KiB 1MiB 64MiB"}
CONCURRENCIES=${CONCURRENCIES:-"1 16 64"}
LIST_KEYS=${LIST_KEYS:-1000000}
LIST_OBJECT_SIZE=64
LIST_FILL_CONCURRENCY=64
BIG_SIZE=64MiB
BIG_CAP=16
# 64 connections x 64 MiB, twice over: below this much available memory 64 MiB runs stop at BIG_CAP.
BIG_MEMORY_KIB=$((64 * 64 * 2 * 1024))

[[ -x "$CAIRN" ]] || { echo "error: $CAIRN is not an executable (make build)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 not found" >&2; exit 1; }
command -v curl >/dev/null || { echo "error: curl not found" >&2; exit 1; }

# shellcheck source=scripts/bench-workdir.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-workdir.sh"
bench_workdir "$DIR"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  bench_remove_workdir
}
trap cleanup EXIT

PORT=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
ENDPOINT="http://127.0.0.1:$PORT"
ACCESS_KEY=cairnbench
SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
BUCKET=bench

# ---- server ----
echo "+ CAIRN_ROOT_ACCESS_KEY=... CAIRN_ROOT_SECRET_KEY=... $CAIRN --log-level warn server --data DATA --listen 127.0.0.1:$PORT" >&2
CAIRN_ROOT_ACCESS_KEY=$ACCESS_KEY CAIRN_ROOT_SECRET_KEY=$SECRET_KEY \
  "$CAIRN" --log-level warn server --data "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for ((i = 0; i < 300; i++)); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$ENDPOINT/health" || true)
  [[ "$code" == 200 ]] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "error: the server exited during start-up:" >&2
    cat "$WORK/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
[[ "$code" == 200 ]] || { echo "error: GET /health did not answer 200 within 30 s" >&2; exit 1; }

# Prints "cpu_seconds rss_bytes hwm_bytes" of the server from /proc.
sample() {
  python3 - "$SERVER_PID" <<'EOF'
import os, sys
pid = sys.argv[1]
with open(f"/proc/{pid}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)
kb = {}
with open(f"/proc/{pid}/status") as f:
    for line in f:
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            kb[name] = int(value.split()[0]) * 1024
print(cpu, kb.get("VmRSS", 0), kb.get("VmHWM", 0))
EOF
}

sleep 1  # let start-up settle before the idle reading
sample >"$RESULTS/idle.sample"

mem_available_kib=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
BIG_NOTE=""
if ((mem_available_kib < BIG_MEMORY_KIB)); then
  BIG_NOTE="64 MiB objects capped at concurrency $BIG_CAP: MemAvailable $((mem_available_kib >> 10)) MiB < $((BIG_MEMORY_KIB >> 10)) MiB"
fi

COMMON=(--endpoint "$ENDPOINT" --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" --bucket "$BUCKET"
        --server-pid "$SERVER_PID" --json)

# run NAME ARGS...: one bench run with /proc samples around it; a failed run is recorded, not fatal.
run() {
  local name=$1
  shift
  echo "+ $CAIRN --log-level warn bench s3 $* --json" >&2
  sample >"$RESULTS/$name.before"
  if ! "$CAIRN" --log-level warn bench s3 "${COMMON[@]}" "$@" >"$RESULTS/$name.json" 2>"$RESULTS/$name.err"; then
    echo "  failed: $(tail -1 "$RESULTS/$name.err")" >&2
    rm -f "$RESULTS/$name.json"
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "error: the server died during $name; its log ends with:" >&2
    tail -20 "$WORK/server.log" >&2
    SERVER_PID=""
    exit 1
  fi
  sample >"$RESULTS/$name.after"
}

RUNS=()
for size in $SIZES; do
  for op in put get; do
    for c in $CONCURRENCIES; do
      if [[ "$size" == "$BIG_SIZE" && -n "$BIG_NOTE" && $c -gt $BIG_CAP ]]; then
        c=$BIG_CAP
        [[ " ${RUNS[*]} " == *" $size.$op.$c "* ]] && continue
      fi
      run "$size.$op.$c" --op "$op" --size "$size" --concurrency "$c" --duration "$SECS"
      RUNS+=("$size.$op.$c")
    done
  done
done
if ((LIST_KEYS > 0)); then
  run list --op list --prefill-keys "$LIST_KEYS" --size "$LIST_OBJECT_SIZE" \
    --fill-concurrency "$LIST_FILL_CONCURRENCY" --no-cleanup
fi
sample >"$RESULTS/end.sample"

# ---- report ----
echo "## Machine"
echo
echo '```'
echo "nproc: $(nproc)"
echo "kernel: $(uname -r)"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
free -g
df -h "$DIR"
echo '```'
echo

export RESULTS SECS LIST_KEYS BIG_NOTE CAIRN LIST_OBJECT_SIZE LIST_FILL_CONCURRENCY
export RUNS_STR="${RUNS[*]}"
python3 - <<'EOF'
import json
import os

results = os.environ["RESULTS"]
runs = os.environ["RUNS_STR"].split()
mib = 1 << 20

def load_sample(name):
    try:
        with open(f"{results}/{name}") as f:
            cpu, rss, hwm = f.read().split()
        return float(cpu), int(rss), int(hwm)
    except (OSError, ValueError):
        return None

def load(name):
    try:
        with open(f"{results}/{name}.json") as f:
            return json.load(f)
    except OSError:
        return None

def error_text(name):
    try:
        with open(f"{results}/{name}.err") as f:
            lines = [l.strip() for l in f if l.strip()]
        return lines[-1] if lines else "failed"
    except OSError:
        return "failed"

idle = load_sample("idle.sample")
print("## S3 PUT and GET (%s s per run)" % os.environ["SECS"])
print()
if idle:
    print("Server RSS when idle after start-up: %.1f MiB." % (idle[1] / mib))
    print()
if os.environ.get("BIG_NOTE"):
    print("**Note:** %s." % os.environ["BIG_NOTE"])
    print()
print("| size | op | conns | ops | s | ops/s | MB/s | p50 ms | p99 ms | p99.9 ms | errors | server CPU (cores) | server RSS before → after MiB | server peak RSS MiB |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
examples = {}  # op -> (run name, report): one method line per operation
for name in runs:
    size, op, conc = name.split(".")
    r = load(name)
    before, after = load_sample(name + ".before"), load_sample(name + ".after")
    rss = "%.0f → %.0f" % (before[1] / mib, after[1] / mib) if before and after else "?"
    hwm = "%.0f" % (after[2] / mib) if after else "?"
    if r is None:
        print("| %s | %s | %s | failed: %s | | | | | | | | | %s | %s |" % (size, op.upper(), conc, error_text(name), rss, hwm))
        continue
    examples.setdefault(op, (name, r))
    errors = r["errors"]["total"]
    err = "0" if errors == 0 else "%d (%s)" % (errors, ", ".join("%s: %d" % kv for kv in r["errors"]["by_status"].items()))
    cores = "%.2f" % r["server"]["cpu_cores"] if "server" in r else "?"
    print("| %s | %s | %s | %d | %.1f | %.0f | %.1f | %.2f | %.2f | %.2f | %s | %s | %s | %s |" % (
        size, op.upper(), conc, r["ops"], r["duration_s"], r["ops_per_sec"], r["mb_per_sec"], r["p50_us"] / 1e3,
        r["p99_us"] / 1e3, r["p999_us"] / 1e3, err, cores, rss, hwm))
print()
print("s: the measured time, from the start until the last worker finished the operation it had in flight")
print("when the %s s ran out (large objects overrun it)." % os.environ["SECS"])
print()

if int(os.environ["LIST_KEYS"]) > 0:
    r = load("list")
    print("## LIST (ListObjectsV2, 1000 keys a page, whole bucket, one connection)")
    print()
    if r is None:
        print("failed: %s" % error_text("list"))
    else:
        before, after = load_sample("list.before"), load_sample("list.after")
        print("| keys written | fill s | fill objects/s | keys listed | pages | list s | keys/s | page p50 ms | page p99 ms | server RSS after fill+list MiB | server peak RSS MiB |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        print("| %d | %.1f | %.0f | %d | %d | %.2f | %.0f | %.2f | %.2f | %.0f | %.0f |" % (
            r["prefill"]["objects"], r["prefill"]["seconds"], r["prefill"]["ops_per_sec"], r["keys"], r["pages"],
            r["seconds"], r["keys_per_sec"], r["page"]["p50_us"] / 1e3, r["page"]["p99_us"] / 1e3,
            after[1] / mib if after else 0, after[2] / mib if after else 0))
        print()
        print("Objects of %s bytes written by %s connections before the listing; the bucket held only them." % (
            os.environ["LIST_OBJECT_SIZE"], os.environ["LIST_FILL_CONCURRENCY"]))
    print()

print("## Method")
print()
for op, (name, r) in examples.items():
    print("- %s (run %s): %s" % (op.upper(), name, r["method"]))
if examples:
    machine = next(iter(examples.values()))[1]["machine"]
    print("- Client and server run on the same machine (%d cores, %s) and share its CPUs." % (
        machine["nproc"], machine["cpu_model"]))
print("- GET runs prefill their objects first (not timed); every run deletes its objects afterwards (not timed).")
print("- server CPU (cores): the server's utime+stime over the measured phase / its wall time (bench --server-pid).")
print("- RSS: VmRSS before and after each whole run (prefill and cleanup included); peak: VmHWM since start.")
print()
print("## Commands")
print()
print("```")
cairn = os.environ["CAIRN"]
print("CAIRN_ROOT_ACCESS_KEY=K CAIRN_ROOT_SECRET_KEY=S %s server --data DIR --listen 127.0.0.1:PORT" % cairn)
print("%s bench s3 --endpoint http://127.0.0.1:PORT --access-key K --secret-key S --bucket bench \\" % cairn)
print("    --op put|get --size SIZE --concurrency N --duration %s --server-pid PID --json" % os.environ["SECS"])
if int(os.environ["LIST_KEYS"]) > 0:
    print("%s bench s3 ... --op list --prefill-keys %s --size %s --fill-concurrency %s --no-cleanup" % (
        cairn, os.environ["LIST_KEYS"], os.environ["LIST_OBJECT_SIZE"], os.environ["LIST_FILL_CONCURRENCY"]))
print("```")
EOF
