"""One training run, in the order things happen: load and validate the data, build and fit
the network, evaluate it (MNIST's test set, then the real-world uploads), gate it, publish
it, promote it. Each step is a function with typed inputs and outputs; `run` calls them in
turn. `mnist-train` (training/cli.py) only turns flags into a `Plan` and calls `run`; the
compose trainer, the retrain workflow, the Kubernetes CronJob and `make train` all go
through it.

Every expected failure raises DataError, StoreError or GateRefused with a sentence for the
person who ran it; nothing is published unless every step before publishing succeeded.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from training.data import Dataset, load_data
from training.gate import (
    DEFAULT_KIND_TOLERANCE,
    DEFAULT_MIN_ACCURACY,
    DEFAULT_TOLERANCE,
    Baseline,
    Decision,
    accuracy_gate,
    promotion,
)
from training.recipes import Recipe
from training.report import push, training_registry, write_textfile
from training.store import StoreError
from training.stores import open_store

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from training.publish import TrainingRun
    from training.realworld.evaluation import KindSamples, Predict
    from training.stores import AnyStore


class GateRefused(Exception):
    """The model did not pass the gate; nothing was published."""


@dataclass(frozen=True)
class Plan:
    """What one run is asked to do (the flags of `mnist-train`)."""

    recipe: Recipe
    store: str = "models"
    name: str = "mnist"
    data_dir: Path | None = None
    npz: Path | None = None
    train_limit: int | None = None
    min_accuracy: float = DEFAULT_MIN_ACCURACY
    no_worse_than: str | None = None  # publish nothing if worse than what this alias names
    promote: str | None = None  # move this alias to the new version unless it is worse
    tolerance: float = DEFAULT_TOLERANCE  # MNIST test accuracy, absolute
    kind_tolerance: float = DEFAULT_KIND_TOLERANCE  # accuracy per kind of upload, absolute
    real_world: int = 100  # uploads per kind; 0: no real-world evaluation
    real_world_seed: int = 2026
    savedmodel: bool = True
    verbose: bool = True
    if_empty: bool = False
    pushgateway: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The gate's decisions, made once before publishing: publish at all (`publish`), and
    move `plan.promote` (`promote`: None when no alias is to move)."""

    publish: Decision
    promote: Decision | None
    compared_with: Baseline | None
    comparison: Decision | None = None  # with `compared_with`, on MNIST and each kind


@dataclass(frozen=True)
class Outcome:
    """What a run did: the version published (None if none) and whether an alias moved."""

    version: int | None
    promoted: bool
    verdict: Verdict | None


def run(plan: Plan) -> Outcome:
    """Load, fit, evaluate, gate, publish, promote; prints a line per step that matters."""
    store = open_store(plan.store, plan.name)
    if plan.if_empty and (published := store.versions()):
        print(f"{store.location} already holds version {published[-1]}; nothing to do")
        return Outcome(None, False, None)
    dataset = load_data(plan.data_dir, plan.npz)
    with store.publishing() as staging:  # fails now, not after training, if unwritable
        trained = fit(dataset, plan)
        floor = accuracy_gate(trained.evaluation.accuracy, plan.min_accuracy)
        uploads = prepare_real_world(dataset, plan) if floor.ok else None
        real_world = score_real_world(uploads, trained.model.predict) if uploads else None
        verdict = gate(store, trained, floor, real_world, uploads, plan)
        if not verdict.publish.ok:
            if plan.pushgateway:
                report(plan.pushgateway, store, None, trained)
            raise GateRefused(f"{verdict.publish.reason}; nothing was published")
        version = publish(store, staging, trained, real_world, verdict, plan)
    print(f"published {store.name} version {version} at {store.location}/{version}")
    if plan.pushgateway:
        report(plan.pushgateway, store, version, trained)
    promoted = promote(store, version, plan.promote, verdict.promote)
    return Outcome(version, promoted, verdict)


