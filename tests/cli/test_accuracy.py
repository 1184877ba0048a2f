#!/usr/bin/env python3
"""End-to-end tests of `rangeguard accuracy`: on every zoo model it reproduces the test
accuracy PyTorch measured (models/zoo.json) on the real 10,000 Fashion-MNIST test images,
read straight from Debian's gzip'd IDX files; the JSON report is complete and consistent;
NPY data, image folders, offsets, limits, partial and fixed batches agree with each other;
and bad input is answered with one line on stderr and a non-zero exit.

    /usr/bin/python3 tests/cli/test_accuracy.py [--binary build/rangeguard]
"""
import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import onnx
from onnx import TensorProto, helper

from cli_support import CleanErrors

BIN = "build/rangeguard"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZOO = os.path.join(ROOT, "models")
FMNIST = "/usr/share/datasets/fashion-mnist"
IMAGES = f"{FMNIST}/t10k-images-idx3-ubyte.gz"
LABELS = f"{FMNIST}/t10k-labels-idx1-ubyte.gz"
LENET = os.path.join(ZOO, "lenet_relu.onnx")
JSON_FIELDS = {"model", "data", "samples", "top1", "topk", "k", "per_class", "confusion_matrix",
               "throughput_per_s", "seconds", "batch"}


def run(*args, check=False):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed: {p.stderr}")
    return p


def load_idx_gz(path, offset):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


