"""Accuracy on real-world kinds of upload, per kind, for a model in a store.

Makes `--count` uploads of every kind of `bench/wild_uploads.py` from MNIST test digits
(UCI digits for `uci`, DejaVu fonts for `typed`, strokes drawn as people draw each digit
for `pen_drawn`, none for `blank_dim`, whose right answer is 422 "no digit") and sends them
through the service's own batch path (`classify_batch`: decoding, preprocessing and the
forward pass, as `POST /v1/predict/batch` runs them).

    MNIST_DIR=../shared/data/mnist .venv/bin/python bench/wild.py --store models
    .venv/bin/python bench/wild.py --store models --version 2 --count 100 --kinds desk,shadow

Prints a table (kind, right, count, accuracy) and, with `--json FILE`, writes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import wild_uploads  # noqa: E402
from service.inference import classify_batch  # noqa: E402
from service.registry import LoadedModel, load_version  # noqa: E402
from service.store import FolderStore  # noqa: E402
from training.data import load_idx_dir  # noqa: E402

KINDS = [*wild_uploads.MNIST_KINDS, "pen_drawn", "typed", "uci", "blank_dim"]
NO_DIGIT = -1  # the expected answer of an upload without a digit
MAX_PIXELS = 8_388_608  # the service's default limit
CHUNK = 64  # uploads per batch call, the service's default batch limit


@dataclass(frozen=True)
class Upload:
    kind: str
    data: bytes
    expected: int  # the digit a person sees, or NO_DIGIT


def uploads(kind: str, count: int, seed: int, mnist_dir: Path | None) -> Iterator[Upload]:
    """`count` uploads of `kind`, the same ones for the same seed."""
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    if kind == "uci":
        from sklearn.datasets import load_digits

        uci = load_digits()
        for index in rng.choice(len(uci.images), count, replace=False):
            yield Upload(
                kind, wild_uploads.uci_digit(uci.images[index], rng), int(uci.target[index])
            )
        return
    if kind in ("typed", "pen_drawn"):
        make_labelled = wild_uploads.typed if kind == "typed" else wild_uploads.drawn_digit
        for index in range(count):
            label = index % 10
            yield Upload(kind, make_labelled(np.zeros((28, 28), np.uint8), rng, label), label)
        return
    if kind == "blank_dim":
        for _ in range(count):
            yield Upload(kind, wild_uploads.blank_dim(np.zeros((28, 28), np.uint8), rng), NO_DIGIT)
        return
    if mnist_dir is None:
        raise SystemExit("error: MNIST_DIR (or --mnist-dir) must name the MNIST IDX folder")
    data = _mnist_test(mnist_dir)
    make = wild_uploads.MNIST_KINDS[kind]
    for index in rng.choice(len(data[0]), count, replace=False):
        yield Upload(kind, make(data[0][index], rng), int(data[1][index]))


_MNIST: dict[Path, tuple[np.ndarray, np.ndarray]] = {}


def _mnist_test(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    if folder not in _MNIST:
        dataset = load_idx_dir(folder)
        _MNIST[folder] = (dataset.x_test, dataset.y_test)
    return _MNIST[folder]


def answers(loaded: LoadedModel, batch: list[Upload]) -> list[int | str]:
    """The service's answer to each upload: the digit, or the error code it gave."""
    files: list[tuple[str | None, bytes]] = [(None, upload.data) for upload in batch]
    items = asyncio.run(classify_batch(loaded, files, MAX_PIXELS, offload=1 << 40))
    return [item.prediction.digit if item.prediction else str(item.error) for item in items]


def is_right(upload: Upload, answer: int | str) -> bool:
    if upload.expected == NO_DIGIT:
        return answer == "blank_image"
    return answer == upload.expected


def evaluate(
    loaded: LoadedModel, kinds: list[str], count: int, seed: int, mnist_dir: Path | None
) -> dict[str, dict[str, float]]:
    """Per kind: uploads right, uploads sent, accuracy."""
    table: dict[str, dict[str, float]] = {}
    for kind in kinds:
        made = list(uploads(kind, count, seed, mnist_dir))
        right = 0
        for start in range(0, len(made), CHUNK):
            batch = made[start : start + CHUNK]
            right += sum(is_right(u, a) for u, a in zip(batch, answers(loaded, batch), strict=True))
        table[kind] = {"right": right, "count": len(made), "accuracy": right / len(made)}
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("models"))
    parser.add_argument("--model", default="mnist")
    parser.add_argument("--version", type=int, help="default: the version 'production' names")
    parser.add_argument("--count", type=int, default=100, help="uploads per kind")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--kinds", help=f"comma-separated, of: {', '.join(KINDS)}")
    parser.add_argument("--mnist-dir", type=Path, default=os.environ.get("MNIST_DIR"))
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    kinds = args.kinds.split(",") if args.kinds else KINDS
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
    store = FolderStore(args.store, args.model)
    version = args.version or store.target("production") or max(store.versions(), default=None)
    if version is None:
        parser.error(f"no version in {args.store / args.model}")
    loaded = load_version(store, version)
    table = evaluate(loaded, kinds, args.count, args.seed, args.mnist_dir)
    print(f"model {args.model} version {version} ({loaded.manifest.get('recipe', {}).get('name')})")
    print(f"{'kind':<16}{'right':>7}{'of':>6}{'accuracy':>10}")
    for kind, row in table.items():
        print(f"{kind:<16}{row['right']:>7.0f}{row['count']:>6.0f}{row['accuracy']:>10.1%}")
    if args.json:
        args.json.write_text(json.dumps({"version": version, "kinds": table}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
