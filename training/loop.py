"""A compiled training loop over whole epochs held in memory, with Keras's progress bar.

`model.fit` on arrays pays per step for its data adapter, metrics and callbacks: about 4.5 s
per MNIST epoch at batch 128 on two cores, whatever `steps_per_execution`. One `tf.function`
that walks a few hundred batches of an epoch already in memory, then returns to Python only to
move the progress bar, takes about 2.5 s (see the note on issue 2). The optimiser is the
model's own, so its schedule, step count and weight average behave as under `fit`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

STEPS_PER_CALL = 64  # batches per graph call: Python's share is negligible beyond a few dozen
_SCORES = ["loss", "accuracy", "val_loss", "val_accuracy"]  # shown as given, not averaged


def progress_verbosity(verbose: int | str) -> int:
    """Keras's `verbose` (0 silent, 1 a progress bar redrawn in place, 2 one line per epoch)
    with "auto" made 1 on a terminal and 2 otherwise: Keras's own "auto" is always 1, and its
    bar redraws whenever the `posix` module is loaded, which filled log files with bars."""
    if verbose != "auto":
        return int(verbose)
    isatty = getattr(sys.stdout, "isatty", None)
    return 1 if isatty is not None and isatty() else 2


def train_epochs(
    model: keras.Model,
    epochs: Iterable[tuple[np.ndarray, np.ndarray]],
    total_epochs: int,
    batch_size: int,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    verbose: int | str = "auto",
) -> dict[str, list[float]]:
    """Train a compiled model on each epoch's (inputs, one-hot labels), already shuffled.

    Returns the history `fit` would: loss and accuracy per epoch, and val_loss and
    val_accuracy when `validation` is given. Ends, like `fit`, by copying the optimiser's
    weight average (if any) into the model. `verbose`: as `progress_verbosity` takes it.
    """
    verbose = progress_verbosity(verbose)
    model.optimizer.build(model.trainable_variables)
    run = _compiled_steps(model, batch_size)
    evaluate = _compiled_evaluation(model)
    history: dict[str, list[float]] = {}
    for epoch, (x, y) in enumerate(epochs):
        steps = math.ceil(len(x) / batch_size)
        if verbose:
            print(f"Epoch {epoch + 1}/{total_epochs}")
        bar = keras.utils.Progbar(steps, verbose=verbose, stateful_metrics=_SCORES)
        xs, ys = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
        loss_sum = correct = 0.0
        for first in range(0, steps, STEPS_PER_CALL):
            last = min(first + STEPS_PER_CALL, steps)
            batch_loss, batch_correct = run(xs, ys, tf.constant(first), tf.constant(last))
            loss_sum += float(batch_loss)
            correct += float(batch_correct)
            if last < steps:  # the last update, below, also carries the validation scores
                seen = last * batch_size
                bar.update(last, [("loss", loss_sum / seen), ("accuracy", correct / seen)])
        scores = {"loss": loss_sum / len(x), "accuracy": correct / len(x)}
        if validation is not None:
            val_loss, val_correct = evaluate(*validation)
            scores |= {
                "val_loss": float(val_loss) / len(validation[0]),
                "val_accuracy": float(val_correct) / len(validation[0]),
            }
        bar.update(steps, list(scores.items()), finalize=True)
        for key, value in scores.items():
            history.setdefault(key, []).append(value)
    model.optimizer.finalize_variable_values(model.trainable_variables)
    return history


def _compiled_steps(model: keras.Model, batch_size: int) -> Any:
    """Graph function: train on batches [first, last) of (x, y); summed loss and hits."""
    loss_fn = keras.losses.CategoricalCrossentropy(reduction="sum")
    optimizer = model.optimizer
    variables = model.trainable_variables

    @tf.function
    def run(x: tf.Tensor, y: tf.Tensor, first: tf.Tensor, last: tf.Tensor) -> Any:
        loss_sum = tf.constant(0.0)
        correct = tf.constant(0.0)
        for step in tf.range(first, last):
            xb = x[step * batch_size : (step + 1) * batch_size]
            yb = y[step * batch_size : (step + 1) * batch_size]
            with tf.GradientTape() as tape:
                probabilities = model(xb, training=True)
                total = loss_fn(yb, probabilities)
                mean = total / tf.cast(tf.shape(xb)[0], total.dtype)
            optimizer.apply_gradients(zip(tape.gradient(mean, variables), variables, strict=True))
            loss_sum += total
            correct += _hits(yb, probabilities)
        return loss_sum, correct

    return run


def _compiled_evaluation(model: keras.Model) -> Any:
    loss_fn = keras.losses.CategoricalCrossentropy(reduction="sum")

    @tf.function
    def evaluate(x: tf.Tensor, y: tf.Tensor) -> Any:
        probabilities = model(x, training=False)
        return loss_fn(y, probabilities), _hits(y, probabilities)

    return evaluate


def _hits(y: tf.Tensor, probabilities: tf.Tensor) -> tf.Tensor:
    same = tf.equal(tf.argmax(y, axis=1), tf.argmax(probabilities, axis=1))
    return tf.reduce_sum(tf.cast(same, tf.float32))
