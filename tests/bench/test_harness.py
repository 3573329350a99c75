"""Smoke test of the benchmark harness: a few seconds, small counts, well-formed results.
It asserts the shape of what the harness reports, never a timing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import harness
from tests.conftest import SeedRun
from tests.tools import require_program

pytestmark = pytest.mark.integration


def test_harness_produces_well_formed_results(seed_store: SeedRun, tmp_path: Path) -> None:
    require_program("wrk")
    store = tmp_path / "store"
    shutil.copytree(seed_store.root, store)
    out = tmp_path / "results"
    assert harness.main(["--store", str(store), "--duration", "1", "--concurrency", "2",
                         "--workers", "1", "--skip-textbook", "--quick", "--repeats", "2",
                         "--out", str(out)]) == 0  # fmt: skip
    results = json.loads(next(out.glob("harness-*.json")).read_text())
    runs = {(r["server"], r["request"]) for r in results["runs"]}
    assert runs == {("service", "multipart"), ("service", "raw"), ("service", "batch64"),
                    ("noop", "multipart"), ("noop", "raw")}  # fmt: skip
    for run in results["runs"]:
        assert run["requests_per_s"] > 0 and run["non_2xx"] == 0
        assert 0 < run["p50_ms"] <= run["p99_ms"]
        low, high = run["repeats_requests_per_s"]
        assert low <= run["requests_per_s"] <= high  # the median of the repeats
    assert all(len(outputs) == 2 for outputs in results["raw"].values())
    assert {r["request"] for r in results["ratios"]} == {"multipart", "raw"}
    assert all(r["service_over_noop"] > 0 for r in results["ratios"])
    for r in results["ratios"]:  # one ratio per interleaved round, their median reported
        assert len(r["service_over_noop_rounds"]) == 2
        assert r["service_over_noop_round_median"] in r["service_over_noop_rounds"]
    assert results["startup"]["ready_seconds_median"] > 0
    assert results["meta"]["command"].startswith("python bench/harness.py --store")
    assert "| service | batch64 |" in next(out.glob("harness-*.md")).read_text()


def test_wrk_output_parsing() -> None:
    sample = (
        "  Latency Distribution\n     50%    1.20ms\n     75%    2.00ms\n"
        "     90%    3.00ms\n     99%  850.00us\n  Non-2xx or 3xx responses: 3\n"
        "Requests/sec:   1234.56\n"
    )
    assert harness.parse_wrk(sample) == {
        "requests_per_s": 1234.56, "p50_ms": 1.2, "p99_ms": 0.85, "non_2xx": 3,
        "socket_errors": 0,
    }  # fmt: skip
