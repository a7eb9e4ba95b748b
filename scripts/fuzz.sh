#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a fixed time each, one after the other.
#
#   scripts/fuzz.sh <build dir> <seconds per target>
#
# A target is fuzz/fuzz_<name>.cc, built as <build dir>/fuzz/fuzz_<name> (fuzz/CMakeLists.txt).
# Each runs on its own working corpus, <build dir>/corpus-fuzz_<name>: the seeds of
# fuzz/corpus/fuzz_<name>/ are copied in first and the inputs libFuzzer finds accumulate there
# from run to run, so the repository's seeds are never modified. A crashing input is saved as
# <build dir>/artifacts/fuzz_<name>/crash-<sha1> (likewise leak-, timeout-, oom-) and the
# whole output of the run is in <build dir>/logs/fuzz_<name>.log.
#
# Prints one line per target, then the summary line "fuzz: N passed, M failed" (read by CI).
# Exits non-zero when any target failed: a crash, a sanitizer report, a violated property, a
# leak, an input slower than 10 s, or a missing binary.
set -uo pipefail

build_dir=${1:?usage: fuzz.sh <build dir> <seconds per target>}
seconds=${2:?usage: fuzz.sh <build dir> <seconds per target>}
repo=$(cd "$(dirname "$0")/.." && pwd)

passed=0
failed=0
for src in "$repo"/fuzz/fuzz_*.cc; do
  target=$(basename "$src" .cc)
  binary="$build_dir/fuzz/$target"
  corpus="$build_dir/corpus-$target"
  artifacts="$build_dir/artifacts/$target/"
  log="$build_dir/logs/$target.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  if [ -d "$repo/fuzz/corpus/$target" ]; then
    cp -n "$repo/fuzz/corpus/$target"/* "$corpus"/ 2>/dev/null || true
  fi
  if [ ! -x "$binary" ]; then
    echo "$target: FAILED: $binary is missing (build the fuzz preset)"
    failed=$((failed + 1))
    continue
  fi

  "$binary" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts" \
    "$corpus" >"$log" 2>&1
  rc=$?

  # Executions: the final statistics, or the last status line ("#12345 ...") after a crash.
  execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log" | tail -n 1)
  if [ -z "$execs" ]; then
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
  fi
  rate=$(awk '/^stat::average_exec_per_sec:/ {print $2}' "$log" | tail -n 1)
  inputs=$(find "$corpus" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    echo "$target: ok, ${execs:-0} executions in ${seconds} s (${rate:-?}/s), corpus of $inputs inputs"
    passed=$((passed + 1))
  else
    echo "$target: FAILED (exit $rc) after ${execs:-0} executions; log $log"
    artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | sed 's/Test unit written to //')
    [ -n "$artifact" ] && echo "$target: reproduce with: $binary $artifact"
    # The report: a sanitizer's, or the violated property, with its stack.
    grep -m 1 -A 40 -E '^==[0-9]+==(ERROR|WARNING)|runtime error:|property violated|^SUMMARY' "$log" | sed "s/^/  /"
    failed=$((failed + 1))
  fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
