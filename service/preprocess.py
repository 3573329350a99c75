"""Turn an uploaded image into an MNIST sample: pure functions on bytes and arrays.

MNIST itself was made by fitting each digit into a 20x20 box keeping its aspect ratio, then
centring it by centre of mass in a 28x28 field, white ink on black. Real uploads (photos of
paper, canvas drawings with transparency, any size or polarity) go through the same steps:

    decode (bounded) -> greyscale + alpha -> composite -> polarity -> background and noise
    removal -> crop to the ink -> fit 20x20 -> centre of mass to (14, 14) -> [0, 1]

A 28x28 upload is not rescaled, only re-centred, so an MNIST digit passes through unchanged
in effect.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from service.errors import BlankImage, ImageTooLarge, UndecodableImage, UnsupportedImage
from service.png import plain_grey_png

ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
SIDE = 28
BOX = 20
CENTRE = 14.0  # MNIST's centres of mass average (14.0, 14.0) in pixel-index coordinates
WORKING_SIZE = 512  # larger uploads are reduced to about this before any other step
INK_THRESHOLD = 0.1  # fraction of full ink that counts for the bounding box

# Magic bytes of the formats we read, to say "truncated" rather than "unknown".
_OWN_FORMATS = (
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8", "JPEG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"RIFF", "WebP"),
)
# Magic bytes of formats people send that we do not read: named, so the 415 says which.
_OTHER_FORMATS = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"%PDF", "PDF"),
    (b"SIMPLE  =", "FITS"),
    (b"8BPS", "Photoshop"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"<svg", "SVG"),
    (b"<?xml", "XML/SVG"),
)


def decode(data: bytes, max_pixels: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode PNG/JPEG/GIF/BMP/WebP bytes into greyscale (H, W) in [0, 255] (uint8 or
    float32) and an alpha channel (or None), refusing other formats and too many pixels
    before decoding."""
    if not data:
        raise UndecodableImage("the upload is empty: send the bytes of a PNG or JPEG image")
    plain = plain_grey_png(data, WORKING_SIZE, max_pixels)
    if plain is not None:
        return plain, None
    image = _open(data, max_pixels)
    if image.format == "JPEG":
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale, in greyscale: a 12 MP photo then
        # costs a fraction of the time and memory (and passes the pixel limit, which counts
        # the pixels actually decoded), and a digit needs far fewer pixels.
        image.draft("L", (WORKING_SIZE, WORKING_SIZE))
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels} pixels: scale it down before sending"
        )
    if width == 0 or height == 0:
        raise UndecodableImage(f"the image is {width}x{height} pixels")
    try:
        image.load()
        return _grey_and_alpha(image)
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError) as exc:
        raise UndecodableImage(
            f"the {image.format} image is truncated or corrupt ({type(exc).__name__})"
        ) from exc


def _open(data: bytes, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        except UnidentifiedImageError:
            pass
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ImageTooLarge(
                f"the image is over the limit of {max_pixels} pixels: scale it down before sending"
            ) from exc
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError) as exc:
            raise UndecodableImage(f"cannot read the image header ({type(exc).__name__})") from exc
    for magic, name in _OWN_FORMATS:
        if data.startswith(magic):
            raise UndecodableImage(
                f"the upload looks like a {name} image but is truncated or corrupt"
            )
    head = data[:64].lstrip()
    for magic, name in _OTHER_FORMATS:
        if head.startswith(magic):
            raise UnsupportedImage(
                f"{name} images are not supported: send PNG, JPEG, GIF, BMP or WebP"
            )
    raise UndecodableImage(
        "the upload is not a PNG, JPEG, GIF, BMP or WebP image (cannot identify its format)"
    )


def _grey_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit or float greyscale: stretch to 0..255 (convert("L") would clip instead).
        values = np.asarray(image, dtype=np.float32)
        return values * (255.0 / max(float(values.max()), 1.0)), None
    if image.mode == "L" and max(image.size) <= WORKING_SIZE:
        # Already what we need (an MNIST-like upload): skip convert's copy and the array
        # interface, 15 us of a 28x28 PNG's ~40 us decode.
        return _pixels(image), None
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        image = image.convert("RGBA").convert("LA")
    else:
        image = image.convert("L")
    # Reduce big images to about WORKING_SIZE first (a box filter): every later step is
    # then cheap, and a digit keeps far more pixels than the 20x20 it will become.
    factor = math.ceil(max(image.size) / WORKING_SIZE)
    if factor > 1:
        image = image.reduce(factor)
    if has_alpha:
        la = np.asarray(image, dtype=np.float32)
        return la[..., 0], la[..., 1]
    return np.asarray(image, dtype=np.float32), None


