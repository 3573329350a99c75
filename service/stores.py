"""The store a `--store` location names: a folder, or `s3://BUCKET/PREFIX`."""

from __future__ import annotations

from pathlib import Path

from service.store import FolderStore, ModelStore


def open_store(location: str | Path, name: str, cache_dir: Path | None = None) -> ModelStore:
    """The store at `location`: `s3://BUCKET/PREFIX` (configured by the AWS_* variables;
    versions are downloaded into `cache_dir`) or a folder."""
    text = str(location)
    if text.startswith("s3://"):
        from service.s3store import S3Store  # boto3 is imported only for an S3 store

        return S3Store(text, name, cache_dir)
    return FolderStore(Path(text), name)
