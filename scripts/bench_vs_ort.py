#!/usr/bin/python3
"""rangeguard vs ONNX Runtime vs PyTorch: batch-1 latency, offline throughput, peak memory.

    /usr/bin/python3 scripts/bench_vs_ort.py [--models resnet50,resnet18,...] [--threads 1,2]
        [--rounds 3] [--seconds 3] [--warmup 1] [--precision fp32|bf16] [--offline-batch 8]
        [--json OUT.json] [--markdown OUT.md] [--models-dir build/parity-models]
        [--rangeguard build/rangeguard]

The evidence for issue 4 (runtime speed). Models are the parity zoo's seeded torchvision
models (tests/parity/export_models.py; scripts/bench_vs_ort.sh exports the missing ones).

Latency (batch 1): for every model and thread count N, R rounds; each round runs, once
each and in an order that rotates from round to round (ABC, BCA, CAB, ...),
  rangeguard    `rangeguard bench MODEL --threads N --streams 1 --batch 1` (its p50),
  ONNX Runtime  scripts/ort_run.js (onnxruntime-node 1.22, CPU, intraOpNumThreads N,
                interOp 1, sequential, graph optimisation level 'all'; its median),
  PyTorch       scripts/bench_torch.py (eager, inference_mode, set_num_threads N; median),
each for about --seconds seconds after --warmup seconds. Every engine's figure is the
median of its per-round medians. rg/ORT <= 0.9 is the target (PASS/MISS); each round's
own rg/ORT is listed too, to show the host's noise.

Offline throughput (batch --offline-batch, default 8; 0 skips it): R rounds, rotating, of
  rangeguard  --streams 2 --threads 1  and  --streams 1 --threads 2 (the better one counts),
  ONNX Runtime at 1 and at 2 intra-op threads (the better one counts),
  PyTorch at 2 threads,
throughput in samples/s (ORT, PyTorch: batch * 1000 / median latency). rg/ORT >= 1.1 is the
target (issue 4 sets it for resnet50; every row is marked).

Peak memory (from the batch-1 runs, median over rounds): rangeguard's peak resident set
size (the bench JSON's peak_rss_mb when present, otherwise /usr/bin/time -v's "Maximum
resident set size") vs ONNX Runtime's max_rss_mb (the Node.js process, which includes
Node's own ~40-50 MB: the baseline is measured and printed). rg/ORT <= 1.0 is the target.

With --precision bf16 rangeguard runs bf16 while ONNX Runtime and PyTorch stay fp32.
The shared machine is noisy: the load average is printed at the start and the end.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = "/usr/bin/python3"  # Debian's interpreter: python3-torch belongs to it
TIME = "/usr/bin/time"
ORT_PKG = os.path.join(ROOT, "third_party", "ort", "node_modules", "onnxruntime-node")
DEFAULT_MODELS = "resnet50,resnet18,mobilenet_v2,mobilenet_v3_small,efficientnet_b0,vit_small"

LATENCY_TARGET = 0.9     # rangeguard latency / ORT latency, at most
THROUGHPUT_TARGET = 1.1  # rangeguard throughput / ORT's best throughput, at least
MEMORY_TARGET = 1.0      # rangeguard peak RSS / ORT peak RSS, at most


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def one_line(text, limit=300):
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[:limit] + "..."


# --------------------------------------------------------------------------- engines
class Runner:
    def __init__(self, args):
        self.args = args
        self.have_time = os.access(TIME, os.X_OK)
        self.runs = []  # every run, raw, for --json

    def _run(self, cmd, timeout):
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout:.0f} s", time.perf_counter() - t0
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            err = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
            return None, f"exit code {p.returncode}: {one_line(err)}", wall
        return p, None, wall

    def timeout(self, batch):
        # model load + warm-up + timed seconds + generous slack for the big models at batch 8
        return 120 + self.args.warmup + self.args.seconds + 10 * batch

    def rangeguard(self, name, threads, streams, batch):
        a = self.args
        rec = {"loadavg": os.getloadavg()[0], "engine": "rangeguard", "model": name, "threads": threads, "streams": streams,
               "batch": batch, "precision": a.precision}
        with tempfile.TemporaryDirectory(prefix="rg-bench-") as tmp:
            jpath = os.path.join(tmp, "bench.json")
            tpath = os.path.join(tmp, "time.txt")
            cmd = [a.rangeguard, "bench", model_path(a, name), "--threads", str(threads),
                   "--streams", str(streams), "--batch", str(batch), "--precision", a.precision,
                   "--duration", fmt_num(a.seconds), "--warmup", fmt_num(a.warmup), "--json", jpath]
            if self.have_time:
                cmd = [TIME, "-v", "-o", tpath] + cmd
            rec["command"] = shlex.join(cmd)
            p, err, rec["wall_s"] = self._run(cmd, self.timeout(batch))
            if err is None:
                try:
                    with open(jpath) as f:
                        j = json.load(f)
                except (OSError, ValueError) as e:
                    err = f"no readable bench JSON: {e}"
            if err is not None:
                rec["error"] = err
            else:
                lat = j.get("latency_ms", {})
                rec.update(median_ms=lat.get("p50"), p90_ms=lat.get("p90"),
                           throughput_per_s=j.get("throughput_per_s"), samples=j.get("samples"),
                           queries=j.get("queries"),
                           activation_mb=mb(j.get("activation_memory_bytes_per_stream")),
                           environment=j.get("environment", {}))
                if j.get("peak_rss_mb") is not None:
                    rec["peak_rss_mb"] = j["peak_rss_mb"]
                    rec["rss_source"] = "bench JSON peak_rss_mb"
                elif self.have_time:
                    rec["peak_rss_mb"] = max_rss_from_time(tpath)
                    rec["rss_source"] = "/usr/bin/time -v"
        self.runs.append(rec)
        return rec

    def ort(self, name, threads, batch):
        a = self.args
        rec = {"loadavg": os.getloadavg()[0], "engine": "ort", "model": name, "threads": threads, "batch": batch, "precision": "fp32"}
        cmd = ["node", os.path.join("scripts", "ort_run.js"), model_path(a, name),
               "--input", input_path(a, name), "--batch", str(batch), "--threads", str(threads),
               "--opt", "all", "--warmup", "2", "--warmup-seconds", fmt_num(a.warmup),
               "--bench-iters", "3", "--bench-seconds", fmt_num(a.seconds)]
        rec["command"] = shlex.join(cmd)
        p, err, rec["wall_s"] = self._run(cmd, self.timeout(batch))
        if err is None:
            try:
                j = json.loads(p.stdout.strip().splitlines()[-1])
                rec.update(median_ms=j["median_ms"], p90_ms=j["p90_ms"], iters=j["iters"],
                           throughput_per_s=batch * 1000.0 / j["median_ms"],
                           rss_mb=j.get("rss_mb"), peak_rss_mb=j.get("max_rss_mb"))
            except (ValueError, KeyError, IndexError) as e:
                err = f"unreadable ort_run.js output: {e}: {one_line(p.stdout)}"
        if err is not None:
            rec["error"] = err
        self.runs.append(rec)
        return rec

    def torch(self, name, threads, batch):
        a = self.args
        rec = {"loadavg": os.getloadavg()[0], "engine": "torch", "model": name, "threads": threads, "batch": batch, "precision": "fp32"}
        cmd = [PY, os.path.join("scripts", "bench_torch.py"), name, "--threads", str(threads),
               "--batch", str(batch), "--seconds", fmt_num(a.seconds), "--warmup", fmt_num(a.warmup)]
        rec["command"] = shlex.join(cmd)
        p, err, rec["wall_s"] = self._run(cmd, self.timeout(batch))
        if err is None:
            try:
                j = json.loads(p.stdout.strip().splitlines()[-1])
                rec.update(median_ms=j["median_ms"], p90_ms=j["p90_ms"], iters=j["iters"],
                           throughput_per_s=j["throughput_per_s"], peak_rss_mb=j.get("rss_mb"),
                           torch_version=j.get("torch"))
            except (ValueError, KeyError, IndexError) as e:
                err = f"unreadable bench_torch.py output: {e}: {one_line(p.stdout)}"
        if err is not None:
            rec["error"] = err
        self.runs.append(rec)
        return rec


def fmt_num(x):
    return f"{x:g}"


def mb(nbytes):
    return None if nbytes is None else nbytes / 1e6


def max_rss_from_time(path):
    try:
        with open(path) as f:
            m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", f.read())
    except OSError:
        return None
    return int(m.group(1)) / 1024.0 if m else None


def model_path(a, name):
    return os.path.join(a.models_dir, name + ".onnx")


def input_path(a, name):
    return os.path.join(a.models_dir, name + ".input.npy")


def med(recs, key):
    vals = [r[key] for r in recs if r.get(key) is not None and "error" not in r]
    return statistics.median(vals) if vals else None


def first_error(recs):
    for r in recs:
        if "error" in r:
            return r["error"]
    return None


def rotate(seq, k):
    k %= len(seq)
    return seq[k:] + seq[:k]


# --------------------------------------------------------------------------- environment
def cpu_info():
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"]
    return model, [f for f in wanted if f in flags]


def versions():
    v = {"python": platform.python_version()}
    try:
        with open(os.path.join(ORT_PKG, "package.json")) as f:
            v["onnxruntime-node"] = json.load(f).get("version")
    except (OSError, ValueError):
        v["onnxruntime-node"] = None
    for key, cmd in (("node", ["node", "--version"]),
                     ("torch", [PY, "-c", "import torch; print(torch.__version__)"])):
        try:
            v[key] = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip() or None
        except (OSError, subprocess.TimeoutExpired):
            v[key] = None
    try:  # which BLAS Debian's torch gets (matters: the reference BLAS is ~10x slower)
        out = subprocess.run(["update-alternatives", "--query", "libblas.so.3-x86_64-linux-gnu"],
                             capture_output=True, text=True, timeout=10).stdout
        m = re.search(r"^Value:\s*(\S+)", out, re.M)
        v["blas"] = m.group(1) if m else None
    except (OSError, subprocess.TimeoutExpired):
        v["blas"] = None
    return v


def node_baseline_mb():
    """Peak RSS of Node.js with onnxruntime-node loaded and no model: ORT's process floor."""
    js = ("require(process.argv[1]);"
          "console.log(process.resourceUsage().maxRSS / 1024)")
    try:
        p = subprocess.run(["node", "-e", js, ORT_PKG], capture_output=True, text=True, timeout=60)
        return float(p.stdout.strip())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


