"""`mnist-train`: load data, fit, evaluate, gate, publish, and optionally promote.

Only the command line: flags become a `training.pipeline.Plan`, `training.pipeline.run`
does the work. Every expected failure (bad data, an unwritable store, the gate) ends with
one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from training.data import DataError
from training.gate import DEFAULT_KIND_TOLERANCE, DEFAULT_MIN_ACCURACY, DEFAULT_TOLERANCE
from training.pipeline import GateRefused, Plan, run
from training.realworld.evaluation import DEFAULT_COUNT, DEFAULT_SEED
from training.recipes import RECIPES
from training.store import StoreError
from training.stores import model_name

EXIT_ERROR = 1
EXIT_GATE = 3
MAX_REAL_WORLD = 1000  # uploads per kind; the UCI set has 1,797 digits


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags; MNIST_DIR, MNIST_STORE and PUSHGATEWAY_URL supply defaults."""
    p = argparse.ArgumentParser(prog="mnist-train", description=__doc__.splitlines()[0])
    p.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="seed",
        help="hyper-parameters (training/recipes.py), fitting times on two CPU cores: seed is "
        "the course's (rmsprop, 5 epochs: ~30 s, 97.8%%), best adds Adam, distortions and weight "
        "averaging (1-2.5 min, 99.2%%), max is best run 280 epochs (8-10 min, 99.3%%); "
        "default: %(default)s",
    )
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
    p.add_argument(
        "--name",
        default="mnist",
        type=model_name,
        help="model name: the folder inside the store (default: %(default)s)",
    )
    p.add_argument(
        "--min-accuracy",
        type=fraction,
        default=DEFAULT_MIN_ACCURACY,
        help="publish nothing below this MNIST test accuracy (default: %(default)s)",
    )
    p.add_argument(
        "--promote",
        metavar="ALIAS",
        help="move this alias to the new version unless it is worse than the one it names",
    )
    p.add_argument(
        "--no-worse-than",
        metavar="ALIAS",
        help="publish nothing if worse than the version ALIAS names",
    )
    p.add_argument(
        "--tolerance",
        type=fraction,
        default=DEFAULT_TOLERANCE,
        help="'worse' on MNIST test accuracy: lower by more than this (default: %(default)s)",
    )
    p.add_argument(
        "--kind-tolerance",
        type=fraction,
        default=DEFAULT_KIND_TOLERANCE,
        help="'worse' on a kind of real-world upload: lower by more than this "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--real-world",
        type=integer(0, MAX_REAL_WORLD),
        default=DEFAULT_COUNT,
        metavar="N",
        help="uploads per kind in the real-world evaluation (default: %(default)s; 0: none, "
        "the gate compares MNIST alone)",
    )
    p.add_argument(
        "--real-world-seed", type=integer(0), default=DEFAULT_SEED, help=argparse.SUPPRESS
    )
    p.add_argument("--epochs", type=integer(1), help="override the recipe's epochs")
    # Keras seeds NumPy's legacy generator too, which takes 0 to 2**32 - 1.
    p.add_argument("--seed", type=integer(0, 2**32 - 1), help="override the recipe's random seed")
    p.add_argument(
        "--train-limit", type=integer(1), help="train on the first N images only (tests)"
    )
    p.add_argument("--no-savedmodel", action="store_true", help="skip the SavedModel export")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no Keras progress bar (the one-line reports of each step still print)",
    )
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


def fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1 (NaN is none: it would pass every comparison)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:  # False for NaN too
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from `low`, to `high` if given."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            within = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{text} is not {within}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its default message
    return parse


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def plan_of(args: argparse.Namespace) -> Plan:
    """The flags as a `Plan`."""
    return Plan(
        recipe=RECIPES[args.recipe].with_overrides(epochs=args.epochs, seed=args.seed),
        store=str(args.store),
        name=args.name,
        data_dir=args.data_dir,
        npz=args.npz,
        train_limit=args.train_limit,
        min_accuracy=args.min_accuracy,
        no_worse_than=args.no_worse_than,
        promote=args.promote,
        tolerance=args.tolerance,
        kind_tolerance=args.kind_tolerance,
        real_world=args.real_world,
        real_world_seed=args.real_world_seed,
        savedmodel=not args.no_savedmodel,
        verbose=not args.quiet,
        if_empty=args.if_empty,
        pushgateway=args.pushgateway,
    )


class Terminated(Exception):
    """SIGTERM arrived (`docker stop`, a Kubernetes Job deleted, `timeout`)."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mnist-train`."""
    plan = plan_of(parse_args(argv))
    # SIGTERM as an exception, as Ctrl-C is: the staging folder is removed and the
    # real-world evaluation's worker processes stopped, rather than left behind.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        run(plan)
    except (DataError, StoreError, GateRefused) as exc:
        print(f"mnist-train: error: {exc}", file=sys.stderr)
        return EXIT_GATE if isinstance(exc, GateRefused) else EXIT_ERROR
    except KeyboardInterrupt:
        print("mnist-train: interrupted; nothing was published", file=sys.stderr)
        return 130
    except Terminated:
        print("mnist-train: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
