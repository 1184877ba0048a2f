#!/usr/bin/env bash
# Paired fault-injection campaigns on every zoo model: single random weight bit flips,
# any bit and exponent bits only, original vs protected (per-channel bounds calibrated
# on the first 300 training images, zero action, detector), on Fashion-MNIST test images.
#
#   scripts/zoo_campaign.sh [TRIALS=3000] [SAMPLES=32] [OUT=build/zoo_campaign]
# Writes OUT/<model>.<bits>.json per campaign and OUT/summary.md (the table in docs/inject.md).
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-3000}; SAMPLES=${2:-32}; OUT=${3:-build/zoo_campaign}
D=/usr/share/datasets/fashion-mnist
RG=${RG:-build/rangeguard}
mkdir -p "$OUT"
for f in models/*.onnx; do
  m=$(basename "$f" .onnx)
  "$RG" calibrate "$f" --data $D/train-images-idx3-ubyte.gz --out "$OUT/$m.bounds.json" >/dev/null
  "$RG" protect "$f" --bounds "$OUT/$m.bounds.json" --out "$OUT/$m.protected.onnx" \
    --granularity channel --action zero --detect >/dev/null
  for bits in any 23-30; do
    "$RG" inject "$f" --protected "$OUT/$m.protected.onnx" --data $D/t10k-images-idx3-ubyte.gz \
      --labels $D/t10k-labels-idx1-ubyte.gz --samples "$SAMPLES" --trials "$TRIALS" --bits "$bits" \
      --seed 1 --json "$OUT/$m.$bits.json" > "$OUT/$m.$bits.txt"
    echo "$m $bits done"
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys, glob, os
out = sys.argv[1]
rows = ["| model | bits | trials x inputs | clean top-1 orig / prot | SDC+DUE original | SDC+DUE protected | reduction [95% CI] | detected |",
        "|---|---|---|---|---|---|---|---|"]
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    if f.endswith("bounds.json"): continue
    j = json.load(open(f)); s = j["settings"]; o, p = j["original"], j["protected"]
    r = j["reduction"]; fac = "-" if r is None or r.get("factor") is None else f"{r['factor']:.1f}x [{r['ci95'][0]:.1f}, {r['ci95'][1]:.1f}]"
    pct = lambda t: f"{(t['sdc_rate'] + t['due_rate']) * 100:.2f}%"
    rows.append(f"| {os.path.basename(s['model'])} | {s['bits']} | {o['trials']} x {s['samples']} | "
                f"{s['clean_accuracy']*100:.2f}% / {s['protected_clean_accuracy']*100:.2f}% | {pct(o)} | {pct(p)} | {fac} | "
                f"{p['detected_rate']*100:.1f}% |")
open(os.path.join(out, "summary.md"), "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
