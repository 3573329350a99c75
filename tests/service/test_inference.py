"""Where each upload's work runs: on the event loop only when it is known to be small."""

from __future__ import annotations

import asyncio
import zlib

import numpy as np
import pytest
from prometheus_client import REGISTRY

from service.errors import BlankImage, UndecodableImage
from service.inference import INLINE_PIXELS, is_small, read_images, read_upload, upload_batcher
from tests.service.test_batching import loaded, passes
from tests.uploads import digit_png, png, png_header_only


def test_an_mnist_digit_is_small() -> None:
    assert is_small(png(np.zeros((28, 28), np.uint8)), offload=65536)


def test_a_small_file_declaring_millions_of_pixels_is_not() -> None:
    tall = np.zeros((8_388_608, 1), np.uint8)  # compresses to about 16 KB
    data = png(tall)
    assert len(data) < 65536
    assert not is_small(data, offload=65536)
    assert not is_small(png_header_only(129, 128), offload=65536)
    assert is_small(png_header_only(128, 128), offload=65536)
    assert 128 * 128 == INLINE_PIXELS


def test_a_big_file_or_an_unreadable_header_is_not() -> None:
    assert not is_small(png(np.zeros((28, 28), np.uint8)), offload=10)
    assert not is_small(b"not an image", offload=65536)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_read_images_names_the_first_image_that_fails() -> None:
    model = loaded(0, 1)
    datas = [digit_png(), png(np.zeros((50, 50), np.uint8)), b"not an image"]
    with pytest.raises(BlankImage) as caught:
        await read_images(model, datas, 10**6, 65536, upload_batcher(10**6, 64))
    assert caught.value.detail == f"image 1 of 3: {BlankImage.no_digit().detail}"


@pytest.mark.anyio
async def test_read_images_answers_as_the_batch_and_single_paths_do() -> None:
    model, batcher = loaded(0, 1), upload_batcher(10**6, 64)
    one = await read_images(model, [digit_png()], 10**6, 65536, batcher)
    two = await read_images(model, [digit_png(), digit_png()], 10**6, 65536, batcher)
    assert one.shape == (1, 10) and two.shape == (2, 10)
    np.testing.assert_allclose(two, np.concatenate([one, one]), rtol=1e-6, atol=1e-7)


def decode_calls() -> float:
    return (
        REGISTRY.get_sample_value("mnist_inference_duration_seconds_count", {"stage": "decode"})
        or 0.0
    )


def _broken_digit_png() -> bytes:
    """A PNG whose header declares a plain 28x28 greyscale digit, whose image data is not
    zlib (its CRC made right, so only the decoder sees it)."""
    data = bytearray(digit_png())
    at = data.index(b"IDAT")
    length = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 : at + 6] = b"\x00\x00"  # no zlib header
    crc = zlib.crc32(bytes(data[at : at + 4 + length]))
    data[at + 4 + length : at + 8 + length] = crc.to_bytes(4, "big")
    return bytes(data)


@pytest.mark.anyio
async def test_mnist_pngs_of_one_pass_are_decoded_together() -> None:
    model, batcher = loaded(0, 1), upload_batcher(10**6, 64)
    before = decode_calls()
    rows = await asyncio.gather(
        *(read_upload(model, digit_png(), 10**6, 65536, batcher) for _ in range(5))
    )
    assert decode_calls() - before == 1  # one call of the decoder for the five
    alone = await read_upload(model, digit_png(), 10**6, 65536, batcher)
    for row in rows:
        np.testing.assert_allclose(row.probabilities, alone.probabilities, rtol=1e-6, atol=1e-7)


@pytest.mark.anyio
async def test_a_broken_png_in_a_pass_fails_only_its_own_request() -> None:
    model, batcher = loaded(0, 1), upload_batcher(10**6, 64)
    datas = [digit_png(), _broken_digit_png(), digit_png()]
    results = await asyncio.gather(
        *(read_upload(model, d, 10**6, 65536, batcher) for d in datas), return_exceptions=True
    )
    assert isinstance(results[1], UndecodableImage)
    assert results[0].probabilities.shape == results[2].probabilities.shape == (10,)


@pytest.mark.anyio
async def test_a_broken_png_costs_the_others_of_its_pass_nothing() -> None:
    """No second decoding, no pass for each: one pass for the good ones (a hostile review
    found one corrupt file turning a pass of 40 into 39 passes, its decoding doubled)."""
    model, batcher = loaded(0, 1), upload_batcher(10**6, 64)
    datas = [digit_png()] * 5 + [_broken_digit_png()]
    before, decoded = passes(), decode_calls()
    results = await asyncio.gather(
        *(read_upload(model, d, 10**6, 65536, batcher) for d in datas), return_exceptions=True
    )
    assert [type(r).__name__ for r in results] == ["Reading"] * 5 + ["UndecodableImage"]
    assert passes()[0] - before[0] == 1 and passes()[1] - before[1] == 5
    assert decode_calls() - decoded == 1
