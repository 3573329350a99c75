"""Pictures -> MNIST samples, made the way MNIST itself was made.

MNIST's digits were fitted into a 20x20 box keeping their aspect ratio, anti-aliased, then
centred by centre of mass in a 28x28 field, white ink on black (LeCun et al., "Gradient-based
learning applied to document recognition", 1998). Every upload goes the same way:

    true resolution (undo pixel replication) -> ink contrast (`ink`) -> the digit's
    components (`components`) -> crop -> fit into an 80x80 box, where strokes too thin or
    too thick are brought into MNIST's range -> fit into 20x20 -> centre of mass to
    (14, 14) -> (784,) float32 in [0, 1]

An upload that already is an MNIST digit (28x28, a flat black or white background, its ink
in a 19-21 px box) is only re-centred, in one pass for a whole stack of them, so it keeps
its prediction exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from service.imaging.components import find_digit, interior
from service.imaging.decode import Picture
from service.imaging.ink import composite, ink_contrast, odd

SIDE = 28
BOX = 20
CENTRE = 14.0  # MNIST's centres of mass average (14.0, 14.0) in pixel-index coordinates
MID = 4 * BOX  # strokes are measured and normalised at four times the final scale
# Stroke widths of MNIST's training digits at MID scale (2 * area / boundary pixels of the
# ink above 0.5, measured on the test set upscaled 4x): 5th percentile 4.9, median 7.4,
# 97th percentile about 13. Thinner or thicker strokes are brought to TARGET.
THIN, TARGET, THICK = 5.0, 7.0, 13.0

# A crop box (left, top, width, height) in the upload's pixels, as viewers show it.
Box = tuple[int, int, int, int]


class Samples(NamedTuple):
    """MNIST samples (N, 784) float32 in [0, 1]; which pictures hold no digit (their rows
    are zero); and where each digit was found in its upload (None when blank)."""

    rows: np.ndarray
    blank: list[bool]
    boxes: list[Box | None]


def to_mnist_many(pictures: Sequence[Picture]) -> Samples:
    """The MNIST sample of each picture, in order. The MNIST digits among them go through
    together in one pass (`plain_digits`), the others one by one (`to_mnist`)."""
    rows = np.zeros((len(pictures), SIDE * SIDE), np.float32)
    blank = [False] * len(pictures)
    boxes: list[Box | None] = [None] * len(pictures)
    plain = [i for i, picture in enumerate(pictures) if is_mnist_like(picture)]
    if plain:
        greys = [pictures[i].grey for i in plain]
        fields, found = plain_digits(greys[0][None] if len(greys) == 1 else np.stack(greys))
        for index, field, box in zip(plain, fields, found, strict=True):
            if box is not None:
                rows[index], boxes[index] = field.reshape(-1), box
    for index, picture in enumerate(pictures):
        if boxes[index] is None:
            sample = to_mnist(picture)
            if sample is None:
                blank[index] = True
            else:
                rows[index], boxes[index] = sample
    return Samples(rows, blank, boxes)


def to_mnist(picture: Picture) -> tuple[np.ndarray, Box] | None:
    """The MNIST sample (784,) float32 of any picture and its digit's box in the upload,
    or None when it holds no digit."""
    grey = picture.grey if picture.alpha is None else composite(picture.grey, picture.alpha)
    grey, enlarged = true_resolution(grey)
    contrast = ink_contrast(grey)
    digit = find_digit(contrast)
    if digit is None:
        return None
    # The digit's components and the pixel around them (their anti-aliased edge), with
    # its strokes' contrast brought to 1 as MNIST's are.
    near = cv2.dilate(digit.mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    ink = np.minimum(contrast * (near / digit.peak), 1.0).astype(np.float32)
    top, left, bottom, right = digit.box
    crop = ink[max(top - 1, 0) : bottom + 1, max(left - 1, 0) : right + 1]
    patch = fit(tight(normalise_strokes(fit(crop, MID))), BOX)
    field = centre_by_mass(patch[None])[0]
    scale = picture.scale * enlarged
    box = (
        round(left * scale),
        round(top * scale),
        round((right - left) * scale),
        round((bottom - top) * scale),
    )
    return field.reshape(-1), box


def true_resolution(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """An image enlarged by pixel replication (every row and every column repeated, as
    nearest-neighbour scaling does: an 8x8 scan shown at 28x28) at its own resolution, and
    the factor it had been enlarged by (1.0 for any other image). Read at 8x8, the UCI
    digits enlarged this way are read as well as the originals (bench/, issue 13's note)."""
    if grey.dtype != np.uint8 or min(grey.shape) < 4:
        return grey, 1.0
    rows = _run_starts(np.any(grey[1:] != grey[:-1], axis=1))
    cols = _run_starts(np.any(grey[:, 1:] != grey[:, :-1], axis=0))
    if rows is None or cols is None:
        return grey, 1.0
    return grey[rows][:, cols], grey.shape[1] / len(cols)


def _run_starts(changes: np.ndarray) -> np.ndarray | None:
    """Where each run of equal lines starts, if the runs are what nearest-neighbour
    enlargement by a factor of 2 or more makes: at least 4 of them, of k or k + 1 lines
    (a drawing made of rectangles has runs of any lengths)."""
    edges = np.flatnonzero(np.concatenate(([True], changes, [True])))
    lengths = np.diff(edges)
    if len(lengths) < 4 or lengths.min() < 2 or lengths.max() - lengths.min() > 1:
        return None
    return edges[:-1]


def is_mnist_like(picture: Picture) -> bool:
    """Whether a picture may be an MNIST digit already: 28x28, uint8, opaque. Such a picture
    costs microseconds; any other costs the full pipeline."""
    grey = picture.grey
    return grey.shape == (SIDE, SIDE) and grey.dtype == np.uint8 and picture.alpha is None


def plain_digits(stack: np.ndarray) -> tuple[np.ndarray, list[Box | None]]:
    """For a stack (N, 28, 28) uint8: the centred field (N, 28, 28) float32 of each image
    that is an MNIST digit already (at least half its pixels exactly 0, or exactly 255 for
    dark ink, and its ink in a box whose longer side is 19-21 px), with that box; None for
    the others (their fields mean nothing). One image alone takes `plain_digit`, in a
    third of the time (issue 13's note: the 28x28 path's budget)."""
    if len(stack) == 1:
        field, box = plain_digit(stack[0])
        return field[None], [box]
    count = len(stack)
    flat = stack.reshape(count, -1)
    light = (flat == 0).sum(axis=1) * 2 >= flat.shape[1]
    dark = ~light & ((flat == 255).sum(axis=1) * 2 >= flat.shape[1])
    if dark.any():
        stack = stack.copy()
        stack[dark] = 255 - stack[dark]
    peaks = stack.reshape(count, -1).max(axis=1)
    ink = stack.astype(np.float32)
    ink /= np.maximum(peaks, 1).astype(np.float32)[:, None, None]
    rows, cols = stack.any(axis=2), stack.any(axis=1)
    top, left = rows.argmax(axis=1), cols.argmax(axis=1)
    height = SIDE - rows[:, ::-1].argmax(axis=1) - top
    width = SIDE - cols[:, ::-1].argmax(axis=1) - left
    longest = np.maximum(height, width)
    plain = (light | dark) & (peaks > 0) & (longest >= BOX - 1) & (longest <= BOX + 1)
    sides = (left.tolist(), top.tolist(), width.tolist(), height.tolist(), plain.tolist())
    found = zip(*sides, strict=True)
    return centre_by_mass(ink), [(x, y, w, h) if ok else None for x, y, w, h, ok in found]


def plain_digit(grey: np.ndarray) -> tuple[np.ndarray, Box | None]:
    """`plain_digits` of one (28, 28) uint8 image, in scalar steps."""
    inked = np.count_nonzero(grey)
    if inked * 2 > grey.size:  # not light ink on black: dark ink on white, or no digit
        if np.count_nonzero(grey == 255) * 2 < grey.size:
            return np.zeros((SIDE, SIDE), np.float32), None
        grey = 255 - grey
    peak = int(grey.max())
    if not peak:
        return np.zeros((SIDE, SIDE), np.float32), None
    rows, cols = np.flatnonzero(grey.any(axis=1)), np.flatnonzero(grey.any(axis=0))
    top, height = int(rows[0]), int(rows[-1] - rows[0]) + 1
    left, width = int(cols[0]), int(cols[-1] - cols[0]) + 1
    ink = grey.astype(np.float32)
    ink /= np.float32(peak)
    field = centre_by_mass(ink[None])[0]
    plain = BOX - 1 <= max(height, width) <= BOX + 1
    return field, ((left, top, width, height) if plain else None)


def fit(crop: np.ndarray, box: int) -> np.ndarray:
    """Resize so the longer side is `box` pixels, keeping the aspect ratio (as MNIST did):
    by area averaging when shrinking (anti-aliased), bilinear when enlarging."""
    height, width = crop.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.clip(cv2.resize(crop, size, interpolation=method), 0.0, 1.0)


def normalise_strokes(patch: np.ndarray) -> np.ndarray:
    """Strokes of a digit fitted into MID x MID brought to full intensity (their 90th
    percentile to 1) and, if thinner than THIN or thicker than THICK, dilated or eroded
    by a disc to about TARGET: a 3 px pen on a 1000 px canvas then looks like an MNIST
    stroke. The result may be larger than the patch (dilation needs room)."""
    strokes = patch[patch > 0.05 * float(patch.max())]
    if not strokes.size:
        return patch
    patch = np.minimum(patch / max(float(np.percentile(strokes, 90)), 1e-3), 1.0)
    width = stroke_width(patch > 0.5)
    if width < THIN:
        side = odd(TARGET - width) if TARGET - width >= 2 else 2
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
        return cv2.dilate(np.pad(patch, side), disc)
    if width > THICK:
        side = odd(width - TARGET - 1)
        return cv2.erode(patch, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
    return patch


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of a binary mask: 2 * area / boundary pixels, exact
    for a long band (0 for an empty mask)."""
    area = int(np.count_nonzero(mask))
    if not area:
        return 0.0
    return 2.0 * area / max(area - int(np.count_nonzero(interior(mask))), 1)


def tight(patch: np.ndarray, floor: float = 0.02) -> np.ndarray:
    """`patch` cropped to the box of its values above `floor` (itself if none are)."""
    rows, cols = np.nonzero(patch > floor)
    if not len(rows):
        return patch
    return patch[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


@functools.lru_cache(maxsize=64)
def _moment_weights(height: int, width: int) -> np.ndarray:
    """(height * width, 3): 1, the row and the column of each pixel of a flat image."""
    rows, cols = np.indices((height, width), np.float32).reshape(2, -1)
    return np.stack((np.ones_like(rows), rows, cols), axis=1)


def centre_by_mass(patches: np.ndarray) -> np.ndarray:
    """Paste each of the patches (N, h, w), h and w at most 28, into a 28x28 field so that
    its centre of mass lands on (14, 14): (N, 28, 28) float32. A patch without mass stays
    where it is."""
    count, height, width = patches.shape
    # Mass and both first moments of every patch in one matrix product.
    moments = (patches.reshape(count, -1) @ _moment_weights(height, width)).tolist()
    shifts = [
        (round(CENTRE - rows / mass), round(CENTRE - cols / mass)) if mass > 0 else (0, 0)
        for mass, rows, cols in moments
    ]
    if (height, width) == (SIDE, SIDE):
        moved = [i for i, shift in enumerate(shifts) if shift != (0, 0)]
        if not moved:
            return patches.astype(np.float32, copy=False)  # all centred, as MNIST digits are
        field = patches.astype(np.float32)
        field[moved] = 0.0
    else:
        moved, field = list(range(count)), np.zeros((count, SIDE, SIDE), np.float32)
    for index in moved:
        top, left = shifts[index]
        # Clip the paste to the field; a shifted 28x28 input may lose a sliver of border.
        r0, c0 = max(top, 0), max(left, 0)
        r1, c1 = min(top + height, SIDE), min(left + width, SIDE)
        if r1 > r0 and c1 > c0:
            field[index, r0:r1, c0:c1] = patches[index, r0 - top : r1 - top, c0 - left : c1 - left]
    return field
