"""Training digits degraded as real uploads are after preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from training.degrade import EFFECTS, _filter_2x2, _resampling, degrade
from training.recipes import BEST, Augmentation


def bars(n: int = 64) -> np.ndarray:
    images = np.zeros((n, 28, 28), np.float32)
    images[:, 4:24, 12:15] = 1.0  # a '1', 3 px wide
    return images


def test_every_effect_keeps_shape_range_and_full_strokes() -> None:
    out = degrade(bars(), Augmentation(degraded=1.0), np.random.default_rng(0))
    assert out.shape == (64, 28, 28) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_allclose(out.max(axis=(1, 2)), 1.0, rtol=1e-6)  # as the service's samples
    widths = (out > 0.5).sum(axis=(1, 2)) / 20
    assert widths.min() < 3 < widths.max()  # some thinner, some thicker
    assert not np.array_equal(out, bars())


def test_thicker_and_thinner_move_strokes_by_a_pixel() -> None:
    thicker = _filter_2x2(bars(1), np.maximum)
    thinner = _filter_2x2(bars(1), np.minimum)
    assert (thicker[0] > 0).sum() == 21 * 4 and (thinner[0] > 0).sum() == 19 * 2


def test_low_resolution_round_trip_keeps_the_mass_and_blurs() -> None:
    down, up = _resampling(10)
    assert down.shape == (10, 28) and up.shape == (28, 10)
    np.testing.assert_allclose(down.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(up.sum(axis=1), 1.0, rtol=1e-6)
    image = bars(1)[0]
    small = down @ image @ down.T
    assert small.sum() * (28 / 10) ** 2 == pytest.approx(image.sum(), rel=1e-5)
    back = up @ small @ up.T
    assert (back > 0.05).sum() > (image > 0).sum()  # softer, wider edges


def test_same_seed_same_images() -> None:
    aug = BEST.augmentation
    first = degrade(bars(), aug, np.random.default_rng(3))
    again = degrade(bars(), aug, np.random.default_rng(3))
    np.testing.assert_array_equal(first, again)


def test_best_recipe_degrades_a_share_and_knows_every_effect() -> None:
    assert 0 < BEST.augmentation.degraded < 1
    assert EFFECTS == ("thicker", "thinner", "blur", "low_resolution")
