"""Decoding uploads as viewers show them, and refusing what is not an image."""

from __future__ import annotations

import gc
import io
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from service.errors import ImageTooLarge, UndecodableImage, UnsupportedImage
from service.imaging import decode as decode_module
from service.imaging.decode import (
    MAX_JPEG_SCAN_PIXELS,
    MAX_JPEG_SCANS,
    MAX_JPEG_SEGMENTS,
    MAX_SIDE,
    WORKING_SIZE,
    Picture,
    check_jpeg_scans,
    declared_pixels,
    decode,
    decode_many,
)
from tests.uploads import gif_bomb, jpeg_repeating_a_scan, png, png_header_only

LIMIT = 16_000_000


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def corner_mark() -> np.ndarray:
    """60x40 (H x W) white with a black block in the top-left corner: where it ends up
    shows which way a picture was turned."""
    pixels = np.full((60, 40), 255, np.uint8)
    pixels[:10, :10] = 0
    return pixels


def dark_corner(picture: Picture) -> tuple[int, int]:
    """(row, column) of the dark block's centre."""
    rows, cols = np.nonzero(picture.grey < 128)
    return round(rows.mean()), round(cols.mean())


def bmp_v4(rgba: np.ndarray) -> bytes:
    """A 32-bit BMP with a BITMAPV4HEADER and an alpha mask, as image editors write it."""
    height, width = rgba.shape[:2]
    pixels = rgba[::-1, :, [2, 1, 0, 3]].tobytes()  # BGRA rows, bottom-up
    info = struct.pack("<IiiHHIIiiII", 108, width, height, 1, 32, 3, len(pixels), 2835, 2835, 0, 0)
    info += struct.pack("<4I", 0xFF0000, 0xFF00, 0xFF, 0xFF000000) + b"BGRs" + bytes(48)
    header = struct.pack("<2sIHHI", b"BM", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return header + info + pixels


@pytest.mark.parametrize(
    ("orientation", "corner"),
    [(1, (4, 4)), (3, (55, 35)), (6, (4, 55)), (8, (35, 4)), (2, (4, 35)), (5, (4, 4))],
)
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_is_applied(fmt: str, orientation: int, corner: tuple[int, int]) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = Image.fromarray(corner_mark()).convert("RGB")
    options = {"quality": 95} if fmt != "PNG" else {}
    picture = decode(encode(stored, fmt, exif=exif.tobytes(), **options), LIMIT)
    turned = orientation in (5, 6, 7, 8)
    assert picture.grey.shape == ((40, 60) if turned else (60, 40))
    assert dark_corner(picture) == pytest.approx(corner, abs=1)


def test_a_plain_grey_png_with_exif_is_turned_too() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    picture = decode(encode(Image.fromarray(corner_mark()), "PNG", exif=exif.tobytes()), LIMIT)
    assert picture.grey.shape == (40, 60)


@pytest.mark.parametrize("mode", ["L", "RGB"])  # the plain-PNG path, and Pillow's
@pytest.mark.parametrize("where", ["XML:com.adobe.xmp", "Raw profile type exif"])
def test_an_orientation_outside_the_exif_block_is_not_applied(mode: str, where: str) -> None:
    """Browsers turn a picture by its EXIF block alone, and so does the plain-PNG path:
    Pillow's getexif() also reads XMP and ImageMagick's text chunk, so the same file was
    turned or not by its colour mode (mutation review)."""
    from PIL import PngImagePlugin

    exif = Image.Exif()
    exif[0x0112] = 6
    text = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-'
        'rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
        'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
        if where.startswith("XML")
        else "\nexif\n" + str(len(exif.tobytes()) + 6) + "\n" + (b"Exif\0\0" + exif.tobytes()).hex()
    )
    info = PngImagePlugin.PngInfo()
    info.add_itxt(where, text) if where.startswith("XML") else info.add_text(where, text)
    data = encode(Image.fromarray(corner_mark()).convert(mode), "PNG", pnginfo=info)
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == 6  # what Pillow would do
    assert decode(data, LIMIT).grey.shape == (60, 40)


