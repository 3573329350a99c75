"""The first neurons of the course: McCulloch and Pitts's threshold unit, and Rosenblatt's
perceptron, which learns its weights and cannot learn XOR.

- McCulloch, W. S. and Pitts, W. (1943). A logical calculus of the ideas immanent in nervous
  activity. Bulletin of Mathematical Biophysics 5, 115-133. Binary inputs; the excitatory
  ones are summed against a threshold, and any active inhibitory input prevents firing
  (absolute inhibition). The weights are set by hand: nothing is learnt.
- Rosenblatt, F. (1958). The perceptron: a probabilistic model for information storage and
  organization in the brain. Psychological Review 65(6), 386-408. The weights are learnt
  from mistakes: w += lr * (y - y_hat) * x, and the bias likewise.
- Novikoff, A. B. J. (1962). On convergence proofs on perceptrons. Symposium on the
  Mathematical Theory of Automata 12, 615-622. If some w, b separate the two classes with a
  margin gamma and every |x| <= R, the rule makes at most (R / gamma)^2 mistakes, so an
  epoch without a mistake comes. Conversely, such an epoch leaves weights that separate the
  classes: the rule converges if and only if the data are linearly separable.
- Minsky, M. and Papert, S. (1969). Perceptrons. MIT Press. A single threshold unit cannot
  compute XOR (`xor_sums`); and on data no unit separates, the weights stay bounded, so with
  integer inputs they come back to where they were: the perceptron cycles (Block, H. D. and
  Levin, S. A. (1970), Proceedings of the AMS 26, 229-235, in general).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# The four rows of a two-input truth table, in counting order.
TWO_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
AND = np.array([0, 0, 0, 1])
OR = np.array([0, 1, 1, 1])
XOR = np.array([0, 1, 1, 0])


@dataclass(frozen=True)
class McCullochPitts:
    """A McCulloch-Pitts neuron: its first inputs are excitatory, with these weights, the
    `inhibitory` inputs after them veto firing; it fires when no inhibitory input is active
    and the weighted excitatory sum reaches `threshold`."""

    weights: tuple[int, ...]
    threshold: int
    inhibitory: int = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(N, inputs) of 0 and 1 to (N,) of 0 and 1."""
        x = np.atleast_2d(x)
        excited = x[:, : len(self.weights)] @ np.array(self.weights, dtype=np.int64)
        vetoed = x[:, len(self.weights) :].any(axis=1)
        return ((excited >= self.threshold) & ~vetoed).astype(np.int64)


MP_AND = McCullochPitts(weights=(1, 1), threshold=2)
MP_OR = McCullochPitts(weights=(1, 1), threshold=1)
MP_NOT = McCullochPitts(weights=(), threshold=0, inhibitory=1)  # fires unless vetoed
MP_AND_NOT = McCullochPitts(weights=(1,), threshold=1, inhibitory=1)  # x1 and not x2


def mp_xor(x: np.ndarray) -> np.ndarray:
    """XOR from three McCulloch-Pitts neurons in two layers: (x1 and not x2) or (x2 and not
    x1). One neuron cannot do it; a network can."""
    x = np.atleast_2d(x)
    return MP_OR(np.column_stack([MP_AND_NOT(x), MP_AND_NOT(x[:, ::-1])]))


def truth_table(gate: Callable[[np.ndarray], np.ndarray], inputs: int) -> list[str]:
    """One line per input row, `x1 x2 -> y`, rows in counting order."""
    rows = np.array(list(itertools.product([0, 1], repeat=inputs)))
    outputs = gate(rows)
    return [f"{' '.join(map(str, row))} -> {out}" for row, out in zip(rows, outputs, strict=True)]


@dataclass(frozen=True)
class PerceptronRun:
    """The result of `train_perceptron`: the last weights and bias, whether an epoch went
    by without a mistake, the mistakes made in each epoch, and the weights and bias at the
    end of each epoch (rows of w1, ..., wn, b)."""

    weights: np.ndarray
    bias: float
    converged: bool
    errors: list[int]
    path: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The perceptron's outputs, 0 or 1, for (N, inputs)."""
        return perceptron_output(self.weights, self.bias, x)


def perceptron_output(weights: np.ndarray, bias: float, x: np.ndarray) -> np.ndarray:
    """Rosenblatt's threshold unit: 1 where w . x + b > 0, else 0."""
    return (np.atleast_2d(x) @ weights + bias > 0).astype(np.int64)


def train_perceptron(
    x: np.ndarray, y: np.ndarray, max_epochs: int = 1000, lr: float = 1.0
) -> PerceptronRun:
    """The perceptron rule from zero weights, one sample at a time in the given order,
    until an epoch without a mistake (converged) or `max_epochs` epochs."""
    weights, bias = np.zeros(x.shape[1]), 0.0
    errors: list[int] = []
    path: list[np.ndarray] = []
    for _ in range(max_epochs):
        mistakes = 0
        for sample, target in zip(x, y, strict=True):
            error = int(target) - int(sample @ weights + bias > 0)
            if error:
                weights = weights + lr * error * sample
                bias += lr * error
                mistakes += 1
        errors.append(mistakes)
        path.append(np.append(weights, bias))
        if mistakes == 0:
            break
    return PerceptronRun(weights, bias, errors[-1] == 0, errors, np.array(path))


def novikoff_bound(x: np.ndarray, y: np.ndarray, weights: np.ndarray, bias: float) -> float:
    """Novikoff's bound on the perceptron's mistakes, (R / gamma)^2, from one (w, b) that
    separates the classes: R the longest input with its bias input 1 appended, gamma the
    least distance from an input to the hyperplane in that space (the best separator gives
    the least bound)."""
    augmented = np.column_stack([x, np.ones(len(x))])
    normal = np.append(weights, bias)
    margins = (2 * y - 1) * (augmented @ normal) / np.linalg.norm(normal)
    if margins.min() <= 0:
        raise ValueError(f"w={weights.tolist()}, b={bias} does not separate the classes")
    return float((np.linalg.norm(augmented, axis=1).max() / margins.min()) ** 2)


def xor_sums(weights: np.ndarray, bias: float) -> tuple[float, float]:
    """Minsky and Papert's argument, for one (w, b): the unit's net inputs summed over the
    two rows XOR maps to 1, and over the two it maps to 0. Both are w1 + w2 + 2b, for every
    w and b; computing XOR would need the first sum > 0 >= the second."""
    net = TWO_INPUTS @ weights + bias
    return float(net[XOR == 1].sum()), float(net[XOR == 0].sum())


def find_cycle(path: np.ndarray) -> tuple[int, int] | None:
    """The first epoch (counted from 1) whose closing weights come back at a later epoch's
    end, and how many epochs later; None if no state recurs. The rule is deterministic, so
    from there on the run repeats itself for ever."""
    for start, state in enumerate(path):
        later = np.flatnonzero((path[start + 1 :] == state).all(axis=1))
        if len(later):
            return start + 1, int(later[0]) + 1
    return None
