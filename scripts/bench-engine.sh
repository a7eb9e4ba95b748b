#!/usr/bin/env bash
# Benchmarks the local chunk engine against fio on the same disk and prints a markdown report.
#
# usage: scripts/bench-engine.sh CAIRN_BINARY [DIR]
#   DIR            where the data goes (default ./build/bench-data). The script works in a fresh
#                  subdirectory of DIR, removes it at the end, and removes DIR too if it created it.
#   BENCH_SECONDS  seconds per run (default 8)
#   REOPEN_CHUNKS  chunks filled before the reopen measurement (default 10000000)
#
# Pairs, each run as fio then cairn, three rounds interleaved (A B A B A B); medians reported:
#   (a) sequential 1 MiB writes:  fio O_DIRECT io_uring iodepth 16  vs cairn 1 MiB append x1
#   (b) durable 4 KiB writes:     fio psync + fdatasync per write   vs cairn 4 KiB append x64
#   (c) random 4 KiB reads:       fio O_DIRECT io_uring iodepth 32  vs cairn 4 KiB read x32, O_DIRECT
#   (d) reopen: Open time and index bytes per chunk after REOPEN_CHUNKS 64-byte chunks.
#   (e) sequential 1 MiB writes:  fio as in (a)                      vs cairn 1 MiB append, one
#       writer with 16 appends in flight (AppendAsync), the counterpart of fio's iodepth 16.
# Exits 0 when everything ran, whether or not the targets were met; nonzero on errors.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 CAIRN_BINARY [DIR]" >&2
  exit 2
fi
CAIRN=$1
DIR=${2:-./build/bench-data}
SECS=${BENCH_SECONDS:-8}
REOPEN_CHUNKS=${REOPEN_CHUNKS:-10000000}
ROUNDS=3

[[ -x "$CAIRN" ]] || { echo "error: $CAIRN is not an executable" >&2; exit 1; }
command -v fio >/dev/null || { echo "error: fio not found (apt-get install fio)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 not found" >&2; exit 1; }

# shellcheck source=scripts/bench-workdir.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-workdir.sh"
bench_workdir "$DIR"
cleanup() {
  bench_remove_workdir
}
trap cleanup EXIT

FIO_FILE="$WORK/fio.dat"
FIO_COMMON=(--filename="$FIO_FILE" --size=2G --time_based --runtime="$SECS" --lat_percentiles=1
            --output-format=json)
declare -A FIO_ARGS=(
  [a]="--name=seqwrite --rw=write --bs=1M --direct=1 --ioengine=io_uring --iodepth=16"
  [b]="--name=syncwrite --rw=write --bs=4k --fdatasync=1 --ioengine=psync"
  [c]="--name=randread --rw=randread --bs=4k --direct=1 --ioengine=io_uring --iodepth=32"
  [e]="--name=seqwrite --rw=write --bs=1M --direct=1 --ioengine=io_uring --iodepth=16"
)
declare -A CAIRN_ARGS=(
  [a]="--workload append --size 1MiB --concurrency 1"
  [b]="--workload append --size 4KiB --concurrency 64"
  [c]="--workload read --size 4KiB --concurrency 32 --direct-reads"
  [e]="--workload append --size 1MiB --concurrency 1 --depth 16"
)
CAIRN_COMMON=(--duration "$SECS" --json)

# Prints the command, then runs it; stdout goes to the file named first.
run_to() {
  local out=$1
  shift
  echo "+ $*" >&2
  "$@" >"$out"
}

echo "# Cairn engine vs fio" >&2
for t in a b c e; do
  for ((r = 1; r <= ROUNDS; r++)); do
    # shellcheck disable=SC2086  # the argument strings are split on purpose
    run_to /dev/null fio ${FIO_ARGS[$t]} "${FIO_COMMON[@]}" --output="$RESULTS/$t.fio.$r.json"
    # shellcheck disable=SC2086
    run_to "$RESULTS/$t.cairn.$r.json" "$CAIRN" --log-level warn bench engine --dir "$WORK/cairn-$t" \
      ${CAIRN_ARGS[$t]} "${CAIRN_COMMON[@]}"
    rm -rf -- "$WORK/cairn-$t"
  done
done
rm -f -- "$FIO_FILE"
run_to "$RESULTS/d.cairn.json" "$CAIRN" --log-level warn bench engine --dir "$WORK/cairn-reopen" \
  --workload reopen --count "$REOPEN_CHUNKS" --size 64 --json
rm -rf -- "$WORK/cairn-reopen"

# ---- machine ----
echo "## Machine"
echo
echo '```'
echo "nproc: $(nproc)"
echo "kernel: $(uname -r)"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
free -g
df -h "$DIR"
echo "fio: $(fio --version)"
echo '```'
echo

# ---- report ----
export RESULTS ROUNDS SECS CAIRN WORK
export FIO_A="${FIO_ARGS[a]}" FIO_B="${FIO_ARGS[b]}" FIO_C="${FIO_ARGS[c]}" FIO_E="${FIO_ARGS[e]}"
export CAIRN_A="${CAIRN_ARGS[a]}" CAIRN_B="${CAIRN_ARGS[b]}" CAIRN_C="${CAIRN_ARGS[c]}" CAIRN_E="${CAIRN_ARGS[e]}"
export FIO_COMMON_STR="${FIO_COMMON[*]}" CAIRN_COMMON_STR="${CAIRN_COMMON[*]}"
python3 - <<'EOF'
import json
import os
import statistics

