"""The real-world evaluation (`training.realworld`): every kind of upload made from MNIST
test digits, UCI digits, fonts and drawn strokes, read as the service reads them, scored
per kind; `mnist-train` records it in the manifest, with a floor per kind here for the seed
and the best model (trained once per session by conftest's real CLI runs).

The uploads come from a fixed seed and training is deterministic, so the figures do not
move from run to run; the floors sit below what was measured with a margin for library
versions. Full figures are in BENCHMARKS.md (issue 13) and the issues' notes.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stdout, suppress
from pathlib import Path

import numpy as np
import pytest

from bench import wild
from tests.conftest import REPO, SeedRun
from tests.uploads import png
from training.realworld.evaluation import KINDS, NO_DIGIT, Upload, prepare, read, score
from training.store import Store

# Floors per kind (100 uploads a kind); the table kinds of issue 13 at the top. Measured
# with the seed model: 82-100% (UCI 82%); with best: 96-100%.
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


def recorded(store: Path) -> dict[str, float]:
    real_world = Store(store).manifest(1)["real_world"]
    assert real_world["uploads_per_kind"] == 100 and real_world["seed"] == 2026
    return real_world["accuracy"]


def test_every_kind_is_evaluated() -> None:
    assert set(SEED_FLOORS) == set(KINDS)


@pytest.mark.integration
def test_seed_model_reads_every_kind(seed_store: SeedRun) -> None:
    accuracy = recorded(seed_store.root)
    below = {kind: a for kind, a in accuracy.items() if a < SEED_FLOORS[kind]}
    assert not below, f"below the floor: {below} (all: {accuracy})"
    assert set(accuracy) == set(KINDS)


@pytest.mark.integration
def test_best_model_reads_every_kind(best_store: SeedRun) -> None:
    accuracy = recorded(best_store.root)
    below = {kind: a for kind, a in accuracy.items() if a < BEST_FLOORS[kind]}
    assert not below, f"below the floor: {below} (all: {accuracy})"


@pytest.mark.integration
def test_bench_wild_reads_what_the_manifest_recorded(seed_store: SeedRun, mnist_dir: Path) -> None:
    """bench/wild.py runs the served runtime (NumPy) on the store's version; mnist-train
    scored the Keras model before publishing it: the same uploads, the same answers."""
    kinds = ["mnist", "paint_28", "canvas_280", "typed", "uci", "blank_dim"]  # quick to make
    out = io.StringIO()
    with redirect_stdout(out):
        wild.main(["--store", str(seed_store.root), "--version", "1", "--count", "100",
                   "--kinds", ",".join(kinds), "--mnist-dir", str(mnist_dir)])  # fmt: skip
    printed = {line.split()[0]: float(line.split()[-1].rstrip("%")) / 100
               for line in out.getvalue().splitlines()[2:]}  # fmt: skip
    manifest = recorded(seed_store.root)
    assert printed == pytest.approx({kind: manifest[kind] for kind in kinds}, abs=1e-9)


def test_blank_is_right_only_where_no_digit_is_expected_and_refused_is_never_right() -> None:
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a "1"
    batch = [
        Upload("t", png(digit), 1),
        Upload("t", png(np.zeros((28, 28), np.uint8)), NO_DIGIT),  # blank, rightly
        Upload("t", png(np.zeros((28, 28), np.uint8)), 3),  # blank, but a 3 was there
        Upload("t", b"not an image", NO_DIGIT),  # refused: not "no digit"
    ]
    samples = read(batch)
    assert samples.count == 4 and samples.right_without_digit == 1
    assert samples.rows.shape == (1, 784) and samples.expected.tolist() == [1]

    def says(digit: int):
        return lambda rows: np.eye(10, dtype=np.float32)[np.full(len(rows), digit)]

    assert score({"t": samples}, says(1)) == {"t": 0.5}
    assert score({"t": samples}, says(7)) == {"t": 0.25}


def test_worker_processes_make_the_same_uploads_as_one_process() -> None:
    digits = np.zeros((30, 28, 28), np.uint8)
    digits[:, 6:22, 12:16] = 255  # a "1" each
    mnist_test = (digits, np.ones(30, np.int64))
    kinds = ["clean_photo", "paint_28", "uci", "blank_dim", "typed"]
    alone = prepare(kinds, 5, 3, mnist_test, processes=1)
    spread = prepare(kinds, 5, 3, mnist_test, processes=2)
    assert list(spread) == kinds
    for kind in kinds:
        np.testing.assert_array_equal(spread[kind].rows, alone[kind].rows)
        np.testing.assert_array_equal(spread[kind].expected, alone[kind].expected)
        assert spread[kind].right_without_digit == alone[kind].right_without_digit
        assert spread[kind].count == alone[kind].count == 5
    assert len(alone["clean_photo"].rows) and len(alone["uci"].rows)


def test_an_unknown_kind_is_refused_from_a_worker_process_too() -> None:
    mnist_test = (np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.int64))
    with pytest.raises(KeyError, match="unknown kind 'sketch'"):
        prepare(["mnist", "sketch"], 1, 0, mnist_test, processes=2)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone
        return None


def _workers(pid: int) -> list[int]:
    """loky's worker processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if fields and int(fields[1]) == pid and b"popen_loky_posix" in command:
            found.append(int(entry.name))
    return found


def _cpu_seconds(pid: int) -> float:
    fields = _stat(pid)  # utime and stime, the 14th and 15th fields of stat
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _running(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"  # a zombie has exited already


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc")
def test_worker_processes_exit_soon_after_their_parent_is_killed() -> None:
    # They used to block for good writing their results to a pipe nobody read any more.
    script = (
        "import numpy as np\n"
        "from training.realworld.evaluation import prepare\n"
        "digits = np.zeros((30, 28, 28), np.uint8)\n"
        "digits[:, 6:22, 12:16] = 255\n"
        "test = (digits, np.ones(30, np.int64))\n"
        "prepare(['clean_photo', 'uci', 'paint_28'] * 1000, 5, 0, test, processes=2)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        # Both workers started and busy with kinds (a worker killed during its start-up
        # exits by itself, so that would prove nothing).
        while time.monotonic() < deadline and (
            len(workers := _workers(parent.pid)) < 2 or min(map(_cpu_seconds, workers)) < 3
        ):
            time.sleep(0.2)
        assert parent.poll() is None, "prepare ended before it could be killed"
        assert len(workers) == 2, f"prepare started workers {workers}"
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 30
        while (alive := [p for p in workers if _running(p)]) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not alive, f"worker processes {alive} outlived their killed parent"
    finally:
        parent.kill()
        parent.wait()
        for pid in filter(_running, workers):  # none left behind, whatever failed
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
