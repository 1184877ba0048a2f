#!/usr/bin/env bash
# rangeguard vs ONNX Runtime vs PyTorch on the parity zoo: the speed evidence of issue 4.
#
#   scripts/bench_vs_ort.sh [bench_vs_ort.py options...]
#
# 1. scripts/setup.sh (idempotent: installs what is missing, builds build/rangeguard),
# 2. exports the models that are not yet in $PARITY_MODELS (default build/parity-models,
#    the cache tests/parity/run.sh uses too),
# 3. runs scripts/bench_vs_ort.py with the given options; the tables go to stdout and, as
#    Markdown, to build/bench_vs_ort.md (raw runs as JSON in build/bench_vs_ort.json), unless
#    --markdown / --json are given.
# Examples:
#   scripts/bench_vs_ort.sh                                   # the full set: ~20-30 min
#   scripts/bench_vs_ort.sh --models resnet18,mobilenet_v2 --rounds 1 --seconds 2
#   scripts/bench_vs_ort.sh --precision bf16 --models resnet50
#   SKIP_SETUP=1 scripts/bench_vs_ort.sh ...                 # do not run setup.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=/usr/bin/python3   # Debian's interpreter: python3-torch/-torchvision/-onnx belong to it
MODELS_DIR="${PARITY_MODELS:-$ROOT/build/parity-models}"
DEFAULT_MODELS=resnet50,resnet18,mobilenet_v2,mobilenet_v3_small,efficientnet_b0,vit_small

# The models to export: --models' value, or the default set.
MODELS="$DEFAULT_MODELS"
HAVE_MD=0
HAVE_JSON=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --models) [ $((i + 1)) -lt ${#args[@]} ] && MODELS="${args[i + 1]}" ;;
    --models=*) MODELS="${args[i]#--models=}" ;;
    --markdown | --markdown=*) HAVE_MD=1 ;;
    --json | --json=*) HAVE_JSON=1 ;;
    -h | --help) exec "$PY" "$ROOT/scripts/bench_vs_ort.py" --help ;;
  esac
done
extra=()
[ "$HAVE_MD" = 1 ] || extra+=(--markdown "$ROOT/build/bench_vs_ort.md")
[ "$HAVE_JSON" = 1 ] || extra+=(--json "$ROOT/build/bench_vs_ort.json")

if [ "${SKIP_SETUP:-0}" != 1 ]; then
  echo "== scripts/setup.sh" >&2
  if ! "$ROOT/scripts/setup.sh" >&2; then
    if [ -x "$ROOT/build/rangeguard" ]; then
      echo "bench_vs_ort: WARNING: scripts/setup.sh failed; benchmarking the existing build/rangeguard" \
           "($(date -r "$ROOT/build/rangeguard" '+%F %T')), which may be stale" >&2
    else
      echo "bench_vs_ort: scripts/setup.sh failed and there is no build/rangeguard" >&2
      exit 1
    fi
  fi
fi
echo "== exporting missing models into $MODELS_DIR" >&2
"$PY" "$ROOT/tests/parity/export_models.py" --out "$MODELS_DIR" --only "$MODELS" >&2

# bench_vs_ort.py prints the command line as the user typed it: this script's name and the
# user's options (those after the ones this script puts first).
pre=(--models "$MODELS" --models-dir "$MODELS_DIR" "${extra[@]}")
export BENCH_VS_ORT_WRAPPER=scripts/bench_vs_ort.sh BENCH_VS_ORT_WRAPPER_ARGS=${#pre[@]}
exec "$PY" "$ROOT/scripts/bench_vs_ort.py" "${pre[@]}" "$@"
