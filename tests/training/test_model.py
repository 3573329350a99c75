"""The network and the epochs of distorted digits that `fit` feeds the training loop."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from training.model import augmented_epochs, build_model, fit, seed_everything
from training.recipes import Augmentation, Recipe


def test_the_course_network() -> None:
    model = build_model()
    assert [layer.units for layer in model.layers] == [512, 10]
    assert model.count_params() == 407_050


def test_each_epoch_is_shuffled_with_its_labels_kept_alongside() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 600)
    # Each image's first pixel is its label, so a label that left its image shows.
    images = np.zeros((600, 28, 28), np.uint8)
    images[:, 0, 0] = labels * 20
    recipe = Recipe(name="t", epochs=2, augmentation=Augmentation(shear=0.1, probability=0.0))
    epochs = list(augmented_epochs(images, keras.utils.to_categorical(labels, 10), recipe))
    assert len(epochs) == 2
    for x, y in epochs:
        assert x.shape == (600, 784) and x.dtype == np.float32 and y.shape == (600, 10)
        np.testing.assert_allclose(x[:, 0] * 255 / 20, y.argmax(axis=1), atol=1e-4)
    assert not np.array_equal(epochs[0][1], epochs[1][1])  # a new order every epoch


def test_distorted_share_of_each_epoch() -> None:
    images = np.zeros((1000, 28, 28), np.uint8)
    images[:, 6:22, 12:16] = 255
    onehot = keras.utils.to_categorical(np.ones(1000, np.int64), 10)
    aug = Augmentation(rotation_degrees=20.0, probability=1.0, final_probability=0.0)
    first, last = augmented_epochs(images, onehot, Recipe(name="t", epochs=2, augmentation=aug))
    clean = images.reshape(1000, 784).astype(np.float32) / 255
    assert not np.isclose(first[0], clean).all(axis=1).any()  # every image distorted
    np.testing.assert_array_equal(last[0], clean)  # none


def test_the_courses_fit_prints_one_line_per_epoch_off_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The seed recipe trains with Keras's own `model.fit`: its "auto" would redraw a bar
    with \\r and backspaces into a log file (the compose trainer's, make run's)."""
    seed_everything(1)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (600, 28, 28), dtype=np.uint8)
    history = fit(build_model(), x, rng.integers(0, 10, 600), Recipe(name="t", epochs=2))
    out = capsys.readouterr().out
    assert len(history["loss"]) == 2
    assert "\r" not in out and "\b" not in out and "\x1b" not in out
    assert out.count("Epoch ") == 2 and out.count("val_accuracy") == 2
