"""Shared fixtures: real MNIST location, small IDX folders, and stores in temp folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.idx_files import synthetic_mnist, write_idx

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST IDX folder from MNIST_DIR; a missing one fails in CI, skips elsewhere."""
    value = os.environ.get("MNIST_DIR")
    path = (REPO / value).resolve() if value else None
    if path is None or not (path / "t10k-images-idx3-ubyte.gz").is_file():
        message = f"MNIST_DIR={value!r} does not hold the MNIST IDX files"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    """A folder with the four IDX files (gzipped) of a small synthetic data set."""
    from training.data import IDX_FILES

    folder = tmp_path / "idx"
    folder.mkdir()
    for key, array in synthetic_mnist().items():
        write_idx(folder / f"{IDX_FILES[key]}.gz", array)
    return folder
