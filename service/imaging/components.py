"""Which ink is the digit: connected components of the thresholded contrast, scored.

The contrast is thresholded at Otsu's level (Otsu, 1979), never below 5 times the noise of
the paper (its median absolute deviation, scaled to a standard deviation) nor below 0.12.
Of the 8-connected components, specks (a few pixels) and blobs (a shadow's or a desk's
patch: thicker than 30% of their length, where a stroke is about a tenth of the digit) are
never the digit. The digit's main part is the one with the most ink (the sum of its
contrast), ruled lines and page edges (long and thin, spanning half the picture), frames
(sparse boxes around half the picture: a thin-pen 0 is one too, when alone; and a box or a
circle drawn around the digit) and whatever touches the frame counting less. The parts of a
broken digit (the bar of a 5, a 7's stroke) join it when they lie within 30% of the
digit's size of it and hold at least 2% of its ink; specks and marks farther away do not,
nor marks cut by the frame when the digit is not.
A "digit" with far more stroke than a digit has is noise or a texture: no digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

JOIN_GAP = 0.3  # a part joins the digit within this share of the digit's size
JOIN_INK = 0.02  # ... if it holds at least this share of the main part's ink
MIN_PEAK = 0.1  # the digit's strokes must reach this contrast against their paper
MIN_SIZE = 0.04  # ... and span this share of the picture's longer side
MIN_SIZE_AT_EDGE = 0.1  # ... or this, cut by the frame (a dark corner is not a digit)
MIN_AREA = 5e-5  # components smaller than this share of the picture (or 2 px) are specks
JOIN_LIMIT = 64  # the parts looked at for joining, inkiest first: the cost stays bounded
# A digit's strokes are at most about four times its height long (an 8; measured on every
# kind of upload in bench/wild.py); noise, textures and grids are 15 to 60 times.
MAX_STROKE_LENGTH = 8


@dataclass(frozen=True)
class Digit:
    """The pixels (H, W) bool of the components kept as the digit, the contrast its
    strokes reach (90th percentile), and its box (top, left, bottom, right), exclusive."""

    mask: np.ndarray
    peak: float
    box: tuple[int, int, int, int]


def find_digit(contrast: np.ndarray) -> Digit | None:
    """The digit in a contrast map (H, W) float32 in [0, 1], or None when no ink looks
    like one (blank paper, noise, a texture, only specks, blobs or lines)."""
    otsu = otsu_threshold(contrast)
    noise = _noise(contrast[contrast <= otsu])
    mask = (contrast > max(otsu, 5 * noise, 0.12)).astype(np.uint8)
    count, labels, stats, centres = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    ink = np.bincount(labels.ravel(), weights=contrast.ravel(), minlength=count)
    kinds = _kinds(mask, labels, stats)
    speck = stats[:, cv2.CC_STAT_AREA] < max(2.0, MIN_AREA * mask.size)
    for i in np.argsort(-ink)[:3].tolist():  # a box or a circle drawn around the digit
        if i and kinds[i] == _WRITING and _encloses(i, labels, stats, centres, ink * ~speck):
            kinds[i] = _FRAME
    candidate = ~speck & (kinds != _BLOB)
    candidate[0] = False  # the background
    if not candidate.any():
        return None
    touches = _touches_frame(stats, contrast.shape)
    score = ink * np.where(touches, 0.25, 1.0) * np.where(kinds == _WRITING, 1.0, 0.01)
    main = int(np.where(candidate, score, -1.0).argmax())
    joinable = candidate & (kinds == _WRITING) & (ink >= JOIN_INK * ink[main])
    if not touches[main]:  # marks cut by the frame are no part of a digit that is not
        joinable &= ~touches
    kept = _join_parts(main, stats, ink, joinable)
    keep = np.zeros(count, bool)
    keep[kept] = True
    digit = keep[labels]
    peak = float(np.percentile(contrast[digit], 90))
    top, left, bottom, right = _box(stats, kept)
    size = max(bottom - top, right - left)
    at_edge = top == 0 or left == 0 or bottom == mask.shape[0] or right == mask.shape[1]
    smallest = (MIN_SIZE_AT_EDGE if at_edge else MIN_SIZE) * max(contrast.shape)
    if peak < max(MIN_PEAK, 6 * noise) or size < smallest:
        return None
    if _stroke_length(digit) > MAX_STROKE_LENGTH * size:
        return None  # noise, a texture, a grid: far more stroke than any digit has
    return Digit(digit, peak, (top, left, bottom, right))


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of float values, through OpenCV's (on 256 levels of their range)."""
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-6:
        return high
    levels = np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)
    threshold, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return low + threshold * (high - low) / 255.0


