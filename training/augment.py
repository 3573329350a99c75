"""Random affine and elastic distortions of 28x28 digits, vectorised over a batch in NumPy.

Pure functions of (images, generator): the same seed gives the same batches. Smoothing a
fresh elastic field per image cost more than the training step it feeds, so `elastic_bank`
smooths a few thousand fields once (a matrix product with a Gaussian kernel matrix) and each
image draws one of them with a random sign and axis order.
"""

from __future__ import annotations

import numpy as np

from training.recipes import Augmentation

SIDE = 28
_CENTRE = (SIDE - 1) / 2
_PADDED = SIDE + 2  # one zero pixel around the image, so out-of-frame samples read 0


def gaussian_matrix(sigma: float, side: int = SIDE) -> np.ndarray:
    """Row-normalised Gaussian kernel as a matrix: `G @ field @ G.T` smooths a field."""
    r = np.arange(side, dtype=np.float64)
    g = np.exp(-((r[:, None] - r[None, :]) ** 2) / (2 * sigma**2))
    return (g / g.sum(axis=1, keepdims=True)).astype(np.float32)


def elastic_bank(aug: Augmentation, rng: np.random.Generator, size: int = 4096) -> np.ndarray:
    """`size` smooth displacement fields (size, 2, 28, 28), each peaking at elastic_alpha."""
    g = gaussian_matrix(aug.elastic_sigma)
    noise = rng.uniform(-1, 1, (size, 2, SIDE, SIDE)).astype(np.float32)
    field = g @ noise @ g.T
    peak = np.abs(field).max(axis=(2, 3), keepdims=True) + 1e-6
    return field * (aug.elastic_alpha / peak)


def distort(
    images: np.ndarray,
    aug: Augmentation,
    rng: np.random.Generator,
    bank: np.ndarray | None = None,
) -> np.ndarray:
    """Distort a batch of (B, 28, 28) float images; returns (B, 784) float32.

    `bank` (from `elastic_bank`) adds elastic distortion on top of the random affine map.
    """
    b = len(images)
    xs, ys = _sampling_grid(_centres_of_mass(images), aug, rng)
    if bank is not None:
        pick = bank[rng.integers(0, len(bank), b)]
        if rng.random() < 0.5:
            pick = pick[:, ::-1]  # swap the x and y components
        sign = np.where(rng.random(b) < 0.5, -1, 1).astype(np.float32)[:, None, None]
        xs, ys = xs + sign * pick[:, 0], ys + sign * pick[:, 1]
    return _bilinear(images.astype(np.float32, copy=False), xs, ys).reshape(b, SIDE * SIDE)


def _centres_of_mass(images: np.ndarray) -> np.ndarray:
    """(B, 2) row and column of each image's centre of mass (the frame's centre if blank)."""
    mass = images.sum(axis=(1, 2))
    safe = np.where(mass > 0, mass, 1.0)
    index = np.arange(SIDE, dtype=np.float32)
    rows = np.where(mass > 0, (images.sum(axis=2) @ index) / safe, _CENTRE)
    cols = np.where(mass > 0, (images.sum(axis=1) @ index) / safe, _CENTRE)
    return np.stack([rows, cols], axis=1).astype(np.float32)


def _sampling_grid(
    centres: np.ndarray, aug: Augmentation, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates of every output pixel under a random rotation/scale/shear/shift.

    The map is taken about each digit's own centre of mass, which it therefore keeps: MNIST
    digits are centred by mass, so without a shift the distorted digits stay centred like
    the test digits and the network spends no capacity on positions it will never see.
    """
    b = len(centres)
    theta = np.deg2rad(rng.uniform(-aug.rotation_degrees, aug.rotation_degrees, b))
    scale = rng.uniform(1 - aug.scale, 1 + aug.scale, b)
    shear = rng.uniform(-aug.shear, aug.shear, b)
    tx, ty = (rng.uniform(-aug.shift_pixels, aug.shift_pixels, b) for _ in range(2))
    cos, sin = np.cos(theta) / scale, np.sin(theta) / scale
    a00, a01 = cos, -sin + shear * cos
    a10, a11 = sin, cos + shear * sin
    grid = np.arange(SIDE, dtype=np.float32)

    def col(v: np.ndarray) -> np.ndarray:
        return v.astype(np.float32)[:, None, None]

    cy, cx = col(centres[:, 0]), col(centres[:, 1])
    gx, gy = grid[None, None, :] - cx, grid[None, :, None] - cy
    xs = col(a00) * gx + col(a01) * gy + cx - col(tx)
    ys = col(a10) * gx + col(a11) * gy + cy - col(ty)
    return xs, ys


def _bilinear(images: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    b = len(images)
    # Into padded coordinates; just inside the far padding so x0 + 1 never leaves the image.
    xs = np.clip(xs, -1, SIDE - 1e-3) + 1
    ys = np.clip(ys, -1, SIDE - 1e-3) + 1
    x0f, y0f = np.floor(xs), np.floor(ys)
    fx, fy = xs - x0f, ys - y0f  # float32 throughout: int32 - float32 would make float64
    x0, y0 = x0f.astype(np.intp), y0f.astype(np.intp)  # intp: no conversion per gather
    padded = np.zeros((b, _PADDED, _PADDED), np.float32)
    padded[:, 1 : SIDE + 1, 1 : SIDE + 1] = images
    flat = padded.ravel()
    idx = (np.arange(b, dtype=np.intp) * (_PADDED * _PADDED))[:, None, None]
    idx = idx + y0 * _PADDED + x0
    top_left, top_right = flat[idx], flat[idx + 1]
    bottom_left, bottom_right = flat[idx + _PADDED], flat[idx + _PADDED + 1]
    top = top_left + fx * (top_right - top_left)
    bottom = bottom_left + fx * (bottom_right - bottom_left)
    return top + fy * (bottom - top)
