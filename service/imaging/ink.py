"""Where the ink is: its contrast against the background it lies on, whatever the light.

A picture is one of three kinds, told apart in this order:

1. **Digital** (drawn, rendered or scanned onto a flat background): one exact grey level
   holds at least a tenth of the pixels, is the darkest or the brightest, and the levels
   next to it are nearly empty. Camera noise spreads a photo's paper over many levels, even
   where it clips to white, so a photo is never taken for one. The background is that
   level; the ink is whatever differs from it.
2. **A sheet on a darker surface** (`find_page`): a bright, solid, four-sided-ish region
   with writing inside, surrounded by a darker desk that reaches the frame. The ink is dark;
   the desk and the sheet's edge are masked out.
3. **Any other photo**: the ink is the side of the heavier tail of the residual against a
   median over half the picture (ink is the minority there, whatever the light).

For photos the background is a grey-level closing (dilation then erosion) by a disc a
third of the picture across: it fills every dark valley narrower than the disc (strokes)
and keeps ramps and broad regions (light falloff, shadows, the desk) as they are (Soille,
*Morphological Image Analysis*, 2003, ch. 4: the black top-hat). The picture is padded by
replication first, so a dark region reaching the frame continues beyond it and is kept.
The contrast is then a ratio, `(background - pixel) / background`, which a dim exposure or
a shadow (both scale paper and ink alike) leave unchanged.
"""

from __future__ import annotations

import cv2
import numpy as np

FLAT_SHARE = 0.10  # share of pixels on one exact level that makes a picture digital...
NEAR_SHARE = 0.5  # ...unless levels within 3 of it hold this share of its count: noise, as
# around an over-exposed photo's clipped white (drawings: 0-0.2 of it; photos: 1.6-5.8)
SMALL_SIDE = 96  # pixels on the longer side of the copy the background and page are found on
POLARITY_SIDE = 48  # ... and of the copy the polarity of a photo is decided on
PAGE_SHARE = 0.03  # the smallest sheet found: a sticky note a sixth of the picture across


