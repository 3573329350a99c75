"""`python -m training.lecture` prints what each of the course's networks shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_printout_shows_each_part_and_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "training.lecture"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "   AND: weights 1 1, threshold 2\n      0 0 -> 0\n      0 1 -> 0" in out
    assert "   NOT: threshold 0, its input inhibitory\n      0 -> 1\n      1 -> 0" in out
    assert "AND: converged in 6 epochs, mistakes per epoch 1 3 3 2 1 0;" in out
    assert "OR: converged in 4 epochs, mistakes per epoch 1 2 1 0;" in out
    assert "XOR: converged False: no epoch without a mistake in 1000;" in out
    assert "from epoch 2 on every epoch ends at w = [-1.0, 0.0], b = 1.0, after 4 mistakes" in out
    assert "XOR is not linearly separable" in out
    assert "make_classification(n_samples=5000, n_features=20," in out
    losses = [float(v) for v in re.findall(r"epoch +\d+  training loss (\d\.\d+)", out)]
    assert len(losses) == 6 and losses == sorted(losses, reverse=True)
    accuracy = float(re.search(r"test accuracy (\d\.\d+)", out)[1])
    assert accuracy >= 0.96
    error = float(re.search(r"max relative error (\S+) over 67 parameters", out)[1])
    assert error < 1e-6
    difference = float(re.search(r"same weights: max \|p difference\| (\S+)", out)[1])
    assert difference < 1e-5
