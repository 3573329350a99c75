"""Shared fixtures: real MNIST location, small IDX folders, and stores in temp folders."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.idx_files import synthetic_mnist, write_idx
from tests.keras_files import publish_layers, random_layers
from tests.s3 import S3Server, seaweedfs
from training.store import Store

REPO = Path(__file__).resolve().parent.parent


class SeedRun(NamedTuple):
    root: Path
    proc: subprocess.CompletedProcess[str]


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


@pytest.fixture(scope="session")
def seed_store(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SeedRun:
    """The seed recipe trained once per session on real MNIST by the real CLI, promoted to
    production. Tests must not add versions to it (copy it first)."""
    root = tmp_path_factory.mktemp("seed-store")
    proc = subprocess.run(
        [sys.executable, "-m", "training.cli", "--quiet", "--data-dir", str(mnist_dir),
         "--store", str(root), "--promote", "production"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return SeedRun(root, proc)


@pytest.fixture(scope="session")
def best_store(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SeedRun:
    """The best recipe trained once per session on real MNIST by the real CLI (a few
    minutes), promoted to production. Tests must not add versions to it."""
    root = tmp_path_factory.mktemp("best-store")
    proc = subprocess.run(
        [sys.executable, "-m", "training.cli", "--quiet", "--recipe", "best",
         "--data-dir", str(mnist_dir), "--store", str(root), "--min-accuracy", "0.99",
         "--no-savedmodel", "--promote", "production"],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return SeedRun(root, proc)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One real S3 server (SeaweedFS) for the session; each test takes a new bucket."""
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def tiny_store(tmp_path: Path) -> Store:
    """A store with one hand-made (untrained) 784-32-10 model as version 1."""
    store = Store(tmp_path / "store")
    publish_layers(store, random_layers())
    return store


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Build a TestClient (lifespan running) for an app with the given settings."""
    clients: list[TestClient] = []

    def make(store: Store | Path, **overrides: object) -> TestClient:
        root = store.root if isinstance(store, Store) else store
        settings = Settings(store=root, poll_interval=3600, **overrides)
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        clients.append(client)
        return client.__enter__()

    yield make
    for client in clients:
        client.__exit__(None, None, None)
