#!/usr/bin/env python3
"""End-to-end tests of `rangeguard calibrate` and `rangeguard protect` on the trained zoo
and real Fashion-MNIST images:

- every zoo model gets sites of its own activation kind; the protected model passes the
  ONNX checker (full check), keeps its parameters byte for byte, and gives the original's
  outputs exactly on the calibration data, in rangeguard and in ONNX Runtime;
- the detector counts nothing on calibration data and something on a narrower range;
- a weight with a flipped exponent bit hurts the protected model far less;
- bad input (another model's bounds, wrong-shaped data, unknown kinds) is one clear line.

    /usr/bin/python3 tests/cli/test_protect.py [--binary build/rangeguard]
"""
import argparse
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from cli_support import CleanErrors

BIN = "build/rangeguard"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZOO = os.path.join(ROOT, "models")
ORT_RUN = os.path.join(ROOT, "scripts", "ort_run.js")
FMNIST = "/usr/share/datasets/fashion-mnist"
TRAIN = f"{FMNIST}/train-images-idx3-ubyte.gz"
TEST = f"{FMNIST}/t10k-images-idx3-ubyte.gz"
OUT = "logits"  # every zoo model's output
CALIB = 200  # calibration samples: the first CALIB training images
# The activation kind each zoo model is built around (models/train_zoo.py).
KINDS = {"lenet_relu": "relu", "lenet_sigmoid": "sigmoid", "lenet_tanh": "tanh", "mlp_tanh": "tanh",
         "cnn_elu": "elu", "mobilenet_hardswish": "hardswish", "mobilenet_leakyrelu": "leakyrelu",
         "resnet_prelu": "prelu", "resnet_swish": "swish", "vit_gelu": "gelu"}


def run(*args, check=False):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed: {p.stderr}")
    return p


def load_images(path, n):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=16)[: n * 784].reshape(n, 1, 28, 28).astype(np.float32)


def jload(path):
    with open(path) as f:
        return json.load(f)


def outputs(d):
    return {f[:-4]: np.load(os.path.join(d, f)) for f in sorted(os.listdir(d)) if f.endswith(".npy")}


