"""Shared fixtures: real MNIST location, small IDX folders, and stores in temp folders."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from fastapi.testclient import TestClient
from filelock import FileLock

from service.app import create_app
from service.settings import Settings
from tests.idx_files import synthetic_mnist, write_idx
from tests.keras_files import publish_layers, random_layers
from tests.s3 import S3Server, seaweedfs
from tests.tools import mnist_train
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


def trained_once(tmp_path_factory: pytest.TempPathFactory, name: str, args: list[str]) -> SeedRun:
    """`python -m training.cli --quiet ARGS --store ROOT` run once for the whole test run:
    pytest-xdist's workers share one run through a file lock (its docs' recipe for a
    session fixture executed once), the first to ask training while the others wait; a
    failed run fails every test that asks for it, without a second try."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # not distributed
        return _checked(_train(tmp_path_factory.mktemp(name), args))
    shared = tmp_path_factory.getbasetemp().parent  # every worker's base folder's parent
    with FileLock(str(shared / f"{name}.lock")):
        record = shared / f"{name}.json"
        if not record.is_file():
            run = _train(shared / name, args)
            record.write_text(json.dumps({"root": str(run.root), "args": run.proc.args,
                                          "returncode": run.proc.returncode,
                                          "stdout": run.proc.stdout,
                                          "stderr": run.proc.stderr}))  # fmt: skip
        done = json.loads(record.read_text())
    proc = subprocess.CompletedProcess(
        done["args"], done["returncode"], done["stdout"], done["stderr"]
    )
    return _checked(SeedRun(Path(done["root"]), proc))


def _train(root: Path, args: list[str]) -> SeedRun:
    proc = mnist_train(*args, "--store", str(root), timeout=540)  # within pytest-timeout's 600
    return SeedRun(root, proc)


def _checked(run: SeedRun) -> SeedRun:
    assert run.proc.returncode == 0, run.proc.stderr[-2000:]
    return run


@pytest.fixture(scope="session")
def seed_store(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SeedRun:
    """The seed recipe trained once per test run on real MNIST by the real CLI, promoted
    to production. Tests must not add versions to it (copy it first)."""
    args = ["--data-dir", str(mnist_dir), "--promote", "production"]
    return trained_once(tmp_path_factory, "seed-store", args)


@pytest.fixture(scope="session")
def best_store(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SeedRun:
    """The best recipe trained once per test run on real MNIST by the real CLI (a few
    minutes), promoted to production. Tests must not add versions to it."""
    args = ["--recipe", "best", "--data-dir", str(mnist_dir), "--min-accuracy", "0.99",
            "--no-savedmodel", "--promote", "production"]  # fmt: skip
    return trained_once(tmp_path_factory, "best-store", args)


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