class AccuracyTest(CleanErrors):
    @classmethod
    def setUpClass(cls):
        cls.images = load_idx_gz(IMAGES, 16).reshape(-1, 28, 28)
        cls.labels = load_idx_gz(LABELS, 8)

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.d, name)

    def accuracy_json(self, model, *args):
        out = self.path("report.json")
        run("accuracy", model, *args, "--json", out, check=True)
        with open(out) as f:
            return json.load(f)

    def assert_consistent(self, j, samples, classes=10):
        self.assertTrue(JSON_FIELDS <= set(j), JSON_FIELDS - set(j))
        self.assertEqual(j["samples"], samples)
        cm = np.array(j["confusion_matrix"])
        self.assertEqual(cm.shape, (classes, classes))
        self.assertEqual(cm.sum(), samples)
        self.assertEqual(len(j["per_class"]), classes)
        for c, pc in enumerate(j["per_class"]):
            self.assertEqual(set(pc) >= {"class", "samples", "correct", "accuracy"}, True)
            self.assertEqual(pc["class"], c)
            self.assertEqual(pc["samples"], cm[c].sum())
            self.assertEqual(pc["correct"], cm[c, c])
        self.assertEqual(np.trace(cm), round(j["top1"] * samples))
        self.assertGreaterEqual(j["topk"], j["top1"])
        self.assertGreater(j["throughput_per_s"], 0)
        self.assertGreater(j["seconds"], 0)

    # --- the zoo on the real test set -----------------------------------------------
    def test_zoo_models_match_pytorch_on_the_full_test_set(self):
        with open(os.path.join(ZOO, "zoo.json")) as f:
            zoo = json.load(f)
        for m in zoo["models"]:
            with self.subTest(model=m["name"]):
                j = self.accuracy_json(os.path.join(ZOO, m["file"]), "--data", IMAGES, "--labels", LABELS,
                                       "--batch", 256)
                self.assert_consistent(j, 10000)
                self.assertEqual(j["k"], 5)
                self.assertEqual(j["batch"], 256)
                correct, expected = round(j["top1"] * 10000), round(m["test_accuracy"] * 10000)
                self.assertLessEqual(abs(correct - expected), 2,
                                     f"{m['name']}: {correct} correct, PyTorch measured {expected}")
                print(f"  {m['name']:<22} top-1 {j['top1']:.4f} (zoo {m['test_accuracy']:.4f}) "
                      f"{j['throughput_per_s']:.0f} samples/s", file=sys.stderr)

    def test_text_report(self):
        p = run("accuracy", LENET, "--data", IMAGES, "--labels", LABELS, "--limit", 500, "--top-k", 3, check=True)
        for fragment in ("top-1", "top-3", "samples     500", "per class", "samples/s"):
            self.assertIn(fragment, p.stdout)
        self.assertEqual(p.stderr, "")  # no progress bar off a terminal

    # --- equivalent ways to feed the same samples --------------------------------------
    def test_npy_offset_limit_and_partial_batches_agree(self):
        x = self.images[:400].astype(np.float32).reshape(-1, 1, 28, 28)
        np.save(self.path("x.npy"), x)
        np.save(self.path("y.npy"), self.labels[:400].astype(np.int64))
        a = self.accuracy_json(LENET, "--data", self.path("x.npy"), "--labels", self.path("y.npy"),
                               "--offset", 50, "--limit", 300, "--batch", 64)  # 4 full batches + 44
        b = self.accuracy_json(LENET, "--data", IMAGES, "--labels", LABELS, "--offset", 50, "--limit", 300,
                               "--batch", 300)
        self.assert_consistent(a, 300)
        self.assertEqual(a["confusion_matrix"], b["confusion_matrix"])
        self.assertEqual(a["batch"], 64)
        # --limit past the end stops at the end.
        c = self.accuracy_json(LENET, "--data", self.path("x.npy"), "--labels", self.path("y.npy"),
                               "--offset", 350, "--limit", 1000)
        self.assertEqual(c["samples"], 50)

    def test_fixed_batch_model_runs_one_at_a_time(self):
        m = onnx.load(LENET)
        for v in list(m.graph.input) + list(m.graph.output):
            v.type.tensor_type.shape.dim[0].dim_value = 1
        onnx.save(m, self.path("b1.onnx"))
        a = self.accuracy_json(self.path("b1.onnx"), "--data", IMAGES, "--labels", LABELS, "--limit", 70)
        b = self.accuracy_json(LENET, "--data", IMAGES, "--labels", LABELS, "--limit", 70)
        self.assertEqual(a["batch"], 1)
        self.assertEqual(a["confusion_matrix"], b["confusion_matrix"])

    def test_image_folder_matches_the_idx_file(self):
        from PIL import Image
        n = 120
        for i in range(n):
            folder = self.path(f"imgs/{self.labels[i]}")  # "0".."9" sort into label order
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(self.images[i]).save(os.path.join(folder, f"{i:04d}.png"))
        a = self.accuracy_json(LENET, "--data", self.path("imgs"), "--grayscale")
        b = self.accuracy_json(LENET, "--data", IMAGES, "--labels", LABELS, "--limit", n)
        self.assertEqual(a["confusion_matrix"], b["confusion_matrix"])  # PNG is lossless
        # Preprocessing that keeps the 28x28 size: resize the shorter side to 28, crop 28.
        c = self.accuracy_json(LENET, "--data", self.path("imgs"), "--grayscale", "--resize", 28, "--crop", 28)
        self.assertEqual(c["confusion_matrix"], b["confusion_matrix"])

    def test_image_folder_preprocessing_equals_torchvision(self):
        """Resize + centre crop of RGB PNG/JPEG files give the same predictions as the same
        images preprocessed by torchvision and fed through `rangeguard run`."""
        from PIL import Image
        import torchvision.transforms as T
        n, files = 60, []
        for i in range(n):
            folder = self.path(f"rgb/{self.labels[i]}")
            os.makedirs(folder, exist_ok=True)
            g = self.images[i]
            rgb = np.stack([g, np.clip(g.astype(int) + 9, 0, 255), g // 2 + 60], -1).astype(np.uint8)
            im = Image.fromarray(rgb).resize((44 + i % 7, 36 + i % 5), Image.BICUBIC)  # odd, non-square
            name = os.path.join(folder, f"{i:03d}." + ("png" if i % 2 else "jpg"))
            im.save(name, quality=95) if name.endswith("jpg") else im.save(name)
            files.append((self.labels[i], name))
        a = self.accuracy_json(LENET, "--data", self.path("rgb"), "--grayscale", "--resize", 30, "--crop", 28)
        tf = T.Compose([T.Grayscale(), T.Resize(30), T.CenterCrop(28)])
        x = np.stack([np.asarray(tf(Image.open(f).convert("RGB")), np.float32)[None] for _, f in files])
        np.save(self.path("tv.npy"), x)
        run("run", LENET, "--input", self.path("tv.npy"), "--output-dir", self.path("out"), check=True)
        pred = np.load(self.path("out/logits.npy")).argmax(1)
        cm = np.zeros((10, 10), int)
        for (label, _), p in zip(files, pred):
            cm[label, p] += 1
        self.assertEqual(a["confusion_matrix"], cm.tolist())
        self.assertEqual([c.get("name") for c in a["per_class"]], [str(c) for c in range(10)])

    # --- bad input: one line, non-zero exit -------------------------------------------
    def test_bad_inputs(self):
        x = self.images[:10].astype(np.float32)
        np.save(self.path("x.npy"), x)
        np.save(self.path("y9.npy"), self.labels[:9].astype(np.int64))
        self.assert_clean_error(run("accuracy", LENET, "--data", self.path("x.npy"), "--labels", self.path("y9.npy")),
                                "9 labels", "10 samples")
        y = self.labels[:10].astype(np.int64)
        y[3] = 10
        np.save(self.path("y_big.npy"), y)
        self.assert_clean_error(run("accuracy", LENET, "--data", self.path("x.npy"), "--labels", self.path("y_big.npy")),
                                "label 10", "[0, 10)")
        np.save(self.path("yf.npy"), self.labels[:10].astype(np.float32))
        self.assert_clean_error(run("accuracy", LENET, "--data", self.path("x.npy"), "--labels", self.path("yf.npy")),
                                "integers")
        self.assert_clean_error(run("accuracy", LENET, "--data", self.path("x.npy")), "--labels")

        with open(IMAGES, "rb") as f:
            gz = f.read()
        with open(self.path("cut-idx3-ubyte.gz"), "wb") as f:
            f.write(gz[: len(gz) // 3])
        self.assert_clean_error(run("accuracy", LENET, "--data", self.path("cut-idx3-ubyte.gz"), "--labels", LABELS),
                                "cut-idx3-ubyte.gz", "truncated")
        with open(self.path("junk.idx"), "wb") as f:
            f.write(b"\x00\x00\x08\x03" + b"\xff" * 12 + b"tiny")
        self.assert_clean_error(run("accuracy", LENET, "--data", self.path("junk.idx"), "--labels", LABELS), "junk.idx")
        self.assert_clean_error(run("accuracy", LENET, "--data", self.path("absent.gz"), "--labels", LABELS), "absent.gz")

        np.save(self.path("x27.npy"), np.zeros((10, 27, 28), np.float32))
        self.assert_clean_error(run("accuracy", LENET, "--data", self.path("x27.npy"), "--labels", self.path("y9.npy")),
                                "9 labels")
        np.save(self.path("y10.npy"), self.labels[:10].astype(np.int64))
        self.assert_clean_error(run("accuracy", LENET, "--data", self.path("x27.npy"), "--labels", self.path("y10.npy")),
                                "[27, 28]", "'input'")

        two = helper.make_graph([helper.make_node("Add", ["a", "b"], ["c"])], "g",
                                [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 784]),
                                 helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 784])],
                                [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N", 784])])
        onnx.save(helper.make_model(two, opset_imports=[helper.make_opsetid("", 13)]), self.path("two.onnx"))
        self.assert_clean_error(run("accuracy", self.path("two.onnx"), "--data", IMAGES, "--labels", LABELS),
                                "exactly one input")

        self.assert_clean_error(run("accuracy", LENET, "--data", IMAGES, "--labels", LABELS, "--offset", 10000),
                                "--offset 10000")
        self.assert_clean_error(run("accuracy", LENET, "--data", IMAGES, "--labels", LABELS, "--top-k", 0), "--top-k")
        self.assert_clean_error(run("accuracy", LENET, "--data", IMAGES, "--labels", LABELS, "--batch", 0), "--batch")
        self.assert_clean_error(run("accuracy", LENET, "--data", IMAGES, "--labels", LABELS, "--crop", 20),
                                "image folders")

    def test_help(self):
        p = run("accuracy", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("Example", p.stdout)
        self.assertIn("--top-k", p.stdout)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=BIN)
    args, rest = ap.parse_known_args()
    BIN = os.path.abspath(args.binary)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
