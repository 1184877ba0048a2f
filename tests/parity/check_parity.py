#!/usr/bin/python3
"""Check rangeguard's outputs against ONNX Runtime and PyTorch on the parity model zoo.

    /usr/bin/python3 tests/parity/check_parity.py --models DIR --rangeguard PATH/rangeguard
        [--only NAME,...] [--tol 1e-4] [--threads N] [--keep DIR]

DIR holds what tests/parity/export_models.py wrote: NAME.onnx, NAME.input.npy and
NAME.torch.npy (PyTorch's output). For every model this runs
    rangeguard run DIR/NAME.onnx --input DIR/NAME.input.npy --output-dir TMP/rg/NAME
    node scripts/ort_run.js DIR/NAME.onnx --input DIR/NAME.input.npy --output-dir TMP/ort/NAME
loads output.npy from both and requires
    max|rg - ort|   <= tol * max|ort|
    max|rg - torch| <= tol * max|torch|
(shapes equal, everything finite). rangeguard also runs the input's first sample alone,
whose output must match the first row of both references the same way: batch 1 takes
paths a batch of 2 does not (joins written in place, squeeze-excite scales moved onto
the weights). ORT's own distance to PyTorch is shown for reference and
does not decide the result. Exits 1 if any model fails or any command fails (its stderr is
printed), 2 on bad usage.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORT_RUN = os.path.join(REPO, "scripts", "ort_run.js")
OUTPUT_NAME = "output"


def discover(models_dir):
    """Model names that have all three files, in a stable order."""
    names = []
    for f in sorted(os.listdir(models_dir)):
        if f.endswith(".onnx"):
            n = f[:-len(".onnx")]
            if all(os.path.exists(os.path.join(models_dir, n + s)) for s in (".input.npy", ".torch.npy")):
                names.append(n)
    return names


def run_cmd(cmd, timeout):
    """Runs cmd; returns (ok, seconds, message)."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except FileNotFoundError as e:
        return False, 0.0, f"cannot start: {e}"
    except subprocess.TimeoutExpired:
        return False, time.perf_counter() - t0, f"timed out after {timeout} s"
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip() or p.stdout.decode(errors="replace").strip()
        return False, dt, f"exit code {p.returncode}: {err[-4000:]}"
    return True, dt, ""


def load_output(out_dir):
    f = os.path.join(out_dir, OUTPUT_NAME + ".npy")
    if not os.path.exists(f):
        have = sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []
        raise RuntimeError(f"{f} was not written (found: {', '.join(have) or 'nothing'})")
    return np.load(f)


