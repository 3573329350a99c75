"""Micro-batching: concurrent samples share forward passes and each gets its own row."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from prometheus_client import REGISTRY

from service.batching import MicroBatcher
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


def samples(n: int) -> np.ndarray:
    return np.random.default_rng(n).uniform(0, 1, (n, 784)).astype(np.float32)


async def test_concurrent_requests_share_one_pass_and_get_their_own_rows() -> None:
    model, x = loaded(0, 1), samples(7)
    batcher = MicroBatcher(max_batch=64)
    before = passes()
    rows = await asyncio.gather(*(batcher.probabilities(model, s) for s in x))
    after = passes()
    assert after[0] - before[0] == 1 and after[1] - before[1] == 7
    np.testing.assert_allclose(np.stack(rows), model.model.predict(x), rtol=1e-6, atol=1e-7)


async def test_a_lone_request_is_not_held_back() -> None:
    batcher = MicroBatcher()
    row = await asyncio.wait_for(batcher.probabilities(loaded(0, 1), samples(1)[0]), 1)
    assert row.shape == (10,)


async def test_batches_are_capped_and_never_mix_versions() -> None:
    old, new, x = loaded(0, 1), loaded(1, 2), samples(5)
    batcher = MicroBatcher(max_batch=2)
    before = passes()
    calls = [batcher.probabilities(old, s) for s in x] + [batcher.probabilities(new, x[0])]
    rows = await asyncio.gather(*calls)
    # Version 1: 5 samples in passes of 2, 2 and 1; version 2: its own pass.
    assert passes()[0] - before[0] == 4
    np.testing.assert_allclose(np.stack(rows[:5]), old.model.predict(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(rows[5], new.model.predict(x[:1])[0], rtol=1e-6, atol=1e-7)


async def test_a_cancelled_request_leaves_the_others_their_answers() -> None:
    model, x = loaded(0, 1), samples(3)
    batcher = MicroBatcher()
    tasks = [asyncio.create_task(batcher.probabilities(model, s)) for s in x]
    await asyncio.sleep(0)  # all three are now waiting for the flush
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    np.testing.assert_allclose(done[0], model.model.predict(x[:1])[0], rtol=1e-6, atol=1e-7)
    assert done[2].shape == (10,)


async def test_a_failed_pass_fails_its_requests_instead_of_hanging() -> None:
    batcher = MicroBatcher()
    wrong = np.zeros(100, np.float32)  # not 784 inputs: the product raises
    calls = [batcher.probabilities(loaded(0, 1), wrong) for _ in range(2)]
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 2)
    assert all(isinstance(r, ValueError) for r in results)
