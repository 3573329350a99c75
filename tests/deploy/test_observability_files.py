"""The shipped Prometheus and Grafana files: valid, tested, and naming real metrics."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from prometheus_client import REGISTRY

import service.metrics  # noqa: F401  (registers the metrics)
import training.report
from tests.conftest import REPO
from tests.tools import require_program

PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "mnist.json"
METRIC_NAME = re.compile(r"\b(mnist_[a-z0-9_]+)\b")


def exported_names() -> set[str]:
    """Every sample name the service and the training job expose."""
    names = {s.name for family in REGISTRY.collect() for s in family.samples}
    names |= {f.name for f in REGISTRY.collect()}
    registry = training.report.training_registry("mnist", 1, "seed", 0.9, 0.1, 1.0)
    names |= {s.name for family in registry.collect() for s in family.samples}
    # Histograms expose _bucket/_count/_sum and counters _total only once observed.
    for family in REGISTRY.collect():
        if family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def test_dashboard_parses_and_covers_what_operators_need() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("traffic", "error", "latency", "digit", "confidence", "version"):
        assert topic in titles
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_every_dashboard_query_names_an_exported_metric() -> None:
    exported = exported_names()
    queries = dashboard_queries()
    assert queries
    for expr in queries:
        names = set(METRIC_NAME.findall(expr))
        assert names, expr
        assert names <= exported, f"{expr}: unknown {names - exported}"


def test_every_alert_names_an_exported_metric_or_recording_rule() -> None:
    text = (PROMETHEUS / "alerts.yml").read_text()
    names = set(METRIC_NAME.findall(text))  # recording rules are named mnist:..., not matched
    assert names <= exported_names(), names - exported_names()


@pytest.mark.parametrize(
    "args",
    [
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ],
)
def test_promtool(args: list[str]) -> None:
    promtool = require_program("promtool")
    proc = subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_grafana_provisioning_points_at_the_dashboard_folder() -> None:
    provider = (REPO / "deploy/grafana/provisioning/dashboards/dashboards.yml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider
    datasource = (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    assert "uid: prometheus" in datasource
    assert all(
        t["datasource"]["uid"] == "prometheus"
        for p in json.loads(DASHBOARD.read_text())["panels"]
        for t in p["targets"]
    )


def test_metrics_names_follow_conventions() -> None:
    for family in REGISTRY.collect():
        if not family.name.startswith("mnist_"):
            continue
        if family.type == "histogram":
            assert family.name.endswith(("_seconds", "_images", "_confidence")), family.name
        assert not family.name.endswith("_total"), family.name  # the client adds it