# --------------------------------------------------------------------------- tables
def f_ms(x):
    return "err" if x is None else (f"{x:.2f}" if x < 100 else f"{x:.1f}")


def f_ratio(x):
    return "-" if x is None else f"{x:.2f}"


def f_num(x, d=1):
    return "-" if x is None else f"{x:.{d}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def verdict(r, target, at_most):
    if r is None:
        return "n/a"
    return "PASS" if (r <= target if at_most else r >= target) else "MISS"


def render(headers, rows, markdown, left=2):
    """A table; the first `left` columns (labels) are left-aligned, the rest right-aligned."""
    rows = [[str(c) for c in r] for r in rows]
    if markdown:
        out = ["| " + " | ".join(headers) + " |",
               "|" + "|".join("---" if i < left else "---:" for i in range(len(headers))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w[i]) if i < left else c.rjust(w[i])  # noqa: E731
                                   for i, c in enumerate(cells))
    return "\n".join([line(headers), "  ".join("-" * x for x in w)] + [line(r) for r in rows])


def report(res, markdown):
    a = res["settings"]
    env = res["environment"]
    prec = a["precision"]
    rg_label = f"rangeguard {prec}"
    h = (lambda s: f"### {s}") if markdown else (lambda s: f"== {s}")
    out = []
    if markdown:
        out.append("```")
    out.append(f"command:     {res['command']}")
    out.append(f"date:        {res['started']}  (total {res['total_s'] / 60:.1f} min)")
    out.append(f"cpu:         {env['cpu']} ({env['cores']} cores; {', '.join(env['cpu_flags']) or 'no AVX-512'})")
    rb = env["rangeguard_binary"]
    out.append(f"rangeguard:  isa {env.get('rg_isa') or '?'}, {env.get('rg_library') or 'oneDNN ?'}, "
               f"precision {prec}; binary built {rb['mtime']}, sha256 {rb['sha256'][:12]}")
    v = env["versions"]
    out.append(f"peers:       ONNX Runtime {v.get('onnxruntime-node')} (onnxruntime-node, CPU EP, "
               f"opt level all; node {v.get('node')}), PyTorch {v.get('torch')} eager "
               f"(BLAS {v.get('blas')}, 1 BLAS thread); both fp32")
    out.append(f"load avg:    start {env['loadavg_start']}, end {env['loadavg_end']} "
               f"(1/5/15 min; {env['cores']} cores, shared machine)")
    out.append(f"settings:    {a['rounds']} round(s), ~{fmt_num(a['seconds'])} s per run after "
               f"{fmt_num(a['warmup'])} s warm-up, engines alternating; medians of per-round medians")
    if markdown:
        out.append("```")
    out.append("")

    out.append(h(f"Batch-1 latency, median ms ({rg_label}; ONNX Runtime and PyTorch fp32); "
                 f"target rg/ORT <= {LATENCY_TARGET}"))
    rows = []
    for r in res["latency"]:
        rounds = " ".join(f_ratio(x) for x in r.get("rg_ort_rounds", []))
        rows.append([r["model"], r["threads"], f_ms(r["rg_ms"]), f_ms(r["ort_ms"]), f_ms(r["torch_ms"]),
                     f_ratio(r["rg_ort"]), rounds, f_ratio(r["rg_torch"]), r["verdict"]])
    out.append(render(["model", "threads", f"{rg_label} ms", "ORT ms", "torch ms", "rg/ORT", "rg/ORT per round",
                       "rg/torch", f"<= {LATENCY_TARGET}"], rows, markdown))
    n_pass = sum(r["verdict"] == "PASS" for r in res["latency"])
    out.append("")
    out.append(f"{n_pass}/{len(res['latency'])} rows meet rg/ORT <= {LATENCY_TARGET}.")
    out.append("")

    if res["throughput"]:
        b = a["offline_batch"]
        out.append(h(f"Offline throughput at batch {b}, samples/s ({rg_label}); "
                     f"target rg/ORT >= {THROUGHPUT_TARGET}"))
        rows = []
        for r in res["throughput"]:
            rows.append([r["model"], f_num(r["rg_2x1"]), f_num(r["rg_1x2"]),
                         f"{f_num(r['rg_best'])} ({r['rg_best_cfg'] or '-'})",
                         f_num(r["ort_t1"]), f_num(r["ort_t2"]),
                         f"{f_num(r['ort_best'])} ({r['ort_best_cfg'] or '-'})",
                         f_num(r["torch_t2"]), f_ratio(r["rg_ort"]), f_ratio(r["rg_torch"]), r["verdict"]])
        out.append(render(["model", "rg 2 streams x 1 thr", "rg 1 stream x 2 thr", "rg best",
                           "ORT 1 thr", "ORT 2 thr", "ORT best", "torch 2 thr", "rg/ORT", "rg/torch",
                           f">= {THROUGHPUT_TARGET}"], rows, markdown, left=1))
        out.append("")

    out.append(h(f"Peak memory (resident set size, MB, batch-1 runs); target rg/ORT <= {MEMORY_TARGET}"))
    rows = []
    for r in res["memory"]:
        rows.append([r["model"], r["threads"], f_num(r["rg_mb"]), f_num(r["rg_act_mb"]), f_num(r["ort_mb"]),
                     f_ratio(r["rg_ort"]), r["verdict"], f_num(r["torch_mb"])])
    out.append(render(["model", "threads", "rangeguard peak RSS", "rg activations/stream", "ORT peak RSS",
                       "rg/ORT", f"<= {MEMORY_TARGET}", "torch peak RSS"], rows, markdown))
    nb = env.get("ort_process_floor_mb")
    src = env.get("rg_rss_source") or "not measured"
    out.append("")
    out.append(f"rangeguard RSS from {src}. ORT's figure is the whole Node.js process; Node with "
               f"onnxruntime-node loaded and no model already takes {f_num(nb)} MB. PyTorch's is the "
               f"Python process with torch and torchvision imported.")
    if res["errors"]:
        out.append("")
        out.append(h("Failed runs"))
        for e in res["errors"]:
            out.append(("- " if markdown else "  ") + e)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: /usr/bin/python3 scripts/bench_vs_ort.py --models resnet18,"
                                        "mobilenet_v2 --rounds 1 --seconds 2 --markdown build/bench.md")
    ap.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated zoo names (default {DEFAULT_MODELS})")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts for latency (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per configuration (default 3)")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per run (default 3)")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per run (default 1)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="rangeguard's precision; ORT and PyTorch stay fp32 (default fp32)")
    ap.add_argument("--offline-batch", type=int, default=8, help="batch of the throughput runs; 0 skips them (default 8)")
    ap.add_argument("--json", help="write every run and the tables' data as JSON here")
    ap.add_argument("--markdown", help="write the tables as Markdown here")
    ap.add_argument("--models-dir", default=os.path.join(ROOT, "build", "parity-models"),
                    help="exported zoo (default build/parity-models)")
    ap.add_argument("--rangeguard", default=os.path.join(ROOT, "build", "rangeguard"), help="the binary")
    a = ap.parse_args()

    models = [m.strip() for m in a.models.split(",") if m.strip()]
    try:
        threads = [int(t) for t in a.threads.split(",") if t.strip()]
    except ValueError:
        ap.error(f"--threads must be comma-separated integers, got '{a.threads}'")
    if not models or not threads or min(threads) < 1:
        ap.error("--models and --threads need at least one entry; threads >= 1")
    if a.rounds < 1 or a.seconds <= 0 or a.warmup < 0 or a.offline_batch < 0:
        ap.error("--rounds >= 1, --seconds > 0, --warmup >= 0, --offline-batch >= 0")
    a.rangeguard = os.path.abspath(a.rangeguard)
    a.models_dir = os.path.abspath(a.models_dir)
    problems = []
    if not os.access(a.rangeguard, os.X_OK):
        problems.append(f"{a.rangeguard} not found or not executable (run scripts/setup.sh)")
    if not os.path.isfile(os.path.join(ORT_PKG, "package.json")):
        problems.append(f"ONNX Runtime missing under {ORT_PKG} (run scripts/setup.sh)")
    for m in models:
        for p in (model_path(a, m), input_path(a, m)):
            if not os.path.isfile(p):
                problems.append(f"{p} missing (export: {PY} tests/parity/export_models.py "
                                f"--out {a.models_dir} --only {m}; or use scripts/bench_vs_ort.sh)")
    if problems:
        for p in problems:
            print(f"bench_vs_ort: {p}", file=sys.stderr)
        return 1

    # Run a private copy of the binary: a rebuild of build/ during a long run (other work
    # going on in the tree) would otherwise mix two versions in one table.
    snap_dir = tempfile.mkdtemp(prefix="bench-vs-ort-")
    snap = os.path.join(snap_dir, "rangeguard")
    shutil.copy2(a.rangeguard, snap)
    rg_binary = {"path": a.rangeguard, "sha256": sha256(snap),
                 "mtime": datetime.datetime.fromtimestamp(os.path.getmtime(snap)).astimezone().strftime("%Y-%m-%d %H:%M:%S")}
    a.rangeguard = snap
    try:
        return run_all(a, models, threads, rg_binary)
    finally:
        shutil.rmtree(snap_dir, ignore_errors=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_all(a, models, threads, rg_binary):
    # scripts/bench_vs_ort.sh names itself and how many options it put in front of the user's.
    wrapper = os.environ.get("BENCH_VS_ORT_WRAPPER")
    skip = int(os.environ.get("BENCH_VS_ORT_WRAPPER_ARGS", "0") or 0) if wrapper else 0
    invocation = shlex.join([wrapper or "scripts/bench_vs_ort.py"] + sys.argv[1 + skip:])
    t_start = time.perf_counter()
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    cpu, flags = cpu_info()
    env = {"cpu": cpu, "cpu_flags": flags, "cores": os.cpu_count(),
           "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
           "versions": versions(), "ort_process_floor_mb": node_baseline_mb(),
           "usr_bin_time": os.access(TIME, os.X_OK), "rangeguard_binary": rg_binary}
    if not env["usr_bin_time"]:
        log(f"bench_vs_ort: {TIME} is missing (Debian package 'time'): rangeguard's peak RSS is "
            "not measured unless its bench JSON has peak_rss_mb")
    run = Runner(a)
    log(f"bench_vs_ort: {len(models)} model(s) x threads {threads} x {a.rounds} round(s), "
        f"~{fmt_num(a.seconds)} s per run; load average {env['loadavg_start']}")

    def show(rec, label):
        r = rec.get("median_ms")
        extra = f"  thr/s {rec['throughput_per_s']:.1f}" if rec.get("throughput_per_s") and rec["batch"] > 1 else ""
        if "error" in rec:
            log(f"  {label:28} ERROR {rec['error']}")
        else:
            log(f"  {label:28} median {f_ms(r)} ms{extra}  (wall {rec['wall_s']:.1f} s)")

    latency, memory, throughput, errors = [], [], [], []
    for m in models:
        log(f"== {m}  (load average {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        for n in threads:
            recs = {"rg": [], "ort": [], "torch": []}
            jobs = {"rg": lambda: run.rangeguard(m, n, 1, 1), "ort": lambda: run.ort(m, n, 1),
                    "torch": lambda: run.torch(m, n, 1)}
            for rnd in range(a.rounds):
                for eng in rotate(["rg", "ort", "torch"], rnd):
                    rec = jobs[eng]()
                    rec["round"] = rnd
                    recs[eng].append(rec)
                    show(rec, f"{m} t{n} r{rnd + 1} {eng}")
            rg, ort, tor = (med(recs[e], "median_ms") for e in ("rg", "ort", "torch"))
            rg_ort = ratio(rg, ort)
            # Each round's own ratio: on a shared host a slow spell can hit one engine's run,
            # and the spread shows how far the medians can be trusted.
            per_round = [ratio(x.get("median_ms"), y.get("median_ms")) for x, y in zip(recs["rg"], recs["ort"])]
            latency.append({"model": m, "threads": n, "rg_ms": rg, "ort_ms": ort, "torch_ms": tor,
                            "rg_ort": rg_ort, "rg_torch": ratio(rg, tor), "rg_ort_rounds": per_round,
                            "verdict": verdict(rg_ort, LATENCY_TARGET, True)})
            rg_mb, ort_mb = med(recs["rg"], "peak_rss_mb"), med(recs["ort"], "peak_rss_mb")
            memory.append({"model": m, "threads": n, "rg_mb": rg_mb, "rg_act_mb": med(recs["rg"], "activation_mb"),
                           "ort_mb": ort_mb, "torch_mb": med(recs["torch"], "peak_rss_mb"),
                           "rg_ort": ratio(rg_mb, ort_mb), "verdict": verdict(ratio(rg_mb, ort_mb), MEMORY_TARGET, True)})
            for e, rs in recs.items():
                err = first_error(rs)
                if err:
                    errors.append(f"{m} batch 1, {n} thread(s), {e}: {err}")

        b = a.offline_batch
        if b:
            cfgs = {"rg_2x1": lambda: run.rangeguard(m, 1, 2, b), "rg_1x2": lambda: run.rangeguard(m, 2, 1, b),
                    "ort_t1": lambda: run.ort(m, 1, b), "ort_t2": lambda: run.ort(m, 2, b),
                    "torch_t2": lambda: run.torch(m, 2, b)}
            recs = {k: [] for k in cfgs}
            for rnd in range(a.rounds):
                for k in rotate(list(cfgs), rnd):
                    rec = cfgs[k]()
                    rec["round"] = rnd
                    recs[k].append(rec)
                    show(rec, f"{m} b{b} r{rnd + 1} {k}")
            t = {k: med(v, "throughput_per_s") for k, v in recs.items()}

            def best(keys, labels):
                got = [(t[k], labels[k]) for k in keys if t[k] is not None]
                return max(got) if got else (None, None)
            rg_best, rg_cfg = best(["rg_2x1", "rg_1x2"], {"rg_2x1": "2x1", "rg_1x2": "1x2"})
            ort_best, ort_cfg = best(["ort_t1", "ort_t2"], {"ort_t1": "1 thr", "ort_t2": "2 thr"})
            r = ratio(rg_best, ort_best)
            throughput.append(dict(model=m, **t, rg_best=rg_best, rg_best_cfg=rg_cfg, ort_best=ort_best,
                                   ort_best_cfg=ort_cfg, rg_ort=r, rg_torch=ratio(rg_best, t["torch_t2"]),
                                   verdict=verdict(r, THROUGHPUT_TARGET, False)))
            for k, rs in recs.items():
                err = first_error(rs)
                if err:
                    errors.append(f"{m} batch {b}, {k}: {err}")

    rg_ok = [r for r in run.runs if r["engine"] == "rangeguard" and "error" not in r]
    if rg_ok:
        env["rg_isa"] = rg_ok[0].get("environment", {}).get("isa")
        env["rg_library"] = rg_ok[0].get("environment", {}).get("onednn_version")
        env["rg_rss_source"] = rg_ok[0].get("rss_source")
    env["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    res = {"command": invocation, "started": started,
           "total_s": time.perf_counter() - t_start, "settings": vars(a), "environment": env,
           "latency": latency, "throughput": throughput, "memory": memory, "errors": errors, "runs": run.runs}

    text = report(res, markdown=False)
    print(text, end="", flush=True)
    if a.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(a.markdown)), exist_ok=True)
        with open(a.markdown, "w") as f:
            f.write(report(res, markdown=True))
        log(f"bench_vs_ort: wrote {a.markdown}")
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
        log(f"bench_vs_ort: wrote {a.json}")
    log(f"bench_vs_ort: done in {res['total_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
