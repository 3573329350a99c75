"""The course's network, and how a recipe compiles and fits it.

Imports Keras, so only the training job loads this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training.augment import distort, elastic_bank
from training.data import IMAGE_SIDE, NUM_CLASSES
from training.degrade import degrade
from training.loop import progress_verbosity, train_epochs
from training.recipes import Augmentation, Recipe

INPUT_SIZE = IMAGE_SIDE * IMAGE_SIDE
HIDDEN_UNITS = 512


def seed_everything(seed: int) -> None:
    """Make a run repeatable: call before `build_model`, whose initial weights it fixes."""
    keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow generators
    # Without this, TensorFlow's CPU kernels may add up partial sums in any order.
    tf.config.experimental.enable_op_determinism()


def build_model() -> keras.Sequential:
    """784 -> Dense(512, relu) -> Dense(10, softmax): 407,050 parameters."""
    return keras.Sequential(
        [
            keras.Input(shape=(INPUT_SIZE,)),
            keras.layers.Dense(HIDDEN_UNITS, activation="relu"),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="mnist",
    )


def to_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 784) in [0, 1]."""
    return images.reshape(len(images), INPUT_SIZE).astype("float32") / 255


def compile_model(model: keras.Model, recipe: Recipe, steps: int) -> None:
    """Attach the recipe's optimiser and schedule, categorical cross-entropy and accuracy."""
    model.compile(
        optimizer=_optimizer(recipe, steps),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )


def _optimizer(recipe: Recipe, steps: int) -> keras.optimizers.Optimizer:
    lr: Any = recipe.learning_rate
    if recipe.schedule == "warmup_cosine":
        warmup = max(1, int(steps * recipe.warmup_fraction))
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=steps - warmup, warmup_target=recipe.learning_rate, warmup_steps=warmup
        )
    elif recipe.schedule != "constant":
        raise ValueError(f"unknown schedule {recipe.schedule!r}")
    ema = {"use_ema": True, "ema_momentum": recipe.ema_momentum} if recipe.ema_momentum else {}
    optimizers = {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam}
    if recipe.optimizer not in optimizers:
        raise ValueError(f"unknown optimizer {recipe.optimizer!r}")
    return optimizers[recipe.optimizer](learning_rate=lr, **ema)


def distorted_share(aug: Augmentation, epoch: int, epochs: int) -> float:
    """Fraction of the images distorted in `epoch`: constant, or moving linearly from
    `probability` to `final_probability`, so the last epochs see mostly clean digits."""
    if aug.final_probability is None or epochs < 2:
        return aug.probability
    return aug.probability + (aug.final_probability - aug.probability) * epoch / (epochs - 1)


def augmented_epochs(
    images: np.ndarray, onehot: np.ndarray, recipe: Recipe, chunk: int = 256
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per epoch, a shuffled and freshly distorted float copy of `images` with their one-hot
    labels in the same order, prepared one epoch ahead in a background thread (NumPy
    releases the GIL, so it overlaps with the training step). Chunks of 256 images keep
    NumPy's temporaries small enough to be reused rather than mapped afresh: 1.9 s per
    epoch instead of 3.2 s.
    """
    aug = recipe.augmentation
    bank = elastic_bank(aug, np.random.default_rng(recipe.seed)) if aug.elastic_alpha else None

    def one_epoch(epoch: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([recipe.seed, epoch])
        order = rng.permutation(len(images))
        source = images[order]
        out = source.reshape(len(source), -1).astype(np.float32) / 255
        chosen = np.flatnonzero(
            rng.random(len(source)) < distorted_share(aug, epoch, recipe.epochs)
        )
        for i in range(0, len(chosen), chunk):
            rows = chosen[i : i + chunk]
            out[rows] = distort(source[rows].astype(np.float32) / 255, aug, rng, bank)
        degraded = np.flatnonzero(rng.random(len(source)) < aug.degraded)
        for i in range(0, len(degraded), chunk):
            rows = degraded[i : i + chunk]
            out[rows] = degrade(out[rows].reshape(-1, 28, 28), aug, rng).reshape(len(rows), -1)
        return out, onehot[order]

    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(one_epoch, 0)
        for epoch in range(recipe.epochs):
            current = upcoming.result()
            if epoch + 1 < recipe.epochs:
                upcoming = pool.submit(one_epoch, epoch + 1)
            yield current


def fit(
    model: keras.Model, x: np.ndarray, y: np.ndarray, recipe: Recipe, verbose: int | str = "auto"
) -> dict[str, list[float]]:
    """Train on uint8 images and integer labels; returns the per-epoch history.

    Without augmentation this is the course's `model.fit`. With it, each epoch is a new draw
    of distorted digits, trained on by the compiled loop of `training.loop`. `verbose`: as
    `training.loop.progress_verbosity` takes it ("auto": a bar on a terminal, else a line).
    """
    order = np.random.default_rng(recipe.seed).permutation(len(x))
    n_val = int(len(x) * recipe.validation_split)
    val, train = order[:n_val], order[n_val:]
    y_onehot = keras.utils.to_categorical(y, NUM_CLASSES)
    steps = recipe.epochs * math.ceil(len(train) / recipe.batch_size)
    compile_model(model, recipe, steps)
    validation = (to_inputs(x[val]), y_onehot[val]) if n_val else None
    verbose = progress_verbosity(verbose)
    if not recipe.augmentation.enabled:
        history = model.fit(
            to_inputs(x[train]),
            y_onehot[train],
            epochs=recipe.epochs,
            batch_size=recipe.batch_size,
            validation_data=validation,
            verbose=verbose,
        )
        return _plain(history.history)
    return train_epochs(
        model,
        augmented_epochs(x[train], y_onehot[train], recipe),
        recipe.epochs,
        recipe.batch_size,
        validation,
        verbose,
    )


def _plain(history: dict[str, list[float]]) -> dict[str, list[float]]:
    return {key: [float(v) for v in values] for key, values in history.items()}
