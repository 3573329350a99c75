"""Pictures into MNIST samples: fitted, stroke-normalised and centred as MNIST was made."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.imaging.decode import Picture, decode_many
from service.imaging.mnist import (
    BOX,
    MID,
    THICK,
    THIN,
    centre_by_mass,
    fit,
    normalise_strokes,
    plain_digit,
    plain_digits,
    stroke_width,
    tight,
    to_mnist_many,
    true_resolution,
)
from service.runtime import load_keras
from tests.conftest import SeedRun


def a_digit() -> np.ndarray:
    """A 28x28 '7'-ish MNIST-style digit: white on black, its ink in a 20 px box."""
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 13:16] = 255
    digit[4:7, 8:16] = 255
    return digit


def sample(picture: Picture) -> np.ndarray:
    samples = to_mnist_many([picture])
    assert not samples.blank[0]
    return samples.rows[0].reshape(28, 28)


def ink_rows(field: np.ndarray, level: float = 0.3) -> int:
    return int(np.count_nonzero(field.max(axis=1) > level))


def centre(field: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(field.shape)
    return (rows * field).sum() / field.sum(), (cols * field).sum() / field.sum()


def test_an_mnist_digit_is_only_recentred() -> None:
    digit = a_digit()
    fields, boxes = plain_digits(digit[None])
    expected = centre_by_mass(digit[None] / np.float32(255))[0]
    np.testing.assert_array_equal(fields[0], expected)
    assert boxes == [(8, 4, 8, 20)]


def test_dark_on_white_mnist_digit_is_the_same_digit() -> None:
    light, dark = a_digit(), 255 - a_digit()
    np.testing.assert_array_equal(sample(Picture(light)), sample(Picture(dark)))


def test_a_28x28_drawing_that_fills_the_frame_is_refitted_into_20_pixels() -> None:
    drawing = np.full((28, 28), 255, np.uint8)
    drawing[0:28, 12:16] = 0  # a '1' from the top edge to the bottom edge
    drawing[0:3, 8:16] = 0
    field = sample(Picture(drawing))
    assert ink_rows(field) in (BOX - 1, BOX, BOX + 1)
    assert centre(field) == pytest.approx((14, 14), abs=0.6)


def test_a_tiny_digit_in_a_28x28_photo_is_enlarged() -> None:
    rng = np.random.default_rng(2)
    photo = 200 + rng.normal(0, 4, (28, 28))
    photo[9:21, 13:15] = 40  # a 12 px '1'
    field = sample(Picture(photo.astype(np.float32)))
    assert ink_rows(field, 0.05) >= BOX - 1  # from 12 px tall


def test_a_digit_anywhere_in_a_big_frame_lands_centred() -> None:
    frame = np.zeros((300, 500), np.uint8)
    frame[20:180, 400:440] = 255  # a bar near the top-right corner
    field = sample(Picture(frame))
    assert centre(field) == pytest.approx((14, 14), abs=0.51)  # shifted by whole pixels
    assert ink_rows(field, 0.5) == BOX


def test_a_thin_pen_line_gets_an_mnist_stroke() -> None:
    canvas = np.full((1000, 1000), 255, np.uint8)
    canvas[200:800, 498:501] = 0  # a '1' drawn with a 3 px pen
    canvas[200:203, 430:501] = 0
    (picture,) = decode_many([_png(canvas)], 8_388_608)
    assert isinstance(picture, Picture)
    field = sample(picture)
    # MNIST's '1' strokes: 2-3 px wide at full intensity.
    assert field.max() > 0.9
    assert 2 <= np.count_nonzero(field[14] > 0.3) <= 5


def test_normalise_strokes_brings_widths_into_mnist_range() -> None:
    thin = np.zeros((MID, MID), np.float32)
    thin[:, 40:42] = 0.4  # 2 px wide and faint
    thick = np.zeros((MID, MID), np.float32)
    thick[:, 20:60] = 1.0  # 40 px wide
    widened, narrowed = normalise_strokes(thin), normalise_strokes(thick)
    assert THIN <= stroke_width(widened > 0.5) <= THICK
    assert widened.max() == pytest.approx(1.0)
    assert stroke_width(narrowed > 0.5) < stroke_width(thick > 0.5)
    usual = np.zeros((MID, MID), np.float32)
    usual[:, 30:38] = 1.0  # 8 px: an MNIST stroke already
    np.testing.assert_array_equal(normalise_strokes(usual), usual)


def test_strokes_are_brought_to_about_mnists_width_and_full_intensity() -> None:
    thin = np.zeros((MID, MID), np.float32)
    thin[:, 40:42] = 1.0  # a 2 px pen
    widened = normalise_strokes(thin)
    assert 6 <= np.count_nonzero(widened[len(widened) // 2] > 0.5) <= 8  # TARGET: 7 px
    thick = np.zeros((MID, MID), np.float32)
    thick[:, 30:50] = 1.0  # a 20 px marker
    assert THIN <= stroke_width(normalise_strokes(thick) > 0.5) <= THICK
    uneven = np.zeros((MID, MID), np.float32)
    uneven[:, 30:42] = 0.5
    uneven[:, 35] = 0.9  # a brighter core, under a tenth of the stroke
    assert normalise_strokes(uneven).max() == 1.0  # no sample value above 1


def test_stroke_width_of_a_long_band_is_its_width() -> None:
    assert stroke_width(np.ones((400, 6), bool)) == pytest.approx(6, abs=0.1)
    assert stroke_width(np.zeros((10, 10), bool)) == 0.0


def test_tight_crops_to_the_ink_above_the_floor() -> None:
    patch = np.zeros((10, 12), np.float32)
    patch[2:5, 3:8] = 0.9
    patch[8, 10] = 0.01  # below the floor: not ink
    np.testing.assert_array_equal(tight(patch), patch[2:5, 3:8])
    blank = np.zeros((4, 4), np.float32)
    assert tight(blank) is blank


def test_a_blank_picture_has_no_sample_and_no_box() -> None:
    samples = to_mnist_many([Picture(np.full((40, 40), 255, np.uint8))])
    assert samples.blank == [True] and samples.boxes == [None]
    assert not samples.rows.any()


def test_the_box_is_in_the_uploads_pixels() -> None:
    frame = np.zeros((100, 100), np.uint8)
    frame[20:60, 30:40] = 255
    boxes = to_mnist_many([Picture(frame, None, 4.0)]).boxes
    assert boxes == [(120, 80, 40, 160)]  # left, top, width, height, times 4
    photo = np.full((100, 100), 200.0, np.float32)  # a photo: never enlarged, never scaled
    photo[20:60, 30:40] = 30.0
    assert to_mnist_many([Picture(photo)]).boxes == [(30, 20, 10, 40)]


def test_many_pictures_of_mixed_kinds_keep_their_order() -> None:
    digit = a_digit()
    canvas = np.zeros((60, 40), np.float32), np.zeros((60, 40), np.float32)
    canvas[1][10:50, 18:24] = 255.0  # dark strokes on transparency
    pictures = [
        Picture(digit),
        Picture(np.kron(digit, np.ones((3, 2), np.uint8))),
        Picture(*canvas),
        Picture(np.zeros((28, 28), np.uint8)),
        Picture(255 - digit.T.copy()),
    ]
    together = to_mnist_many(pictures)
    assert together.blank == [False, False, False, True, False]
    for index, picture in enumerate(pictures):
        alone = to_mnist_many([picture])
        np.testing.assert_allclose(together.rows[index], alone.rows[0], atol=1e-6)
        assert together.boxes[index] == alone.boxes[0]


def test_fit_keeps_the_aspect_ratio() -> None:
    assert fit(np.ones((100, 50), np.float32), BOX).shape == (20, 10)
    assert fit(np.ones((3, 9), np.float32), BOX).shape == (7, 20)
    assert fit(np.ones((100, 2), np.float32), BOX).shape == (20, 1)  # a thin 1 stays thin
    assert fit(np.ones((2, 100), np.float32), BOX).shape == (1, 20)


def test_fit_shrinks_by_area_and_enlarges_smoothly() -> None:
    line = np.zeros((80, 80), np.float32)
    line[:, 40] = 1.0  # a 1 px stroke, thinner than the 4x reduction
    small = fit(line, BOX)
    assert small.sum() * 16 == pytest.approx(line.sum())  # its ink averaged, not lost
    assert np.count_nonzero(small.max(axis=0)) == 1
    step = np.zeros((12, 12), np.float32)
    step[:, 6:] = 1.0
    big = fit(step, BOX)
    assert ((big > 0) & (big < 1)).any()  # an anti-aliased edge, not a blocky one


def test_centre_by_mass_puts_the_mass_on_14() -> None:
    patch = np.zeros((10, 6), np.float32)
    patch[2:9, 1:3] = 1
    field = centre_by_mass(patch[None])[0]
    assert centre(field) == pytest.approx((14, 14), abs=0.5)
    assert field.sum() == pytest.approx(patch.sum())
    assert field.dtype == np.float32
    assert centre_by_mass(np.zeros((1, 28, 28))).dtype == np.float32  # the model's input


def test_off_centre_28x28_digits_are_moved_onto_14_and_centred_ones_kept() -> None:
    centred = centre_by_mass(a_digit()[None] / np.float32(255))[0]
    dot = np.zeros((28, 28), np.float32)
    dot[3, 5] = 0.5  # a faint mark: a mass under 1 is moved all the same
    stack = np.stack(
        [
            centred,
            np.roll(centred, -1, axis=0),  # one row high
            np.roll(centred, -1, axis=1),  # one column left
            np.roll(centred, (-3, 2), axis=(0, 1)),
            dot,
        ]
    )
    fields = centre_by_mass(stack)
    for field in fields[:4]:
        np.testing.assert_array_equal(field, centred)
    assert fields[4][14, 14] == 0.5 and fields[4].sum() == 0.5


def test_a_28x28_patch_moved_sideways_keeps_its_edge_rows() -> None:
    bar = np.zeros((28, 28), np.float32)
    bar[:, 3] = 1.0  # top to bottom: centred in height, 11 px left of centre
    fields = centre_by_mass(np.stack([bar, bar.T]))
    np.testing.assert_array_equal(fields[0], np.roll(bar, 11, axis=1))
    np.testing.assert_array_equal(fields[1], np.roll(bar.T, 11, axis=0))


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.integration
def test_mnist_test_digits_as_pngs_keep_the_models_accuracy(
    seed_store: SeedRun, mnist_dir: Path
) -> None:
    """The 10,000 MNIST test digits sent as 28x28 PNGs, through the service's decoding and
    preprocessing: the accuracy equals the model's own on the raw digits within 0.1 point."""
    from training.data import load_idx_dir

    data = load_idx_dir(mnist_dir)
    model = load_keras(seed_store.root / "mnist" / "1" / "model.keras")
    own = model.predict(data.x_test.reshape(-1, 784) / np.float32(255)).argmax(1)
    rows = []
    for start in range(0, len(data.x_test), 64):
        pictures = decode_many([_png(d) for d in data.x_test[start : start + 64]], 8_388_608)
        rows.append(to_mnist_many([p for p in pictures if isinstance(p, Picture)]).rows)
    through = model.predict(np.concatenate(rows)).argmax(1)
    assert len(through) == len(own)
    own_accuracy, accuracy = (own == data.y_test).mean(), (through == data.y_test).mean()
    assert abs(accuracy - own_accuracy) <= 0.001, (accuracy, own_accuracy)


