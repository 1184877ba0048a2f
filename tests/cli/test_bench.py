#!/usr/bin/env python3
"""End-to-end tests of `rangeguard bench` on a zoo model with short runs: every scenario
writes the documented JSON fields, VALID/INVALID follows the bound, find-peak returns
peak_qps, --compare of a model with itself gives a ratio near 1, the trace has one line
per query, reports render, and bad options get one `rangeguard: error:` line.

    /usr/bin/python3 tests/cli/test_bench.py [--binary build/rangeguard]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest

from cli_support import CleanErrors

BIN = "build/rangeguard"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "lenet_relu.onnx")
DATA = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
SHORT = ["--duration", "0.3", "--warmup", "0.1", "--threads", "1"]
LATENCY_KEYS = {"p50", "p90", "p95", "p99", "p999", "max", "mean"}


def run(*args):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=120)


class BenchTest(CleanErrors):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.d, name)

    def bench(self, *args):
        out = self.path("r.json")
        p = run("bench", MODEL, *SHORT, *args, "--json", out)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out) as f:
            return json.load(f)

    def assert_schema(self, j, scenario):
        for k in ("scenario", "valid", "invalid_reasons", "latency_ms", "throughput_per_s", "queries", "samples",
                  "duration_s", "metric", "timing", "settings", "environment", "latency_cdf"):
            self.assertIn(k, j)
        self.assertEqual(j["scenario"], scenario)
        self.assertEqual(set(j["latency_ms"]) & LATENCY_KEYS, LATENCY_KEYS)
        self.assertGreater(j["queries"], 0)
        self.assertGreater(j["throughput_per_s"], 0)
        self.assertTrue(j["timing"]["start"] and j["timing"]["stop"])
        for k in ("cpu_model", "isa", "cores", "threads_per_stream", "streams", "rangeguard_version", "onednn_version"):
            self.assertIn(k, j["environment"])
        lat = j["latency_ms"]
        self.assertLessEqual(lat["p50"], lat["p90"])
        self.assertLessEqual(lat["p99"], lat["p999"])
        self.assertLessEqual(lat["p999"], lat["max"])

    # --- scenarios ------------------------------------------------------------------
    def test_single_stream(self):
        j = self.bench("--min-queries", "50")
        self.assert_schema(j, "single-stream")
        self.assertTrue(j["valid"], j["invalid_reasons"])
        self.assertEqual(j["metric"]["name"], "p90_latency_ms")
        self.assertGreaterEqual(j["queries"], 50)
        self.assertGreaterEqual(j["duration_s"], 0.3)
        self.assertEqual(j["timing"]["mode"], "inference")
        self.assertIsNotNone(j["early_stopping"]["latency_ms"])

    def test_multi_stream_and_offline(self):
        j = self.bench("--scenario", "multi-stream", "--samples-per-query", "4", "--min-queries", "20")
        self.assert_schema(j, "multi-stream")
        self.assertEqual(j["samples"], 4 * j["queries"])
        self.assertEqual(j["metric"]["name"], "p99_latency_ms")
        j = self.bench("--scenario", "offline", "--batch", "16", "--min-queries", "64")
        self.assert_schema(j, "offline")
        self.assertGreaterEqual(j["samples"], 64)
        self.assertEqual(j["metric"]["name"], "samples_per_s")

    def test_server_valid_then_invalid_with_an_impossible_bound(self):
        args = ["--scenario", "server", "--target-qps", "400", "--duration", "1.2", "--min-queries", "460"]
        j = self.bench(*args, "--latency-bound", "1000")
        self.assert_schema(j, "server")
        self.assertTrue(j["valid"], j["invalid_reasons"])
        self.assertGreaterEqual(j["queries"], 460)
        self.assertEqual(j["timing"]["latency_from"], "scheduled arrival")
        self.assertLess(abs(j["server"]["issued_qps"] / 400 - 1), 0.2)
        j = self.bench(*args, "--latency-bound", "0.000001")
        self.assertFalse(j["valid"])
        self.assertTrue(any("bound" in r for r in j["invalid_reasons"]), j["invalid_reasons"])
        # Too few queries for early stopping at p99 is INVALID too, and says so.
        j = self.bench("--scenario", "server", "--target-qps", "100", "--min-queries", "10")
        self.assertFalse(j["valid"])
        self.assertTrue(any("too few" in r for r in j["invalid_reasons"]), j["invalid_reasons"])

    def test_find_peak(self):
        j = self.bench("--scenario", "server", "--latency-bound", "20", "--percentile", "90", "--find-peak",
                       "--duration", "0.2", "--min-queries", "60")
        self.assertGreater(j["peak_qps"], 0)
        probes = j["find_peak"]["probes"]
        self.assertGreaterEqual(len(probes), 2)
        self.assertTrue(any(not p["valid"] for p in probes))
        self.assertTrue(any(p["valid"] and p["target_qps"] == j["peak_qps"] for p in probes))
        failed_above = min(p["target_qps"] for p in probes if not p["valid"] and p["target_qps"] > j["peak_qps"])
        self.assertLessEqual((failed_above - j["peak_qps"]) / j["peak_qps"], 0.0100001)
        self.assertTrue(j["valid"], j["invalid_reasons"])

    def test_compare_same_model_gives_ratio_near_one(self):
        j = self.bench("--compare", MODEL, "--duration", "1.2", "--rounds", "6", "--min-queries", "60")
        c = j["compare"]
        self.assertEqual(c["rounds"], 6)
        self.assertEqual(len(c["round_ratios"]), 6)
        self.assertLess(abs(c["ratio"] - 1), 0.15, c)
        self.assertLessEqual(c["ci95"][0], c["ratio"])
        self.assertGreaterEqual(c["ci95"][1], c["ratio"])
        self.assertEqual(set(c["run"]["latency_ms"]) & LATENCY_KEYS, LATENCY_KEYS)

    def test_trace_has_one_line_per_query(self):
        for extra in ([], ["--scenario", "server", "--target-qps", "300", "--min-queries", "30"]):
            trace = self.path("t.jsonl")
            j = self.bench(*extra, "--trace", trace)
            with open(trace) as f:
                lines = [json.loads(l) for l in f]
            self.assertEqual(len(lines), j["queries"])
            self.assertTrue(all(l["latency_ns"] == l["done_ns"] - l["scheduled_ns"] >= 0 for l in lines))
            if extra:  # server: latency runs from the schedule, which is never after the issue
                self.assertTrue(all(l["issued_ns"] >= l["scheduled_ns"] for l in lines))

    def test_pipeline_timing_reads_the_data_set(self):
        j = self.bench("--timing", "pipeline", "--data", DATA, "--batch", "4", "--min-queries", "20")
        self.assertEqual(j["timing"]["mode"], "pipeline")
        self.assertIn("data set", j["timing"]["start"])
        self.assertIn("top-k", j["timing"]["stop"])
        self.assertEqual(j["samples_from"], DATA)
        self.assertEqual(j["batch"], 4)

    def test_console_says_which_inputs_were_timed(self):
        p = run("bench", MODEL, *SHORT, "--seed", "7")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("inputs       seeded random tensors (seed 7)", p.stdout)
        p = run("bench", MODEL, *SHORT, "--data", DATA)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"inputs       {DATA}\n", p.stdout)

    def test_sweep_profile_and_html(self):
        html = self.path("r.html")
        j = self.bench("--scenario", "server", "--target-qps", "200", "--sweep", "--sweep-points", "2",
                       "--min-queries", "20", "--profile", "--html", html)
        self.assertEqual(j["sweep"]["over"], "target_qps")
        self.assertEqual(len(j["sweep"]["points"]), 2)
        self.assertTrue(j["profile"])
        with open(html) as f:
            text = f.read()
        self.assertIn("<svg", text)
        self.assertIn("Latency CDF", text)
        self.assertNotIn("<script", text)
        self.assertNotIn("https://", text)
        j = self.bench("--sweep", "--min-queries", "20", "--duration", "0.2")
        self.assertEqual(j["sweep"]["over"], "streams")
        self.assertEqual(j["sweep"]["points"][0]["streams"], 1)

    def test_ort_profile_beside_ours(self):
        # scripts/ort_run.js --profile: ONNX Runtime's per-node medians of the timed runs,
        # the peer of `bench --profile` when comparing the two layer by layer.
        import numpy as np
        x = self.path("x.npy")
        np.save(x, np.random.default_rng(1).random((1, 1, 28, 28), dtype=np.float32))
        ort_run = os.path.join(ROOT, "scripts", "ort_run.js")
        p = subprocess.run(["node", ort_run, MODEL, "--input", x, "--bench-iters", "5", "--warmup", "2", "--profile"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout)
        self.assertTrue(j["profile"])
        self.assertTrue(any("Conv" in e["op"] for e in j["profile"]), j["profile"])
        self.assertTrue(all(e["ms"] >= 0 and e["node"] for e in j["profile"]))
        self.assertAlmostEqual(sum(j["by_op"].values()), sum(e["ms"] for e in j["profile"]), places=2)
        ms = [e["ms"] for e in j["profile"]]
        self.assertEqual(ms, sorted(ms, reverse=True))
        p = subprocess.run(["node", ort_run, MODEL, "--input", x, "--profile"], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.strip(), "ort_run: --profile needs --bench-iters or --bench-seconds")

    def test_self_test(self):
        out = self.path("s.json")
        p = run("bench", "--self-test", "--duration", "0.5", "--json", out)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(out) as f:
            j = json.load(f)
        self.assertTrue(j["pass"])
        self.assertLessEqual(j["harness"]["cost_ns_per_query"], 2000)
        self.assertGreaterEqual(j["harness"]["queries_per_s"], 200000)
        self.assertLessEqual(abs(j["server_arrivals"]["relative_error"]), 0.01)

    # --- bad input ------------------------------------------------------------------
    def test_bad_options_give_one_line(self):
        cases = [
            (["--scenario", "bogus"], "--scenario"),
            (["--latency-bound", "-1"], "--latency-bound"),
            (["--scenario", "server", "--find-peak"], "--latency-bound"),
            (["--target-qps", "10"], "server"),
            (["--timing", "pipeline"], "--data"),
            (["--percentile", "150"], "--percentile"),
            (["--streams", "0"], "--streams"),
            (["--duration", "0"], "--duration"),
            (["--rounds", "1", "--compare", MODEL], "--rounds"),
            (["--compare", MODEL, "--find-peak", "--scenario", "server", "--latency-bound", "5"], "--compare"),
            (["--data", self.path("absent.npy")], "absent.npy"),
            (["--compare", self.path("absent.onnx")], "absent.onnx"),
            (["--bogus"], "--bogus"),
            (["--duration", "x"], "--duration"),
        ]
        for args, frag in cases:
            with self.subTest(args=args):
                self.assert_clean_error(run("bench", MODEL, "--warmup", "0", *args), frag)
        self.assert_clean_error(run("bench"), "MODEL")
        self.assert_clean_error(run("bench", self.path("absent.onnx")), "absent.onnx")
        p = run("bench", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("Example", p.stdout)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=BIN)
    args, rest = ap.parse_known_args()
    BIN = os.path.abspath(args.binary)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