def test_bmp_whose_alpha_is_all_zero_is_read_opaque() -> None:
    grey = corner_mark()
    rgba = np.dstack([grey, grey, grey, np.zeros_like(grey)])
    data = bmp_v4(rgba)
    assert Image.open(io.BytesIO(data)).mode == "RGBA"  # Pillow does read the alpha
    picture = decode(data, LIMIT)
    assert picture.alpha is None
    np.testing.assert_array_equal(picture.grey, grey)


@pytest.mark.parametrize("level", [0, 128, 255])
def test_alpha_of_one_value_carries_no_information(level: int) -> None:
    grey = corner_mark()
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, level)])
    picture = decode(png(rgba, mode="RGBA"), LIMIT)
    assert picture.alpha is None and picture.grey.min() == 0


def test_alpha_that_draws_the_strokes_is_kept() -> None:
    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[10:40, 20:30, 3] = 255  # black strokes on a transparent (black) canvas
    picture = decode(png(rgba, mode="RGBA"), LIMIT)
    assert picture.alpha is not None and picture.alpha.max() == 255


def test_an_animation_shows_its_first_frame() -> None:
    first, second = Image.fromarray(corner_mark()), Image.fromarray(corner_mark()[::-1].copy())
    data = encode(first, "GIF", save_all=True, append_images=[second])
    assert dark_corner(decode(data, LIMIT)) == pytest.approx((4, 4), abs=1)


def test_big_photo_is_reduced_and_says_by_how_much() -> None:
    photo = Image.new("L", (1200, 900), 230)
    picture = decode(encode(photo, "PNG"), LIMIT)
    assert max(picture.grey.shape) <= WORKING_SIZE
    assert picture.scale == pytest.approx(1200 / picture.grey.shape[1], rel=0.01)


def test_big_jpeg_is_decoded_at_reduced_scale_but_big_png_is_refused() -> None:
    photo = Image.new("L", (4000, 3000), 230)
    limit = 8_388_608
    picture = decode(encode(photo, "JPEG", quality=80), limit)
    assert picture.scale == pytest.approx(4000 / picture.grey.shape[1], rel=0.01)
    with pytest.raises(ImageTooLarge, match="4000x3000 = 12000000 pixels"):
        decode(encode(photo, "PNG"), limit)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_every_accepted_format_decodes(fmt: str) -> None:
    image = Image.fromarray(corner_mark())
    picture = decode(encode(image.convert("RGB") if fmt == "JPEG" else image, fmt), LIMIT)
    assert picture.grey.shape == (60, 40) and dark_corner(picture) == pytest.approx((4, 4), abs=1)


def test_sixteen_bit_greyscale_is_stretched_not_clipped() -> None:
    wide = (corner_mark().astype(np.uint16) * 200).astype(np.uint16)
    picture = decode(encode(Image.fromarray(wide), "PNG"), LIMIT)
    assert picture.grey.max() == pytest.approx(255.0)


def test_decode_many_keeps_order_and_errors_in_place() -> None:
    good = png(corner_mark())
    results = decode_many([good, b"", encode(Image.fromarray(corner_mark()), "BMP")], LIMIT)
    assert isinstance(results[0], Picture) and isinstance(results[2], Picture)
    assert isinstance(results[1], UndecodableImage)


def test_empty_upload() -> None:
    with pytest.raises(UndecodableImage, match="the upload is empty"):
        decode(b"", LIMIT)


def test_text_is_not_an_image() -> None:
    with pytest.raises(UndecodableImage, match="cannot identify its format"):
        decode(b"hello, I am a text file\n", LIMIT)


