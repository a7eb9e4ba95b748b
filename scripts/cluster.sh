#!/usr/bin/env bash
# A local three-node Cairn cluster for trying cluster mode (docs/design/cluster.md), under ./cluster:
#
#   scripts/cluster.sh start [CAIRN]   etcd on 127.0.0.1:23790 (peer 23800), data in cluster/etcd;
#                                      nodes n1..n3: S3 on 127.0.0.1:9001-9003, RPC 9101-9103,
#                                      zones z1..z3, data in cluster/n1..n3; waits until
#                                      `cairn admin status` shows three nodes and a manager
#   scripts/cluster.sh stop            the nodes (SIGTERM: each leaves the cluster at once), then
#                                      etcd; SIGKILL for whatever is still running after 35 s
#   scripts/cluster.sh status [CAIRN]  `cairn admin status` of the first node that answers
#
# `make cluster` builds and runs `start`; `make cluster-stop` runs `stop`. CAIRN is the binary
# (default $CAIRN, else build/release/src/cairn). Logs: cluster/*.log; pids: cluster/*.pid. The
# cluster secret (cluster/secret) and the root credentials every node accepts (cluster/credentials,
# given to the nodes as CAIRN_ROOT_ACCESS_KEY / CAIRN_ROOT_SECRET_KEY) are made once, mode 0600.
# Starting again reuses the data; `rm -rf cluster` (after stop) starts from nothing.
# CAIRN_CLUSTER_ARGS: more `cairn server` flags for every node (e.g. "--orphan-interval 10").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/cluster"
ETCD_CLIENT=127.0.0.1:23790
ETCD_PEER=127.0.0.1:23800
NODES=(n1 n2 n3)
# Bounded waits, in seconds.
ETCD_START_WAIT=20
FORM_WAIT=60
STOP_WAIT=35  # longer than a node's 30 s drain

CAIRN="${2:-${CAIRN:-$ROOT/build/release/src/cairn}}"
ETCD="${CAIRN_ETCD_BIN:-/usr/bin/etcd}"

die() { echo "cluster.sh: $*" >&2; exit 1; }

alive() {  # alive PIDFILE: the process of the pid file runs, and is this cluster's (not a reused pid)
  [ -f "$1" ] || return 1
  local pid
  pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/"
}

node_index() { echo "${1#n}"; }

load_credentials() {
  # shellcheck disable=SC1091
  set -a; . "$DIR/credentials"; set +a
  export CAIRN_ROOT_ACCESS_KEY="$AWS_ACCESS_KEY_ID" CAIRN_ROOT_SECRET_KEY="$AWS_SECRET_ACCESS_KEY"
}

# Random characters from an alphabet: random_chars N ALPHABET.
random_chars() {
  LC_ALL=C tr -dc "$2" </dev/urandom | head -c "$1" || true
}

start_etcd() {
  if alive "$DIR/etcd.pid"; then
    echo "etcd already running (pid $(cat "$DIR/etcd.pid"))"
    return
  fi
  [ -x "$ETCD" ] || die "no etcd at $ETCD: run scripts/install-deps.sh (Debian's etcd-server)"
  local state=new
  [ -d "$DIR/etcd/member" ] && state=existing
  setsid "$ETCD" --name cairn-dev --data-dir "$DIR/etcd" \
    --listen-client-urls "http://$ETCD_CLIENT" --advertise-client-urls "http://$ETCD_CLIENT" \
    --listen-peer-urls "http://$ETCD_PEER" --initial-advertise-peer-urls "http://$ETCD_PEER" \
    --initial-cluster "cairn-dev=http://$ETCD_PEER" --initial-cluster-state "$state" \
    --logger zap --log-outputs stderr --log-level warn \
    </dev/null >>"$DIR/etcd.log" 2>&1 &
  echo $! >"$DIR/etcd.pid"
  local deadline=$((SECONDS + ETCD_START_WAIT))
  until curl -fsS "http://$ETCD_CLIENT/health" 2>/dev/null | grep -q '"health":"true"'; do
    alive "$DIR/etcd.pid" || die "etcd exited at start-up; see $DIR/etcd.log"
    [ $SECONDS -lt $deadline ] || die "etcd did not answer within ${ETCD_START_WAIT} s; see $DIR/etcd.log"
    sleep 0.2
  done
  echo "etcd on http://$ETCD_CLIENT (data in cluster/etcd, log cluster/etcd.log)"
}

start_node() {
  local id=$1 i
  i=$(node_index "$id")
  if alive "$DIR/$id.pid"; then
    echo "$id already running (pid $(cat "$DIR/$id.pid"))"
    return
  fi
  setsid "$CAIRN" server --data "$DIR/$id" --listen "127.0.0.1:900$i" \
    --cluster "http://$ETCD_CLIENT" --node-id "$id" --rpc "127.0.0.1:910$i" --zone "z$i" \
    --cluster-secret-file "$DIR/secret" ${CAIRN_CLUSTER_ARGS:-} \
    </dev/null >>"$DIR/$id.log" 2>&1 &
  echo $! >"$DIR/$id.pid"
}