def _pixels(image: Image.Image) -> np.ndarray:
    return np.frombuffer(image.tobytes(), np.uint8).reshape(image.height, image.width)


def to_mnist(grey: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """An MNIST-style sample (784,) float32 in [0, 1] from greyscale (H, W) in [0, 255]."""
    ink = ink_map(grey, alpha)
    if float(ink.max()) <= INK_THRESHOLD:
        raise BlankImage("no digit found: the image is blank or has too little contrast")
    if ink.shape == (SIDE, SIDE):
        return centre_by_mass(ink).reshape(-1)
    rows, cols = np.nonzero(ink > INK_THRESHOLD)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    return centre_by_mass(fit_box(crop)).reshape(-1)


def ink_map(grey: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Ink intensity in [0, 1], light on dark, with background and its noise removed."""
    grey = grey.astype(np.float32, copy=True)
    if alpha is not None and alpha.min() < 255:
        grey = _composite(grey, alpha / 255.0)
    # One sort of the border gives its median and 95th percentile; np.median and
    # np.percentile cost ~50 us each on a few hundred values (most of a 28x28 request).
    border = np.sort(np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]]))
    background, high = _quantile(border, 0.5), _quantile(border, 0.95)
    if background > 127:  # dark ink on light paper: MNIST is the other way round
        grey = 255.0 - grey
        background, high = 255.0 - background, 255.0 - _quantile(border, 0.05)
    peak = float(grey.max())
    if peak - background < 1.0:
        return np.zeros_like(grey)
    # The border's spread above its median is paper texture, lighting and JPEG noise: an
    # MNIST digit's border is all zero, so this floor is 0 for it and changes nothing.
    floor = min(max((high - background) / (peak - background), 0.0), 0.5)
    if background == 0.0 and floor == 0.0:
        # A clean black border, as every MNIST digit has: the same map in one pass.
        grey *= 1.0 / peak
        return np.minimum(grey, 1.0, out=grey)
    ink = (grey - background) * (1.0 / ((peak - background) * (1.0 - floor))) - floor / (1 - floor)
    np.maximum(ink, 0.0, out=ink)  # np.clip's Python wrapper costs more than both
    return np.minimum(ink, 1.0, out=ink)


def _quantile(ascending: np.ndarray, q: float) -> float:
    """Linear-interpolated quantile of an already sorted 1-D array (as np.percentile)."""
    position = q * (len(ascending) - 1)
    low = int(position)
    high = min(low + 1, len(ascending) - 1)
    return float(ascending[low] + (ascending[high] - ascending[low]) * (position - low))


def _composite(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    # Strokes on a transparent canvas: put them on the background that contrasts with them
    # (dark strokes on white, light strokes on black), so the ink is never lost.
    weight = float(alpha.sum())
    stroke = float((grey * alpha).sum() / weight) if weight > 0 else 0.0
    background = 255.0 if stroke < 128 else 0.0
    return grey * alpha + background * (1.0 - alpha)


def fit_box(crop: np.ndarray, box: int = BOX) -> np.ndarray:
    """Resize so the longer side is `box` pixels, keeping the aspect ratio (as MNIST did)."""
    height, width = crop.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(crop.astype(np.float32), mode="F").resize(
        size, Image.Resampling.LANCZOS
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def centre_by_mass(patch: np.ndarray) -> np.ndarray:
    """Paste `patch` into a 28x28 field so that its centre of mass lands on (14, 14)."""
    # Row and column sums, then two dot products: 20 us less per 28x28 upload than
    # weighting every pixel by np.indices.
    row_mass, col_mass = np.add.reduce(patch, axis=1), np.add.reduce(patch, axis=0)
    total = float(row_mass.sum())
    com_r = float(row_mass @ np.arange(len(row_mass), dtype=np.float32)) / total
    com_c = float(col_mass @ np.arange(len(col_mass), dtype=np.float32)) / total
    top, left = round(CENTRE - com_r), round(CENTRE - com_c)
    if top == left == 0 and patch.shape == (SIDE, SIDE):
        return patch.astype(np.float32, copy=False)  # already centred, as MNIST digits are
    field = np.zeros((SIDE, SIDE), np.float32)
    h, w = patch.shape
    # Clip the paste to the field; a shifted 28x28 input may lose a sliver of empty border.
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + h, SIDE), min(left + w, SIDE)
    if r1 > r0 and c1 > c0:
        field[r0:r1, c0:c1] = patch[r0 - top : r1 - top, c0 - left : c1 - left]
    return field


def preprocess(data: bytes, max_pixels: int) -> np.ndarray:
    """Bytes of an uploaded image -> (784,) float32 MNIST sample."""
    grey, alpha = decode(data, max_pixels)
    return to_mnist(grey, alpha)
