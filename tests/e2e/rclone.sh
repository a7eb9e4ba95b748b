#!/usr/bin/env bash
# rclone (Debian's 1.60, /usr/bin/rclone) against `cairn server`: mkdir, copy, check, lsf (with
# ListObjects v1 and v2 in pages of 2), sync after local changes, delete with a filter, copy
# back, a multipart upload (5 MiB parts), cat, purge.
#
# Usage: tests/e2e/rclone.sh [CAIRN]     (CAIRN: the cairn binary, default $CAIRN_BIN)
# The remote is configured through RCLONE_CONFIG_CAIRN_* (provider Other, path style); the
# configuration file is an empty one in a scratch directory.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_under_server "${BASH_SOURCE[0]}" "$@"

RCLONE_BIN=/usr/bin/rclone
require_tool "$RCLONE_BIN"

export RCLONE_CONFIG=$work/rclone.conf
: >"$RCLONE_CONFIG"
export RCLONE_CONFIG_CAIRN_TYPE=s3
export RCLONE_CONFIG_CAIRN_PROVIDER=Other
export RCLONE_CONFIG_CAIRN_ACCESS_KEY_ID=$CAIRN_E2E_ACCESS_KEY
export RCLONE_CONFIG_CAIRN_SECRET_ACCESS_KEY=$CAIRN_E2E_SECRET_KEY
export RCLONE_CONFIG_CAIRN_ENDPOINT=$CAIRN_E2E_ENDPOINT
export RCLONE_CONFIG_CAIRN_REGION=$CAIRN_E2E_REGION
export RCLONE_CONFIG_CAIRN_FORCE_PATH_STYLE=true

# No retries: a retried request would hide the server's first answer.
rclone() { "$RCLONE_BIN" --retries 1 --low-level-retries 1 --contimeout 10s --timeout 60s "$@"; }

B=rclone-bucket
R=cairn:$B
MiB=$((1024 * 1024))

step "mkdir"
rclone mkdir "$R"
expect_contains "$(rclone lsd cairn:)" " $B" "rclone lsd (buckets)"

step "copy and check"
make_tree tree
rclone copy tree "$R/tree"
rclone check tree "$R/tree"
expect_eq "$(rclone lsf -R --files-only "$R/tree" | LC_ALL=C sort)" "$(files_of tree)" "rclone lsf after copy"

step "listing in pages of 2, ListObjects v1 and v2"
for version in 1 2; do
  listed=$(rclone lsf -R --files-only --s3-list-version $version --s3-list-chunk 2 "$R/tree" | LC_ALL=C sort)
  expect_eq "$listed" "$(files_of tree)" "lsf with list version $version"
  expect_eq "$(rclone lsf --s3-list-version $version --s3-list-chunk 2 "$R/tree" | LC_ALL=C sort | tr '\n' ' ')" \
    "a.txt b.bin empty.txt sub/ with space/ ünïcödé/ " "top level of tree with list version $version"
done

step "sync after local changes"
rm "tree/with space/e f.txt"
rmdir "tree/with space"  # S3 has no empty directories to compare with
echo "changed, longer than before" >tree/a.txt
echo "new" >tree/sub/new.txt
rclone sync tree "$R/tree"
rclone check tree "$R/tree"
expect_eq "$(rclone lsf -R --files-only "$R/tree" | LC_ALL=C sort)" "$(files_of tree)" "rclone lsf after sync"
expect_eq "$(rclone cat "$R/tree/a.txt")" "changed, longer than before" "rclone cat"

step "delete with a filter"
rclone delete "$R/tree" --include '*.log'
expect_not_contains "$(rclone lsf -R "$R/tree")" "c.log" "listing after delete"
rm tree/sub/c.log
rclone check tree "$R/tree"

step "copy back"
rclone copy "$R/tree" down
expect_same_tree tree down

step "multipart upload (12 MiB in 5 MiB parts)"
mkdir big
random_file big/big.bin $((12 * MiB))
rclone copy --s3-upload-cutoff 5M --s3-chunk-size 5M big "$R/big"
expect_eq "$(rclone lsf --format s "$R/big/big.bin")" $((12 * MiB)) "size of the multipart object"
rclone check big "$R/big"
rclone copy "$R/big" bigdown
expect_same_file big/big.bin bigdown/big.bin

step "purge"
rclone purge "$R"
expect_not_contains "$(rclone lsd cairn:)" " $B" "buckets after purge"

echo "rclone: all checks passed"
