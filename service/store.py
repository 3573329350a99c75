"""The reading side of the model store (format: models/README.md): a local folder
(`FolderStore`) or an S3 bucket (`service.s3store.S3Store`), both behind `ModelStore`;
`service.stores.open_store` picks one from a `--store` location.

Deliberately not an import of `training.store`: the two deployables share the format, not
code, and this side only ever reads. `tests/test_contract.py` keeps them in agreement.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.errors import StoreUnavailable

VERSION_RE = re.compile(r"[1-9][0-9]*")
MANIFEST = "manifest.json"
ALIASES = "aliases.json"
# Largest aliases.json or manifest.json read. Ours are a few KB; a 50 MB aliases.json froze
# the event loop 1 s a poll (json.loads holds the GIL), a symlink to /dev/zero grew RSS by
# 400 MB/s, and a FIFO blocked the poller forever (issue 15's attack review).
MAX_JSON_BYTES = 1024 * 1024


class StoreUnreadable(StoreUnavailable):
    """A file or folder of the store could not be read or parsed, or the object store did
    not answer: 503 where a request meets it; a version's own files failing is the caller's
    409."""


class VersionCorrupt(Exception):
    """A version's files do not match its manifest (missing, extra, or another sha256)."""


@dataclass(frozen=True)
class LocalVersion:
    """A version whose files are on local disk and match its manifest's sha256."""

    version: int
    manifest: dict[str, Any]
    folder: Path


class ModelStore(ABC):
    """One model's versions and aliases, wherever they are kept."""

    name: str

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the model's versions are, for messages: a folder or an s3:// URL."""

    @abstractmethod
    def versions(self) -> list[int]:
        """Published versions, ascending; StoreUnreadable when the store cannot be read."""

    @abstractmethod
    def aliases(self) -> dict[str, int]:
        """alias -> version; `{}` when none was ever set; StoreUnreadable as above."""

    @abstractmethod
    def manifest(self, version: int) -> dict[str, Any]:
        """A version's manifest.json; StoreUnreadable when it cannot be read or parsed."""

    @abstractmethod
    def fetch(self, version: int) -> LocalVersion:
        """The version's files on local disk, every sha256 checked against its manifest.
        StoreUnreadable when the store cannot be read; VersionCorrupt when files differ."""

    def read_file(self, version: int, name: str, limit: int) -> bytes:
        """One file of a version's folder (`name`: no folders), at most `limit` bytes, its
        sha256 checked against the manifest's, from the bytes read: what a client is sent is
        what was published, without hashing the whole version. FileNotFoundError when the
        manifest does not list it; VersionCorrupt when it is not a regular file, is over
        `limit` or differs; StoreUnreadable when the store cannot be read."""
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"{name!r}: not a file name")
        files = self.manifest(version).get("files")
        expected = files.get(name) if isinstance(files, dict) else None
        if not isinstance(expected, str):
            raise FileNotFoundError(f"version {version}'s manifest lists no {name}")
        data = self._read_bytes(version, name, limit)
        if len(data) > limit:
            raise VersionCorrupt(f"{name}: over {limit} bytes")
        if hashlib.sha256(data).hexdigest() != expected:
            raise VersionCorrupt(f"{name}: checksum mismatch")
        return data

    @abstractmethod
    def _read_bytes(self, version: int, name: str, limit: int) -> bytes:
        """Up to `limit + 1` bytes of a file of the version (more than `limit`: too big);
        VersionCorrupt when it is missing or not a regular file."""

    def cached_target(self, alias: str) -> int | None:
        """A version to serve without reaching the store (its local cache); None if none."""
        return None

    def target(self, alias: str) -> int | None:
        """The version to serve: the alias's, else the highest; None for an empty store."""
        named = self.aliases().get(alias)
        if named is not None:
            return named
        versions = self.versions()
        return versions[-1] if versions else None


