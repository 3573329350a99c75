"""Keeping the components that form the digit, dropping specks, lines and marks."""

from __future__ import annotations

import cv2
import numpy as np

from service.imaging.components import find_digit, interior, otsu_threshold

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


def test_otsu_threshold_splits_two_noisy_levels() -> None:
    rng = np.random.default_rng(5)
    background, ink = (
        rng.normal(mean, 0.03, n).astype(np.float32) for mean, n in ((0.5, 900), (0.9, 100))
    )
    threshold = otsu_threshold(np.concatenate([background, ink]))
    assert background.max() <= threshold < ink.min()


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


def test_marks_cut_by_any_edge_near_a_digit_inside_the_frame_do_not_join_it() -> None:
    contrast = draw(paper((200, 240)), 50, 115, 100, 10)  # joins within 30 px of it
    draw(contrast, 100, 0, 6, 90)  # from the left edge to 25 px of it
    draw(contrast, 100, 150, 6, 90)  # from 25 px right of it to the right edge
    draw(contrast, 0, 118, 25, 5)  # from the top edge to 25 px above it
    draw(contrast, 175, 118, 25, 5)  # from 25 px below it to the bottom edge
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (50, 115, 150, 125)


def test_marks_farther_than_the_gap_on_any_side_stay_out() -> None:
    contrast = draw(paper((300, 300)), 100, 145, 100, 10)  # joins within 30 px of it
    draw(contrast, 148, 90, 4, 20)  # dashes 35 px to its left
    draw(contrast, 148, 190, 4, 20)  # to its right
    draw(contrast, 45, 148, 20, 4)  # above
    draw(contrast, 235, 148, 20, 4)  # and below
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (100, 145, 200, 155)


def test_a_stroke_broken_into_a_chain_of_pieces_is_joined_whole() -> None:
    """The farther piece holds more ink, so it is looked at first, before it is near."""
    contrast = draw(paper((300, 300)), 40, 145, 100, 10)
    draw(contrast, 160, 145, 30, 10)  # 20 px below it
    draw(contrast, 210, 145, 40, 10)  # 20 px below that piece, 70 px below the first
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (40, 145, 250, 155)
    contrast = draw(paper((300, 300)), 145, 20, 10, 100)  # the same, to the right
    draw(contrast, 145, 140, 10, 30)
    draw(contrast, 145, 190, 10, 50)
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (145, 20, 155, 240)


def test_the_parts_of_a_broken_digit_are_joined_among_many_marks() -> None:
    contrast = paper((400, 400))
    draw(contrast, 150, 180, 10, 50)  # the bar of a 5, apart from the rest
    draw(contrast, 165, 180, 40, 10)
    draw(contrast, 200, 180, 10, 50)
    draw(contrast, 200, 220, 40, 10)
    for k in range(70):  # more marks than are looked at for joining, far from the digit
        row, col = divmod(k, 14)
        draw(contrast, 10 + 12 * row, 10 + 12 * col, 6, 6)
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (150, 180, 240, 230)


def test_a_circle_drawn_around_the_digit_in_a_larger_picture_is_not_the_digit() -> None:
    """A circle around a third of the picture is not a frame by its size, only by what it
    encloses."""
    rows, cols = np.indices((400, 400))
    contrast = paper((400, 400))
    contrast[np.abs(np.hypot((rows - 200) / 80, (cols - 200) / 60) - 1) < 0.05] = 0.9
    draw(contrast, 160, 197, 80, 6)  # less ink than the circle
    for corner in (10, 380):  # and specks of dust: the least ink of all
        draw(contrast, corner, corner, 2, 2)
        draw(contrast, corner, 390 - corner, 2, 2)
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (160, 197, 240, 203)


def test_an_open_stroke_around_a_mark_in_its_opening_is_the_digit_not_a_frame() -> None:
    """A U (a 4, a 7 of some hands) with a mark in its opening does not enclose it: only
    background the outside cannot reach is a hole (the flood fill once started from the
    stroke, so every pixel of the box counted as one)."""
    contrast = draw(paper(), 50, 60, 100, 8)
    draw(contrast, 50, 132, 100, 8)
    draw(contrast, 142, 60, 8, 80)  # the U, open at the top
    draw(contrast, 60, 96, 30, 8)  # the mark, under the opening
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (50, 60, 150, 140)


def test_a_circle_around_the_digit_is_a_frame_drawn_thin_or_not_quite_closed() -> None:
    """A 1-px ring drawn with diagonal steps still encloses (the fill is 4-connected, the
    components 8-connected), and a hand-drawn circle with a small gap still counts as one;
    a wide gap is an open stroke."""
    for thickness, gap, enclosed in [(1, 0, True), (3, 6, True), (1, 6, True), (3, 40, False)]:
        ring = np.zeros((400, 400), np.uint8)
        cv2.ellipse(ring, (200, 200), (60, 80), 0, gap / 2, 360 - gap / 2, 1, thickness)
        contrast = paper((400, 400))
        contrast[ring.astype(bool)] = 0.9
        draw(contrast, 175, 198, 50, 3)  # a thin 1: less ink than the ring
        digit = find_digit(contrast)
        assert digit is not None
        assert (digit.box == (175, 198, 225, 201)) == enclosed, (thickness, gap, digit.box)


