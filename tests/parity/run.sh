#!/usr/bin/env bash
# Parity test: rangeguard vs ONNX Runtime vs PyTorch on the seeded model zoo.
#
#   tests/parity/run.sh [BUILD_DIR] [check_parity.py options...]
#
# BUILD_DIR (default: build) holds the rangeguard binary. The models are exported once into
# a cache folder, $PARITY_MODELS (default: build/parity-models; build/ is git-ignored), and
# re-exported only when missing. Options after BUILD_DIR go to check_parity.py
# (--only a,b --tol 1e-4 --threads N --keep DIR --json FILE); --only also limits the export.
# Examples:
#   tests/parity/run.sh
#   tests/parity/run.sh build --only resnet18,vit_small
#   PARITY_MODELS=/tmp/zoo tests/parity/run.sh build-debug --tol 1e-3
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY=/usr/bin/python3   # Debian's interpreter: python3-torch/-torchvision/-onnx belong to it

BUILD_DIR=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  BUILD_DIR="$1"
  shift
fi
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
MODELS="${PARITY_MODELS:-$ROOT/build/parity-models}"
RG="$BUILD_DIR/rangeguard"

# Pick --only out of the options so that the export is limited too.
ONLY=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --only) [ $((i + 1)) -lt ${#args[@]} ] && ONLY=(--only "${args[i + 1]}") ;;
    --only=*) ONLY=(--only "${args[i]#--only=}") ;;
  esac
done

if [ ! -x "$RG" ]; then
  echo "parity: $RG not found or not executable (build first: cmake --build ${BUILD_DIR#"$ROOT"/})" >&2
  exit 1
fi
if [ ! -f "$ROOT/third_party/ort/node_modules/onnxruntime-node/package.json" ]; then
  echo "parity: ONNX Runtime is missing under third_party/ort (run scripts/setup.sh)" >&2
  exit 1
fi

echo "== exporting models into $MODELS"
"$PY" "$ROOT/tests/parity/export_models.py" --out "$MODELS" "${ONLY[@]}"
echo "== checking $RG"
exec "$PY" "$ROOT/tests/parity/check_parity.py" --models "$MODELS" --rangeguard "$RG" "$@"
