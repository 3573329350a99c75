"""Find the external programs some integration tests need (installed by .ci/run)."""

from __future__ import annotations

import os
import shutil

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
