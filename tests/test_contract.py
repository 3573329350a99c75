"""The contract between the two deployables: what training publishes, the service serves.

Trains a tiny model with the real training CLI, then serves that store with the real app.
If either side drifts from models/README.md, this fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from service.store import FolderStore
from tests.uploads import png
from training.data import load_idx_dir

pytestmark = pytest.mark.integration


def test_trained_and_published_model_is_served(mnist_dir: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "training.cli", "--quiet", "--data-dir", str(mnist_dir),
         "--store", str(tmp_path), "--train-limit", "3000", "--epochs", "2",
         "--min-accuracy", "0.5", "--promote", "production", "--real-world", "10"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]

    reader = FolderStore(tmp_path, "mnist")
    manifest = reader.manifest(1)
    assert reader.versions() == [1] and reader.aliases() == {"production": 1}
    assert reader.fetch(1).folder == tmp_path / "mnist" / "1"
    for documented in ("model.keras", "history.json", "training-curves.png", "saved_model.pb"):
        assert documented in manifest["files"]
    for key in ("version", "created_at", "recipe", "data", "metrics", "libraries", "files"):
        assert key in manifest
    assert manifest["data"]["train_samples"] == 3000  # what was fitted, --train-limit
    assert manifest["real_world"]["uploads_per_kind"] == 10
    assert 0 <= min(manifest["real_world"]["accuracy"].values()) <= 1
    assert manifest["gate"]["compared_with"] is None  # production was not set

    data = load_idx_dir(mnist_dir)
    with TestClient(create_app(Settings(store=tmp_path))) as client:
        assert client.get("/readyz").json()["version"] == 1
        answers = [
            client.post("/v1/predict", files={"file": ("d.png", png(d), "image/png")}).json()
            for d in data.x_test[:200]
        ]
    assert {a["version"] for a in answers} == {1}
    accuracy = sum(a["digit"] == y for a, y in zip(answers, data.y_test[:200], strict=True)) / 200
    assert accuracy > 0.8
