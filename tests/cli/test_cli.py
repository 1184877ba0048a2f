#!/usr/bin/env python3
"""End-to-end tests of `rangeguard info` and `rangeguard run` as a user drives them:
outputs written where promised, dynamic batch and external data handled, and every kind
of bad input answered with one line on stderr and a non-zero exit (never a crash).

    /usr/bin/python3 tests/cli/test_cli.py [--binary build/rangeguard]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from cli_support import CleanErrors

BIN = "build/rangeguard"


def run(*args, check=False):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed: {p.stderr}")
    return p


def small_model(path, batch="N", external=False, op_type="Relu", name_out="out/put:0"):
    """x[N,4] -> MatMul(W[4,3]) + b -> op -> out (output name needs sanitising)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal((3,)).astype(np.float32), "B")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["mm"], name="mm"),
             helper.make_node("Add", ["mm", "B"], ["pre"], name="add"),
             helper.make_node(op_type, ["pre"], [name_out], name="act")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
                          [helper.make_tensor_value_info(name_out, TensorProto.FLOAT, [batch, 3])], [w, b])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    if external:
        onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(path) + ".data", size_threshold=0)
    else:
        onnx.save(m, path)
    return np.asarray(numpy_helper.to_array(w)), np.asarray(numpy_helper.to_array(b))


