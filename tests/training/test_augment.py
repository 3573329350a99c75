"""The random distortions of the `best` recipe's input pipeline."""

from __future__ import annotations

import numpy as np

from training.augment import distort, elastic_bank, gaussian_matrix
from training.recipes import BEST, Augmentation


def digit_batch(n: int = 8) -> np.ndarray:
    images = np.zeros((n, 28, 28), np.float32)
    images[:, 6:22, 12:16] = 1.0  # a vertical bar, like a '1'
    return images


def test_no_augmentation_is_the_identity() -> None:
    images = np.random.default_rng(0).random((4, 28, 28)).astype(np.float32)
    out = distort(images, Augmentation(), np.random.default_rng(1))
    np.testing.assert_allclose(out, images.reshape(4, 784), atol=1e-5)


def test_shift_moves_ink_but_keeps_it_in_range() -> None:
    aug = Augmentation(shift_pixels=3.0)
    out = distort(digit_batch(), aug, np.random.default_rng(2))
    assert out.shape == (8, 784) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert not np.allclose(out, digit_batch().reshape(8, 784))
    # A shift of at most 3 px keeps the whole bar inside the frame.
    np.testing.assert_allclose(out.sum(axis=1), 64.0, rtol=0.02)


def test_same_seed_same_batch_other_seed_other_batch() -> None:
    bank = elastic_bank(BEST.augmentation, np.random.default_rng(0), size=16)
    first = distort(digit_batch(), BEST.augmentation, np.random.default_rng(5), bank)
    again = distort(digit_batch(), BEST.augmentation, np.random.default_rng(5), bank)
    other = distort(digit_batch(), BEST.augmentation, np.random.default_rng(6), bank)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_elastic_fields_peak_at_alpha() -> None:
    bank = elastic_bank(Augmentation(elastic_alpha=2.5), np.random.default_rng(0), size=10)
    assert bank.shape == (10, 2, 28, 28)
    np.testing.assert_allclose(np.abs(bank).max(axis=(2, 3)), 2.5, rtol=1e-4)


def test_gaussian_matrix_rows_sum_to_one() -> None:
    np.testing.assert_allclose(gaussian_matrix(4.0).sum(axis=1), 1.0, rtol=1e-6)


def test_rotation_and_shear_keep_the_centre_of_mass() -> None:
    images = np.zeros((4, 28, 28), np.float32)
    images[:, 5:20, 9:13] = 1.0  # an off-centre bar
    images[:, 5:8, 9:18] = 1.0
    aug = Augmentation(rotation_degrees=15.0, shear=0.2)
    out = distort(images, aug, np.random.default_rng(3)).reshape(4, 28, 28)
    rows, cols = np.indices((28, 28))

    def com(x: np.ndarray) -> tuple[float, float]:
        return float((rows * x).sum() / x.sum()), float((cols * x).sum() / x.sum())

    for before, after in zip(images, out, strict=True):
        np.testing.assert_allclose(com(after), com(before), atol=0.35)


def test_distorted_share_fades_to_its_final_value() -> None:
    from training.model import distorted_share

    aug = Augmentation(rotation_degrees=5.0, probability=1.0, final_probability=0.3)
    shares = [distorted_share(aug, epoch, 8) for epoch in range(8)]
    assert shares[0] == 1.0 and abs(shares[-1] - 0.3) < 1e-9
    assert all(a > b for a, b in zip(shares, shares[1:], strict=False))
    assert distorted_share(Augmentation(probability=0.5), 3, 8) == 0.5
