#!/usr/bin/env bash
# Protection overhead in rangeguard's runtime: each model against its protected twins
# (per-tensor clamps, per-channel clamps, and each with --detect), interleaved in one
# `rangeguard bench --compare` run per twin (single-stream, p50 ratio with a 95% CI).
# Usage: scripts/protect_overhead.sh [SECONDS per round] [ROUNDS] [THREADS]
# Models: resnet_swish (zoo), resnet50 and efficientnet_b0 (parity suite, built by
# tests/parity/run.sh; calibrated on their parity input); MODELS="densenet121 ..." picks
# others (zoo or parity names). Checks are widened by a 10%
# margin, as in scripts/demo.sh, and every model runs on in-distribution data (Fashion-MNIST
# test images, the parity input): on random noise most values are out of range, which is
# not what a deployed model sees and not what the checks are built to be cheap for.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10}
ROUNDS=${2:-10}
THREADS=${3:-1}
BIN=${BIN:-build/rangeguard}
P=build/parity-models
D=/usr/share/datasets/fashion-mnist
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "| model | protection | sites | p50 ratio protected/original [95% CI] |" > "$OUT/table.md"
echo "|---|---|---|---|" >> "$OUT/table.md"
for m in ${MODELS:-resnet_swish resnet50 efficientnet_b0}; do
  if [ -f "models/$m.onnx" ]; then src=models/$m.onnx data=$D/train-images-idx3-ubyte.gz run=$D/t10k-images-idx3-ubyte.gz
  else src=$P/$m.onnx data=$P/$m.input.npy run=$P/$m.input.npy; fi
  [ -f "$src" ] || { echo "protect_overhead: $src missing (run tests/parity/run.sh build first)" >&2; exit 1; }
  "$BIN" calibrate "$src" --data "$data" --samples 300 --out "$OUT/$m.bounds.json" >/dev/null
  for v in "tensor:--granularity tensor" "tensor+detect:--granularity tensor --detect" \
           "channel:--granularity channel" "channel+detect:--granularity channel --detect"; do
    name=${v%%:*}
    # shellcheck disable=SC2086
    "$BIN" protect "$src" --bounds "$OUT/$m.bounds.json" --out "$OUT/$m.p.onnx" --margin 0.1 ${v#*:} --json "$OUT/sites.json" >/dev/null
    echo "== $m, $name"
    "$BIN" bench "$src" --compare "$OUT/$m.p.onnx" --data "$run" --threads "$THREADS" --duration "$DUR" --rounds "$ROUNDS" --warmup 2 \
      --json "$OUT/r.json" 2>/dev/null | grep -E "^ratio"
    /usr/bin/python3 - "$OUT" "$m" "$name" >> "$OUT/table.md" <<'PY'
import json, sys
d, m, name = sys.argv[1:]
c = json.load(open(f"{d}/r.json"))["compare"]
s = json.load(open(f"{d}/sites.json"))["sites"]
n = len(s) if isinstance(s, list) else s
print(f"| {m} | {name} | {n} | {c['ratio']:.3f} [{c['ci95'][0]:.3f}, {c['ci95'][1]:.3f}] |")
PY
  done
done
echo "== protection overhead, $THREADS thread(s), $ROUNDS rounds of $DUR s per model ($(uptime | sed 's/.*load/load/'))"
cat "$OUT/table.md"
