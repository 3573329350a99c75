"""Which ink is the digit: connected components of the thresholded contrast, scored.

The contrast is thresholded at Otsu's level (Otsu, 1979), never below 5 times the noise of
the paper (its median absolute deviation, scaled to a standard deviation) nor below 0.12.
Of the 8-connected components, the digit's main part is the one with the most ink (the sum
of its contrast), after discounting those that are not writing: ruled lines and page edges
(long and thin, spanning half the picture), frames (sparse boxes around half the picture),
blobs (a shadow's or a desk's patch: thicker than 30% of their length, where a stroke is
about a tenth of the digit) and, less strongly, whatever touches the frame. The parts of a
broken digit (the bar of a 5, a 7's stroke) join it when they lie within 30% of the
digit's size of it and hold at least 2% of its ink; specks and marks farther away do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

JOIN_GAP = 0.3  # a part joins the digit within this share of the digit's size
JOIN_INK = 0.02  # ... if it holds at least this share of the main part's ink
MIN_PEAK = 0.2  # the digit's strokes must reach this contrast against their paper
MIN_SIZE = 0.04  # ... and span this share of the picture's longer side


@dataclass(frozen=True)
class Digit:
    """The pixels (H, W) bool of the components kept as the digit, the contrast its
    strokes reach (90th percentile), and its box (top, left, bottom, right), exclusive."""

    mask: np.ndarray
    peak: float
    box: tuple[int, int, int, int]


def find_digit(contrast: np.ndarray) -> Digit | None:
    """The digit in a contrast map (H, W) float32 in [0, 1], or None when no ink looks
    like one (blank paper, noise, only specks or lines)."""
    otsu = otsu_threshold(contrast)
    noise = _noise(contrast[contrast <= otsu])
    mask = (contrast > max(otsu, 5 * noise, 0.12)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    ink = np.bincount(labels.ravel(), weights=contrast.ravel(), minlength=count)
    writing = _writing(mask, labels, stats)
    touches = _touches_frame(stats, contrast.shape)
    score = ink * np.where(touches, 0.25, 1.0) * np.where(writing, 1.0, 0.01)
    score[0] = -1.0  # the background
    main = int(score.argmax())
    kept = _join_parts(main, stats, ink, writing)
    keep = np.zeros(count, bool)
    keep[kept] = True
    digit = keep[labels]
    peak = float(np.percentile(contrast[digit], 90))
    top, left, bottom, right = _box(stats, kept)
    size = max(bottom - top, right - left)
    if peak < max(MIN_PEAK, 6 * noise) or size < MIN_SIZE * max(contrast.shape):
        return None
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


def _writing(mask: np.ndarray, labels: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Per component: could it be writing (not a line, a frame or a blob)?"""
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
    return ~(line | frame | blob)


def _touches_frame(stats: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    left, top, wide, tall, _ = stats.T
    return (left == 0) | (top == 0) | (left + wide == shape[1]) | (top + tall == shape[0])


def _join_parts(main: int, stats: np.ndarray, ink: np.ndarray, writing: np.ndarray) -> list[int]:
    """`main` and the components near enough the growing digit, nearest first."""
    kept = [main]
    top, left, bottom, right = _box(stats, kept)
    size = max(bottom - top, right - left)
    candidates = [
        i for i in np.argsort(-ink).tolist()
        if i not in (0, main) and writing[i] and ink[i] >= JOIN_INK * ink[main]
    ]  # fmt: skip
    joined = True
    while joined:
        joined = False
        for i in candidates:
            x, y, w, h = stats[i, :4].tolist()
            gap = max(left - (x + w), x - right, top - (y + h), y - bottom, 0)
            if i not in kept and gap <= JOIN_GAP * size:
                kept.append(i)
                top, left, bottom, right = _box(stats, kept)
                joined = True
    return kept


def _box(stats: np.ndarray, members: list[int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), exclusive, of the union of the components' boxes."""
    left, top, wide, tall = stats[members, :4].T
    return int(top.min()), int(left.min()), int((top + tall).max()), int((left + wide).max())
