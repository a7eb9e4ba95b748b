#!/usr/bin/env bash
# The AWS CLI (Debian's awscli 2.9, /usr/bin/aws) against `cairn server`: aws s3 mb, cp both ways
# (stdin/stdout too), ls, mv, rm, rb, sync both ways with a second sync that transfers nothing,
# presign, a 70 MiB multipart upload and multipart server-side copy checked by ETag and checksum,
# and aws s3api calls with their error exits.
#
# Usage: tests/e2e/awscli.sh [CAIRN]     (CAIRN: the cairn binary, default $CAIRN_BIN)
# Configuration lives in a scratch directory (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_under_server "${BASH_SOURCE[0]}" "$@"

AWS_BIN=/usr/bin/aws
require_tool "$AWS_BIN"
require_tool /usr/bin/curl

export AWS_CONFIG_FILE=$work/aws-config
export AWS_SHARED_CREDENTIALS_FILE=$work/aws-credentials
export AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true
cat >"$AWS_CONFIG_FILE" <<EOF
[default]
region = $CAIRN_E2E_REGION
output = text
retry_mode = standard
max_attempts = 1
s3 =
  addressing_style = path
EOF
cat >"$AWS_SHARED_CREDENTIALS_FILE" <<EOF
[default]
aws_access_key_id = $CAIRN_E2E_ACCESS_KEY
aws_secret_access_key = $CAIRN_E2E_SECRET_KEY
EOF

aws() { "$AWS_BIN" --endpoint-url "$CAIRN_E2E_ENDPOINT" "$@"; }

B=cli-bucket
MiB=$((1024 * 1024))
# aws s3 defaults: multipart from 8 MiB, in 8 MiB parts.
PART=$((8 * MiB))

step "mb"
out=$(aws s3 mb "s3://$B")
expect_eq "$out" "make_bucket: $B" "aws s3 mb"
if err=$(aws s3 mb "s3://$B" 2>&1); then fail "a second mb of $B succeeded"; fi
expect_contains "$err" "BucketAlreadyOwnedByYou" "second mb"

step "cp up and down"
echo "a small object" >small.txt
aws s3 cp --no-progress small.txt "s3://$B/dir/small.txt" >/dev/null
aws s3 cp --no-progress "s3://$B/dir/small.txt" small.back >/dev/null
expect_same_file small.txt small.back
aws s3 cp --no-progress small.txt "s3://$B/dir/naïve name+plus.txt" >/dev/null
aws s3 cp --no-progress "s3://$B/dir/naïve name+plus.txt" unicode.back >/dev/null
expect_same_file small.txt unicode.back
printf 'from stdin\n' | aws s3 cp --no-progress - "s3://$B/stdin.txt"
expect_eq "$(aws s3 cp --no-progress "s3://$B/stdin.txt" -)" "from stdin" "cp to stdout"

step "ls"
expect_contains "$(aws s3 ls)" " $B" "aws s3 ls (buckets)"
top=$(aws s3 ls "s3://$B/")
expect_contains "$top" "PRE dir/" "aws s3 ls bucket"
expect_contains "$top" "stdin.txt" "aws s3 ls bucket"
inside=$(aws s3 ls "s3://$B/dir/")
expect_contains "$inside" "         15 small.txt" "aws s3 ls dir (size and name)"
expect_contains "$inside" "naïve name+plus.txt" "aws s3 ls dir"
expect_eq "$(aws s3 ls --recursive "s3://$B" | wc -l)" 3 "objects listed recursively"

step "multipart upload of 70 MiB"
random_file big.bin $((70 * MiB))
aws s3 cp --no-progress big.bin "s3://$B/big.bin" >/dev/null
expected_etag=$(multipart_etag big.bin $PART)
etag=$(aws s3api head-object --bucket "$B" --key big.bin --query ETag --output text)
expect_eq "$etag" "\"$expected_etag\"" "ETag of the multipart upload"
expect_eq "$(aws s3api head-object --bucket "$B" --key big.bin --query ContentLength --output text)" \
  $((70 * MiB)) "ContentLength"
aws s3 cp --no-progress "s3://$B/big.bin" big.back >/dev/null
expect_eq "$(sha256sum <big.back)" "$(sha256sum <big.bin)" "sha256 of the downloaded object"

step "mv"
aws s3 mv --no-progress "s3://$B/dir/small.txt" "s3://$B/moved.txt" >/dev/null
if aws s3api head-object --bucket "$B" --key dir/small.txt >/dev/null 2>&1; then fail "mv left its source"; fi
aws s3 cp --no-progress "s3://$B/moved.txt" moved.back >/dev/null
expect_same_file small.txt moved.back

