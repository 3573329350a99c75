"""End to end: two workers, a real Prometheus server scraping them, queries on its API."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SeedRun
from tests.servers import free_port, helper_server, requests_by_worker, serve
from tests.tools import require_program
from tests.uploads import png
from training.data import load_idx_dir

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def prometheus(target: str, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus on loopback scraping `target` every second; yields its URL."""
    binary = require_program("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: mnist-api\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    url = f"http://127.0.0.1:{port}"
    cmd = [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
           f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    with helper_server(cmd, f"{url}/-/ready", tmp_path / "prometheus.log"):
        yield url


def query(url: str, promql: str) -> dict[str, float]:
    """Instant query; {label-set repr: value}."""
    body = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert body["status"] == "success", body
    return {
        ",".join(f"{k}={v}" for k, v in sorted(r["metric"].items())): float(r["value"][1])
        for r in body["data"]["result"]
    }


def wait_for_value(url: str, promql: str, expected: float, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(query(url, promql).values()) == [expected]:
            return
        time.sleep(0.5)
    raise AssertionError(f"{promql} never reached {expected}: {query(url, promql)}")


def test_prometheus_sees_every_worker_and_every_request(
    seed_store: SeedRun, mnist_dir: Path, tmp_path: Path
) -> None:
    digits = load_idx_dir(mnist_dir).x_test[:60]
    metrics_dir = tmp_path / "metrics"
    flags = ("--workers", "2", "--metrics-dir", str(metrics_dir))
    with serve(seed_store.root, tmp_path, *flags) as server:
        target = server.url.removeprefix("http://")
        with prometheus(target, tmp_path) as prom:
            accepted: Counter[int] = Counter()
            statuses: Counter[int] = Counter()
            for digit in digits:
                # A new connection each time, so both workers take a share.
                r = httpx.post(f"{server.url}/v1/predict", files={"file": ("d.png", png(digit))})
                statuses[r.status_code] += 1
                accepted[r.json()["digit"]] += 1
            for _ in range(15):
                r = httpx.post(f"{server.url}/v1/predict", content=b"text",
                               headers={"content-type": "text/plain"})  # fmt: skip
                statuses[r.status_code] += 1
            for _ in range(5):
                r = httpx.post(f"{server.url}/v1/predict", files={"wrong": ("d.png", b"x")})
                statuses[r.status_code] += 1
            assert statuses == {200: 60, 415: 15, 422: 5}

            total = 'sum(mnist_http_requests_total{route="/v1/predict"})'
            wait_for_value(prom, total, 80)
            by_status = query(
                prom, 'sum by (status) (mnist_http_requests_total{route="/v1/predict"})'
            )
            by_digit = query(prom, "sum by (digit) (mnist_predictions_total)")
            version = query(prom, "max(mnist_model_version)")
            rejected = query(prom, "sum by (reason) (mnist_rejected_requests_total)")
            workers = httpx.get(f"{server.url}/metrics").text
            by_worker = requests_by_worker(metrics_dir)
    assert len(by_worker) == 2 and all(by_worker.values())  # both answered, each counted
    assert by_status == {"status=200": 60, "status=415": 15, "status=422": 5}
    # Every digit's series exists from the start (at 0 until predicted).
    assert by_digit == {f"digit={d}": float(accepted[d]) for d in range(10)}
    assert sum(by_digit.values()) == 60
    assert version == {"": 1.0}
    assert rejected == {"reason=unsupported_media_type": 15, "reason=missing_image": 5}
    assert 'mnist_model_info{model="mnist",version="1"} 1.0' in workers
