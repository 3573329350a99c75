"""The S3 store's reading side against a real S3 server (SeaweedFS): what is a version, the
cheap poll, the checked download into the cache, and serving on while the store is away."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from pathlib import Path

import boto3
import pytest

import service.s3store
from service.registry import LoadFailed, ModelRegistry, load_version
from service.routes.v2 import _metadata as v2_metadata
from service.s3store import S3Store, split_url
from service.store import StoreUnreadable, VersionCorrupt
from tests.keras_files import publish_layers, random_layers
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server, free_ports
from training.s3store import S3Store as S3Writer


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket()


def reader(server: S3Server, bucket: str, cache: Path, endpoint: str | None = None) -> S3Store:
    client = boto3.client(
        "s3", endpoint_url=endpoint or server.endpoint, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, region_name=REGION,
    )  # fmt: skip
    return S3Store(f"s3://{bucket}/store", "mnist", cache, client=client)


def writer(server: S3Server, bucket: str) -> S3Writer:
    return S3Writer(f"s3://{bucket}/store", "mnist", client=server.client())


def unreachable(server: S3Server, bucket: str, cache: Path) -> S3Store:
    """The same store through an endpoint where nothing listens: the store gone away."""
    return reader(server, bucket, cache, f"http://127.0.0.1:{free_ports(1)[0]}")


def test_split_url() -> None:
    assert split_url("s3://b") == ("b", "")
    assert split_url("s3://b/a/b/") == ("b", "a/b/")
    with pytest.raises(ValueError, match="s3://BUCKET"):
        split_url("s3:///x")


def test_versions_are_those_with_a_manifest(s3_server: S3Server, bucket: str, tmp_path: Path):
    store = reader(s3_server, bucket, tmp_path)
    assert store.versions() == [] and store.aliases() == {} and store.target("production") is None
    publish_layers(writer(s3_server, bucket), random_layers(seed=1))
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="store/mnist/2/model.keras", Body=b"being uploaded")
    client.put_object(Bucket=bucket, Key="store/mnist/07/manifest.json", Body=b"{}")
    client.put_object(Bucket=bucket, Key="store/mnist/.claims/3", Body=b"{}")
    assert store.versions() == [1]
    assert store.target("production") == 1


def test_alias_poll_is_a_conditional_get_answered_304(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    w = writer(s3_server, bucket)
    publish_layers(w, random_layers(seed=1))
    publish_layers(w, random_layers(seed=2))
    w.set_alias("production", 1)
    store = reader(s3_server, bucket, tmp_path)
    statuses: list[int] = []
    store.client.meta.events.register(
        "after-call.s3.GetObject",
        lambda http_response, **_: statuses.append(http_response.status_code),
    )
    assert store.target("production") == 1
    assert store.target("production") == 1
    assert statuses == [200, 304]
    w.set_alias("production", 2)
    assert store.target("production") == 2
    assert statuses == [200, 304, 200]


def test_fetch_downloads_checks_and_caches(s3_server: S3Server, bucket: str, tmp_path: Path):
    publish_layers(writer(s3_server, bucket), random_layers(seed=1))
    local = reader(s3_server, bucket, tmp_path).fetch(1)
    assert local.folder == tmp_path / bucket / "store" / "mnist" / "1"
    assert (local.folder / "model.keras").is_file() and local.manifest["version"] == 1
    assert json.loads((local.folder / "manifest.json").read_text()) == local.manifest
    assert not list(local.folder.parent.glob(".tmp-*"))
    # Immutable versions: the cached copy is served without the store.
    again = unreachable(s3_server, bucket, tmp_path).fetch(1)
    assert again.folder == local.folder


def test_a_damaged_cache_is_downloaded_again(s3_server: S3Server, bucket: str, tmp_path: Path):
    publish_layers(writer(s3_server, bucket), random_layers(seed=1))
    store = reader(s3_server, bucket, tmp_path)
    model = store.fetch(1).folder / "model.keras"
    good = model.read_bytes()
    model.write_bytes(b"flipped")
    with pytest.raises(StoreUnreadable):  # not trusted, and the store is away
        unreachable(s3_server, bucket, tmp_path).fetch(1)
    assert store.fetch(1).folder == model.parent
    assert model.read_bytes() == good


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("tamper", "model.keras: checksum mismatch"),
        ("delete", "model.keras: missing"),
        ("extra", "evil.py: not in manifest"),
    ],
)
def test_a_version_that_differs_from_its_manifest_is_refused(
    s3_server: S3Server, bucket: str, tmp_path: Path, change: str, problem: str
) -> None:
    publish_layers(writer(s3_server, bucket), random_layers(seed=1))
    client, key = s3_server.client(), "store/mnist/1/model.keras"
    if change == "tamper":
        client.put_object(Bucket=bucket, Key=key, Body=b"not the model")
    elif change == "delete":
        client.delete_object(Bucket=bucket, Key=key)
    else:
        client.put_object(Bucket=bucket, Key="store/mnist/1/evil.py", Body=b"import os")
    with pytest.raises(VersionCorrupt, match=problem):
        reader(s3_server, bucket, tmp_path).fetch(1)
    cache = tmp_path / bucket / "store" / "mnist"
    assert not (cache / "1").exists()
    assert not list(cache.glob(".tmp-*"))


def test_an_unreachable_store_is_store_unreadable(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    store = unreachable(s3_server, bucket, tmp_path)
    for call in (store.versions, store.aliases, lambda: store.manifest(1), lambda: store.fetch(1)):
        with pytest.raises(StoreUnreadable, match="the S3 endpoint did not answer") as caught:
            call()
        assert "127.0.0.1" not in str(caught.value)  # clients see it: no internal address
    with pytest.raises(StoreUnreadable, match="NoSuchBucket"):
        S3Store("s3://no-such-bucket", "mnist", tmp_path, client=s3_server.client()).versions()


def test_oversized_aliases_are_refused(s3_server: S3Server, bucket: str, tmp_path: Path):
    s3_server.client().put_object(
        Bucket=bucket, Key="store/mnist/aliases.json", Body=b" " * (1024 * 1024 + 1)
    )
    with pytest.raises(StoreUnreadable, match="over the limit"):
        reader(s3_server, bucket, tmp_path).aliases()


def test_registry_keeps_serving_and_restarts_from_the_cache(
    s3_server: S3Server, bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = writer(s3_server, bucket)
    publish_layers(w, random_layers(seed=1))
    publish_layers(w, random_layers(seed=2))
    w.set_alias("production", 1)  # the cache's fallback must follow the alias, not the highest
    registry = ModelRegistry(reader(s3_server, bucket, tmp_path), "production")
    assert registry.refresh() and registry.get().version == 1

    away = ModelRegistry(unreachable(s3_server, bucket, tmp_path), "production")
    away.current = registry.current
    with caplog.at_level(logging.ERROR):
        assert away.refresh() is False
    assert away.get().version == 1 and "store unreadable" in caplog.text
    assert v2_metadata(away, None).versions == ["1"]  # from memory, as KServe clients ask
    with pytest.raises(StoreUnreadable):
        v2_metadata(ModelRegistry(unreachable(s3_server, bucket, tmp_path), "production"), None)

    restarted = ModelRegistry(unreachable(s3_server, bucket, tmp_path), "production")
    assert restarted.refresh() and restarted.get().version == 1


def test_a_cached_version_of_another_store_is_not_served(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    """Version 1 of a bucket that was emptied and published again is a new version 1."""
    publish_layers(writer(s3_server, bucket), random_layers(seed=1))
    store = reader(s3_server, bucket, tmp_path)
    first = store.fetch(1).manifest
    client = s3_server.client()
    for item in client.list_objects_v2(Bucket=bucket)["Contents"]:
        client.delete_object(Bucket=bucket, Key=item["Key"])
    publish_layers(writer(s3_server, bucket), random_layers(seed=2))
    second = store.fetch(1).manifest
    assert second["files"] != first["files"]
    other = s3_server.new_bucket()
    publish_layers(writer(s3_server, other), random_layers(seed=3))
    assert reader(s3_server, other, tmp_path).fetch(1).manifest["files"] not in (
        first["files"],
        second["files"],
    )


def test_a_store_that_trickles_is_given_up_on_after_the_deadline(
    s3_server: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint that answers a byte a second never trips botocore's read timeout."""
    monkeypatch.setattr(service.s3store, "JSON_DEADLINE", 1.0)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            try:
                listener.settimeout(0.2)
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n":
                    if stop.wait(0.5):
                        break
                    with contextlib.suppress(OSError):
                        conn.sendall(bytes([byte]))

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    store = reader(s3_server, bucket, tmp_path, f"http://127.0.0.1:{listener.getsockname()[1]}")
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnreadable, match="no answer within 1 s"):
            store.aliases()
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_failure_of_the_store_or_the_cache_is_retried_at_the_next_poll(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    publish_layers(writer(s3_server, bucket), random_layers(seed=1))
    cache = tmp_path / "cache"
    cache.write_text("a file where the cache folder should be")
    registry = ModelRegistry(reader(s3_server, bucket, cache), "production")
    assert registry.refresh() is False and registry.load_failures == 1
    cache.unlink()
    assert registry.refresh() is True and registry.get().version == 1

    with pytest.raises(LoadFailed) as failed:
        load_version(unreachable(s3_server, bucket, tmp_path / "empty"), 1)
    assert failed.value.transient


def test_a_corrupt_version_is_not_retried(s3_server: S3Server, bucket: str, tmp_path: Path):
    publish_layers(writer(s3_server, bucket), random_layers(seed=1))
    s3_server.client().put_object(Bucket=bucket, Key="store/mnist/1/model.keras", Body=b"x")
    store = reader(s3_server, bucket, tmp_path)
    registry = ModelRegistry(store, "production")
    assert registry.refresh() is False and registry.refresh() is False
    assert registry.load_failures == 1


def test_dot_dot_cannot_move_the_cache(s3_server: S3Server, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'..'"):
        S3Store("s3://b/../..", "mnist", tmp_path, client=s3_server.client())


def test_read_file_checks_the_bytes_it_returns(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    w = writer(s3_server, bucket)
    publish_layers(w, random_layers(seed=1))
    store = reader(s3_server, bucket, tmp_path)
    data = store.read_file(1, "model.keras", 1 << 20)
    assert data.startswith(b"PK")  # a zip, as published
    with pytest.raises(VersionCorrupt, match="over 100 bytes"):
        store.read_file(1, "model.keras", 100)
    with pytest.raises(FileNotFoundError):
        store.read_file(1, "model-card.md", 1 << 20)
    s3_server.client().put_object(Bucket=bucket, Key="store/mnist/1/model.keras", Body=b"PK!")
    with pytest.raises(VersionCorrupt, match="model.keras: checksum mismatch"):
        store.read_file(1, "model.keras", 1 << 20)
    with pytest.raises(ValueError):
        store.read_file(1, "../aliases.json", 1 << 20)
