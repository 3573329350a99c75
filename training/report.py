"""Make a training run visible to Prometheus: push to a Pushgateway, or write a text file.

A CI retrain is a batch job, so it cannot be scraped; the Pushgateway is the Prometheus way
for those. Without one, the same metrics go beside the model in the text format (for
node_exporter's textfile collector, or for people).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

JOB = "mnist-train"
TEXTFILE = "training-metrics.prom"


def training_registry(
    name: str, version: int | None, recipe: str, accuracy: float, loss: float, seconds: float
) -> CollectorRegistry:
    """The final metrics of one run, in a registry of their own."""
    registry = CollectorRegistry()
    labels = {"model": name, "recipe": recipe}

    def gauge(metric: str, doc: str, value: float) -> None:
        Gauge(metric, doc, list(labels), registry=registry).labels(**labels).set(value)

    gauge("mnist_training_test_accuracy", "Test-set accuracy of the trained model.", accuracy)
    gauge("mnist_training_test_loss", "Test-set cross-entropy of the trained model.", loss)
    gauge("mnist_training_duration_seconds", "Wall time of fitting.", seconds)
    gauge("mnist_training_published_version", "Version published (0: refused).", version or 0)
    return registry


def push(registry: CollectorRegistry, gateway: str) -> None:
    """Replace this job's metrics on the Pushgateway at `gateway` (host:port or URL)."""
    push_to_gateway(gateway, job=JOB, registry=registry, timeout=10)


def write_textfile(registry: CollectorRegistry, folder: Path) -> Path:
    """Write the metrics in the Prometheus text format into `folder`."""
    path = folder / TEXTFILE
    write_to_textfile(str(path), registry)
    return path
