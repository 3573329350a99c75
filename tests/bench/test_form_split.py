"""Smoke test of bench/form_split.py: one round, every line it promises, never a timing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import form_split

LINE = re.compile(
    r"^ ?(\d+) part\(s\), (.+?) +median +([\d.]+) us, min +([\d.]+) us, ([\d.]+) x the library"
)


def test_each_splitter_is_timed_on_both_bodies(
    mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # HEAD's own forms.py as the reference: what is measured is that it loads and runs.
    assert (
        form_split.main(["--data-dir", str(mnist_dir), "--rounds", "1", "--reference", "HEAD"]) == 0
    )
    lines = [LINE.match(line) for line in capsys.readouterr().out.splitlines()]
    assert all(lines)
    seen = {(m[1], m[2]) for m in lines if m}
    assert seen == {
        (parts, name)
        for parts in ("1", "64")
        for name in ("python-multipart alone", "parse_form", "parse_form at HEAD")
    }
    for match in lines:
        assert match and 0 < float(match[4]) <= float(match[3])  # the min is one of the rounds
    library = [m for m in lines if m and m[2] == "python-multipart alone"]
    assert all(float(m[5]) == 1.0 for m in library)  # each ratio is against this line


def test_the_library_floor_parses_every_part() -> None:
    """The floor must do the library's whole work, not skip the body."""
    parts = [b"a" * 300] * 64
    assert form_split.library_floor(form_split.multipart_body(parts, "files")) == 64
    assert form_split.library_floor(form_split.multipart_body(parts[:1], "file")) == 1
