"""Which version is served, and how a new one replaces it (or does not)."""

from __future__ import annotations

import json
import logging
import os

import pytest

from service import metrics
from service import registry as registry_module
from service.errors import ModelNotReady, VersionNotFound, VersionUnavailable
from service.registry import ModelRegistry
from service.store import MAX_JSON_BYTES, FolderStore, VersionCorrupt
from tests.keras_files import publish_beside, publish_layers, random_layers
from training.store import Store


def registry_for(store: Store) -> ModelRegistry:
    return ModelRegistry(FolderStore(store.root, store.name), "production")


def test_serves_the_highest_version_without_an_alias(tiny_store: Store) -> None:
    publish_layers(tiny_store, random_layers(seed=1))
    registry = registry_for(tiny_store)
    assert registry.refresh() is True
    assert registry.get().version == 2
    assert registry.refresh() is False  # nothing new


def test_follows_the_alias_both_ways(tiny_store: Store) -> None:
    publish_layers(tiny_store, random_layers(seed=1))
    tiny_store.set_alias("production", 1)
    registry = registry_for(tiny_store)
    registry.refresh()
    assert registry.get().version == 1
    tiny_store.set_alias("production", 2)
    assert registry.refresh() and registry.get().version == 2
    tiny_store.rollback("production")
    assert registry.refresh() and registry.get().version == 1


def test_tampered_version_is_skipped_and_the_old_one_kept(
    tiny_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    registry = registry_for(tiny_store)
    registry.refresh()
    publish_layers(tiny_store, random_layers(seed=1))
    with (tiny_store.dir / "2" / "model.keras").open("ab") as fh:
        fh.write(b"\0")
    with caplog.at_level(logging.ERROR):
        assert registry.refresh() is False
    assert registry.get().version == 1
    assert registry.load_failures == 1
    assert "skipping mnist version 2: checksums fail: model.keras: checksum mismatch" in caplog.text
    registry.refresh()
    assert registry.load_failures == 1  # remembered, not retried on every poll


def test_a_version_holding_a_symbolic_link_is_skipped(tiny_store: Store, tmp_path) -> None:
    """A link listed with the sha256 of its target still reads nothing outside the version."""
    registry = registry_for(tiny_store)
    registry.refresh()
    secret = tmp_path / "secret"
    secret.write_text("the server's own")
    publish_beside(tiny_store, {"model-card.md": secret})
    assert "model-card.md" in tiny_store.manifest(2)["files"]
    assert registry.refresh() is False and registry.get().version == 1
    with pytest.raises(VersionCorrupt, match="model-card.md: a symbolic link, not a file"):
        registry.store.fetch(2)


def test_version_that_does_not_load_is_skipped(tiny_store: Store) -> None:
    registry = registry_for(tiny_store)
    registry.refresh()
    publish_layers(tiny_store, random_layers(seed=1, sizes=(784, 16, 5)))  # 5 outputs
    assert registry.refresh() is False
    assert registry.get().version == 1 and registry.load_failures == 1


def test_broken_aliases_file_keeps_the_served_version(tiny_store: Store) -> None:
    registry = registry_for(tiny_store)
    registry.refresh()
    (tiny_store.dir / "aliases.json").write_text("{oops")
    failures = metrics.STORE_READ_FAILURES._value.get()
    assert registry.refresh() is False
    assert registry.get().version == 1
    assert metrics.STORE_READ_FAILURES._value.get() == failures + 1  # a metric says so


def test_an_unreadable_store_is_logged_when_it_goes_a_minute_on_and_when_it_is_back(
    tiny_store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(registry_module.time, "monotonic", lambda: now[0])
    registry = registry_for(tiny_store)
    registry.refresh()
    (tiny_store.dir / "aliases.json").write_text("{oops")
    with caplog.at_level(logging.INFO, logger="service.registry"):
        for _ in range(30):  # a poll every 2 s for a minute: one line
            registry.refresh()
            now[0] += 2
        registry.refresh()  # a minute on: one more
        (tiny_store.dir / "aliases.json").write_text(json.dumps({"production": 1}))
        now[0] += 3
        registry.refresh()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert lines[0].startswith("store unreadable for 0 s, keeping version 1: ")
    assert lines[1].startswith("store unreadable for 60 s, keeping version 1: ")
    assert lines[2] == "store readable again after 63 s"


def test_nothing_to_serve_is_model_not_ready(tmp_path) -> None:
    registry = registry_for(Store(tmp_path))
    assert registry.refresh() is False
    with pytest.raises(ModelNotReady, match="the store .* has no usable version"):
        registry.get()


def test_an_unreadable_store_before_any_load_says_so(tiny_store: Store) -> None:
    (tiny_store.dir / "aliases.json").write_text("{oops")
    registry = registry_for(tiny_store)
    assert registry.refresh() is False
    with pytest.raises(ModelNotReady, match=f"the store {tiny_store.dir} cannot be read$"):
        registry.get()


def test_pinned_versions_load_on_demand(tiny_store: Store) -> None:
    publish_layers(tiny_store, random_layers(seed=1))
    registry = registry_for(tiny_store)
    registry.refresh()
    first = registry.get(1)
    assert first.version == 1 and registry.get(1) is first  # cached
    with pytest.raises(VersionNotFound, match="mnist has no version 3 \\(versions: 1, 2\\)"):
        registry.get(3)


def test_pinned_tampered_version_is_409(tiny_store: Store) -> None:
    publish_layers(tiny_store, random_layers(seed=1))
    (tiny_store.dir / "1" / "model.keras").write_bytes(b"evil")
    registry = registry_for(tiny_store)
    registry.refresh()
    with pytest.raises(VersionUnavailable, match="version 1: checksums fail"):
        registry.get(1)


def test_staging_and_odd_names_are_not_versions(tiny_store: Store) -> None:
    for name in (".tmp-half", "07", "latest"):
        (tiny_store.dir / name).mkdir()
    assert FolderStore(tiny_store.root, "mnist").versions() == [1]


@pytest.mark.parametrize("kind", ["fifo", "device", "huge"])
def test_an_aliases_file_that_is_no_small_regular_file_is_refused_unread(
    tiny_store: Store, kind: str
) -> None:
    """A FIFO blocked the poller forever, /dev/zero grew RSS 400 MB/s, 50 MB of JSON froze
    the event loop 1 s a poll (issue 15's attack review)."""
    registry = registry_for(tiny_store)
    registry.refresh()
    aliases = tiny_store.dir / "aliases.json"
    aliases.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(aliases)
    elif kind == "device":
        aliases.symlink_to("/dev/zero")
    else:
        aliases.write_text('{"production": 1, "x": "' + "a" * MAX_JSON_BYTES + '"}')
    failures = metrics.STORE_READ_FAILURES._value.get()
    assert registry.refresh() is False  # returns: nothing blocks, nothing is read whole
    assert metrics.STORE_READ_FAILURES._value.get() == failures + 1
    assert registry.get().version == 1


def test_a_manifest_whose_metrics_are_not_an_object_still_swaps_and_reports(
    tiny_store: Store,
) -> None:
    registry = registry_for(tiny_store)
    registry.refresh()
    version = publish_layers(tiny_store, random_layers(seed=3))
    manifest = tiny_store.dir / str(version) / "manifest.json"
    data = json.loads(manifest.read_text())
    data["metrics"] = "oops"
    manifest.write_text(json.dumps(data))
    tiny_store.set_alias("production", version)
    assert registry.refresh() is True
    assert registry.get().version == version
    assert registry.get().test_accuracy is None
