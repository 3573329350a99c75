"""The compiled training loop: it learns, it is repeatable, and it reports like `fit`."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import keras
import numpy as np
import pytest

from training.loop import STEPS_PER_CALL, progress_verbosity, train_epochs
from training.model import build_model, compile_model, seed_everything
from training.recipes import Recipe


def separable(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ten blobs in 784 dimensions: class k lights up pixels 70k..70k+69."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    x = rng.random((n, 784), dtype=np.float32) * 0.3
    for k in range(10):
        x[labels == k, 70 * k : 70 * k + 70] += 0.7
    return x, keras.utils.to_categorical(labels, 10)


def epochs_of(x: np.ndarray, y: np.ndarray, count: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for epoch in range(count):
        order = np.random.default_rng(epoch).permutation(len(x))
        yield x[order], y[order]


def trained(recipe: Recipe, epochs: int = 3, n: int = 3000) -> tuple[keras.Model, dict]:
    seed_everything(7)
    model = build_model()
    # More batches than one graph call takes, and a last batch that is not full.
    assert n / recipe.batch_size > STEPS_PER_CALL
    compile_model(model, recipe, steps=epochs * -(-n // recipe.batch_size))
    x, y = separable(n)
    history = train_epochs(
        model, epochs_of(x, y, epochs), epochs, recipe.batch_size, separable(500, 1), verbose=0
    )
    return model, history


def test_learns_and_reports_what_fit_reports() -> None:
    recipe = Recipe(name="t", optimizer="adam", batch_size=32)
    model, history = trained(recipe)
    assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(values) == 3 for values in history.values())
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.95
    x, y = separable(500, 2)
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    assert (predicted == y.argmax(axis=1)).mean() > 0.95
    assert int(model.optimizer.iterations.numpy()) == 3 * -(-3000 // 32)


def test_same_seed_same_weights() -> None:
    recipe = Recipe(name="t", optimizer="adam", batch_size=32)
    first, _ = trained(recipe, epochs=1)
    second, _ = trained(recipe, epochs=1)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_weight_average_replaces_the_weights_at_the_end() -> None:
    """The average does not change the path of training (same seed, same raw weights), so
    the weights differ from a run without it only if the average was copied in at the end."""
    plain, _ = trained(Recipe(name="t", optimizer="adam", batch_size=32))
    averaged, _ = trained(Recipe(name="t", optimizer="adam", batch_size=32, ema_momentum=0.99))
    assert not np.allclose(plain.get_weights()[0], averaged.get_weights()[0])
    x, y = separable(500, 2)
    predicted = averaged.predict(x, verbose=0).argmax(axis=1)
    assert (predicted == y.argmax(axis=1)).mean() > 0.95


def test_progress_bar_prints_epochs_and_scores(capsys: pytest.CaptureFixture[str]) -> None:
    seed_everything(7)
    model = build_model()
    recipe = Recipe(name="t", optimizer="adam", batch_size=256)
    compile_model(model, recipe, steps=4)
    x, y = separable(512)
    train_epochs(model, epochs_of(x, y, 2), 2, 256, separable(64, 1), verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert out.count("val_accuracy") == 2


def test_auto_progress_is_one_line_per_epoch_off_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A log file gets each epoch's line once, not a bar redrawn with backspaces and \\r."""
    seed_everything(7)
    model = build_model()
    recipe = Recipe(name="t", optimizer="adam", batch_size=32)
    compile_model(model, recipe, steps=2 * -(-3000 // 32))
    x, y = separable(3000)  # several graph calls an epoch: several bar updates on a terminal
    train_epochs(model, epochs_of(x, y, 2), 2, 32, separable(64, 1), verbose="auto")
    out = capsys.readouterr().out
    assert "\r" not in out and "\b" not in out
    assert [line.split(" - ")[0].strip() for line in out.splitlines()] == [
        "Epoch 1/2", "94/94", "Epoch 2/2", "94/94"
    ]  # fmt: skip


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_progress_is_the_redrawn_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert progress_verbosity("auto") == 1
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert progress_verbosity("auto") == 2
    monkeypatch.setattr(sys, "stdout", None)  # pythonw, or a closed stream: no terminal
    assert progress_verbosity("auto") == 2
    assert [progress_verbosity(v) for v in (0, 1, 2, "1")] == [0, 1, 2, 1]