def _noise(values: np.ndarray) -> float:
    """The standard deviation of the paper's contrast, from its median absolute deviation."""
    if not values.size:
        return 0.0
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


_WRITING, _LINE, _FRAME, _BLOB = 0, 1, 2, 3


def _kinds(mask: np.ndarray, labels: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Per component: writing, a line, a frame or a blob."""
    height, width = mask.shape
    left, top, wide, tall, area = stats.T
    longest = np.maximum(wide, tall)
    line = (longest >= 0.5 * max(height, width)) & (area <= 0.06 * longest**2)
    frame = (area < 0.15 * wide * tall) & (wide >= 0.5 * width) & (tall >= 0.5 * height)
    # Stroke width, 2 * area / boundary pixels (exact for a long band).
    inner = cv2.erode(
        mask, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0
    )
    boundary = area - np.bincount(labels[inner.astype(bool)], minlength=len(stats))
    blob = (2.0 * area > 0.3 * longest * np.maximum(boundary, 1)) & (longest > 8)
    kinds = np.full(len(stats), _WRITING)
    kinds[line] = _LINE
    kinds[frame] = _FRAME
    kinds[blob] = _BLOB
    return kinds


def _encloses(
    index: int, labels: np.ndarray, stats: np.ndarray, centres: np.ndarray, ink: np.ndarray
) -> bool:
    """Whether component `index` surrounds another holding at least 3% of its ink: that
    one's box lies within its box, and its centre in a hole of it (background the frame of
    its box cannot reach, once gaps up to a tenth of the box are closed)."""
    left, top, wide, tall = stats[index, :4].tolist()
    x, y, w, h = stats[:, :4].T
    within = (x > left) & (y > top) & (x + w < left + wide) & (y + h < top + tall)
    inside = [j for j in np.flatnonzero(within & (ink >= 0.03 * ink[index])).tolist() if j != index]
    if not inside:
        return False
    own = (labels[top : top + tall, left : left + wide] == index).astype(np.uint8)
    # A hand-drawn circle rarely closes: gaps up to a tenth of its box are closed first.
    k = max(3, round(0.1 * min(wide, tall))) | 1
    shut = cv2.morphologyEx(np.pad(own, k), cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    # The box's background with a ring of background around it, filled from the ring: what
    # stays 1 is background the outside cannot reach, a hole.
    reach = np.pad(1 - shut[k:-k, k:-k], 1, constant_values=1)
    cv2.floodFill(reach, None, (0, 0), 2)
    holes = reach[1:-1, 1:-1] == 1
    return any(holes[int(centres[j][1]) - top, int(centres[j][0]) - left] for j in inside)


def _stroke_length(mask: np.ndarray) -> float:
    """The length of the strokes of a mask: its area over its mean stroke width (2 * area /
    boundary pixels), i.e. half its boundary."""
    return (int(np.count_nonzero(mask)) - int(np.count_nonzero(interior(mask)))) / 2.0


def interior(mask: np.ndarray) -> np.ndarray:
    """The pixels (H, W) bool of a mask whose 8 neighbours are all in it (outside the
    picture counts as out): the mask less its boundary."""
    ink = mask.astype(np.uint8)
    square = np.ones((3, 3), np.uint8)
    return cv2.erode(ink, square, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def _touches_frame(stats: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    left, top, wide, tall, _ = stats.T
    return (left == 0) | (top == 0) | (left + wide == shape[1]) | (top + tall == shape[0])


def _join_parts(main: int, stats: np.ndarray, ink: np.ndarray, joinable: np.ndarray) -> list[int]:
    """`main` and the joinable components near enough the growing digit: the JOIN_LIMIT
    inkiest are looked at, until none joins."""
    kept = [main]
    top, left, bottom, right = _box(stats, kept)
    size = max(bottom - top, right - left)
    order = np.argsort(-ink)
    candidates = [int(i) for i in order[joinable[order]] if i != main][:JOIN_LIMIT]
    joined = True
    while joined and candidates:
        joined = False
        for i in list(candidates):
            x, y, w, h = stats[i, :4].tolist()
            if max(left - (x + w), x - right, top - (y + h), y - bottom, 0) <= JOIN_GAP * size:
                kept.append(i)
                candidates.remove(i)
                top, left = min(top, y), min(left, x)
                bottom, right = max(bottom, y + h), max(right, x + w)
                joined = True
    return kept


def _box(stats: np.ndarray, members: list[int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), exclusive, of the union of the components' boxes."""
    left, top, wide, tall = stats[members, :4].T
    return int(top.min()), int(left.min()), int((top + tall).max()), int((left + wide).max())
