"""Issue 16's targets on a real S3 server (SeaweedFS): two service processes on one bucket
follow a version `mnist-train --store s3://...` publishes and keep serving while the store is
away; two trainings publishing at once never show half a version."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from service.s3store import S3Store as S3Reader
from service.store import StoreUnreadable, VersionCorrupt
from tests.keras_files import publish_layers, random_layers
from tests.s3 import S3Server, seaweedfs
from tests.servers import Load, serve
from tests.uploads import digit_png
from training.s3store import S3Store

pytestmark = pytest.mark.integration
POLL = 1.0


def train(mnist_dir: Path, url: str, env: dict[str, str], *flags: str) -> subprocess.Popen:
    """`mnist-train` on 3,000 images for one epoch (a few seconds), published to `url`."""
    return subprocess.Popen(
        [sys.executable, "-m", "training.cli", "--quiet", "--data-dir", str(mnist_dir),
         "--store", url, "--train-limit", "3000", "--epochs", "1", "--min-accuracy", "0.5",
         "--no-savedmodel", "--real-world", "0", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MNIST_")}
        | env
        | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def test_two_servers_follow_a_new_version_and_outlive_the_store(
    mnist_dir: Path, tmp_path: Path
) -> None:
    with seaweedfs(tmp_path / "seaweedfs") as s3:  # its own: this test stops it
        bucket = s3.new_bucket()
        url = f"s3://{bucket}/store"
        first = S3Store(url, "mnist", client=s3.client())
        publish_layers(first, random_layers(seed=1), accuracy=0.1)
        first.set_alias("production", 1)
        servers = [
            serve(url, tmp_path, "--poll-interval", str(POLL), "--cache-dir",
                  str(tmp_path / f"cache-{n}"), "--no-access-log", env=s3.env)
            for n in range(2)
        ]  # fmt: skip
        with servers[0] as one, servers[1] as two:
            loads = [Load(server.url, digit_png(), threads=2) for server in (one, two)]
            with loads[0], loads[1]:
                time.sleep(0.5)
                trainer = train(mnist_dir, url, s3.env, "--promote", "production")
                lines = []
                for line in trainer.stdout:  # the moment the alias moved: its line printed
                    lines.append(line)
                    if line.startswith("promoted:"):
                        promoted = time.monotonic()
                trainer.stdout.close()
                output = "".join(lines)
                assert trainer.wait(timeout=300) == 0, output
                assert "promoted: 'production' -> version 2" in output
                for load in loads:
                    load.wait_for_version(2, timeout=30)
                served = [
                    min(a.received for a in load.answers if a.version == 2) - promoted
                    for load in loads
                ]
                time.sleep(0.5)
                s3.stop()  # the object store goes away mid-run
                stopped = time.monotonic()
                time.sleep(3 * POLL)
                for server in (one, two):
                    assert httpx.get(server.url + "/readyz").json()["version"] == 2
                    assert httpx.get(server.url + "/v1/models").status_code == 503
                    metrics = httpx.get(server.url + "/metrics").text
                    assert "mnist_store_read_failures_total 0.0" not in metrics
            logs = [server.log.read_text() for server in (one, two)]
    for load in loads:
        assert load.errors == []
        assert Counter(a.status for a in load.answers).keys() == {200}
        assert len([a for a in load.answers if a.sent > stopped]) > 10  # served on, store away
        assert [a.version for a in load.answers if a.sent > stopped + 0.1] != []
    assert max(served) <= 2 * POLL + 1.0, served  # two poll intervals, and a second to load
    for log in logs:
        assert "store unreadable for 0 s, keeping version 2" in log
    print(f"new version served by both {served} s after the promotion (poll {POLL} s)")


def test_concurrent_trainings_never_show_half_a_version(
    s3_server: S3Server, mnist_dir: Path, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket()
    url = f"s3://{bucket}/store"
    reader = S3Reader(url, "mnist", tmp_path / "cache", client=s3_server.client())
    seen: set[int] = set()
    problems: list[str] = []
    done = threading.Event()

    def watch() -> None:  # a server's view, as fast as it can look
        while not done.is_set():
            for version in reader.versions():
                if version not in seen:
                    try:
                        reader.fetch(version)
                        seen.add(version)
                    except (StoreUnreadable, VersionCorrupt) as exc:
                        problems.append(f"version {version}: {exc}")

    watcher = threading.Thread(target=watch)
    watcher.start()
    trainers = [train(mnist_dir, url, s3_server.env, "--promote", "production") for _ in range(2)]
    outputs = [trainer.communicate(timeout=600)[0] for trainer in trainers]
    done.set()
    watcher.join(30)
    assert [t.returncode for t in trainers] == [0, 0], outputs
    published = sorted(int(o.split("published mnist version ")[1].split()[0]) for o in outputs)
    assert published == [1, 2]
    store = S3Store(url, "mnist", client=s3_server.client())
    assert store.versions() == [1, 2]
    assert store.aliases()["production"] in (1, 2)
    assert all(store.verify(v) == [] for v in (1, 2))
    assert problems == []
    assert seen <= {1, 2}
