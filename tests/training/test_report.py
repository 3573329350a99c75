"""Training metrics: written in the text format, or pushed to a real Pushgateway."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import free_port, helper_server
from tests.tools import require_program
from training.report import push, training_registry, write_textfile


def values(text: str) -> dict[str, float]:
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("mnist_training") and s.labels.get("recipe") == "best"
    }


def test_textfile_holds_the_final_metrics(tmp_path: Path) -> None:
    registry = training_registry("mnist", 4, "best", 0.9912, 0.031, 187.5)
    path = write_textfile(registry, tmp_path)
    assert path.name == "training-metrics.prom"
    assert values(path.read_text()) == {
        "mnist_training_test_accuracy": 0.9912,
        "mnist_training_test_loss": 0.031,
        "mnist_training_duration_seconds": 187.5,
        "mnist_training_published_version": 4.0,
    }


def test_refused_run_reports_version_zero(tmp_path: Path) -> None:
    registry = training_registry("mnist", None, "best", 0.5, 2.0, 1.0)
    assert (
        values(write_textfile(registry, tmp_path).read_text())["mnist_training_published_version"]
        == 0.0
    )


@pytest.mark.integration
def test_push_reaches_a_real_pushgateway(tmp_path: Path) -> None:
    binary = require_program("prometheus-pushgateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.interval=0"]
    with helper_server(cmd, f"{url}/-/ready", tmp_path / "pushgateway.log"):
        push(training_registry("mnist", 7, "best", 0.9905, 0.04, 200.0), f"127.0.0.1:{port}")
        scraped = httpx.get(f"{url}/metrics").text
    got = values(scraped)
    assert got["mnist_training_test_accuracy"] == 0.9905
    assert got["mnist_training_published_version"] == 7.0
    assert 'job="mnist-train"' in scraped
