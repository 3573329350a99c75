"""The writing side of the versioned model store (format: models/README.md).

Versions are immutable numbered folders, published by an atomic rename of a hidden staging
folder; aliases live in `aliases.json`, replaced atomically. No TensorFlow here, so the
`mnist-models` CLI starts fast.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSION_RE = re.compile(r"[1-9][0-9]*")
STAGING_PREFIX = ".tmp-"
MANIFEST = "manifest.json"
ALIASES = "aliases.json"
ALIAS_HISTORY = "alias-history.json"
FORMAT_VERSION = 1


class StoreError(Exception):
    """The store cannot be read or written, or a version is not what it should be."""


def no_version(name: str, version: int, location: str, versions: list[int]) -> StoreError:
    """The one wording of a version that is not in the store, with those that are."""
    there = ", ".join(map(str, versions[-10:])) or "none"
    more = "..., " if len(versions) > 10 else ""
    return StoreError(f"{name}: no version {version} in {location} (versions: {more}{there})")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks; OSError when it cannot be read."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def version_files(folder: Path) -> dict[str, Path]:
    """Every file below `folder` but its own manifest, by POSIX relative path, sorted."""
    files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
    return {name: path for name, path in files.items() if name != MANIFEST}


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder` except the manifest, by POSIX relative path."""
    return {name: sha256_file(path) for name, path in version_files(folder).items()}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file beside `path`, fsync, rename over it: all or nothing."""
    tmp = path.with_name(f"{STAGING_PREFIX}{path.name}.{uuid.uuid4().hex}")
    try:
        with tmp.open("w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class AliasChange:
    """aliases.json and alias-history.json as they are to be written."""

    aliases: dict[str, int]
    history: dict[str, list[int]]


def moved_alias(
    aliases: dict[str, int], history: dict[str, list[int]], alias: str, version: int
) -> AliasChange | None:
    """The files after pointing `alias` at `version`, remembering the version it named for
    `rolled_back`; None when it names `version` already."""
    previous = aliases.get(alias)
    if previous == version:
        return None
    stack = list(history.get(alias, [] if previous is None else [previous]))
    return AliasChange({**aliases, alias: version}, {**history, alias: [*stack, version]})


def rolled_back(
    name: str,
    aliases: dict[str, int],
    history: dict[str, list[int]],
    alias: str,
    existing: set[int],
) -> AliasChange:
    """The files after pointing `alias` back at the last version it named before its current
    one that still exists; StoreError when the alias is unset or has none."""
    if alias not in aliases:
        raise StoreError(f"{name}: alias {alias!r} is not set")
    stack = [v for v in history.get(alias, []) if v in existing]
    while stack and stack[-1] == aliases[alias]:
        stack.pop()
    if not stack:
        gone = sorted({v for v in history.get(alias, []) if v not in existing})
        pruned = f" (it named {', '.join(map(str, gone))}, since pruned)" if gone else ""
        raise StoreError(f"{name}: alias {alias!r} has no earlier version to go to{pruned}")
    return AliasChange({**aliases, alias: stack[-1]}, {**history, alias: stack})


class Store:
    """One model's folder in the store: `<root>/<name>/<version>/`."""

    def __init__(self, root: Path, name: str = "mnist") -> None:
        self.root = root
        self.name = name
        self.dir = root / name

    @property
    def location(self) -> str:
        """The model's folder, for messages."""
        return str(self.dir)

    # -- reading -------------------------------------------------------------------------

    def versions(self) -> list[int]:
        """Published versions, ascending; staging folders and other names are ignored."""
        if not self.dir.is_dir():
            return []
        return sorted(
            int(p.name) for p in self.dir.iterdir() if VERSION_RE.fullmatch(p.name) and p.is_dir()
        )

    def version_dir(self, version: int) -> Path:
        """The folder of a published version; StoreError if there is none."""
        path = self.dir / str(version)
        if version < 1 or not path.is_dir():
            raise no_version(self.name, version, str(self.dir), self.versions())
        return path

    def manifest(self, version: int) -> dict[str, Any]:
        """The parsed manifest.json of a version."""
        path = self.version_dir(version) / MANIFEST
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as exc:  # [[[[...: nested too deep
            raise StoreError(f"{path}: unreadable manifest ({type(exc).__name__})") from exc
        if not isinstance(manifest, dict):
            raise StoreError(f"{path}: unreadable manifest (not a JSON object)")
        return manifest

    def aliases(self) -> dict[str, int]:
        """Alias name -> version, `{}` when no alias was ever set; StoreError when the file
        is not a map of alias to version."""
        path = self.dir / ALIASES
        try:
            return {str(k): int(v) for k, v in self._read_json(path, {}).items()}
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise StoreError(
                f"{path}: not a map of alias to version ({exc}); fix or delete it"
            ) from exc

    def verify(self, version: int) -> list[str]:
        """Problems with a version's files against its manifest; empty when it is intact.
        The servers' rules (`service.store.verify_folder`): a symbolic link is a problem,
        never followed, and so is a file that cannot be read."""
        folder = self.version_dir(version)
        try:
            expected = self.manifest(version)["files"]
        except (StoreError, KeyError, TypeError) as exc:
            return [f"{folder / MANIFEST}: no usable file list ({exc})"]
        if not isinstance(expected, dict) or not expected:
            return [f"{folder / MANIFEST}: no usable file list (not a map of file to sha256)"]
        links = [
            p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*")) if p.is_symlink()
        ]
        if links:
            return [f"{name}: a symbolic link, not a file" for name in links]
        actual = version_files(folder)
        problems = [f"{name}: missing" for name in sorted(set(expected) - set(actual))]
        problems += [f"{name}: not in the manifest" for name in sorted(set(actual) - set(expected))]
        for name in sorted(set(actual) & set(expected)):
            try:
                digest = sha256_file(actual[name])
            except OSError as exc:
                problems.append(f"{name}: unreadable ({exc.strerror})")
                continue
            if digest != expected[name]:
                problems.append(
                    f"{name}: sha256 {digest[:12]}... does not match the manifest's "
                    f"{str(expected[name])[:12]}..."
                )
        return problems

    # -- publishing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def publishing(self) -> Iterator[Path]:
        """A fresh hidden staging folder to fill and `commit`; removed if the block fails.

        A shared lock is held throughout, so `prune` never takes a live staging folder for a
        leftover; a publisher that is killed drops the lock with its process.
        """
        with self._publish_lock(shared=True):
            staging = self.dir / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
            try:
                staging.mkdir()
            except OSError as exc:
                raise StoreError(f"{self.dir}: cannot write to the store ({exc.strerror})") from exc
            try:
                yield staging
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise

    def commit(self, staging: Path, manifest: dict[str, Any]) -> int:
        """Checksum, fsync and rename a `publishing()` folder to the next free version."""
        manifest = {**manifest, "name": self.name, "format": FORMAT_VERSION}
        manifest["files"] = checksums(staging)
        _fsync_tree(staging)
        version = max(self.versions(), default=0) + 1
        while True:
            manifest["version"] = version
            write_json_atomic(staging / MANIFEST, manifest)
            try:
                # rename(2) refuses a non-empty target, so two publishers can never share a
                # number: the loser sees EEXIST/ENOTEMPTY and tries the next one.
                os.rename(staging, self.dir / str(version))
            except OSError as exc:
                if not (self.dir / str(version)).exists():
                    raise StoreError(f"{self.dir}: cannot publish ({exc.strerror})") from exc
                version += 1
                continue
            _fsync_dir(self.dir)
            return version

    # -- aliases -------------------------------------------------------------------------

    def set_alias(self, alias: str, version: int) -> int | None:
        """Point `alias` at `version` (which must exist); returns the version it named."""
        with self._alias_lock():
            self.version_dir(version)  # under the lock: `prune` cannot remove it meanwhile
            aliases, history = self.aliases(), self._alias_history()
            moved = moved_alias(aliases, history, alias, version)
            if moved is not None:
                write_json_atomic(self.dir / ALIAS_HISTORY, moved.history)
                write_json_atomic(self.dir / ALIASES, moved.aliases)
            return aliases.get(alias)

    def rollback(self, alias: str) -> int:
        """Point `alias` back at the version it named before; returns that version."""
        with self._alias_lock():
            moved = rolled_back(
                self.name, self.aliases(), self._alias_history(), alias, set(self.versions())
            )
            write_json_atomic(self.dir / ALIAS_HISTORY, moved.history)
            write_json_atomic(self.dir / ALIASES, moved.aliases)
            return moved.aliases[alias]

    # -- pruning -------------------------------------------------------------------------

    def prune(self, keep: int) -> tuple[list[int], list[str]]:
        """Delete all but the newest `keep` versions, sparing aliased ones, and leftover
        staging folders; returns (versions removed, staging folders removed).

        Under the alias lock: no alias moves to a version being deleted (`set_alias` checks
        it exists under the same lock), no other prune runs, and no `.tmp-` file of an
        alias being written is taken for a leftover. Versions are listed once: one
        published meanwhile is newer than every one this prune considers."""
        if keep < 1:
            raise StoreError(f"--keep must be at least 1, got {keep}")
        if not self.dir.is_dir():
            return [], []  # nothing published yet: nothing to prune, and nothing created
        with self._alias_lock():
            versions = self.versions()
            protected = set(self.aliases().values()) | set(versions[-keep:])
            removed = [v for v in versions if v not in protected]
            for version in removed:
                # Rename first, so no reader ever sees a half-deleted version.
                doomed = self.dir / f"{STAGING_PREFIX}deleted-{version}-{uuid.uuid4().hex}"
                os.rename(self.dir / str(version), doomed)
                shutil.rmtree(doomed)
            cleaned: list[str] = []
            with (
                contextlib.suppress(BlockingIOError),
                self._publish_lock(shared=False, wait=False),
            ):
                # Only when no publish holds the lock: its staging folder is not a leftover.
                for path in self.dir.glob(f"{STAGING_PREFIX}*"):
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
                    cleaned.append(path.name)
        return removed, cleaned

    # -- internals -----------------------------------------------------------------------

    def _alias_history(self) -> dict[str, list[int]]:
        path = self.dir / ALIAS_HISTORY
        try:
            return {str(k): [int(v) for v in vs] for k, vs in self._read_json(path, {}).items()}
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise StoreError(
                f"{path}: not a map of alias to versions ({exc}); fix or delete it"
            ) from exc

    @staticmethod
    def _read_json(path: Path, default: Any) -> Any:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return default
        except (OSError, ValueError, RecursionError) as exc:  # [[[[...: nested too deep
            raise StoreError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from exc

    def models(self) -> list[str]:
        """The models in the store's root folder (those of other --name's too): folders
        holding versions or aliases, not whatever else shares a mount (`lost+found`)."""
        return sorted(p.name for p in self.root.glob("[!.]*") if _holds_a_model(p))

    def no_model(self) -> StoreError:
        """The error for a model with no folder yet, naming the models there."""
        models = self.models()
        there = f" (models there: {', '.join(models)})" if models else ""
        return StoreError(f"no model {self.name!r} in {self.root}{there}")

    @contextlib.contextmanager
    def _alias_lock(self) -> Iterator[None]:
        if not self.dir.is_dir():  # a mistyped --name: say so, create nothing
            raise self.no_model()
        with self._lock(".aliases.lock", fcntl.LOCK_EX):
            yield

    @contextlib.contextmanager
    def _publish_lock(self, *, shared: bool, wait: bool = True) -> Iterator[None]:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        with self._lock(".publish.lock", mode if wait else mode | fcntl.LOCK_NB):
            yield

    @contextlib.contextmanager
    def _lock(self, name: str, mode: int) -> Iterator[None]:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fh = (self.dir / name).open("a")
        except OSError as exc:
            raise StoreError(f"{self.dir}: cannot write to the store ({exc.strerror})") from exc
        with fh:
            fcntl.flock(fh, mode)
            yield


def _holds_a_model(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(
            p.name == ALIASES or (VERSION_RE.fullmatch(p.name) and p.is_dir())
            for p in folder.iterdir()
        )
    except OSError:  # unreadable: not ours to name
        return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
        else:
            _fsync_dir(path)
    _fsync_dir(folder)
