"""What real uploads look like after preprocessing, applied to training digits.

The service turns a phone photo, a pen drawing or an 8x8 scan into a 28x28 sample the MNIST
way, but what it gets is not MNIST: strokes a pixel thicker or thinner than the writer's
(pens, markers, `imaging.mnist.normalise_strokes`), softer edges (camera blur, JPEG,
shrinking by the client) and digits seen at low resolution (a 13 px digit in a 28x28
thumbnail, the UCI set's 8x8 scans) then enlarged. Each degraded image gets one of these,
vectorised over the batch; every result has its strokes at full intensity again, as the
service's samples do.
"""

from __future__ import annotations

import functools

import numpy as np

from training.augment import SIDE, gaussian_matrix
from training.recipes import Augmentation

EFFECTS = ("thicker", "thinner", "blur", "low_resolution")


def degrade(images: np.ndarray, aug: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """A copy of (B, 28, 28) float32 images in [0, 1], each with one effect drawn at
    random: strokes a pixel thicker or thinner (a 2x2 maximum or minimum filter), a
    Gaussian blur of sigma up to `aug.blur_sigma` pixels, or a round trip through a
    k x k image, k from `aug.low_resolution` to 16 (area averaging down, bilinear up)."""
    out = images.astype(np.float32, copy=True)
    effect = rng.integers(0, len(EFFECTS), len(out))
    for index, name in enumerate(EFFECTS):
        chosen = np.flatnonzero(effect == index)
        if not len(chosen):
            continue
        if name == "thicker":
            out[chosen] = _filter_2x2(out[chosen], np.maximum)
        elif name == "thinner":
            thinned = _filter_2x2(out[chosen], np.minimum)
            kept = thinned.sum(axis=(1, 2)) > 0.35 * out[chosen].sum(axis=(1, 2))
            out[chosen[kept]] = thinned[kept]  # a digit must not vanish
        elif name == "blur":
            sigmas = np.round(rng.uniform(0.5, aug.blur_sigma, len(chosen)), 1)
            for sigma in np.unique(sigmas):
                g = gaussian_matrix(float(sigma))
                group = chosen[sigmas == sigma]
                out[group] = g @ out[group] @ g.T
        else:
            sizes = rng.integers(aug.low_resolution, 17, len(chosen))
            for size in np.unique(sizes):
                down, up = _resampling(int(size))
                group = chosen[sizes == size]
                out[group] = up @ (down @ out[group] @ down.T) @ up.T
    peaks = out.reshape(len(out), -1).max(axis=1)
    out /= np.maximum(peaks, 1e-6)[:, None, None]
    return np.clip(out, 0.0, 1.0, out=out)


def _filter_2x2(images: np.ndarray, pick: np.ufunc) -> np.ndarray:
    """Each pixel with its right, lower and lower-right neighbours combined by `pick`."""
    padded = np.pad(images, ((0, 0), (0, 1), (0, 1)))
    return pick.reduce(
        [padded[:, :-1, :-1], padded[:, 1:, :-1], padded[:, :-1, 1:], padded[:, 1:, 1:]]
    )


@functools.cache
def _resampling(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(down, up): `down @ X @ down.T` averages a 28x28 image into size x size areas,
    `up @ Y @ up.T` brings it back bilinearly (pixel centres aligned)."""
    edges = np.linspace(0, SIDE, size + 1)
    down = np.zeros((size, SIDE), np.float32)
    for row, (start, stop) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        for col in range(SIDE):
            down[row, col] = max(0.0, min(stop, col + 1) - max(start, col))
    down /= down.sum(axis=1, keepdims=True)
    centres = (np.arange(SIDE) + 0.5) * size / SIDE - 0.5
    up = np.zeros((SIDE, size), np.float32)
    for row, position in enumerate(np.clip(centres, 0, size - 1)):
        low = min(int(np.floor(position)), size - 2)
        weight = position - low
        up[row, low], up[row, low + 1] = 1 - weight, weight
    return down, up
