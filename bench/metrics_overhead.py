"""What the Prometheus metrics add to the cost of one predict request.

Two numbers from one run, on one core each: (a) the time the metric updates of one request
take (exactly the calls the service makes for a single-image predict, in multiprocess mode
as `mnist-serve` runs them), and (b) the cost of one whole request, measured with wrk as
1/throughput of one worker at concurrency 1. Their ratio is the overhead.

Usage: python bench/metrics_overhead.py --store DIR [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import lua_script, wrk  # noqa: E402
from tests.servers import serve  # noqa: E402
from tests.uploads import png  # noqa: E402

PER_REQUEST = """
IN_FLIGHT.inc()
INFERENCE_LATENCY.labels(stage="preprocess").observe(0.0002)
INFERENCE_LATENCY.labels(stage="forward").observe(0.00005)
BATCH_SIZE.observe(1)
record_predictions([7], [0.998])
IN_FLIGHT.dec()
REQUESTS.labels(route="/v1/predict", method="POST", status="200").inc()
REQUEST_LATENCY.labels(route="/v1/predict", method="POST").observe(0.001)
"""


def metric_cost_seconds(number: int = 20000) -> float:
    """Seconds per request spent in metric updates (multiprocess mode, like production)."""
    folder = tempfile.mkdtemp(prefix="bench-metrics-")
    code = (
        "import timeit\n"
        "from service.metrics import *\n"
        f"print(min(timeit.repeat({PER_REQUEST!r}, globals=globals(), number={number}, "
        f"repeat=5)) / {number})\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    shutil.rmtree(folder)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return float(out.stdout)


def request_cost_seconds(store: Path, seconds: int, tmp: Path) -> tuple[float, str]:
    """Seconds per request of one worker at concurrency 1, from wrk's throughput."""
    digit = np.zeros((28, 28), np.uint8)
    digit[5:23, 12:16] = 255
    script = lua_script(tmp, "raw", png(digit), "image/png")
    with serve(store, tmp) as server:
        stats, out = wrk(f"{server.url}/v1/predict", script, concurrency=1, duration=seconds)
    return 1 / stats["requests_per_s"], out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--seconds", type=int, default=10)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        request, wrk_output = request_cost_seconds(args.store, args.seconds, Path(tmp))
    metrics = metric_cost_seconds()
    print(wrk_output)
    print(
        json.dumps(
            {
                "request_cost_us": round(request * 1e6, 1),
                "metrics_cost_us": round(metrics * 1e6, 2),
                "metrics_share_of_request": round(metrics / request, 4),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
