#!/usr/bin/env bash
# Paired fault-injection campaigns on every zoo model: single random weight bit flips,
# any bit and exponent bits only, original vs protected (activation and layer-output
# checks calibrated on the first 300 training images, per-channel bounds widened by
# 10% of each site's range, zero action, detector), on Fashion-MNIST test images; clean
# top-1 of both models on all 10,000 test images. Batch 1, so the detector's verdict is
# per input: an SDC is silent when that input's inference counted nothing extra.
#
#   scripts/zoo_campaign.sh [TRIALS=3000] [SAMPLES=32] [OUT=build/zoo_campaign]
# CALIBRATE and PROTECT (environment) replace the extra calibrate / protect options.
# Writes OUT/<model>.<bits>.json per campaign and OUT/summary.md (the table in docs/inject.md).
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-3000}; SAMPLES=${2:-32}; OUT=${3:-build/zoo_campaign}
D=/usr/share/datasets/fashion-mnist
RG=${RG:-build/rangeguard}
CALIBRATE=${CALIBRATE:---layer-outputs}
PROTECT=${PROTECT:---granularity channel --margin 0.1 --action zero --detect}
mkdir -p "$OUT"
for f in models/*.onnx; do
  m=$(basename "$f" .onnx)
  # shellcheck disable=SC2086
  "$RG" calibrate "$f" --data $D/train-images-idx3-ubyte.gz --out "$OUT/$m.bounds.json" $CALIBRATE >/dev/null
  # shellcheck disable=SC2086
  "$RG" protect "$f" --bounds "$OUT/$m.bounds.json" --out "$OUT/$m.protected.onnx" $PROTECT >/dev/null
  for v in original:"$f" protected:"$OUT/$m.protected.onnx"; do
    "$RG" accuracy "${v#*:}" -d $D/t10k-images-idx3-ubyte.gz -l $D/t10k-labels-idx1-ubyte.gz \
      --json "$OUT/$m.clean-${v%%:*}.json" >/dev/null
  done
  for bits in any 23-30; do
    "$RG" inject "$f" --protected "$OUT/$m.protected.onnx" --data $D/t10k-images-idx3-ubyte.gz \
      --labels $D/t10k-labels-idx1-ubyte.gz --samples "$SAMPLES" --trials "$TRIALS" --bits "$bits" \
      --batch 1 --seed 1 --json "$OUT/$m.$bits.json" > "$OUT/$m.$bits.txt"
    echo "$m $bits done"
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys, glob, os
out = sys.argv[1]
rows = ["| model | bits | trials x inputs | clean top-1 orig / prot (10,000 images) | SDC+DUE original | SDC+DUE protected | reduction [95% CI] | silent SDC protected | silent reduction [95% CI] | detected |",
        "|---|---|---|---|---|---|---|---|---|---|"]
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    if f.endswith("bounds.json") or ".clean-" in f: continue
    j = json.load(open(f)); s = j["settings"]; o, p = j["original"], j["protected"]
    model = os.path.basename(s["model"])[:-5]
    clean = [json.load(open(os.path.join(out, f"{model}.clean-{v}.json")))["top1"] for v in ("original", "protected")]
    fx = lambda r: "-" if r is None or r.get("factor") is None else f"{r['factor']:.1f}x [{r['ci95'][0]:.1f}, {r['ci95'][1]:.1f}]"
    pct = lambda t: f"{(t['sdc_rate'] + t['due_rate']) * 100:.2f}%"
    rows.append(f"| {os.path.basename(s['model'])} | {s['bits']} | {o['trials']} x {s['samples']} | "
                f"{clean[0]*100:.2f}% / {clean[1]*100:.2f}% | {pct(o)} | {pct(p)} | {fx(j['reduction'])} | "
                f"{p['undetected_sdc_rate'] * 100:.3f}% | {fx(j.get('silent_reduction'))} | "
                f"{p['detected_rate']*100:.1f}% |")
open(os.path.join(out, "summary.md"), "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
