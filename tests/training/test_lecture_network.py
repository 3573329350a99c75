"""The lecture's from-scratch NumPy network: delta-rule gradients checked by central
differences, 96% on the lecture's data, and the same answers from the service's runtime."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from service.runtime import load_keras
from tests.keras_files import write_keras
from training.lecture import network as nn


class Trained(NamedTuple):
    data: nn.Split
    net: nn.Network
    losses: list[float]


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    """Small products: OpenBLAS's threads only slow them down on two shared cores."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def data() -> nn.Split:
    return nn.load_data()


@pytest.fixture(scope="module")
def trained(data: nn.Split) -> Trained:
    """The lecture's network trained once, as `python -m training.lecture` trains it."""
    net = nn.init_network(data.x_train.shape[1], nn.HIDDEN, np.random.default_rng(0))
    with threadpool_limits(limits=1, user_api="blas"):
        losses = nn.train(net, data.x_train, data.y_train, nn.EPOCHS, nn.LEARNING_RATE)
    return Trained(data, net, losses)


def small_network(seed: int = 1) -> nn.Network:
    return nn.init_network(20, 3, np.random.default_rng(seed))


def test_data_is_split_and_standardised_with_the_training_statistics_only(
    data: nn.Split,
) -> None:
    assert data.x_train.shape == (4000, 20) and data.x_test.shape == (1000, 20)
    assert data.x_train.dtype == np.float64 and set(np.unique(data.y_train)) == {0, 1}
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1, rtol=1e-12)
    assert np.abs(data.x_test.mean(axis=0)).max() > 0.01  # not standardised on itself
    assert data.y_test.mean() == pytest.approx(data.y_train.mean(), abs=1e-3)  # stratified


def test_forward_is_tanh_then_sigmoid() -> None:
    net = nn.Network(
        w1=np.zeros((2, 1)), b1=np.array([math.atanh(0.5)]), w2=np.array([[2.0]]), b2=np.zeros(1)
    )
    h, p = nn.forward(net, np.ones((3, 2)))
    assert h.shape == (3, 1) and p.shape == (3,)
    np.testing.assert_allclose(h, 0.5)  # tanh(atanh(0.5))
    np.testing.assert_allclose(p, 1 / (1 + math.exp(-1.0)))  # sigmoid(0.5 * 2)


def test_logistic_loss_is_mean_cross_entropy_clipped() -> None:
    assert nn.logistic_loss(np.array([0.5, 0.25]), np.array([1, 0])) == pytest.approx(
        (math.log(2) - math.log(0.75)) / 2
    )
    assert nn.logistic_loss(np.array([0.0, 1.0]), np.array([1, 0])) == pytest.approx(
        -math.log(nn.CLIP)
    )


def test_delta_rule_gradients_agree_with_central_differences(data: nn.Split) -> None:
    x, y = data.x_train[:16], data.y_train[:16]
    assert nn.gradient_check(small_network(), x, y) < 1e-6
    assert nn.gradient_check(small_network(seed=2), x, y) < 1e-6


def test_gradient_check_catches_a_delta_rule_without_tanhs_derivative(
    data: nn.Split, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = data.x_train[:16], data.y_train[:16]
    right = nn.gradients

    def without_tanh_derivative(net: nn.Network, x: np.ndarray, y: np.ndarray) -> nn.Network:
        grads = right(net, x, y)
        h, p = nn.forward(net, x)
        delta_hidden = ((p - y) / len(x))[:, None] @ net.w2.T  # (1 - h^2) left out
        return nn.Network(x.T @ delta_hidden, delta_hidden.sum(axis=0), grads.w2, grads.b2)

    monkeypatch.setattr(nn, "gradients", without_tanh_derivative)
    assert nn.gradient_check(small_network(), x, y) > 0.01


def test_training_lowers_the_loss_every_epoch_and_reaches_96_percent(trained: Trained) -> None:
    losses = np.array(trained.losses)
    assert len(losses) == nn.EPOCHS and (np.diff(losses) < 0).all()
    assert losses[0] > 0.5 and losses[-1] < 0.1
    assert nn.accuracy(trained.net, trained.data.x_test, trained.data.y_test) >= 0.96


def test_the_service_runtime_reads_the_network_as_a_keras_file_and_agrees(
    trained: Trained, tmp_path: Path
) -> None:
    write_keras(tmp_path / "model.keras", nn.dense_layers(trained.net))
    model = load_keras(tmp_path / "model.keras")
    assert [layer.activation for layer in model.layers] == ["tanh", "sigmoid"]
    x = trained.data.x_test
    served = model.predict(x.astype(np.float32))
    assert served.shape == (1000, 1) and served.dtype == np.float32
    np.testing.assert_allclose(served[:, 0], nn.forward(trained.net, x)[1], rtol=0, atol=1e-5)


def test_same_seed_same_network() -> None:
    x = np.random.default_rng(0).normal(size=(32, 20))
    y = (x[:, 0] > 0).astype(np.int64)
    first, again = small_network(5), small_network(5)
    nn.train(first, x, y, epochs=3, lr=0.5)
    nn.train(again, x, y, epochs=3, lr=0.5)
    for a, b in zip(first.parameters(), again.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)
