"""The training pipeline's steps: the version compared with is scored as it is served
(fetched and verified through the service's store reader, run by its runtime, from a
folder or a real S3 server), and the gate refuses a candidate that reads a kind of
real-world upload worse than production, naming the kind."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SeedRun
from tests.keras_files import publish_layers, random_layers
from tests.s3 import S3Server
from tests.tools import mnist_train
from training.pipeline import baseline
from training.realworld.evaluation import KINDS, prepare, score
from training.s3store import S3Store
from training.store import Store, StoreError

DIGITS = np.random.default_rng(0).integers(0, 256, (30, 28, 28), dtype=np.uint8)
LABELS = np.arange(30) % 10


@pytest.fixture(scope="module")
def uploads() -> dict:
    return prepare(["mnist", "paint_28", "uci", "blank_dim"], 8, 1, (DIGITS, LABELS))


def test_no_baseline_while_the_alias_is_unset(tiny_store: Store, uploads: dict) -> None:
    assert baseline(tiny_store, str(tiny_store.root), "production", uploads) is None


def test_baseline_from_a_folder_is_scored_as_served(tiny_store: Store, uploads: dict) -> None:
    from service.runtime import load_keras

    tiny_store.set_alias("production", 1)
    found = baseline(tiny_store, str(tiny_store.root), "production", uploads)
    model = load_keras(tiny_store.dir / "1" / "model.keras")
    assert found is not None and (found.version, found.accuracy) == (1, 0.9)
    assert found.real_world == score(uploads, model.predict)
    assert baseline(tiny_store, str(tiny_store.root), "production", None).real_world is None


def test_a_baseline_that_fails_its_checksums_is_a_store_error(
    tiny_store: Store, uploads: dict
) -> None:
    tiny_store.set_alias("production", 1)
    with (tiny_store.dir / "1" / "model.keras").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(StoreError, match=r"cannot score version 1 \('production'\)"):
        baseline(tiny_store, str(tiny_store.root), "production", uploads)


@pytest.mark.parametrize("accuracy", [float("nan"), 1.5, "high", 10**400])
def test_a_baseline_accuracy_that_is_no_fraction_is_a_store_error(
    tmp_path: Path, accuracy: object
) -> None:
    store = Store(tmp_path / "s")
    publish_layers(store, random_layers(), accuracy=accuracy)  # type: ignore[arg-type]
    store.set_alias("production", 1)
    with pytest.raises(StoreError, match="version 1's manifest"):
        baseline(store, str(store.root), "production", None)


def test_a_baseline_is_verified_without_real_world_uploads_too(tiny_store: Store) -> None:
    tiny_store.set_alias("production", 1)
    (tiny_store.dir / "1" / "model.keras").write_bytes(b"not what was published")
    with pytest.raises(StoreError, match=r"version 1 \('production'\) fails its checksums"):
        baseline(tiny_store, str(tiny_store.root), "production", None)


@pytest.mark.parametrize(
    ("file", "text"),
    [("aliases.json", "[" * 100_000), ("alias-history.json", '{"production": 5}'),
     ("1/manifest.json", "[" * 100_000)],
)  # fmt: skip
def test_store_files_of_another_shape_are_store_errors(
    tiny_store: Store, file: str, text: str
) -> None:
    tiny_store.set_alias("production", 1)
    (tiny_store.dir / file).write_text(text)
    with pytest.raises(StoreError):
        baseline(tiny_store, str(tiny_store.root), "production", None)
        tiny_store.set_alias("production", 1)  # reads alias-history.json


@pytest.mark.integration
def test_baseline_from_a_real_s3_server(
    s3_server: S3Server, uploads: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    url = f"s3://{s3_server.new_bucket()}/store"
    writer = S3Store(url, "mnist", client=s3_server.client())
    publish_layers(writer, random_layers(seed=1), accuracy=0.95)
    publish_layers(writer, random_layers(seed=2), accuracy=0.97)
    writer.set_alias("production", 1)
    found = baseline(writer, url, "production", uploads)
    assert found is not None and (found.version, found.accuracy) == (1, 0.95)
    assert set(found.real_world) == set(uploads)


@pytest.mark.integration
def test_gate_refuses_a_candidate_worse_on_a_real_world_kind(
    best_store: SeedRun, mnist_dir: Path, tmp_path: Path
) -> None:
    """The seed recipe (no augmentation, 5 epochs) against the best model in production,
    with MNIST's tolerance wide enough to let it through: the UCI digits (82% against 96%
    in BENCHMARKS.md) are what stops it."""
    store = Store(tmp_path / "s")
    shutil.copytree(best_store.root, store.root)
    proc = mnist_train(
        "--data-dir", str(mnist_dir), "--store", str(store.root), "--recipe", "seed",
        "--no-worse-than", "production", "--promote", "production", "--tolerance", "0.03",
        "--no-savedmodel",
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:]
    said = proc.stderr.strip().splitlines()[-1]  # after TensorFlow's own start-up lines
    assert said.startswith(
        "mnist-train: error: real-world uploads read worse than version 1's by more than 5 points: "
    ), said
    assert "uci " in said and said.endswith("'production' stays on 1; nothing was published")
    assert "Traceback" not in proc.stderr
    assert store.versions() == [1] and store.aliases() == {"production": 1}
    assert set(store.manifest(1)["real_world"]["accuracy"]) == set(KINDS)