def test_an_image_enlarged_by_pixel_replication_is_read_at_its_own_resolution() -> None:
    rng = np.random.default_rng(1)
    scan = rng.integers(0, 256, (8, 8)).astype(np.uint8)
    enlarged = np.asarray(Image.fromarray(scan).resize((28, 28), Image.Resampling.NEAREST))
    small, factor = true_resolution(enlarged)
    np.testing.assert_array_equal(small, scan)
    assert factor == 3.5
    drawing = a_digit()  # rows of zeros repeat, but not every row: not an enlargement
    assert true_resolution(drawing)[0] is drawing
    photo = enlarged.astype(np.float32)  # a photo's pixels are never replicated
    assert true_resolution(photo)[0] is photo


def test_only_runs_of_k_or_k_plus_1_lines_are_an_enlargement() -> None:
    scan = np.random.default_rng(1).integers(0, 256, (8, 8)).astype(np.uint8)
    twice = np.kron(scan, np.ones((2, 2), np.uint8))  # the smallest enlargement
    small, factor = true_resolution(twice)
    np.testing.assert_array_equal(small, scan)
    assert factor == 2.0
    for runs in ([1, 2] * 4, [2, 3, 4, 2, 3, 4, 2, 3]):  # some lines repeated; rectangles
        drawing = np.repeat(np.repeat(scan, runs, axis=0), runs, axis=1)
        assert true_resolution(drawing)[0] is drawing
    stretched = np.repeat(scan, 3, axis=0)  # rows repeated, columns not: left as it is
    assert true_resolution(stretched) == (stretched, 1.0)


