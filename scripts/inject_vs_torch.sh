#!/usr/bin/env bash
# rangeguard inject vs a PyTorch injector (scripts/torch_inject.py), side by side on the
# identical fault list and inputs: the speed claim "at least 3x a PyTorch baseline".
#
#   scripts/inject_vs_torch.sh MODEL [TRIALS=300] [SAMPLES=64] [THREADS=1]
#
# 1. `rangeguard inject MODEL --data <Fashion-MNIST test images> --trials TRIALS
#    --samples SAMPLES --threads THREADS --faults-out F.jsonl` draws the fault list (seed
#    $SEED, bits $BITS) and is rangeguard's first round;
# 2. torch_inject.py replays F.jsonl on the same first SAMPLES images with THREADS threads;
# 3. the two alternate until each has run $ROUNDS rounds (rangeguard with --faults-in), so
#    that a change in the machine's load hits both alike;
# 4. scripts/inject_compare.py prints the table: rates per round and medians, the ratio
#    rangeguard/torch (target >= 3), and both tools' SDC and DUE counts on the same faults.
# The load average is printed before and after: on a shared machine it says how much the
# numbers can be trusted.
#
# Environment: BIN (default build/rangeguard), ROUNDS (3), SEED (1), BITS (any),
# DATA (the Fashion-MNIST test images), OUT (a folder kept for the raw reports; default a
# temporary one, deleted), TORCH_ARGS (more torch_inject.py options, e.g.
# "--memory-format contiguous").
# Example:  BIN=build/rangeguard scripts/inject_vs_torch.sh models/lenet_relu.onnx 300 64 1
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY=/usr/bin/python3   # Debian's interpreter: python3-torch/-onnx belong to it

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in -h | --help) usage; exit 0 ;; esac
if [ $# -lt 1 ] || [ $# -gt 4 ]; then usage >&2; exit 2; fi
MODEL=$1 TRIALS=${2:-300} SAMPLES=${3:-64} THREADS=${4:-1}
BIN=${BIN:-$ROOT/build/rangeguard} ROUNDS=${ROUNDS:-3} SEED=${SEED:-1} BITS=${BITS:-any}
DATA=${DATA:-/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz}
[ -x "$BIN" ] || { echo "inject_vs_torch: no rangeguard binary at $BIN (set BIN)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "inject_vs_torch: no model file $MODEL" >&2; exit 1; }
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
else
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; $(nproc) cores)"
common=(--data "$DATA" --samples "$SAMPLES" --threads "$THREADS")

rangeguard_round() {  # $1: round number; round 1 draws the list, later ones replay it
  local src=(--faults-in "$OUT/faults.jsonl")
  if [ "$1" -eq 1 ]; then
    src=(--trials "$TRIALS" --seed "$SEED" --bits "$BITS" --faults-out "$OUT/faults.jsonl")
  fi
  "$BIN" inject "$MODEL" "${common[@]}" "${src[@]}" --json "$OUT/rangeguard$1.json" >/dev/null 2>"$OUT/rangeguard$1.log" ||
    { cat "$OUT/rangeguard$1.log" >&2; exit 1; }
}

torch_round() {
  # shellcheck disable=SC2086  # TORCH_ARGS: several options, split on purpose
  "$PY" "$ROOT/scripts/torch_inject.py" "$MODEL" --faults "$OUT/faults.jsonl" "${common[@]}" \
    --rangeguard "$BIN" ${TORCH_ARGS:-} >"$OUT/torch$1.json"
}

rg=() pt=()
for ((r = 1; r <= ROUNDS; r++)); do
  rangeguard_round "$r" && rg+=("$OUT/rangeguard$r.json")
  torch_round "$r" && pt+=("$OUT/torch$r.json")
done

"$PY" "$ROOT/scripts/inject_compare.py" --rangeguard "${rg[@]}" --torch "${pt[@]}" --json "$OUT/summary.json"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
# OpenMP's wait policy decides 2-thread speed on a busy machine (both tools use libgomp).
echo "command: ${OMP_WAIT_POLICY:+OMP_WAIT_POLICY=$OMP_WAIT_POLICY }BIN=$BIN ROUNDS=$ROUNDS SEED=$SEED BITS=$BITS${TORCH_ARGS:+ TORCH_ARGS=\"$TORCH_ARGS\"}" \
  "scripts/inject_vs_torch.sh $MODEL $TRIALS $SAMPLES $THREADS"
