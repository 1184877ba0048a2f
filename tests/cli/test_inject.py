#!/usr/bin/env python3
"""End-to-end tests of `rangeguard inject` on zoo models and real Fashion-MNIST images:

- a fault injected in place (weights re-derived inside the compiled, BatchNorm-folded
  model) gives exactly the outcome of editing that initializer in the ONNX file, checked
  against both `rangeguard run` and ONNX Runtime on the edited file;
- the report follows its schema, rates match their counts, and Wilson intervals hold them;
- the seed fixes the fault list; shards merge to the unsharded result exactly;
- exponent-bit flips corrupt the protected model (zero action) far less than the original;
- bad input is one clear line.

    /usr/bin/python3 tests/cli/test_inject.py [--binary build/rangeguard]
"""
import argparse
import gzip
import html.parser
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import onnx
from onnx import numpy_helper

from cli_support import CleanErrors

BIN = "build/rangeguard"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZOO = os.path.join(ROOT, "models")
ORT_RUN = os.path.join(ROOT, "scripts", "ort_run.js")
FMNIST = "/usr/share/datasets/fashion-mnist"
TRAIN = f"{FMNIST}/train-images-idx3-ubyte.gz"
TEST = f"{FMNIST}/t10k-images-idx3-ubyte.gz"
LABELS = f"{FMNIST}/t10k-labels-idx1-ubyte.gz"
N = 64  # evaluation inputs per fault


def run(*args, check=False):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed: {p.stderr}")
    return p


def jload(path):
    with open(path) as f:
        return json.load(f)


