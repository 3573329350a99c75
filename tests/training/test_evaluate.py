"""Test-set metrics computed from probabilities."""

from __future__ import annotations

import math

import numpy as np

from training.evaluate import evaluate


def test_accuracy_confusion_and_per_class() -> None:
    labels = np.array([0, 0, 1, 2])
    probabilities = np.full((4, 10), 0.01)
    probabilities[[0, 1, 2, 3], [0, 1, 1, 2]] = 0.91  # one 0 is taken for a 1
    result = evaluate(probabilities, labels)
    assert result.accuracy == 0.75
    assert result.confusion_matrix[0][:3] == [1, 1, 0]
    assert result.confusion_matrix[1][1] == 1 and result.confusion_matrix[2][2] == 1
    assert result.per_class_accuracy[:3] == [0.5, 1.0, 1.0]
    assert result.per_class_accuracy[3] == 0.0  # no samples of digit 3
    assert result.test_samples == 4


def test_loss_is_mean_cross_entropy_of_the_true_class() -> None:
    labels = np.array([3, 7])
    probabilities = np.full((2, 10), 0.05)
    probabilities[0, 3], probabilities[1, 7] = 0.5, 0.25
    expected = -(math.log(0.5) + math.log(0.25)) / 2
    assert math.isclose(evaluate(probabilities, labels).loss, expected, rel_tol=1e-9)


def test_zero_probability_is_clipped_not_infinite() -> None:
    probabilities = np.zeros((1, 10))
    probabilities[0, 1] = 1.0
    assert math.isclose(evaluate(probabilities, np.array([0])).loss, -math.log(1e-7))
