# Sourced by the bench scripts: a scratch directory on the disk under test.
#
#   bench_workdir DIR   creates DIR when missing, and sets WORK (a fresh DIR/run.XXXXXX) and
#                       RESULTS ($WORK/results)
#   bench_remove_workdir  removes WORK, and DIR when bench_workdir created it (for EXIT traps)

bench_workdir() {
  BENCH_DIR=$1
  BENCH_CREATED_DIR=0
  if [[ ! -e "$BENCH_DIR" ]]; then
    mkdir -p "$BENCH_DIR"
    BENCH_CREATED_DIR=1
  fi
  WORK=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
  RESULTS="$WORK/results"
  mkdir -p "$RESULTS"
}

bench_remove_workdir() {
  rm -rf -- "$WORK"
  if [[ $BENCH_CREATED_DIR == 1 ]]; then rmdir -- "$BENCH_DIR" 2>/dev/null || true; fi
}
