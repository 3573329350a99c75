"""Publish and promotion decisions: pure functions of accuracies, shared by the CLI and CI."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MIN_ACCURACY = 0.97
DEFAULT_TOLERANCE = 0.002


@dataclass(frozen=True)
class Decision:
    """Whether to go ahead, and a sentence saying why."""

    ok: bool
    reason: str


def accuracy_gate(accuracy: float, min_accuracy: float) -> Decision:
    """Publish only a model whose test accuracy reaches `min_accuracy`."""
    if accuracy < min_accuracy:
        return Decision(
            False, f"test accuracy {accuracy:.4f} is below the gate --min-accuracy {min_accuracy}"
        )
    return Decision(True, f"test accuracy {accuracy:.4f} passes the gate {min_accuracy}")


def promotion(
    accuracy: float, current: tuple[int, float] | None, alias: str, tolerance: float
) -> Decision:
    """Move `alias` unless the version it names now (number, accuracy) is better by more
    than `tolerance`."""
    if current is None:
        return Decision(True, f"alias {alias!r} was not set")
    version, current_accuracy = current
    if accuracy < current_accuracy - tolerance:
        return Decision(
            False,
            f"test accuracy {accuracy:.4f} is worse than version {version}'s "
            f"{current_accuracy:.4f} by more than {tolerance}; {alias!r} stays on {version}",
        )
    return Decision(
        True,
        f"test accuracy {accuracy:.4f} is within {tolerance} of or above version {version}'s "
        f"{current_accuracy:.4f}",
    )
