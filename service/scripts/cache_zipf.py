#!/usr/bin/env python3
"""The service's result cache under a Zipf workload, through real HTTP (not run in CI).

Starts the `offload-service` binary twice, with `--cache-mb 64` and with `--cache-mb 0`,
sends both the same request sequence (thumbnails of one photo at PHOTOS box sizes, popularity
Zipf(s = 1), CLIENTS concurrent clients), and prints throughput, their ratio and the x-cache
counts and /metrics hit ratio of the cached run.

    cargo build --release -p offload-service
    service/scripts/cache_zipf.py [requests] [binary]   # default 400, target/release/offload-service
"""
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

PHOTOS = 50
CLIENTS = 32
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PHOTO = open(os.path.join(ROOT, "service/tests/fixtures/seeding_1200x675.jpg"), "rb").read()


def zipf_sequence(n, seed=7):
    weights = [1.0 / rank for rank in range(1, PHOTOS + 1)]
    rng = random.Random(seed)
    return rng.choices(range(PHOTOS), weights=weights, k=n)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, i):
    side = 96 + 8 * i
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/thumbnail?w={side}&h={side}", data=PHOTO, method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        return response.status, response.headers.get("x-cache", "none")


def run(binary, cache_mb, sequence):
    port = free_port()
    server = subprocess.Popen(
        [binary, "--addr", f"127.0.0.1:{port}", "--cache-mb", str(cache_mb),
         "--request-timeout-ms", "120000"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(lambda i: post(port, i), sequence))
        elapsed = time.monotonic() - started
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    finally:
        server.terminate()
        server.wait()
    assert all(status == 200 for status, _ in answers), Counter(s for s, _ in answers)
    return elapsed, Counter(tag for _, tag in answers), metrics


def series(metrics, outcome):
    found = re.search(r'offload_cache_requests_total\{outcome="%s"\} (\d+)' % outcome, metrics)
    return int(found.group(1)) if found else 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    binary = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release/offload-service")
    sequence = zipf_sequence(n)
    cached_s, tags, metrics = run(binary, 64, sequence)
    plain_s, plain_tags, _ = run(binary, 0, sequence)
    hits, misses, coalesced = (series(metrics, o) for o in ("hit", "miss", "coalesced"))
    print(f"requests per mode: {n}, distinct photos: {len(set(sequence))}, clients: {CLIENTS}")
    print(f"with cache:    {n / cached_s:8.1f} req/s  x-cache {dict(tags)}")
    print(f"without cache: {n / plain_s:8.1f} req/s  x-cache {dict(plain_tags)}")
    print(f"speed-up: {plain_s / cached_s:.1f}x  hit ratio: {hits / (hits + misses + coalesced):.3f}"
          f"  (hits {hits}, misses {misses}, coalesced {coalesced})")


if __name__ == "__main__":
    main()
