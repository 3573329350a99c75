"""Preprocessing real uploads into MNIST samples, and refusing what is not an image."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service import preprocess as pp
from service.errors import BlankImage, ImageTooLarge, UndecodableImage, UnsupportedImage
from service.runtime import load_keras
from tests.conftest import SeedRun
from tests.uploads import KINDS, gif_bomb, png, png_header_only

LIMIT = 16_000_000


def encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def a_digit() -> np.ndarray:
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    digit[6:9, 9:16] = 255
    return digit


def test_mnist_digit_passes_through_unchanged() -> None:
    centred = pp.centre_by_mass(a_digit()[None] / np.float32(255))[0]
    sample = pp.preprocess(png((centred * 255).astype(np.uint8)), LIMIT)
    np.testing.assert_allclose(sample.reshape(28, 28), centred, atol=1e-6)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_every_accepted_format_decodes(fmt: str) -> None:
    image = Image.fromarray(a_digit()).resize((56, 56))
    sample = pp.preprocess(encode(image.convert("RGB") if fmt == "JPEG" else image, fmt), LIMIT)
    assert sample.shape == (784,) and sample.dtype == np.float32
    assert 0.0 <= sample.min() and sample.max() == pytest.approx(1.0, abs=0.05)


def test_polarity_and_background_do_not_matter() -> None:
    light = pp.preprocess(png(a_digit()), LIMIT)
    dark_on_paper = pp.preprocess(png((255 - a_digit() * 0.8).astype(np.uint8)), LIMIT)
    np.testing.assert_allclose(light, dark_on_paper, atol=0.02)


def test_digit_anywhere_in_a_big_frame_lands_centred() -> None:
    frame = np.zeros((300, 500), np.uint8)
    frame[20:180, 400:440] = 255  # a bar near the top-right corner
    sample = pp.preprocess(png(frame), LIMIT).reshape(28, 28)
    rows, cols = np.indices(sample.shape)
    assert (rows * sample).sum() / sample.sum() == pytest.approx(14, abs=0.5)
    assert (cols * sample).sum() / sample.sum() == pytest.approx(14, abs=0.5)
    assert np.count_nonzero(sample.max(axis=1) > 0.5) == 20  # fitted into the 20-pixel box


def test_transparent_canvas_with_white_strokes_keeps_its_ink() -> None:
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[20:80, 45:55] = (255, 255, 255, 255)
    sample = pp.preprocess(png(rgba, mode="RGBA"), LIMIT)
    assert sample.max() == pytest.approx(1.0) and sample.sum() > 30


def test_sixteen_bit_greyscale_is_stretched_not_clipped() -> None:
    wide = (a_digit().astype(np.uint16) * 200).astype(np.uint16)
    sample = pp.preprocess(encode(Image.fromarray(wide), "PNG"), LIMIT)
    assert sample.max() == pytest.approx(1.0, abs=1e-3)


def test_blank_image_is_refused() -> None:
    with pytest.raises(BlankImage, match="no digit found"):
        pp.preprocess(png(np.full((50, 50), 255, np.uint8)), LIMIT)


def test_empty_upload() -> None:
    with pytest.raises(UndecodableImage, match="the upload is empty"):
        pp.preprocess(b"", LIMIT)


def test_text_is_not_an_image() -> None:
    with pytest.raises(UndecodableImage, match="cannot identify its format"):
        pp.preprocess(b"hello, I am a text file\n", LIMIT)


def test_truncated_png() -> None:
    data = png(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    with pytest.raises(UndecodableImage, match="the PNG image is truncated or corrupt"):
        pp.preprocess(data[: len(data) // 2], LIMIT)


def test_png_with_a_bad_crc() -> None:
    data = bytearray(png(a_digit()))
    data[40] ^= 0xFF  # inside the IDAT payload
    with pytest.raises(UndecodableImage):
        pp.preprocess(bytes(data), LIMIT)


@pytest.mark.parametrize(
    ("fmt", "name"), [("TIFF", "TIFF"), ("EPS", "PostScript/EPS"), ("PDF", "PDF")]
)
def test_other_formats_are_415_even_when_valid(fmt: str, name: str) -> None:
    data = encode(Image.fromarray(a_digit()).convert("RGB"), fmt)
    with pytest.raises(UnsupportedImage, match=f"^{name} images are not supported"):
        pp.preprocess(data, LIMIT)


def test_svg_is_415() -> None:
    with pytest.raises(UnsupportedImage, match="SVG images are not supported"):
        pp.preprocess(b'<svg xmlns="http://www.w3.org/2000/svg"/>', LIMIT)


@pytest.mark.parametrize("side", [40000, 10000, 5000])
def test_huge_header_is_refused_before_decoding(side: int, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[object] = []
    original = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(self) or original(self))
    data = png_header_only(side, side)
    assert len(data) < 200
    with pytest.raises(ImageTooLarge, match=f"over the limit of {LIMIT} pixels"):
        pp.preprocess(data, LIMIT)
    assert loads == []


def test_gif_bomb_is_refused() -> None:
    with pytest.raises(ImageTooLarge, match=f"over the limit of {LIMIT} pixels"):
        pp.preprocess(gif_bomb(), LIMIT)


def test_truncated_header_names_the_format() -> None:
    with pytest.raises(UndecodableImage, match="looks like a PNG image but is truncated"):
        pp.preprocess(png(a_digit())[:30], LIMIT)


def test_centre_by_mass_puts_the_mass_on_14() -> None:
    patch = np.zeros((10, 6), np.float32)
    patch[2:9, 1:3] = 1
    field = pp.centre_by_mass(patch[None])[0]
    rows, cols = np.indices(field.shape)
    assert (rows * field).sum() / field.sum() == pytest.approx(14, abs=0.5)
    assert (cols * field).sum() / field.sum() == pytest.approx(14, abs=0.5)
    assert field.sum() == pytest.approx(patch.sum())


def variants(count: int) -> list[np.ndarray]:
    """MNIST-like digits as uploads differ: shifted, inverted, on noisy paper."""
    rng = np.random.default_rng(3)
    digits = []
    for index in range(count):
        digit = np.roll(a_digit(), (index % 5 - 2, index % 3 - 1), axis=(0, 1))
        if index % 3 == 1:
            digit = 255 - digit
        if index % 3 == 2:
            digit = np.clip(digit + rng.integers(0, 40, digit.shape), 0, 255).astype(np.uint8)
        digits.append(digit)
    return digits


def test_a_stack_gives_what_each_image_gives_alone() -> None:
    digits = variants(12)
    digits[5] = np.full((28, 28), 90, np.uint8)  # blank, amid the others
    samples, blank = pp.to_mnist_stack(np.stack(digits))
    assert blank == [i == 5 for i in range(12)]
    for index, digit in enumerate(digits):
        if index != 5:
            np.testing.assert_allclose(samples[index], pp.to_mnist(digit), atol=1e-6)
    with pytest.raises(BlankImage):
        pp.to_mnist(digits[5])


def test_many_images_of_mixed_sizes_keep_their_order() -> None:
    digit = a_digit()
    canvas = np.zeros((60, 40), np.float32), np.zeros((60, 40), np.float32)
    canvas[0][10:50, 18:24], canvas[1][10:50, 18:24] = 20.0, 255.0  # strokes on transparency
    images = [
        (digit, None),
        (np.kron(digit, np.ones((3, 2), np.uint8)), None),
        canvas,
        (np.zeros((28, 28), np.uint8), None),
        (255 - digit.T, None),
        (np.kron(255 - digit, np.ones((3, 2), np.uint8)), None),
    ]
    samples, blank = pp.to_mnist_many(images)
    assert blank == [False, False, False, True, False, False]
    for index, (grey, alpha) in enumerate(images):
        if not blank[index]:
            np.testing.assert_allclose(samples[index], pp.to_mnist(grey, alpha), atol=1e-6)


def test_fit_box_keeps_the_aspect_ratio() -> None:
    assert pp.fit_box(np.ones((100, 50), np.float32)).shape == (20, 10)
    assert pp.fit_box(np.ones((3, 9), np.float32)).shape == (7, 20)


@pytest.mark.integration
@pytest.mark.parametrize("kind", sorted(set(KINDS) - {"plain"}))
def test_accuracy_on_real_uploads_stays_within_1_5_points(
    kind: str, seed_store: SeedRun, mnist_dir: Path
) -> None:
    from training.data import load_idx_dir

    data = load_idx_dir(mnist_dir)
    digits, labels = data.x_test[:1000], data.y_test[:1000]
    model = load_keras(seed_store.root / "mnist" / "1" / "model.keras")
    plain = (model.predict(digits.reshape(-1, 784) / np.float32(255)).argmax(1) == labels).mean()
    rng = np.random.default_rng(7)
    samples = np.stack([pp.preprocess(KINDS[kind](d, rng), LIMIT) for d in digits])
    accuracy = (model.predict(samples).argmax(1) == labels).mean()
    assert accuracy >= plain - 0.015, f"{kind}: {accuracy:.3f} vs plain {plain:.3f}"


@pytest.mark.integration
def test_mnist_pngs_keep_their_predictions(seed_store: SeedRun, mnist_dir: Path) -> None:
    from training.data import load_idx_dir

    digits = load_idx_dir(mnist_dir).x_test[:1000]
    model = load_keras(seed_store.root / "mnist" / "1" / "model.keras")
    direct = model.predict(digits.reshape(-1, 784) / np.float32(255)).argmax(1)
    through = model.predict(np.stack([pp.preprocess(png(d), LIMIT) for d in digits])).argmax(1)
    assert (direct == through).mean() >= 0.995


def test_big_jpeg_photo_is_decoded_at_reduced_scale_but_big_png_is_refused() -> None:
    photo = Image.new("L", (4000, 3000), 230)
    photo.paste(20, (1800, 1000, 2000, 2200))  # a dark bar: a '1' on paper
    limit = 8_388_608
    sample = pp.preprocess(encode(photo, "JPEG", quality=80), limit)
    assert sample.reshape(28, 28)[4:24, 12:16].mean() > 0.5
    with pytest.raises(ImageTooLarge, match="4000x3000 = 12000000 pixels"):
        pp.preprocess(encode(photo, "PNG"), limit)
