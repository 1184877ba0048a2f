#!/usr/bin/env bash
# Load test of `rangeguard serve` against the in-process baseline (`rangeguard bench`) on
# the same model, batch 1 and cores, in one run. Loopback only, bounded in time.
#   1. in-process: `rangeguard bench MODEL` (closed loop, 1 stream): throughput, p99.
#   2. HTTP peak: wrk (closed loop, CONNS connections) posting a binary-tensor request.
#      Steps 1 and 2 alternate ROUNDS times and medians are compared: on a shared machine
#      a neighbour's burst can halve either figure for seconds.
#   3. Half that peak, open loop, latency from the scheduled arrival: the same Poisson
#      arrivals (rate HALF, seed SEED) in process (`rangeguard bench --scenario server
#      --target-qps HALF --seed SEED`) and over HTTP (the same command with --url, the C++
#      client, CLIENT_CONNS connections), alternating ROUNDS times. The headline is the
#      HTTP / in-process p99 ratio at equal load (target <= 2); the closed-loop p99 is
#      shown too. scripts/serve_openloop.py (Python, Poisson and evenly spaced) gives a
#      second opinion.
#   4. Optional soak (SOAK_S > 0): half-peak Poisson load that long, server RSS before/after.
# Usage: scripts/serve_load.sh [MODEL] [SECONDS]
# Env: BIN (build/rangeguard), CONNS (2), ROUNDS (3), SERVE_ARGS ("--max-batch 1"), BENCH_ARGS
# (""; match SERVE_ARGS, e.g. "--streams 2 --threads 1" for "--instances 2 --threads 1"), SOAK_S (0),
# SEED (1; the Poisson arrivals of step 3), CLIENT_CONNS (8; connections of `bench --url`, which
# override a --streams in BENCH_ARGS: in-flight requests beyond them would wait in the client).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-build/parity-models/resnet18.onnx}
DUR=${2:-10}
BIN=${BIN:-build/rangeguard}
CONNS=${CONNS:-2}
ROUNDS=${ROUNDS:-3}
SERVE_ARGS=${SERVE_ARGS:---max-batch 1}
SOAK_S=${SOAK_S:-0}
BENCH_ARGS=${BENCH_ARGS:-}
SEED=${SEED:-1}
CLIENT_CONNS=${CLIENT_CONNS:-8}
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "serve_load: wrk not found (apt-get install wrk)" >&2; exit 1; }
TMP=$(mktemp -d)
SPID=""
cleanup() { [ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# One request: the model's first input at batch 1 (seeded random data), binary extension.
$PY - "$MODEL" "$TMP" <<'PY'
import json, sys, numpy as np, onnx
m = onnx.load(sys.argv[1], load_external_data=False)
init = {i.name for i in m.graph.initializer}
x = [i for i in m.graph.input if i.name not in init][0]
shape = [d.dim_value if d.dim_value > 0 else 1 for d in x.type.tensor_type.shape.dim]
data = np.random.default_rng(1).random(shape, dtype=np.float32)
head = json.dumps({"inputs": [{"name": x.name, "shape": shape, "datatype": "FP32",
                               "parameters": {"binary_data_size": data.nbytes}}]}).encode()
open(sys.argv[2] + "/body.bin", "wb").write(head + data.tobytes())
open(sys.argv[2] + "/header_len", "w").write(str(len(head)))
PY
NAME=$(basename "$MODEL" .onnx)
export RG_BODY="$TMP/body.bin" RG_HEADER_LEN=$(cat "$TMP/header_len") RG_PATH="/v2/models/$NAME/infer"

# shellcheck disable=SC2086
"$BIN" serve "$MODEL" --port 0 $SERVE_ARGS >"$TMP/serve.out" 2>"$TMP/serve.err" &
SPID=$!
for _ in $(seq 300); do grep -q "http://" "$TMP/serve.out" 2>/dev/null && break; sleep 0.1; done
PORT=$(grep -o '127\.0\.0\.1:[0-9]*' "$TMP/serve.out" | cut -d: -f2)
[ -n "$PORT" ] || { echo "serve_load: server did not start: $(cat "$TMP/serve.err")" >&2; exit 1; }
URL="http://127.0.0.1:$PORT"
echo "== server: $(cat "$TMP/serve.out")"
rss() { awk '/VmRSS/ {print $2/1024}' "/proc/$SPID/status"; }

wrk -t1 -c"$CONNS" -d2s -s scripts/serve_load.lua "$URL" >/dev/null  # warm-up
for r in $(seq "$ROUNDS"); do
  echo "== round $r/$ROUNDS: in-process ($BIN bench $MODEL --duration $DUR $BENCH_ARGS), then HTTP peak (wrk -t1 -c$CONNS -d${DUR}s)"
  # shellcheck disable=SC2086
  "$BIN" bench "$MODEL" --duration "$DUR" --warmup 1 $BENCH_ARGS --json "$TMP/bench$r.json" 2>/dev/null | grep -E "latency|throughput"
  wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s scripts/serve_load.lua "$URL" > "$TMP/wrk$r.txt"
  grep -E "Requests/sec|^ +(50|99)%|Non-2xx|Socket errors" "$TMP/wrk$r.txt"
done
PEAK=$($PY - "$TMP" "$ROUNDS" <<'PY'
import re, statistics, sys
print(statistics.median(float(re.search(r"Requests/sec:\s*([\d.]+)", open(f"{sys.argv[1]}/wrk{r}.txt").read()).group(1))
                        for r in range(1, int(sys.argv[2]) + 1)))
PY
)
HALF=$($PY -c "print(float('$PEAK') / 2)")
OL="$PY scripts/serve_openloop.py --port $PORT --path $RG_PATH --body $RG_BODY --header-len $RG_HEADER_LEN"
OPEN="--scenario server --target-qps $HALF --seed $SEED --duration $DUR --warmup 1"
for r in $(seq "$ROUNDS"); do
  echo "== half peak, round $r/$ROUNDS: the same Poisson arrivals in process ($BIN bench $MODEL $OPEN $BENCH_ARGS), then over HTTP (+ --url $URL --streams $CLIENT_CONNS)"
  # shellcheck disable=SC2086
  "$BIN" bench "$MODEL" $OPEN $BENCH_ARGS --json "$TMP/server$r.json" 2>/dev/null | grep -E "^latency" || true
  # shellcheck disable=SC2086
  "$BIN" bench "$MODEL" $OPEN $BENCH_ARGS --url "$URL" --streams "$CLIENT_CONNS" --json "$TMP/http$r.json" 2>/dev/null \
    | grep -E "^latency" || true
done
echo "== second opinion: scripts/serve_openloop.py at $HALF req/s"
$OL --rate "$HALF" --duration "$DUR" --arrivals poisson | tee "$TMP/poisson.json"
$OL --rate "$HALF" --duration "$DUR" --arrivals uniform | tee "$TMP/uniform.json"
if [ "$SOAK_S" -gt 0 ]; then
  R0=$(rss)
  echo "== soak: ${SOAK_S}s of Poisson arrivals at $HALF req/s; server RSS at start ${R0} MB"
  $OL --rate "$HALF" --duration "$SOAK_S" --arrivals poisson | tee "$TMP/soak.json"
  R1=$(rss)
  echo "soak: server RSS ${R0} MB -> ${R1} MB ($($PY -c "print(f'{100*($R1-$R0)/$R0:+.1f}%')"))"
fi
curl -s "$URL/metrics" | grep -E '^rangeguard_(requests_total|batch_size_(sum|count))' || true

$PY - "$TMP" "$PEAK" "$ROUNDS" <<'PY'
import json, statistics, sys
d, peak, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
benches = [json.load(open(f"{d}/bench{r}.json")) for r in range(1, rounds + 1)]
ip = statistics.median(b["throughput_per_s"] for b in benches)
ip50 = statistics.median(b["latency_ms"]["p50"] for b in benches)
ip99 = statistics.median(b["latency_ms"]["p99"] for b in benches)
po, un = json.load(open(d + "/poisson.json")), json.load(open(d + "/uniform.json"))
sv = [json.load(open(f"{d}/server{r}.json"))["latency_ms"] for r in range(1, rounds + 1)]
hv = [json.load(open(f"{d}/http{r}.json"))["latency_ms"] for r in range(1, rounds + 1)]
sv99 = statistics.median(l["p99"] for l in sv)
print(f"== summary (medians of {rounds} rounds)")
print(f"in-process  {ip:.1f} inferences/s, p50 {ip50:.2f} ms, p99 {ip99:.2f} ms (closed loop)")
print(f"HTTP peak   {peak:.1f} req/s  -> ratio HTTP/in-process throughput {peak / ip:.2f} (target >= 0.80)")
print(f"half peak   same Poisson arrivals ({peak / 2:.1f} q/s), latency from the scheduled arrival:")
for r, (s, h) in enumerate(zip(sv, hv), 1):
    print(f"  round {r}   in process p50 {s['p50']:.2f} p99 {s['p99']:.2f} ms | HTTP (C++ client) p50 {h['p50']:.2f} "
          f"p99 {h['p99']:.2f} ms -> p99 ratio {h['p99'] / s['p99']:.2f}")
ratio = statistics.median(h["p99"] / s["p99"] for s, h in zip(sv, hv))
print(f"  median p99 ratio HTTP / in-process {ratio:.2f} (target <= 2)")
for name, r in [("poisson", po), ("uniform", un)]:
    print(f"  python {name:8s} {r['achieved_rate']:.1f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
          f"errors {r['errors']} -> p99 / in-process p99: {r['p99_ms'] / ip99:.2f} closed loop, "
          f"{r['p99_ms'] / sv99:.2f} same-rate Poisson")
PY
