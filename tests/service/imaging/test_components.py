"""Keeping the components that form the digit, dropping specks, lines and marks."""

from __future__ import annotations

import numpy as np

from service.imaging.components import find_digit, otsu_threshold

RNG = np.random.default_rng(11)


def paper(shape: tuple[int, int] = (200, 200), noise: float = 0.02) -> np.ndarray:
    """A contrast map of paper: faint noise, no ink."""
    return np.clip(RNG.normal(0, noise, shape), 0, 1).astype(np.float32)


def draw(contrast: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    contrast[top : top + height, left : left + width] = 0.9
    return contrast


def test_a_lone_one_is_kept_whole() -> None:
    contrast = draw(paper(), 50, 95, 100, 10)
    digit = find_digit(contrast)
    assert digit is not None
    assert digit.box == (50, 95, 150, 105)
    assert digit.peak > 0.85


def test_the_parts_of_a_broken_five_are_joined() -> None:
    contrast = paper()
    draw(contrast, 50, 80, 10, 50)  # the bar, apart from the rest
    draw(contrast, 65, 80, 40, 10)  # the stem
    draw(contrast, 100, 80, 10, 50)  # the bowl, simplified
    draw(contrast, 100, 120, 40, 10)
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (50, 80, 140, 130)


def test_a_speck_and_a_stray_mark_far_from_the_digit_are_dropped() -> None:
    contrast = draw(paper(), 60, 90, 90, 12)
    draw(contrast, 10, 10, 4, 4)  # a speck near the corner
    draw(contrast, 170, 150, 5, 30)  # a dash
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (60, 90, 150, 102)
    assert not digit.mask[10:14, 10:14].any() and not digit.mask[170:175, 150:180].any()


def test_a_ruled_line_across_the_page_is_not_the_digit() -> None:
    contrast = draw(paper(), 150, 0, 6, 200)  # longer and heavier than the digit
    draw(contrast, 60, 95, 70, 8)
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (60, 95, 130, 103)


def test_a_shadow_blob_at_the_frame_is_not_the_digit() -> None:
    contrast = draw(paper(), 0, 0, 70, 80)  # a thick patch in the corner
    draw(contrast, 90, 120, 80, 9)
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (90, 120, 170, 129)


def test_blank_paper_has_no_digit() -> None:
    assert find_digit(paper()) is None
    assert find_digit(np.zeros((50, 50), np.float32)) is None


def test_faint_marks_are_no_digit() -> None:
    contrast = paper()
    contrast[80:120, 95:100] = 0.08  # below what ink on paper (even pencil: 0.14) reaches
    assert find_digit(contrast) is None


def test_a_tiny_dot_alone_is_no_digit() -> None:
    assert find_digit(draw(paper(), 100, 100, 3, 3)) is None


def test_otsu_threshold_splits_two_levels() -> None:
    values = np.concatenate([np.full(900, 0.1), np.full(100, 0.8)]).astype(np.float32)
    assert 0.1 <= otsu_threshold(values) < 0.8
    assert otsu_threshold(np.full(10, 0.3, np.float32)) == np.float32(0.3)


def test_noise_a_texture_or_a_grid_is_no_digit() -> None:
    rng = np.random.default_rng(0)
    rows, cols = np.indices((256, 256))
    checkerboard = ((rows + cols) % 2).astype(np.float32)
    grid = ((rows % 16 == 0) | (cols % 16 == 0)).astype(np.float32)
    for contrast in (rng.random((256, 256)).astype(np.float32), checkerboard, grid):
        assert find_digit(contrast) is None


def test_a_lone_blob_is_no_digit() -> None:
    assert find_digit(draw(paper(), 40, 40, 120, 110)) is None  # a shadow's patch


def test_a_thin_ring_across_the_picture_is_a_digit() -> None:
    """A 0 drawn with a thin pen is a sparse box around half the picture, like a frame."""
    rows, cols = np.indices((200, 200))
    radius = np.hypot((rows - 100) / 90, (cols - 100) / 60)
    contrast = paper()
    contrast[np.abs(radius - 1) < 0.02] = 0.9
    digit = find_digit(contrast)
    assert digit is not None and digit.box[2] - digit.box[0] > 170


def test_a_lattice_of_specks_is_dropped_not_joined() -> None:
    contrast = paper(noise=0.0)
    contrast[::2, ::2] = 0.9  # 10,000 one-pixel specks
    draw(contrast, 60, 95, 80, 6)
    digit = find_digit(contrast)
    assert digit is not None
    top, left, bottom, right = digit.box
    assert abs(top - 60) <= 1 and abs(left - 95) <= 1 and abs(bottom - 140) <= 1
    assert abs(right - 101) <= 1  # only the specks that touch the bar belong to it
    assert digit.mask.sum() < 80 * 6 + 100


def test_a_box_or_circle_drawn_around_the_digit_is_not_the_digit() -> None:
    rows, cols = np.indices((200, 200))
    for ring in (
        np.abs(np.hypot((rows - 100) / 80, (cols - 100) / 60) - 1) < 0.05,  # a circle
        (np.maximum(np.abs(rows - 100), np.abs(cols - 100)) // 4) == 19,  # a square, 4 px
    ):
        contrast = paper()
        contrast[ring] = 0.9  # more ink than the digit inside it
        draw(contrast, 70, 97, 60, 6)
        digit = find_digit(contrast)
        assert digit is not None and digit.box == (70, 97, 130, 103)


def test_marks_cut_by_the_frame_do_not_join_a_digit_inside_it() -> None:
    contrast = draw(paper(), 50, 95, 100, 10)
    draw(contrast, 60, 0, 60, 6)  # an arc of something at the left edge, near enough
    draw(contrast, 0, 60, 4, 40)
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (50, 95, 150, 105)


def test_a_small_patch_in_a_corner_is_no_digit() -> None:
    contrast = paper(noise=0.005)
    contrast[188:200, 0:12] = 0.2  # a dark corner of a dim photo, 6% of the picture
    assert find_digit(contrast) is None
    contrast[150:200, 0:8] = 0.9  # a stroke cut by the frame, a quarter of it: a digit
    assert find_digit(contrast) is not None
