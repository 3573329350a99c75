"""The reading side of the model store (format: models/README.md).

Deliberately not an import of `training.store`: the two deployables share the format, not
code, and this side only ever reads. `tests/test_contract.py` keeps them in agreement.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.errors import StoreUnavailable

VERSION_RE = re.compile(r"[1-9][0-9]*")
MANIFEST = "manifest.json"
# Largest aliases.json or manifest.json read. Ours are a few KB; a 50 MB aliases.json froze
# the event loop 1 s a poll (json.loads holds the GIL), a symlink to /dev/zero grew RSS by
# 400 MB/s, and a FIFO blocked the poller forever (issue 15's attack review).
MAX_JSON_BYTES = 1024 * 1024


class StoreUnreadable(StoreUnavailable):
    """A file or folder of the store could not be read or parsed: answered 503 where a
    request meets it; a version's own files failing is the caller's 409."""


@dataclass(frozen=True)
class ModelStore:
    """`<root>/<name>/`: numbered version folders and aliases.json."""

    root: Path
    name: str

    @property
    def dir(self) -> Path:
        return self.root / self.name

    def versions(self) -> list[int]:
        """Published versions, ascending; anything not named like one is ignored. `[]`
        when the model folder does not exist yet; StoreUnreadable when it cannot be read
        (a folder that is a file, no permission, a symlink loop...)."""
        try:
            entries = list(self.dir.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            reason = exc.strerror or exc
            raise StoreUnreadable(f"{self.dir}: {type(exc).__name__}: {reason}") from exc
        return sorted(int(p.name) for p in entries if VERSION_RE.fullmatch(p.name) and p.is_dir())

    def aliases(self) -> dict[str, int]:
        """alias -> version; `{}` when the file does not exist."""
        path = self.dir / "aliases.json"
        try:
            data = json.loads(read_small_file(path))
            return {str(k): int(v) for k, v in data.items()}
        except FileNotFoundError:
            return {}
        except (
            OSError,
            ValueError,
            TypeError,
            AttributeError,
            OverflowError,
            RecursionError,
        ) as exc:
            # OverflowError: {"production": 1e400}; RecursionError: [[[[...]]]] nested deep.
            raise StoreUnreadable(f"{path}: {type(exc).__name__}: {exc}") from exc

    def target(self, alias: str) -> int | None:
        """The version to serve: the alias's, else the highest; None for an empty store."""
        named = self.aliases().get(alias)
        if named is not None:
            return named
        versions = self.versions()
        return versions[-1] if versions else None

    def manifest(self, version: int) -> dict[str, Any]:
        """A version's manifest.json."""
        path = self.dir / str(version) / MANIFEST
        try:
            data = json.loads(read_small_file(path))
        except (OSError, ValueError, RecursionError) as exc:
            raise StoreUnreadable(f"{path}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(data, dict):
            raise StoreUnreadable(f"{path}: not a JSON object")
        return data

    def verify(self, version: int, manifest: dict[str, Any]) -> list[str]:
        """Files that are missing, extra or whose sha256 differs from the manifest."""
        folder = self.dir / str(version)
        expected = manifest.get("files")
        if not isinstance(expected, dict) or not expected:
            return ["manifest lists no files"]
        actual = {
            p.relative_to(folder).as_posix(): p
            for p in folder.rglob("*")
            if p.is_file() and p.name != MANIFEST
        }
        problems = [f"{name}: missing" for name in sorted(set(expected) - set(actual))]
        problems += [f"{name}: not in manifest" for name in sorted(set(actual) - set(expected))]
        for name in sorted(set(actual) & set(expected)):
            try:
                if _sha256(actual[name]) != expected[name]:
                    problems.append(f"{name}: checksum mismatch")
            except OSError as exc:
                problems.append(f"{name}: unreadable ({exc.strerror})")
        return problems


def read_small_file(path: Path, limit: int = MAX_JSON_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. OSError for anything else
    (FileNotFoundError when absent), checked before a byte is read: a FIFO is opened
    without waiting for a writer, a device or a folder is refused."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is not a regular file")
        if info.st_size > limit:
            raise OSError(f"{path} is {info.st_size} bytes, over the limit of {limit}")
        with os.fdopen(os.dup(descriptor), "rb") as file:
            data = file.read(limit + 1)
    finally:
        os.close(descriptor)
    if len(data) > limit:  # it grew while we read
        raise OSError(f"{path} is over the limit of {limit} bytes")
    return data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
