"""The writing side of the store a `--store` location names: a folder (`training.store`)
or `s3://BUCKET/PREFIX` (`training.s3store`, which imports boto3 only when asked for)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

from training.store import Store

if TYPE_CHECKING:
    from training.s3store import S3Store

    AnyStore = Store | S3Store

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def model_name(text: str) -> str:
    """The argparse type of `--name`: one folder (or key segment) inside the store, so that
    no name reaches outside it (`../x`) or hides among the store's own dot files."""
    if not MODEL_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a model name: up to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return text


def open_store(location: str | Path, name: str = "mnist") -> Store | S3Store:
    """S3Store for `s3://...`, else the folder store; both have the same methods."""
    text = str(location)
    if text.startswith("s3://"):
        from training.s3store import S3Store

        return S3Store(text, name)
    return Store(Path(text), name)
