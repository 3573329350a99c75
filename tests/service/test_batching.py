"""Micro-batching: concurrent images share preprocessing and forward passes, and each
request gets its own row (or its own error)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from prometheus_client import REGISTRY

from service.batching import MicroBatcher
from service.errors import BlankImage
from service.imaging.decode import Picture
from service.imaging.mnist import to_mnist_many
from service.inference import classify_samples, upload_batcher
from service.registry import LoadedModel
from service.runtime import DenseLayer, DenseModel
from tests.keras_files import random_layers

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def loaded(seed: int, version: int) -> LoadedModel:
    layers = tuple(DenseLayer(k, b, a) for k, b, a in random_layers(seed))
    return LoadedModel("mnist", version, DenseModel(layers), {})


def passes() -> tuple[float, float]:
    """(forward passes, images) counted so far by the batch-size histogram."""
    count = REGISTRY.get_sample_value("mnist_inference_batch_size_images_count") or 0.0
    total = REGISTRY.get_sample_value("mnist_inference_batch_size_images_sum") or 0.0
    return count, total


def images(n: int) -> list[Picture]:
    """n different digit-like images: a bar and a blob where the seed puts them."""
    rng = np.random.default_rng(n)
    out = []
    for _ in range(n):
        grey = np.zeros((28, 28), np.uint8)
        top, left = rng.integers(3, 12, 2)
        grey[top : top + 14, left : left + 3] = 255
        grey[top : top + 4, left : left + rng.integers(4, 12)] = rng.integers(120, 256)
        out.append(Picture(grey))
    return out


def expected(model: LoadedModel, pictures: list[Picture]) -> np.ndarray:
    return model.model.predict(np.stack([to_mnist_many([p]).rows[0] for p in pictures]))


async def test_concurrent_requests_share_one_pass_and_get_their_own_rows() -> None:
    model, x = loaded(0, 1), images(7)
    batcher = upload_batcher(10**6, 64)
    before = passes()
    rows = await asyncio.gather(*(batcher.classify(model, i) for i in x))
    after = passes()
    assert after[0] - before[0] == 1 and after[1] - before[1] == 7
    np.testing.assert_allclose(np.stack(rows), expected(model, x), rtol=1e-6, atol=1e-7)


async def test_a_request_arriving_in_the_next_loop_turn_joins_the_batch() -> None:
    """The flush waits one more turn, so a request whose bytes the loop reads at its next
    poll for I/O (here: one that starts a turn later) shares the pass (flushed after one
    turn, the first would have gone alone); a later lone request gets a pass of its own."""
    model, x = loaded(0, 1), images(3)
    batcher = upload_batcher(10**6, 64)
    before = passes()
    first = asyncio.ensure_future(batcher.classify(model, x[0]))
    await asyncio.sleep(0)  # one turn
    second = asyncio.ensure_future(batcher.classify(model, x[1]))
    await asyncio.gather(first, second)
    assert passes()[0] - before[0] == 1  # one pass for both
    await batcher.classify(model, x[2])  # alone, later: a pass of its own
    assert passes()[0] - before[0] == 2


async def test_a_blank_image_fails_alone() -> None:
    model, x = loaded(0, 1), images(4)
    x[2] = Picture(np.full((28, 28), 200, np.uint8))
    batcher = upload_batcher(10**6, 64)
    before = passes()
    rows = await asyncio.gather(*(batcher.classify(model, i) for i in x), return_exceptions=True)
    assert isinstance(rows[2], BlankImage)
    assert passes()[1] - before[1] == 3  # the blank image never reached the forward pass
    answered = x[:2] + x[3:]
    np.testing.assert_allclose(
        np.stack(rows[:2] + rows[3:]), expected(model, answered), rtol=1e-6, atol=1e-7
    )


async def test_a_lone_request_is_not_held_back() -> None:
    batcher = upload_batcher(10**6, 64)
    row = await asyncio.wait_for(batcher.classify(loaded(0, 1), images(1)[0]), 1)
    assert row.shape == (10,)


async def test_batches_are_capped_and_never_mix_versions() -> None:
    old, new, x = loaded(0, 1), loaded(1, 2), images(5)
    batcher = upload_batcher(10**6, 2)
    before = passes()
    calls = [batcher.classify(old, i) for i in x] + [batcher.classify(new, x[0])]
    rows = await asyncio.gather(*calls)
    # Version 1: 5 images in passes of 2, 2 and 1; version 2: its own pass.
    after = passes()
    assert (after[0] - before[0], after[1] - before[1]) == (4, 6)
    np.testing.assert_allclose(np.stack(rows[:5]), expected(old, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rows[5], expected(new, x[:1])[0], rtol=1e-6, atol=1e-7)


async def test_a_cancelled_request_leaves_the_others_their_answers() -> None:
    model, x = loaded(0, 1), images(3)
    batcher = upload_batcher(10**6, 64)
    tasks = [asyncio.create_task(batcher.classify(model, i)) for i in x]
    await asyncio.sleep(0)  # all three are now waiting for the flush
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    np.testing.assert_allclose(done[0], expected(model, x[:1])[0], rtol=1e-6, atol=1e-7)
    assert done[2].shape == (10,)


async def test_a_failed_pass_fails_its_requests_instead_of_hanging() -> None:
    batcher = upload_batcher(10**6, 64)
    layer = DenseLayer(np.zeros((100, 10), np.float32), np.zeros(10, np.float32), "softmax")
    broken = LoadedModel("mnist", 1, DenseModel((layer,)), {})  # 100 inputs: the product raises
    calls = [batcher.classify(broken, image) for image in images(2)]
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 2)
    assert all(isinstance(r, ValueError) for r in results)


async def test_an_image_that_breaks_preprocessing_fails_only_its_request() -> None:
    model, x = loaded(0, 1), images(3)
    odd = Picture(np.zeros((28, 28, 3), np.uint8))  # not (H, W): the stacked pass raises
    batcher = upload_batcher(10**6, 64)
    before = passes()
    calls = [batcher.classify(model, i) for i in (x[0], odd, x[1], x[2])]
    rows = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 2)
    assert isinstance(rows[1], Exception) and not isinstance(rows[1], BlankImage)
    np.testing.assert_allclose(
        np.stack([rows[0], rows[2], rows[3]]), expected(model, x), rtol=1e-6, atol=1e-7
    )
    assert passes()[1] - before[1] == 3  # each good image alone, after the shared pass failed


async def test_samples_of_concurrent_requests_share_one_pass_without_preprocessing() -> None:
    model = loaded(0, 1)
    rows = np.random.default_rng(3).random((5, 784), dtype=np.float32)
    batcher = MicroBatcher(classify_samples, max_batch=64)
    before = passes()
    two, three = await asyncio.gather(
        batcher.classify_all(model, rows[:2]), batcher.classify_all(model, rows[2:])
    )
    after = passes()
    assert after[0] - before[0] == 1 and after[1] - before[1] == 5
    np.testing.assert_allclose(
        np.concatenate([two, three]), model.model.predict(rows), rtol=1e-6, atol=1e-7
    )


async def test_classify_all_raises_the_first_items_error() -> None:
    model, x = loaded(0, 1), images(3)
    x[1] = Picture(np.full((28, 28), 200, np.uint8))
    batcher = upload_batcher(10**6, 64)
    with pytest.raises(BlankImage):
        await batcher.classify_all(model, x)