class ProtectTest(CleanErrors):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.d = cls.tmp.name
        cls.calib = os.path.join(cls.d, "calib.npy")
        np.save(cls.calib, load_images(TRAIN, CALIB))
        cls.test_x = os.path.join(cls.d, "test.npy")
        np.save(cls.test_x, load_images(TEST, 256))
        cls.bounds = {}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.d, name)

    def calibrated(self, name, *extra):
        """Bounds for zoo model `name` on the calibration images (cached per settings)."""
        key = (name,) + extra
        if key not in self.bounds:
            out = self.path(f"{name}{len(self.bounds)}.bounds.json")
            run("calibrate", os.path.join(ZOO, name + ".onnx"), "--data", TRAIN, "--samples", CALIB,
                "--out", out, *extra, check=True)
            self.bounds[key] = out
        return self.bounds[key]

    def protect(self, name, bounds, *extra):
        out = self.path(f"{name}.protected.{abs(hash(extra))}.onnx")
        p = run("protect", os.path.join(ZOO, name + ".onnx"), "--bounds", bounds, "--out", out, *extra, check=True)
        return out, p

    def rg_outputs(self, model, x):
        d = tempfile.mkdtemp(dir=self.d)
        run("run", model, "--input", x, "--output-dir", d, check=True)
        return outputs(d)

    def ort_outputs(self, model, x):
        d = tempfile.mkdtemp(dir=self.d)
        p = subprocess.run(["node", ORT_RUN, model, "--input", x, "--output-dir", d], capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        return outputs(d)

    # --- the bounds file ------------------------------------------------------------------
    def test_bounds_file_schema(self):
        model = os.path.join(ZOO, "resnet_swish.onnx")
        with open(self.calibrated("resnet_swish")) as f:
            b = json.load(f)
        self.assertEqual(b["format"], "rangeguard.bounds")
        self.assertEqual(b["version"], 1)
        with open(model, "rb") as f:
            self.assertEqual(b["model"]["sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertEqual(b["settings"]["samples"], CALIB)
        self.assertEqual(b["settings"]["stat"], "minmax")
        self.assertGreater(len(b["sites"]), 0)
        names = {v.name for v in onnx.load(model).graph.value_info} | {n for node in onnx.load(model).graph.node
                                                                        for n in node.output}
        for s in b["sites"]:
            self.assertIn(s["tensor"], names)
            self.assertEqual(s["kind"], "swish")
            self.assertEqual(s["samples"], CALIB)
            self.assertLessEqual(s["min"], s["max"])
            self.assertEqual(len(s["channel_min"]), len(s["channel_max"]))
            self.assertAlmostEqual(min(s["channel_min"]), s["min"], places=5)
            self.assertAlmostEqual(max(s["channel_max"]), s["max"], places=5)
            self.assertEqual(sum(s["histogram"]["counts"]), s["elements"])

    def test_npy_and_idx_data_give_the_same_bounds(self):
        out = self.path("npy.bounds.json")
        run("calibrate", os.path.join(ZOO, "resnet_swish.onnx"), "--data", self.calib, "--out", out, check=True)
        with open(out) as f, open(self.calibrated("resnet_swish")) as g:
            a, b = json.load(f)["sites"], json.load(g)["sites"]
        self.assertEqual([(s["tensor"], s["min"], s["max"], s["channel_max"]) for s in a],
                         [(s["tensor"], s["min"], s["max"], s["channel_max"]) for s in b])

    def test_percentile_bounds_are_inside_minmax_and_the_detector_sees_the_tail(self):
        mm = jload(self.calibrated("lenet_relu"))["sites"]
        pb = self.calibrated("lenet_relu", "--stat", "percentile:99")
        pc = jload(pb)["sites"]
        for a, b in zip(mm, pc):
            self.assertLessEqual(b["max"], a["max"])
            self.assertGreaterEqual(b["min"], a["min"])
        self.assertTrue(any(b["max"] < a["max"] for a, b in zip(mm, pc)))
        model, _ = self.protect("lenet_relu", pb, "--detect")
        count = int(self.rg_outputs(model, self.calib)["rangeguard_oob_count"])
        self.assertGreater(count, 0)  # about 1% of the top of every range lies outside

    # --- every zoo model ------------------------------------------------------------------
    def test_every_zoo_model(self):
        x = self.path("calib64.npy")
        np.save(x, np.load(self.calib)[:64])
        for name, kind in KINDS.items():
            with self.subTest(model=name):
                original = os.path.join(ZOO, name + ".onnx")
                b = jload(self.calibrated(name))
                kinds = {s["kind"] for s in b["sites"]}
                self.assertIn(kind, kinds)
                model, p = self.protect(name, self.calibrated(name), "--granularity", "channel", "--detect")
                self.assertIn(f"{kind} ", p.stdout.split("sites by activation:")[1])
                m = onnx.load(model)
                onnx.checker.check_model(m, full_check=True)
                # Learned parameters, byte for byte.
                orig = {t.name: numpy_helper.to_array(t) for t in onnx.load(original).graph.initializer}
                prot = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
                for k, v in orig.items():
                    self.assertEqual(prot[k].tobytes(), v.tobytes(), k)
                meta = {p.key: p.value for p in m.metadata_props}
                self.assertIn("rangeguard.protection", meta)
                # Calibration data: outputs equal, nothing out of range.
                a, r = self.rg_outputs(original, x), self.rg_outputs(model, x)
                for k, v in a.items():
                    np.testing.assert_array_equal(r[k], v, err_msg=k)
                self.assertEqual(r["rangeguard_oob_count"].dtype, np.int64)
                self.assertEqual(int(r["rangeguard_oob_count"]), 0)
                # ONNX Runtime runs it and agrees (a 1% margin absorbs its last-bit
                # differences, which would otherwise be counted at the exact bounds).
                model_m, _ = self.protect(name, self.calibrated(name), "--granularity", "channel", "--detect",
                                          "--margin", "0.01")
                o = self.ort_outputs(model_m, x)
                for k, v in a.items():
                    np.testing.assert_allclose(o[k], v, rtol=1e-4, atol=1e-4 * np.abs(v).max(), err_msg=k)
                self.assertEqual(int(o["rangeguard_oob_count"]), 0)

    def test_forms_of_the_check(self):
        b = self.calibrated("resnet_swish")
        x = self.path("calib32.npy")
        np.save(x, np.load(self.calib)[:32])
        clean = self.rg_outputs(os.path.join(ZOO, "resnet_swish.onnx"), x)
        sites = len(jload(b)["sites"])
        for extra, op in ((("--granularity", "tensor"), "Clip"), (("--granularity", "channel"), "Min"),
                          (("--action", "zero"), "Where"), (("--action", "zero", "--granularity", "channel"), "Where")):
            with self.subTest(args=extra):
                model, _ = self.protect("resnet_swish", b, *extra)
                m = onnx.load(model)
                onnx.checker.check_model(m, full_check=True)
                ops = [n.op_type for n in m.graph.node if n.name.startswith("rangeguard/")]
                self.assertEqual(ops.count(op), sites)
                meta = {p.key: p.value for p in m.metadata_props}
                self.assertIn(b, meta["rangeguard.bounds"])
                out = self.rg_outputs(model, x)
                np.testing.assert_array_equal(out[OUT], clean[OUT])
                self.assertEqual([o.name for o in m.graph.output], [OUT])

    # --- what the protection buys -----------------------------------------------------------
    def flipped(self, path, faults, out):
        """`path` with bit 30 of weight element (tensor, index) flipped for each fault."""
        m = onnx.load(path)
        inits = {t.name: t for t in m.graph.initializer}
        for tensor, index in faults:
            w = inits[tensor]
            a = numpy_helper.to_array(w).copy()
            a.reshape(-1).view(np.uint32)[index] ^= np.uint32(1 << 30)
            w.CopyFrom(numpy_helper.from_array(a, w.name))
        onnx.save(m, out)
        return out

    def test_exponent_bit_flips_in_weights_hurt_the_protected_model_far_less(self):
        # Twelve seeded faults, each bit 30 (the exponent's top bit: w becomes w * 2^128)
        # of one random weight of a Conv/Gemm/MatMul, as a soft error in memory makes it.
        # A fault counts against an image when its top-1 class changes or a score is not
        # finite. The clamp cuts the damage; zeroing the value (Clip-Act) cuts it more.
        for name in ("lenet_relu", "resnet_swish", "mobilenet_hardswish"):
            with self.subTest(model=name):
                original = os.path.join(ZOO, name + ".onnx")
                g = onnx.load(original).graph
                sizes = {t.name: int(np.prod(t.dims)) for t in g.initializer}
                weights = [n.input[1] for n in g.node if n.op_type in ("Conv", "Gemm", "MatMul") and n.input[1] in sizes]
                rng = np.random.default_rng(7)
                faults = []
                for _ in range(12):
                    t = weights[rng.integers(len(weights))]
                    faults.append((t, int(rng.integers(sizes[t]))))
                rates = {}
                for tag, extra in (("original", None), ("clamp", ()), ("zero", ("--action", "zero"))):
                    model = original if extra is None else self.protect(
                        name, self.calibrated(name), "--granularity", "channel", *extra)[0]
                    clean = self.rg_outputs(model, self.test_x)[OUT].argmax(1)
                    bad = []
                    for k, f in enumerate(faults):
                        out = self.rg_outputs(self.flipped(model, [f], self.path(f"{name}.{tag}.{k}.onnx")),
                                              self.test_x)[OUT]
                        bad.append(np.mean((out.argmax(1) != clean) | ~np.isfinite(out).all(1)))
                    rates[tag] = float(np.mean(bad))
                print(f"  {name}: 12 weight faults x 256 images, prediction corrupted: original "
                      f"{rates['original']:.1%}, clamped {rates['clamp']:.1%}, zeroed {rates['zero']:.1%}",
                      file=sys.stderr)
                self.assertGreater(rates["original"], 0.2)
                self.assertLess(rates["clamp"], rates["original"] / 2)
                self.assertLess(rates["zero"], rates["original"] / 8)

    def test_layer_outputs_cover_attention_residual_branches_logits_and_saturating_inputs(self):
        # Without --layer-outputs the ViT's attention projections, residual branches and
        # logits have no check; with it each weight layer's output (after its bias) gets one,
        # except where an unbounded activation's check follows. Sigmoid/Tanh saturate, so
        # their inputs get one too.
        b = jload(self.calibrated("vit_gelu", "--layer-outputs"))
        sites = {s["tensor"]: s for s in b["sites"]}
        self.assertTrue(b["settings"]["layer_outputs"])
        gelu_inputs = {s["input"] for s in b["sites"] if s["kind"] == "gelu"}
        for t in ("/blocks/blocks.0/attn/q/Add_output_0", "/blocks/blocks.0/attn/proj/Add_output_0",
                  "/blocks/blocks.3/mlp/mlp.2/Add_output_0", "/patch/Conv_output_0", OUT):
            self.assertIn(t, sites)
            self.assertTrue(sites[t]["kind"].startswith("layer:"), sites[t])
        self.assertFalse(gelu_inputs & set(sites), "a GELU's input is already covered by the check after it")
        self.assertEqual(sites[OUT]["channel_axis"], 1)  # [N, classes]: one bound per class
        for name, act in (("lenet_sigmoid", "sigmoid"), ("mlp_tanh", "tanh")):
            lb = jload(self.calibrated(name, "--layer-outputs"))
            tensors = {s["tensor"] for s in lb["sites"]}
            for s in lb["sites"]:
                if s["kind"] == act:
                    self.assertIn(s["input"], tensors, f"{name}: the {act} input {s['input']} has no check")

        original = os.path.join(ZOO, "vit_gelu.onnx")
        model, p = self.protect("vit_gelu", self.calibrated("vit_gelu", "--layer-outputs"), "--granularity",
                                "channel", "--action", "zero", "--detect", "--margin", "0.01")
        self.assertIn("layer:MatMul", p.stdout)
        m = onnx.load(model)
        onnx.checker.check_model(m, full_check=True)
        self.assertEqual([o.name for o in m.graph.output], [OUT, "rangeguard_oob_count"])
        x = self.path("calib64.npy")
        np.save(x, np.load(self.calib)[:64])
        a, r, o = self.rg_outputs(original, x), self.rg_outputs(model, x), self.ort_outputs(model, x)
        np.testing.assert_array_equal(r[OUT], a[OUT])
        np.testing.assert_allclose(o[OUT], a[OUT], rtol=1e-4, atol=1e-4 * np.abs(a[OUT]).max())
        self.assertEqual(int(r["rangeguard_oob_count"]), 0)
        self.assertEqual(int(o["rangeguard_oob_count"]), 0)

        # A ResNet's residual Add joins a checked branch and a checked shortcut that arrive in
        # different oneDNN layouts: it must still run a oneDNN kernel (not the reference
        # one, 8x slower) and give the reference kernels' result. The detector's total
        # (folded into the RangeGuards, no Add step per site) equals the reference kernels'
        # and ONNX Runtime's on test images, where some values are out of range.
        rs, _ = self.protect("resnet_swish", self.calibrated("resnet_swish", "--layer-outputs"), "--granularity",
                             "channel", "--action", "zero", "--margin", "0.1", "--detect")
        info = run("info", rs, check=True).stdout
        self.assertNotIn("dnnl:ref", info)
        d = tempfile.mkdtemp(dir=self.d)
        run("run", rs, "--input", self.test_x, "--output-dir", d, "--reference", check=True)
        fast, ort = self.rg_outputs(rs, self.test_x), self.ort_outputs(rs, self.test_x)
        np.testing.assert_allclose(fast[OUT], np.load(os.path.join(d, OUT + ".npy")), rtol=1e-4, atol=1e-4)
        counts = [int(fast["rangeguard_oob_count"]), int(np.load(os.path.join(d, "rangeguard_oob_count.npy"))),
                  int(ort["rangeguard_oob_count"])]
        self.assertGreater(counts[0], 0)
        self.assertEqual(len(set(counts)), 1, f"detector totals rangeguard / reference / ORT: {counts}")
        # Unfolded, each site's int64 Add would be a reference-kernel step of its own.
        ref_steps = re.search(r" ref x(\d+)", info)
        sites = len(jload(self.calibrated("resnet_swish", "--layer-outputs"))["sites"])
        self.assertLess(int(ref_steps.group(1)) if ref_steps else 0, sites // 2, info)

        # Bit 30 of twelve seeded weights of the attention and MLP output projections.
        g = onnx.load(original).graph
        sizes = {t.name: int(np.prod(t.dims)) for t in g.initializer}
        weights = [n.input[1] for n in g.node if n.op_type == "MatMul" and n.input[1] in sizes
                   and ("proj" in n.name or "mlp.2" in n.name or "/v/" in n.name)]
        rng = np.random.default_rng(3)
        faults = [(t, int(rng.integers(sizes[t]))) for t in (weights[rng.integers(len(weights))] for _ in range(12))]
        rates = {}
        for tag, extra in (("original", None), ("activations", ()), ("layers", ("--layer-outputs",))):
            path = original if extra is None else self.protect(
                "vit_gelu", self.calibrated("vit_gelu", *extra), "--granularity", "channel", "--action", "zero",
                "--margin", "0.1")[0]
            clean = self.rg_outputs(path, self.test_x)[OUT].argmax(1)
            bad = [np.mean((out.argmax(1) != clean) | ~np.isfinite(out).all(1)) for out in (
                self.rg_outputs(self.flipped(path, [f], self.path(f"vit.{tag}.{k}.onnx")), self.test_x)[OUT]
                for k, f in enumerate(faults))]
            rates[tag] = float(np.mean(bad))
        print(f"  vit_gelu: 12 projection weight faults x 256 images, prediction corrupted: original "
              f"{rates['original']:.1%}, activation checks {rates['activations']:.1%}, "
              f"+ layer outputs {rates['layers']:.1%}", file=sys.stderr)
        self.assertGreater(rates["original"], 0.05)
        self.assertGreater(rates["activations"], rates["original"] / 3)  # GELU checks do not see these
        self.assertLess(rates["layers"], rates["original"] / 8)

    # --- options ----------------------------------------------------------------------------
    def test_activations_filter_and_following_ops(self):
        b = jload(self.calibrated("mobilenet_hardswish", "--activations", "relu"))
        self.assertTrue(all(s["kind"] == "relu" for s in b["sites"]))
        b = jload(self.calibrated("lenet_relu", "--after-following-ops"))
        follows = [s for s in b["sites"] if s["kind"].startswith("follow:")]
        self.assertGreater(len(follows), 0)
        self.assertIn("follow:MaxPool", {s["kind"] for s in follows})
        model, _ = self.protect("lenet_relu", self.calibrated("lenet_relu", "--after-following-ops"))
        x = self.path("calib16.npy")
        np.save(x, np.load(self.calib)[:16])
        np.testing.assert_array_equal(self.rg_outputs(model, x)[OUT],
                                      self.rg_outputs(os.path.join(ZOO, "lenet_relu.onnx"), x)[OUT])

    def test_json_report(self):
        out = self.path("sites.json")
        self.protect("cnn_elu", self.calibrated("cnn_elu"), "--json", out)
        j = jload(out)
        self.assertEqual(j["per_kind"].get("elu", 0), sum(1 for s in j["sites"] if s["kind"] == "elu"))
        self.assertGreater(j["per_kind"]["elu"], 0)
        self.assertEqual({"tensor", "kind", "node", "min", "max"} <= set(j["sites"][0]), True)

    # --- bad input --------------------------------------------------------------------------
    def test_bounds_of_another_model(self):
        p = run("protect", os.path.join(ZOO, "lenet_tanh.onnx"), "--bounds", self.calibrated("lenet_relu"),
                "--out", self.path("x.onnx"))
        self.assert_clean_error(p, "lenet_relu")
        self.assertFalse(os.path.exists(self.path("x.onnx")))

    def test_wrong_shaped_data(self):
        np.save(self.path("rgb.npy"), np.zeros((4, 3, 28, 28), np.float32))
        p = run("calibrate", os.path.join(ZOO, "lenet_relu.onnx"), "--data", self.path("rgb.npy"),
                "--out", self.path("b.json"))
        self.assert_clean_error(p, "do not fit")

    def test_malformed_bounds_and_options(self):
        with open(self.path("bad.json"), "w") as f:
            f.write('{"format": "rangeguard.bounds", "version": 1, "sites": [')
        p = run("protect", os.path.join(ZOO, "lenet_relu.onnx"), "--bounds", self.path("bad.json"),
                "--out", self.path("x.onnx"))
        self.assert_clean_error(p, "bad.json")
        p = run("calibrate", os.path.join(ZOO, "lenet_relu.onnx"), "--data", self.calib, "--out",
                self.path("b.json"), "--activations", "relu,sparkle")
        self.assert_clean_error(p, "sparkle")
        p = run("calibrate", os.path.join(ZOO, "lenet_relu.onnx"), "--data", self.calib, "--out",
                self.path("b.json"), "--stat", "percentile:20")
        self.assert_clean_error(p, "--stat")

    def test_model_without_activations_warns_and_has_no_sites(self):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
        w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
        g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "linear", [x], [y], [w])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), self.path("lin.onnx"))
        np.save(self.path("lin.npy"), np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))
        p = run("calibrate", self.path("lin.onnx"), "--data", self.path("lin.npy"), "--out", self.path("lin.json"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("warning", p.stderr)
        self.assertEqual(jload(self.path("lin.json"))["sites"], [])
        p = run("protect", self.path("lin.onnx"), "--bounds", self.path("lin.json"), "--out", self.path("lin.p.onnx"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("warning", p.stderr)
        onnx.checker.check_model(onnx.load(self.path("lin.p.onnx")), full_check=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=BIN)
    args, rest = ap.parse_known_args()
    BIN = os.path.abspath(args.binary)
    os.chdir(ROOT)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
