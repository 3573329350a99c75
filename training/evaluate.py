"""Test-set metrics from predicted probabilities: pure NumPy, no Keras."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from training.data import NUM_CLASSES


@dataclass(frozen=True)
class Evaluation:
    """What the manifest records about a model's performance on the official test set."""

    accuracy: float
    loss: float
    per_class_accuracy: list[float]
    confusion_matrix: list[list[int]]  # rows: true digit, columns: predicted digit
    test_samples: int

    def to_dict(self) -> dict[str, Any]:
        """The evaluation as plain JSON-ready data."""
        return asdict(self)


def evaluate(probabilities: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Accuracy, mean cross-entropy, per-class accuracy and confusion matrix."""
    labels = labels.astype(np.int64)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class_total = confusion.sum(axis=1)
    per_class = np.divide(
        np.diag(confusion), per_class_total, out=np.zeros(NUM_CLASSES), where=per_class_total > 0
    )
    # Same clipping as Keras's categorical cross-entropy, so the two losses agree.
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
    return Evaluation(
        accuracy=float((predicted == labels).mean()),
        loss=float(-np.log(picked).mean()),
        per_class_accuracy=[round(float(v), 6) for v in per_class],
        confusion_matrix=confusion.tolist(),
        test_samples=int(len(labels)),
    )
