#!/usr/bin/env python3
"""Open-loop load for `rangeguard serve` (used by scripts/serve_load.sh): requests arrive
at a fixed mean rate, Poisson (MLPerf Server) or evenly spaced (wrk2), whether or not
earlier ones have finished. Latency runs from each request's *scheduled* arrival, so a
server that falls behind is charged for it (no coordinated omission). Loopback only.

    serve_openloop.py --port P --path /v2/models/m/infer --body FILE --header-len N \
        --rate 20 --duration 10 [--arrivals poisson|uniform] [--seed 1]
Prints one JSON line: sent, ok, errors, achieved rate, latency percentiles in ms.
"""
import argparse
import http.client
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--path", required=True)
ap.add_argument("--body", required=True)
ap.add_argument("--header-len", type=int, required=True)
ap.add_argument("--rate", type=float, required=True)
ap.add_argument("--duration", type=float, default=10)
ap.add_argument("--arrivals", choices=["poisson", "uniform"], default="poisson")
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()

body = open(a.body, "rb").read()
headers = {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(a.header_len)}
local = threading.local()
lat, errors, lock = [], [0], threading.Lock()


def post():
    """One request on this thread's keep-alive connection; a connection the server closed
    while idle (its keep-alive timeout) is replaced once, as any HTTP client does."""
    for attempt in (0, 1):
        c = getattr(local, "c", None)
        fresh = c is None
        if fresh:
            c = local.c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
        try:
            c.request("POST", a.path, body=body, headers=headers)
            r = c.getresponse()
            r.read()
            return r.status == 200
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            c.close()
            local.c = None
            if fresh:
                return False
        except OSError:
            c.close()
            local.c = None
            return False
    return False


def send(scheduled):
    ok = post()
    done = time.perf_counter()
    with lock:
        if ok:
            lat.append(done - scheduled)
        else:
            errors[0] += 1


rng = random.Random(a.seed)
# Enough workers that a burst never waits for a free client thread.
with ThreadPoolExecutor(32) as ex:
    start = time.perf_counter() + 0.1
    t, sent = start, 0
    while t < start + a.duration:
        now = time.perf_counter()
        if t > now:
            time.sleep(t - now)
        ex.submit(send, t)
        sent += 1
        t += rng.expovariate(a.rate) if a.arrivals == "poisson" else 1.0 / a.rate
lat.sort()
q = lambda p: round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else None
print(json.dumps({"arrivals": a.arrivals, "target_rate": a.rate, "sent": sent, "ok": len(lat), "errors": errors[0],
                  "achieved_rate": round(len(lat) / a.duration, 2), "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99),
                  "max_ms": round(1000 * lat[-1], 3) if lat else None}))