def test_an_mnist_digit_upload_keeps_its_pixels_only_recentred() -> None:
    digit = a_digit()
    expected = centre_by_mass(digit[None] / np.float32(255))[0]
    for pictures in ([Picture(digit)], [Picture(digit), Picture(digit.T.copy())]):
        samples = to_mnist_many(pictures)
        np.testing.assert_array_equal(samples.rows[0].reshape(28, 28), expected)
        assert samples.boxes[0] == (8, 4, 8, 20)


def test_a_replicated_digit_reads_as_the_original_and_boxes_the_upload() -> None:
    frame = np.zeros((40, 30), np.uint8)
    for row in range(8, 32):  # a slanted stroke: no two rows alike
        frame[row, 20 - row // 3 : 24 - row // 3] = 255
    frame[:, 0], frame[0, 1:] = np.arange(40), np.arange(29)  # faint ramps: no two alike
    bigger = np.kron(frame, np.ones((3, 3), np.uint8))
    alone, enlarged = to_mnist_many([Picture(frame)]), to_mnist_many([Picture(bigger)])
    np.testing.assert_allclose(alone.rows, enlarged.rows, atol=1e-6)
    (left, top, width, height), (big_left, big_top, big_width, big_height) = (
        alone.boxes[0] or (0, 0, 0, 0),
        enlarged.boxes[0] or (0, 0, 0, 0),
    )
    assert (big_left, big_top, big_width, big_height) == (3 * left, 3 * top, 3 * width, 3 * height)


def test_plain_digits_tells_mnist_digits_from_the_rest_in_a_stack() -> None:
    digit = a_digit()
    small = np.zeros((28, 28), np.uint8)
    small[6:24, 12:15] = 255  # an 18 px box: not MNIST's 20
    wide = np.zeros((28, 28), np.uint8)
    wide[4:25, 13:16] = 255  # 21 px: still MNIST's (19-21)
    faint = (digit // 2).astype(np.uint8)  # peak 127: brought to 1
    noise = np.random.default_rng(0).integers(1, 255, (28, 28)).astype(np.uint8)
    stack = np.stack([digit, 255 - digit, small, wide, faint, noise, np.zeros_like(digit)])
    fields, boxes = plain_digits(stack)
    assert boxes == [(8, 4, 8, 20), (8, 4, 8, 20), None, (13, 4, 3, 21), (8, 4, 8, 20), None, None]
    np.testing.assert_array_equal(fields[0], fields[1])  # dark on white is the same digit
    np.testing.assert_allclose(fields[4], fields[0], atol=1 / 127)
    assert fields[0].max() == 1.0
    for image in stack:  # one image alone goes its own way, to the same answer
        alone_field, alone_box = plain_digit(image)
        assert alone_field.shape == (28, 28) and alone_field.dtype == np.float32
        together = plain_digits(np.stack([image, image]))
        assert alone_box == together[1][0]
        if alone_box is not None:
            np.testing.assert_allclose(alone_field, together[0][0], atol=1e-6)


def test_a_light_digit_is_plain_even_when_its_ink_covers_almost_half_the_frame() -> None:
    bold = np.zeros((28, 28), np.uint8)
    bold[4:24, 4:24] = 255
    bold[4:24, 12:16] = 0  # 20x20 with 41% of the frame inked, not 'dark ink on white'
    assert np.count_nonzero(bold) * 3 > bold.size
    assert plain_digit(bold)[1] == (4, 4, 20, 20)
    assert plain_digits(np.stack([bold, bold]))[1] == [(4, 4, 20, 20)] * 2


def test_grey_covering_more_than_half_the_frame_is_not_plain() -> None:
    """Neither light ink on black (under half the pixels 0) nor dark on white (under half
    255): the full pipeline's, even though its box is MNIST's size."""
    grey = np.zeros((28, 28), np.uint8)
    grey[3:24, 3:24] = 200  # 56% of the frame
    assert (grey == 0).sum() * 3 >= grey.size
    assert plain_digit(grey)[1] is None
    assert plain_digits(np.stack([grey, grey]))[1] == [None, None]
    on_white = np.full((28, 28), 255, np.uint8)
    on_white[3:24, 3:24] = 128  # the same on white: inverted, its ink would be MNIST's size
    assert (on_white == 255).sum() * 3 >= on_white.size
    assert plain_digit(on_white)[1] is None
    assert plain_digits(np.stack([on_white, on_white]))[1] == [None, None]


def _box_of(side: int, value: int = 255, count: int | None = None) -> np.ndarray:
    """A 28x28 image whose ink (`value`) fills `count` pixels (all by default) of a
    side x side box at (3, 3), on 0."""
    image = np.zeros((28, 28), np.uint8)
    box = np.full(side * side, value, np.uint8)
    if count is not None:  # the first count - 1 pixels and the last: the box keeps its extent
        box[count - 1 : -1] = 0
    image[3 : 3 + side, 3 : 3 + side] = box.reshape(side, side)
    return image


@pytest.mark.parametrize(
    ("image", "plain"),
    [
        (_box_of(19, count=60), True),  # MNIST's box is 19-21 px on its longer side
        (_box_of(22, count=60), False),
        (_box_of(20, value=1, count=60), True),  # ink of peak 1 is ink
        (_box_of(21, value=100, count=392), True),  # exactly half the frame 0: light
        (255 - _box_of(21, value=225, count=392), True),  # exactly half 255: dark on white
    ],
)
def test_plain_at_the_boundaries_of_each_rule(image: np.ndarray, plain: bool) -> None:
    field, box = plain_digit(image)
    fields, boxes = plain_digits(np.stack([image, image]))
    assert (box is not None) == plain
    assert boxes == [box, box]
    assert field.dtype == fields.dtype == np.float32
    if plain:
        assert field.max() == pytest.approx(1.0)
        np.testing.assert_allclose(fields[0], field, atol=1e-6)
