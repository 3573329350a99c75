"""The S3 stack (docker-compose.yml + docker-compose.s3.yml), run natively as `--scale api=3`:
SeaweedFS with the stack's identities, the `buckets` step's own script, the trainer's
command, three api replicas with their command and environment, nginx in front with the
stack's config. No Docker engine runs here, so this takes the merged compose model (from
the Compose CLI itself) at its word; if the files and the code drift apart, this fails."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.deploy.test_compose_scaling import SEAWEEDFS_CONFIG, s3_services
from tests.s3 import seaweedfs, weed_binary
from tests.servers import free_port, nginx_in_front, wait_until_ok
from tests.uploads import digit_png

pytestmark = pytest.mark.integration


def native(words: list[str], replace: dict[str, str]) -> list[str]:
    out = []
    for word in words:
        word = sys.executable if word == "python" else word
        for container, host in replace.items():
            word = word.replace(container, host)
        out.append(word)
    return out


def native_env(service: dict, replace: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MNIST_", "AWS_"))}
    for key, value in (service.get("environment") or {}).items():
        for container, host in replace.items():
            value = str(value).replace(container, host)
        env[key] = value
    return env


def test_three_replicas_on_the_bucket_behind_nginx(mnist_dir: Path, tmp_path: Path) -> None:
    services = s3_services()
    weed = services["seaweedfs"]
    assert "-s3.config=/etc/seaweedfs/s3.json" in weed["command"]
    with seaweedfs(tmp_path / "weed", f"-s3.config={SEAWEEDFS_CONFIG}") as s3:
        hosts = {
            "http://seaweedfs:8333": s3.endpoint,
            # HOST:PORT.GRPC_PORT: weed shell assumes PORT + 10000 for gRPC otherwise.
            "seaweedfs:9333": f"127.0.0.1:{s3.ports['master.port']}.{s3.ports['master.port.grpc']}",
            "seaweedfs:8888": f"127.0.0.1:{s3.ports['filer.port']}.{s3.ports['filer.port.grpc']}",
            "/data/mnist": str(mnist_dir),
        }
        # The bucket step, its script as written (weed shell talks to master and filer).
        buckets = services["buckets"]
        # Compose passes `$$` on as `$`: the config output keeps it escaped.
        script = native(buckets["command"], hosts)[0].replace("$$", "$")
        env = {"PATH": f"{Path(weed_binary()).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
        for _ in range(2):  # the second run finds the bucket and leaves it
            done = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True,
                                  text=True, timeout=120, cwd=tmp_path)  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            assert re.search(r"\bmnist-models\b", done.stdout)

        trainer = services["trainer"]
        done = subprocess.run(
            native(trainer["command"], hosts), env=native_env(trainer, hosts),
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "published mnist version 1 at s3://mnist-models/store/mnist/1" in done.stdout

        api = services["api"]
        replicas, ports = [], []
        for n in range(3):
            port = free_port()
            replace = {**hosts, "8000": str(port), "/tmp/metrics": str(tmp_path / f"m{n}"),
                       "/tmp/mnist-cache": str(tmp_path / f"cache{n}")}  # fmt: skip
            with (tmp_path / f"api{n}.log").open("w") as log:  # the child keeps its own copy
                replicas.append(
                    subprocess.Popen(
                        native(api["command"], replace),
                        env=native_env(api, replace),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            ports.append(port)
        try:
            for port in ports:
                wait_until_ok(f"http://127.0.0.1:{port}/readyz", timeout=120)
            with nginx_in_front([f"127.0.0.1:{p}" for p in ports], tmp_path) as url:
                image = digit_png()
                with httpx.Client(base_url=url, timeout=10) as client:
                    answers = [
                        client.post("/v1/predict", files={"file": ("d.png", image)})
                        for _ in range(60)
                    ]
                    assert {a.status_code for a in answers} == {200}
                    assert {a.json()["version"] for a in answers} == {1}
                    served = [
                        httpx.get(f"http://127.0.0.1:{p}/metrics").text.count(
                            'mnist_http_requests_total{method="POST",route="/v1/predict",status="200"}'
                        )
                        for p in ports
                    ]
                    assert all(served), "each replica took part"
                    # One replica stops (scale down): the proxy sends on to the others.
                    replicas[2].send_signal(signal.SIGTERM)
                    answers = [
                        client.post("/v1/predict", files={"file": ("d.png", image)})
                        for _ in range(60)
                    ]
                    assert {a.status_code for a in answers} == {200}
                    assert replicas[2].wait(timeout=60) == 0
        finally:
            for process in replicas:
                if process.poll() is None:
                    process.terminate()
                    process.wait(timeout=30)
