"""Throughput of the Open Inference Protocol's infer against /v1/predict, in one run.

One service, started as bench/harness.py starts it; the image is harness.py's (the first
MNIST test digit, a 7, as a PNG), sent as:

    v1-multipart  POST /v1/predict, multipart field `file` (harness.py's case)
    v1-raw        POST /v1/predict, the PNG as the body
    v2-bytes      POST /v2/models/mnist/infer, input `image_file` BYTES [1] with the binary
                  tensor extension: the JSON, then the length-prefixed PNG, and binary
                  outputs, exactly as tritonclient writes it (no Content-Type)
    v2-pixels     the same with input `pixels` FP32 [1, 784] (the digit / 255)

wrk (1 thread, keep-alive) at each concurrency for --duration seconds, in --repeats
rounds that each run every kind once, one after the other: on a machine shared with other
work, the kinds of one round meet about the same contention. Per kind the median round;
the ratios v2-bytes / v1-multipart and v2-bytes / v1-raw of each round and their median
(the issue's target: v2 within 20% of /v1/predict).

Then the same requests in process, straight through the app's ASGI stack (guards,
metrics, routing, the route; no HTTP parsing): the CPU time each kind costs, --count
requests at each concurrency, in the same rounds. On a machine shared with other work,
wall-clock throughput swings by 2x between runs; CPU time per request does not count what
other processes take, so its ratio is the steadier answer to "within 20%".
Writes bench/results/v2-<time>.{json,md}.

Usage: python bench/v2.py --store DIR [--duration 5] [--concurrency 1 16 64] [--repeats 3]
                         [--count 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

# One OpenBLAS thread, as `mnist-serve` gives each worker, before NumPy loads it: in
# process, a second thread spinning on each batched forward pass doubled the CPU counted.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import tritonclient.http as triton  # noqa: E402
from starlette.types import ASGIApp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import BOUNDARY, lua_script, multipart_body, save, wrk  # noqa: E402
from bench.serve_checks import serve_cmd, start, stop  # noqa: E402
from tests.servers import free_port  # noqa: E402
from tests.uploads import png  # noqa: E402
from training.data import load_idx_dir  # noqa: E402

V1, V2 = "/v1/predict", "/v2/models/mnist/infer"
KINDS = ("v1-multipart", "v1-raw", "v2-bytes", "v2-pixels")


Request = tuple[str, dict[str, str], bytes]  # path, headers, body


def v2_request(tensor: triton.InferInput) -> Request:
    """What tritonclient sends for one input: binary data both ways, no Content-Type."""
    body, json_size = triton.InferenceServerClient.generate_request_body([tensor])
    return V2, {"Inference-Header-Content-Length": str(json_size)}, body


def requests_of(digit: np.ndarray) -> dict[str, Request]:
    """Each kind of request for the same digit."""
    image = png(digit)
    files = triton.InferInput("image_file", [1], "BYTES")
    files.set_data_from_numpy(np.array([image], dtype=object))
    pixels = triton.InferInput("pixels", [1, 784], "FP32")
    pixels.set_data_from_numpy((digit.reshape(1, 784) / 255).astype(np.float32))
    form = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return {
        "v1-multipart": (V1, form, multipart_body([image], "file")),
        "v1-raw": (V1, {"Content-Type": "image/png"}, image),
        "v2-bytes": v2_request(files),
        "v2-pixels": v2_request(pixels),
    }


def scripts(folder: Path, requests: dict[str, Request]) -> dict[str, tuple[str, Path]]:
    """Each kind's path and wrk script."""
    return {
        kind: (path, lua_script(folder, kind, body, "", headers))
        for kind, (path, headers, body) in requests.items()
    }


async def _call(app: ASGIApp, path: str, headers: dict[str, str], body: bytes) -> int:
    """One request straight through the ASGI app (guards, metrics, routing); its status."""
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80),
             "headers": [*raw, (b"content-length", str(len(body)).encode())]}  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = []

    async def receive() -> dict:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # no disconnect while the request runs
        return {}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


@contextlib.asynccontextmanager
async def _started(app: ASGIApp) -> AsyncIterator[None]:
    """The app's lifespan: the model loaded, as in a worker."""
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}},
                                   inbox.get, outbox.put))  # fmt: skip
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


