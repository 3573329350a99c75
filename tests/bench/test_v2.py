"""Smoke test of the /v2 benchmark: every request it sends is answered 200, and the ratios
come out. It asserts the shape of what it reports, never a timing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import v2
from tests.conftest import SeedRun
from tests.tools import require_program

pytestmark = pytest.mark.integration


def test_v2_bench_sends_valid_requests_and_reports_ratios(
    seed_store: SeedRun, tmp_path: Path
) -> None:
    require_program("wrk")
    out = tmp_path / "results"
    assert v2.main(["--store", str(seed_store.root), "--duration", "1", "--concurrency", "2",
                    "--repeats", "1", "--count", "20", "--out", str(out)]) == 0  # fmt: skip
    results = json.loads(next(out.glob("v2-*.json")).read_text())
    kinds = [r["request"] for r in results["runs"]]
    assert kinds == ["v1-multipart", "v1-raw", "v2-bytes", "v2-pixels"]
    for run in results["runs"]:
        assert run["requests_per_s"] > 0 and run["non_2xx"] == 0, run
    (ratio,) = results["ratios"]
    assert ratio["concurrency"] == 2 and ratio["v2_bytes_over_multipart"] > 0
    (in_process,) = results["in_process"]
    assert set(in_process["cpu_us_per_request"]) == set(kinds)
    assert all(cost > 0 for cost in in_process["cpu_us_per_request"].values())
    assert results["meta"]["command"].startswith("python bench/v2.py --store")
    assert "| v2-bytes | 2 |" in next(out.glob("v2-*.md")).read_text()
