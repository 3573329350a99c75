"""The pictures of a model card, written as PNGs: the training curves the course plots from
`history.history`, and the confusion matrix on the test set."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no display on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def plot_history(history: dict[str, list[float]], path: Path, title: str) -> None:
    """Loss and accuracy per epoch, training and validation, side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        epochs = range(1, len(history.get(metric, [])) + 1)
        ax.plot(epochs, history.get(metric, []), "o-", label=f"training {metric}")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "s-", label=f"validation {metric}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: list[list[int]], path: Path, title: str) -> None:
    """The (10, 10) confusion matrix (rows: true digit, columns: predicted) as a heat map
    of each row's share, the counts written in the cells that are not zero."""
    counts = np.asarray(matrix, dtype=np.int64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    image = ax.imshow(np.sqrt(shares), cmap="Blues", vmin=0, vmax=1)  # sqrt: errors visible
    for (row, col), count in np.ndenumerate(counts):
        if count:
            colour = "white" if shares[row, col] > 0.5 else "black"
            ax.text(col, row, str(count), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(len(counts)))
    ax.set_yticks(range(len(counts)))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the row (square root scale)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
