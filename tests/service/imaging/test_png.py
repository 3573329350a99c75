"""The plain greyscale PNG decoder: Pillow's pixels exactly, and None for anything else."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from service.imaging import png as png_module
from service.imaging.png import declares_plain_grey, plain_grey_png, plain_grey_pngs
from tests.tools import traced_peak
from tests.uploads import png

LIMITS = {"max_side": 512, "max_pixels": 512 * 512}


def pillow(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize("shape", [(28, 28), (1, 1), (3, 500), (512, 512)])
def test_same_pixels_as_pillow(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    # Noise, gradients and flat areas: the encoder picks every PNG row filter among them.
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    gradient = (np.add.outer(np.arange(shape[0]), np.arange(shape[1])) % 256).astype(np.uint8)
    image = np.where(rng.random(shape) < 0.5, noise, gradient)
    data = png(image)
    decoded = plain_grey_png(data, **LIMITS)
    assert decoded is not None
    np.testing.assert_array_equal(decoded, pillow(data))


def test_several_idat_chunks() -> None:
    image = np.random.default_rng(1).integers(0, 256, (512, 512), dtype=np.uint8)
    data = png(image)
    assert data.count(b"IDAT") > 1  # Pillow splits big image data
    np.testing.assert_array_equal(plain_grey_png(data, **LIMITS), image)


def grey_with_transparency() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(out, format="PNG", transparency=0)
    return out.getvalue()


def with_bad_crc(data: bytes) -> bytes:
    return data[:29] + bytes([data[29] ^ 1]) + data[30:]  # the IHDR chunk's CRC


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def grey_png(header: bytes) -> bytes:
    """A greyscale PNG of 4 rows of 4 zeros with this IHDR body."""
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 5 * 4))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + idat + chunk(b"IEND", b"")


def short_image_data() -> bytes:
    header = struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 29 * 10)  # 10 of 28 rows
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "data",
    [
        png(np.zeros((28, 28, 3), np.uint8)),  # RGB
        png(np.zeros((28, 28, 2), np.uint8)),  # grey + alpha
        png(np.zeros((28, 28), np.uint16)),  # 16-bit
        grey_with_transparency(),
        png(np.zeros((600, 20), np.uint8)),  # beyond the working size
        with_bad_crc(png(np.zeros((28, 28), np.uint8))),
        png(np.zeros((28, 28), np.uint8))[:-12],  # no IEND
        b"GIF89a" + b"\0" * 40,
        b"",
        grey_png(struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0) + b"\0"),  # IHDR of 14 bytes
        grey_png(struct.pack(">IIBBBBB", 0, 4, 8, 0, 0, 0, 0)),
        grey_png(struct.pack(">IIBBBBB", 4, 0, 8, 0, 0, 0, 0)),
    ],
    ids=[
        "rgb",
        "la",
        "16-bit",
        "trns",
        "too-big",
        "bad-crc",
        "no-iend",
        "gif",
        "empty",
        "ihdr-14-bytes",
        "no-width",
        "no-height",
    ],  # fmt: skip
)
def test_anything_else_is_left_to_the_general_path(data: bytes) -> None:
    assert plain_grey_png(data, **LIMITS) is None


def test_the_pixel_limit_is_the_general_paths_to_enforce() -> None:
    data = png(np.zeros((100, 100), np.uint8))
    assert plain_grey_png(data, max_side=512, max_pixels=9_999) is None
    assert plain_grey_png(data, max_side=512, max_pixels=10_000) is not None


def test_image_data_ending_early_reads_as_pillow_reads_it() -> None:
    # Pillow fills the missing rows with 0 rather than failing; so must we, to agree.
    data = short_image_data()
    np.testing.assert_array_equal(plain_grey_png(data, **LIMITS), pillow(data))


def bad_filter_type() -> bytes:
    header = struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x07" + b"\0" * 28 + b"\0" * 29 * 27)  # filter type 7 does not exist
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def inflating_past_its_rows() -> bytes:
    header = struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 29 * 28 * 1000)  # 1000 times the image's rows
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_many_files_decode_as_each_does_alone() -> None:
    rng = np.random.default_rng(5)

    def mixed(shape: tuple[int, int]) -> bytes:
        noise = rng.integers(0, 256, shape, dtype=np.uint8)
        gradient = (np.add.outer(np.arange(shape[0]), np.arange(shape[1])) * 7 % 256).astype(
            np.uint8
        )
        return png(np.where(rng.random(shape) < 0.3, noise, gradient))

    datas = [
        mixed((28, 28)),
        png(np.zeros((28, 28, 3), np.uint8)),  # not plain: None
        mixed((28, 28)),
        short_image_data(),  # 28 wide, rows missing: decoded alone, as Pillow does
        mixed((40, 28)),
        mixed((28, 50)),
        inflating_past_its_rows(),
        mixed((13, 28)),
        mixed((28, 50)),
    ]
    many = plain_grey_pngs(datas, **LIMITS)
    assert [m is None for m in many] == [i == 1 for i in range(len(datas))]
    for data, pixels in zip(datas, many, strict=True):
        if pixels is not None:
            np.testing.assert_array_equal(pixels, pillow(data))


def up_filtered(pixels: np.ndarray) -> bytes:
    """A PNG whose every row, the first too, is stored with the Up filter (the row above
    the first counts as zeros)."""
    above = np.vstack([np.zeros((1, pixels.shape[1]), np.uint8), pixels[:-1]])
    rows = np.hstack([np.full((len(pixels), 1), 2, np.uint8), pixels - above])
    header = struct.pack(">IIBBBBB", pixels.shape[1], len(pixels), 8, 0, 0, 0, 0)
    idat = zlib.compress(rows.tobytes())
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_no_file_reads_the_rows_of_the_one_before() -> None:
    rng = np.random.default_rng(9)
    images = [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(3)]
    many = plain_grey_pngs([up_filtered(image) for image in images], **LIMITS)
    for image, pixels in zip(images, many, strict=True):
        np.testing.assert_array_equal(pixels, image)


def test_one_corrupt_file_does_not_spoil_the_others() -> None:
    good = [png(np.full((28, 28), v, np.uint8)) for v in (3, 200)]
    many = plain_grey_pngs([good[0], bad_filter_type(), good[1]], **LIMITS)
    assert many[1] is None and plain_grey_png(bad_filter_type(), **LIMITS) is None
    assert many[0] is not None and many[2] is not None
    assert (many[0] == 3).all() and (many[2] == 200).all()


def _counting_decoder_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(width, height) of each call of Pillow's zlib + filter decoder from now on."""
    calls: list[tuple[int, int]] = []
    original = png_module._pixels

    def counted(width: int, height: int, compressed: bytes) -> np.ndarray | None:
        calls.append((width, height))
        return original(width, height, compressed)

    monkeypatch.setattr(png_module, "_pixels", counted)
    return calls


