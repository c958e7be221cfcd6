"""Load test of `steelscan serve` on loopback: requests/s, latency p50/p99, and nothing lost.

    .venv/bin/python benchmarks/load_service.py [--model MODEL_DIR] [--requests 60] [--seconds 90]
                                                [--clients 2] [--max-concurrency 2]

Starts uvicorn in this process on a free 127.0.0.1 port with a fresh SQLite file, then
two phases, each bounded by a request count and a time limit:
1. steady: --clients threads (= the service's capacity) post frames back to back;
2. overload: 3x that many clients; the excess must get 503 + Retry-After, not a queue.
Nothing lost = the number of 200 answers equals the rows in the database. Without
--model a bundle of our default architectures (random weights, speed only) is exported
first. Writes benchmarks/results/load_service.{json,md}."""

from __future__ import annotations

import argparse
import io
import os
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from PIL import Image

from steelscan.atomic import write_json, write_text
from steelscan.benchmark import default_bundle, machine_info, synthetic_stream
from steelscan.service.app import create_app

RESULTS = Path(__file__).resolve().parent / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def phase(url: str, payloads: list[bytes], clients: int, requests: int, seconds: float) -> dict:
    """`clients` threads post payloads until `requests` were sent or `seconds` passed."""
    lock = threading.Lock()
    statuses: Counter = Counter()
    latencies: list[float] = []
    sent = [0]
    deadline = time.monotonic() + seconds

    def client(k: int) -> None:
        with httpx.Client(timeout=120) as http:
            while time.monotonic() < deadline:
                with lock:
                    if sent[0] >= requests:
                        return
                    i = sent[0]
                    sent[0] += 1
                t0 = time.perf_counter()
                retry_after = 0.0
                try:
                    r = http.post(url + "/v1/inspect", files={"file": (f"frame_{i}.jpg", payloads[i % len(payloads)],
                                                                        "image/jpeg")})
                    status = r.status_code
                    retry_after = float(r.headers.get("retry-after", 0) or 0)
                except httpx.HTTPError as e:
                    status = f"error:{e.__class__.__name__}"
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    statuses[status] += 1
                    if status == 200:
                        latencies.append(dt)
                if status == 503:  # a polite client waits as told
                    time.sleep(retry_after)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ok = statuses.get(200, 0)
    lat = np.array(latencies) if latencies else np.zeros(1)
    return {"clients": clients, "sent": sent[0], "seconds": round(wall, 2),
            "status_counts": {str(k): v for k, v in sorted(statuses.items(), key=str)},
            "ok_per_s": round(ok / wall, 3), "p50_ms": round(float(np.median(lat)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="bundle (default: default architectures, random weights)")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--requests", type=int, default=60, help="requests per phase (default 60)")
    ap.add_argument("--seconds", type=float, default=90, help="time limit per phase (default 90)")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--max-concurrency", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "load_service"), help="output path without suffix")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="steelscan-load-") as tmp:
        model = args.model or default_bundle(Path(tmp), (256, 1600))
        db = Path(tmp) / "load.sqlite"
        app = create_app(model, engine=args.engine, db_path=db, max_concurrency=args.max_concurrency)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        payloads = [jpeg(im) for im in synthetic_stream(8, (256, 1600))]
        engine = httpx.get(url + "/healthz").json()["engine"]
        steady = phase(url, payloads, args.clients, args.requests, args.seconds)
        overload = phase(url, payloads, 3 * args.clients, args.requests, args.seconds)
        stored = app.state.store.count()
        ok_total = steady["status_counts"].get("200", 0) + overload["status_counts"].get("200", 0)
        server.should_exit = True
        thread.join(timeout=30)

    result = {"machine": machine_info(None), "model": str(args.model or "default architectures, random weights"),
              "engine": engine, "max_concurrency": args.max_concurrency, "frame": "1600x256 JPEG",
              "steady": steady, "overload": overload, "ok_total": ok_total, "stored_rows": stored,
              "nothing_lost": ok_total == stored}
    m = result["machine"]
    md = ["# steelscan serve: load test (loopback)", "",
          f"Machine: {m['cpu']}, {m['logical_cores']} logical cores, load average {m['load_average_1m']}; "
          f"engine {engine}, max concurrency {args.max_concurrency}, frames 1600x256 JPEG; model {result['model']}.", "",
          "| phase | clients | sent | statuses | OK requests/s | p50 ms | p99 ms |", "|---|---:|---:|---|---:|---:|---:|"]
    for name in ("steady", "overload"):
        p = result[name]
        md.append(f"| {name} | {p['clients']} | {p['sent']} | {p['status_counts']} | {p['ok_per_s']} | "
                  f"{p['p50_ms']} | {p['p99_ms']} |")
    md += ["", f"200 answers: {ok_total}; rows stored: {stored}; nothing lost: {result['nothing_lost']}."]
    write_json(args.out + ".json", result)
    write_text(args.out + ".md", "\n".join(md) + "\n")
    print("\n".join(md))
    return 0 if result["nothing_lost"] else 1


if __name__ == "__main__":
    sys.exit(main())
