"""A small run of the real-world evaluation (`bench/wild.py`): every kind of upload made
from MNIST test digits, UCI digits and fonts, through the service's batch path, with a
floor per kind for the seed and the best model.

The uploads come from a fixed seed and training is deterministic, so the figures do not
move from run to run; the floors sit below what was measured with a margin for library
versions. Full runs (100 per kind) and their figures are in the issue's note.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import wild
from service.registry import load_version
from service.store import FolderStore
from tests.conftest import SeedRun

pytestmark = pytest.mark.integration

COUNT = 40
# Floors per kind; the table kinds of issue 13 at the top. Measured at this size with the
# seed model: 85-100%; with best: 85-100% (UCI) and 92-100% (the others).
SEED_FLOORS = {
    "exif_rotated": 0.85,
    "dim_photo": 0.85,
    "desk": 0.85,
    "shadow": 0.85,
    "stray_marks": 0.85,
    "pencil": 0.85,
    "boxed": 0.85,
    "paint_28": 0.85,
    "client_shrunk": 0.8,
    "thin_pen": 0.85,
    "mnist": 0.9,
    "clean_photo": 0.85,
    "canvas_280": 0.85,
    "bmp_alpha_zero": 0.9,
    "pen_drawn": 0.85,
    "typed": 0.8,
    "uci": 0.8,
    "blank_dim": 0.95,
}
BEST_FLOORS = {kind: round(min(floor + 0.05, 0.95), 2) for kind, floor in SEED_FLOORS.items()}
BEST_FLOORS["uci"] = 0.8  # 40 of the 1,797: the whole set reads 94-95% (issue 13's note)


def run(store: Path, mnist_dir: Path) -> dict[str, float]:
    loaded = load_version(FolderStore(store, "mnist"), 1)
    table = wild.evaluate(loaded, wild.KINDS, COUNT, seed=11, mnist_dir=mnist_dir)
    return {kind: row["accuracy"] for kind, row in table.items()}


def test_every_kind_is_evaluated() -> None:
    assert set(SEED_FLOORS) == set(wild.KINDS)


def test_seed_model_reads_every_kind(seed_store: SeedRun, mnist_dir: Path) -> None:
    accuracy = run(seed_store.root, mnist_dir)
    below = {kind: a for kind, a in accuracy.items() if a < SEED_FLOORS[kind]}
    assert not below, f"below the floor: {below} (all: {accuracy})"


def test_best_model_reads_every_kind(best_store: SeedRun, mnist_dir: Path) -> None:
    accuracy = run(best_store.root, mnist_dir)
    below = {kind: a for kind, a in accuracy.items() if a < BEST_FLOORS[kind]}
    assert not below, f"below the floor: {below} (all: {accuracy})"
