"""Issue 15's figures: each hostile reproducer alone, then a soak of good and hostile traffic.

    MNIST_DIR=../shared/data/mnist .venv/bin/python bench/soak.py --minutes 3

1. Reproducers, sent straight to the service (2 workers), one at a time: status, seconds to
   answer, the longest /healthz answer while it ran (a frozen event loop shows here), and
   the workers' RSS before and after all of them.
2. Soak, through nginx (deploy/nginx/nginx.conf) in front of the same service: 4 clients
   sending MNIST test digits one after another, and 1 client cycling through the hostile
   kinds, and 64 slow bodies and 500 half-sent headers kept open, each from its own address.
   Every 10 s: good answers,
   their 5xx and p99, hostile answers by status, the longest /healthz answer, workers' RSS.

Writes bench/results/soak-<time>.json and .md. Needs Debian's nginx.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.keras_files import publish_layers, random_layers  # noqa: E402
from tests.servers import nginx_in_front, serve  # noqa: E402
from tests.uploads import (  # noqa: E402
    FORM_HEADERS,
    form_body,
    jpeg_repeating_a_scan,
    png,
    png_header_only,
    tall_16_bit_png,
)
from training.data import load_idx_dir  # noqa: E402
from training.store import Store  # noqa: E402

RAW = {"content-type": "image/png"}
MB = 1024 * 1024
GOOD_CLIENT = "127.0.0.2"
HOSTILE_CLIENT = "127.0.0.3"  # the held connections come from 127.0.0.1


def hostile_requests() -> dict[str, tuple[str, bytes, dict[str, str]]]:
    """name -> (path, body, headers): issue 15's reproducers and issue 14's header attack."""
    tall = tall_16_bit_png()
    semicolons = b'form-data; name="file"' + b";" * (7 * MB)
    return {
        "16-bit 1 x 8,388,608 PNG": ("/v1/predict", tall, RAW),
        "four of them in a batch": (
            "/v1/predict/batch",
            form_body("files", [tall] * 4),
            FORM_HEADERS,
        ),
        "JPEG, one scan 3,000 times": ("/v1/predict", jpeg_repeating_a_scan(9000, 3000), RAW),
        "7 MB of ';' in a part header": (
            "/v1/predict",
            b"--x\r\nContent-Disposition: " + semicolons + b"\r\n\r\nA\r\n--x--\r\n",
            FORM_HEADERS,
        ),
        "PNG header claiming 40000x40000": ("/v1/predict", png_header_only(40_000, 40_000), RAW),
        "9 MB body": ("/v1/predict", b"\0" * (9 * MB), RAW),
        "truncated PNG": ("/v1/predict", png(np.full((64, 64), 9, np.uint8))[:60], RAW),
    }


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children if "multiprocessing.spawn" in _cmdline(int(pid))]


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    return ""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Probe:
    """GET /healthz on the service every 20 ms; the longest answer since the last take."""

    def __init__(self, url: str) -> None:
        self.url, self.longest, self.failures = url, 0.0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.wait(0.02):
                started = time.monotonic()
                try:
                    ok = client.get(self.url + "/healthz").status_code == 200
                except httpx.TransportError:
                    ok = False
                self.failures += not ok
                self.longest = max(self.longest, time.monotonic() - started)

    def take(self) -> float:
        longest, self.longest = self.longest, 0.0
        return longest


def reproducers(url: str, master: int) -> dict:
    probe = Probe(url)
    before = {pid: rss_mb(pid) for pid in worker_pids(master)}
    rows = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for name, (path, body, headers) in hostile_requests().items():
            time.sleep(0.3)
            probe.take()
            started = time.monotonic()
            response = client.post(path, content=body, headers=headers)
            seconds = time.monotonic() - started
            time.sleep(0.1)  # let the probe see a loop still busy after the answer
            error = response.json().get("error") or [
                r.get("error") for r in response.json().get("results", [])
            ]
            rows.append({"request": name, "status": response.status_code, "error": error,
                         "seconds": round(seconds, 3),
                         "longest_healthz_ms": round(probe.take() * 1000, 1)})  # fmt: skip
    time.sleep(1)
    after = {pid: rss_mb(pid) for pid in worker_pids(master)}
    probe.stop.set()
    return {"requests": rows, "rss_before_mb": before, "rss_after_mb": after,
            "healthz_failures": probe.failures}  # fmt: skip


def soak(proxy: str, url: str, master: int, seconds: float, digits: list[bytes]) -> list[dict]:
    stop = threading.Event()
    lock = threading.Lock()
    window: dict = {"good": [], "hostile": Counter()}

    def good_client(offset: int) -> None:
        # From another loopback address than the attackers': nginx limits per client.
        transport = httpx.HTTPTransport(local_address=GOOD_CLIENT)
        with httpx.Client(base_url=proxy, timeout=30, transport=transport) as client:
            i = offset
            while not stop.is_set():
                started = time.monotonic()
                try:
                    status = client.post("/v1/predict", content=digits[i % len(digits)],
                                         headers=RAW).status_code  # fmt: skip
                except httpx.TransportError:
                    status = 0
                with lock:
                    window["good"].append((status, time.monotonic() - started))
                i += 4

    def hostile_client() -> None:
        kinds = list(hostile_requests().values())
        transport = httpx.HTTPTransport(local_address=HOSTILE_CLIENT)
        with httpx.Client(base_url=proxy, timeout=30, transport=transport) as client:
            i = 0
            while not stop.is_set():
                path, body, headers = kinds[i % len(kinds)]
                try:
                    status = client.post(path, content=body, headers=headers).status_code
                except httpx.TransportError:
                    status = 0
                with lock:
                    window["hostile"][status] += 1
                i += 1
                stop.wait(0.2)

    def held_connections() -> None:  # 64 slow bodies and 500 half-sent headers, renewed
        host, port = proxy.removeprefix("http://").split(":")
        while not stop.is_set():
            socks = []
            with contextlib.suppress(OSError):
                for _ in range(64):
                    sock = socket.create_connection((host, int(port)))
                    sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: t\r\n"
                                 b"Content-Length: 100000\r\n\r\n")  # fmt: skip
                    socks.append(sock)
                for _ in range(500):
                    sock = socket.create_connection((host, int(port)))
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
                    socks.append(sock)
            for _ in range(8):
                if stop.wait(1.0):
                    break
                for sock in socks[:64]:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"x")
            for sock in socks:
                sock.close()

    threads = [threading.Thread(target=good_client, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=hostile_client), threading.Thread(target=held_connections)]
    probe = Probe(url)
    for thread in threads:
        thread.start()
    rows = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        time.sleep(10)
        with lock:
            good, hostile = window["good"], window["hostile"]
            window["good"], window["hostile"] = [], Counter()
        latencies = sorted(t for _, t in good)
        statuses = Counter(s for s, _ in good)
        rows.append({
            "t_s": round(time.monotonic() - started),
            "good": len(good),
            "good_5xx_or_failed": sum(n for s, n in statuses.items() if s >= 500 or s == 0),
            "good_non_200": sum(n for s, n in statuses.items() if s != 200),
            "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1)
            if latencies else None,
            "hostile": dict(sorted(hostile.items())),
            "longest_healthz_ms": round(probe.take() * 1000, 1),
            "rss_mb": {pid: round(rss_mb(pid), 1) for pid in worker_pids(master)},
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    stop.set()
    probe.stop.set()
    for thread in threads:
        thread.join()
    return rows


def markdown(result: dict) -> str:
    lines = ["| reproducer (straight to the service) | status | error | seconds | "
             "longest /healthz ms |", "|---|---|---|---|---|"]  # fmt: skip
    for r in result["reproducers"]["requests"]:
        lines.append(f"| {r['request']} | {r['status']} | {r['error']} | {r['seconds']} | "
                     f"{r['longest_healthz_ms']} |")  # fmt: skip
    rep = result["reproducers"]
    rss = f"Workers' RSS before: {rep['rss_before_mb']} MB; after: {rep['rss_after_mb']} MB"
    lines += [
        "", rss, "",
        "| t (s) | good | good 5xx | good non-200 | p99 ms | hostile statuses | "
        "longest /healthz ms | workers' RSS MB (by pid) |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in result["soak"]:
        lines.append(f"| {r['t_s']} | {r['good']} | {r['good_5xx_or_failed']} | "
                     f"{r['good_non_200']} | {r['p99_ms']} | {r['hostile']} | "
                     f"{r['longest_healthz_ms']} | {r['rss_mb']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("MNIST_DIR", "")))
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args()
    digits = [png(x) for x in load_idx_dir(args.data_dir).x_test[:1000]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = Store(folder / "store")
        publish_layers(store, random_layers(sizes=(784, 512, 10)))  # the served network's size
        flags = ("--workers", "2", "--metrics-dir", str(folder / "metrics"), "--no-access-log")
        with serve(store.root, folder, *flags) as server:
            master = server.process.pid
            result = {"reproducers": reproducers(server.url, master)}
            print(json.dumps(result["reproducers"], indent=1), flush=True)
            with nginx_in_front(server.url.removeprefix("http://"), folder) as proxy:
                result["soak"] = soak(proxy, server.url, master, args.minutes * 60, digits)
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"soak-{stamp}.json").write_text(json.dumps(result, indent=1))
    (args.out / f"soak-{stamp}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
