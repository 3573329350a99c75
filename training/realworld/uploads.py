"""Uploads of the kinds people really send, made from MNIST test digits, UCI digits and fonts.

Each kind is a function `(digit, rng) -> bytes`: `digit` is a 28x28 uint8 MNIST digit (white
ink on black), `rng` a NumPy generator, the result the bytes of an image file. The kinds
follow the table of issue 13: phone photos of paper (texture, exposure, shadow, desk, stray
pen marks, EXIF orientation), drawings from ordinary tools (thin pens on big canvases, small
paint-program images) and images shrunk by the client. Nothing here is tuned to a file of
`../shared/cases/`: each property is drawn from a range.

Rendering uses OpenCV and Pillow; the pen-drawn kinds trace the digit's centre line with
scikit-image's `skeletonize` (Zhang-Suen thinning).
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage.morphology import skeletonize

Kind = Callable[[np.ndarray, np.random.Generator], bytes]

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
TRACE_SIDE = 160  # pixels: the size a pen-drawn digit's centre line is traced at
# Inverse of each EXIF orientation's display transform (Pillow's ImageOps.exif_transpose):
# the image a camera stores so that a viewer shows it upright.
_STORED = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


# --- encoding -------------------------------------------------------------------------------


def encode(pixels: np.ndarray, fmt: str = "PNG", **options: object) -> bytes:
    """Bytes of an (H, W) or (H, W, 3|4) uint8 image in `fmt`."""
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, **options)
    return out.getvalue()


def _jpeg(rgb: np.ndarray, rng: np.random.Generator) -> bytes:
    return encode(rgb, "JPEG", quality=int(rng.integers(55, 95)))


# --- the digit as ink -----------------------------------------------------------------------


def ink_of(
    digit: np.ndarray, height: int, rng: np.random.Generator, tilt: float = 6.0
) -> np.ndarray:
    """The digit's ink as float32 coverage in [0, 1], cropped to its box, scaled smoothly to
    `height` pixels tall and turned by up to `tilt` degrees."""
    rows, cols = np.nonzero(digit > 30)
    crop = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float32)
    crop = np.pad(crop / 255.0, 2)
    scale = height / (crop.shape[0] - 4)
    size = (max(3, round(crop.shape[1] * scale)), max(3, round(crop.shape[0] * scale)))
    ink = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)
    angle = rng.uniform(-tilt, tilt)
    if abs(angle) > 0.5:
        h, w = ink.shape
        side = int(math.hypot(h, w)) + 2
        ink = cv2.copyMakeBorder(ink, (side - h) // 2, (side - h + 1) // 2, (side - w) // 2,
                                 (side - w + 1) // 2, cv2.BORDER_CONSTANT)  # fmt: skip
        turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
        ink = cv2.warpAffine(ink, turn, (side, side), flags=cv2.INTER_LINEAR)
    return np.clip(ink, 0.0, 1.0)


def centre_line(digit: np.ndarray, side: int) -> np.ndarray:
    """The digit's centre line (bool, `side` x `side` of the digit's box, aspect kept): the
    path a pen would follow to draw it."""
    rows, cols = np.nonzero(digit > 30)
    crop = digit[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float32)
    scale = side / max(crop.shape)
    size = (max(2, round(crop.shape[1] * scale)), max(2, round(crop.shape[0] * scale)))
    smooth = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)
    smooth = cv2.GaussianBlur(smooth, (0, 0), max(scale * 0.6, 0.5))
    return skeletonize(np.pad(smooth > 110, 1))[1:-1, 1:-1]


def pen_drawing(digit: np.ndarray, side: int, pen: float) -> np.ndarray:
    """Coverage in [0, 1] of the digit drawn along its centre line with a round pen `pen`
    pixels wide, the digit's longer side `side` pixels, anti-aliased. The centre line is
    traced at TRACE_SIDE at most and drawn as segments between neighbouring points."""
    traced = min(side, TRACE_SIDE)
    line = centre_line(digit, traced)
    scale, margin = side / traced, int(pen) + 3
    height, width = (round(n * scale) + 2 * margin for n in line.shape)
    canvas = np.zeros((height, width), np.uint8)
    thickness, fixed = max(1, round(pen)), 16  # points in 1/16 pixel (cv2's `shift` of 4)

    def point(row: int, col: int) -> tuple[int, int]:
        return round((col * scale + margin) * fixed), round((row * scale + margin) * fixed)

    rows, cols = np.nonzero(line)
    for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
        cv2.circle(canvas, point(row, col), fixed * thickness // 2, 255, -1, cv2.LINE_AA, 4)
        for down, right in ((0, 1), (1, 0), (1, 1), (1, -1)):
            r, c = row + down, col + right
            if r < line.shape[0] and 0 <= c < line.shape[1] and line[r, c]:
                cv2.line(canvas, point(row, col), point(r, c), 255, thickness, cv2.LINE_AA, 4)
    return canvas.astype(np.float32) / 255


def place(canvas: np.ndarray, ink: np.ndarray, top: int, left: int) -> np.ndarray:
    """`canvas` (H, W) coverage with `ink` added at (top, left), clipped to the canvas."""
    h, w = ink.shape
    H, W = canvas.shape
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + h, H), min(left + w, W)
    if t1 > t0 and l1 > l0:
        region = canvas[t0:t1, l0:l1]
        np.maximum(region, ink[t0 - top : t1 - top, l0 - left : l1 - left], out=region)
    return canvas


# --- paper, light and camera ----------------------------------------------------------------


def smooth_noise(shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """Noise in about [-1, 1] whose features are about `scale` pixels across."""
    h, w = shape
    small = rng.normal(0, 1, (max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)))
    big = cv2.resize(small.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return big / (np.abs(big).max() + 1e-6)


def paper(
    shape: tuple[int, int], rng: np.random.Generator, level: float | None = None
) -> np.ndarray:
    """Paper as RGB float32 (H, W, 3): a tint, fibre texture and blotches."""
    level = rng.uniform(205, 245) if level is None else level
    tint = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 1.0)], np.float32)
    texture = 6 * smooth_noise(shape, rng.uniform(20, 80), rng) + 2.5 * smooth_noise(shape, 3, rng)
    grey = level + texture
    return grey[..., None] * tint


def pen_colour(rng: np.random.Generator) -> np.ndarray:
    """A dark ink: black, blue-black, or a pencil's grey."""
    choice = rng.integers(0, 3)
    if choice == 0:
        return rng.uniform(10, 45, 3).astype(np.float32)
    if choice == 1:
        return np.array(
            [rng.uniform(10, 40), rng.uniform(20, 50), rng.uniform(70, 130)], np.float32
        )
    return np.full(3, rng.uniform(50, 90), np.float32)