class InjectTest(CleanErrors):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.d = cls.tmp.name
        with gzip.open(TEST) as f:
            x = np.frombuffer(f.read(), np.uint8, offset=16)[: N * 784].reshape(N, 1, 28, 28).astype(np.float32)
        cls.x = os.path.join(cls.d, "x.npy")
        np.save(cls.x, x)
        cls.protected = {}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.d, name)

    def protect(self, name):
        if name not in self.protected:
            b, p = self.path(name + ".bounds.json"), self.path(name + ".p.onnx")
            run("calibrate", os.path.join(ZOO, name + ".onnx"), "--data", TRAIN, "--out", b, check=True)
            run("protect", os.path.join(ZOO, name + ".onnx"), "--bounds", b, "--out", p, "--granularity", "channel",
                "--action", "zero", "--detect", check=True)
            self.protected[name] = p
        return self.protected[name]

    def campaign(self, model, *args):
        out = self.path("c.json")
        run("inject", model, "--data", TEST, "--samples", N, *args, "--json", out, check=True)
        return jload(out)

    def top1(self, model, ort=False):
        d = tempfile.mkdtemp(dir=self.d)
        if ort:
            cmd = ["node", ORT_RUN, model, "--input", self.x, "--output-dir", d]
        else:
            cmd = [BIN, "run", model, "--input", self.x, "--output-dir", d]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        y = np.load(os.path.join(d, "logits.npy"))
        return y.argmax(1), ~np.isfinite(y).all(1)

    # --- in place == edited file ----------------------------------------------------------
    def test_in_place_injection_equals_editing_the_file_in_rangeguard_and_onnx_runtime(self):
        for name in ("resnet_swish", "mobilenet_hardswish", "lenet_relu"):
            model = os.path.join(ZOO, name + ".onnx")
            faults = self.path(name + ".faults.jsonl")
            self.campaign(model, "--trials", 6, "--bits", "20-30", "--seed", 3, "--faults-out", faults)
            with open(faults) as f:
                lines = [json.loads(l) for l in f]
            self.assertEqual(len(lines), 6)
            golden, _ = self.top1(model)
            for k, fault in enumerate(lines):
                with self.subTest(model=name, fault=k):
                    one = self.path("one.jsonl")
                    with open(one, "w") as f:
                        f.write(json.dumps(fault) + "\n")
                    rep = self.campaign(model, "--faults-in", one)["original"]
                    m = onnx.load(model)
                    w = next(t for t in m.graph.initializer if t.name == fault["tensor"])
                    a = numpy_helper.to_array(w).copy()
                    flat = a.reshape(-1).view(np.uint32)
                    for b in fault["bits"]:
                        flat[fault["index"]] ^= np.uint32(1 << b)
                    w.CopyFrom(numpy_helper.from_array(a, w.name))
                    edited = self.path("edited.onnx")
                    onnx.save(m, edited)
                    for ort in (False, True):
                        y, due = self.top1(edited, ort)
                        sdc = int(np.sum((y != golden) & ~due))
                        self.assertEqual((rep["counts"]["sdc"], rep["counts"]["due"]),
                                         (sdc, int(due.sum())), "ONNX Runtime" if ort else "rangeguard run")

    # --- the report -------------------------------------------------------------------------
    def test_report_schema_and_statistics(self):
        j = self.campaign(os.path.join(ZOO, "lenet_relu.onnx"), "--protected", self.protect("lenet_relu"),
                          "--labels", LABELS, "--trials", 200, "--bits", "23-30")
        self.assertEqual(j["format"], "rangeguard.campaign")
        for m in ("original", "protected"):
            t = j[m]
            for k in ("trials", "sdc_rate", "sdc_ci95", "critical_sdc_rate", "due_rate", "detected_rate", "per_bit",
                      "per_layer"):
                self.assertIn(k, t)
            c = t["counts"]
            self.assertEqual(t["trials"], 200)
            self.assertEqual(t["pairs"], 200 * N)
            self.assertEqual(c["masked"] + c["sdc"] + c["due"], t["pairs"])
            self.assertAlmostEqual(t["sdc_rate"], c["sdc"] / t["pairs"])
            lo, hi = t["sdc_ci95"]
            self.assertLessEqual(lo, t["sdc_rate"])
            self.assertGreaterEqual(hi, t["sdc_rate"])
            self.assertLessEqual(c["critical_sdc"], c["sdc"])
            self.assertEqual(sum(v["pairs"] for v in t["per_bit"].values()), t["pairs"])
            self.assertEqual(sum(v["sdc"] for v in t["per_layer"].values()), c["sdc"])
            self.assertTrue(set(t["per_bit"]) <= {str(b) for b in range(23, 31)})
        self.assertIsNone(j["original"]["detected_rate"])  # no detector in the original
        self.assertEqual(j["settings"]["clean_accuracy"], j["settings"]["protected_clean_accuracy"])
        self.assertGreater(j["reduction"]["factor"], 1)

    def test_html_report_shows_the_campaign(self):
        page = self.path("c.html")
        j = self.campaign(os.path.join(ZOO, "lenet_relu.onnx"), "--protected", self.protect("lenet_relu"),
                          "--trials", 60, "--bits", "23-30", "--html", page)
        with open(page) as f:
            text = f.read()
        html.parser.HTMLParser().feed(text)  # parses
        self.assertNotIn("http://", text.replace("http://www.w3.org/2000/svg", ""))  # nothing fetched
        self.assertEqual(text.count("<svg"), 3)  # outcomes, by bit, by layer
        self.assertIn(f"<b>{j['reduction']['factor']:.1f}x</b>", text)
        for m in ("original", "protected"):
            for bit, e in j[m]["per_bit"].items():  # every bit's row, with its rate, in the table
                self.assertIn(f"<td>{bit}</td>", text)
                self.assertIn(f"{e['sdc_rate'] * 100:.3f}%", text)
            for layer in j[m]["per_layer"]:
                self.assertIn(f"<td>{layer}</td>", text)
        # one bar per (bit, model), each with its hover value
        bars = re.findall(r"<title>(original|protected): ([0-9.e+-]+)</title>", text)
        self.assertGreaterEqual(len(bars), 2 * len(j["original"]["per_bit"]))

    def test_seed_fixes_the_list_and_shards_merge_exactly(self):
        model = os.path.join(ZOO, "lenet_tanh.onnx")
        args = ("--trials", 40, "--seed", 11, "--threads", 1)
        whole = self.campaign(model, *args)
        again = self.campaign(model, "--trials", 40, "--seed", 11, "--threads", 2)
        self.assertEqual(whole["original"]["counts"], again["original"]["counts"])
        # Runs that resume at the faulted layer (the default) classify exactly as whole runs.
        whole_runs = self.campaign(model, *args, "--resume-mb", 0)
        self.assertEqual(whole["original"]["counts"], whole_runs["original"]["counts"])
        self.assertEqual(whole["original"]["per_layer"], whole_runs["original"]["per_layer"])
        shards = []
        for i in range(3):
            out = self.path(f"s{i}.json")
            run("inject", model, "--data", TEST, "--samples", N, *args, "--shard", f"{i}/3", "--json", out, check=True)
            shards.append(out)
        merged = self.path("merged.json")
        run("inject-merge", *shards, "--json", merged, "--html", self.path("merged.html"), check=True)
        self.assertTrue(os.path.getsize(self.path("merged.html")) > 1000)
        self.assertEqual(jload(merged)["original"]["counts"], whole["original"]["counts"])
        self.assertEqual(jload(merged)["original"]["per_layer"], whole["original"]["per_layer"])
        p = run("inject-merge", shards[0], shards[0])
        self.assert_clean_error(p, "twice")

    def test_exponent_flips_hurt_the_protected_model_far_less(self):
        for name in ("lenet_relu", "resnet_swish"):
            with self.subTest(model=name):
                j = self.campaign(os.path.join(ZOO, name + ".onnx"), "--protected", self.protect(name),
                                  "--trials", 150, "--bits", "30", "--seed", 5)
                o, p = j["original"], j["protected"]
                print(f"  {name}: bit-30 weight flips, SDC+DUE {o['sdc_rate'] + o['due_rate']:.2%} -> "
                      f"{p['sdc_rate'] + p['due_rate']:.2%}", file=sys.stderr)
                self.assertGreater(o["sdc_rate"] + o["due_rate"], 0.05)
                self.assertLess(p["sdc_rate"] + p["due_rate"], (o["sdc_rate"] + o["due_rate"]) / 5)

    def test_silent_sdc_is_what_the_detector_did_not_flag(self):
        # Sigmoid saturates: checks after it see little, so an exponent flip that drives a
        # unit to a constant still corrupts some predictions. With layer-output checks the
        # detector sees the huge input to the Sigmoid, so those SDCs are not silent.
        # --batch 1: every input's inference is flagged (or not) on its own.
        name = "lenet_sigmoid"
        model = os.path.join(ZOO, name + ".onnx")
        b = self.path("sig.bounds.json")
        run("calibrate", model, "--data", TRAIN, "--out", b, "--layer-outputs", check=True)
        variants = {}
        for tag, detect in (("checked", ("--detect",)), ("blind", ())):  # blind: the same checks, no counter
            p = self.path(f"sig.{tag}.onnx")
            run("protect", model, "--bounds", b, "--out", p, "--granularity", "channel", "--action", "zero",
                "--margin", "0.1", *detect, check=True)
            variants[tag] = self.campaign(model, "--protected", p, "--trials", 300, "--bits", "30", "--seed", 5,
                                          "--batch", 1)
        j = variants["checked"]
        o, p = j["original"]["counts"], j["protected"]["counts"]
        self.assertEqual(o["undetected_sdc"], o["sdc"])  # no detector: every SDC is silent
        self.assertGreater(p["sdc"], 0)
        self.assertLess(p["undetected_sdc"], p["sdc"])
        self.assertAlmostEqual(j["protected"]["undetected_sdc_rate"], p["undetected_sdc"] / p["pairs"])
        self.assertGreater(j["silent_reduction"]["factor"], j["reduction"]["factor"])
        blind = variants["blind"]["protected"]["counts"]
        self.assertEqual(blind["sdc"], p["sdc"])  # the same checks correct the same values
        self.assertEqual(blind["undetected_sdc"], blind["sdc"])  # but nothing reports them

    def test_activation_faults(self):
        j = self.campaign(os.path.join(ZOO, "lenet_relu.onnx"), "--target", "activations", "--trials", 30,
                          "--bits", "30", "--faults-out", self.path("act.jsonl"))
        with open(self.path("act.jsonl")) as f:
            self.assertTrue(all(json.loads(l)["target"] == "activation" for l in f))
        self.assertEqual(j["original"]["trials"], 30)
        self.assertGreater(j["original"]["counts"]["sdc"] + j["original"]["counts"]["due"], 0)
        whole = self.campaign(os.path.join(ZOO, "lenet_relu.onnx"), "--faults-in", self.path("act.jsonl"), "--resume-mb", 0)
        self.assertEqual(j["original"]["counts"], whole["original"]["counts"])

    def test_activation_sites_cover_layers_followed_by_batchnorm(self):
        # resnet_swish's convolutions are each followed by a BatchNormalization that the
        # runtime folds into them: their sites sit on the value the fused layer writes (the
        # BN's output). Every Conv/Gemm output must count, 32 bits per element, as shape
        # inference on the file gives them (these layers once dropped out: population 320).
        model = os.path.join(ZOO, "resnet_swish.onnx")
        m = onnx.shape_inference.infer_shapes(onnx.load(model))
        dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                for v in list(m.graph.value_info) + list(m.graph.output)}
        layers = [n for n in m.graph.node if n.op_type in ("Conv", "Gemm")]
        self.assertTrue(any(n.op_type == "BatchNormalization" for n in m.graph.node))
        elements = sum(int(np.prod(dims[n.output[0]][1:])) for n in layers)
        j = self.campaign(model, "--target", "activations", "--trials", 40, "--faults-out", self.path("bn.jsonl"))
        self.assertEqual(j["population"], 32 * elements)
        producers = {o: n.op_type for n in m.graph.node for o in n.output}
        with open(self.path("bn.jsonl")) as f:
            written = {producers[json.loads(l)["tensor"]] for l in f}
        self.assertIn("BatchNormalization", written)
        again = self.campaign(model, "--faults-in", self.path("bn.jsonl"), "--resume-mb", 0)
        self.assertEqual(j["original"]["counts"], again["original"]["counts"])
        # A list naming a folded conv's own output (as lists did before the sites moved)
        # is refused, and the error names the value to use instead.
        conv = next(n for n in m.graph.node if n.op_type == "Conv")
        bn = next(n for n in m.graph.node if n.op_type == "BatchNormalization" and n.input[0] == conv.output[0])
        with open(self.path("old.jsonl"), "w") as f:
            f.write(json.dumps({"target": "activation", "tensor": conv.output[0], "index": 0, "kind": "bitflip", "bits": [30]}) + "\n")
        p = run("inject", model, "--data", TEST, "--faults-in", self.path("old.jsonl"))
        self.assert_clean_error(p, bn.output[0])

    # --- bad input --------------------------------------------------------------------------
    def test_bad_input(self):
        model = os.path.join(ZOO, "lenet_relu.onnx")
        p = run("inject", model, "--data", TEST, "--bits", "32")
        self.assert_clean_error(p, "--bits")
        p = run("inject", model, "--data", TEST, "--protected", os.path.join(ZOO, "lenet_tanh.onnx"), "--trials", 3)
        self.assert_clean_error(p, "parameters differ")
        with open(self.path("bad.jsonl"), "w") as f:
            f.write('{"target": "weight", "tensor": "nope", "index": 0, "kind": "bitflip", "bits": [30]}\n')
        p = run("inject", model, "--data", TEST, "--faults-in", self.path("bad.jsonl"))
        self.assert_clean_error(p, "nope")
        with open(self.path("bad.jsonl"), "w") as f:
            f.write('{"target": "weight", "tensor": "x", "index": 0, "kind": "bitflip", "bits": [40]}\n')
        p = run("inject", model, "--data", TEST, "--faults-in", self.path("bad.jsonl"))
        self.assert_clean_error(p, "bad.jsonl:1")
        p = run("inject", model, "--data", TEST, "--layers", "NoSuchLayer")
        self.assert_clean_error(p, "NoSuchLayer")
        p = run("inject", model, "--data", TEST, "--shard", "3/2")
        self.assert_clean_error(p, "--shard")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=BIN)
    args, rest = ap.parse_known_args()
    BIN = os.path.abspath(args.binary)
    os.chdir(ROOT)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
