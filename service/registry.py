"""Which model version is served, and how a new one replaces it.

Load before unload, as TensorFlow Serving does: a candidate version is verified against its
manifest's checksums, parsed, and warmed with a prediction before one reference assignment
swaps it in. Requests that already hold the old model finish with it. A version that fails
any step is logged, remembered, and skipped; the served one stays.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service import metrics
from service.errors import ModelNotReady, VersionNotFound, VersionUnavailable
from service.runtime import DenseModel, UnsupportedModel, load_keras
from service.store import ModelStore, StoreUnreadable, VersionCorrupt

log = logging.getLogger("service.registry")

INPUT_SIZE = 784
OUTPUT_SIZE = 10
STORE_ERROR_LOG_SECONDS = 60.0  # while the store stays unreadable, one log line this often


class LoadFailed(Exception):
    """A version could not be fetched, verified, parsed or warmed up. `transient` when the
    store could not be read or the cache written: worth trying again at the next poll,
    unlike a version that is corrupt or not a model this service can serve."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class LoadedModel:
    """A verified, warmed model and what the store says about it."""

    name: str
    version: int
    model: DenseModel
    manifest: dict[str, Any] = field(repr=False)

    @property
    def test_accuracy(self) -> float | None:
        """The manifest's `metrics.accuracy`; None when absent or not a number."""
        metrics_ = self.manifest.get("metrics")
        value = metrics_.get("accuracy") if isinstance(metrics_, dict) else None
        return float(value) if isinstance(value, int | float) else None


def load_version(store: ModelStore, version: int) -> LoadedModel:
    """Fetch and verify (`ModelStore.fetch`), parse and warm up one version; LoadFailed says
    which step failed."""
    try:
        local = store.fetch(version)
    except StoreUnreadable as exc:
        raise LoadFailed(f"version {version}: unreadable ({exc.detail})", transient=True) from exc
    except OSError as exc:  # the local cache: full, read-only, not a folder...
        raise LoadFailed(f"version {version}: cannot cache it ({exc})", transient=True) from exc
    except VersionCorrupt as exc:
        raise LoadFailed(f"version {version}: {exc}") from exc
    try:
        model = load_keras(local.folder / "model.keras", (INPUT_SIZE, OUTPUT_SIZE))
    except UnsupportedModel as exc:
        raise LoadFailed(f"version {version}: {exc}") from exc
    _warm_up(model, version)
    return LoadedModel(store.name, version, model, local.manifest)


def _warm_up(model: DenseModel, version: int) -> None:
    probabilities = model.predict(np.zeros((2, INPUT_SIZE), np.float32))
    if not (np.isfinite(probabilities).all() and np.allclose(probabilities.sum(axis=1), 1, 1e-3)):
        raise LoadFailed(f"version {version}: warm-up prediction is not a probability vector")


def version_not_found(store: ModelStore, version: int) -> VersionNotFound:
    """The one wording of an unknown version, for `?version=` and `/v1/models/{version}`."""
    known = ", ".join(map(str, store.versions())) or "none"
    return VersionNotFound(f"{store.name} has no version {version} (versions: {known})")


class ModelRegistry:
    """Holds the served model and a few pinned ones; `refresh` follows the store."""

    def __init__(self, store: ModelStore, alias: str, pinned_capacity: int = 2) -> None:
        self.store = store
        self.alias = alias
        self.current: LoadedModel | None = None
        self.load_failures = 0
        self._failed: set[int] = set()
        self._pinned: OrderedDict[int, LoadedModel] = OrderedDict()
        self._pinned_capacity = pinned_capacity
        # One refresh at a time, and one pinned load at a time; apart, so that a slow store
        # holding up a poll never holds up a pinned version that is already loaded.
        self._refresh_lock = threading.Lock()
        self._pinned_lock = threading.Lock()
        # Since when (time.monotonic seconds) the store has been unreadable, and when that
        # was last logged: one line when it goes, one a minute while away, one when back.
        self.store_unreadable_since: float | None = None
        self._store_error_logged = 0.0

    def refresh(self) -> bool:
        """Load and swap in the version the store now names; True if the served one changed.
        A version that fails for good (corrupt, not a servable model) is skipped until the
        alias moves on; one the store or the cache failed is tried again at the next poll."""
        with self._refresh_lock:
            served = self.current.version if self.current else None
            try:
                target = self.store.target(self.alias)
            except StoreUnreadable as exc:
                metrics.STORE_READ_FAILURES.inc()
                self._store_unreadable(exc.detail, served)
                if served is not None:
                    return False
                target = self.store.cached_target(self.alias)  # a restart while it is away
                if target is not None and target not in self._failed:
                    log.warning("loading cached version %s until the store answers", target)
            else:
                self._store_readable()
            if target is None or target == served or target in self._failed:
                return False
            try:
                loaded = load_version(self.store, target)
            except Exception as exc:  # any failure to load is a failed load, never a crash
                if not getattr(exc, "transient", False):
                    self._failed.add(target)
                self.load_failures += 1
                metrics.MODEL_LOAD_FAILURES.inc()
                log.error("skipping %s %s; still serving %s", self.store.name, exc, served)
                return False
            self.current = loaded  # the swap: one reference assignment
            metrics.record_served(loaded.name, target, served, loaded.test_accuracy)
            log.info("serving %s version %d (was %s)", self.store.name, target, served)
            return True

    def _store_unreadable(self, detail: str, served: int | None) -> None:
        now = time.monotonic()
        if self.store_unreadable_since is None:
            self.store_unreadable_since = now
        elif now - self._store_error_logged < STORE_ERROR_LOG_SECONDS:
            return
        self._store_error_logged = now
        away = now - self.store_unreadable_since
        keeping = f"keeping version {served}" if served is not None else "no version loaded yet"
        log.error("store unreadable for %.0f s, %s: %s", away, keeping, detail)

    def _store_readable(self) -> None:
        if self.store_unreadable_since is not None:
            away = time.monotonic() - self.store_unreadable_since
            log.info("store readable again after %.0f s", away)
            self.store_unreadable_since = None

    def get(self, version: int | None = None) -> LoadedModel:
        """The served model, or a pinned version (loaded on first use)."""
        current = self.current
        if version is None or (current is not None and version == current.version):
            if current is None:
                why = (
                    "cannot be read"
                    if self.store_unreadable_since is not None
                    else "has no usable version"
                )
                raise ModelNotReady(
                    f"no model is loaded yet: the store {self.store.location} {why}",
                    headers={"Retry-After": "5"},
                )
            return current
        return self._pinned_version(version)

    def loaded_versions(self) -> list[int]:
        """The versions in memory (served and pinned), ascending: what can be answered
        without the store."""
        current = self.current
        return sorted({*self._pinned, *([current.version] if current else [])})

    def _pinned_version(self, version: int) -> LoadedModel:
        with self._pinned_lock:
            if version in self._pinned:
                self._pinned.move_to_end(version)
                return self._pinned[version]
            if version not in self.store.versions():
                raise version_not_found(self.store, version)
            try:
                loaded = load_version(self.store, version)
            except Exception as exc:  # any failure to load is a failed load, never a crash
                self.load_failures += 1
                metrics.MODEL_LOAD_FAILURES.inc()
                raise VersionUnavailable(f"{self.store.name} {exc}") from exc
            if self._pinned_capacity:
                self._pinned[version] = loaded
                while len(self._pinned) > self._pinned_capacity:
                    self._pinned.popitem(last=False)
            return loaded
