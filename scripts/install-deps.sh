#!/usr/bin/env bash
# Installs every Debian package that building, testing and benchmarking Cairn needs.
# Idempotent: packages already present are skipped, and `apt-get update` runs only
# when something is missing. Needs root (or sudo) when it has to install anything.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  # libraries (architecture brief, decision 8)
  liburing-dev librocksdb-dev libisal-dev libssl-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libcli11-dev libtomlplusplus-dev libboost-dev libboost-system-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # benchmarks and tests
  fio python3 procps curl
  # the real S3 clients the end-to-end tests drive (issue 3)
  awscli python3-boto3 python3-pytest s3cmd rclone
  # etcd, the consensus of cluster mode, for the cluster tests; etcdctl for debugging (issue 5)
  etcd-server etcd-client
  # a real browser for the POST policy and CORS end-to-end test (issue 4)
  chromium chromium-driver python3-selenium fonts-liberation
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
