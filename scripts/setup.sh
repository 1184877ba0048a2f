#!/usr/bin/env bash
# Installs every build and test dependency (Debian packages + ONNX Runtime from npm),
# then configures and builds rangeguard into build/. Safe to run again: each step is
# skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libdnnl-dev libonnx-dev libprotobuf-dev protobuf-compiler
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libonnx-testdata dataset-fashion-mnist
  python3 python3-numpy python3-torch python3-torchvision python3-onnx
  libopenblas0-pthread
  clang-14 libclang-rt-14-dev
  zlib1g-dev libpng-dev libjpeg-dev libssl-dev
  libcpp-httplib-dev wrk
  hyperfine
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Node.js + npm: use the machine's own when present (a NodeSource nodejs conflicts with
# Debian's npm package), otherwise Debian's.
if ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi

# ONNX Runtime (the independent reference and the speed peer). --ignore-scripts: the
# package's install hook tries to download GPU binaries, which fails offline; the CPU
# library ships inside the package.
ORT_DIR=third_party/ort
if [ ! -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ]; then
  mkdir -p "$ORT_DIR"
  (cd "$ORT_DIR" && { [ -f package.json ] || echo '{"name":"rg-ort","private":true}' > package.json; } \
     && npm install --ignore-scripts --no-audit --no-fund onnxruntime-node@1.22.0)
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
