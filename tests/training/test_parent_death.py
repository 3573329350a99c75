"""`training.realworld.parent_death`: the parent-death signal armed in a worker process,
an exit when the parent is already gone, and a warning (never an error) when prctl fails."""

from __future__ import annotations

import ctypes
import logging
import subprocess
import sys

import pytest

from tests.conftest import REPO
from training.realworld import parent_death

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    prelude = "import ctypes, os\nfrom training.realworld.parent_death import die_with_parent\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code], cwd=REPO, capture_output=True, text=True, timeout=60
    )


@linux
def test_the_signal_is_sigkill_once_armed() -> None:
    done = _run(
        "die_with_parent(os.getppid())\n"
        "signal = ctypes.c_int()\n"
        "ctypes.CDLL(None).prctl(2, ctypes.byref(signal), 0, 0, 0)  # PR_GET_PDEATHSIG\n"
        "print(signal.value)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "9"


@linux
def test_a_worker_whose_parent_is_already_gone_exits() -> None:
    done = _run("die_with_parent(os.getppid() + 1)\nprint('still here')\n")
    assert done.returncode == 1 and "still here" not in done.stdout


@linux
def test_a_failing_prctl_is_a_warning_and_the_worker_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_libc(*args: object, **kwargs: object) -> ctypes.CDLL:
        raise OSError("no libc")

    monkeypatch.setattr(parent_death.ctypes, "CDLL", no_libc)
    with caplog.at_level(logging.WARNING, logger=parent_death.__name__):
        parent_death.die_with_parent(0)  # 0 is nobody's parent: it would exit if armed
    assert "will not die with its parent: prctl failed (no libc)" in caplog.text


@linux
def test_a_refusing_prctl_is_a_warning_too(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(parent_death, "PR_SET_PDEATHSIG", 1_000_000)  # EINVAL
    with caplog.at_level(logging.WARNING, logger=parent_death.__name__):
        parent_death.die_with_parent(0)
    assert "prctl failed ([Errno 22] Invalid argument)" in caplog.text