# Prints `cairn admin status --json` of the first node that answers; fails when none does.
status_json() {
  local id i
  for id in "${NODES[@]}"; do
    i=$(node_index "$id")
    if "$CAIRN" admin --endpoint "http://127.0.0.1:900$i" status --json 2>/dev/null; then return 0; fi
  done
  return 1
}

cmd_start() {
  [ -x "$CAIRN" ] || die "no cairn binary at $CAIRN: run \`make cluster\` (or \`make build\`) first"
  command -v curl >/dev/null || die "curl is missing: run scripts/install-deps.sh"
  mkdir -p "$DIR"
  chmod 0700 "$DIR"
  if [ ! -s "$DIR/secret" ]; then
    (umask 077; random_chars 64 'a-f0-9' >"$DIR/secret")
    echo "made the cluster secret: cluster/secret"
  fi
  if [ ! -s "$DIR/credentials" ]; then
    (
      umask 077
      {
        echo "# Root credentials of the local Cairn cluster: every node accepts them."
        echo "# Load them into a shell with:  set -a; . cluster/credentials; set +a"
        echo "AWS_ACCESS_KEY_ID=CAIRN$(random_chars 15 'A-Z0-9')"
        echo "AWS_SECRET_ACCESS_KEY=$(random_chars 40 'A-Za-z0-9')"
      } >"$DIR/credentials"
    )
    echo "made the root credentials: cluster/credentials"
  fi
  load_credentials
  start_etcd
  for id in "${NODES[@]}"; do start_node "$id"; done

  local deadline=$((SECONDS + FORM_WAIT)) doc=""
  while :; do
    for id in "${NODES[@]}"; do
      alive "$DIR/$id.pid" || die "$id exited at start-up; see cluster/$id.log:
$(tail -n 5 "$DIR/$id.log")"
    done
    if doc=$(status_json) && python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if len(s["nodes"]) == 3 and s["manager"] else 1)' <<<"$doc"; then
      break
    fi
    [ $SECONDS -lt $deadline ] || die "no cluster of three nodes with a manager after ${FORM_WAIT} s; see cluster/*.log"
    sleep 0.5
  done

  "$CAIRN" admin --endpoint http://127.0.0.1:9001 status
  cat <<EOF

The cluster runs: etcd http://$ETCD_CLIENT, nodes n1..n3 with S3 on http://127.0.0.1:9001..9003.
  set -a; . cluster/credentials; set +a        # the root credentials every node accepts
  $CAIRN admin --endpoint http://127.0.0.1:9002 status
  aws --endpoint-url http://127.0.0.1:9001 s3 mb s3://my-bucket     # any node: the same buckets
  aws --endpoint-url http://127.0.0.1:9002 s3 cp README.md s3://my-bucket/
  $CAIRN admin --endpoint http://127.0.0.1:9003 user create alice   # users and keys: the cluster's
  kill -9 \$(cat cluster/n3.pid); sleep 4; make cluster-status        # a node leaves its chains
  make cluster-stop                                                    # stop everything
Objects are stored on three nodes; every node serves them all. Logs: cluster/*.log.
EOF
}

stop_pidfile() {  # stop_pidfile NAME: SIGTERM, then SIGKILL after STOP_WAIT seconds
  local name=$1 file="$DIR/$1.pid" pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if alive "$file"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_WAIT))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name (pid $pid) still running ${STOP_WAIT} s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    else
      echo "$name stopped"
    fi
  fi
  rm -f "$file"
}

cmd_stop() {
  [ -d "$DIR" ] || { echo "no cluster directory: nothing to stop"; return; }
  # Nodes first: each leaves the cluster through etcd as it stops.
  local pids=() id
  for id in "${NODES[@]}"; do stop_pidfile "$id" & pids+=($!); done
  wait "${pids[@]}"
  stop_pidfile etcd
}

cmd_status() {
  [ -x "$CAIRN" ] || die "no cairn binary at $CAIRN"
  [ -f "$DIR/credentials" ] || die "no cluster/credentials: start the cluster first (make cluster)"
  load_credentials
  local id i
  for id in "${NODES[@]}"; do
    i=$(node_index "$id")
    if "$CAIRN" admin --endpoint "http://127.0.0.1:900$i" status 2>/dev/null; then return 0; fi
  done
  die "no node answers on 127.0.0.1:9001-9003 (make cluster starts them)"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) die "usage: scripts/cluster.sh start|stop|status [CAIRN]" ;;
esac
