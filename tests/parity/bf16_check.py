#!/usr/bin/env python3
"""bf16 against fp32: top-1 agreement on the model zoo's 10,000 Fashion-MNIST test images
(must be >= 99% per model) and the largest relative error on the parity models (recorded,
and bounded loosely so a broken bf16 path fails).

    /usr/bin/python3 tests/parity/bf16_check.py --rangeguard build/rangeguard [--models DIR] [--json OUT]
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FMNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def run(rg, model, inp, out, precision):
    p = subprocess.run([rg, "run", model, "--input", inp, "--output-dir", out, "--precision", precision],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"rangeguard failed on {model} ({precision}): {p.stderr.strip()}")
    names = [f for f in os.listdir(out) if f.endswith(".npy")]
    return np.load(os.path.join(out, sorted(names)[0]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rangeguard", default=os.path.join(ROOT, "build/rangeguard"))
    ap.add_argument("--models", default=os.path.join(ROOT, "build/parity-models"))
    ap.add_argument("--json")
    ap.add_argument("--min-agreement", type=float, default=0.99)
    ap.add_argument("--max-rel", type=float, default=0.25)
    a = ap.parse_args()
    rg = os.path.abspath(a.rangeguard)
    report = {"zoo": [], "parity": []}
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        with gzip.open(FMNIST) as f:
            x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28).astype(np.float32)
        xin = os.path.join(tmp, "x.npy")
        np.save(xin, x)
        zoo = json.load(open(os.path.join(ROOT, "models/zoo.json")))
        print(f"{'zoo model':<22} {'agreement':>9}  result")
        for m in zoo["models"]:
            path = os.path.join(ROOT, "models", m["file"])
            y32 = run(rg, path, xin, os.path.join(tmp, m["name"] + "32"), "fp32").argmax(1)
            y16 = run(rg, path, xin, os.path.join(tmp, m["name"] + "16"), "bf16").argmax(1)
            agree = float((y32 == y16).mean())
            good = agree >= a.min_agreement
            ok &= good
            report["zoo"].append({"model": m["name"], "top1_agreement": agree})
            print(f"{m['name']:<22} {agree:>9.4f}  {'PASS' if good else 'FAIL'}")
        if os.path.isdir(a.models):
            print(f"\n{'parity model':<22} {'max rel err bf16 vs fp32':>24}")
            for f in sorted(os.listdir(a.models)):
                if not f.endswith(".onnx"):
                    continue
                name = f[:-5]
                inp = os.path.join(a.models, name + ".input.npy")
                y32 = run(rg, os.path.join(a.models, f), inp, os.path.join(tmp, name + "p32"), "fp32")
                y16 = run(rg, os.path.join(a.models, f), inp, os.path.join(tmp, name + "p16"), "bf16")
                rel = float(np.abs(y16 - y32).max() / max(np.abs(y32).max(), 1e-12))
                good = rel <= a.max_rel
                ok &= good
                report["parity"].append({"model": name, "max_rel_err": rel})
                print(f"{name:<22} {rel:>24.3e}  {'ok' if good else 'FAIL'}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
