"""The reading side of the model store on S3-compatible object storage: `s3://BUCKET/PREFIX`
holds `<name>/<version>/...` and `<name>/aliases.json` exactly as a folder store does
(models/README.md).

boto3 is the client: it reads the standard configuration itself (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, profiles, instance roles), retries
with backoff, and is what TF Serving's, KServe's and MLflow's S3 support is written against.

Polling is one conditional GET of aliases.json (`If-None-Match` with the ETag of the last
answer: 304 and no body while the alias has not moved). A version is downloaded once into a
local cache, every file checked against the manifest's sha256 (an ETag is not a checksum:
multipart uploads have ETags that are no MD5), and published there by a rename, so workers
sharing the cache never see half a download. Versions are immutable, so a cached version
that still matches its manifest is served without asking the store: when the object store
is unreachable, a worker that restarts still loads what it served.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from service.store import (
    ALIASES,
    MANIFEST,
    MAX_JSON_BYTES,
    VERSION_RE,
    LocalVersion,
    ModelStore,
    StoreUnreadable,
    VersionCorrupt,
    parse_aliases,
    parse_manifest,
    read_small_file,
    verify_folder,
)

log = logging.getLogger("service.s3store")

# Largest file of a version downloaded, and largest version; ours are about 5 MB each
# (model.keras, the SavedModel's variables). A bucket that names a 10 GB file must not fill
# the cache disk.
MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_VERSION_BYTES = 1024 * 1024 * 1024
# botocore's timeouts are per connection attempt and per socket read: a store that sends a
# byte every few seconds holds a call for ever. So every call also has a deadline of wall
# time, after which it is StoreUnreadable (its thread is left to finish on its own, in a
# small pool of its own): a poll, a listing or a manifest within JSON_DEADLINE seconds, each
# file of a version within FILE_DEADLINE.
CLIENT_CONFIG = botocore.config.Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
)
JSON_DEADLINE = 5.0
FILE_DEADLINE = 120.0
_CALLS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="s3-call")
# A staging folder this old in the cache was left by a worker killed mid-download.
STALE_STAGING_SECONDS = 600
CLIENT_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
UNANSWERED = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)
STAGING_PREFIX = ".tmp-"


def split_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix/"); ValueError if no bucket."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"{url!r}: an S3 store is s3://BUCKET or s3://BUCKET/PREFIX")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def error_code(exc: Exception) -> str:
    """The S3 error code of a ClientError ("NoSuchKey", "304", "PreconditionFailed"...)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


