#!/usr/bin/env bash
# s3cmd (Debian's 2.3, /usr/bin/s3cmd) against `cairn server`: mb, put (single and multipart),
# get, ls, la, info (object and bucket), cp, del, sync both ways with a second sync that
# transfers nothing, sync --delete-removed, rb. s3cmd checks the MD5 of every download.
#
# Usage: tests/e2e/s3cmd.sh [CAIRN]     (CAIRN: the cairn binary, default $CAIRN_BIN)
# The configuration is a generated file in a scratch directory: path-style (host_bucket without
# %(bucket)s), plain HTTP, SigV4.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_under_server "${BASH_SOURCE[0]}" "$@"

S3CMD_BIN=/usr/bin/s3cmd
require_tool "$S3CMD_BIN"

config=$work/s3cmd.cfg
cat >"$config" <<EOF
[default]
access_key = $CAIRN_E2E_ACCESS_KEY
secret_key = $CAIRN_E2E_SECRET_KEY
host_base = $CAIRN_E2E_HOST:$CAIRN_E2E_PORT
host_bucket = $CAIRN_E2E_HOST:$CAIRN_E2E_PORT
bucket_location = $CAIRN_E2E_REGION
use_https = False
signature_v2 = False
check_ssl_certificate = False
multipart_chunk_size_mb = 5
progress_meter = False
EOF

s3cmd() { "$S3CMD_BIN" -c "$config" "$@"; }

B=s3cmd-bucket
MiB=$((1024 * 1024))

step "mb"
expect_eq "$(s3cmd mb "s3://$B")" "Bucket 's3://$B/' created" "s3cmd mb"

step "put and get"
echo "small object via s3cmd" >small.txt
s3cmd put small.txt "s3://$B/small.txt" >/dev/null
s3cmd get "s3://$B/small.txt" small.back >/dev/null
expect_same_file small.txt small.back
s3cmd put small.txt "s3://$B/dir/naïve name.txt" >/dev/null
s3cmd get "s3://$B/dir/naïve name.txt" unicode.back >/dev/null
expect_same_file small.txt unicode.back

step "multipart put (12 MiB in 5 MiB parts) and get"
random_file big.bin $((12 * MiB))
# s3cmd shows the parts only in its debug log.
debug=$(s3cmd --debug put big.bin "s3://$B/big.bin" 2>&1)
expect_contains "$debug" "MultiPart: Upload finished: 3 parts" "multipart put"
s3cmd get "s3://$B/big.bin" big.back >/dev/null
expect_same_file big.bin big.back
info=$(s3cmd info "s3://$B/big.bin")
expect_contains "$info" "File size: $((12 * MiB))" "s3cmd info of the multipart object"
expect_contains "$info" "MD5 sum:   $(md5_of big.bin)" "s3cmd info of the multipart object"

step "ls, la, info"
expect_contains "$(s3cmd ls)" "s3://$B" "s3cmd ls (buckets)"
listing=$(s3cmd ls "s3://$B")
expect_contains "$listing" "DIR  s3://$B/dir/" "s3cmd ls bucket"
expect_contains "$listing" "s3://$B/small.txt" "s3cmd ls bucket"
expect_eq "$(s3cmd ls --recursive "s3://$B" | wc -l)" 3 "objects listed recursively"
expect_contains "$(s3cmd la)" "DIR  s3://$B/dir/" "s3cmd la"
expect_contains "$(s3cmd la --recursive)" "s3://$B/dir/naïve name.txt" "s3cmd la --recursive"
info=$(s3cmd info "s3://$B/small.txt")
expect_contains "$info" "File size: 23" "s3cmd info"
expect_contains "$info" "MD5 sum:   $(md5_of small.txt)" "s3cmd info"
expect_contains "$(s3cmd info "s3://$B")" "Location:  $CAIRN_E2E_REGION" "s3cmd info of the bucket"

step "cp and del"
s3cmd cp "s3://$B/small.txt" "s3://$B/copy.txt" >/dev/null
s3cmd get "s3://$B/copy.txt" copy.back >/dev/null
expect_same_file small.txt copy.back
expect_eq "$(s3cmd del "s3://$B/copy.txt")" "delete: 's3://$B/copy.txt'" "s3cmd del"
expect_not_contains "$(s3cmd ls "s3://$B")" "copy.txt" "listing after del"

step "sync up, again (nothing), down, again (nothing)"
make_tree tree
count=$(files_of tree | wc -l)
out=$(s3cmd sync tree/ "s3://$B/tree/")
expect_eq "$(count_lines '^upload: ' "$out")" "$count" "files uploaded by the first sync"
out=$(s3cmd sync tree/ "s3://$B/tree/")
expect_eq "$(count_lines '^upload: ' "$out")" 0 "files uploaded by the second sync"
out=$(s3cmd sync "s3://$B/tree/" down/)
expect_eq "$(count_lines '^download: ' "$out")" "$count" "files downloaded by the first sync"
expect_same_tree tree down
out=$(s3cmd sync "s3://$B/tree/" down/)
expect_eq "$(count_lines '^download: ' "$out")" 0 "files downloaded by the second sync"

step "sync --delete-removed"
rm tree/sub/c.log
echo "changed, longer than before" >tree/a.txt
out=$(s3cmd sync --delete-removed tree/ "s3://$B/tree/")
expect_contains "$out" "delete: 's3://$B/tree/sub/c.log'" "sync --delete-removed"
expect_contains "$out" "upload: 'tree/a.txt' -> 's3://$B/tree/a.txt'" "sync of a changed file"
expect_eq "$(s3cmd ls --recursive "s3://$B/tree/" | wc -l)" $((count - 1)) "objects after sync --delete-removed"
s3cmd get --force "s3://$B/tree/a.txt" a.back >/dev/null
expect_same_file tree/a.txt a.back

step "rb"
if err=$(s3cmd rb "s3://$B" 2>&1); then fail "rb of a bucket with objects succeeded"; fi
expect_contains "$err" "BucketNotEmpty" "rb of a bucket with objects"
s3cmd del --recursive --force "s3://$B" >/dev/null
expect_eq "$(s3cmd rb "s3://$B")" "Bucket 's3://$B/' removed" "s3cmd rb"
expect_not_contains "$(s3cmd ls)" "s3://$B" "buckets after rb"

echo "s3cmd: all checks passed"
