"""Write a trained model's artifacts into a staging folder and build its manifest."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np

from training.data import Dataset
from training.evaluate import Evaluation
from training.plots import plot_history
from training.recipes import Recipe


@dataclass(frozen=True)
class TrainingRun:
    """What one training run produced, ready to be published."""

    model: keras.Model
    recipe: Recipe
    history: dict[str, list[float]]
    evaluation: Evaluation
    dataset: Dataset
    duration_seconds: float
    train_samples: int  # the images fitted on: all of the training set, or --train-limit


def write_artifacts(run: TrainingRun, folder: Path, *, savedmodel: bool = True) -> None:
    """model.keras, history.json, training-curves.png and (optionally) a SavedModel."""
    run.model.save(folder / "model.keras")
    (folder / "history.json").write_text(json.dumps(run.history, indent=2) + "\n")
    title = f"{run.recipe.name} recipe: test accuracy {run.evaluation.accuracy:.4f}"
    plot_history(run.history, folder / "training-curves.png", title)
    if savedmodel:
        # TensorFlow Serving reads <base>/<version>/saved_model.pb, so it can serve the store
        # as it is; our own service reads model.keras and ignores these files.
        run.model.export(str(folder), format="tf_saved_model", verbose=False)


def build_manifest(run: TrainingRun) -> dict[str, Any]:
    """The manifest body; the store adds name, version and file checksums on commit."""
    import tensorflow as tf

    data = run.dataset
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipe": run.recipe.to_dict(),
        "model": {
            "architecture": "784-512(relu)-10(softmax)",
            "parameters": int(run.model.count_params()),
            "input": {"shape": [784], "dtype": "float32", "range": [0.0, 1.0]},
            "output": {"shape": [10], "meaning": "softmax probabilities of digits 0-9"},
        },
        "data": {
            "source": data.source,
            "fingerprint": data.fingerprint,
            "files": data.files,
            "train_samples": run.train_samples,
            "test_samples": int(len(data.x_test)),
        },
        "metrics": run.evaluation.to_dict(),
        "training": {
            "duration_seconds": round(run.duration_seconds, 2),
            "epochs": len(run.history.get("loss", [])),
            "final": {k: v[-1] for k, v in run.history.items() if v},
        },
        "libraries": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
    }
