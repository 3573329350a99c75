"""Finding ink against its own background: polarity, light, shadow, a sheet on a desk."""

from __future__ import annotations

import numpy as np
import pytest

from service.imaging.ink import (
    background,
    composite,
    find_page,
    flat_background,
    ink_contrast,
    ink_is_dark,
)

RNG = np.random.default_rng(5)


def strokes(shape: tuple[int, int] = (200, 200)) -> np.ndarray:
    """Coverage (H, W) of a '7'-like pair of strokes, 8 px wide, in the middle third."""
    h, w = shape
    cover = np.zeros(shape, np.float32)
    cover[h // 3 : h // 3 + 8, w // 3 : 2 * w // 3] = 1  # the bar
    for row in range(h // 3, 2 * h // 3):  # the slanted leg
        col = 2 * w // 3 - (row - h // 3) // 3
        cover[row, col - 8 : col] = 1
    return cover


def photo(paper: np.ndarray | float, ink: float = 30.0, noise: float = 3.0) -> np.ndarray:
    """A photo (H, W) float32 of strokes on paper whose brightness may vary by pixel."""
    cover = strokes()
    light = np.broadcast_to(np.asarray(paper, np.float32), cover.shape)
    lit = light * (1 - cover) + ink * (light / 230.0) * cover  # ink darkens with the light
    return np.clip(lit + RNG.normal(0, noise, cover.shape), 0, 255).astype(np.float32)


def test_flat_background_tells_digital_pictures_and_their_polarity() -> None:
    drawing = np.where(strokes() > 0, 0, 255).astype(np.uint8)
    assert flat_background(drawing) == (255.0, True)
    assert flat_background(255 - drawing) == (0.0, False)
    assert flat_background(photo(230.0)) is None  # camera noise: no level holds a tenth
    assert flat_background(np.full((30, 30), 7, np.uint8)) is None  # one level: no ink


def test_dim_paper_is_paper_not_ink() -> None:
    dim = photo(113.0, ink=15.0)  # the paper is mid-grey, darker than 127
    assert ink_is_dark(dim)
    contrast = ink_contrast(dim)
    assert contrast[strokes() > 0].mean() > 0.7
    assert contrast[strokes() == 0].mean() < 0.05


def test_light_ink_on_a_dark_board_is_found() -> None:
    board = 255.0 - photo(200.0, ink=40.0)  # chalk on a blackboard
    assert not ink_is_dark(board)
    assert ink_contrast(board)[strokes() > 0].mean() > 0.6


def test_a_shadow_leaves_the_contrast_of_ink_unchanged() -> None:
    cols = np.arange(200, dtype=np.float32)
    shade = 1 - 0.45 / (1 + np.exp(-(cols - 110) / 6))  # a soft shadow over the right half
    lit, shaded = ink_contrast(photo(230.0)), ink_contrast(photo(230.0 * shade[None, :]))
    cover = strokes() > 0
    left, right = cover & (cols < 90)[None, :], cover & (cols > 130)[None, :]
    assert shaded[right].mean() == pytest.approx(lit[right].mean(), abs=0.08)
    assert shaded[left].mean() == pytest.approx(lit[left].mean(), abs=0.05)
    assert shaded[~cover].max() < 0.35  # the shadow's edge is not ink


def test_an_over_exposed_photo_clipped_to_white_is_still_a_photo() -> None:
    clipped = np.clip(photo(252.0, noise=6.0), 0, 255)  # a third of the paper at exactly 255
    assert (clipped == 255).mean() > 0.25
    assert flat_background(clipped) is None


def test_background_fills_strokes_and_keeps_a_dark_region_at_the_frame() -> None:
    paper = np.full((120, 120), 220.0, np.float32)
    paper[:, :30] = 60.0  # a desk strip along the left edge, narrower than the disc
    paper[50:58, 50:100] = 20.0  # a stroke
    back = background(paper)
    assert back[54, 75] == pytest.approx(220.0, abs=2)  # the stroke is filled
    assert back[60, 10] == pytest.approx(60.0, abs=2)  # the strip is kept


def sheet_on_desk(turn: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A 240x320 photo of a sheet (rows 50-190, cols 90-230) on a dark desk, strokes on it;
    and the sheet's mask."""
    desk = 70 + 10 * RNG.standard_normal((240, 320)).astype(np.float32)
    sheet = np.zeros((240, 320), bool)
    sheet[50:190, 90:230] = True
    if turn:
        sheet = np.rot90(np.rot90(sheet))  # the same sheet, the other way up
    cover = np.zeros((240, 320), np.float32)
    cover[80:160, 140:180] = strokes((80, 40))
    paper = 225 + 3 * RNG.standard_normal((240, 320)).astype(np.float32)
    picture = np.where(sheet, paper, desk) * (1 - cover) + 25.0 * cover
    return picture.astype(np.float32), sheet


def test_a_sheet_on_a_dark_desk_is_found_and_the_desk_is_not_ink() -> None:
    picture, sheet = sheet_on_desk()
    page = find_page(picture)
    assert page is not None
    assert page[sheet].mean() > 0.85 and page[~sheet].max() == 0
    contrast = ink_contrast(picture)
    assert contrast[~sheet].max() == 0  # desk and sheet edge masked out
    assert contrast[80:160, 140:180].max() > 0.8


def test_a_lit_half_of_a_page_in_shadow_is_not_a_sheet() -> None:
    light = np.where(np.arange(200)[None, :] < 100, 230.0, 110.0) * np.ones((200, 1))
    assert find_page(photo(light)) is None


def test_a_light_ring_on_black_is_not_a_sheet() -> None:
    rows, cols = np.indices((200, 200))
    radius = np.hypot(rows - 100, cols - 100)
    ring = np.where((radius > 40) & (radius < 70), 220.0, 30.0)
    assert find_page(ring + RNG.normal(0, 3, ring.shape)) is None


def test_composite_puts_strokes_on_the_background_that_contrasts() -> None:
    alpha = np.zeros((20, 20), np.float32)
    alpha[5:15, 8:12] = 255
    dark = composite(np.zeros((20, 20), np.float32), alpha)
    light = composite(np.full((20, 20), 255, np.float32), alpha)
    assert dark[0, 0] == 255 and dark[10, 10] == 0
    assert light[0, 0] == 0 and light[10, 10] == 255


@pytest.mark.parametrize(
    ("stroke_grey", "stroke_alpha", "background"),
    [
        (100, 255, 255),  # mid-dark strokes: white paper, whatever the transparent pixels hold
        (128, 255, 0),  # the midpoint counts as light ink
        (200, 128, 0),  # one half-opaque light pixel decides alone
    ],
)
def test_composite_weighs_the_strokes_by_their_opacity(
    stroke_grey: int, stroke_alpha: int, background: int
) -> None:
    grey = np.zeros((20, 20), np.float32)  # transparent pixels store black, as canvases do
    alpha = np.zeros((20, 20), np.float32)
    grey[10, 10], alpha[10, 10] = stroke_grey, stroke_alpha
    if stroke_alpha == 255:
        grey[5:15, 8:12], alpha[5:15, 8:12] = stroke_grey, 255
    assert composite(grey, alpha)[0, 0] == background


def test_composite_of_a_fully_transparent_canvas_is_blank_paper() -> None:
    out = composite(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32))
    assert (out == 255).all()
