"""Time to split the harness's multipart bodies (one MNIST digit in `file`; 64 in `files`)
with `service.forms.parse_form`, against python-multipart's parser alone on the same body
with callbacks that do nothing (the floor: what the library costs), and, with
`--reference COMMIT`, against that commit's `service/forms.py`, in the same process,
alternately.

Usage: python bench/form_split.py [--data-dir DIR] [--reference COMMIT] [--rounds 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from python_multipart.multipart import MultipartParser  # noqa: E402

from bench.harness import BOUNDARY, multipart_body  # noqa: E402
from service import forms  # noqa: E402
from tests.uploads import png  # noqa: E402
from training.data import load_idx_dir  # noqa: E402

CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
CALLBACKS = ("on_part_begin", "on_header_field", "on_header_value", "on_header_end",
             "on_part_data", "on_end")  # fmt: skip


def library_floor(body: bytes) -> int:
    """python-multipart's parser over `body`, every callback a no-op but the count of the
    parts it found, which it returns."""
    parts = []
    callbacks = {name: lambda *_: None for name in CALLBACKS}
    callbacks["on_part_begin"] = lambda: parts.append(None)
    parser = MultipartParser(BOUNDARY.encode(), callbacks)  # type: ignore[arg-type]
    parser.write(body)
    parser.finalize()
    return len(parts)


def reference_forms(commit: str):  # noqa: ANN201 (a module)
    """`service/forms.py` as it was at `commit`, imported as its own module."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:service/forms.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="forms-") as folder:
        path = Path(folder) / "forms_reference.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("forms_reference", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["forms_reference"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return module


def per_call(function: Callable[[], object], number: int) -> float:
    """Microseconds a call: the fastest of 3 runs of `number` calls."""
    return min(timeit.repeat(function, number=number, repeat=3)) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir", type=Path, default=os.environ.get("MNIST_DIR"))
    p.add_argument("--reference", help="a commit whose service/forms.py to measure too")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    if args.data_dir is None:
        p.error("say where MNIST is: --data-dir DIR or MNIST_DIR")
    digits = load_idx_dir(args.data_dir).x_test
    bodies = {1: multipart_body([png(digits[0])], "file"),
              64: multipart_body([png(digit) for digit in digits[:64]], "files")}  # fmt: skip
    splitters = {"python-multipart alone": library_floor,
                 "parse_form": lambda body: forms.parse_form(body, CONTENT_TYPE, 300)}  # fmt: skip
    if args.reference:
        old = reference_forms(args.reference)
        splitters[f"parse_form at {args.reference}"] = lambda body: old.parse_form(
            body, CONTENT_TYPE, 300
        )
    for parts, body in bodies.items():
        number = 2000 // parts
        times: dict[str, list[float]] = {name: [] for name in splitters}
        for _ in range(args.rounds):
            for name, split in splitters.items():
                times[name].append(per_call(lambda: split(body), number))  # noqa: B023
        floor = statistics.median(times["python-multipart alone"])
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{parts:2d} part(s), {name:32s} median {median:8.1f} us, min "
                  f"{min(values):8.1f} us, {median / floor:4.2f} x the library alone")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