def test_truncated_png() -> None:
    data = png(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    with pytest.raises(UndecodableImage, match="the PNG image is truncated or corrupt"):
        decode(data[: len(data) // 2], LIMIT)


def test_png_with_a_bad_crc() -> None:
    data = bytearray(png(corner_mark()))
    data[40] ^= 0xFF  # inside the IDAT payload
    with pytest.raises(UndecodableImage):
        decode(bytes(data), LIMIT)


@pytest.mark.parametrize(
    ("fmt", "name"), [("TIFF", "TIFF"), ("EPS", "PostScript/EPS"), ("PDF", "PDF")]
)
def test_other_formats_are_415_even_when_valid(fmt: str, name: str) -> None:
    data = encode(Image.fromarray(corner_mark()).convert("RGB"), fmt)
    with pytest.raises(UnsupportedImage, match=f"^{name} images are not supported"):
        decode(data, LIMIT)


def test_svg_is_415() -> None:
    with pytest.raises(UnsupportedImage, match="SVG images are not supported"):
        decode(b'<svg xmlns="http://www.w3.org/2000/svg"/>', LIMIT)


@pytest.mark.parametrize("side", [40000, 10000, 5000])
def test_huge_header_is_refused_before_decoding(side: int, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[object] = []
    original = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(self) or original(self))
    data = png_header_only(side, side)
    assert len(data) < 200
    with pytest.raises(ImageTooLarge, match=f"over the limit of {LIMIT} pixels"):
        decode(data, LIMIT)
    assert loads == []


def test_gif_bomb_is_refused() -> None:
    with pytest.raises(ImageTooLarge, match=f"over the limit of {LIMIT} pixels"):
        decode(gif_bomb(), LIMIT)


def test_truncated_header_names_the_format() -> None:
    with pytest.raises(UndecodableImage, match="looks like a PNG image but is truncated"):
        decode(png(corner_mark())[:30], LIMIT)


def exif_block(*tags: tuple[int, int, int, bytes]) -> bytes:
    """A little-endian EXIF block (TIFF header, one IFD) of (tag, type, count, value)."""
    ifd = struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        ifd += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
    return b"II*\0\x08\0\0\0" + ifd + b"\0\0\0\0"


@pytest.mark.parametrize(
    "bad_tag",
    [
        (0x0128, 2, 4, b"abc\0"),  # ResolutionUnit typed ASCII
        (0x010E, 11, 1, b"\0\0\x80\x3f"),  # ImageDescription typed FLOAT
        (0x0128, 8, 1, b"\xff\xff"),  # ResolutionUnit a negative SSHORT
        (700, 3, 1, struct.pack("<H", 300)),  # XMP typed SHORT
    ],
)
def test_a_malformed_exif_tag_beside_the_orientation_does_not_fail_the_pixels(
    bad_tag: tuple[int, int, int, bytes],
) -> None:
    exif = exif_block((0x0112, 3, 1, struct.pack("<H", 6)), bad_tag)
    picture = decode(encode(Image.fromarray(corner_mark()), "PNG", exif=exif), LIMIT)
    assert picture.grey.shape == (40, 60)  # turned, as viewers that read the tag do
    assert dark_corner(picture) == pytest.approx((4, 55), abs=1)


def test_a_broken_exif_block_means_no_orientation() -> None:
    data = encode(Image.fromarray(corner_mark()), "PNG", exif=b"II*\0\xff\xff\xff\x7f")
    assert decode(data, LIMIT).grey.shape == (60, 40)


def test_declared_pixels_reads_only_the_header() -> None:
    assert declared_pixels(png_header_only(40000, 40000)) == 1_600_000_000
    assert declared_pixels(encode(Image.new("RGB", (300, 200)), "JPEG")) == 60_000
    assert declared_pixels(gif_bomb(5000)) == 25_000_000
    assert declared_pixels(b"not an image") is None


def test_declared_pixels_of_a_png_at_the_edges_of_its_header() -> None:
    header = png_header_only(28, 28)
    assert declared_pixels(header[:24]) == 784  # the signature, IHDR's length and type, W, H
    # IHDR's fields are unsigned: a width over 2**31 is huge, never negative (is_small
    # would take a negative count as small and decode the file on the event loop).
    assert declared_pixels(png_header_only(2**31 + 1, 1)) == 2**31 + 1
    # "IHDR" at byte 12 does not make a PNG without its signature.
    assert declared_pixels(b"\0" * 12 + header[12:]) is None
    # Nor is a format the service refuses read for its size.
    assert declared_pixels(encode(Image.new("L", (30, 20)), "TIFF")) is None


def test_plain_grey_pngs_skip_pillows_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """MNIST digits saved as PNG are decoded by `png.plain_grey_pngs` together; only what
    it cannot read goes through Pillow's file plugins, one by one."""
    general: list[bytes] = []
    original = decode_module._decode_with_pillow
    monkeypatch.setattr(
        decode_module,
        "_decode_with_pillow",
        lambda data, max_pixels: general.append(data) or original(data, max_pixels),
    )
    digits = [png(corner_mark()) for _ in range(3)]
    bmp = encode(Image.fromarray(corner_mark()), "BMP")
    results = decode_many([*digits, bmp], LIMIT)
    assert general == [bmp]
    for result in results:
        assert isinstance(result, Picture)
        np.testing.assert_array_equal(result.grey, results[-1].grey)


def test_a_jpeg_repeating_a_scan_is_refused_before_decoding() -> None:
    data = jpeg_repeating_a_scan(9000, 3000)  # issue 15: 16.5 s of CPU after its 504
    with pytest.raises(
        ImageTooLarge, match="the JPEG has 3005 scans .* over the limits of 64 scans"
    ):
        decode(data, LIMIT)


def test_scans_times_stored_pixels_is_bounded_even_within_the_scan_count() -> None:
    assert 7 <= MAX_JPEG_SCANS
    with pytest.raises(ImageTooLarge, match="7 scans of 81000000 pixels"):
        decode(jpeg_repeating_a_scan(9000, 2), 8_388_608)
    # The same picture with one scan fewer is within the work bound: scaled, not refused.
    assert decode(jpeg_repeating_a_scan(9000, 1), 8_388_608).grey.shape == (225, 225)


def test_a_baseline_jpeg_counts_its_scans_and_passes() -> None:
    out = io.BytesIO()
    Image.new("L", (64, 64), 255).save(out, format="JPEG")
    assert out.getvalue().count(b"\xff\xda") == 1
    assert decode(out.getvalue(), LIMIT).grey.shape == (64, 64)


@pytest.mark.parametrize("size", [(1, 8_388_608), (MAX_SIDE + 1, 2)])
def test_a_side_over_the_limit_is_refused_before_decoding(size: tuple[int, int]) -> None:
    data = encode(Image.new("I;16", size), "PNG")  # issue 15: 24 KB, 190 MB to decode
    with pytest.raises(ImageTooLarge, match=f"over the limit of {MAX_SIDE} pixels a side"):
        decode(data, LIMIT)


def test_a_16_bit_image_at_the_side_limit_is_reduced_like_an_8_bit_one() -> None:
    picture = decode(encode(Image.new("I;16", (MAX_SIDE, 64), 40_000), "PNG"), LIMIT)
    assert picture.grey.shape == (1, WORKING_SIZE)
    assert picture.scale == MAX_SIDE / WORKING_SIZE


def test_refused_uploads_leave_no_cyclic_garbage() -> None:
    """Each error of decode_many once kept its frame (and the uploads) alive in a cycle
    until a full collection: 100 KB per refused batch image, 31 MB over 300 batches
    (bench/soak.py found it)."""
    tall = encode(Image.new("I;16", (1, 8_388_608)), "PNG")
    # Its IDAT is not zlib: Pillow's OSError, whose traceback holds decode_many's frame too,
    # is what the UndecodableImage is raised from.
    corrupt = encode(Image.new("L", (28, 28)), "PNG").replace(b"IDATx", b"IDAT\x00")
    gc.collect()
    gc.disable()
    try:
        results = decode_many([tall, b"not an image", tall, corrupt], LIMIT)
        kinds = [ImageTooLarge, UndecodableImage, ImageTooLarge, UndecodableImage]
        assert [type(r) for r in results] == kinds
        del results
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_only_the_first_frame_of_an_animation_is_decoded() -> None:
    """The frames an upload holds are bounded by what is read: the first one, however
    many follow (3,000 here; Pillow seeks no further than asked)."""
    frames = [Image.new("L", (64, 64), 255 if i else 0) for i in range(3000)]
    for i, frame in enumerate(frames[1:]):  # each its own, or the encoder merges them
        frame.putpixel((i % 64, i // 64), 0)
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    one = io.BytesIO()
    frames[0].save(one, format="GIF")
    assert len(out.getvalue()) > 100 * len(one.getvalue())
    picture = decode(out.getvalue(), LIMIT)
    assert picture.grey.max() == 0  # the first frame, black; every later one is white-ish
    np.testing.assert_array_equal(picture.grey, decode(one.getvalue(), LIMIT).grey)


def _jpeg(side: int = 64) -> bytes:
    return encode(Image.new("L", (side, side), 200), "JPEG")


@pytest.mark.parametrize(
    "filler",
    [b"\xff\xe1\x00\x02" * 2_090_000, b"\xff" * 8_000_000],  # empty APP1 segments; fill bytes
    ids=["2 million empty APP1 segments", "8 MB of fill bytes"],
)
def test_a_jpeg_of_millions_of_segments_is_refused_before_pillow_walks_them(
    filler: bytes,
) -> None:
    """Pillow opened the first in 3.1 s (issue 15's attack review)."""
    data = _jpeg()[:2] + filler + _jpeg()[2:]
    with pytest.raises(ImageTooLarge, match=f"more than {MAX_JPEG_SEGMENTS} segments"):
        decode(data, LIMIT)


def test_a_jpeg_with_ordinary_metadata_segments_decodes() -> None:
    image = Image.new("RGB", (64, 48), (200, 100, 50))
    exif = image.getexif()
    exif[0x0112] = 6
    data = encode(image, "JPEG", exif=exif, icc_profile=b"\0" * 200_000)  # ICC over 4 APP2s
    assert decode(data, LIMIT).grey.shape == (64, 48)  # turned upright by its EXIF


def test_png_text_chunks_are_bounded_to_1_mb_in_all() -> None:
    """60 zTXt chunks of 1 MB of zeros each (1 KB compressed): Pillow inflated all 60 MB
    as it opened the 63 KB file."""
    data = encode(Image.new("RGB", (16, 16), (200, 200, 200)), "PNG")  # Pillow's to read
    text = zlib.compress(b"\0" * (1 << 20), 9)
    chunks = b"".join(_png_chunk(b"zTXt", b"k%d\0\0" % i + text) for i in range(60))
    bomb = data[:33] + chunks + data[33:]  # after the signature and IHDR
    with pytest.raises(UndecodableImage):
        decode(bomb, LIMIT)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + payload))
    return struct.pack(">I", len(payload)) + kind + payload + crc


def _transparent_palette_digit() -> Image.Image:
    """A palette image 40 wide, 60 tall: a black bar (index 1) on index 0, the background."""
    image = Image.new("P", (40, 60), 0)
    image.putpalette([255, 255, 255, 0, 0, 0])
    image.paste(1, (15, 10, 25, 50))
    return image


@pytest.mark.parametrize("fmt", ["GIF", "PNG"])
def test_a_palette_image_with_a_transparent_background_keeps_its_alpha(fmt: str) -> None:
    """A GIF or PNG8 whose background colour is transparent: the digit is what is opaque."""
    data = encode(_transparent_palette_digit(), fmt, transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    picture = decode(data, LIMIT)
    assert picture.alpha is not None
    assert picture.alpha[0, 0] == 0 and picture.alpha[30, 20] == 255
    assert int((picture.alpha == 255).sum()) == 10 * 40
    assert picture.grey[30, 20] == 0


def _stroke_alpha() -> np.ndarray:
    alpha = np.zeros((20, 30), np.uint8)
    alpha[5:15, 8:12] = 255
    return alpha


@pytest.mark.parametrize(
    "mode",
    [
        "PA",  # palette + alpha
        "RGBa",  # premultiplied alpha
    ],
)
def test_modes_with_an_alpha_band_keep_it(mode: str) -> None:
    """Pillow's other modes with alpha, as `_picture` (what `decode` calls on the loaded
    image) meets them: their alpha is kept, like an RGBA upload's."""
    alpha = Image.fromarray(_stroke_alpha())
    if mode == "PA":
        image = Image.merge("PA", [Image.new("P", alpha.size, 0), alpha])
    else:
        image = Image.merge("RGBA", [Image.new("L", alpha.size, 0)] * 3 + [alpha]).convert(mode)
    picture = decode_module._picture(image, alpha.width)
    assert picture.alpha is not None
    np.testing.assert_array_equal(picture.alpha, _stroke_alpha())


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (300, 200), 77),  # beyond the plain-PNG path's working size
        Image.new("RGB", (40, 60), (77, 77, 77)),
        _transparent_palette_digit(),  # saved opaque: no transparency
        Image.new("1", (40, 60), 1),
        Image.new("RGBA", (28, 28), (77, 77, 77, 255)),  # a canvas export: alpha all 255
        Image.new("RGBA", (28, 28), (77, 77, 77, 0)),  # a 32-bit BMP's: alpha all 0
    ],
    ids=["L", "RGB", "P", "1", "RGBA opaque", "RGBA alpha 0"],
)
def test_an_opaque_upload_is_uint8_grey_whatever_its_mode(image: Image.Image) -> None:
    """uint8 is what `mnist.is_mnist_like` (the 28x28 fast path) and `true_resolution`
    (pixel-replicated scans) take: an opaque picture must not come out as float32."""
    picture = decode(encode(image, "PNG"), LIMIT)
    assert picture.alpha is None
    assert picture.grey.dtype == np.uint8
    if image.width <= WORKING_SIZE:
        np.testing.assert_array_equal(picture.grey, np.asarray(image.convert("L")))
    else:  # halved
        assert picture.grey.shape == (100, 150) and (picture.grey == 77).all()


def test_a_big_1_bit_scan_is_reduced() -> None:
    """Pillow cannot reduce a 1-bit image itself: it is made RGB first."""
    page = Image.new("1", (900, 300), 1)
    page.paste(0, (0, 0, 450, 300))  # the left half black
    picture = decode(encode(page, "PNG"), LIMIT)
    assert picture.grey.shape == (75, 225) and picture.scale == 4.0
    assert picture.grey[:, :112].max() == 0 and picture.grey[:, 113:].min() == 255


def test_an_upload_twice_the_working_size_is_halved() -> None:
    picture = decode(encode(Image.new("L", (2 * WORKING_SIZE, 100), 90), "PNG"), LIMIT)
    assert picture.grey.shape == (50, WORKING_SIZE)
    assert picture.scale == 2.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_scale_is_the_reduction_whatever_the_orientation(orientation: int) -> None:
    """A 2000x1000 JPEG is decoded at 1/2 by libjpeg, then reduced 4 times: 8 upload pixels
    per pixel, along the upright picture's width as along the stored one's."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.new("L", (2000, 1000), 180), "JPEG", exif=exif.tobytes())
    picture = decode(data, LIMIT)
    turned = orientation in (5, 6, 7, 8)
    assert picture.grey.shape == ((250, 125) if turned else (125, 250))
    assert picture.scale == 8.0


@pytest.mark.parametrize("varying", [False, True], ids=["one alpha value", "strokes in alpha"])
def test_a_big_upload_with_alpha_says_how_much_it_was_reduced(varying: bool) -> None:
    rgba = np.zeros((512, 1024, 4), np.uint8)
    rgba[..., 3] = 255
    if varying:
        rgba[100:400, 400:600, 3] = 0
    picture = decode(png(rgba, mode="RGBA"), LIMIT)
    assert (picture.alpha is not None) == varying
    assert picture.grey.shape == (128, 256) and picture.scale == 4.0


def test_sixteen_bit_greyscale_is_stretched_in_proportion() -> None:
    wide = np.array([[0, 16384, 32768, 65535]], np.uint16).repeat(3, axis=0)
    picture = decode(encode(Image.fromarray(wide), "PNG"), LIMIT)
    np.testing.assert_allclose(picture.grey[0], 255.0 * wide[0] / 65535, atol=0.01)


def test_a_faint_sixteen_bit_image_is_stretched_to_full_range() -> None:
    """Values 0 and 1 of 65535: the 1s are the brightest there is, so 255."""
    faint = np.array([[0, 1, 1, 0]], np.uint16).repeat(3, axis=0)
    picture = decode(encode(Image.fromarray(faint), "PNG"), LIMIT)
    np.testing.assert_array_equal(picture.grey[0], [0.0, 255.0, 255.0, 0.0])


def test_a_colour_jpeg_is_read_as_its_stored_luma() -> None:
    """libjpeg's greyscale output: the Y plane as stored, not RGB rebuilt from the
    subsampled colour and turned grey again (which differs by several levels)."""
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)), "JPEG")
    stored = Image.open(io.BytesIO(data))
    stored.draft("YCbCr", stored.size)
    np.testing.assert_array_equal(decode(data, LIMIT).grey, np.asarray(stored.getchannel("Y")))


@pytest.mark.parametrize(
    "tag",
    [
        (0x0112, 3, 1, struct.pack("<H", 0)),
        (0x0112, 3, 1, struct.pack("<H", 9)),
        (0x0112, 2, 2, b"6\0"),  # typed ASCII
        (0x0112, 11, 1, struct.pack("<f", 6.0)),  # typed FLOAT
    ],
    ids=["0", "9", "ascii 6", "float 6.0"],
)
def test_an_orientation_out_of_range_or_not_an_integer_leaves_the_picture_upright(
    tag: tuple[int, int, int, bytes],
) -> None:
    picture = decode(encode(Image.fromarray(corner_mark()), "PNG", exif=exif_block(tag)), LIMIT)
    assert picture.grey.shape == (60, 40)
    assert dark_corner(picture) == pytest.approx((4, 4), abs=1)


def test_an_exif_block_pillow_cannot_read_leaves_the_picture_as_stored() -> None:
    data = encode(Image.fromarray(corner_mark()), "PNG", exif=b"\0\1\2\3 not a TIFF header")
    assert dark_corner(decode(data, LIMIT)) == pytest.approx((4, 4), abs=1)


def test_a_picture_of_exactly_the_pixel_limit_decodes_and_one_more_is_refused() -> None:
    data = encode(Image.new("RGB", (100, 50), (9, 9, 9)), "BMP")
    assert decode(data, 5000).grey.shape == (50, 100)
    with pytest.raises(
        ImageTooLarge, match=r"^the image is 100x50 = 5000 pixels, over the limit of 4999 pixels"
    ):
        decode(data, 4999)


def test_a_single_pixel_decodes() -> None:
    picture = decode(encode(Image.new("RGB", (1, 1), (77, 77, 77)), "BMP"), LIMIT)
    np.testing.assert_array_equal(picture.grey, [[77]])


def test_a_header_pillow_refuses_is_named_with_its_error() -> None:
    data = bytearray(encode(Image.new("RGB", (4, 4)), "BMP"))
    data[30] = 9  # the compression field: no such method
    with pytest.raises(UndecodableImage, match=r"^cannot read the image header \(OSError\)$"):
        decode(bytes(data), LIMIT)


def test_a_png_with_a_broken_animation_chunk_shows_its_default_image() -> None:
    """Pillow warns (an acTL chunk of 0 frames) and reads the still image: only its
    decompression-bomb warning is an error."""
    still = encode(Image.new("RGB", (8, 8), (50, 50, 50)), "PNG")
    broken = still[:33] + _png_chunk(b"acTL", struct.pack(">II", 0, 0)) + still[33:]
    with pytest.warns(UserWarning, match="Invalid APNG"):
        picture = decode(broken, LIMIT)
    assert picture.grey.shape == (8, 8) and int(picture.grey[0, 0]) == 50


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b'\n\n  <svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b'\r\n\t<?xml version="1.0"?><svg/>', "XML/SVG"),
        (b" " * 60 + b"<svg/>", "SVG"),  # the tag starts within the first 64 bytes
    ],
)
def test_a_format_after_leading_whitespace_is_named(data: bytes, name: str) -> None:
    with pytest.raises(
        UnsupportedImage,
        match=f"^{re.escape(name)} images are not supported: send PNG, JPEG, GIF, BMP or WebP$",
    ):
        decode(data, LIMIT)


@pytest.mark.parametrize(
    "data",
    [b"\n  <!DOCTYPE html><html><body>7</body></html>", b" " * 61 + b"<svg/>"],
    ids=["html", "a tag past the first 64 bytes"],
)
def test_what_is_not_recognised_is_said_so(data: bytes) -> None:
    message = "the upload is not a PNG, JPEG, GIF, BMP or WebP image (cannot identify its format)"
    with pytest.raises(UndecodableImage, match=f"^{re.escape(message)}$"):
        decode(data, LIMIT)


def test_the_empty_upload_is_told_what_to_send() -> None:
    message = "the upload is empty: send the bytes of a PNG, JPEG, GIF, BMP or WebP image"
    with pytest.raises(UndecodableImage, match=f"^{re.escape(message)}$"):
        decode(b"", LIMIT)


def test_a_truncated_image_names_the_error_met() -> None:
    data = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG", compress_level=0)
    with pytest.raises(
        UndecodableImage, match=r"^the PNG image is truncated or corrupt \(OSError\)$"
    ):
        decode(data[: len(data) // 2], LIMIT)


def test_a_jpeg_of_exactly_max_scans_decodes_and_one_more_is_refused() -> None:
    data = jpeg_repeating_a_scan(16, 1)
    at_limit = jpeg_repeating_a_scan(16, MAX_JPEG_SCANS - data.count(b"\xff\xda") + 1)
    assert at_limit.count(b"\xff\xda") == MAX_JPEG_SCANS
    assert decode(at_limit, LIMIT).grey.shape == (16, 16)
    over = jpeg_repeating_a_scan(16, MAX_JPEG_SCANS - data.count(b"\xff\xda") + 2)
    with pytest.raises(ImageTooLarge, match=f"the JPEG has {MAX_JPEG_SCANS + 1} scans"):
        decode(over, LIMIT)


def test_scans_times_pixels_is_allowed_up_to_its_limit_exactly() -> None:
    check_jpeg_scans(b"\xff\xda" * 4, MAX_JPEG_SCAN_PIXELS // 4)
    with pytest.raises(ImageTooLarge, match="the JPEG has 4 scans"):
        check_jpeg_scans(b"\xff\xda" * 4, MAX_JPEG_SCAN_PIXELS // 4 + 1)


def test_declared_pixels_past_pillows_bomb_warning() -> None:
    """Over Pillow's warning threshold (89 MP) and under its error (179 MP): the size is
    still read."""
    assert declared_pixels(gif_bomb(10_000)) == 100_000_000


def _markers_before_scan(data: bytes) -> int:
    """The markers of a JPEG as Pillow writes it (each with a length) up to its first
    start of scan, that one included."""
    count, position = 1, 2
    while data[position + 1] != 0xDA:
        position += 2 + struct.unpack_from(">H", data, position + 2)[0]
        count += 1
    return count


def _with_before_scan(extra: bytes) -> bytes:
    """`_jpeg()` with `extra` just before its start of scan (after its tables)."""
    data = _jpeg()
    at = data.index(b"\xff\xda")
    return data[:at] + extra + data[at:]


def _empty_comments(count: int) -> bytes:
    return b"\xff\xfe\x00\x02" * count


SEGMENTS = {
    "empty comments": _empty_comments,
    "fill bytes": lambda count: b"\xff" * count,
    "restart markers": lambda count: b"".join(bytes([0xFF, 0xD0 + i % 8]) for i in range(count)),
    # 1,002 bytes long: both bytes of the length matter
    "a long comment": lambda count: b"\xff\xfe\x03\xea" + b"x" * 1000 + _empty_comments(count - 1),
}


@pytest.mark.parametrize("kind", SEGMENTS)
def test_a_jpeg_of_exactly_max_segments_decodes_and_one_more_is_refused(kind: str) -> None:
    room = MAX_JPEG_SEGMENTS - _markers_before_scan(_jpeg())
    assert decode(_with_before_scan(SEGMENTS[kind](room)), LIMIT).grey.shape == (64, 64)
    with pytest.raises(ImageTooLarge, match=f"more than {MAX_JPEG_SEGMENTS} segments"):
        decode(_with_before_scan(SEGMENTS[kind](room + 1)), LIMIT)


@pytest.mark.parametrize("marker", [b"\xff\xd9", b"\xff\x01"], ids=["EOI", "TEM"])
def test_a_marker_without_a_length_counts_as_one_segment(marker: bytes) -> None:
    """An end-of-image or TEM marker among the headers (which libjpeg or Pillow then
    refuse) is two bytes: the segments after it are counted too."""
    room = MAX_JPEG_SEGMENTS - _markers_before_scan(_jpeg())
    with pytest.raises(ImageTooLarge, match=f"more than {MAX_JPEG_SEGMENTS} segments"):
        decode(_with_before_scan(marker + _empty_comments(room)), LIMIT)


def test_segments_are_counted_up_to_the_end_of_the_file() -> None:
    data = b"\xff\xd8" + _empty_comments(MAX_JPEG_SEGMENTS + 1)
    with pytest.raises(ImageTooLarge, match=f"more than {MAX_JPEG_SEGMENTS} segments"):
        decode(data, LIMIT)