def fit(dataset: Dataset, plan: Plan) -> TrainingRun:
    """Build the 784-512-10 network, fit it with the plan's recipe, and evaluate it on
    MNIST's test set (10,000 images)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training.evaluate import evaluate
    from training.model import build_model, fit, seed_everything, to_inputs
    from training.publish import TrainingRun

    x, y = dataset.x_train, dataset.y_train
    if plan.train_limit:
        x, y = x[: plan.train_limit], y[: plan.train_limit]
    seed_everything(plan.recipe.seed)
    model = build_model()
    started = time.monotonic()
    history = fit(model, x, y, plan.recipe, verbose="auto" if plan.verbose else 0)
    duration = time.monotonic() - started
    probabilities = model.predict(to_inputs(dataset.x_test), batch_size=1024, verbose=0)
    evaluation = evaluate(probabilities, dataset.y_test)
    print(
        f"recipe {plan.recipe.name}: {len(history.get('loss', []))} epochs on {len(x)} images "
        f"in {duration:.1f} s; test accuracy {evaluation.accuracy:.4f}, "
        f"loss {evaluation.loss:.4f}; worst digit "
        f"{min(range(10), key=lambda d: evaluation.per_class_accuracy[d])}"
    )
    return TrainingRun(model, plan.recipe, history, evaluation, dataset, duration, len(x))


def prepare_real_world(dataset: Dataset, plan: Plan) -> dict[str, KindSamples] | None:
    """`plan.real_world` uploads of every kind, made from the test images and read as the
    service reads them; None when the plan asks for none. DataError when they cannot be
    made (the fonts of the `typed` kind missing, a worker process killed)."""
    if not plan.real_world:
        return None
    from training.data import DataError
    from training.realworld.evaluation import KINDS, WorkerDied, prepare

    print(f"real-world evaluation: making {plan.real_world} uploads of each of {len(KINDS)} "
          "kinds", flush=True)  # fmt: skip
    started = time.monotonic()
    try:
        prepared = prepare(
            KINDS, plan.real_world, plan.real_world_seed, (dataset.x_test, dataset.y_test)
        )
    except (FileNotFoundError, WorkerDied) as exc:
        raise DataError(f"real-world uploads: {exc}") from exc
    print(f"real-world uploads made and read in {time.monotonic() - started:.1f} s")
    return prepared


def score_real_world(uploads: dict[str, KindSamples], predict: Predict) -> dict[str, float]:
    """Accuracy per kind of upload of the model whose forward pass is `predict`."""
    from training.realworld.evaluation import score

    def batched(rows: np.ndarray) -> np.ndarray:
        return np.asarray(predict(rows, batch_size=1024, verbose=0))  # a Keras model's

    return score(uploads, batched)


def baseline(
    store: AnyStore, location: str, alias: str, uploads: dict[str, KindSamples] | None
) -> Baseline | None:
    """The version `alias` names now, with its MNIST test accuracy from its manifest and,
    when there are real-world uploads, its accuracy on them: its model.keras fetched and
    verified through the service's own store reader and run by the service's runtime, as
    it is served (`location`: the store as `--store` names it). None when the alias is
    unset. StoreError when the manifest has no accuracy or the version cannot be fetched
    or parsed."""
    version = store.aliases().get(alias)
    if version is None:
        return None
    try:
        accuracy = float(store.manifest(version)["metrics"]["accuracy"])
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise StoreError(f"version {version}'s manifest has no test accuracy ({exc})") from exc
    if not 0.0 <= accuracy <= 1.0:  # NaN too: it would pass every comparison
        raise StoreError(f"version {version}'s manifest gives test accuracy {accuracy}")
    if uploads is None:
        problems = store.verify(version)  # compared with: must be what was published
        if problems:
            raise StoreError(
                f"version {version} ({alias!r}) fails its checksums ({'; '.join(problems[:3])})"
            )
        return Baseline(version, accuracy)
    from service.runtime import UnsupportedModel, load_keras
    from service.store import StoreUnavailable, VersionCorrupt
    from service.stores import open_store as open_reader
    from training.realworld.evaluation import score

    with tempfile.TemporaryDirectory(prefix="mnist-baseline-") as cache:
        try:
            local = open_reader(location, store.name, Path(cache)).fetch(version)
            model = load_keras(local.folder / "model.keras")
        except (StoreUnavailable, VersionCorrupt, UnsupportedModel, OSError) as exc:
            raise StoreError(
                f"cannot score version {version} ({alias!r}) on real-world uploads: {exc}"
            ) from exc
    return Baseline(version, accuracy, score(uploads, model.predict))


def gate(
    store: AnyStore,
    trained: TrainingRun,
    floor: Decision,
    real_world: dict[str, float] | None,
    uploads: dict[str, KindSamples] | None,
    plan: Plan,
) -> Verdict:
    """The decisions, once: the accuracy floor (`floor`, from `accuracy_gate`), then the
    comparison with the version the plan's alias names (`--no-worse-than`, else
    `--promote`), on MNIST and on each kind of upload. A refused comparison stops
    publishing under `--no-worse-than`, and only the promotion under `--promote` alone."""
    accuracy = trained.evaluation.accuracy
    if not floor.ok:
        return Verdict(floor, None, None)
    alias = plan.no_worse_than or plan.promote
    if alias is None:
        return Verdict(floor, None, None)
    current = baseline(store, plan.store, alias, uploads)
    compared = promotion(accuracy, current, alias, plan.tolerance, real_world, plan.kind_tolerance)
    if plan.promote not in (None, alias):  # a second alias: its own comparison
        other = baseline(store, plan.store, plan.promote, uploads)
        moving = promotion(accuracy, other, plan.promote, plan.tolerance, real_world,
                           plan.kind_tolerance)  # fmt: skip
    else:
        moving = compared if plan.promote else None
    if plan.no_worse_than and not compared.ok:
        return Verdict(compared, None, current, compared)
    return Verdict(floor, moving, current, compared)


def publish(
    store: AnyStore,
    staging: Path,
    trained: TrainingRun,
    real_world: dict[str, float] | None,
    verdict: Verdict,
    plan: Plan,
) -> int:
    """Write the artifacts and the model card into `staging` and commit them as the next
    version; the manifest records the real-world figures and the gate's decisions."""
    from training.card import CARD, CONFUSION, model_card
    from training.plots import plot_confusion
    from training.publish import build_manifest, write_artifacts

    write_artifacts(trained, staging, savedmodel=plan.savedmodel)
    if not plan.pushgateway:
        write_textfile(registry(store, None, trained), staging)
    manifest = build_manifest(trained)
    manifest["real_world"] = (
        None
        if real_world is None
        else {"uploads_per_kind": plan.real_world, "seed": plan.real_world_seed,
              "accuracy": real_world}
    )  # fmt: skip
    compared = verdict.compared_with
    manifest["gate"] = {
        "decision": verdict.publish.reason,
        "compared_with": None if compared is None else compared.version,
        "comparison": None if verdict.comparison is None else verdict.comparison.reason,
        "promotion": None if verdict.promote is None else verdict.promote.reason,
    }
    evaluation = trained.evaluation
    plot_confusion(evaluation.confusion_matrix, staging / CONFUSION,
                   f"{trained.recipe.name}: test accuracy {evaluation.accuracy:.4f}")  # fmt: skip
    (staging / CARD).write_text(model_card(manifest, store.name))
    return store.commit(staging, manifest)


def promote(store: AnyStore, version: int, alias: str | None, decision: Decision | None) -> bool:
    """Move `alias` to `version` if the gate said so; True if it moved."""
    if alias is None or decision is None:
        return False
    if not decision.ok:
        print(f"not promoted: {decision.reason}")
        return False
    store.set_alias(alias, version)
    print(f"promoted: {alias!r} -> version {version} ({decision.reason})")
    return True


def registry(store: AnyStore, version: int | None, trained: TrainingRun) -> CollectorRegistry:
    """The run's metrics for Prometheus (a Pushgateway, or a text file beside the model)."""
    e = trained.evaluation
    return training_registry(
        store.name, version, trained.recipe.name, e.accuracy, e.loss, trained.duration_seconds
    )


def report(gateway: str, store: AnyStore, version: int | None, trained: TrainingRun) -> None:
    """Push the run's metrics; a Pushgateway that fails only warns: metrics must not fail
    a good training run."""
    import sys

    try:
        push(registry(store, version, trained), gateway)
        print(f"pushed training metrics to {gateway}")
    except OSError as exc:
        print(f"mnist-train: warning: could not push metrics to {gateway} ({exc})", file=sys.stderr)
