"""The forward pass per batch size: the service's runtime (ONNX Runtime) against NumPy's
`x @ kernel + bias` and activations on the same weights (the runtime before issue 14's
last session), in one run, one thread each.

Usage: OPENBLAS_NUM_THREADS=1 python bench/forward.py --store DIR [--sizes 1 2 3 4 8 16 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.runtime import DenseLayer, load_keras  # noqa: E402


def numpy_forward(layers: tuple[DenseLayer, ...], x: np.ndarray) -> np.ndarray:
    """The reference: each layer's product, bias and activation in NumPy (OpenBLAS)."""
    for layer in layers:
        x = x @ layer.kernel
        x += layer.bias
        if layer.activation == "relu":
            np.maximum(x, 0, out=x)
        elif layer.activation == "softmax":
            x = np.exp(x - x.max(axis=1, keepdims=True))
            x /= x.sum(axis=1, keepdims=True)
    return x


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 3, 4, 8, 16, 64])
    p.add_argument("--number", type=int, default=2000, help="calls per timing")
    args = p.parse_args(argv)
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        p.error("run with OPENBLAS_NUM_THREADS=1, as mnist-serve's workers do")
    model = load_keras(next(iter(sorted((args.store / "mnist").glob("[1-9]*/model.keras")))))
    print("| rows | ONNX Runtime us | NumPy us | NumPy / ONNX Runtime | max abs difference |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for rows in args.sizes:
        x = rng.random((rows, model.input_size), dtype=np.float32)
        ours = min(timeit.repeat(lambda x=x: model.predict(x), number=args.number, repeat=5))
        theirs = min(
            timeit.repeat(lambda x=x: numpy_forward(model.layers, x), number=args.number, repeat=5)
        )
        gap = np.abs(model.predict(x) - numpy_forward(model.layers, x)).max()
        ours, theirs = ours / args.number * 1e6, theirs / args.number * 1e6
        print(f"| {rows} | {ours:.1f} | {theirs:.1f} | {theirs / ours:.2f} | {gap:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
