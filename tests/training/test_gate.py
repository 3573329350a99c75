"""The accuracy gate and the promotion rule."""

from __future__ import annotations

from training.gate import accuracy_gate, promotion


def test_gate_refuses_below_minimum_and_says_why() -> None:
    decision = accuracy_gate(0.9612, 0.97)
    assert not decision.ok
    assert decision.reason == "test accuracy 0.9612 is below the gate --min-accuracy 0.97"


def test_gate_passes_at_the_minimum() -> None:
    assert accuracy_gate(0.97, 0.97).ok


def test_promotes_when_alias_is_unset() -> None:
    assert promotion(0.5, None, "production", 0.002).ok


def test_promotes_within_tolerance_of_current() -> None:
    assert promotion(0.9795, (4, 0.9810), "production", 0.002).ok


def test_refuses_when_worse_than_current_by_more_than_tolerance() -> None:
    decision = promotion(0.9780, (4, 0.9810), "production", 0.002)
    assert not decision.ok
    assert "'production' stays on 4" in decision.reason