class CliTest(CleanErrors):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.d, name)

    def save_input(self, name, arr):
        np.save(self.path(name), arr)
        return self.path(name)

    # --- what works -----------------------------------------------------------------
    def test_run_writes_sanitised_outputs_and_matches_numpy(self):
        w, b = small_model(self.path("m.onnx"))
        x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
        p = run("run", self.path("m.onnx"), "--input", "x=" + self.save_input("x.npy", x),
                "--output-dir", self.path("out"), check=True)
        y = np.load(self.path("out/out_put_0.npy"))
        np.testing.assert_allclose(y, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-6)
        self.assertIn("top-3", p.stdout)  # 2-D outputs list their top classes

    def test_empty_tensors_run_instead_of_crashing(self):
        # Found by fuzzing: a Gemm with M = 0 made oneDNN divide by zero (SIGFPE).
        g = helper.make_graph([helper.make_node("Gemm", ["a", "b"], ["y"])], "empty",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [0, 7]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [7, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [0, 4])])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), self.path("e.onnx"))
        self.assertEqual(run("info", self.path("e.onnx")).returncode, 0)
        np.save(self.path("a.npy"), np.zeros((0, 7), np.float32))
        np.save(self.path("b.npy"), np.ones((7, 4), np.float32))
        run("run", self.path("e.onnx"), "--input", f"a={self.path('a.npy')}", "--input", f"b={self.path('b.npy')}",
            "--output-dir", self.d, check=True)
        self.assertEqual(np.load(self.path("y.npy")).shape, (0, 4))

    def test_single_input_shorthand_and_dynamic_batch(self):
        w, b = small_model(self.path("m.onnx"))
        for n in (1, 3, 7):
            x = np.random.default_rng(n).standard_normal((n, 4)).astype(np.float32)
            run("run", self.path("m.onnx"), "--input", self.save_input(f"x{n}.npy", x),
                "-o", self.path(f"o{n}"), check=True)
            y = np.load(self.path(f"o{n}/out_put_0.npy"))
            self.assertEqual(y.shape, (n, 3))
            np.testing.assert_allclose(y, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-6)

    def test_external_data(self):
        w, b = small_model(self.path("ext.onnx"), external=True)
        self.assertTrue(os.path.exists(self.path("ext.onnx.data")))
        x = np.ones((2, 4), np.float32)
        run("run", self.path("ext.onnx"), "--input", self.save_input("x.npy", x), "-o", self.path("o"), check=True)
        np.testing.assert_allclose(np.load(self.path("o/out_put_0.npy")), np.maximum(x @ w + b, 0), rtol=1e-5)

    def test_info_json(self):
        small_model(self.path("m.onnx"))
        j = json.loads(run("info", self.path("m.onnx"), "--json", check=True).stdout)
        self.assertEqual(j["opset"], 13)
        self.assertEqual(j["inputs"][0]["shape"], ["N", 4])
        self.assertEqual(j["parameters"], 15)
        self.assertEqual(j["operators"], {"Add": 1, "MatMul": 1, "Relu": 1})
        self.assertEqual(j["flops"], 2 * 4 * 3 + 3 + 3)  # at batch 1
        self.assertEqual(j["unsupported"], [])
        text = run("info", self.path("m.onnx"), check=True).stdout
        self.assertIn("parameters 15", text)

    def test_info_lists_unsupported_operators(self):
        small_model(self.path("m.onnx"), op_type="NoSuchOp")
        j = json.loads(run("info", self.path("m.onnx"), "--json", check=True).stdout)
        self.assertEqual(j["unsupported"], [{"op": "NoSuchOp", "node": "act"}])
        self.assertFalse(j["supported"])

    # --- bad input: one line, non-zero exit -------------------------------------------
    def test_unsupported_operator_names_op_node_and_opset(self):
        small_model(self.path("m.onnx"), op_type="NoSuchOp")
        p = run("run", self.path("m.onnx"), "--input", self.save_input("x.npy", np.ones((1, 4), np.float32)))
        self.assert_clean_error(p, "NoSuchOp", "'act'", "opset 13")

    def test_garbage_and_truncated_models(self):
        with open(self.path("junk.onnx"), "wb") as f:
            f.write(os.urandom(3000))
        self.assert_clean_error(run("info", self.path("junk.onnx")), "junk.onnx")
        small_model(self.path("m.onnx"))
        with open(self.path("m.onnx"), "rb") as f:
            data = f.read()
        with open(self.path("trunc.onnx"), "wb") as f:
            f.write(data[: len(data) // 2])
        self.assert_clean_error(run("info", self.path("trunc.onnx")), "trunc.onnx")
        self.assert_clean_error(run("info", self.path("missing.onnx")), "missing.onnx")
        open(self.path("empty.onnx"), "wb").close()
        self.assert_clean_error(run("info", self.path("empty.onnx")), "empty.onnx")

    def test_implausible_declared_shape(self):
        # Found by the model fuzzer: an input declared [2085157486960016126, 28] overflowed
        # the element count of its shape (UBSan).
        g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2085157486960016126, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), self.path("huge.onnx"))
        for cmd in ("info", "bench"):
            self.assert_clean_error(run(cmd, self.path("huge.onnx")), "value 'x' declares an implausibly large shape")

    def test_missing_external_data(self):
        small_model(self.path("ext.onnx"), external=True)
        os.remove(self.path("ext.onnx.data"))
        self.assert_clean_error(run("info", self.path("ext.onnx")), "external data")

    def test_bad_inputs(self):
        small_model(self.path("m.onnx"))
        m = self.path("m.onnx")
        good = self.save_input("good.npy", np.ones((2, 4), np.float32))
        self.assert_clean_error(run("run", m, "--input", "nope=" + good), "unknown input 'nope'", "x")
        self.assert_clean_error(run("run", m, "--input", "x=" + self.save_input("s.npy", np.ones((2, 5), np.float32))),
                                "expected shape [N, 4], got [2, 5]")
        self.assert_clean_error(run("run", m, "--input", "x=" + self.save_input("t.npy", np.ones((2, 4), np.int64))),
                                "expected float32, got int64")
        self.assert_clean_error(run("run", m, "--input", "x=" + self.save_input("r.npy", np.ones((4,), np.float32))),
                                "expected shape")
        with open(self.path("bad.npy"), "wb") as f:
            f.write(b"\x93NUMPY\x01\x00garbage")
        self.assert_clean_error(run("run", m, "--input", "x=" + self.path("bad.npy")), "bad.npy")
        self.assert_clean_error(run("run", m, "--input", "x=" + self.path("absent.npy")), "absent.npy")
        np.save(self.path("f.npy"), np.asfortranarray(np.ones((2, 4), np.float32)))
        self.assert_clean_error(run("run", m, "--input", "x=" + self.path("f.npy")), "Fortran")

    def test_help_and_usage_errors(self):
        for cmd in ("info", "run"):
            p = run(cmd, "--help")
            self.assertEqual(p.returncode, 0)
            self.assertIn("Example", p.stdout)
        p = run("frobnicate")
        self.assertNotEqual(p.returncode, 0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=BIN)
    args, rest = ap.parse_known_args()
    BIN = os.path.abspath(args.binary)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
