"""Start-up time, memory and hot-reload latency of the real `mnist-serve` process.

Usage: python bench/serve_checks.py --store DIR [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.keras_files import publish_layers, random_layers  # noqa: E402
from tests.servers import Server, free_port, wait_for  # noqa: E402
from tests.service.test_server import Load, malformed_requests  # noqa: E402
from tests.uploads import png  # noqa: E402
from training.store import Store  # noqa: E402

BARE_APP = """
from fastapi import FastAPI
app = FastAPI()
@app.get("/readyz")
async def ready() -> dict:
    return {"status": "ready"}
"""


def start(
    cmd: list[str],
    log: Path,
    port: int,
    env: dict[str, str] | None = None,
    ready_path: str = "/readyz",
) -> tuple[Server, float]:
    """Start a server from the repository root; return it and the seconds from spawn to
    `ready_path` answering 200."""
    started = time.monotonic()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MNIST_")}
    full_env.update(env or {})
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=ROOT
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    wait_for(server, ready_path, timeout=120)
    return server, time.monotonic() - started


def stop(server: Server) -> None:
    server.process.terminate()
    server.process.wait(timeout=60)


def serve_cmd(store: Path, port: int, *flags: str) -> list[str]:
    return [sys.executable, "-m", "service.cli", "--store", str(store), "--port", str(port), *flags]


def startup(store: Path, runs: int, tmp: Path) -> dict:
    ours, bare, rss, bare_rss = [], [], [], []
    (tmp / "bare_app.py").write_text(BARE_APP)
    for _ in range(runs):
        port = free_port()
        server, seconds = start(serve_cmd(store, port), tmp / "serve.log", port)
        ours.append(seconds)
        rss.append(server.rss_bytes())
        stop(server)
        port = free_port()
        cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(tmp), "bare_app:app",
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
        server, seconds = start(cmd, tmp / "bare.log", port)
        bare.append(seconds)
        bare_rss.append(server.rss_bytes())
        stop(server)
    return {
        "ready_seconds_median": statistics.median(ours),
        "ready_seconds_max": max(ours),
        "bare_fastapi_ready_seconds_median": statistics.median(bare),
        "ready_ratio_to_bare": statistics.median(ours) / statistics.median(bare),
        "rss_mb_at_ready": statistics.median(rss) / 2**20,
        "bare_fastapi_rss_mb": statistics.median(bare_rss) / 2**20,
    }


def memory_under_traffic(store: Path, tmp: Path) -> dict:
    port = free_port()
    server, _ = start(serve_cmd(store, port), tmp / "mem.log", port)
    digit = np.zeros((28, 28), np.uint8)
    digit[5:23, 12:16] = 255
    with httpx.Client(base_url=server.url) as client:
        ready = server.rss_bytes()
        for _ in range(1000):
            client.post("/v1/predict", files={"file": ("d.png", png(digit), "image/png")})
        after_good = server.rss_bytes()
        statuses: dict[int, int] = {}
        for kind in malformed_requests(np.random.default_rng(0)):
            status = client.post("/v1/predict", **kind).status_code
            statuses[status] = statuses.get(status, 0) + 1
        after_bad = server.rss_bytes()
    stop(server)
    return {
        "rss_mb_ready": ready / 2**20,
        "rss_mb_after_1000_good": after_good / 2**20,
        "rss_mb_after_1000_malformed": after_bad / 2**20,
        "malformed_statuses": statuses,
    }


def reload_latency(store_root: Path, tmp: Path, poll: float, trials: int) -> dict:
    store = Store(store_root)
    port = free_port()
    server, _ = start(
        serve_cmd(store_root, port, "--poll-interval", str(poll)), tmp / "r.log", port
    )
    digit = png(np.eye(28, dtype=np.uint8) * 255)
    switches = []
    with Load(server.url, digit) as load:
        for seed in range(trials):
            version = publish_layers(store, random_layers(seed=100 + seed))
            moved = time.monotonic()
            store.set_alias("production", version)
            switches.append(load.wait_for_version(version, timeout=10 * poll) - moved)
            time.sleep(poll / 3)
    stop(server)
    statuses: dict[int, int] = {}
    for answer in load.answers:
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
    return {
        "poll_interval_seconds": poll,
        "switch_seconds": [round(s, 3) for s in switches],
        "switch_in_poll_intervals_max": max(switches) / poll,
        "requests_during_reloads": len(load.answers),
        "statuses": statuses,
        "client_errors": len(load.errors),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--poll", type=float, default=2.0)
    args = p.parse_args()
    if not Store(args.store).versions():
        subprocess.run(
            [sys.executable, "-m", "training.cli", "--quiet", "--store", str(args.store),
             "--promote", "production"],
            check=True,
        )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "store"
        subprocess.run(["cp", "-r", str(args.store), str(copy)], check=True)
        results = {
            "startup": startup(copy, args.runs, Path(tmp)),
            "memory": memory_under_traffic(copy, Path(tmp)),
            "reload": reload_latency(copy, Path(tmp), args.poll, trials=3),
        }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
