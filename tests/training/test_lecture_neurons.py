"""The McCulloch-Pitts neuron and the perceptron: AND and OR learnt, XOR provably not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from training.lecture.neurons import (
    AND,
    MP_AND,
    MP_NOT,
    MP_OR,
    OR,
    TWO_INPUTS,
    XOR,
    McCullochPitts,
    find_cycle,
    mp_xor,
    novikoff_bound,
    perceptron_output,
    train_perceptron,
    truth_table,
    xor_sums,
)

TARGETS = {"AND": AND, "OR": OR}


def test_mcculloch_pitts_gates_compute_and_or_not_and_in_two_layers_xor() -> None:
    assert MP_AND(TWO_INPUTS).tolist() == AND.tolist()
    assert MP_OR(TWO_INPUTS).tolist() == OR.tolist()
    assert MP_NOT(np.array([[0], [1]])).tolist() == [1, 0]
    assert mp_xor(TWO_INPUTS).tolist() == XOR.tolist()


def test_an_active_inhibitory_input_vetoes_firing_however_strong_the_excitation() -> None:
    neuron = McCullochPitts(weights=(5, 5), threshold=1, inhibitory=1)
    rows = np.array([[a, b, veto] for veto in (0, 1) for a in (0, 1) for b in (0, 1)])
    assert neuron(rows).tolist() == [0, 1, 1, 1, 0, 0, 0, 0]


def test_excitatory_weights_count_towards_the_threshold() -> None:
    neuron = McCullochPitts(weights=(2, 1), threshold=2)  # x1 alone is enough, x2 is not
    assert neuron(TWO_INPUTS).tolist() == [0, 0, 1, 1]


def test_truth_table_lists_rows_in_counting_order() -> None:
    assert truth_table(MP_AND, 2) == ["0 0 -> 0", "0 1 -> 0", "1 0 -> 0", "1 1 -> 1"]
    assert truth_table(MP_NOT, 1) == ["0 -> 1", "1 -> 0"]


def test_one_perceptron_step_adds_lr_times_error_times_input() -> None:
    run = train_perceptron(np.array([[1.0, 2.0]]), np.array([1]), max_epochs=5, lr=0.5)
    assert run.errors == [1, 0] and run.converged  # w.x + b = 0 is not above 0: a mistake
    assert run.weights.tolist() == [0.5, 1.0] and run.bias == 0.5
    assert run.path.tolist() == [[0.5, 1.0, 0.5], [0.5, 1.0, 0.5]]


@pytest.mark.parametrize(
    ("name", "errors"), [("AND", [1, 3, 3, 2, 1, 0]), ("OR", [1, 2, 1, 0])]
)  # fmt: skip
def test_perceptron_learns_and_and_or_and_then_classifies_the_truth_table(
    name: str, errors: list[int]
) -> None:
    target = TARGETS[name]
    run = train_perceptron(TWO_INPUTS, target, max_epochs=1000)
    assert run.converged and run.errors == errors
    assert run.predict(TWO_INPUTS).tolist() == target.tolist()
    # The only recurring state is the fixed point: the mistake-free epoch changes nothing.
    assert find_cycle(run.path) == (len(errors) - 1, 1)


@pytest.mark.parametrize("name", ["AND", "OR"])
def test_perceptron_makes_no_more_mistakes_than_novikoffs_bound(name: str) -> None:
    target = TARGETS[name]
    bias = -1.5 if name == "AND" else -0.5  # a separator: w = (1, 1)
    bound = novikoff_bound(TWO_INPUTS, target, np.array([1.0, 1.0]), bias)
    assert sum(train_perceptron(TWO_INPUTS, target).errors) <= bound
    assert bound == pytest.approx(51.0 if name == "AND" else 27.0)  # R^2 = 3, gamma 0.24, 0.33


def test_novikoff_bound_refuses_weights_that_do_not_separate() -> None:
    with pytest.raises(ValueError, match=r"w=\[1.0, 1.0\], b=-0.5 does not separate"):
        novikoff_bound(TWO_INPUTS, XOR, np.array([1.0, 1.0]), -0.5)


def test_perceptron_never_converges_on_xor() -> None:
    run = train_perceptron(TWO_INPUTS, XOR, max_epochs=1000)
    assert not run.converged
    assert len(run.errors) == 1000 and min(run.errors) > 0
    assert run.predict(TWO_INPUTS).tolist() != XOR.tolist()


def test_on_xor_the_weights_cycle_with_mistakes_in_every_epoch_of_the_cycle() -> None:
    # The rule is deterministic: once an epoch's closing weights recur, the run repeats for
    # ever, so mistakes in every epoch of the cycle mean no number of epochs would do.
    run = train_perceptron(TWO_INPUTS, XOR, max_epochs=50)
    assert find_cycle(run.path) == (2, 1)
    start, period = 2, 1
    assert run.path[start - 1].tolist() == run.path[start - 1 + period].tolist() == [-1, 0, 1]
    assert all(errors > 0 for errors in run.errors[start : start + period])


def test_find_cycle_reports_the_first_recurring_state_and_its_period() -> None:
    path = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [2, 0], [3, 0]])
    assert find_cycle(path) == (3, 2)
    assert find_cycle(path[:4]) is None


def test_xor_is_not_linearly_separable_by_minsky_and_paperts_sum_argument() -> None:
    # Computing XOR needs w.x + b > 0 on (0,1) and (1,0) and <= 0 on (0,0) and (1,1), so
    # the first pair's sum > 0 >= the second's; but both are w1 + w2 + 2b, for every w, b.
    rng = np.random.default_rng(0)
    for weights, bias in zip(
        rng.normal(0, 10, (10_000, 2)), rng.normal(0, 10, 10_000), strict=True
    ):
        ones, zeros = xor_sums(weights, bias)
        assert ones == pytest.approx(zeros, abs=1e-9)
        assert ones == pytest.approx(weights.sum() + 2 * bias, abs=1e-9)
        assert perceptron_output(weights, bias, TWO_INPUTS).tolist() != XOR.tolist()


@pytest.mark.parametrize(("name", "target", "separable"), [
    ("AND", AND, True), ("OR", OR, True), ("NAND", 1 - AND, True), ("XOR", XOR, False),
    ("XNOR", 1 - XOR, False),
])  # fmt: skip
def test_a_linear_program_finds_a_separator_for_and_or_and_none_for_xor(
    name: str, target: np.ndarray, separable: bool
) -> None:
    # Feasibility of s_i (w . x_i + b) >= 1 with s_i = +-1: any strict separator, scaled.
    signs = 2 * target - 1
    augmented = np.column_stack([TWO_INPUTS, np.ones(4)])
    found = linprog(
        np.zeros(3), A_ub=-signs[:, None] * augmented, b_ub=-np.ones(4), bounds=[(None, None)] * 3
    )
    assert found.status == (0 if separable else 2), f"{name}: {found.message}"
    if separable:
        weights, bias = found.x[:2], found.x[2]
        assert perceptron_output(weights, bias, TWO_INPUTS).tolist() == target.tolist()
        assert train_perceptron(TWO_INPUTS, target).converged
    else:
        assert not train_perceptron(TWO_INPUTS, target).converged