def test_files_of_one_width_are_unfiltered_in_one_decoder_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The point of `plain_grey_pngs`: one call per width for the files that inflate to
    exactly their rows (each with a row of zeros before it); a file that does not, or is
    alone at its width, is decoded alone, as are all when the stacked call fails."""
    rng = np.random.default_rng(3)
    digits = [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(3)]
    wide = [rng.integers(0, 256, (28, 40), dtype=np.uint8) for _ in range(2)]
    datas = [
        png(digits[0]), png(wide[0]), short_image_data(), png(digits[1]), png(wide[1]),
        png(digits[2]), png(np.zeros((28, 13), np.uint8)),
    ]  # fmt: skip
    calls = _counting_decoder_calls(monkeypatch)
    many = plain_grey_pngs(datas, **LIMITS)
    assert sorted(calls) == [(13, 28), (28, 28), (28, 3 * 29), (40, 2 * 29)]
    for data, pixels in zip(datas, many, strict=True):
        np.testing.assert_array_equal(pixels, pillow(data))
    np.testing.assert_array_equal(many[3], digits[1])


def test_a_stream_inflating_past_its_rows_is_read_no_further(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 28x28 file whose image data inflates to 80 MB: `_scanlines` stops one byte past
    the rows (a bounded inflate), so the batch never holds the 80 MB, and the file is
    decoded alone, as Pillow would."""
    header = struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)
    deflate = zlib.compressobj(9)
    idat = b"".join(deflate.compress(bytes(1 << 20)) for _ in range(80)) + deflate.flush()
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
    bomb += chunk(b"IEND", b"")
    assert len(bomb) < 100_000
    datas = [png(np.full((28, 28), 9, np.uint8)), bomb, png(np.full((28, 28), 7, np.uint8))]
    calls = _counting_decoder_calls(monkeypatch)
    with traced_peak() as peak:
        many = plain_grey_pngs(datas, **LIMITS)
    assert peak[0] < 4 << 20
    assert sorted(calls) == [(28, 28), (28, 2 * 29)]
    assert [int(pixels.max()) for pixels in many] == [9, 0, 7]


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mutated_plain_pngs_read_as_pillow_reads_them_or_not_at_all(data: st.DataObject) -> None:
    """Fuzzed beside Pillow's path: for any mutation of a plain greyscale PNG the direct
    decoder gives Pillow's pixels or None (the general path then decides), never others."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    raw = bytearray(png(rng.integers(0, 256, (data.draw(st.integers(1, 40)), 28), np.uint8)))
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    # Half the time with every CRC made right again, so the checks past the CRCs (IHDR's
    # fields, the zlib stream, the filters) meet the mutation.
    mutated = _with_right_crcs(bytes(raw)) if data.draw(st.booleans()) else bytes(raw)
    pixels = plain_grey_png(mutated, 512, 1 << 20)
    if pixels is None:
        return
    with Image.open(io.BytesIO(mutated)) as image:
        image.load()
        np.testing.assert_array_equal(pixels, np.asarray(image))


def _with_right_crcs(data: bytes) -> bytes:
    out, pos = bytearray(data[:8]), 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        body = data[pos + 4 : pos + 8 + length]
        if pos + 12 + length > len(data):
            break
        out += data[pos : pos + 8 + length] + struct.pack(">I", zlib.crc32(body))
        pos += 12 + length
    return bytes(out + data[pos:])


def _saved(image: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", **options)
    return out.getvalue()


def test_the_header_of_an_mnist_digit_declares_a_plain_grey_28x28_png() -> None:
    digit = _saved(Image.new("L", (28, 28)))
    assert declares_plain_grey(digit, 28, 28)
    assert not declares_plain_grey(digit, 28, 29)
    assert declares_plain_grey(digit[:33], 28, 28)  # the signature and IHDR: all it reads
    assert not declares_plain_grey(digit[:32], 28, 28)  # the header cut short


@pytest.mark.parametrize(
    ("image", "options"),
    [
        (Image.new("RGB", (28, 28)), {}),
        (Image.new("LA", (28, 28)), {}),
        (Image.new("I;16", (28, 28)), {}),
        (Image.new("1", (28, 28)), {}),
        (Image.new("P", (28, 28)), {}),
    ],
)
def test_other_pngs_do_not_declare_one(image: Image.Image, options: dict) -> None:
    assert not declares_plain_grey(_saved(image, **options), 28, 28)


def test_an_interlaced_grey_png_does_not_declare_one() -> None:
    data = bytearray(_saved(Image.new("L", (28, 28))))
    data[28] = 1  # IHDR's interlace method: Adam7 (Pillow writes none)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    assert not declares_plain_grey(bytes(data), 28, 28)
