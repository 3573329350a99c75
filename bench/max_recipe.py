"""The `max` recipe's accuracy against wall time, from the versions of a store the runs
published (one `mnist-train` run per seed and epoch budget).

    for seed in 1 2 3; do MNIST_DIR=../shared/data/mnist .venv/bin/mnist-train --recipe max \\
        --seed $seed --store /tmp/max-store --no-savedmodel --quiet; done
    for epochs in 32 70 150; do MNIST_DIR=../shared/data/mnist .venv/bin/mnist-train \\
        --recipe max --epochs $epochs --seed 1 --store /tmp/max-store --no-savedmodel \\
        --quiet --real-world 0; done
    .venv/bin/python bench/max_recipe.py --store /tmp/max-store --out docs/max-recipe.png

Prints one line per run (recipe, epochs, seed, training seconds, test accuracy) and the
spread per epoch budget, and plots test accuracy against training time: a point per run,
a line through each budget's mean. The budgets (`--epochs 32, 70, 150` and the recipe's
280) stretch the same schedule, so each point is the recipe given that much time. The
validation split (2%, 1,200 images) is too small to draw: its curve moves 0.5 points from
one epoch to the next.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def runs(store: Path) -> list[dict]:
    """recipe, epochs, seed, seconds, accuracy and history of each published version."""
    found = []
    for folder in sorted((store / "mnist").glob("[1-9]*"), key=lambda p: int(p.name)):
        manifest = json.loads((folder / "manifest.json").read_text())
        history = json.loads((folder / "history.json").read_text())
        found.append(
            {
                "version": int(folder.name),
                "recipe": manifest["recipe"]["name"],
                "epochs": manifest["recipe"]["epochs"],
                "seed": manifest["recipe"]["seed"],
                "seconds": manifest["training"]["duration_seconds"],
                "accuracy": manifest["metrics"]["accuracy"],
                "val_accuracy": history.get("val_accuracy", []),
            }
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/max-recipe.png"))
    args = parser.parse_args()
    found = runs(args.store)
    if not found:
        sys.exit(f"no versions in {args.store / 'mnist'}")
    by_recipe = defaultdict(list)
    print(f"{'version':>7}  {'recipe':<6} {'epochs':>6} {'seed':>5} {'seconds':>8}  accuracy")
    for run in found:
        by_recipe[(run["recipe"], run["epochs"])].append(run)
        print(f"{run['version']:>7}  {run['recipe']:<6} {run['epochs']:>6} {run['seed']:>5} "
              f"{run['seconds']:>8.1f}  {run['accuracy']:.4f}")  # fmt: skip
    for (recipe, epochs), group in sorted(by_recipe.items()):
        accuracies = [r["accuracy"] for r in group]
        spread = statistics.stdev(accuracies) if len(group) > 1 else 0.0
        mean = statistics.mean(accuracies)
        print(f"{recipe} ({epochs} epochs), {len(group)} runs: mean {mean:.4f}, "
              f"min {min(accuracies):.4f}, max {max(accuracies):.4f}, stdev {spread:.4f}, "
              f"longest {max(r['seconds'] for r in group) / 60:.1f} min")  # fmt: skip
    fig, ax = plt.subplots(figsize=(9, 5))
    budgets = sorted(by_recipe.items(), key=lambda item: item[0][1])
    ax.plot([statistics.mean(r["seconds"] for r in g) / 60 for _, g in budgets],
            [statistics.mean(r["accuracy"] for r in g) for _, g in budgets], "-", color="C0",
            label="mean test accuracy per epoch budget")  # fmt: skip
    for run in found:
        ax.plot(run["seconds"] / 60, run["accuracy"], "o", ms=7, color="black")
        ax.annotate(f"{run['epochs']} epochs, seed {run['seed']}: {run['accuracy']:.2%}",
                    (run["seconds"] / 60, run["accuracy"]), textcoords="offset points",
                    xytext=(6, -12), fontsize=8)  # fmt: skip
    ax.axhline(0.993, ls="--", color="red", lw=0.8, label="99.3% (the target)")
    ax.axvline(15, ls=":", color="grey", lw=0.8, label="15 minutes")
    ax.set_ylim(0.988, 0.995)
    ax.set_xlabel("training time, minutes (2 CPU cores)")
    ax.set_ylabel("accuracy")
    ax.set_title("784-512-10 on MNIST: test accuracy (black dots) against training time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
