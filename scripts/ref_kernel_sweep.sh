#!/usr/bin/env bash
# Which steps of each parity model run a reference kernel (rangeguard's own `ref`, or
# oneDNN's `ref` and unvectorised `simple:any` concat), in fp32 and bf16, with their share
# of a run.
# A reference kernel on a hot path is a performance bug: this sweep found a bf16
# GlobalAveragePool taking 25 of regnet_y_400mf's 37 ms, and DenseNet joins in oneDNN's
# reference concat. Times come from `bench --profile` (1 thread, short runs): good for
# spotting, not for quoting.
# Usage: scripts/ref_kernel_sweep.sh [MODEL...]   (default: every model in $PARITY_MODELS)
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PARITY_MODELS:-build/parity-models}
BIN=${BIN:-build/rangeguard}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  for f in "$P"/*.onnx; do models+=("$(basename "$f" .onnx)"); done
fi
for m in "${models[@]}"; do
  [ -f "$P/$m.onnx" ] || { echo "ref_kernel_sweep: $P/$m.onnx missing (run tests/parity/run.sh build first)" >&2; exit 1; }
  for pr in fp32 bf16; do
    "$BIN" bench "$P/$m.onnx" --data "$P/$m.input.npy" --threads 1 --precision "$pr" --duration 0.5 --warmup 0.2 \
      --profile --json "$OUT/p.json" >/dev/null 2>&1 || { echo "$m $pr: bench failed" >&2; continue; }
    /usr/bin/python3 - "$OUT/p.json" "$m" "$pr" <<'PY'
import collections, json, sys
path, model, precision = sys.argv[1:]
steps = json.load(open(path))["profile"]
total = sum(s["ms"] for s in steps)
ref = collections.defaultdict(lambda: [0.0, 0])
for s in steps:
    impl = s["impl"]
    if impl == "ref" or ":ref" in impl or impl.endswith("simple:any"):
        ref[(s["op"], impl)][0] += s["ms"]
        ref[(s["op"], impl)][1] += 1
found = ", ".join(f"{op} x{n} {impl} {ms:.3f} ms ({100 * ms / total:.1f}%)"
                  for (op, impl), (ms, n) in sorted(ref.items(), key=lambda kv: -kv[1][0]))
print(f"{model:20s} {precision}  {total:8.2f} ms/run  {found or 'none'}")
PY
  done
done
