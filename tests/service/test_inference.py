"""Where each upload's work runs: on the event loop only when it is known to be small."""

from __future__ import annotations

import numpy as np

from service.inference import INLINE_PIXELS, is_small
from tests.uploads import png, png_header_only


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