def parse_aliases(data: bytes, where: str) -> dict[str, int]:
    """aliases.json's bytes as alias -> version; StoreUnreadable naming `where` if they are
    not a JSON object of integers."""
    try:
        return {str(k): int(v) for k, v in json.loads(data).items()}
    except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
        # OverflowError: {"production": 1e400}; RecursionError: [[[[...]]]] nested deep.
        raise StoreUnreadable(f"{where}: {type(exc).__name__}: {exc}") from exc


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """manifest.json's bytes as a dict; StoreUnreadable naming `where` otherwise."""
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise StoreUnreadable(f"{where}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise StoreUnreadable(f"{where}: not a JSON object")
    return manifest


def verify_folder(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Files of `folder` that are missing, extra or whose sha256 differs from the manifest
    (whose own file, manifest.json, is not listed), and symbolic links: a version is its
    own files, so a link (to /etc/passwd, to a secret of the server) is never followed."""
    expected = manifest.get("files")
    if not isinstance(expected, dict) or not expected:
        return ["manifest lists no files"]
    entries = list(folder.rglob("*"))
    links = sorted(p.relative_to(folder).as_posix() for p in entries if p.is_symlink())
    if links:
        return [f"{name}: a symbolic link, not a file" for name in links]
    files = {p.relative_to(folder).as_posix(): p for p in entries if p.is_file()}
    actual = {name: path for name, path in files.items() if name != MANIFEST}  # its own only
    problems = [f"{name}: missing" for name in sorted(set(expected) - set(actual))]
    problems += [f"{name}: not in manifest" for name in sorted(set(actual) - set(expected))]
    for name in sorted(set(actual) & set(expected)):
        try:
            if sha256_file(actual[name]) != expected[name]:
                problems.append(f"{name}: checksum mismatch")
        except OSError as exc:
            problems.append(f"{name}: unreadable ({exc.strerror})")
    return problems


class FolderStore(ModelStore):
    """`<root>/<name>/`: numbered version folders and aliases.json."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name

    @property
    def dir(self) -> Path:
        return self.root / self.name

    @property
    def location(self) -> str:
        return str(self.dir)

    def versions(self) -> list[int]:
        """`[]` when the model folder does not exist yet; StoreUnreadable when it cannot be
        read (a folder that is a file, no permission, a symlink loop...)."""
        try:
            entries = list(self.dir.iterdir())
        except FileNotFoundError:
            return []
        except OSError as exc:
            reason = exc.strerror or exc
            raise StoreUnreadable(f"{self.dir}: {type(exc).__name__}: {reason}") from exc
        return sorted(int(p.name) for p in entries if VERSION_RE.fullmatch(p.name) and p.is_dir())

    def aliases(self) -> dict[str, int]:
        path = self.dir / ALIASES
        try:
            data = read_small_file(path)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreUnreadable(f"{path}: {type(exc).__name__}: {exc}") from exc
        return parse_aliases(data, str(path))

    def manifest(self, version: int) -> dict[str, Any]:
        path = self.dir / str(version) / MANIFEST
        try:
            data = read_small_file(path)
        except OSError as exc:
            raise StoreUnreadable(f"{path}: {type(exc).__name__}: {exc}") from exc
        return parse_manifest(data, str(path))

    def _read_bytes(self, version: int, name: str, limit: int) -> bytes:
        # Opened without following a link, at the folder and at the file, and read from the
        # same descriptor that was checked: a writer swapping in a link between a check and
        # the read (to /etc/passwd, /proc/self/environ) gets nothing outside the version.
        nofollow = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            folder = os.open(self.dir / str(version), nofollow | os.O_DIRECTORY)
        except OSError as exc:
            raise VersionCorrupt(f"version {version}: {exc.strerror}") from exc
        try:
            fd = os.open(name, nofollow | os.O_NONBLOCK, dir_fd=folder)
        except OSError as exc:  # ELOOP: a symbolic link; ENOENT: missing
            raise VersionCorrupt(f"{name}: {exc.strerror}") from exc
        finally:
            os.close(folder)
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise VersionCorrupt(f"{name}: not a regular file")
            return file.read(limit + 1)

    def fetch(self, version: int) -> LocalVersion:
        manifest = self.manifest(version)
        folder = self.dir / str(version)
        problems = verify_folder(folder, manifest)
        if problems:
            raise VersionCorrupt(f"checksums fail: {'; '.join(problems[:3])}")
        return LocalVersion(version, manifest, folder)


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


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
