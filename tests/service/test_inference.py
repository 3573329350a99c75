"""Where each upload's work runs: on the event loop only when it is known to be small."""

from __future__ import annotations

import numpy as np
import pytest

from service.batching import MicroBatcher
from service.errors import BlankImage
from service.inference import INLINE_PIXELS, classify_pictures, is_small, read_images
from tests.service.test_batching import loaded
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
        await read_images(model, datas, 10**6, 65536, MicroBatcher(classify_pictures))
    assert caught.value.detail == f"image 1 of 3: {BlankImage.no_digit().detail}"


@pytest.mark.anyio
async def test_read_images_answers_as_the_batch_and_single_paths_do() -> None:
    model, batcher = loaded(0, 1), MicroBatcher(classify_pictures)
    one = await read_images(model, [digit_png()], 10**6, 65536, batcher)
    two = await read_images(model, [digit_png(), digit_png()], 10**6, 65536, batcher)
    assert one.shape == (1, 10) and two.shape == (2, 10)
    np.testing.assert_allclose(two, np.concatenate([one, one]), rtol=1e-6, atol=1e-7)
