"""Cost per image of decoding and preprocessing, against the code of a reference commit.

Three uploads: a 28x28 MNIST digit as PNG, a 280x280 canvas drawing as PNG (the page's
size) and a 3000x4000 phone photo as JPEG. Each is decoded and turned into an MNIST sample
by the current tree and by the reference commit's tree (checked out to a temporary folder
with `git worktree`), each in its own interpreter, alternately, `--rounds` times; each round
gives a median per image, and the fastest round of each side is reported (this shared
machine only ever adds time), with their ratio and the ratio of the rounds' medians.

    .venv/bin/python bench/preprocess_cost.py --reference fee01da --instructions

With `--instructions`, the 28x28 path is also counted in instructions by valgrind's
callgrind, which does not move with the machine's load.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
# Runs inside each tree: time decode + preprocess of one file, `repeat` times, per call.
TIMER = """
import sys, time
# This tree's code, not the editable install's: its finder maps `service.*` to the main tree.
sys.meta_path = [f for f in sys.meta_path if "__editable__" not in type(f).__module__]
data = open(sys.argv[1], "rb").read()
repeat = int(sys.argv[2])
if sys.argv[3] == "imaging":
    from service.imaging.decode import decode
    from service.imaging.mnist import to_mnist_many
    def run():
        to_mnist_many([decode(data, 8_388_608)])
else:  # before issue 13
    from service.preprocess import preprocess
    def run():
        preprocess(data, 8_388_608)
import service
assert service.__file__.startswith(sys.argv[4]), service.__file__
run()
times = []
for _ in range(repeat):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
times.sort()
print(times[len(times) // 2] if times else 0.0)
"""


def uploads(folder: Path) -> dict[str, Path]:
    """The three files, written into `folder`."""
    rng = np.random.default_rng(0)
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 13:16] = 255
    digit[4:7, 8:16] = 255
    canvas = np.full((280, 280), 255, np.uint8)
    canvas[40:240, 130:150] = 0
    canvas[40:60, 80:150] = 0
    photo = 200 + rng.normal(0, 4, (4000, 3000))
    photo[1200:2800, 1400:1560] = 40
    files = {
        "28x28 PNG": (digit, "PNG"),
        "280x280 canvas PNG": (canvas, "PNG"),
        "3000x4000 JPEG photo": (np.clip(photo, 0, 255).astype(np.uint8), "JPEG"),
    }
    paths = {}
    for name, (pixels, fmt) in files.items():
        out = io.BytesIO()
        Image.fromarray(pixels).convert("RGB" if fmt == "JPEG" else "L").save(out, format=fmt)
        paths[name] = folder / f"{name.split()[0]}.{fmt.lower()}"
        paths[name].write_bytes(out.getvalue())
    return paths


def _api(tree: Path) -> list[str]:
    """The TIMER's last arguments: which API the tree has, and the tree itself."""
    return ["imaging" if (tree / "service" / "imaging").is_dir() else "preprocess", str(tree)]


def instructions_in(tree: Path, upload: Path, repeat: int = 500) -> float:
    """Instructions per image of decode + preprocess in `tree`'s code, counted by valgrind's
    callgrind (repeatable whatever the machine is doing): a run of `repeat` images less a
    run of none."""

    def total(count: int) -> int:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
             sys.executable, "-c", TIMER, str(upload), str(count), *_api(tree)],
            cwd=tree, capture_output=True, text=True, check=True,
            env={"PYTHONPATH": str(tree), "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        return int(done.stderr.split("Collected :")[1].split()[0])

    return (total(repeat) - total(0)) / repeat


def time_in(tree: Path, upload: Path, repeat: int) -> float:
    """Median seconds per image of decode + preprocess in `tree`'s code."""
    done = subprocess.run(
        [sys.executable, "-c", TIMER, str(upload), str(repeat), *_api(tree)],
        cwd=tree, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(tree), "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    return float(done.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default="fee01da", help="commit to compare with")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--instructions", action="store_true", help="also count the 28x28 path's instructions"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        reference = folder / "reference"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(reference), args.reference],
            cwd=REPO, check=True, capture_output=True,
        )  # fmt: skip
        try:
            files = uploads(folder)
            results = measure(files, reference, args.rounds)
            if args.instructions:
                digit = files["28x28 PNG"]
                now, then = instructions_in(REPO, digit), instructions_in(reference, digit)
                results["28x28 PNG"] |= {"instructions": now, "reference_instructions": then}
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(reference)], cwd=REPO)
    print(f"reference: {args.reference}; fastest of {args.rounds} rounds, each a median per image")
    print(f"{'upload':<24}{'now (ms)':>10}{'reference (ms)':>16}{'ratio':>8}{'of medians':>12}")
    for name, row in results.items():
        now, then = row["now"] * 1e3, row["reference"] * 1e3
        print(
            f"{name:<24}{now:>10.3f}{then:>16.3f}{row['ratio']:>8.2f}{row['median_ratio']:>12.2f}"
        )
    row = results["28x28 PNG"]
    if "instructions" in row:
        now, then = row["instructions"], row["reference_instructions"]
        print(f"28x28 PNG: {now:,.0f} instructions per image, reference {then:,.0f}: "
              f"ratio {now / then:.3f} (callgrind)")  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps({"reference": args.reference, "results": results}, indent=1)
        )
    return 0


def measure(files: dict[str, Path], reference: Path, rounds: int) -> dict[str, dict[str, float]]:
    results = {}
    for name, path in files.items():
        repeat = 20 if "JPEG" in name else 400
        now, then = [], []
        for _ in range(rounds):  # alternate, so both see the same moments of the machine
            now.append(time_in(REPO, path, repeat))
            then.append(time_in(reference, path, repeat))
        # The fastest round of each: this shared machine only ever adds time (as timeit).
        a, b = min(now), min(then)
        results[name] = {
            "now": a,
            "reference": b,
            "ratio": a / b,
            "median_ratio": statistics.median(now) / statistics.median(then),
        }
    return results


if __name__ == "__main__":
    raise SystemExit(main())
