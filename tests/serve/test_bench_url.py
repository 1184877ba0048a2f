#!/usr/bin/env python3
"""End-to-end tests of `rangeguard bench MODEL --url ...`: the load generator driving a
running `rangeguard serve` over HTTP. The server scenario and single-stream write the
usual report plus `target`, every measured query reaches the server (its request counter
moves by at least as many), and every failure is one clean `rangeguard: error:` line
without a hang: wrong model name, nothing listening, an input mismatch, a server
refusing the requests, engine-only options.

    /usr/bin/python3 tests/serve/test_bench_url.py [--binary build/rangeguard]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "cli"))
import test_serve  # noqa: E402  (the Server helper: `rangeguard serve` on a free loopback port)
from cli_support import CleanErrors  # noqa: E402
from test_serve import LENET, Server  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
SHORT = ["--warmup", "0.2"]


def bench(*args, timeout=120):
    return subprocess.run([test_serve.BIN, "bench", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def requests_200(server):
    return server.metrics().get('rangeguard_requests_total{code="200"}', 0)


def free_port():
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchOverHttpTest(CleanErrors):
    @classmethod
    def setUpClass(cls):
        # One thread: a 2-thread OpenMP team stalls at its barriers whenever a neighbour
        # takes a core (docs/serve.md), which would only make the runs slow.
        cls.server = Server(LENET, "--threads", 1)
        cls.url = f"http://127.0.0.1:{cls.server.port}"

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.out = os.path.join(self.tmp.name, "r.json")

    def tearDown(self):
        self.tmp.cleanup()

    def run_ok(self, *args, model=LENET):
        p = bench(model, "--url", self.url, *SHORT, *args, "--json", self.out)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.out) as f:
            return json.load(f), p

    def assert_http_report(self, j, scenario, connections):
        self.assertEqual(j["scenario"], scenario)
        self.assertEqual(j["target"], {"url": self.url, "model_name": "lenet_relu", "connections": connections})
        self.assertEqual(j["streams"], connections)
        self.assertEqual(j["timing"]["mode"], "http")
        self.assertIn("response", j["timing"]["stop"])
        self.assertGreater(j["queries"], 0)
        for k in ("p50", "p99", "min", "max", "mean"):
            self.assertGreater(j["latency_ms"][k], 0, k)
        self.assertLessEqual(j["latency_ms"]["p50"], j["latency_ms"]["p99"])

    def test_server_scenario(self):
        before = requests_200(self.server)
        j, p = self.run_ok("--scenario", "server", "--target-qps", 50, "--duration", 2, "--seed", 3)
        self.assert_http_report(j, "server", 8)  # the default connections for open-loop arrivals
        self.assertGreaterEqual(j["queries"], 100)  # 2 s at 50/s, and --min-queries
        self.assertEqual(j["server"]["scheduled_queries"], j["queries"])
        self.assertEqual(j["settings"]["seed"], 3)
        # Warm-up requests come on top of the measured ones; none was refused.
        self.assertGreaterEqual(requests_200(self.server) - before, j["queries"])
        self.assertEqual([k for k in self.server.metrics() if k.startswith("rangeguard_requests_total")
                          and 'code="200"' not in k], [])
        self.assertIn("http client, 8 connection(s)", p.stdout)
        self.assertIn(self.url, p.stdout)

    def test_single_stream_with_data_and_batch(self):
        before = requests_200(self.server)
        j, p = self.run_ok("--duration", 0.5, "--min-queries", 20, "--batch", 2, "--data", DATA)
        self.assert_http_report(j, "single-stream", 1)
        self.assertGreaterEqual(j["queries"], 20)
        self.assertEqual(j["samples"], 2 * j["queries"])
        self.assertEqual(j["input_shapes"], [[2, 1, 28, 28]])
        self.assertEqual(j["samples_from"], DATA)
        self.assertGreaterEqual(requests_200(self.server) - before, j["queries"])

    def test_streams_set_the_connections_and_model_name_is_used(self):
        j, _ = self.run_ok("--scenario", "multi-stream", "--samples-per-query", 4, "--streams", 2, "--duration", 0.3,
                           "--min-queries", 10, "--model-name", "lenet_relu", "--threads", 1)
        self.assert_http_report(j, "multi-stream", 2)
        self.assertEqual(j["samples"], 4 * j["queries"])

    # --- failures: one clean line, non-zero exit, no hang ----------------------------
    def test_wrong_model_name(self):
        p = bench(LENET, "--url", self.url, "--model-name", "nope", *SHORT, "--duration", 0.3)
        self.assert_clean_error(p, "HTTP 404", "unknown model 'nope'", "lenet_relu", "/v2/models/nope")

    def test_nothing_listening(self):
        url = f"http://127.0.0.1:{free_port()}"
        p = bench(LENET, "--url", url, *SHORT, "--duration", 0.3, timeout=30)
        self.assert_clean_error(p, "cannot connect", url)

    def test_bad_url_and_engine_options_are_refused(self):
        for args, frag in [(["--url", "127.0.0.1:8000"], "http://HOST:PORT"),
                           (["--url", "http://"], "no host"),
                           (["--url", self.url, "--compare", LENET], "--compare"),
                           (["--url", self.url, "--profile"], "--profile"),
                           (["--url", self.url, "--precision", "bf16"], "--precision"),
                           (["--url", self.url, "--timing", "pipeline", "--data", DATA], "--timing pipeline"),
                           (["--model-name", "lenet_relu"], "--model-name needs --url")]:
            with self.subTest(args=args):
                self.assert_clean_error(bench(LENET, *args, *SHORT, "--duration", 0.3), frag)

    def test_input_mismatch(self):
        # A server whose model, under the same name, takes INT64 'ids' instead of 'input'.
        path = os.path.join(self.tmp.name, "other.onnx")
        g = helper.make_graph([helper.make_node("Identity", ["ids"], ["out"])], "g",
                              [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 3])],
                              [helper.make_tensor_value_info("out", TensorProto.INT64, ["N", 3])])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
        other = Server(path, "--name", "lenet_relu")
        try:
            p = bench(LENET, "--url", f"http://127.0.0.1:{other.port}", *SHORT, "--duration", 0.3)
        finally:
            other.close()
        self.assert_clean_error(p, "has no input 'input'")

    def test_server_refusing_requests(self):
        # Metadata is served, every infer body is over the limit: the request sent before
        # measuring gets 413, and the message is the server's.
        small = Server(LENET, "--max-body-bytes", 1000)
        try:
            p = bench(LENET, "--url", f"http://127.0.0.1:{small.port}", *SHORT, "--duration", 0.3, timeout=60)
        finally:
            small.close()
        self.assert_clean_error(p, "HTTP 413", "1000 byte limit", "/v2/models/lenet_relu/infer")

    def test_server_dying_mid_run_ends_the_run_at_once(self):
        doomed = Server(LENET)
        args = ["bench", LENET, "--url", f"http://127.0.0.1:{doomed.port}", "--scenario", "server", "--target-qps", 100,
                "--duration", 60, *SHORT]
        b = subprocess.Popen([test_serve.BIN, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.5)
            doomed.p.kill()
            doomed.p.wait()
            t0 = time.monotonic()
            _, err = b.communicate(timeout=20)
            self.assertLess(time.monotonic() - t0, 10)
        finally:
            if b.poll() is None:
                b.kill()
                b.wait()
            doomed.close()
        self.assertEqual(b.returncode, 1, err)  # an rg::Error, not a signal or a crash
        last = err.strip().splitlines()[-1]
        self.assertTrue(last.startswith("rangeguard: error: POST http://127.0.0.1:"), err)
        self.assertIn("/v2/models/lenet_relu/infer", last)

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=test_serve.BIN)
    args, rest = ap.parse_known_args()
    test_serve.BIN = args.binary
    unittest.main(argv=[sys.argv[0], *rest])