def compare(got, ref):
    """Returns (max abs diff, relative = diff / max|ref|, problem or None)."""
    if got.shape != ref.shape:
        return float("nan"), float("nan"), f"shape {got.shape} != reference {ref.shape}"
    if not np.isfinite(got).all():
        return float("nan"), float("nan"), "non-finite values"
    g = got.astype(np.float64)
    r = ref.astype(np.float64)
    diff = float(np.max(np.abs(g - r))) if g.size else 0.0
    scale = float(np.max(np.abs(r))) if r.size else 0.0
    rel = diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))
    return diff, rel, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: /usr/bin/python3 tests/parity/check_parity.py "
                                        "--models build/parity-models --rangeguard build/rangeguard")
    ap.add_argument("--models", required=True, help="folder written by export_models.py")
    ap.add_argument("--rangeguard", required=True, help="the rangeguard binary")
    ap.add_argument("--only", help="comma-separated model names (default: every model in --models)")
    ap.add_argument("--tol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for ONNX Runtime (default 1) and, when given, "
                         "passed to rangeguard as --threads")
    ap.add_argument("--rg-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for 'rangeguard run' (repeatable), e.g. --rg-arg=--reference")
    ap.add_argument("--named-input", action="store_true",
                    help="pass the input as --input input=FILE instead of --input FILE")
    ap.add_argument("--node", default=shutil.which("node") or "/usr/bin/node", help="Node.js binary")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per command (default 600)")
    ap.add_argument("--keep", metavar="DIR", help="write outputs under DIR (kept) instead of a temporary folder")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()

    if not os.path.isdir(args.models):
        ap.error(f"--models {args.models}: no such folder (run tests/parity/export_models.py)")
    rg = os.path.abspath(args.rangeguard)
    if not (os.path.isfile(rg) and os.access(rg, os.X_OK)):
        ap.error(f"--rangeguard {args.rangeguard}: not an executable file")
    if not os.path.exists(ORT_RUN):
        ap.error(f"{ORT_RUN} is missing")
    available = discover(args.models)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        missing = [n for n in names if n not in available]
        if missing:
            ap.error(f"not exported in {args.models}: {', '.join(missing)}")
    else:
        names = available
    if not names:
        ap.error(f"no models in {args.models} (run tests/parity/export_models.py)")

    work = args.keep or tempfile.mkdtemp(prefix="rg-parity-")
    ort_threads = args.threads if args.threads is not None else 1
    rows, failures = [], []
    header = (f"{'model':20} {'|rg-ort|':>10} {'rel':>9} {'|rg-torch|':>10} {'rel':>9} "
              f"{'ort~torch':>9} {'rg s':>6} {'ort s':>6}  result")
    print(header)
    print("-" * len(header), flush=True)
    try:
        for name in names:
            onnx_path = os.path.join(args.models, name + ".onnx")
            inp = os.path.join(args.models, name + ".input.npy")
            rg_out = os.path.join(work, "rg", name)
            ort_out = os.path.join(work, "ort", name)
            for d in (rg_out, ort_out):
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
            input_arg = f"input={inp}" if args.named_input else inp
            rg_cmd = [rg, "run", onnx_path, "--input", input_arg, "--output-dir", rg_out]
            if args.threads is not None:
                rg_cmd += ["--threads", str(args.threads)]
            rg_cmd += args.rg_arg
            ort_cmd = [args.node, ORT_RUN, onnx_path, "--input", inp, "--output-dir", ort_out,
                       "--threads", str(ort_threads)]

            row = {"model": name, "result": "FAIL"}
            problems = []
            ok_rg, row["rg_seconds"], msg = run_cmd(rg_cmd, args.timeout)
            if not ok_rg:
                problems.append(f"rangeguard failed: {' '.join(rg_cmd)}\n  {msg}")
            ok_ort, row["ort_seconds"], msg = run_cmd(ort_cmd, args.timeout)
            if not ok_ort:
                problems.append(f"ort_run.js failed: {' '.join(ort_cmd)}\n  {msg}")
            torch_ref = np.load(os.path.join(args.models, name + ".torch.npy"))
            nan = float("nan")
            d_ort = r_ort = d_torch = r_torch = r_ref = nan
            try:
                ort_y = load_output(ort_out) if ok_ort else None
                rg_y = load_output(rg_out) if ok_rg else None
                if ort_y is not None:
                    _, r_ref, p = compare(ort_y, torch_ref)
                    if p:
                        problems.append(f"ORT vs torch: {p}")
                if rg_y is not None and ort_y is not None:
                    d_ort, r_ort, p = compare(rg_y, ort_y)
                    if p:
                        problems.append(f"vs ORT: {p}")
                    elif not r_ort <= args.tol:
                        problems.append(f"vs ORT: relative difference {r_ort:.3g} > {args.tol:g}")
                if rg_y is not None:
                    d_torch, r_torch, p = compare(rg_y, torch_ref)
                    if p:
                        problems.append(f"vs torch: {p}")
                    elif not r_torch <= args.tol:
                        problems.append(f"vs torch: relative difference {r_torch:.3g} > {args.tol:g}")
                # Batch 1: the first sample alone against the references' first row.
                x = np.load(inp)
                if x.ndim > 0 and x.shape[0] > 1:
                    inp1 = os.path.join(work, name + ".batch1.npy")
                    np.save(inp1, x[:1])
                    rg1_out = rg_out + ".batch1"
                    shutil.rmtree(rg1_out, ignore_errors=True)
                    os.makedirs(rg1_out)
                    rg1_cmd = [c if c != input_arg else input_arg.replace(inp, inp1) for c in rg_cmd]
                    rg1_cmd[rg1_cmd.index(rg_out)] = rg1_out
                    ok1, _, msg = run_cmd(rg1_cmd, args.timeout)
                    if not ok1:
                        problems.append(f"rangeguard failed: {' '.join(rg1_cmd)}\n  {msg}")
                    else:
                        y1 = load_output(rg1_out)
                        for ref_name, ref in (("ORT", ort_y), ("torch", torch_ref)):
                            if ref is None:
                                continue
                            _, r1, p = compare(y1, ref[:1])
                            if p or not r1 <= args.tol:
                                problems.append(f"batch 1 vs {ref_name}: {p or f'relative difference {r1:.3g} > {args.tol:g}'}")
                        row["rel_batch1_vs_torch"] = compare(y1, torch_ref[:1])[1]
            except Exception as e:
                problems.append(str(e))
            if not problems:
                row["result"] = "PASS"
            row.update(abs_vs_ort=d_ort, rel_vs_ort=r_ort, abs_vs_torch=d_torch, rel_vs_torch=r_torch,
                       ort_vs_torch_rel=r_ref, problems=problems)
            rows.append(row)
            print(f"{name:20} {d_ort:10.3g} {r_ort:9.2e} {d_torch:10.3g} {r_torch:9.2e} {r_ref:9.2e} "
                  f"{row['rg_seconds']:6.2f} {row['ort_seconds']:6.2f}  {row['result']}", flush=True)
            for p in problems:
                print("    " + p.replace("\n", "\n    "), flush=True)
            if problems:
                failures.append(name)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{len(rows) - len(failures)}/{len(rows)} passed (tolerance {args.tol:g} relative to max|reference|)")
    if failures:
        print(f"failed: {', '.join(failures)}")
    if args.json:
        def clean(v):  # NaN (not measured) -> null, so that the file is strict JSON
            return None if isinstance(v, float) and v != v else v
        rows = [{k: clean(v) for k, v in r.items()} for r in rows]
        with open(args.json, "w") as f:
            json.dump({"tol": args.tol, "models": rows}, f, indent=1)
            f.write("\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
