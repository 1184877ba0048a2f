#!/usr/bin/python3
"""Time PyTorch (eager, CPU) on a model of the parity zoo: the speed peer next to ONNX Runtime.

    /usr/bin/python3 scripts/bench_torch.py MODEL_NAME [--threads N] [--batch B]
                                            [--seconds S] [--warmup S] [--seed K]

MODEL_NAME is a name from tests/parity/export_models.py (resnet50, mobilenet_v2, vit_small,
... see --list). The model is built exactly as that script builds it before exporting (its
own functions: same constructor, seed, BatchNorm statistics and classifier scale), so the
weights are those of build/parity-models/MODEL_NAME.onnx. It then runs in eval mode under
torch.inference_mode() with torch.set_num_threads(N) on a seeded N(0, 1) input of shape
(B, C, H, W); after --warmup seconds of untimed runs (at least 2 runs), individual forward
passes are timed for --seconds seconds (at least 3 runs) and one JSON line is printed:

    {"model", "median_ms", "p90_ms", "min_ms", "mean_ms", "iters", "warmup_iters",
     "throughput_per_s", "batch", "threads", "rss_mb", "torch"}

throughput_per_s = batch * 1000 / median_ms; p90 is the nearest-rank 90th percentile;
rss_mb is the peak resident set size of this process (Python and torch included).
OPENBLAS_NUM_THREADS defaults to 1 (see below; the environment's value wins).

Requires Debian's interpreter (/usr/bin/python3) with python3-torch and python3-torchvision.
Example:
    /usr/bin/python3 scripts/bench_torch.py resnet50 --threads 2 --batch 1 --seconds 3
"""

import argparse
import json
import os
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "parity"))
import export_models as zoo  # noqa: E402  (the zoo's table and constructors)


def build_model(name, torch, torchvision):
    """The model of export_models.export_one, before its export: same seeds, same weights."""
    _, chw, _, classifier = zoo.MODELS[name]
    seed = zoo.model_seed(name)
    torch.manual_seed(seed)
    model = zoo.build(name, torch, torchvision)
    zoo.realistic_parameters(model, seed, chw, torch, torchvision)
    model.eval()
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn((zoo.BATCH,) + tuple(chw), generator=gen, dtype=torch.float32)
    zoo.scale_classifier(model, classifier, x, torch)
    return model, chw, seed


def percentile(sorted_ms, q):
    """Nearest-rank percentile of a sorted list."""
    import math
    k = min(len(sorted_ms) - 1, max(0, math.ceil(q * len(sorted_ms)) - 1))
    return sorted_ms[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: /usr/bin/python3 scripts/bench_torch.py resnet50 "
                                        "--threads 2 --batch 1 --seconds 3")
    ap.add_argument("model", nargs="?", help="model name from tests/parity/export_models.py")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--batch", type=int, default=1, help="samples per forward pass (default 1)")
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds of timed runs (default 3)")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of untimed runs first (default 1)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the input (default 0)")
    ap.add_argument("--list", action="store_true", help="list the model names and exit")
    args = ap.parse_args()
    if args.list:
        print("\n".join(zoo.MODELS))
        return 0
    if not args.model:
        ap.error("MODEL_NAME is required (see --list)")
    if args.model not in zoo.MODELS:
        ap.error(f"unknown model '{args.model}'; known: {', '.join(zoo.MODELS)}")
    if args.threads < 1 or args.batch < 1 or args.seconds <= 0 or args.warmup < 0:
        ap.error("--threads and --batch must be >= 1, --seconds > 0, --warmup >= 0")

    # Debian's torch does its matrix products in the system BLAS (OpenBLAS, pthread build),
    # whose own thread pool ignores torch.set_num_threads: left alone it takes every core
    # even at --threads 1, and on 2 busy cores its spinning threads and torch's OpenMP ones
    # make 2-thread runs 10-100x slower (mobilenet_v3_small: 236 ms instead of 15 ms). One
    # BLAS thread (set before torch loads it) unless the caller chose otherwise.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import torch
    import torchvision
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    model, chw, _ = build_model(args.model, torch, torchvision)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn((args.batch,) + tuple(chw), generator=gen, dtype=torch.float32)

    times = []
    warm = 0
    with torch.inference_mode():
        t_end = time.perf_counter() + args.warmup
        while warm < 2 or time.perf_counter() < t_end:
            model(x)
            warm += 1
        t_end = time.perf_counter() + args.seconds
        while len(times) < 3 or time.perf_counter() < t_end:
            t0 = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t0) * 1e3)

    s = sorted(times)
    n = len(s)
    median = s[(n - 1) // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    r = lambda v: round(v, 4)  # noqa: E731
    report = {
        "model": args.model,
        "median_ms": r(median), "p90_ms": r(percentile(s, 0.9)), "min_ms": r(s[0]),
        "mean_ms": r(sum(s) / n), "iters": n, "warmup_iters": warm,
        "throughput_per_s": r(args.batch * 1000.0 / median),
        "batch": args.batch, "threads": args.threads,
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "torch": torch.__version__, "openblas_threads": os.environ["OPENBLAS_NUM_THREADS"],
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
