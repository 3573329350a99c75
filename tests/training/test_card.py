"""Model cards and `mnist-models show`'s summary: from a hand-made manifest line by line,
and from a version the real CLI published (conftest's seed run)."""

from __future__ import annotations

import pytest

from tests.conftest import SeedRun
from training.card import CARD, CONFUSION, CURVES, model_card, summary
from training.store import Store

MANIFEST = {
    "name": "mnist",
    "version": 4,
    "created_at": "2026-12-01T00:00:00+00:00",
    "recipe": {"name": "best", "epochs": 32, "augmentation": {"rotation_degrees": 12.0,
                                                              "shear": 0.0}},
    "model": {"architecture": "784-512(relu)-10(softmax)", "parameters": 407050},
    "data": {"source": "idx:/data", "fingerprint": "ab" * 32, "train_samples": 60000,
             "test_samples": 10000},
    "metrics": {"accuracy": 0.9917, "loss": 0.029, "test_samples": 10000,
                "per_class_accuracy": [0.99] * 8 + [0.981, 0.99]},
    "training": {"duration_seconds": 71.25, "epochs": 32, "final": {"loss": 0.05}},
    "real_world": {"uploads_per_kind": 100, "seed": 2026,
                   "accuracy": {"desk": 0.97, "uci": 0.96, "mnist": 1.0, "pencil": 0.99}},
    "gate": {"decision": "test accuracy 0.9917 passes the gate 0.99", "compared_with": 3,
             "comparison": "within", "promotion": "within"},
    "files": {"model.keras": "x", CARD: "y"},
}  # fmt: skip


def test_summary_is_a_few_lines_with_the_worst_kinds() -> None:
    assert summary(MANIFEST, ["production"]).splitlines() == [
        "mnist version 4: recipe best, created 2026-12-01T00:00:00+00:00, aliases: production",
        "MNIST test accuracy 0.9917 (loss 0.0290); worst digit 8 at 98.1%",
        "real-world uploads 98.0% over 4 kinds (100 each); worst: uci 96.0%, desk 97.0%, "
        "pencil 99.0%",
        "data abababababab... (60000 train, 10000 test)",
        "trained 32 epochs in 71.2 s",
        "gate: test accuracy 0.9917 passes the gate 0.99; compared with version 3",
        "gate: promotion: within",
        "files: 2, each with its sha256 (`verify`)",
    ]


def test_card_has_every_section_and_figure() -> None:
    card = model_card(MANIFEST, "mnist")
    for heading in ("# Model card: mnist, recipe `best`", "## Intended use", "## Data",
                    "## Recipe", "## Training", "## MNIST test set", "## Real-world uploads",
                    "## Gate"):  # fmt: skip
        assert f"\n{heading}\n" in f"\n{card}"
    assert f"![training curves]({CURVES})" in card and f"![confusion matrix]({CONFUSION})" in card
    assert "| uci | 96.0% |" in card and "| **mean** | **98.0%** |" in card
    assert "| augmentation | rotation_degrees 12.0 |" in card  # zeros left out
    assert "98.1%" in card and "`" + "ab" * 32 + "`" in card
    assert "compared with version 3" in card


def test_a_version_without_real_world_figures_says_so() -> None:
    bare = {**MANIFEST, "real_world": None, "gate": None}
    assert "Not evaluated (trained with `--real-world 0`)." in model_card(bare, "mnist")
    assert "real-world uploads: not evaluated" in summary(bare, [])


@pytest.mark.integration
def test_the_cli_publishes_a_card_and_its_pictures(seed_store: SeedRun) -> None:
    store = Store(seed_store.root)
    manifest = store.manifest(1)
    assert {CARD, CURVES, CONFUSION} <= set(manifest["files"])  # checksummed with the rest
    card = (store.dir / "1" / CARD).read_text()
    for kind, accuracy in manifest["real_world"]["accuracy"].items():
        assert f"| {kind} | {accuracy:.1%} |" in card
    assert "| augmentation | none |" in card and "| optimizer | rmsprop |" in card
    assert (store.dir / "1" / CONFUSION).read_bytes().startswith(b"\x89PNG")
    assert f"Accuracy **{manifest['metrics']['accuracy']:.4f}**" in card


def test_augmentation_that_is_off_is_none() -> None:
    off = {"rotation_degrees": 0.0, "elastic_alpha": 0.0, "elastic_sigma": 4.0, "degraded": 0.0,
           "probability": 1.0, "blur_sigma": 1.2}  # fmt: skip
    card = model_card({**MANIFEST, "recipe": {"name": "seed", "augmentation": off}}, "mnist")
    assert "| augmentation | none |" in card
