"""Find the external programs some integration tests need (installed by .ci/run), run
the training CLI as the tests do, and measure a block's peak of Python allocations."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest


def require_program(name: str) -> str:
    """The program's path; a missing one fails in CI (where .ci/run installs it), skips
    elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install {name}; .ci/run does this)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_installed(path: Path) -> Path:
    """A file `make install` puts into .venv (kubectl, docker-compose, KServe's SDK wheel);
    a missing one fails in CI, skips elsewhere."""
    if not path.exists():
        message = f"{path} is missing (`make install` puts it there; .ci/run does this)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_module(name: str) -> ModuleType:
    """A module of the dev extra; a missing one fails in CI, skips elsewhere."""
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"{name} is not installed (`make install`; .ci/run does this)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def mnist_train(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`mnist-train --quiet ARGS` as a subprocess of this interpreter, its output captured;
    `timeout` seconds at most (pytest-timeout stops a test at 600)."""
    return subprocess.run(
        [sys.executable, "-m", "training.cli", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def traced_peak() -> Iterator[list[int]]:
    """The most bytes Python allocated at once inside the block, beyond what was allocated
    when it began, in the list it yields (filled on exit). Works when tracing is already on
    (`-X tracemalloc`, PYTHONTRACEMALLOC), which it then leaves on."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    peak: list[int] = []
    try:
        yield peak
        peak.append(tracemalloc.get_traced_memory()[1] - start)
    finally:
        if not was_tracing:
            tracemalloc.stop()
