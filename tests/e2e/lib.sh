# shellcheck shell=bash
# Sourced by the client scripts (awscli.sh, s3cmd.sh, rclone.sh): the server they run against,
# isolation from the user's configuration, and small assertions.
#
# e2e_under_server SCRIPT [CAIRN]: when the environment names no server (CAIRN_E2E_ENDPOINT, set
# by server.py), runs SCRIPT again under `server.py --run`, which starts a fresh `cairn server`
# (CAIRN, default $CAIRN_BIN), stops it afterwards and prints its log on failure. Returns only
# inside that second run. Starting a server is server.py's job alone.
#
# Afterwards: HOME is a scratch directory (no ~/.aws, ~/.s3cfg or rclone config can leak in),
# $work is the scratch directory server.py removes, and any failing command ends the script
# with its line printed.

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Debian's interpreter and clients, by absolute path: PATH may start with pyenv shims.
E2E_PYTHON=/usr/bin/python3

e2e_under_server() {
  local script=$1
  shift
  if [[ -z ${CAIRN_E2E_ENDPOINT:-} ]]; then
    exec "$E2E_PYTHON" "$E2E_DIR/server.py" --bin "${1:-${CAIRN_BIN:-}}" --run -- bash "$script"
  fi
  work=$CAIRN_E2E_TMP
  export HOME=$work/home
  mkdir -p "$HOME"
  unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN \
    AWS_DEFAULT_REGION AWS_REGION AWS_ENDPOINT_URL AWS_CA_BUNDLE
  export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
  set -Eeuo pipefail
  trap 'e2e_on_error $? "$BASH_COMMAND" $LINENO' ERR
  cd "$work"
}

# The ERR trap: reports the failing command with its call stack. Only in the script's own shell:
# in a command substitution the failure shows again as its caller's.
e2e_on_error() { # STATUS COMMAND LINE
  ((BASH_SUBSHELL == 0)) || return 0
  echo "FAIL (status $1): $2" >&2
  echo "  at ${BASH_SOURCE[1]##*/}:$3" >&2
  local i
  for ((i = 1; i < ${#FUNCNAME[@]} - 1; i++)); do
    echo "  called from ${BASH_SOURCE[i + 1]##*/}:${BASH_LINENO[i]}" >&2
  done
}

step() { printf '\n== [%3ds] %s\n' "$SECONDS" "$*"; }

# Ends the script with MESSAGE and the script line that called into this file.
fail() { # MESSAGE
  local i=1
  while ((i < ${#BASH_SOURCE[@]} - 1)) && [[ ${BASH_SOURCE[i]} == "${BASH_SOURCE[0]}" ]]; do
    ((i++))
  done
  echo "FAIL: ${BASH_SOURCE[i]##*/}:${BASH_LINENO[i - 1]}: $*" >&2
  exit 1
}

require_tool() { [[ -x $1 ]] || fail "$1 is missing: run scripts/install-deps.sh"; }

expect_eq() { # ACTUAL EXPECTED WHAT
  [[ $1 == "$2" ]] || fail "$3: expected [$2], got [$1]"
}

expect_contains() { # TEXT NEEDLE WHAT
  [[ $1 == *"$2"* ]] || fail "$3: [$2] not in output:"$'\n'"$1"
}

expect_not_contains() { # TEXT NEEDLE WHAT
  [[ $1 != *"$2"* ]] || fail "$3: [$2] unexpectedly in output:"$'\n'"$1"
}

expect_same_file() {
  cmp -s "$1" "$2" || fail "$1 and $2 differ ($(wc -c <"$1") vs $(wc -c <"$2") bytes)"
}

expect_same_tree() {
  local differences
  differences=$(diff -r "$1" "$2" 2>&1) || fail "$1 and $2 differ:"$'\n'"$differences"
}

random_file() { # PATH BYTES
  head -c "$2" /dev/urandom >"$1"
}

# How many lines of TEXT match the extended regular expression PATTERN (0 is not a failure).
count_lines() { # PATTERN TEXT
  grep -c -E -- "$1" <<<"$2" || true
}

md5_of() { md5sum "$1" | cut -d' ' -f1; }

# The S3 ETag of FILE uploaded in parts of PART_BYTES: md5 of the concatenated binary part md5s,
# then "-<parts>"; a plain md5 when one part holds it all.
multipart_etag() { # FILE PART_BYTES
  "$E2E_PYTHON" - "$1" "$2" <<'EOF'
import hashlib, sys
size = int(sys.argv[2])
digests = []
with open(sys.argv[1], "rb") as f:
    while chunk := f.read(size):
        digests.append(hashlib.md5(chunk).digest())
print("%s-%d" % (hashlib.md5(b"".join(digests)).hexdigest(), len(digests)))
EOF
}

# A small directory tree for sync tests: nested directories, spaces, non-ASCII names, an empty
# file, and one file over 1 MiB.
make_tree() { # DIR
  local d=$1
  mkdir -p "$d/sub/deeper" "$d/with space" "$d/ünïcödé"
  echo "alpha" >"$d/a.txt"
  random_file "$d/b.bin" 100000
  echo "log line" >"$d/sub/c.log"
  echo "deep" >"$d/sub/deeper/d.txt"
  echo "spaced" >"$d/with space/e f.txt"
  echo "straße" >"$d/ünïcödé/ß.txt"
  : >"$d/empty.txt"
  random_file "$d/sub/big.bin" $((3 * 1024 * 1024 / 2))
}

# Relative paths of the files under DIR, one a line, in byte order.
files_of() { # DIR
  (cd "$1" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
}
