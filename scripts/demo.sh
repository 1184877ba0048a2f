#!/usr/bin/env bash
# The main job on the bundled default: set everything up, then describe and run the
# zoo's LeNet (ReLU) on real Fashion-MNIST test images and measure its accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
MODEL=models/lenet_relu.onnx
DATA=/usr/share/datasets/fashion-mnist
OUT=build/demo
mkdir -p "$OUT"
echo "== rangeguard info $MODEL"
build/rangeguard info "$MODEL"
# Eight test images as float32 pixels in [0, 255], the zoo models' input format (`run`
# takes NPY files; `accuracy` below reads the IDX files directly).
/usr/bin/python3 - "$OUT/images.npy" "$DATA/t10k-images-idx3-ubyte.gz" <<'PY'
import gzip, sys, numpy as np
with gzip.open(sys.argv[2]) as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:8]
np.save(sys.argv[1], x.astype(np.float32))
PY
echo "== rangeguard run $MODEL --input $OUT/images.npy"
build/rangeguard run "$MODEL" --input "$OUT/images.npy" --output-dir "$OUT"
echo "== rangeguard accuracy $MODEL on the 10,000 test images"
build/rangeguard accuracy "$MODEL" --data "$DATA/t10k-images-idx3-ubyte.gz" \
  --labels "$DATA/t10k-labels-idx1-ubyte.gz"