def composite(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Strokes on a transparent canvas (H, W) put on the background that contrasts with
    them (dark strokes on white, light strokes on black), so the ink is never lost."""
    opacity = alpha.astype(np.float32) / 255.0
    weight = float(opacity.sum())
    stroke = float((grey * opacity).sum() / weight) if weight > 0 else 0.0
    background = 255.0 if stroke < 128 else 0.0
    return grey * opacity + background * (1.0 - opacity)


def ink_contrast(grey: np.ndarray) -> np.ndarray:
    """The contrast (H, W) float32 in [0, 1] of the ink at each pixel against its own
    background, for a greyscale picture (H, W) in [0, 255] with ink of either polarity:
    0 on paper (or desk, or shadow), near 1 on full ink."""
    flat = flat_background(grey)
    if flat is not None:  # a digital picture: its background is one level, known exactly
        level, _ = flat
        ink = np.abs(grey.astype(np.float32) - level)
        return np.minimum(ink / max(float(ink.max()), 1.0), 1.0)
    page = find_page(grey)
    paper_side = grey.astype(np.float32) if page is not None or ink_is_dark(grey) else 255.0 - grey
    back = background(paper_side)
    floor = 0.5 * float(np.percentile(back, 90)) + 1.0  # a dark desk's texture is not ink
    contrast = np.clip((back - paper_side) / np.maximum(back, floor), 0.0, 1.0)
    if page is not None:  # the desk and the sheet's edge are not writing
        contrast *= page
    return contrast


def flat_background(grey: np.ndarray) -> tuple[float, bool] | None:
    """(level, ink is dark) of a digital picture's flat background: the one exact level
    holding at least FLAT_SHARE of the pixels, with few pixels on the levels next to it
    (no noise), if it is the brightest (dark ink) or the darkest (light ink). None for a
    photo."""
    levels = grey if grey.dtype == np.uint8 else np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    counts = np.bincount(levels.ravel(), minlength=256)
    mode = int(counts.argmax())
    near = int(counts[max(mode - 3, 0) : mode + 4].sum() - counts[mode])
    if counts[mode] < FLAT_SHARE * levels.size or near > NEAR_SHARE * counts[mode]:
        return None
    lowest, highest = int(levels.min()), int(levels.max())
    if lowest == highest:
        return None  # one level only: nothing drawn
    if mode == highest:
        return float(mode), True
    if mode == lowest:
        return float(mode), False
    return None


def ink_is_dark(grey: np.ndarray) -> bool:
    """Whether a photo's ink is darker than its background: the heavier tail of the
    residual against a median over half the picture (ink is the minority there)."""
    small = shrink(grey, POLARITY_SIDE)
    side = odd(max(small.shape) / 2)
    median = cv2.medianBlur(np.clip(small, 0, 255).astype(np.uint8), side).astype(np.float32)
    low, high = np.percentile(small - median, [0.5, 99.5])
    return -low >= high


def background(paper_side: np.ndarray) -> np.ndarray:
    """The background (H, W) of a picture whose ink is dark: its closing by a disc a third
    of the picture across, on a copy reduced to SMALL_SIDE and padded by replication,
    brought back to full size; never darker than the picture itself."""
    small = shrink(paper_side, SMALL_SIDE)
    side = odd(min(small.shape) / 3)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    padded = cv2.copyMakeBorder(small, side, side, side, side, cv2.BORDER_REPLICATE)
    closed = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, disc)[side:-side, side:-side]
    if closed.shape != paper_side.shape:
        closed = cv2.resize(closed, paper_side.shape[::-1], interpolation=cv2.INTER_LINEAR)
    return np.maximum(closed, paper_side)


def find_page(grey: np.ndarray) -> np.ndarray | None:
    """The interior (H, W) float32 0/1 of a sheet of paper lying on a darker surface, or
    None. A sheet: the largest bright region (Otsu threshold, on a median-filtered small
    copy without the writing), filled, covering 3-92% of the picture, convex (area at
    least 85% of its hull), mostly bright inside, at least 40 levels brighter than its
    surroundings, touching at most one side of the frame (a lit part of a page in shadow
    touches two or more), with writing on it. The interior leaves out a margin of 3% of
    the sheet's size: its edge and shadow."""
    small = shrink(grey, SMALL_SIDE)
    levels = cv2.medianBlur(np.clip(small, 0, 255).astype(np.uint8), odd(max(small.shape) / 20))
    _, bright = cv2.threshold(levels, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if bright.all() or not bright.any():
        return None
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea)
    region = np.zeros_like(bright)
    cv2.drawContours(region, [outline], 0, 1, -1)
    inside = region.astype(bool)
    area = int(inside.sum())
    if not PAGE_SHARE * region.size <= area <= 0.92 * region.size:
        return None
    if area < 0.85 * cv2.contourArea(cv2.convexHull(outline)) or bright[inside].mean() < 0.75:
        return None  # not convex, or a ring: a light digit, not a sheet
    paper, desk = (
        float(np.median(levels[inside & (bright == 1)])),
        float(np.median(levels[~inside])),
    )
    sides = (region[0].mean(), region[-1].mean(), region[:, 0].mean(), region[:, -1].mean())
    if paper - desk < 40 or sum(side > 0.05 for side in sides) > 1:
        return None
    core = cv2.erode(region, np.ones((3, 3), np.uint8)).astype(bool)
    writing = small[core] < paper - 0.3 * (paper - desk)
    if not core.any() or writing.mean() < 0.002:
        return None
    rows, cols = np.nonzero(region)
    margin = odd(0.06 * min(np.ptp(rows), np.ptp(cols)) * max(grey.shape) / max(small.shape))
    full = cv2.resize(region, grey.shape[::-1], interpolation=cv2.INTER_NEAREST)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (margin, margin))
    return cv2.erode(full, disc).astype(np.float32)


def shrink(image: np.ndarray, longest: int) -> np.ndarray:
    """`image` as float32, reduced by area averaging so its longer side is at most
    `longest` pixels."""
    image = image.astype(np.float32, copy=False)
    factor = longest / max(image.shape)
    if factor >= 1:
        return image
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def odd(length: float) -> int:
    """The odd kernel size nearest below `length`, at least 3."""
    return max(3, int(length) // 2 * 2 + 1)
