"""The lecture's network from scratch in NumPy: one tanh hidden layer, a sigmoid output,
the logistic loss, gradients by the delta rule, full-batch gradient descent.

    h = tanh(X W1 + b1)         p = sigmoid(h W2 + b2)
    loss = -mean(y log p + (1 - y) log(1 - p))

Backward, the delta rule (Rumelhart, Hinton and Williams (1986), Learning representations
by back-propagating errors, Nature 323, 533-536): at the output, sigmoid and logistic loss
together give delta_out = (p - y) / N; each layer's weight gradient is its input times the
delta after it, and the delta moves back through W2 and tanh' = 1 - h^2.

The data: scikit-learn's `make_classification`, 5,000 samples of 20 features (10
informative, 5 redundant combinations of them, 5 noise; two clusters per class, 1% of labels
flipped), with the classes 1.5 apart instead of 1.0 so that a 16-unit network learns them
in a second; 20% held out, features standardised with the training set's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

DATA = {
    "n_samples": 5000,
    "n_features": 20,
    "n_informative": 10,
    "n_redundant": 5,
    "class_sep": 1.5,
    "random_state": 42,
}
TEST_SIZE = 0.2
HIDDEN = 16
LEARNING_RATE = 1.0
EPOCHS = 500
CLIP = 1e-7  # as Keras clips probabilities in its losses: log(0) never happens


class Split(NamedTuple):
    """Standardised features (N, 20) float64 and labels (N,) of 0 and 1."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass
class Network:
    """The weights: w1 (inputs, hidden), b1 (hidden,), w2 (hidden, 1), b2 (1,). Gradients
    come in the same shape."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def parameters(self) -> list[np.ndarray]:
        """The four arrays, in order; updating them updates the network."""
        return [getattr(self, f.name) for f in fields(self)]


def load_data() -> Split:
    """The lecture's data set (`DATA`), split and standardised."""
    x, y = make_classification(**DATA)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=DATA["random_state"], stratify=y
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)  # the test set's own stay unseen
    return Split((x_train - mean) / std, y_train, (x_test - mean) / std, y_test)


def init_network(inputs: int, hidden: int, rng: np.random.Generator) -> Network:
    """Weights drawn with variance 1 / fan-in (tanh stays out of saturation), zero biases."""
    return Network(
        w1=rng.normal(0, 1 / np.sqrt(inputs), (inputs, hidden)),
        b1=np.zeros(hidden),
        w2=rng.normal(0, 1 / np.sqrt(hidden), (hidden, 1)),
        b2=np.zeros(1),
    )


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1 / (1 + np.exp(-z))


def forward(net: Network, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The hidden activations h (N, hidden) and the probabilities p (N,) of class 1."""
    h = np.tanh(x @ net.w1 + net.b1)
    return h, sigmoid(h @ net.w2 + net.b2)[:, 0]


def logistic_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy, probabilities clipped to [CLIP, 1 - CLIP]."""
    p = np.clip(p, CLIP, 1 - CLIP)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def loss_of(net: Network, x: np.ndarray, y: np.ndarray) -> float:
    """The network's mean logistic loss on (x, y)."""
    return logistic_loss(forward(net, x)[1], y)


def gradients(net: Network, x: np.ndarray, y: np.ndarray) -> Network:
    """The loss's gradient by the delta rule, one array per parameter."""
    h, p = forward(net, x)
    delta_out = ((p - y) / len(x))[:, None]  # (N, 1): sigmoid' cancels the loss's 1/(p(1-p))
    delta_hidden = (delta_out @ net.w2.T) * (1 - h**2)  # (N, hidden): back through tanh
    return Network(
        w1=x.T @ delta_hidden,
        b1=delta_hidden.sum(axis=0),
        w2=h.T @ delta_out,
        b2=delta_out.sum(axis=0),
    )


def train(net: Network, x: np.ndarray, y: np.ndarray, epochs: int, lr: float) -> list[float]:
    """Full-batch gradient descent in place; the training loss before each step."""
    losses = []
    for _ in range(epochs):
        losses.append(loss_of(net, x, y))
        for param, grad in zip(net.parameters(), gradients(net, x, y).parameters(), strict=True):
            param -= lr * grad
    return losses


def accuracy(net: Network, x: np.ndarray, y: np.ndarray) -> float:
    """The share of samples whose p > 0.5 says their class."""
    return float(((forward(net, x)[1] > 0.5) == y).mean())


def numerical_gradients(net: Network, x: np.ndarray, y: np.ndarray, eps: float = 1e-5) -> Network:
    """The loss's gradient by central differences, (L(w + eps) - L(w - eps)) / 2 eps, one
    weight at a time: the check of `gradients`, not a way to train (2 passes per weight)."""
    estimates = []
    for param in net.parameters():
        estimate = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            kept = param[index]
            param[index] = kept + eps
            above = loss_of(net, x, y)
            param[index] = kept - eps
            below = loss_of(net, x, y)
            param[index] = kept
            estimate[index] = (above - below) / (2 * eps)
        estimates.append(estimate)
    return Network(*estimates)


def gradient_check(net: Network, x: np.ndarray, y: np.ndarray) -> float:
    """The largest relative error |a - n| / max(|a|, |n|) between the delta rule's gradient
    and central differences, over every parameter (float64: ~1e-9 when they agree)."""
    worst = 0.0
    for analytic, numeric in zip(
        gradients(net, x, y).parameters(), numerical_gradients(net, x, y).parameters(), strict=True
    ):
        scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), np.finfo(float).tiny)
        worst = max(worst, float((np.abs(analytic - numeric) / scale).max()))
    return worst


def dense_layers(net: Network) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """The network as the Dense layers a `.keras` file holds: (kernel, bias, activation),
    float32 as Keras stores them. This is all the service's runtime needs to run it."""
    return [
        (net.w1.astype(np.float32), net.b1.astype(np.float32), "tanh"),
        (net.w2.astype(np.float32), net.b2.astype(np.float32), "sigmoid"),
    ]
