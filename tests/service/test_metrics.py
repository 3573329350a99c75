"""Metrics, read from the registry before and after real requests."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.uploads import digit_png
from training.store import Store


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_prediction_is_counted_everywhere(
    tiny_store: Store, make_client: Callable[..., TestClient]
) -> None:
    client = make_client(tiny_store)
    ok = {"route": "/v1/predict", "method": "POST", "status": "200"}
    route = {"route": "/v1/predict", "method": "POST"}
    before = {
        "requests": sample("mnist_http_requests_total", **ok),
        "latency": sample("mnist_http_request_duration_seconds_count", **route),
        "forward": sample("mnist_inference_duration_seconds_count", stage="forward"),
        "preprocess": sample("mnist_inference_duration_seconds_count", stage="preprocess"),
        "decode": sample("mnist_inference_duration_seconds_count", stage="decode"),
        "confidence": sample("mnist_prediction_confidence_count"),
        "batch": sample("mnist_inference_batch_size_images_sum"),
    }  # fmt: skip
    digit = client.post("/v1/predict", files={"file": ("a.png", digit_png())}).json()["digit"]
    predicted = sample("mnist_predictions_total", digit=str(digit))
    client.post("/v1/predict", files={"file": ("a.png", digit_png())})
    assert sample("mnist_predictions_total", digit=str(digit)) == predicted + 1
    assert sample("mnist_http_requests_total", **ok) == before["requests"] + 2
    assert (
        sample("mnist_http_request_duration_seconds_count", route="/v1/predict", method="POST")
        == before["latency"] + 2
    )
    assert (
        sample("mnist_inference_duration_seconds_count", stage="forward") == before["forward"] + 2
    )
    assert (
        sample("mnist_inference_duration_seconds_count", stage="preprocess")
        == before["preprocess"] + 2
    )
    assert sample("mnist_inference_duration_seconds_count", stage="decode") == before["decode"] + 2
    assert sample("mnist_prediction_confidence_count") == before["confidence"] + 2
    assert sample("mnist_inference_batch_size_images_sum") == before["batch"] + 2  # fmt: skip


def test_batch_size_and_per_image_rejections(
    tiny_store: Store, make_client: Callable[..., TestClient]
) -> None:
    client = make_client(tiny_store)
    sizes = sample("mnist_inference_batch_size_images_bucket", le="4.0")
    undecodable = sample("mnist_rejected_requests_total", reason="undecodable_image")
    confidences = sample("mnist_prediction_confidence_count")
    files = [("files", (f"{i}.png", digit_png())) for i in range(3)] + [("files", ("x", b"no"))]
    answer = client.post("/v1/predict/batch", files=files)
    assert answer.status_code == 200
    digit = str(answer.json()["results"][0]["prediction"]["digit"])
    assert sample("mnist_inference_batch_size_images_bucket", le="4.0") == sizes + 1
    # Counted by the forward pass: three of this digit, three confidences.
    counted = {d: sample("mnist_predictions_total", digit=d) for d in map(str, range(10))}
    client.post("/v1/predict/batch", files=files[:3])
    after = {d: sample("mnist_predictions_total", digit=d) for d in map(str, range(10))}
    assert {d: after[d] - counted[d] for d in counted} == {
        d: 3.0 if d == digit else 0.0 for d in counted
    }
    assert sample("mnist_prediction_confidence_count") == confidences + 6
    assert sample("mnist_rejected_requests_total", reason="undecodable_image") == undecodable + 1


def test_rejections_are_counted_by_reason_and_route_template(
    tiny_store: Store, make_client: Callable[..., TestClient]
) -> None:
    client = make_client(tiny_store, max_body_bytes=2000)
    labels = {"route": "/v1/predict", "method": "POST", "status": "413"}
    too_large = sample("mnist_rejected_requests_total", reason="payload_too_large")
    requests = sample("mnist_http_requests_total", **labels)
    client.post("/v1/predict", content=b"\0" * 5000, headers={"content-type": "image/png"})
    assert sample("mnist_rejected_requests_total", reason="payload_too_large") == too_large + 1
    assert sample("mnist_http_requests_total", **labels) == requests + 1


def test_paths_never_become_labels(
    tiny_store: Store, make_client: Callable[..., TestClient]
) -> None:
    client = make_client(tiny_store)
    for i in range(20):
        client.get(f"/no/such/path/{i}")
        client.get(f"/v1/models/{i + 100}")
    text = client.get("/metrics").text
    assert "/no/such/path" not in text
    assert 'route="unmatched"' in text
    assert 'route="/v1/models/{version}"' in text
    assert "/v1/models/105" not in text


def test_served_model_gauges(tiny_store: Store, make_client: Callable[..., TestClient]) -> None:
    make_client(tiny_store)
    assert sample("mnist_model_version") == 1
    assert sample("mnist_model_test_accuracy") == 0.9
    assert sample("mnist_model_info", model="mnist", version="1") == 1


def test_metrics_endpoint_serves_the_text_format(
    tiny_store: Store, make_client: Callable[..., TestClient]
) -> None:
    response = make_client(tiny_store).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE mnist_http_requests_total counter" in response.text