def test_a_line_inside_the_page_is_not_the_digit_and_a_thin_digit_is_no_line() -> None:
    contrast = draw(paper(), 150, 20, 5, 160)  # an underline, not cut by the frame
    draw(contrast, 40, 96, 80, 4)  # a thin-pen 1, with less ink than the underline
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (40, 96, 120, 100)


def test_a_slanted_stroke_is_the_digit_not_a_frame() -> None:
    """A slanted stroke fills little of its box, as a frame does, but spans less than half
    the picture one way."""
    rows, cols = np.indices((200, 200))
    contrast = paper()
    contrast[(np.abs(rows - 40 - 2 * (cols - 70)) <= 7) & (rows >= 40) & (rows < 140)] = 0.9
    draw(contrast, 180, 20, 4, 12)  # a dash far from it
    digit = find_digit(contrast)
    assert digit is not None and digit.box[0] == 40 and digit.box[2] == 140  # tall
    rows, cols = np.indices((200, 160))
    contrast = paper((200, 160))
    contrast[(np.abs(rows - 50 - (cols - 30)) <= 4) & (rows >= 50) & (rows < 140)] = 0.9
    draw(contrast, 180, 130, 4, 12)
    digit = find_digit(contrast)
    assert digit is not None and digit.box[0] == 50 and digit.box[2] == 140  # wide


def test_a_frame_beside_the_digit_is_not_the_digit() -> None:
    ring = np.zeros((200, 300), bool)
    ring[20:180, 20:170] = True  # a box around half the picture, with more ink than the digit
    ring[24:176, 24:166] = False
    contrast = paper((200, 300))
    contrast[ring] = 0.9
    draw(contrast, 60, 220, 80, 8)
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (60, 220, 140, 228)


def test_interior_counts_outside_the_picture_as_out() -> None:
    inner = np.zeros((5, 6), bool)
    inner[1:4, 1:5] = True
    np.testing.assert_array_equal(interior(np.ones((5, 6), bool)), inner)


def test_the_digit_is_the_part_with_the_most_ink_not_the_most_pixels() -> None:
    contrast = paper((300, 300))
    contrast[40:140, 40:50] = 0.35  # a faint smudge, twice the digit's pixels
    draw(contrast, 150, 200, 60, 8)
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (150, 200, 210, 208)


def test_a_mark_near_the_digit_with_too_little_ink_does_not_join_it() -> None:
    contrast = draw(paper(), 50, 95, 100, 10)
    draw(contrast, 95, 115, 5, 3)  # 10 px away, under 2% of the digit's ink
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (50, 95, 150, 105)


def test_a_short_mark_is_a_small_digit_inside_the_picture_and_none_cut_by_its_edge() -> None:
    """16 px on a 240 px picture: above 4% of its side, below the 10% asked at the edge."""
    digit = find_digit(draw(paper((200, 240)), 90, 110, 16, 3))
    assert digit is not None and digit.box == (90, 110, 106, 113)
    for top, left, height, width in ((0, 110, 16, 3), (90, 0, 3, 16), (184, 110, 16, 3)):
        assert find_digit(draw(paper((200, 240)), top, left, height, width)) is None
    assert find_digit(draw(paper((200, 240)), 90, 224, 3, 16)) is None


def test_a_stroke_cut_by_the_frame_with_more_ink_than_the_digit_is_not_the_digit() -> None:
    contrast = draw(paper(), 50, 95, 100, 10)
    draw(contrast, 60, 0, 90, 14)  # the edge of something else, cut by the frame
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (50, 95, 150, 105)


def test_a_thin_zero_filling_a_small_picture_is_a_digit() -> None:
    """A frame by its shape, alone, with little ink: a 1 px pen on a 28 px canvas."""
    rows, cols = np.indices((28, 28))
    contrast = paper((28, 28))
    contrast[np.abs(np.hypot(rows - 14, cols - 14) - 12) < 0.5] = 0.9
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (2, 2, 27, 27)


def test_a_zero_with_a_speck_inside_is_still_the_digit() -> None:
    rows, cols = np.indices((200, 200))
    contrast = paper()
    contrast[np.abs(np.hypot((rows - 100) / 50, (cols - 100) / 30) - 1) < 0.1] = 0.9
    draw(contrast, 99, 99, 2, 2)  # dust in its middle, under 3% of its ink: nothing it frames
    draw(contrast, 180, 20, 4, 12)  # and a dash far from it
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (46, 68, 155, 133)


def test_a_speck_inside_a_small_zero_is_not_what_it_frames() -> None:
    rows, cols = np.indices((200, 200))
    contrast = paper()
    contrast[np.abs(np.hypot(rows - 100, cols - 100) - 5) < 0.5] = 0.9  # 28 px, ink 25
    contrast[100, 100] = 0.9  # one pixel: a speck, though over 3% of the zero's ink
    draw(contrast, 170, 30, 3, 4)  # a dash, less ink than the zero
    # Taken for a frame around the speck, the zero would lose to the dash (too small: None).
    digit = find_digit(contrast)
    assert digit is not None and digit.box == (95, 95, 106, 106)