class S3Store(ModelStore):
    """One model's versions in a bucket, downloaded into `cache_dir/<name>/<version>/`."""

    def __init__(self, url: str, name: str, cache_dir: Path | None = None, client=None) -> None:
        self.url = url.rstrip("/")
        self.bucket, prefix = split_url(url)
        self.name = name
        self.prefix = f"{prefix}{name}/"
        try:
            self.client = client or boto3.client("s3", config=CLIENT_CONFIG)
        except ValueError as exc:  # botocore: "Invalid endpoint: ..." from AWS_ENDPOINT_URL
            raise ValueError(f"{exc} (check AWS_ENDPOINT_URL)") from exc
        root = cache_dir or Path(tempfile.gettempdir()) / "mnist-serve-cache"
        if ".." in Path(self.bucket, prefix, name).parts:
            raise ValueError(f"{url} {name!r}: '..' in a bucket, prefix or model name")
        # One folder per bucket and prefix: two stores must never share cached versions.
        self.cache = root / self.bucket / prefix / name
        self._remove_stale_staging()
        self._aliases: tuple[str, dict[str, int]] | None = None  # (ETag, aliases)
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return f"{self.url}/{self.name}"

    # -- what the store holds ------------------------------------------------------------

    def versions(self) -> list[int]:
        """Versions whose manifest exists: a publish writes it last, so a version being
        uploaded, or one whose upload died, is not one."""
        found = set()
        for key, _size in self._list(self.prefix):
            number, _, rest = key.partition("/")
            if rest == MANIFEST and VERSION_RE.fullmatch(number):
                found.add(int(number))
        return sorted(found)

    def aliases(self) -> dict[str, int]:
        """One conditional GET: while aliases.json keeps its ETag the store answers 304 and
        the aliases read last are returned."""
        key = self.prefix + ALIASES
        known = self._aliases
        condition = {} if known is None else {"IfNoneMatch": known[0]}
        try:
            etag, data = self._bounded(JSON_DEADLINE, key, self._read, key, condition)
        except CLIENT_ERRORS as exc:
            code = error_code(exc)
            if code == "304" and known is not None:
                return dict(known[1])
            if code in ("NoSuchKey", "404"):
                self._aliases = None
                return {}
            raise self._unreachable(key, exc) from exc
        aliases = parse_aliases(data, f"s3://{self.bucket}/{key}")
        self._aliases = (etag, aliases)
        self._remember_aliases(data)
        return dict(aliases)

    def manifest(self, version: int) -> dict[str, Any]:
        key = f"{self.prefix}{version}/{MANIFEST}"
        return parse_manifest(self._get(key, MAX_JSON_BYTES), f"s3://{self.bucket}/{key}")

    def _read_bytes(self, version: int, name: str, limit: int) -> bytes:
        key = f"{self.prefix}{version}/{name}"

        def head_of_object() -> bytes:  # the first limit + 1 bytes: enough to say "too big"
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return body.read(limit + 1)
            finally:
                body.close()

        try:
            return self._bounded(FILE_DEADLINE, key, head_of_object)
        except CLIENT_ERRORS as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                raise VersionCorrupt(f"{name}: missing") from exc
            raise self._unreachable(key, exc) from exc

    def fetch(self, version: int) -> LocalVersion:
        """The cached copy when it matches the store's manifest (or the store is away and it
        matches its own); else every file the manifest lists downloaded into a staging
        folder, checked, then renamed into the cache."""
        folder = self.cache / str(version)
        with self._lock:  # one download per process; other workers race by rename
            try:
                manifest = self.manifest(version)
            except StoreUnreadable:
                cached = self._cached(version)
                if cached is None:
                    raise
                return cached  # versions are immutable: what we checked then still holds
            cached = self._cached(version)
            if cached is not None and cached.manifest == manifest:
                return cached
            shutil.rmtree(folder, ignore_errors=True)  # not this store's version any more
            staging = self.cache / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
            try:
                self._download(version, manifest, staging)
                (staging / MANIFEST).write_text(json.dumps(manifest))
                try:
                    os.rename(staging, folder)
                except OSError:  # another worker published the same version first
                    cached = self._cached(version)
                    if cached is None or cached.manifest != manifest:
                        raise
                    return cached
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            return LocalVersion(version, manifest, folder)

    def cached_target(self, alias: str) -> int | None:
        """The version the last aliases.json read named, if it is in the cache; else the
        highest cached version."""
        try:
            named = parse_aliases(read_small_file(self.cache / ALIASES), ALIASES).get(alias)
        except (OSError, StoreUnreadable):
            named = None
        cached = sorted(
            int(p.name)
            for p in self.cache.glob("[1-9]*")
            if VERSION_RE.fullmatch(p.name) and (p / MANIFEST).is_file()
        )
        if named in cached:
            return named
        return cached[-1] if cached else None

    # -- internals -----------------------------------------------------------------------

    def _cached(self, version: int) -> LocalVersion | None:
        folder = self.cache / str(version)
        try:
            manifest = parse_manifest(read_small_file(folder / MANIFEST), str(folder))
        except (OSError, StoreUnreadable):
            return None
        if verify_folder(folder, manifest):
            log.warning("cached %s version %d does not match its manifest; downloading it "
                        "again", self.name, version)  # fmt: skip
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return LocalVersion(version, manifest, folder)

    def _download(self, version: int, manifest: dict[str, Any], staging: Path) -> None:
        expected = manifest.get("files")
        if not isinstance(expected, dict) or not expected:
            raise VersionCorrupt("checksums fail: manifest lists no files")
        base = f"{self.prefix}{version}/"
        listed = {key: size for key, size in self._list(base) if key != MANIFEST}
        problems = [f"{name}: missing" for name in sorted(set(expected) - set(listed))]
        problems += [f"{name}: not in manifest" for name in sorted(set(listed) - set(expected))]
        if problems:
            raise VersionCorrupt(f"checksums fail: {'; '.join(problems[:3])}")
        largest = max(expected, key=lambda name: listed[name])
        if listed[largest] > MAX_FILE_BYTES:
            raise VersionCorrupt(f"too large: {largest} holds {listed[largest]} bytes, over "
                                 f"the limit of {MAX_FILE_BYTES}")  # fmt: skip
        if (total := sum(listed[name] for name in expected)) > MAX_VERSION_BYTES:
            raise VersionCorrupt(f"too large: {total} bytes in all, over the limit of "
                                 f"{MAX_VERSION_BYTES}")  # fmt: skip
        for name, sha256 in expected.items():
            target = staging / name
            if not target.resolve().is_relative_to(staging.resolve()):
                raise VersionCorrupt(f"checksums fail: {name}: outside the version folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            key = base + name
            try:
                digest = self._bounded(FILE_DEADLINE, key, self._save, key, target)
            except CLIENT_ERRORS as exc:
                raise self._unreachable(key, exc) from exc
            if digest != sha256:
                raise VersionCorrupt(f"checksums fail: {name}: checksum mismatch")

    def _save(self, key: str, target: Path) -> str:
        """Stream one object into `target`; its sha256."""
        answer = self.client.get_object(Bucket=self.bucket, Key=key)
        digest = hashlib.sha256()
        with target.open("wb") as out:
            for chunk in answer["Body"].iter_chunks(1 << 20):
                digest.update(chunk)
                out.write(chunk)
                if out.tell() > MAX_FILE_BYTES:
                    raise VersionCorrupt(f"checksums fail: {key}: over {MAX_FILE_BYTES} bytes")
        return digest.hexdigest()

    def _remove_stale_staging(self) -> None:
        cutoff = time.time() - STALE_STAGING_SECONDS
        for path in self.cache.glob(f"{STAGING_PREFIX}*"):
            with contextlib.suppress(OSError):
                if path.is_dir() and path.stat().st_mtime < cutoff:
                    shutil.rmtree(path, ignore_errors=True)

    def _remember_aliases(self, data: bytes) -> None:
        """Keep aliases.json beside the cached versions, for `cached_target` after a
        restart while the store is unreachable."""
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
            tmp = self.cache / f"{STAGING_PREFIX}{ALIASES}.{uuid.uuid4().hex}"
            tmp.write_bytes(data)
            os.replace(tmp, self.cache / ALIASES)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.cache / ALIASES, exc)

    def _list(self, prefix: str) -> list[tuple[str, int]]:
        """(key relative to `prefix`, size) of every object under it."""

        def listing() -> list[tuple[str, int]]:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            return [
                (o["Key"][len(prefix) :], o["Size"]) for p in pages for o in p.get("Contents", [])
            ]

        try:
            return self._bounded(JSON_DEADLINE, prefix, listing)
        except CLIENT_ERRORS as exc:
            raise self._unreachable(prefix, exc) from exc

    def _get(self, key: str, limit: int) -> bytes:
        try:
            return self._bounded(JSON_DEADLINE, key, self._read, key, {}, limit)[1]
        except CLIENT_ERRORS as exc:
            raise self._unreachable(key, exc) from exc

    def _read(
        self, key: str, condition: dict[str, str], limit: int = MAX_JSON_BYTES
    ) -> tuple[str, bytes]:
        """(ETag, body) of a small object; StoreUnreadable if it is over `limit` bytes."""
        answer = self.client.get_object(Bucket=self.bucket, Key=key, **condition)
        body = answer["Body"]
        if answer.get("ContentLength", 0) > limit:
            body.close()
            raise StoreUnreadable(f"s3://{self.bucket}/{key}: over the limit of {limit} bytes")
        data = body.read(limit + 1)
        if len(data) > limit:
            raise StoreUnreadable(f"s3://{self.bucket}/{key}: over the limit of {limit} bytes")
        return answer["ETag"], data

    def _bounded(self, seconds: float, key: str, call: Callable, *args: Any) -> Any:
        """`call(*args)` in the store's own threads, given up on after `seconds`."""
        future = _CALLS.submit(call, *args)
        try:
            return future.result(timeout=seconds)
        except FutureTimeout:
            future.cancel()
            raise StoreUnreadable(
                f"s3://{self.bucket}/{key}: no answer within {seconds:g} s"
            ) from None

    def _unreachable(self, key: str, exc: Exception) -> StoreUnreadable:
        code = error_code(exc)
        if code:
            reason = f"{code}: {exc}"
        elif isinstance(exc, UNANSWERED):  # their text holds the endpoint's URL: not for clients
            reason = f"{type(exc).__name__}: the S3 endpoint did not answer"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        return StoreUnreadable(f"s3://{self.bucket}/{key}: {reason}")
