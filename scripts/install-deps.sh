#!/usr/bin/env bash
# Installs every Debian 12 package needed to build, test, fuzz and benchmark nydus-cpp.
# Run as root (CI does); safe to run again.
set -euo pipefail

packages=(
  build-essential g++-12 cmake ninja-build pkg-config git
  libboost1.74-dev
  nlohmann-json3-dev libtomlplusplus-dev libexpected-dev
  libspdlog-dev libfmt-dev libcli11-dev
  libfuse3-dev fuse3
  liblz4-dev libzstd-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev llvm-14
  libcurl4-openssl-dev docker-registry apache2-utils openssl
  curl python3 procps erofs-utils file dpkg-dev
  python3-prometheus-client python3-jsonschema python3-yaml
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (apt-get needs it)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps.sh: all packages present"
  exit 0
fi
echo "install-deps.sh: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
