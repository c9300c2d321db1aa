#!/usr/bin/env bash
# Installs everything nnkit needs to build, test and benchmark, from Debian only.
# Idempotent: skips apt-get entirely when every package is already present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost-program-options-dev
  libxtensor-dev libxtensor-blas-dev xtl-dev
  libopenblas-dev
  libpng-dev zlib1g-dev libzip-dev
  libgtest-dev libbenchmark-dev
  nlohmann-json3-dev
  librandom123-dev
  python3-numpy
  help2man
  parallel
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
