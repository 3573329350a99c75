"""`mnist-train`: load data, fit, evaluate, gate, publish, and optionally promote.

Reads top to bottom in the order things happen. Every expected failure (bad data, an
unwritable store, the gate) ends with one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from training.data import DataError, Dataset, load_data
from training.gate import DEFAULT_MIN_ACCURACY, DEFAULT_TOLERANCE, accuracy_gate, promotion
from training.recipes import RECIPES, Recipe
from training.report import push, training_registry, write_textfile
from training.store import StoreError
from training.stores import open_store

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from training.publish import TrainingRun
    from training.stores import AnyStore

EXIT_ERROR = 1
EXIT_GATE = 3


class GateRefused(Exception):
    """The model did not reach the accuracy gate; nothing was published."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags; MNIST_DIR and MNIST_STORE supply defaults."""
    p = argparse.ArgumentParser(prog="mnist-train", description=__doc__.splitlines()[0])
    p.add_argument("--recipe", choices=sorted(RECIPES), default="seed")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--data-dir",
        type=Path,
        default=_env_path("MNIST_DIR"),
        help="folder with the four IDX files (default: $MNIST_DIR, else Keras's download)",
    )
    source.add_argument("--npz", type=Path, help="an .npz with x_train, y_train, x_test, y_test")
    p.add_argument(
        "--store",
        default=os.environ.get("MNIST_STORE") or "models",
        help="a folder, or s3://BUCKET/PREFIX (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_REGION configure it); default: $MNIST_STORE, else models",
    )
    p.add_argument("--name", default="mnist", help="model name: the folder inside the store")
    p.add_argument("--min-accuracy", type=float, default=DEFAULT_MIN_ACCURACY)
    p.add_argument("--promote", metavar="ALIAS", help="move this alias to the new version")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    p.add_argument(
        "--no-worse-than",
        metavar="ALIAS",
        help="publish nothing if worse than the version ALIAS names by more than --tolerance",
    )
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--seed", type=int, help="override the recipe's random seed")
    p.add_argument("--train-limit", type=int, help="train on the first N images only (tests)")
    p.add_argument("--no-savedmodel", action="store_true", help="skip the SavedModel export")
    p.add_argument("--quiet", action="store_true", help="no Keras progress bar")
    p.add_argument(
        "--if-empty", action="store_true", help="do nothing if the store already holds a version"
    )
    p.add_argument(
        "--pushgateway",
        default=os.environ.get("PUSHGATEWAY_URL"),
        help="push final metrics here (default: $PUSHGATEWAY_URL; without it they are written "
        "as training-metrics.prom beside the model)",
    )
    return p.parse_args(argv)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mnist-train`."""
    args = parse_args(argv)
    try:
        return run(args)
    except (DataError, StoreError, GateRefused) as exc:
        print(f"mnist-train: error: {exc}", file=sys.stderr)
        return EXIT_GATE if isinstance(exc, GateRefused) else EXIT_ERROR
    except KeyboardInterrupt:
        print("mnist-train: interrupted; nothing was published", file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    """Train, evaluate, gate and publish; returns the exit code."""
    store = open_store(args.store, args.name)
    if args.if_empty and (published := store.versions()):
        print(f"{store.location} already holds version {published[-1]}; nothing to do")
        return 0
    dataset = load_data(args.data_dir, args.npz)
    recipe = RECIPES[args.recipe].with_overrides(epochs=args.epochs, seed=args.seed)
    with store.publishing() as staging:  # fails now, not after training, if unwritable
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from training.publish import build_manifest, write_artifacts

        run_ = _train(dataset, recipe, args)
        gate = accuracy_gate(run_.evaluation.accuracy, args.min_accuracy)
        if gate.ok and args.no_worse_than:
            current = _current(store, args.no_worse_than)
            gate = promotion(run_.evaluation.accuracy, current, args.no_worse_than, args.tolerance)
        if not gate.ok:
            if args.pushgateway:
                _push(args.pushgateway, _registry(store, None, run_))
            raise GateRefused(f"{gate.reason}; nothing was published")
        write_artifacts(run_, staging, savedmodel=not args.no_savedmodel)
        if not args.pushgateway:
            write_textfile(_registry(store, None, run_), staging)
        version = store.commit(staging, build_manifest(run_))
    print(f"published {store.name} version {version} at {store.location}/{version}")
    if args.pushgateway:
        _push(args.pushgateway, _registry(store, version, run_))
    if args.promote:
        _promote(store, version, run_.evaluation.accuracy, args.promote, args.tolerance)
    return 0


def _train(dataset: Dataset, recipe: Recipe, args: argparse.Namespace) -> TrainingRun:
    from training.evaluate import evaluate
    from training.model import build_model, fit, seed_everything, to_inputs
    from training.publish import TrainingRun

    x, y = dataset.x_train, dataset.y_train
    if args.train_limit:
        x, y = x[: args.train_limit], y[: args.train_limit]
    seed_everything(recipe.seed)
    model = build_model()
    started = time.monotonic()
    history = fit(model, x, y, recipe, verbose=0 if args.quiet else "auto")
    duration = time.monotonic() - started
    probabilities = model.predict(to_inputs(dataset.x_test), batch_size=1024, verbose=0)
    evaluation = evaluate(probabilities, dataset.y_test)
    print(
        f"recipe {recipe.name}: {len(history.get('loss', []))} epochs on {len(x)} images "
        f"in {duration:.1f} s; test accuracy {evaluation.accuracy:.4f}, "
        f"loss {evaluation.loss:.4f}; worst digit "
        f"{min(range(10), key=lambda d: evaluation.per_class_accuracy[d])}"
    )
    return TrainingRun(model, recipe, history, evaluation, dataset, duration)


def _registry(store: AnyStore, version: int | None, run_: TrainingRun) -> CollectorRegistry:
    e = run_.evaluation
    return training_registry(
        store.name, version, run_.recipe.name, e.accuracy, e.loss, run_.duration_seconds
    )


def _push(gateway: str, registry: CollectorRegistry) -> None:
    try:
        push(registry, gateway)
        print(f"pushed training metrics to {gateway}")
    except OSError as exc:  # metrics must not fail a good training run
        print(f"mnist-train: warning: could not push metrics to {gateway} ({exc})", file=sys.stderr)


def _current(store: AnyStore, alias: str) -> tuple[int, float] | None:
    """(version, test accuracy) of what `alias` names now, or None if it is unset."""
    version = store.aliases().get(alias)
    if version is None:
        return None
    try:
        return version, float(store.manifest(version)["metrics"]["accuracy"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"version {version}'s manifest has no test accuracy ({exc})") from exc


def _promote(store: AnyStore, version: int, accuracy: float, alias: str, tolerance: float) -> None:
    decision = promotion(accuracy, _current(store, alias), alias, tolerance)
    if decision.ok:
        store.set_alias(alias, version)
        print(f"promoted: {alias!r} -> version {version} ({decision.reason})")
    else:
        print(f"not promoted: {decision.reason}")


if __name__ == "__main__":
    sys.exit(main())
