"""The compose file, run natively: the trainer's and the api's commands as written there.

No Docker engine runs here, so this test takes `docker-compose.yml` at its word: it runs the
`trainer` service's command with its environment (container paths mapped to temp folders),
runs it again to see the one-shot skip, starts the `api` service's command, waits for the
service's own healthcheck command to pass, and classifies an image. If the compose file
and the code drift apart, this fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.deploy.compose import load_compose
from tests.servers import free_port
from tests.uploads import png

pytestmark = pytest.mark.integration


def native(command: list[str], paths: dict[str, str], port: int | None = None) -> list[str]:
    """A container command for this machine: our interpreter, host paths, a free port."""
    out = []
    for arg in command:
        arg = sys.executable if arg == "python" else arg
        for container, host in paths.items():
            arg = arg.replace(container, host)
        if port is not None:
            arg = arg.replace("8000", str(port))
        out.append(arg)
    return out


def native_env(service: dict, paths: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MNIST_", "PUSHGATEWAY"))}
    for key, value in (service.get("environment") or {}).items():
        for container, host in paths.items():
            value = str(value).replace(container, host)
        env[key] = value
    return env


def test_trainer_then_api_as_compose_runs_them(mnist_dir: Path, tmp_path: Path) -> None:
    services = load_compose()["services"]
    trainer, api = services["trainer"], services["api"]
    paths = {"/models": str(tmp_path / "models"), "/data/mnist": str(mnist_dir),
             "/tmp/metrics": str(tmp_path / "metrics")}  # fmt: skip

    first = subprocess.run(native(trainer["command"], paths), env=native_env(trainer, paths),
                           capture_output=True, text=True, timeout=900)  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    assert "published mnist version 1" in first.stdout
    again = subprocess.run(native(trainer["command"], paths), env=native_env(trainer, paths),
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0 and "nothing to do" in again.stdout

    port = free_port()
    log = (tmp_path / "api.log").open("w")
    server = subprocess.Popen(native(api["command"], paths, port), env=native_env(api, paths),
                              stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    healthcheck = native(api["healthcheck"]["test"][1:], paths, port)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(healthcheck, capture_output=True).returncode != 0:
            assert server.poll() is None, (tmp_path / "api.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the compose healthcheck never passed"
            time.sleep(0.2)
        digit = np.zeros((28, 28), np.uint8)
        digit[4:24, 13:16] = 255
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/predict",
                            files={"file": ("one.png", png(digit), "image/png")})  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 1 and answer.json()["digit"] == 1
    assert server.returncode == 0
