"""`mnist-train` end to end: bad input gives one line, the gate refuses, real MNIST trains."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SeedRun
from tests.servers import live_children
from tests.tools import mnist_train
from training.store import Store


def assert_one_line_error(proc: subprocess.CompletedProcess[str], text: str) -> None:
    assert proc.returncode == 1
    assert proc.stderr.startswith("mnist-train: error: ")
    assert text in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "flags",
    [["--tolerance", "nan"], ["--kind-tolerance", "-0.1"], ["--min-accuracy", "2"],
     ["--tolerance", "abc"], ["--real-world", "-5"], ["--real-world", "1798"],
     ["--real-world-seed", "-1"], ["--epochs", "-1"], ["--epochs", "0"], ["--seed", "-1"],
     ["--seed", "4294967296"], ["--train-limit", "-5"], ["--train-limit", "0"],
     ["--name", "../x"], ["--name", ".hidden"], ["--name", "a/b"]],
)  # fmt: skip
def test_a_bad_number_is_refused_before_anything_runs(flags: list[str], tmp_path: Path) -> None:
    proc = mnist_train("--store", str(tmp_path / "s"), *flags)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith(f"mnist-train: error: argument {flags[0]}: ")
    assert not (tmp_path / "s").exists()


def test_wrong_data_folder(tmp_path: Path) -> None:
    proc = mnist_train("--data-dir", str(tmp_path / "nope"), "--store", str(tmp_path / "s"))
    assert_one_line_error(proc, "nope: not a directory holding the MNIST IDX files")
    assert not (tmp_path / "s").exists()


def test_corrupt_idx_file(idx_dir: Path, tmp_path: Path) -> None:
    (idx_dir / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    proc = mnist_train("--data-dir", str(idx_dir), "--store", str(tmp_path / "s"))
    assert_one_line_error(proc, "train-images-idx3-ubyte.gz: cannot read")


def test_unwritable_store_fails_before_training(idx_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    proc = mnist_train("--data-dir", str(idx_dir), "--store", str(tmp_path / "file" / "s"))
    assert_one_line_error(proc, "cannot write to the store (Not a directory)")


@pytest.mark.integration
def test_gate_refuses_and_publishes_nothing(idx_dir: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    proc = mnist_train(
        "--data-dir", str(idx_dir), "--store", str(store.root), "--epochs", "1",
        "--min-accuracy", "0.99", "--no-savedmodel",
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "is below the gate --min-accuracy 0.99; nothing was published" in proc.stderr
    assert store.versions() == []
    assert not list(store.dir.glob(".tmp-*"))


@pytest.mark.integration
def test_seed_recipe_on_real_mnist_publishes_and_promotes(
    seed_store: SeedRun, tmp_path: Path
) -> None:
    store = Store(seed_store.root)
    manifest = store.manifest(1)
    assert manifest["metrics"]["accuracy"] >= 0.975
    assert manifest["recipe"]["name"] == "seed" and manifest["recipe"]["epochs"] == 5
    assert manifest["model"]["parameters"] == 407050
    assert len(manifest["data"]["files"]) == 4 and len(manifest["data"]["fingerprint"]) == 64
    assert {
        "model.keras", "history.json", "training-curves.png", "saved_model.pb",
        "training-metrics.prom",
    } <= set(manifest["files"])  # fmt: skip
    history = json.loads((store.dir / "1" / "history.json").read_text())
    assert len(history["val_accuracy"]) == 5
    assert store.verify(1) == [] and store.aliases() == {"production": 1}
    assert "promoted: 'production' -> version 1" in seed_store.proc.stdout
    assert "recipe seed: 5 epochs on 60000 images" in seed_store.proc.stdout


@pytest.mark.integration
def test_worse_second_run_publishes_but_keeps_the_alias(
    seed_store: SeedRun, mnist_dir: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "s")
    shutil.copytree(seed_store.root, store.root)
    second = mnist_train(
        "--data-dir", str(mnist_dir), "--store", str(store.root), "--promote", "production",
        "--train-limit", "600", "--epochs", "1", "--min-accuracy", "0", "--no-savedmodel",
        "--real-world", "0",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert store.versions() == [1, 2]
    assert "not promoted: test accuracy" in second.stdout
    assert store.aliases() == {"production": 1}
    assert store.verify(2) == []


def test_if_empty_does_nothing_when_the_store_has_a_version(tmp_path: Path) -> None:
    from tests.keras_files import publish_layers, random_layers

    store = Store(tmp_path / "s")
    publish_layers(store, random_layers())
    proc = mnist_train(
        "--store", str(store.root), "--data-dir", str(tmp_path / "nope"), "--if-empty"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{store.dir} already holds version 1; nothing to do\n"
    assert store.versions() == [1]


@pytest.mark.integration
def test_no_worse_than_refuses_a_model_below_production(idx_dir: Path, tmp_path: Path) -> None:
    from tests.keras_files import publish_layers, random_layers

    store = Store(tmp_path / "s")
    publish_layers(store, random_layers(), accuracy=0.999)
    store.set_alias("production", 1)
    proc = mnist_train(
        "--data-dir", str(idx_dir), "--store", str(store.root), "--epochs", "1",
        "--min-accuracy", "0", "--no-worse-than", "production", "--no-savedmodel",
        "--real-world", "0",
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "is worse than version 1's 0.9990 by more than 0.002" in proc.stderr
    assert "nothing was published" in proc.stderr
    assert store.versions() == [1]


@pytest.mark.integration
def test_same_seed_same_weights(idx_dir: Path, tmp_path: Path) -> None:
    import zipfile

    store = Store(tmp_path / "s")
    for _ in range(2):
        proc = mnist_train(
            "--data-dir", str(idx_dir), "--store", str(store.root), "--epochs", "2",
            "--min-accuracy", "0", "--no-savedmodel", "--seed", "7", "--real-world", "0",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr

    def weights(version: int) -> bytes:
        with zipfile.ZipFile(store.dir / str(version) / "model.keras") as archive:
            return archive.read("model.weights.h5")

    assert weights(1) == weights(2)
    assert store.manifest(1)["metrics"] == store.manifest(2)["metrics"]
    assert store.manifest(1)["recipe"]["seed"] == 7


@pytest.mark.integration
def test_best_recipe_on_real_mnist_reaches_99_percent(best_store: SeedRun) -> None:
    """The whole `best` recipe (a few minutes here, trained once for the session by
    conftest's `best_store`); its wall time is in the note, not asserted: these machines
    are shared."""
    store = Store(best_store.root)
    manifest = store.manifest(1)
    assert manifest["recipe"]["name"] == "best" and manifest["metrics"]["accuracy"] >= 0.990
    history = json.loads((store.dir / "1" / "history.json").read_text())
    assert len(history["loss"]) == manifest["recipe"]["epochs"]
    assert history["loss"][-1] < history["loss"][0]


def loky_workers(parent: int) -> list[int]:
    """The pids of the real-world evaluation's worker processes (joblib's loky) of `parent`."""
    return live_children(parent, b"popen_loky_posix")


def train_until_the_workers_start(mnist_dir: Path, store: Path) -> tuple[subprocess.Popen, list]:
    from joblib import cpu_count

    if cpu_count() < 2:
        pytest.skip("one CPU: the real-world uploads are made in process")
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.cli", "--quiet", "--data-dir", str(mnist_dir),
         "--store", str(store), "--train-limit", "2000", "--epochs", "1", "--min-accuracy", "0",
         "--no-savedmodel", "--real-world", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not (workers := loky_workers(proc.pid)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.1)
    return proc, workers


@pytest.mark.integration
def test_a_killed_real_world_worker_is_one_line_and_nothing_published(
    mnist_dir: Path, tmp_path: Path
) -> None:
    proc, workers = train_until_the_workers_start(mnist_dir, tmp_path / "s")
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == (
        "mnist-train: error: real-world uploads: a worker process making the uploads was "
        "killed (out of memory?); --real-world 0 skips the evaluation"
    )
    assert "Traceback" not in stderr
    assert Store(tmp_path / "s").versions() == []


@pytest.mark.integration
def test_sigterm_stops_the_real_world_workers_too(mnist_dir: Path, tmp_path: Path) -> None:
    proc, workers = train_until_the_workers_start(mnist_dir, tmp_path / "s")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert stderr.strip().splitlines()[-1] == "mnist-train: terminated (SIGTERM)"
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "worker processes outlived mnist-train"
        time.sleep(0.1)
    assert Store(tmp_path / "s").versions() == []
