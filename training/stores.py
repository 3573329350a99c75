"""The writing side of the store a `--store` location names: a folder (`training.store`)
or `s3://BUCKET/PREFIX` (`training.s3store`, which imports boto3 only when asked for)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from training.store import Store

if TYPE_CHECKING:
    from training.s3store import S3Store

    AnyStore = Store | S3Store


def open_store(location: str | Path, name: str = "mnist") -> Store | S3Store:
    """S3Store for `s3://...`, else the folder store; both have the same methods."""
    text = str(location)
    if text.startswith("s3://"):
        from training.s3store import S3Store

        return S3Store(text, name)
    return Store(Path(text), name)
