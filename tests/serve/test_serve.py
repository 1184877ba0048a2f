#!/usr/bin/env python3
"""End-to-end tests of `rangeguard serve` driven over loopback with Python's standard
HTTP client: the KServe v2 endpoints, outputs equal to `rangeguard run` on the same
inputs (JSON, nested JSON, FP16, binary tensors, int and bool types), every error path
answered with a 4xx and {"error": ...} (also under a stream of malformed requests),
dynamic batching forming real batches, the bounded queue, the request timeout, SIGTERM
finishing requests in flight, and the metrics including the soft-error alarm.

    /usr/bin/python3 tests/serve/test_serve.py [--binary build/rangeguard]
"""
import argparse
import gzip
import http.client
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
from onnx import TensorProto, helper

BIN = "build/rangeguard"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LENET = os.path.join(ROOT, "models", "lenet_relu.onnx")  # input [N,1,28,28] -> logits [N,10]
FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def run(*args, check=False, timeout=300):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed: {p.stderr}")
    return p


def images(n):
    with gzip.open(FMNIST) as f:
        return np.frombuffer(f.read(), np.uint8, offset=16)[: n * 784].reshape(n, 1, 28, 28).astype(np.float32)


class Server:
    """A `rangeguard serve` process on a free loopback port (--port 0; the port is read
    from its first stdout line). Always stopped (SIGTERM, then SIGKILL) by close()."""

    def __init__(self, model, *args, start_timeout=60):
        self.errf = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen([BIN, "serve", model, "--port", "0", *map(str, args)], stdout=subprocess.PIPE,
                                  stderr=self.errf, text=True)
        line = [None]
        t = threading.Thread(target=lambda: line.__setitem__(0, self.p.stdout.readline()), daemon=True)
        t.start()
        t.join(start_timeout)
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line[0] or "")
        if not m:
            self.close()
            raise AssertionError(f"server did not start: {line[0]!r} {self.stderr()}")
        self.port = int(m.group(1))

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=30):
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def get_json(self, path):
        status, _, body = self.request("GET", path)
        return status, json.loads(body) if body else None

    def infer(self, model, req, headers=None, raw=None, timeout=30):
        body = raw if raw is not None else json.dumps(req).encode()
        return self.request("POST", f"/v2/models/{model}/infer", body, headers, timeout)

    def metrics(self):
        status, _, body = self.request("GET", "/metrics")
        assert status == 200
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def stderr(self):
        self.errf.seek(0)
        return self.errf.read()

    def close(self, timeout=20):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p.stdout.close()
        return self.p.returncode


def tensor_json(name, arr, datatype="FP32", nested=False):
    return {"name": name, "shape": list(arr.shape), "datatype": datatype,
            "data": arr.tolist() if nested else arr.reshape(-1).tolist()}


def decode(body, headers):
    """Response JSON plus its binary outputs (by name) when the binary extension was used."""
    n = headers.get("Inference-Header-Content-Length")
    if n is None:
        return json.loads(body), {}
    head = json.loads(body[: int(n)])
    bins, off = {}, int(n)
    for o in head["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size")
        if size is not None:
            bins[o["name"]] = body[off: off + size]
            off += size
    assert off == len(body), "binary outputs do not fill the body"
    return head, bins


def output(head, name):
    return next(o for o in head["outputs"] if o["name"] == name)


class ServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.d = cls.tmp.name
        cls.x = images(8) / 255.0
        cls.servers = []

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def tearDown(self):
        for s in self.servers:
            s.close()
        self.servers = []

    def serve(self, model, *args):
        s = Server(model, *args)
        self.servers.append(s)
        return s

    def path(self, name):
        return os.path.join(self.d, name)

    def reference(self, model, **inputs):
        """Outputs of `rangeguard run` on the same inputs (via NPY)."""
        d = tempfile.mkdtemp(dir=self.d)
        args = []
        for k, v in inputs.items():
            np.save(os.path.join(d, k + ".npy"), v)
            args += ["--input", f"{k}={os.path.join(d, k + '.npy')}"]
        run("run", model, *args, "--output-dir", d, check=True)
        return {f[:-4]: np.load(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".npy") and f[:-4] not in inputs}

    def assert_error(self, status, body, want_status, *fragments):
        self.assertEqual(status, want_status, body)
        j = json.loads(body)
        self.assertIsInstance(j.get("error"), str)
        self.assertNotIn("\n", j["error"])
        for f in fragments:
            self.assertIn(f, j["error"])

    # --- endpoints ------------------------------------------------------------------
    def test_health_and_metadata(self):
        s = self.serve(LENET)
        self.assertEqual(s.get_json("/v2/health/live"), (200, {"live": True}))
        self.assertEqual(s.get_json("/v2/health/ready"), (200, {"ready": True}))
        status, meta = s.get_json("/v2")
        self.assertEqual(status, 200)
        self.assertEqual(meta["name"], "rangeguard")
        self.assertIn("binary_tensor_data", meta["extensions"])
        status, m = s.get_json("/v2/models/lenet_relu")
        self.assertEqual(status, 200)
        self.assertEqual(m["name"], "lenet_relu")
        self.assertEqual(m["inputs"], [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]}])
        self.assertEqual(m["outputs"][0]["name"], "logits")
        self.assertEqual(s.get_json("/v2/models/lenet_relu/versions/1")[0], 200)
        self.assertEqual(s.get_json("/v2/models/lenet_relu/ready"), (200, {"name": "lenet_relu", "ready": True}))
        for path in ["/v2/models/other", "/v2/models/other/ready", "/v2/models/lenet_relu/versions/7", "/nope"]:
            status, _, body = s.request("GET", path)
            self.assert_error(status, body, 404)

    def test_named_model(self):
        s = self.serve(LENET, "--name", "fashion")
        self.assertEqual(s.get_json("/v2/models/fashion/ready")[0], 200)
        status, _, body = s.infer("lenet_relu", {"inputs": [tensor_json("input", self.x[:1])]})
        self.assert_error(status, body, 404, "lenet_relu", "fashion")

    # --- inference matches `rangeguard run` -----------------------------------------
    def test_json_infer_matches_run(self):
        s = self.serve(LENET)
        x = self.x[:3]
        want = self.reference(LENET, input=x)["logits"]
        status, h, body = s.infer("lenet_relu", {"id": "req-42", "inputs": [tensor_json("input", x)]})
        self.assertEqual(status, 200, body)
        self.assertTrue(h["Content-Type"].startswith("application/json"))
        head, _ = decode(body, h)
        self.assertEqual(head["id"], "req-42")
        self.assertEqual(head["model_name"], "lenet_relu")
        o = output(head, "logits")
        self.assertEqual((o["datatype"], o["shape"]), ("FP32", [3, 10]))
        np.testing.assert_allclose(np.array(o["data"], np.float32).reshape(3, 10), want, rtol=1e-5, atol=1e-5)
        # Nested data (as many clients send it) gives the same answer; no id, no echo.
        status, h, body = s.infer("lenet_relu", {"inputs": [tensor_json("input", x, nested=True)]})
        head2, _ = decode(body, h)
        self.assertNotIn("id", head2)
        self.assertEqual(output(head2, "logits")["data"], o["data"])

    def test_binary_tensors_and_fp16(self):
        s = self.serve(LENET, "--max-batch", "1")
        x = self.x[2:4]
        want = self.reference(LENET, input=x)["logits"]
        head = json.dumps({"inputs": [{"name": "input", "shape": [2, 1, 28, 28], "datatype": "FP32",
                                       "parameters": {"binary_data_size": x.nbytes}}],
                           "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]}).encode()
        status, h, body = s.infer("lenet_relu", None, {"Inference-Header-Content-Length": str(len(head))},
                                  raw=head + x.tobytes())
        self.assertEqual(status, 200, body)
        j, bins = decode(body, h)
        self.assertEqual(h["Content-Type"], "application/octet-stream")
        got = np.frombuffer(bins["logits"], np.float32).reshape(2, 10)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        # Request-wide binary output with JSON input.
        status, h, body = s.infer("lenet_relu", {"inputs": [tensor_json("input", x)], "parameters": {"binary_data_output": True}})
        _, bins = decode(body, h)
        np.testing.assert_array_equal(np.frombuffer(bins["logits"], np.float32).reshape(2, 10), got)
        # FP16 input widens to the model's float32 (the reference runs on the rounded values).
        x16 = x.astype(np.float16)
        want16 = self.reference(LENET, input=x16.astype(np.float32))["logits"]
        status, h, body = s.infer("lenet_relu", {"inputs": [tensor_json("input", x16.astype(np.float32), "FP16")]})
        self.assertEqual(status, 200, body)
        np.testing.assert_allclose(np.array(output(json.loads(body), "logits")["data"]).reshape(2, 10), want16,
                                   rtol=1e-5, atol=1e-5)
        head = json.dumps({"inputs": [{"name": "input", "shape": [2, 1, 28, 28], "datatype": "FP16",
                                       "parameters": {"binary_data_size": x16.nbytes}}]}).encode()
        status, h, body = s.infer("lenet_relu", None, {"Inference-Header-Content-Length": str(len(head))},
                                  raw=head + x16.tobytes())
        self.assertEqual(status, 200, body)
        np.testing.assert_allclose(np.array(output(json.loads(body), "logits")["data"]).reshape(2, 10), want16,
                                   rtol=1e-5, atol=1e-5)

    def test_integer_and_bool_types_and_requested_outputs(self):
        model = self.path("types.onnx")
        nodes = [helper.make_node("Add", ["a", "a"], ["a2"]),        # INT64
                 helper.make_node("Mul", ["b", "b"], ["b2"]),        # INT32
                 helper.make_node("Not", ["c"], ["nc"]),             # BOOL
                 helper.make_node("Relu", ["f"], ["rf"])]            # FP32
        g = helper.make_graph(nodes, "types",
                              [helper.make_tensor_value_info("a", TensorProto.INT64, ["N", 3]),
                               helper.make_tensor_value_info("b", TensorProto.INT32, ["N", 3]),
                               helper.make_tensor_value_info("c", TensorProto.BOOL, ["N", 3]),
                               helper.make_tensor_value_info("f", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info(n, t, ["N", 3]) for n, t in
                               [("a2", TensorProto.INT64), ("b2", TensorProto.INT32), ("nc", TensorProto.BOOL),
                                ("rf", TensorProto.FLOAT)]])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), model)
        a = np.array([[1, -2, 2**40], [0, 5, -7]], np.int64)
        b = np.array([[3, -4, 1000], [0, 1, -9]], np.int32)
        c = np.array([[True, False, True], [False, False, True]])
        f = np.array([[-1.5, 0.25, 3.0], [2.0, -0.0, 7.5]], np.float32)
        want = self.reference(model, a=a, b=b, c=c, f=f)
        s = self.serve(model)
        req = {"inputs": [tensor_json("a", a, "INT64"), tensor_json("b", b, "INT32"), tensor_json("c", c, "BOOL"),
                          tensor_json("f", f)],
               "outputs": [{"name": "nc"}, {"name": "a2"}, {"name": "b2", "parameters": {"binary_data": True}}]}
        status, h, body = s.infer("types", req)
        self.assertEqual(status, 200, body)
        head, bins = decode(body, h)
        self.assertEqual([o["name"] for o in head["outputs"]], ["nc", "a2", "b2"])  # as asked, rf left out
        self.assertEqual(output(head, "nc")["datatype"], "BOOL")
        np.testing.assert_array_equal(np.array(output(head, "nc")["data"]).reshape(2, 3), want["nc"])
        self.assertEqual(output(head, "a2")["datatype"], "INT64")
        np.testing.assert_array_equal(np.array(output(head, "a2")["data"], np.int64).reshape(2, 3), want["a2"])
        np.testing.assert_array_equal(np.frombuffer(bins["b2"], np.int32).reshape(2, 3), want["b2"])
        # Binary BOOL input: one byte per element.
        head = json.dumps({"inputs": [tensor_json("a", a, "INT64"), tensor_json("b", b, "INT32"),
                                      {"name": "c", "shape": [2, 3], "datatype": "BOOL",
                                       "parameters": {"binary_data_size": 6}}, tensor_json("f", f)],
                           "outputs": [{"name": "nc"}]}).encode()
        status, h, body = s.infer("types", None, {"Inference-Header-Content-Length": str(len(head))},
                                  raw=head + c.astype(np.uint8).tobytes())
        self.assertEqual(status, 200, body)
        np.testing.assert_array_equal(np.array(output(json.loads(body), "nc")["data"]).reshape(2, 3), want["nc"])
        # Integer overflow and a float where an integer is due are refused.
        bad = dict(req, inputs=[tensor_json("a", a, "INT64"), {"name": "b", "shape": [2, 3], "datatype": "INT32",
                                                              "data": [1, 2, 2**31, 4, 5, 6]},
                                tensor_json("c", c, "BOOL"), tensor_json("f", f)])
        self.assert_error(*s.infer("types", bad)[::2], 400, "out of range")
        bad["inputs"][1]["data"] = [1, 2, 3.5, 4, 5, 6]
        self.assert_error(*s.infer("types", bad)[::2], 400, "integers")

    # --- errors ---------------------------------------------------------------------
    def test_bad_requests_get_clean_4xx(self):
        s = self.serve(LENET, "--max-body-bytes", "100000")
        x = self.x[:1]
        good = {"inputs": [tensor_json("input", x)]}
        cases = [
            (b"{not json", 400, "malformed JSON"),
            (b"[1, 2]", 400, "JSON object"),
            (b"", 400, "malformed JSON"),
            (json.dumps({"inputs": []}).encode(), 400, "non-empty"),
            (json.dumps({"inputs": [dict(tensor_json("input", x), name="image")]}).encode(), 400, "unknown input 'image'"),
            (json.dumps({"inputs": [tensor_json("input", x), tensor_json("input", x)]}).encode(), 400, "twice"),
            (json.dumps({"inputs": [tensor_json("input", x.reshape(1, 28, 28))]}).encode(), 400, "expected shape"),
            (json.dumps({"inputs": [tensor_json("input", np.zeros((1, 1, 28, 27), np.float32))]}).encode(), 400, "expected shape"),
            (json.dumps({"inputs": [tensor_json("input", x.astype(np.int64), "INT64")]}).encode(), 400, "datatype INT64"),
            (json.dumps({"inputs": [dict(tensor_json("input", x), datatype="FP8")]}).encode(), 400, "unknown datatype"),
            (json.dumps({"inputs": [dict(tensor_json("input", x), data=[1.0] * 783)]}).encode(), 400, "783 data elements"),
            (json.dumps({"inputs": [dict(tensor_json("input", x), data=[1.0] * 785)]}).encode(), 400, "more data"),
            (json.dumps({"inputs": [dict(tensor_json("input", x), data=["a"] * 784)]}).encode(), 400, "numbers"),
            (json.dumps({"inputs": [dict(tensor_json("input", x), shape=[1, 1, 28, -28])]}).encode(), 400, "non-negative"),
            (json.dumps({"inputs": [dict(tensor_json("input", x), shape=[2**40, 1, 28, 28])]}).encode(), 400, "too large"),
            (json.dumps({"inputs": [dict(tensor_json("input", x), shape="1x784")]}).encode(), 400, "shape"),
            (json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 1, 28, 28]}]}).encode(), 400, "'data'"),
            (json.dumps(dict(good, id=7)).encode(), 400, "'id'"),
            (json.dumps(dict(good, outputs=[{"name": "probs"}])).encode(), 400, "unknown output 'probs'"),
            (json.dumps({"inputs": [dict(tensor_json("input", np.zeros((0, 1, 28, 28), np.float32)))]}).encode(), 400, "empty"),
            (json.dumps({"inputs": [dict(tensor_json("input", x), data=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1.0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])]}).encode(),
             400, "nested too deeply"),
        ]
        for body, want, frag in cases:
            with self.subTest(body=body[:80]):
                status, _, resp = s.infer("lenet_relu", None, raw=body)
                self.assert_error(status, resp, want, frag)
        # Binary extension misuse.
        head = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                       "parameters": {"binary_data_size": x.nbytes}}]}).encode()
        for hdr, payload, frag in [(str(len(head) + 10**6), head, "exceeds the body"),
                                   ("12abc", head, "byte count"),
                                   (str(len(head)), head + x.tobytes()[:100], "runs past the end"),
                                   (str(len(head)), head + x.tobytes() + b"xx", "unclaimed")]:
            with self.subTest(header=hdr, n=len(payload)):
                status, _, resp = s.infer("lenet_relu", None, {"Inference-Header-Content-Length": hdr}, raw=payload)
                self.assert_error(status, resp, 400, frag)
        wrong_size = head.replace(str(x.nbytes).encode(), b"100")
        status, _, resp = s.infer("lenet_relu", None, {"Inference-Header-Content-Length": str(len(wrong_size))},
                                  raw=wrong_size + x.tobytes()[:100])
        self.assert_error(status, resp, 400, "needs 3136 bytes")
        # Unknown model; body over --max-body-bytes.
        self.assert_error(*s.infer("resnet", good)[::2], 404, "unknown model 'resnet'")
        big = {"inputs": [tensor_json("input", np.full((40, 1, 28, 28), 0.123456, np.float32))]}
        status, _, resp = s.infer("lenet_relu", big)
        self.assert_error(status, resp, 413, "--max-body-bytes")
        # Still serving, and the refusals are counted by status.
        self.assertEqual(s.infer("lenet_relu", good)[0], 200)
        m = s.metrics()
        self.assertEqual(m['rangeguard_requests_total{code="200"}'], 1)
        self.assertEqual(m['rangeguard_requests_total{code="404"}'], 1)
        self.assertEqual(m['rangeguard_requests_total{code="413"}'], 1)
        self.assertEqual(m['rangeguard_requests_total{code="400"}'], len(cases) + 5)

    def test_stream_of_malformed_requests(self):
        """Random truncations, byte flips and splices of valid requests, 8 clients at once:
        every answer is 200 or a 4xx with a JSON error, and the server keeps serving."""
        s = self.serve(LENET, "--max-body-bytes", "200000")
        rng = random.Random(1234)
        x = self.x[:1]
        good = json.dumps({"id": "f", "inputs": [tensor_json("input", x)]}).encode()
        head = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                       "parameters": {"binary_data_size": x.nbytes}}]}).encode()
        bodies = []
        for i in range(300):
            base = good if i % 2 else head + x.tobytes()
            b = bytearray(base)
            kind = i % 5
            if kind == 0:
                b = b[: rng.randrange(len(b))]
            elif kind in (1, 2):
                for _ in range(rng.randrange(1, 8)):
                    b[rng.randrange(min(len(b), 400))] = rng.randrange(256)
            elif kind == 3:
                j = rng.randrange(len(b))
                b = b[:j] + b[j:][: rng.randrange(50)] * rng.randrange(1, 4) + b[j:]
            else:
                b = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            hdr = {} if i % 2 else {"Inference-Header-Content-Length": str(len(head) + rng.choice([0, 0, -3, 5]))}
            bodies.append((bytes(b), hdr))

        def send(item):
            status, _, resp = s.infer("lenet_relu", None, item[1], raw=item[0])
            if status != 200:
                self.assertIn(status, (400, 404, 413), resp[:200])
                self.assertIsInstance(json.loads(resp)["error"], str)
            return status

        with ThreadPoolExecutor(8) as ex:
            statuses = list(ex.map(send, bodies))
        self.assertGreater(statuses.count(400), 100)
        self.assertIsNone(s.p.poll(), "server died")
        status, _, body = s.infer("lenet_relu", None, raw=good)
        self.assertEqual(status, 200)

    def test_cli_errors(self):
        p = run("serve", self.path("missing.onnx"), "--port", "0", timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertTrue(p.stderr.startswith("rangeguard: error: "), p.stderr)
        for args, frag in [(["--max-batch", "0"], "--max-batch"), (["--instances", "0"], "--instances"),
                           (["--port", "70000"], "--port")]:
            p = run("serve", LENET, *args, timeout=60)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(frag, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        s = self.serve(LENET)  # the port is taken now
        p = run("serve", LENET, "--port", s.port, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("cannot listen", p.stderr)

    # --- batching, queue, timeout, shutdown -----------------------------------------
    def test_dynamic_batching_forms_batches(self):
        # 6 concurrent requests, room for 8 in a batch: they wait the queue delay together.
        s = self.serve(LENET, "--max-batch", "8", "--max-queue-delay-us", "300000", "--instances", "2")
        n = 6
        xs = self.x[:n]
        want = self.reference(LENET, input=xs)["logits"]

        def one(i):
            r = {"id": str(i), "inputs": [tensor_json("input", xs[i: i + 1])]}
            status, h, body = s.infer("lenet_relu", r)
            self.assertEqual(status, 200, body)
            head = json.loads(body)
            self.assertEqual(head["id"], str(i))  # each answer goes back to its own request
            o = output(head, "logits")
            self.assertEqual(o["shape"], [1, 10])
            return np.array(o["data"], np.float32)

        with ThreadPoolExecutor(n) as ex:
            got = np.stack(list(ex.map(one, range(n))))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        m = s.metrics()
        batches, samples = m["rangeguard_batch_size_count"], m["rangeguard_batch_size_sum"]
        self.assertEqual(samples, n)
        self.assertLess(batches, n, "no two requests were batched together")
        self.assertLess(m['rangeguard_batch_size_bucket{le="1"}'], batches)
        for h in ["queue_seconds", "compute_seconds", "request_seconds"]:
            self.assertEqual(m[f"rangeguard_{h}_count"], n)
        self.assertEqual(m['rangeguard_requests_total{code="200"}'], n)
        # The queue delay shows in the queue histogram: the first request waited >= 0.1 s.
        self.assertLess(m['rangeguard_queue_seconds_bucket{le="0.1"}'], n)
        # A request of 3 samples batches with one of 2: shapes [3,..] and [2,..] split back.
        reqs = [xs[:3], xs[3:5]]
        before = s.metrics()["rangeguard_batch_size_count"]
        with ThreadPoolExecutor(2) as ex:
            outs = list(ex.map(lambda a: s.infer("lenet_relu", {"inputs": [tensor_json("input", a)]}), reqs))
        for a, (status, _, body) in zip(reqs, outs):
            o = output(json.loads(body), "logits")
            self.assertEqual(o["shape"], [len(a), 10])
        np.testing.assert_allclose(np.concatenate([np.array(output(json.loads(b), "logits")["data"]).reshape(-1, 10)
                                                   for _, _, b in outs]), want[:5], rtol=1e-4, atol=1e-4)
        m = s.metrics()
        self.assertEqual(m["rangeguard_batch_size_sum"], n + 5)
        self.assertEqual(m["rangeguard_batch_size_count"], before + 1, "the two requests ran in one batch")

    def test_full_queue_answers_503(self):
        s = self.serve(LENET, "--max-batch", "4", "--max-queue-delay-us", "1500000", "--max-queue", "2")
        req = {"inputs": [tensor_json("input", self.x[:1])]}
        with ThreadPoolExecutor(2) as ex:
            waiting = [ex.submit(s.infer, "lenet_relu", req) for _ in range(2)]
            deadline = time.time() + 5
            while s.metrics()["rangeguard_queue_depth"] < 2 and time.time() < deadline:
                time.sleep(0.02)
            t0 = time.time()
            status, h, body = s.infer("lenet_relu", req)
            self.assert_error(status, body, 503, "queue is full")
            self.assertLess(time.time() - t0, 1.0, "a full queue must answer at once")
            self.assertEqual([f.result()[0] for f in waiting], [200, 200])
        m = s.metrics()
        self.assertEqual(m['rangeguard_requests_total{code="503"}'], 1)
        self.assertEqual(m["rangeguard_batch_size_sum"], 2)

    def test_request_timeout(self):
        s = self.serve(LENET, "--max-batch", "4", "--max-queue-delay-us", "3000000", "--request-timeout-ms", "200")
        t0 = time.time()
        status, _, body = s.infer("lenet_relu", {"inputs": [tensor_json("input", self.x[:1])]})
        self.assert_error(status, body, 503, "timed out after 200 ms")
        self.assertLess(time.time() - t0, 2.0)
        m = s.metrics()
        self.assertEqual(m["rangeguard_queue_depth"], 0)  # the timed-out request left the queue
        self.assertEqual(m["rangeguard_batch_size_count"], 0)  # and never ran

    def test_sigterm_finishes_requests_in_flight(self):
        s = self.serve(LENET, "--max-batch", "8", "--max-queue-delay-us", "800000")
        xs = self.x[:3]
        want = self.reference(LENET, input=xs)["logits"]
        results = [None] * 3

        def one(i):
            results[i] = s.infer("lenet_relu", {"inputs": [tensor_json("input", xs[i: i + 1])]})

        threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        deadline = time.time() + 5
        while s.metrics()["rangeguard_queue_depth"] < 3 and time.time() < deadline:
            time.sleep(0.02)
        t0 = time.time()
        s.p.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(20)
        self.assertEqual(s.p.wait(20), 0, s.stderr())
        self.assertLess(time.time() - t0, 10)
        for i, r in enumerate(results):
            self.assertIsNotNone(r)
            self.assertEqual(r[0], 200, r[2])
            np.testing.assert_allclose(np.array(output(json.loads(r[2]), "logits")["data"]), want[i], rtol=1e-4, atol=1e-4)
        self.assertIn("SIGTERM received", s.stderr())
        with self.assertRaises(OSError):  # no longer listening
            s.request("GET", "/v2/health/live", timeout=2)

    # --- the soft-error alarm -------------------------------------------------------
    def test_oob_counter_and_warning(self):
        calib = self.path("calib.npy")
        np.save(calib, images(200))
        bounds, model = self.path("p90.json"), self.path("lenet_p90.onnx")
        run("calibrate", LENET, "--data", calib, "--out", bounds, "--stat", "percentile:90", check=True)
        run("protect", LENET, "--bounds", bounds, "--out", model, "--detect", check=True)
        x = images(300)[250:254]  # not calibration images; tight bounds: some activations exceed them
        want = self.reference(model, input=x)
        self.assertGreater(int(want["rangeguard_oob_count"].sum()), 0)
        s = self.serve(model, "--max-batch", "1")
        total = 0
        for i in range(4):
            status, h, body = s.infer("lenet_p90", {"id": f"img{i}", "inputs": [tensor_json("input", x[i: i + 1])]})
            self.assertEqual(status, 200, body)
            oob = output(json.loads(body), "rangeguard_oob_count")
            self.assertEqual(oob["datatype"], "INT64")
            total += int(np.sum(oob["data"]))
        m = s.metrics()
        self.assertGreater(total, 0)
        self.assertEqual(m["rangeguard_oob_activations_total"], total)
        self.assertIn("soft-error alarm", s.stderr())
        self.assertRegex(s.stderr(), r"out-of-bound activation\(s\) in a batch of 1 request\(s\) \(ids: img\d\)")
        # A clean model reports no alarm.
        c = self.serve(LENET)
        c.infer("lenet_relu", {"inputs": [tensor_json("input", x[:1])]})
        self.assertEqual(c.metrics()["rangeguard_oob_activations_total"], 0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=BIN)
    args, rest = ap.parse_known_args()
    BIN = args.binary
    unittest.main(argv=[sys.argv[0], *rest])
