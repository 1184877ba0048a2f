#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 (address + undefined sanitizers) in
# build-fuzz/ and runs each for a bounded time on a seed corpus of real models and NPY
# files. Fails on any crash, sanitizer report, leak or timeout.
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]   (default 60)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SECS="${1:-60}"
B="$ROOT/build-fuzz"
CC=clang-14 CXX=clang++-14 cmake -S "$ROOT" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRG_FUZZ=ON -DRG_BUILD_TESTS=OFF >/dev/null
cmake --build "$B" --target fuzz_model fuzz_npy -j"$(nproc)"

CORPUS="$B/corpus"
mkdir -p "$CORPUS/model" "$CORPUS/npy"
# Seeds: small ONNX backend test models (one per operator family) and NPY files of each dtype.
for t in test_conv_with_strides_padding test_gemm_default_vector_bias test_reshape_negative_dim \
         test_slice test_resize_upsample_scales_linear test_concat_3d_axis_0 test_maxpool_2d_pads \
         test_batchnorm_example test_softmax_axis_1 test_gather_0; do
  f="/usr/share/libonnx-testdata/data/node/$t/model.onnx"
  [ -f "$f" ] && cp "$f" "$CORPUS/model/$t.onnx"
done
# Inputs that once crashed or hung a target (tests/fuzz/regressions) start each run too.
cp "$ROOT"/tests/fuzz/regressions/*.onnx "$CORPUS/model/"
/usr/bin/python3 - "$CORPUS/npy" <<'PY'
import sys, numpy as np
d = sys.argv[1]
for i, (dt, shape) in enumerate([('<f4', (2, 3)), ('<i8', (4,)), ('|b1', (2, 2)), ('<f8', ()), ('|u1', (1, 28, 28)), ('<f2', (3,))]):
    np.save(f"{d}/seed{i}.npy", np.arange(int(np.prod(shape)) if shape else 1).reshape(shape).astype(dt))
PY
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export OMP_NUM_THREADS=1
cd "$B"
"$B/tests/fuzz/fuzz_npy" -max_total_time="$SECS" -max_len=4096 -rss_limit_mb=2048 -timeout=10 "$CORPUS/npy" 2>&1 | tail -n 3
"$B/tests/fuzz/fuzz_model" -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=3072 -timeout=20 "$CORPUS/model" 2>&1 | tail -n 3
echo "fuzz: no crashes in ${SECS}s per target"