def lay_ink(surface: np.ndarray, coverage: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Ink of `colour` laid on `surface` (H, W, 3) where `coverage` (H, W) is 1; pens
    absorb light, so the ink darkens whatever light falls on it later."""
    c = coverage[..., None]
    return surface * (1 - c) + colour * c


def vignette(shape: tuple[int, int], rng: np.random.Generator, depth: float) -> np.ndarray:
    """Light falling off towards the corners and across the frame: a gain map in (0, 1]."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = h * rng.uniform(0.3, 0.7), w * rng.uniform(0.3, 0.7)
    r = np.hypot((y - cy) / h, (x - cx) / w)
    slope = rng.uniform(-1, 1, 2) * depth
    return np.clip(1 - depth * r**2 + slope[0] * (y / h - 0.5) + slope[1] * (x / w - 0.5), 0.3, 1)


def camera(rgb: np.ndarray, rng: np.random.Generator, noise: float = 3.0) -> np.ndarray:
    """A phone camera's softness and sensor noise; uint8 RGB."""
    blurred = cv2.GaussianBlur(rgb, (0, 0), rng.uniform(0.5, 1.4))
    grainy = blurred + rng.normal(0, noise, rgb.shape[:2])[..., None].astype(np.float32)
    return np.clip(grainy, 0, 255).astype(np.uint8)


def photo_parts(
    digit: np.ndarray, rng: np.random.Generator, shape: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """A lit page with the digit written on it, before light and camera: (paper RGB,
    ink coverage, the digit's box (top, left, height, width))."""
    h, w = shape or (int(rng.integers(260, 720)), int(rng.integers(260, 720)))
    ink = ink_of(digit, int(min(h, w) * rng.uniform(0.28, 0.6)), rng)
    top = int((h - ink.shape[0]) * rng.uniform(0.3, 0.7))
    left = int((w - ink.shape[1]) * rng.uniform(0.3, 0.7))
    coverage = place(np.zeros((h, w), np.float32), ink, top, left)
    return paper((h, w), rng), coverage, (top, left, ink.shape[0], ink.shape[1])


def photo(digit: np.ndarray, rng: np.random.Generator, exposure: float = 1.0) -> np.ndarray:
    """A phone photo of the digit written on paper, uint8 RGB."""
    surface, coverage, _ = photo_parts(digit, rng)
    lit = (
        lay_ink(surface, coverage, pen_colour(rng)) * vignette(coverage.shape, rng, 0.25)[..., None]
    )
    return camera(lit * exposure, rng, noise=3.0 / max(exposure, 0.3) ** 0.5)


# --- the kinds ------------------------------------------------------------------------------


def mnist_png(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The 28x28 MNIST digit itself, as a PNG."""
    return encode(digit)


def clean_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A well-lit phone photo of the digit on paper (JPEG)."""
    return _jpeg(photo(digit, rng), rng)


def exif_rotated(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A phone photo stored sideways or upside down with the EXIF Orientation that makes
    viewers show it upright (JPEG mostly; some PNG and WebP, which carry EXIF too)."""
    orientation = int(rng.choice([6, 6, 6, 8, 8, 3, 2, 4, 5, 7]))
    stored = np.asarray(Image.fromarray(photo(digit, rng)).transpose(_STORED[orientation]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    fmt = str(rng.choice(["JPEG", "JPEG", "JPEG", "PNG", "WEBP"]))
    return encode(stored, fmt, exif=exif.tobytes(), **({"quality": 85} if fmt != "PNG" else {}))


def dim_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """An under-exposed photo: the paper comes out mid-grey (about 60-140 of 255)."""
    return _jpeg(photo(digit, rng, exposure=rng.uniform(0.27, 0.6)), rng)


def desk_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A sheet or a sticky note on a darker desk, the desk visible around it."""
    h, w = int(rng.integers(300, 720)), int(rng.integers(300, 720))
    desk_colour = rng.choice(
        [[95, 65, 40], [130, 95, 60], [60, 60, 65], [40, 35, 30], [150, 140, 125], [110, 120, 130]]
    ).astype(np.float32) * rng.uniform(0.7, 1.1)
    grain = 12 * smooth_noise((h, w), rng.uniform(4, 40), rng)[..., None]
    streaks = 8 * smooth_noise((h, max(2, w // 40)), 3, rng)
    streaks = cv2.resize(streaks, (w, h))[..., None]
    desk = desk_colour + grain + streaks
    # The sheet: a rectangle covering part of the frame, turned a little, maybe cut by it.
    sh, sw = h * rng.uniform(0.25, 0.9), w * rng.uniform(0.25, 0.9)
    if rng.random() < 0.4:  # a square sticky note
        sh = sw = min(sh, sw)
    cy, cx = h / 2 + rng.uniform(-0.12, 0.12) * h, w / 2 + rng.uniform(-0.12, 0.12) * w
    corners = cv2.boxPoints(((cx, cy), (sw, sh), rng.uniform(-12, 12))).astype(np.float32)
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, np.round(corners * 4).astype(np.int32), 1.0, cv2.LINE_AA, shift=2)
    note = rng.random() < 0.35
    sheet = paper((h, w), rng)
    if note:  # sticky-note yellow
        sheet = sheet * np.array([1.0, 0.95, rng.uniform(0.45, 0.65)], np.float32)
    # The digit, inside the sheet.
    side = min(sh, sw)
    ink = ink_of(digit, int(side * rng.uniform(0.35, 0.65)), rng)
    top = int(cy - ink.shape[0] / 2 + rng.uniform(-0.08, 0.08) * side)
    left = int(cx - ink.shape[1] / 2 + rng.uniform(-0.08, 0.08) * side)
    coverage = place(np.zeros((h, w), np.float32), ink, top, left) * mask
    shadow = 1 - 0.35 * cv2.GaussianBlur(mask, (0, 0), 6)  # the sheet's own drop shadow
    surface = sheet * mask[..., None] + desk * shadow[..., None] * (1 - mask[..., None])
    lit = lay_ink(surface, coverage, pen_colour(rng)) * vignette((h, w), rng, 0.3)[..., None]
    return _jpeg(camera(lit, rng), rng)


def shadow_photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A photo with a soft shadow (a hand, a phone) across part of the paper and digit."""
    surface, coverage, (top, left, dh, dw) = photo_parts(digit, rng)
    h, w = coverage.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    # The shadow's edge passes near the digit, so part of the digit is in it.
    py = top + dh * rng.uniform(0.1, 0.9)
    px = left + dw * rng.uniform(0.1, 0.9)
    distance = (x - px) * math.cos(angle) + (y - py) * math.sin(angle)
    softness = min(h, w) * rng.uniform(0.01, 0.12)
    shade = 1 / (1 + np.exp(np.clip(-distance / softness, -50, 50)))
    if rng.random() < 0.4:  # a rounded shadow: an ellipse of dark, blurred
        mask = np.zeros((h, w), np.float32)
        axes = (int(w * rng.uniform(0.2, 0.5)), int(h * rng.uniform(0.2, 0.5)))
        cv2.ellipse(mask, (int(px), int(py)), axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        shade = cv2.GaussianBlur(mask, (0, 0), softness)
    gain = 1 - rng.uniform(0.3, 0.65) * shade
    lit = (
        lay_ink(surface, coverage, pen_colour(rng)) * (gain * vignette((h, w), rng, 0.2))[..., None]
    )
    return _jpeg(camera(lit, rng), rng)


def stray_marks(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A clear digit and one to three small pen marks elsewhere on the sheet: a dot, a
    short dash, a tick."""
    surface, coverage, (top, left, dh, dw) = photo_parts(digit, rng)
    h, w = coverage.shape
    size = max(dh, dw)
    marks = np.zeros((h * 4, w * 4), np.uint8)  # drawn at 4x for anti-aliasing
    for _ in range(int(rng.integers(1, 4))):
        for _attempt in range(50):
            my, mx = rng.uniform(0.04, 0.96) * h, rng.uniform(0.04, 0.96) * w
            gap_y = max(top - my, my - (top + dh), 0)
            gap_x = max(left - mx, mx - (left + dw), 0)
            if max(gap_y, gap_x) > 0.3 * size:
                break
        else:
            continue
        pen = max(1, round(size * rng.uniform(0.04, 0.09) * 4))
        length = size * rng.uniform(0.05, 0.25) * 4
        angle = rng.uniform(0, math.pi)
        start = (int(mx * 4), int(my * 4))
        shape = rng.integers(0, 3)
        if shape == 0:  # a dot
            cv2.circle(marks, start, max(2, pen), 255, -1, cv2.LINE_AA)
        else:
            end = (
                int(start[0] + length * math.cos(angle)),
                int(start[1] + length * math.sin(angle)),
            )
            cv2.line(marks, start, end, 255, pen, cv2.LINE_AA)
            if shape == 2:  # a tick
                back = (int(start[0] - length * 0.4 * math.cos(angle - 1.2)),
                        int(start[1] - length * 0.4 * math.sin(angle - 1.2)))  # fmt: skip
                cv2.line(marks, start, back, 255, pen, cv2.LINE_AA)
    extra = cv2.resize(marks, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    ink = np.maximum(coverage, extra)
    lit = lay_ink(surface, ink, pen_colour(rng)) * vignette((h, w), rng, 0.25)[..., None]
    return _jpeg(camera(lit, rng), rng)


def pencil(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A photo of a digit in pencil: grey, faint ink (70-86% of the paper's brightness)."""
    surface, coverage, _ = photo_parts(digit, rng)
    darkening = 1 - rng.uniform(0.70, 0.86)
    lit = (
        surface
        * (1 - darkening * coverage[..., None])
        * vignette(coverage.shape, rng, 0.2)[..., None]
    )
    return _jpeg(camera(lit, rng), rng)


def boxed(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A photo of a digit with a box or a circle drawn around it (a form, a marked answer)."""
    surface, coverage, (top, left, height, width) = photo_parts(digit, rng)
    ring = np.zeros(coverage.shape, np.uint8)
    margin, pen = int(0.2 * max(height, width)), max(2, int(0.05 * height))
    if rng.random() < 0.5:
        corners = ((left - margin, top - margin), (left + width + margin, top + height + margin))
        cv2.rectangle(ring, *corners, 255, pen, cv2.LINE_AA)
    else:
        axes = (width // 2 + margin, height // 2 + margin)
        cv2.ellipse(
            ring, (left + width // 2, top + height // 2), axes, 0, 0, 360, 255, pen, cv2.LINE_AA
        )
    ink = np.maximum(coverage, ring / np.float32(255))
    lit = lay_ink(surface, ink, pen_colour(rng)) * vignette(coverage.shape, rng, 0.2)[..., None]
    return _jpeg(camera(lit, rng), rng)


def paint_28(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 28x28 drawing from a paint program, the digit filling the frame (touching its top
    and bottom, or its sides), black on white: a brush, or a 1-3 px pencil."""
    canvas = np.zeros((28, 28), np.float32)
    height = int(rng.integers(26, 29))
    if rng.random() < 0.5:  # the digit itself, scaled to fill the frame
        ink = ink_of(digit, height, rng, tilt=0)
        if ink.shape[1] > 28:
            ink = cv2.resize(ink, (28, height), interpolation=cv2.INTER_AREA)
    else:  # drawn with a pencil or brush along its centre line
        ink = np.clip(pen_drawing(digit, height, rng.uniform(1.2, 3.0)) * 1.4, 0, 1)
        scale = min(28 / ink.shape[0], 28 / ink.shape[1])
        size = (max(1, int(ink.shape[1] * scale)), max(1, int(ink.shape[0] * scale)))
        ink = cv2.resize(ink, size, interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:  # a pencil: no anti-aliasing
            ink = (ink > 0.45).astype(np.float32)
    top = (28 - ink.shape[0]) // 2 + int(rng.integers(-1, 2)) * (ink.shape[0] < 27)
    left = int(rng.integers(0, 28 - ink.shape[1] + 1))
    canvas = place(canvas, ink, top, left)
    return encode(np.round(255 * (1 - canvas)).astype(np.uint8))


def client_shrunk(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A whole phone photo (about square: clients squash it to 28x28 whatever its shape)
    shrunk to 28x28 by the client before sending (digit ~8-17 px)."""
    side = int(rng.integers(260, 720))
    shape = (side, int(side * rng.uniform(0.85, 1.18)))
    surface, coverage, _ = photo_parts(digit, rng, shape)
    lit = lay_ink(surface, coverage, pen_colour(rng)) * vignette(shape, rng, 0.25)[..., None]
    rgb = camera(lit * rng.uniform(0.75, 1.05), rng)
    small = Image.fromarray(rgb).resize(
        (28, 28),
        rng.choice([Image.Resampling.BILINEAR, Image.Resampling.BOX, Image.Resampling.LANCZOS]),
    )
    grey = rng.random() < 0.5
    return encode(np.asarray(small.convert("L") if grey else small))


def thin_pen(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The digit drawn with a 2-4 px pen on a 1000x1000 white canvas (a signature pad)."""
    side = int(rng.integers(380, 820))
    stroke = pen_drawing(digit, side, rng.uniform(2.0, 4.0))
    canvas = np.zeros((1000, 1000), np.float32)
    top = int(rng.integers(0, max(1, 1000 - stroke.shape[0])))
    left = int(rng.integers(0, max(1, 1000 - stroke.shape[1])))
    canvas = place(canvas, stroke, top, left)
    return encode(np.round(255 * (1 - canvas)).astype(np.uint8))


def canvas_280(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Drawn with a mouse on a 280x280 canvas like the page's (pen 280/14 px): opaque white,
    or strokes on a transparent canvas as some apps export."""
    stroke = pen_drawing(digit, int(rng.integers(150, 230)), 20.0)
    canvas = place(np.zeros((280, 280), np.float32), stroke,
                   int(rng.integers(0, max(1, 280 - stroke.shape[0]))),
                   int(rng.integers(0, max(1, 280 - stroke.shape[1]))))  # fmt: skip
    if rng.random() < 0.5:
        return encode(np.round(255 * (1 - canvas)).astype(np.uint8))
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 80, 3)
    rgba[..., 3] = np.round(255 * canvas)
    return encode(rgba)


def bmp_alpha_zero(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A 32-bit BMP (BITMAPV4HEADER with an alpha mask, as image editors write it) whose
    alpha bytes are all 0: every viewer shows it opaque. Dark digit on white."""
    side = int(rng.integers(56, 200))
    ink = ink_of(digit, int(side * rng.uniform(0.5, 0.8)), rng)
    canvas = place(np.zeros((side, side), np.float32), ink,
                   (side - ink.shape[0]) // 2, (side - ink.shape[1]) // 2)  # fmt: skip
    grey = np.round(255 * (1 - canvas)).astype(np.uint8)
    bgra = np.dstack([grey, grey, grey, np.zeros_like(grey)])[::-1]  # rows bottom-up
    pixels = bgra.tobytes()
    masks = struct.pack("<4I", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)
    info = struct.pack("<IiiHHIIiiII", 108, side, side, 1, 32, 3, len(pixels), 2835, 2835, 0, 0)
    info += masks + b"BGRs" + bytes(36 + 12)  # colour space, endpoints, gamma
    header = struct.pack("<2sIHHI", b"BM", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return header + info + pixels


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float) -> np.ndarray:
    """Points of an elliptical arc, angles in degrees (0 = right, 90 = down)."""
    t = np.radians(np.linspace(start, stop, 40))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _line(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, np.float64)


def pen_strokes(label: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The strokes a person draws `label` with, as polylines in a unit box (x right, y
    down), in one of the usual ways of writing it (a 1 with or without its flag, a 4 open
    or closed, a 7 with or without its bar...)."""
    j = lambda: rng.uniform(-0.04, 0.04)  # noqa: E731 - a hand's wobble
    if label == 0:
        return [_arc(0.5, 0.5, 0.32 + j(), 0.48, -90, 275)]
    if label == 1:
        stem = _line((0.55 + j(), 0.02), (0.5 + j(), 0.98))
        return [stem, _line((0.3, 0.22), (0.55, 0.02))] if rng.random() < 0.5 else [stem]
    if label == 2:
        return [
            np.vstack(
                [
                    _arc(0.5, 0.3, 0.32, 0.28, 190, 370),
                    _line((0.8, 0.35), (0.15, 0.98), (0.9 + j(), 0.98)),
                ]
            )
        ]
    if label == 3:
        return [
            np.vstack(
                [_arc(0.48, 0.26, 0.3, 0.24, 200, 450), _arc(0.48, 0.73, 0.34, 0.25, 270, 520)]
            )
        ]
    if label == 4:
        if rng.random() < 0.5:  # closed: a diagonal into the bar
            return [
                _line((0.65, 0.02), (0.08, 0.68), (0.92, 0.68)),
                _line((0.68, 0.3), (0.68 + j(), 0.98)),
            ]
        return [
            _line((0.22, 0.02), (0.15, 0.6), (0.88, 0.6)),
            _line((0.7, 0.05), (0.7 + j(), 0.98)),
        ]
    if label == 5:
        return [
            np.vstack(
                [
                    _line((0.85 + j(), 0.02), (0.28, 0.02), (0.22, 0.45)),
                    _arc(0.48, 0.68, 0.36, 0.3, 230, 500),
                ]
            )
        ]
    if label == 6:
        return [
            np.vstack(
                [_arc(0.75, 0.55, 0.55, 0.53, 260, 180), _arc(0.5, 0.72, 0.3, 0.26, 180, 540)]
            )
        ]
    if label == 7:
        strokes = [_line((0.1, 0.03), (0.9, 0.03), (0.38 + j(), 0.98))]
        return strokes + [_line((0.4, 0.5), (0.8, 0.5))] if rng.random() < 0.3 else strokes
    if label == 8:
        return [_arc(0.5, 0.26, 0.26, 0.24, 0, 360), _arc(0.5, 0.74, 0.32, 0.25, 0, 360)]
    return [_arc(0.48, 0.3, 0.3, 0.28, 0, 360), _line((0.78, 0.3), (0.7 + j(), 0.98))]


def drawn_digit(digit: np.ndarray, rng: np.random.Generator, label: int) -> bytes:
    """`label` drawn by hand with a 2-4 px pen on a 1000x1000 white canvas, 300-900 px
    tall, slanted a little: the strokes a person draws, not an MNIST digit's centre line."""
    height = rng.uniform(300, 900)
    width = height * rng.uniform(0.5, 0.75)
    slant = rng.uniform(-0.05, 0.25)  # most hands lean right
    top = rng.uniform(0, 1000 - height)
    left = rng.uniform(max(0.0, -slant) * height, 1000 - width - max(slant, 0.0) * height)
    canvas = np.full((1000, 1000), 255, np.uint8)
    pen = max(1, round(rng.uniform(2.0, 4.0)))
    for stroke in pen_strokes(label, rng):
        x = left + width * stroke[:, 0] + slant * height * (1 - stroke[:, 1])
        y = top + height * stroke[:, 1]
        points = np.round(np.stack([x, y], axis=1) * 16).astype(np.int32)
        cv2.polylines(canvas, [points], False, 0, pen, cv2.LINE_AA, 4)
    return encode(canvas)


def typed(digit: np.ndarray, rng: np.random.Generator, label: int) -> bytes:
    """The digit `label` typed in a DejaVu font (bold among them), black on white or
    photographed; `digit` only seeds nothing (typed digits have no handwriting)."""
    fonts = sorted(FONT_DIR.glob("DejaVu*.ttf"))
    if not fonts:
        raise FileNotFoundError(
            f"no DejaVu fonts in {FONT_DIR} for the 'typed' uploads: install fonts-dejavu-core"
        )
    font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), int(rng.integers(40, 160)))
    text = Image.new("L", (400, 400), 0)
    ImageDraw.Draw(text).text((100, 60), str(label), fill=255, font=font)
    ink = np.asarray(text, np.float32) / 255
    rows, cols = np.nonzero(ink > 0.1)
    ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    side = int(max(ink.shape) / rng.uniform(0.35, 0.7))
    canvas = place(np.zeros((side, side), np.float32), ink,
                   (side - ink.shape[0]) // 2, (side - ink.shape[1]) // 2)  # fmt: skip
    return encode(np.round(255 * (1 - canvas)).astype(np.uint8))


def uci_digit(pixels: np.ndarray, rng: np.random.Generator) -> bytes:
    """A UCI handwritten digit (8x8, values 0-16) scaled up to 28-112 px, nearest-neighbour
    or smooth, white on black or black on white."""
    image = np.round(pixels * (255 / 16)).astype(np.uint8)
    side = int(rng.choice([28, 32, 56, 64, 112]))
    method = rng.choice(
        [Image.Resampling.NEAREST, Image.Resampling.BILINEAR, Image.Resampling.BICUBIC]
    )
    big = np.asarray(Image.fromarray(image).resize((side, side), method))
    return encode(big if rng.random() < 0.5 else 255 - big)


def blank_dim(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A dim photo of paper with no digit on it (the answer must be 'no digit')."""
    h, w = int(rng.integers(260, 720)), int(rng.integers(260, 720))
    lit = paper((h, w), rng) * vignette((h, w), rng, 0.3)[..., None] * rng.uniform(0.3, 0.6)
    return _jpeg(camera(lit, rng, noise=5.0), rng)


# Kinds made from an MNIST digit; `typed` takes the label, `uci_digit` an 8x8 UCI digit.
MNIST_KINDS: dict[str, Kind] = {
    "mnist": mnist_png,
    "clean_photo": clean_photo,
    "exif_rotated": exif_rotated,
    "dim_photo": dim_photo,
    "desk": desk_photo,
    "shadow": shadow_photo,
    "stray_marks": stray_marks,
    "pencil": pencil,
    "boxed": boxed,
    "paint_28": paint_28,
    "client_shrunk": client_shrunk,
    "thin_pen": thin_pen,
    "canvas_280": canvas_280,
    "bmp_alpha_zero": bmp_alpha_zero,
}
