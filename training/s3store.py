"""The writing side of the model store on S3-compatible object storage (`s3://BUCKET/PREFIX`),
the same layout, manifests and aliases as the folder store (models/README.md), safe with
several writers at once:

- a version number is taken by a create-only write (`If-None-Match: *`) of
  `<name>/.claims/<version>`: of two publishers that pick the same number, the store lets
  exactly one create it, and the other takes the next;
- a version is visible once its manifest exists, and the manifest is written last;
- aliases.json and alias-history.json move by compare-and-swap on their ETag (`If-Match`;
  `If-None-Match: *` when absent), read again and retried when another writer won;
- prune and promote each read after their own write (the manifest deleted, then the
  aliases read; the alias moved, then the manifest read), so that one sees the other and no
  alias names a pruned version.

boto3 reads AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION; its
transfer manager uploads large files in parts (whose ETags are then no MD5: readers check
the manifest's sha256).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from training.store import (
    ALIAS_HISTORY,
    ALIASES,
    FORMAT_VERSION,
    MANIFEST,
    VERSION_RE,
    AliasChange,
    StoreError,
    checksums,
    moved_alias,
    no_version,
    rolled_back,
)

CLAIMS = ".claims/"
PRUNE_LOCK = ".prune-lock"  # held by the one prune running: two interleaved ones lost files
CLIENT_CONFIG = botocore.config.Config(
    connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 5}
)
CLIENT_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
# Another writer moved the object between our read and our write: S3 answers 412; 409 when
# the two conditional writes overlap (AWS docs, "How to prevent object overwrites").
CONFLICTS = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
CAS_ATTEMPTS = 20
MAX_JSON_BYTES = 1024 * 1024  # a manifest or aliases.json; ours are a few KB
# A claim without a manifest this old is a publish that died: prune removes what it left.
ABANDONED_AFTER = timedelta(hours=1)


def split_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix/"); StoreError without a bucket."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise StoreError(f"{url!r}: an S3 store is s3://BUCKET or s3://BUCKET/PREFIX")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _code(exc: Exception) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


class S3Store:
    """One model's versions in a bucket: `s3://BUCKET/PREFIX/<name>/<version>/...`; the
    methods of `training.store.Store`."""

    def __init__(self, url: str, name: str = "mnist", client=None) -> None:
        self.url = url.rstrip("/")
        self.bucket, prefix = split_url(url)
        self.name = name
        self.prefix = f"{prefix}{name}/"
        try:
            self.client = client or boto3.client("s3", config=CLIENT_CONFIG)
        except ValueError as exc:  # botocore: "Invalid endpoint: ..." from AWS_ENDPOINT_URL
            raise StoreError(f"{url}: {exc} (check AWS_ENDPOINT_URL)") from exc

    @property
    def location(self) -> str:
        """`s3://BUCKET/PREFIX/<name>`, for messages."""
        return f"{self.url}/{self.name}"

    # -- reading -------------------------------------------------------------------------

    def versions(self) -> list[int]:
        """Versions whose manifest exists, ascending."""
        return sorted(self._objects()[0])

    def manifest(self, version: int) -> dict[str, Any]:
        """The parsed manifest.json of a version; StoreError if there is none."""
        data, _ = self._get(f"{version}/{MANIFEST}")
        if data is None:
            raise no_version(self.name, version, self.location, self.versions())
        try:
            manifest = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise StoreError(
                f"{self.location}/{version}: unreadable manifest ({type(exc).__name__})"
            ) from exc
        if not isinstance(manifest, dict):
            raise StoreError(f"{self.location}/{version}: unreadable manifest (not an object)")
        return manifest

    def aliases(self) -> dict[str, int]:
        """Alias name -> version, `{}` when no alias was ever set."""
        return self._get_aliases()[0]

    def verify(self, version: int) -> list[str]:
        """Problems with a version's objects against its manifest; empty when intact."""
        try:
            expected = self.manifest(version)["files"]
        except (KeyError, TypeError) as exc:
            return [f"{MANIFEST}: no usable file list ({exc})"]
        if not isinstance(expected, dict) or not expected:
            return [f"{MANIFEST}: no usable file list (not a map of file to sha256)"]
        base = f"{version}/"
        actual = {k[len(base) :] for k in self._keys(base)} - {MANIFEST}
        problems = [f"{name}: missing" for name in sorted(set(expected) - actual)]
        problems += [f"{name}: not in the manifest" for name in sorted(actual - set(expected))]
        for name in sorted(actual & set(expected)):
            digest = self._sha256(base + name)
            if digest != expected[name]:
                problems.append(
                    f"{name}: sha256 {digest[:12]}... does not match the manifest's "
                    f"{str(expected[name])[:12]}..."
                )
        return problems

    # -- publishing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def publishing(self) -> Iterator[Path]:
        """A local staging folder to fill and `commit`; the bucket is checked first, so an
        unreachable store fails before training, not after."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except CLIENT_ERRORS as exc:
            raise self._error(f"s3://{self.bucket}", exc) from exc
        with tempfile.TemporaryDirectory(prefix="mnist-publish-") as staging:
            yield Path(staging)

    def commit(self, staging: Path, manifest: dict[str, Any]) -> int:
        """Claim the next free number, upload every file, then the manifest; returns it."""
        manifest = {**manifest, "name": self.name, "format": FORMAT_VERSION}
        manifest["files"] = checksums(staging)
        version = self._claim()
        manifest["version"] = version
        base = f"{self.prefix}{version}/"
        try:
            for name in manifest["files"]:
                self.client.upload_file(str(staging / name), self.bucket, base + name)
            body = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
            self.client.put_object(
                Bucket=self.bucket, Key=base + MANIFEST, Body=body, IfNoneMatch="*"
            )
        except (*CLIENT_ERRORS, boto3.exceptions.S3UploadFailedError) as exc:
            self._delete(self._keys(f"{version}/"), relative=True)  # the claim stays: never reused
            raise self._error(base, exc) from exc
        return version

    def _claim(self) -> int:
        claimed, _ = self._objects()
        version = max(claimed, default=0) + 1
        body = json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()
        while True:
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=f"{self.prefix}{CLAIMS}{version}", Body=body,
                    IfNoneMatch="*",
                )  # fmt: skip
                return version
            except CLIENT_ERRORS as exc:
                if _code(exc) not in CONFLICTS:
                    raise self._error(f"{self.prefix}{CLAIMS}{version}", exc) from exc
                version += 1  # another publisher took it

    # -- aliases -------------------------------------------------------------------------

    def set_alias(self, alias: str, version: int) -> int | None:
        """Point `alias` at `version` (which must exist); returns the version it named."""
        if version not in (versions := self.versions()):
            raise no_version(self.name, version, self.location, versions)
        moved = self._move(lambda aliases, history: moved_alias(aliases, history, alias, version))
        if moved is None:
            return version
        previous = moved[0].get(alias)
        if self._get(f"{version}/{MANIFEST}")[0] is None:
            # A prune removed it after the check above. Checked after the move, as prune
            # checks the aliases after deleting the manifest: of two strongly consistent
            # writers each reading after its own write, one sees the other.
            self._move(
                lambda aliases, history: _put_back(aliases, history, alias, version, previous)
            )
            raise StoreError(
                f"{self.name}: version {version} was being pruned as {alias!r} moved to it; "
                f"{alias!r} not moved"
            )
        self._remember(lambda stack: _appended(stack, previous, version), alias)
        return previous

    def rollback(self, alias: str) -> int:
        """Point `alias` back at the version it named before; returns that version."""
        existing = set(self.versions())
        moved = self._move(
            lambda aliases, history: rolled_back(self.name, aliases, history, alias, existing)
        )
        assert moved is not None  # rolled_back always changes the alias
        target = moved[1].aliases[alias]
        self._remember(lambda stack: _cut_after(stack, target), alias)
        return target

    def _move(self, change: Callable) -> tuple[dict[str, int], AliasChange] | None:
        """Apply `change(aliases, history)` to aliases.json by compare-and-swap, reading it
        again and retrying when another writer changed it first; (aliases before, the
        change), or None when nothing was to change. aliases.json is the one object servers
        follow, so it is written alone; the history follows in `_remember`."""
        for attempt in range(CAS_ATTEMPTS):
            aliases, etag = self._get_aliases()
            moved = change(aliases, self._get_history())
            if moved is None:
                return None
            if self._put_if(ALIASES, moved.aliases, etag):
                return aliases, moved
            time.sleep(random.uniform(0, 0.05 * 2 ** min(attempt, 5)))  # another writer won
        raise StoreError(
            f"{self.location}: aliases changed by other writers {CAS_ATTEMPTS} times in a row; "
            "try again"
        )

    def _remember(self, update: Callable[[list[int]], list[int]], alias: str) -> None:
        """Record an alias's move in alias-history.json (compare-and-swap, retried). Written
        after aliases.json: if this fails, `rollback` still goes to the version before the
        one now named, as it only walks back from the live alias."""
        for attempt in range(CAS_ATTEMPTS):
            history, etag = self._get_json(ALIAS_HISTORY)
            stack = [int(v) for v in history.get(alias, [])]
            if self._put_if(ALIAS_HISTORY, {**history, alias: update(stack)}, etag):
                return
            time.sleep(random.uniform(0, 0.05 * 2 ** min(attempt, 5)))
        raise StoreError(f"{self.location}: alias history changed by other writers; try again")

    def _get_aliases(self) -> tuple[dict[str, int], str | None]:
        data, etag = self._get_json(ALIASES)
        try:
            return {str(k): int(v) for k, v in data.items()}, etag
        except (ValueError, TypeError, OverflowError) as exc:
            raise StoreError(
                f"{self.location}/{ALIASES}: not a map of alias to version ({exc}); fix or "
                "delete it"
            ) from exc

    def _get_history(self) -> dict[str, list[int]]:
        data, _ = self._get_json(ALIAS_HISTORY)
        try:
            return {str(k): [int(v) for v in vs] for k, vs in data.items()}
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise StoreError(
                f"{self.location}/{ALIAS_HISTORY}: not a map of alias to versions ({exc}); "
                "fix or delete it"
            ) from exc

    def _put_if(self, name: str, data: Any, etag: str | None) -> bool:
        """Write `data` only if the object still has `etag` (is absent when None); False
        when another writer changed it first."""
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        body = json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self.prefix + name, Body=body, **condition
            )
            return True
        except CLIENT_ERRORS as exc:
            if _code(exc) in CONFLICTS or _code(exc) in ("NoSuchKey", "404"):
                return False
            raise self._error(self.prefix + name, exc) from exc

    # -- pruning -------------------------------------------------------------------------

    def prune(self, keep: int) -> tuple[list[int], list[str]]:
        """Delete all but the newest `keep` versions, sparing aliased ones (each manifest
        first, so no reader sees half a version), and what publishes that died over an hour
        ago left; returns (versions removed, leftovers removed)."""
        if keep < 1:
            raise StoreError(f"--keep must be at least 1, got {keep}")
        with self._prune_lock():
            return self._prune(keep)

    def _prune(self, keep: int) -> tuple[list[int], list[str]]:
        published, claims = self._objects()
        protected = set(self.aliases().values()) | set(sorted(published)[-keep:])
        removed = []
        for version in sorted(published - protected):
            name = f"{version}/{MANIFEST}"
            try:
                manifest, _ = self._get(name)
            except StoreError:  # over 1 MB, unreadable: not put back, but still pruned
                manifest = None
            self._delete([name], relative=True)
            if version in self.aliases().values():  # a promote moved an alias to it meanwhile
                if manifest is not None:  # put back (a promote that saw it gone undoes itself)
                    key = self.prefix + name
                    try:
                        self.client.put_object(Bucket=self.bucket, Key=key, Body=manifest)
                    except CLIENT_ERRORS as exc:
                        raise self._error(key, exc) from exc
                continue
            self._delete([*self._keys(f"{version}/"), f"{CLAIMS}{version}"], relative=True)
            removed.append(version)
        cleaned = []
        cutoff = datetime.now(UTC) - ABANDONED_AFTER
        for version, modified in claims.items():
            if version not in published and modified < cutoff:
                self._delete(self._keys(f"{version}/"), relative=True)
                self._delete([f"{CLAIMS}{version}"], relative=True)
                cleaned.append(f"{CLAIMS}{version}")
        return removed, cleaned

    # -- internals -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _prune_lock(self) -> Iterator[None]:
        """One prune at a time: the lock object is created only if absent (If-None-Match),
        and deleted at the end. Without it, a second prune deleted the files of a version
        whose manifest the first put back for a promotion (review)."""
        if not self._put_if(PRUNE_LOCK, {"host": socket.gethostname(), "pid": os.getpid()}, None):
            raise StoreError(
                f"{self.location}: another prune is running (s3://{self.bucket}/{self.prefix}"
                f"{PRUNE_LOCK} exists); if none is (it was killed), delete that key"
            )
        try:
            yield
        finally:
            self._delete([PRUNE_LOCK], relative=True)

    def _objects(self) -> tuple[set[int], dict[int, datetime]]:
        """(versions with a manifest, claimed numbers -> when claimed), from one listing."""
        published: set[int] = set()
        claims: dict[int, datetime] = {}
        for key, modified in self._list(""):
            number, _, rest = key.partition("/")
            if rest == MANIFEST and VERSION_RE.fullmatch(number):
                published.add(int(number))
            elif key.startswith(CLAIMS) and VERSION_RE.fullmatch(key[len(CLAIMS) :]):
                claims[int(key[len(CLAIMS) :])] = modified
        return published, claims

    def _list(self, under: str) -> list[tuple[str, datetime]]:
        """(key relative to the model's prefix, last modified) of every object below."""
        found = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + under):
                found += [
                    (o["Key"][len(self.prefix) :], o["LastModified"])
                    for o in page.get("Contents", [])
                ]
        except CLIENT_ERRORS as exc:
            raise self._error(self.prefix + under, exc) from exc
        return found

    def _keys(self, under: str) -> list[str]:
        return [key for key, _ in self._list(under)]

    def _get(self, name: str) -> tuple[bytes | None, str | None]:
        """(body, ETag) of an object below the model's prefix; (None, None) when absent."""
        key = self.prefix + name
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            if answer.get("ContentLength", 0) > MAX_JSON_BYTES:
                raise StoreError(f"s3://{self.bucket}/{key}: over {MAX_JSON_BYTES} bytes")
            return answer["Body"].read(), answer["ETag"]
        except CLIENT_ERRORS as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None, None
            raise self._error(key, exc) from exc

    def _get_json(self, name: str) -> tuple[dict[str, Any], str | None]:
        data, etag = self._get(name)
        if data is None:
            return {}, None
        try:
            parsed = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise StoreError(f"{self.location}/{name}: unreadable ({type(exc).__name__})") from exc
        if not isinstance(parsed, dict):
            raise StoreError(f"{self.location}/{name}: not a JSON object")
        return parsed, etag

    def _sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
            for chunk in body.iter_chunks(1 << 20):
                digest.update(chunk)
        except CLIENT_ERRORS as exc:
            raise self._error(self.prefix + key, exc) from exc
        return digest.hexdigest()

    def _delete(self, keys: list[str], *, relative: bool) -> None:
        names = [self.prefix + k if relative else k for k in keys]
        for start in range(0, len(names), 1000):  # DeleteObjects takes at most 1,000 keys
            batch = [{"Key": k} for k in names[start : start + 1000]]
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})
            except CLIENT_ERRORS as exc:
                raise self._error(names[start], exc) from exc

    def _error(self, key: str, exc: Exception) -> StoreError:
        code = _code(exc)
        reason = f"{code}: {exc}" if code else f"{type(exc).__name__}: {exc}"
        where = key if key.startswith("s3://") else f"s3://{self.bucket}/{key}"
        return StoreError(f"{where}: {reason}")


def _put_back(
    aliases: dict[str, int], history: dict[str, list[int]], alias: str, moved_to: int,
    previous: int | None,
) -> AliasChange | None:  # fmt: skip
    """The files with `alias` back on `previous` (unset if None), if it still names
    `moved_to`; None if another writer moved it since."""
    if aliases.get(alias) != moved_to:
        return None
    rest = {name: v for name, v in aliases.items() if name != alias}
    return AliasChange(rest if previous is None else {**rest, alias: previous}, history)


def _appended(stack: list[int], previous: int | None, version: int) -> list[int]:
    """The history after a promotion from `previous` to `version`: `previous` is added first
    when the history does not end with it (a first promotion, or a history write lost)."""
    if previous is not None and stack[-1:] != [previous]:
        stack = [*stack, previous]
    return [*stack, version]


def _cut_after(stack: list[int], version: int) -> list[int]:
    """The history up to the last time it named `version` (a rollback's new history)."""
    while stack and stack[-1] != version:
        stack = stack[:-1]
    return stack or [version]
