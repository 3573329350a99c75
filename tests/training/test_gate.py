"""The accuracy gate and the promotion rule, on MNIST and on each kind of real-world upload."""

from __future__ import annotations

from training.gate import Baseline, accuracy_gate, kind_regressions, promotion

PRODUCTION = Baseline(4, 0.9810, {"uci": 0.95, "desk": 0.97, "pencil": 0.99})


def test_gate_refuses_below_minimum_and_says_why() -> None:
    decision = accuracy_gate(0.9612, 0.97)
    assert not decision.ok
    assert decision.reason == "test accuracy 0.9612 is below the gate --min-accuracy 0.97"


def test_gate_passes_at_the_minimum() -> None:
    assert accuracy_gate(0.97, 0.97).ok


def test_promotes_when_alias_is_unset() -> None:
    decision = promotion(0.5, None, "production", 0.002)
    assert decision.ok and decision.reason == "'production' named no version yet"


def test_promotes_within_tolerance_of_current() -> None:
    assert promotion(0.9795, Baseline(4, 0.9810), "production", 0.002).ok


def test_refuses_when_worse_than_current_by_more_than_tolerance() -> None:
    decision = promotion(0.9780, Baseline(4, 0.9810), "production", 0.002)
    assert not decision.ok
    assert "'production' stays on 4" in decision.reason


def test_refuses_a_candidate_worse_on_one_kind_and_names_it() -> None:
    candidate = {"uci": 0.82, "desk": 0.98, "pencil": 0.99}  # better on MNIST, worse on UCI
    decision = promotion(0.9850, PRODUCTION, "production", 0.002, candidate, 0.05)
    assert not decision.ok
    assert decision.reason == (
        "real-world uploads read worse than version 4's by more than 5 points: uci 82.0% "
        "(version 4: 95.0%); 'production' stays on 4"
    )


def test_a_kind_within_its_tolerance_passes() -> None:
    candidate = {"uci": 0.90, "desk": 0.97, "pencil": 0.99}  # 5 points down: the edge
    decision = promotion(0.9810, PRODUCTION, "production", 0.002, candidate, 0.05)
    assert decision.ok
    assert decision.reason == (
        "test accuracy 0.9810 against version 4's 0.9810, not worse by more than 0.002; "
        "no kind of real-world upload worse by more than 5 points (3 compared)"
    )


def test_without_figures_on_both_sides_only_mnist_is_compared() -> None:
    candidate = {"uci": 0.10}
    assert promotion(0.9810, Baseline(4, 0.9810), "production", 0.002, candidate).ok
    decision = promotion(0.9810, PRODUCTION, "production", 0.002, None)
    assert decision.ok and "real-world" not in decision.reason
    # Scored on different kinds (a renamed kind): nothing compared, and said so.
    decision = promotion(0.9810, PRODUCTION, "production", 0.002, {"renamed": 0.1})
    assert decision.ok and decision.reason.endswith(
        "; real-world figures not compared: no kind of upload scored for both"
    )


def test_regressions_worst_first_and_only_kinds_both_have() -> None:
    worse = kind_regressions(
        {"a": 0.80, "b": 0.50, "c": 0.99, "new": 0.0}, {"a": 0.90, "b": 0.90, "c": 0.99}, 0.05
    )
    assert list(worse) == ["b", "a"] and worse["b"] == (0.50, 0.90)
