#!/usr/bin/env bash
# Installs everything (scripts/setup.sh), then runs every test suite:
#   unit tests, ONNX backend node tests (fast and reference kernels), CLI contract tests,
#   the parity suite against ONNX Runtime and PyTorch, bf16 against fp32, and the fuzzers
#   for a bounded time.
# RG_FUZZ_SECONDS (default 60) sets the fuzzing time per target.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== unit, node and CLI tests"
ctest --test-dir build --output-on-failure -j"$(nproc)"
echo "== parity: rangeguard vs ONNX Runtime vs PyTorch"
tests/parity/run.sh build
echo "== bf16 against fp32: zoo top-1 agreement, parity-suite error"
/usr/bin/python3 tests/parity/bf16_check.py --rangeguard build/rangeguard
echo "== fuzzing the model loader and the NPY reader"
tests/fuzz/run.sh "${RG_FUZZ_SECONDS:-60}"
echo "== all tests passed"