step "sync up, again (nothing), down, again (nothing)"
make_tree tree
count=$(files_of tree | wc -l)
out=$(aws s3 sync --no-progress tree "s3://$B/tree")
expect_eq "$(count_lines '^upload: ' "$out")" "$count" "files uploaded by the first sync"
out=$(aws s3 sync --no-progress tree "s3://$B/tree")
expect_eq "$out" "" "second sync up"
out=$(aws s3 sync --no-progress "s3://$B/tree" down)
expect_eq "$(count_lines '^download: ' "$out")" "$count" "files downloaded by the first sync"
expect_same_tree tree down
out=$(aws s3 sync --no-progress "s3://$B/tree" down)
expect_eq "$out" "" "second sync down"

step "sync --delete"
rm tree/sub/c.log
echo "changed, longer than before" >tree/a.txt
out=$(aws s3 sync --no-progress tree "s3://$B/tree" --delete)
expect_contains "$out" "delete: s3://$B/tree/sub/c.log" "sync --delete"
expect_contains "$out" "upload: tree/a.txt to s3://$B/tree/a.txt" "sync of a changed file"
expect_eq "$(aws s3 ls --recursive "s3://$B/tree/" | wc -l)" $((count - 1)) "objects after sync --delete"

step "presign"
url=$(aws s3 presign "s3://$B/moved.txt" --expires-in 300)
curl -sf --noproxy '*' -o presigned.back "$url"
expect_same_file small.txt presigned.back

step "s3api"
printf 'typed' >typed.txt
aws s3api put-object --bucket "$B" --key api/typed --body typed.txt --content-type text/x-typed \
  --metadata colour=green,size=small >/dev/null
expect_eq "$(aws s3api head-object --bucket "$B" --key api/typed --query ContentType)" "text/x-typed" "ContentType"
expect_eq "$(aws s3api head-object --bucket "$B" --key api/typed --query Metadata.colour)" "green" "metadata"
aws s3api get-object --bucket "$B" --key api/typed --range bytes=1-3 range.out >/dev/null
expect_eq "$(cat range.out)" "ype" "ranged get-object"
expect_eq "$(aws s3api list-objects-v2 --bucket "$B" --prefix api/ --query 'Contents[].Key')" "api/typed" "list-objects-v2"
expect_eq "$(aws s3api list-objects --bucket "$B" --delimiter / --query 'CommonPrefixes[].Prefix' | tr '\t' ' ')" \
  "api/ dir/ tree/" "list-objects with a delimiter"
expect_eq "$(aws s3api get-bucket-location --bucket "$B" --query LocationConstraint)" "None" "get-bucket-location"
aws s3api copy-object --bucket "$B" --key api/copied --copy-source "$B/api/typed" >/dev/null
expect_eq "$(aws s3api head-object --bucket "$B" --key api/copied --query Metadata.size)" "small" "copy-object metadata"
aws s3api delete-objects --bucket "$B" --delete 'Objects=[{Key=api/typed},{Key=api/copied}],Quiet=true' >/dev/null
expect_eq "$(aws s3api list-objects-v2 --no-paginate --bucket "$B" --prefix api/ --query KeyCount)" "0" "after delete-objects"
status=0
err=$(aws s3api head-object --bucket "$B" --key missing 2>&1) || status=$?
expect_eq "$status" 254 "exit status of head-object on a missing key"
expect_contains "$err" "Not Found" "head-object on a missing key"
status=0
err=$(aws s3api get-object --bucket "$B" --key missing missing.out 2>&1) || status=$?
expect_eq "$status" 254 "exit status of get-object on a missing key"
expect_contains "$err" "NoSuchKey" "get-object on a missing key"

step "multipart server-side copy (UploadPartCopy)"
# Near the end: for a multipart copy the CLI (--copy-props default) also reads the source's tags
# (GetObjectTagging) and its properties (HeadObject).
aws s3 cp --no-progress "s3://$B/big.bin" "s3://$B/copy/big.bin" >/dev/null
etag=$(aws s3api head-object --bucket "$B" --key copy/big.bin --query ETag --output text)
expect_eq "$etag" "\"$expected_etag\"" "ETag of the copy (same 8 MiB parts)"
aws s3 cp --no-progress "s3://$B/copy/big.bin" copy.back >/dev/null
expect_eq "$(sha256sum <copy.back)" "$(sha256sum <big.bin)" "sha256 of the copied object"
rm -f big.back copy.back

step "rm and rb"
out=$(aws s3 rm "s3://$B/moved.txt")
expect_eq "$out" "delete: s3://$B/moved.txt" "aws s3 rm"
aws s3 rm --recursive "s3://$B/tree" >/dev/null
expect_eq "$(aws s3 ls --recursive "s3://$B/tree/" | wc -l)" 0 "objects under tree/ after rm --recursive"
if err=$(aws s3 rb "s3://$B" 2>&1); then fail "rb of a bucket with objects succeeded"; fi
expect_contains "$err" "BucketNotEmpty" "rb of a bucket with objects"
aws s3 rb --force "s3://$B" >/dev/null
expect_not_contains "$(aws s3 ls)" " $B" "buckets after rb"

echo "awscli: all checks passed"
