#!/usr/bin/env bash
# The main job on the bundled default: set everything up, then describe and run the
# zoo's LeNet (ReLU) on real Fashion-MNIST test images.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
MODEL=models/lenet_relu.onnx
OUT=build/demo
mkdir -p "$OUT"
echo "== rangeguard info $MODEL"
build/rangeguard info "$MODEL"
# Eight test images as float32 pixels in [0, 255], the zoo models' input format.
/usr/bin/python3 - "$OUT/images.npy" <<'PY'
import gzip, sys, numpy as np
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:8]
np.save(sys.argv[1], x.astype(np.float32))
PY
echo "== rangeguard run $MODEL --input $OUT/images.npy"
build/rangeguard run "$MODEL" --input "$OUT/images.npy" --output-dir "$OUT"
