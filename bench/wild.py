"""Accuracy on real-world kinds of upload, per kind, for a model in a store.

Makes `--count` uploads of every kind (`training/realworld/`: from MNIST test digits, UCI
digits, DejaVu fonts, strokes drawn as people draw each digit, and dim sheets with no digit,
whose right answer is "no digit"), reads them as the service does (decoding and
preprocessing as `POST /v1/predict/batch`), and runs the version's forward pass as served.
`mnist-train` runs the same evaluation for its gate and records it in the manifest.

    MNIST_DIR=../shared/data/mnist .venv/bin/python bench/wild.py --store models
    .venv/bin/python bench/wild.py --store models --version 2 --count 100 --kinds desk,shadow
    .venv/bin/python bench/wild.py --compare /tmp/max-store:1 --compare /tmp/seed-store:1

Prints a table (kind, right, count, accuracy) and, with `--json FILE`, writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.registry import LoadFailed, load_version  # noqa: E402
from service.store import FolderStore  # noqa: E402
from training.data import load_idx_dir  # noqa: E402
from training.realworld.evaluation import KINDS, prepare, score  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("models"))
    parser.add_argument("--model", default="mnist")
    parser.add_argument("--version", type=int, help="default: the version 'production' names")
    parser.add_argument(
        "--compare",
        action="append",
        metavar="STORE:VERSION",
        help="score these versions instead, one column each, on the same uploads (repeat it)",
    )
    parser.add_argument("--count", type=int, default=100, help="uploads per kind (default: 100)")
    parser.add_argument("--seed", type=int, default=2026, help="of the uploads (default: 2026)")
    parser.add_argument("--kinds", help=f"comma-separated, of: {', '.join(KINDS)}")
    parser.add_argument("--mnist-dir", type=Path, default=os.environ.get("MNIST_DIR"))
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    kinds = args.kinds.split(",") if args.kinds else KINDS
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
    if args.mnist_dir is None:
        parser.error("MNIST_DIR (or --mnist-dir) must name the MNIST IDX folder")
    if args.compare:
        chosen = []
        for item in args.compare:
            root, _, number = item.rpartition(":")
            if not root or not number.isdigit():
                parser.error(f"--compare {item}: give STORE:VERSION")
            chosen.append((Path(root), int(number)))
    else:
        store = FolderStore(args.store, args.model)
        version = args.version or store.target("production") or max(store.versions(), default=None)
        if version is None:
            parser.error(f"no version in {args.store / args.model}")
        chosen = [(args.store, version)]
    data = load_idx_dir(args.mnist_dir)
    prepared = prepare(kinds, args.count, args.seed, (data.x_test, data.y_test))
    columns = {}
    for column, (root, version) in enumerate(chosen, 1):
        try:
            loaded = load_version(FolderStore(root, args.model), version)
        except LoadFailed as exc:
            parser.error(f"{root}: {exc}")
        recipe = loaded.manifest.get("recipe", {})
        label = f"{root}:{version}"
        print(f"[{column}] {label}: recipe {recipe.get('name')}, {recipe.get('epochs')} epochs, "
              f"seed {recipe.get('seed')}")  # fmt: skip
        columns[label] = score(prepared, loaded.model.predict)
    if len(columns) == 1:
        accuracy = next(iter(columns.values()))
        print(f"{'kind':<16}{'right':>7}{'of':>6}{'accuracy':>10}")
        table = {}
        for kind, value in accuracy.items():
            count = prepared[kind].count
            table[kind] = {"right": round(value * count), "count": count, "accuracy": value}
            print(f"{kind:<16}{round(value * count):>7}{count:>6}{value:>10.1%}")
        result = {"version": chosen[0][1], "kinds": table}
    else:
        print(f"{'kind':<16}" + "".join(f"{f'[{n + 1}]':>8}" for n in range(len(columns))))
        for kind in kinds:
            print(f"{kind:<16}" + "".join(f"{c[kind]:>8.0%}" for c in columns.values()))
        result = {"uploads_per_kind": args.count, "seed": args.seed, "accuracy": columns}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