async def cpu_costs(
    store: Path, requests: dict[str, Request], concurrencies: list[int], rounds: int, count: int
) -> list[dict]:
    """CPU microseconds per request of each kind, in process (no HTTP parsing, no wrk),
    `count` requests `concurrency` at a time, in rounds of every kind; the median round.
    CPU time, not wall time: what other processes take of the cores does not count."""
    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(store=store, poll_interval=3600, max_in_flight=4096))
    out = []
    async with _started(app):
        for concurrency in concurrencies:
            costs: dict[str, list[float]] = {kind: [] for kind in requests}
            batches = max(1, count // concurrency)
            for _ in range(rounds):
                for kind, request in requests.items():
                    started = time.process_time()
                    for _ in range(batches):
                        calls = (_call(app, *request) for _ in range(concurrency))
                        assert set(await asyncio.gather(*calls)) == {200}, kind
                    spent = time.process_time() - started
                    costs[kind].append(round(spent / (batches * concurrency) * 1e6, 1))
            median = {kind: sorted(each)[len(each) // 2] for kind, each in costs.items()}
            out.append({"concurrency": concurrency, "cpu_us_per_request": median,
                        "rounds": costs,
                        "v2_bytes_throughput_over_multipart":
                            round(median["v1-multipart"] / median["v2-bytes"], 3),
                        "v2_bytes_throughput_over_raw":
                            round(median["v1-raw"] / median["v2-bytes"], 3)})  # fmt: skip
            print(json.dumps(out[-1]), flush=True)
    return out


def run(args: argparse.Namespace) -> dict:
    digit = load_idx_dir(args.data_dir).x_test[0]  # harness.py's image: a 7
    results: dict = {"runs": [], "raw": {}, "ratios": []}
    results["in_process"] = asyncio.run(
        cpu_costs(args.store, requests_of(digit), args.concurrency, args.repeats, args.count)
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        flags = ("--max-in-flight", "1024", "--no-access-log")  # as harness.py runs it
        server, _ = start(serve_cmd(args.store, port, *flags), folder / "service.log", port)
        requests = scripts(folder, requests_of(digit))
        try:
            for concurrency in args.concurrency:
                rounds = [
                    measure(server.url, requests, concurrency, args.duration)
                    for _ in range(args.repeats)
                ]
                for kind in requests:
                    run_ = summary(kind, concurrency, [r[kind][0] for r in rounds])
                    results["runs"].append(run_)
                    results["raw"][f"{kind}/c{concurrency}"] = [r[kind][1] for r in rounds]
                    print(json.dumps(run_), flush=True)
                rates = [
                    {k: stats["requests_per_s"] for k, (stats, _) in r.items()} for r in rounds
                ]
                results["ratios"].append(ratios(concurrency, rates))
        finally:
            stop(server)
    return results


def summary(kind: str, concurrency: int, rounds: list[dict]) -> dict:
    """The round with the median requests/s, and every round's requests/s."""
    ordered = sorted(rounds, key=lambda stats: stats["requests_per_s"])
    return {
        "request": kind,
        "concurrency": concurrency,
        **ordered[len(ordered) // 2],
        "repeats_requests_per_s": [stats["requests_per_s"] for stats in rounds],
    }


def measure(
    url: str, requests: dict[str, tuple[str, Path]], concurrency: int, duration: float
) -> dict[str, tuple[dict, str]]:
    """One round: each kind once, after a warm-up of its own; its stats and wrk output."""
    measured = {}
    for kind, (path, script) in requests.items():
        stats, raw = wrk(url + path, script, concurrency, duration, repeats=1)
        measured[kind] = (stats, raw[0])
    return measured


def ratios(concurrency: int, rounds: list[dict[str, float]]) -> dict:
    """v2-bytes over each /v1 request in each round (requests/s), and the median."""
    out: dict = {"concurrency": concurrency}
    for v1 in ("v1-multipart", "v1-raw"):
        each = sorted(round(r["v2-bytes"] / r[v1], 3) for r in rounds)
        key = f"v2_bytes_over_{v1[3:]}"
        out[key], out[f"{key}_rounds"] = each[len(each) // 2], each
    return out


def markdown(results: dict) -> str:
    lines = ["| request | concurrency | req/s | runs (req/s) | p50 ms | p99 ms | non-2xx |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results["runs"]:
        lines.append(
            f"| {r['request']} | {r['concurrency']} | {r['requests_per_s']:.0f} | "
            f"{', '.join(f'{x:.0f}' for x in r['repeats_requests_per_s'])} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['non_2xx']} |"
        )
    lines += ["", "| concurrency | v2-bytes / v1-multipart (rounds) | v2-bytes / v1-raw (rounds) |",
              "|---|---|---|"]  # fmt: skip
    for r in results["ratios"]:
        lines.append(
            f"| {r['concurrency']} | {r['v2_bytes_over_multipart']} "
            f"({', '.join(map(str, r['v2_bytes_over_multipart_rounds']))}) | "
            f"{r['v2_bytes_over_raw']} ({', '.join(map(str, r['v2_bytes_over_raw_rounds']))}) |"
        )
    lines += ["", "In process, CPU per request (us, the median of the rounds):", "",
              "| concurrency | " + " | ".join(KINDS) + " | v2-bytes / v1-multipart | "
              "v2-bytes / v1-raw |", "|---|" + "---|" * (len(KINDS) + 2)]  # fmt: skip
    for r in results["in_process"]:
        costs = " | ".join(str(r["cpu_us_per_request"][kind]) for kind in KINDS)
        lines.append(
            f"| {r['concurrency']} | {costs} | {r['v2_bytes_throughput_over_multipart']} | "
            f"{r['v2_bytes_throughput_over_raw']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, default=os.environ.get("MNIST_DIR"),
                   help="MNIST IDX folder (default $MNIST_DIR)")  # fmt: skip
    p.add_argument("--duration", type=float, default=5)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--repeats", type=int, default=3, help="rounds of every kind; the median")
    p.add_argument(
        "--count", type=int, default=2000, help="requests per kind and round, in process"
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    if args.data_dir is None:
        p.error("say where MNIST is: --data-dir DIR or MNIST_DIR")
    started = datetime.datetime.now(datetime.UTC)
    save(run(args), "v2", started, argv, args.out, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
