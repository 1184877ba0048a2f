#!/usr/bin/env bash
# The main job on the bundled default, in a few minutes: set everything up, then take the
# zoo's Swish ResNet (trained on Fashion-MNIST) through the whole story:
#   accuracy -> calibrate -> protect -> a paired fault-injection campaign -> overhead,
# ending in one table. Outputs land in build/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
RG=build/rangeguard
MODEL=models/resnet_swish.onnx
D=/usr/share/datasets/fashion-mnist
OUT=build/demo
mkdir -p "$OUT"

echo "== 1. the model: $MODEL"
$RG info "$MODEL" | head -12
echo "== 2. accuracy on the 10,000 Fashion-MNIST test images"
$RG accuracy "$MODEL" --data $D/t10k-images-idx3-ubyte.gz --labels $D/t10k-labels-idx1-ubyte.gz \
  --json "$OUT/accuracy.json" | grep -E "^top-1"
echo "== 3. calibrate: activation and layer-output ranges on 300 fault-free training images"
$RG calibrate "$MODEL" --data $D/train-images-idx3-ubyte.gz --layer-outputs --out "$OUT/bounds.json" | tail -3
echo "== 4. protect: per-channel range checks (10% margin), out-of-range values zeroed, with a detector"
$RG protect "$MODEL" --bounds "$OUT/bounds.json" --out "$OUT/protected.onnx" \
  --granularity channel --margin 0.1 --action zero --detect | tail -2
$RG accuracy "$OUT/protected.onnx" --data $D/t10k-images-idx3-ubyte.gz --labels $D/t10k-labels-idx1-ubyte.gz \
  --json "$OUT/accuracy_protected.json" | grep -E "^top-1"
echo "== 5. fault injection: 1,000 single exponent-bit flips in weights, each on 32 test images, both models"
$RG inject "$MODEL" --protected "$OUT/protected.onnx" --data $D/t10k-images-idx3-ubyte.gz \
  --labels $D/t10k-labels-idx1-ubyte.gz --trials 1000 --bits 23-30 --samples 32 --batch 1 \
  --json "$OUT/campaign.json"
echo "== 6. overhead: original and protected interleaved, one test image at a time"
$RG bench "$MODEL" --compare "$OUT/protected.onnx" --data $D/t10k-images-idx3-ubyte.gz --threads 1 --duration 10 --rounds 6 \
  --json "$OUT/overhead.json" | tail -4

/usr/bin/python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
j = lambda n: json.load(open(os.path.join(out, n)))
acc, accp, c, b = j("accuracy.json"), j("accuracy_protected.json"), j("campaign.json"), j("overhead.json")
o, p = c["original"], c["protected"]
cmp_ = b["compare"]
lat = lambda r: r["latency_ms"]["p50"]
rows = [
    ("test accuracy (10,000 images)", f"{acc['top1']:.2%}", f"{accp['top1']:.2%}"),
    ("exponent-bit weight flips: wrong or NaN predictions", f"{o['sdc_rate'] + o['due_rate']:.2%}",
     f"{p['sdc_rate'] + p['due_rate']:.2%}"),
    ("  of them unflagged (silent), 95% CI",
     f"{o['undetected_sdc_rate']:.2%} [{o['undetected_sdc_ci95'][0]:.2%}, {o['undetected_sdc_ci95'][1]:.2%}]",
     f"{p['undetected_sdc_rate']:.3%} [{p['undetected_sdc_ci95'][0]:.3%}, {p['undetected_sdc_ci95'][1]:.3%}]"),
    ("  faults flagged by the detector", "-", f"{p['detected_rate']:.1%}"),
    ("latency p50, 1 thread", f"{lat(b):.3f} ms", f"{lat(cmp_['run']):.3f} ms"),
]
w = max(len(r[0]) for r in rows)
print(f"\n{'':<{w}}  {'original':>24}  {'protected':>24}")
for r in rows:
    print(f"{r[0]:<{w}}  {r[1]:>24}  {r[2]:>24}")
red, sil = c["reduction"], c["silent_reduction"]
print(f"\nProtection: {red['factor']:.1f}x fewer corrupted predictions (95% CI {red['ci95'][0]:.1f}-{red['ci95'][1]:.1f}), "
      f"{sil['factor']:.0f}x fewer silent ones (95% CI {sil['ci95'][0]:.0f}-{sil['ci95'][1]:.0f}), "
      f"latency ratio {cmp_['ratio']:.3f} (95% CI {cmp_['ci95'][0]:.3f}-{cmp_['ci95'][1]:.3f}).")
print(f"Everything is in {out}/ (protected.onnx is standard ONNX: it runs in any ONNX runtime).")
PY
