#!/usr/bin/env python3
"""The PyTorch baseline injector (scripts/torch_inject.py) against `rangeguard inject`:

- every zoo model rebuilt in PyTorch from its ONNX initializers reproduces `rangeguard run`
  (the renamed, transposed, reshaped and deduplicated initializers all land right);
- replaying rangeguard's fault list on lenet_relu classifies the (fault, input) pairs like
  rangeguard does: SDC+DUE within 2, and at most 2 pairs classified differently as far as
  the per-layer and per-bit counts can tell;
- what the baseline does not support is one clear error line.
The speed ratio itself is measured by scripts/inject_vs_torch.sh, not here (it depends on
the machine's load).

    /usr/bin/python3 tests/cli/test_torch_baseline.py [--binary build/rangeguard]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

BIN = "build/rangeguard"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZOO = os.path.join(ROOT, "models")
SCRIPT = os.path.join(ROOT, "scripts", "torch_inject.py")
TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
FAULTS, SAMPLES = 40, 32
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, ZOO)


def torch_inject(model, faults, *extra):
    return subprocess.run(["/usr/bin/python3", SCRIPT, model, "--faults", faults, "--samples",
                           str(SAMPLES), "--threads", "1", "--rangeguard", BIN, *extra],
                          capture_output=True, text=True, timeout=300)


class TorchBaselineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.d = cls.tmp.name

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_zoo_model_reproduces_onnx_outputs(self):
        import onnx
        import torch
        from onnx import numpy_helper
        import torch_inject as ti
        import train_zoo as zoo
        torch.set_num_threads(1)
        x = ti.read_inputs(TEST, 8, zoo, np)
        with open(os.path.join(ZOO, "zoo.json")) as f:
            files = [e["file"] for e in json.load(f)["models"]]
        self.assertGreaterEqual(len(files), 10)
        for fname in files:
            with self.subTest(model=fname):
                path = os.path.join(ZOO, fname)
                _, model = ti.build_zoo_model(path, zoo, torch)
                ti.load_weights(model, onnx.load(path), torch, numpy_helper)
                with torch.inference_mode():
                    got = model(torch.from_numpy(x)).numpy()
                ref = ti.rangeguard_logits(BIN, path, x, 1, np)
                self.assertLess(float(np.abs(got - ref).max()), 1e-4)
                self.assertTrue((got.argmax(1) == ref.argmax(1)).all())

    def test_replay_matches_rangeguard(self):
        from inject_compare import differing_pairs_bound, rg_buckets
        model = os.path.join(ZOO, "lenet_relu.onnx")
        faults, report = os.path.join(self.d, "f.jsonl"), os.path.join(self.d, "r.json")
        # Exponent bits: enough SDCs in 40 faults that agreeing is not trivially 0 == 0.
        p = subprocess.run([BIN, "inject", model, "--data", TEST, "--trials", str(FAULTS),
                            "--samples", str(SAMPLES), "--bits", "23-30", "--seed", "1",
                            "--threads", "1", "--faults-out", faults, "--json", report],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(report) as f:
            rg = json.load(f)
        p = torch_inject(model, faults)
        self.assertEqual(p.returncode, 0, p.stderr)
        t = json.loads(p.stdout)
        self.assertEqual(t["pairs"], FAULTS * SAMPLES)
        self.assertEqual(t["pairs"], rg["original"]["counts"]["pairs"])
        self.assertLess(t["max_abs_diff_vs_rangeguard"], 1e-4)
        self.assertEqual(t["golden_top1_differs"], 0)
        c = rg["original"]["counts"]
        self.assertGreater(c["sdc"] + c["due"], 0, "the fault list corrupts nothing: no comparison")
        self.assertLessEqual(abs((c["sdc"] + c["due"]) - (t["sdc"] + t["due"])), 2, (c, t))
        for table in ("per_layer", "per_bit"):
            self.assertLessEqual(differing_pairs_bound(rg_buckets(rg, table), t[table]), 2, table)

    def test_unsupported_faults_are_one_clear_line(self):
        model = os.path.join(ZOO, "lenet_relu.onnx")
        bad = os.path.join(self.d, "act.jsonl")
        with open(bad, "w") as f:
            f.write('{"target": "activation", "tensor": "x", "layer": "l", "index": 0, '
                    '"kind": "bitflip", "bits": [30]}\n')
        p = torch_inject(model, bad)
        self.assertEqual(p.returncode, 1)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("weight faults only", lines[0])
        with open(bad, "w") as f:
            f.write('{"target": "weight", "tensor": "nope", "index": 0, "kind": "bitflip", "bits": [30]}\n')
        p = torch_inject(model, bad)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn("nope", p.stderr)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=BIN)
    args, rest = ap.parse_known_args()
    BIN = os.path.abspath(args.binary)
    os.chdir(ROOT)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