results = os.environ["RESULTS"]
rounds = int(os.environ["ROUNDS"])
work = os.environ["WORK"]

def load(path):
    with open(path) as f:
        return json.load(f)

def fio_figures(path, direction):
    job = load(path)["jobs"][0]
    d = job[direction]
    pct = d.get("lat_ns", {}).get("percentile") or d.get("clat_ns", {}).get("percentile", {})
    fig = {"ops": d["iops"], "mbs": d["bw_bytes"] / 1e6, "p99": pct.get("99.000000", 0) / 1e3}
    sync = job.get("sync", {}).get("lat_ns", {}).get("percentile")
    if sync:
        fig["sync_p99"] = sync.get("99.000000", 0) / 1e3
    return fig

def cairn_figures(path):
    r = load(path)
    return {"ops": r["ops_per_sec"], "mbs": r["mb_per_sec"], "p99": r["p99_us"]}

tests = [
    ("a", "1 MiB sequential write", "write", 0.8, "mbs"),
    ("b", "4 KiB durable write", "write", 5.0, "ops"),
    ("c", "4 KiB random read (O_DIRECT)", "read", 0.7, "ops"),
    ("e", "1 MiB write, 1 writer, 16 in flight", "write", 0.8, "mbs"),
]
med = lambda xs: statistics.median(xs)
print("## Results (medians of %d interleaved rounds, %s s each)" % (rounds, os.environ["SECS"]))
print()
print("| test | fio ops/s | cairn ops/s | fio MB/s | cairn MB/s | cairn/fio | target | met | fio p99 µs | cairn p99 µs |")
print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
for t, name, direction, target, metric in tests:
    f = [fio_figures(f"{results}/{t}.fio.{r}.json", direction) for r in range(1, rounds + 1)]
    c = [cairn_figures(f"{results}/{t}.cairn.{r}.json") for r in range(1, rounds + 1)]
    fm = {k: med([x[k] for x in f]) for k in ("ops", "mbs", "p99")}
    cm = {k: med([x[k] for x in c]) for k in ("ops", "mbs", "p99")}
    ratio = cm[metric] / fm[metric] if fm[metric] else float("nan")
    fio_p99 = "%.0f" % fm["p99"]
    if all("sync_p99" in x for x in f):
        fio_p99 += " (+fdatasync p99 %.0f)" % med([x["sync_p99"] for x in f])
    print("| (%s) %s | %.0f | %.0f | %.1f | %.1f | %.2f | >= %.1f | %s | %s | %.0f |" % (
        t, name, fm["ops"], cm["ops"], fm["mbs"], cm["mbs"], ratio, target,
        "yes" if ratio >= target else "**no**", fio_p99, cm["p99"]))
print()
print("Ratios compare MB/s for (a) and (e) and ops/s for (b) and (c). Per-round figures (ops/s):")
print()
for t, name, direction, _, _ in tests:
    f = ["%.0f" % fio_figures(f"{results}/{t}.fio.{r}.json", direction)["ops"] for r in range(1, rounds + 1)]
    c = ["%.0f" % cairn_figures(f"{results}/{t}.cairn.{r}.json")["ops"] for r in range(1, rounds + 1)]
    print("- (%s) fio %s; cairn %s" % (t, ", ".join(f), ", ".join(c)))
print()

d = load(f"{results}/d.cairn.json")
print("## (d) Reopen")
print()
print("| chunks | fill s | open ms | from checkpoint | scanned bytes | index bytes/chunk | RSS growth bytes/chunk | RSS after open MiB |")
print("|---:|---:|---:|---|---:|---:|---:|---:|")
print("| %d | %.1f | %.1f | %s | %d | %.1f | %.1f | %.1f |" % (
    d["chunks"], d["fill"]["seconds"], d["open_ms"], d["recovered_from_checkpoint"], d["recovery_scanned_bytes"],
    d["index_bytes_per_chunk"], d["rss_bytes_per_chunk"], d["rss_bytes_after_open"] / 2**20))
print()

c0 = load(f"{results}/a.cairn.1.json")
print("io back end: %s, engine O_DIRECT writes: %s, filesystem: %s, device: %s" % (
    c0["io_backend"], c0["direct_io"], c0["machine"]["filesystem"], c0["machine"]["device_model"]))
print()
print("## Commands")
print()
print("DIR below is a fresh directory under the script's DIR argument (here %s)." % work)
print()
print("```")
fio_common = os.environ["FIO_COMMON_STR"].replace(work, "DIR")
cairn_common = os.environ["CAIRN_COMMON_STR"]
cairn = os.environ["CAIRN"]
for t in "abce":
    print("(%s) fio %s %s --output=OUT.json" % (t, os.environ["FIO_" + t.upper()], fio_common))
    print("(%s) %s --log-level warn bench engine --dir DIR/cairn-%s %s %s" % (
        t, cairn, t, os.environ["CAIRN_" + t.upper()], cairn_common))
print("(d) %s --log-level warn bench engine --dir DIR/cairn-reopen --workload reopen --count %d --size 64 --json" % (
    cairn, d["count"]))
print("```")
EOF
