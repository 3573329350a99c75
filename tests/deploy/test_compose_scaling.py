"""`docker compose -f docker-compose.yml -f docker-compose.s3.yml up --scale api=3`: the
files as the Compose CLI merges them, the commands through the service's and the
trainer's own parsers, and the proxy and Prometheus finding every replica."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.deploy.commands import (
    drain_seconds,
    flag_value,
    service_settings,
    train_args,
)
from tests.deploy.compose import COMPOSE_CLI, COMPOSE_FILE, S3_FILE, compose_config
from tests.deploy.test_deploy_files import compose_schema
from tests.tools import require_installed

BUCKET_STORE = "s3://mnist-models/store"
SEAWEEDFS_CONFIG = REPO / "deploy" / "seaweedfs" / "s3.json"
NGINX_CONFIG = REPO / "deploy" / "nginx" / "nginx.conf"
STACKS = {"volume": (COMPOSE_FILE,), "s3": (COMPOSE_FILE, S3_FILE)}


def s3_services() -> dict[str, Any]:
    return compose_config(*STACKS["s3"])["services"]


def seconds(duration: str) -> float:
    """A compose duration such as "30s" or "1m30s"."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def identity(access_key: str) -> dict[str, Any]:
    """SeaweedFS's identity with this access key (deploy/seaweedfs/s3.json)."""
    identities = json.loads(SEAWEEDFS_CONFIG.read_text())["identities"]
    (found,) = [i for i in identities for c in i["credentials"] if c["accessKey"] == access_key]
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_the_compose_cli_merges_each_stack_into_a_valid_model(stack: str, tmp_path: Path) -> None:
    merged = tmp_path / "compose.json"
    merged.write_text(json.dumps(compose_config(*STACKS[stack])))
    proc = compose_schema(merged)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_compose_cli_would_catch_a_broken_file(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  api:\n    image: x\n    depends_on: [nowhere]\n")
    cli = require_installed(COMPOSE_CLI)
    proc = subprocess.run([cli, "-f", bad, "config"], capture_output=True, check=False)
    assert proc.returncode != 0 and b"nowhere" in proc.stderr


def test_the_api_is_scalable_and_reads_the_bucket(monkeypatch: Any) -> None:
    api = s3_services()["api"]
    assert "container_name" not in api and "ports" not in api  # N replicas, behind the proxy
    assert "volumes" not in api  # nothing shared between replicas but the bucket
    settings = service_settings(api["command"], api["environment"], monkeypatch)
    assert settings.host == "0.0.0.0" and settings.port == 8000
    env = api["environment"]
    assert env["MNIST_STORE"] == BUCKET_STORE
    assert env["AWS_ENDPOINT_URL"] == "http://seaweedfs:8333"
    assert env["MNIST_CACHE_DIR"].startswith(tuple(api["tmpfs"]))  # writable though read_only
    assert api["read_only"] is True
    assert "Write" not in identity(env["AWS_ACCESS_KEY_ID"])["actions"]
    assert api["depends_on"]["trainer"]["condition"] == "service_completed_successfully"


def test_the_trainer_publishes_into_the_bucket_once(monkeypatch: Any) -> None:
    services = s3_services()
    trainer = services["trainer"]
    args = train_args(trainer["command"], trainer["environment"], monkeypatch)
    assert args.if_empty and args.promote == "production"
    assert flag_value(trainer["command"], "--store") == BUCKET_STORE
    assert "Write" in identity(trainer["environment"]["AWS_ACCESS_KEY_ID"])["actions"]
    assert [v["target"] for v in trainer["volumes"]] == ["/data/mnist"]  # no models volume
    assert trainer["depends_on"]["buckets"]["condition"] == "service_completed_successfully"


def test_seaweedfs_serves_s3_with_the_identities_and_a_bucket_step() -> None:
    services = s3_services()
    seaweedfs, buckets = services["seaweedfs"], services["buckets"]
    assert re.fullmatch(r"chrislusf/seaweedfs:\d+\.\d+", seaweedfs["image"])  # pinned
    config = flag_value(seaweedfs["command"], "-s3.config")
    (mount,) = [v for v in seaweedfs["volumes"] if v["target"] == config]
    assert Path(mount["source"]) == SEAWEEDFS_CONFIG and mount["read_only"]
    assert "/healthz" in " ".join(seaweedfs["healthcheck"]["test"])
    for env in (services["api"]["environment"], services["trainer"]["environment"]):
        (credentials,) = identity(env["AWS_ACCESS_KEY_ID"])["credentials"]
        assert env["AWS_SECRET_ACCESS_KEY"] == credentials["secretKey"]
    bucket = BUCKET_STORE.removeprefix("s3://").split("/")[0]
    assert f"s3.bucket.create -name {bucket}" in " ".join(buckets["command"])
    assert buckets["image"] == seaweedfs["image"]
    assert buckets["depends_on"]["seaweedfs"]["condition"] == "service_healthy"


def test_every_service_of_the_s3_stack_restarts_and_is_bounded() -> None:
    for name, service in s3_services().items():
        assert "restart" in service, name
        assert service["deploy"]["resources"]["limits"]["memory"], name


@pytest.mark.parametrize("stack", STACKS)
def test_a_stopping_replica_gets_its_drain_and_slowest_request(
    stack: str, monkeypatch: Any
) -> None:
    api = compose_config(*STACKS[stack])["services"]["api"]
    settings = service_settings(api["command"], api.get("environment", {}), monkeypatch)
    needed = drain_seconds(settings, api["command"]) + settings.request_timeout
    assert seconds(api["stop_grace_period"]) > needed


def test_the_proxy_resolves_the_replicas_again_while_it_runs() -> None:
    text = NGINX_CONFIG.read_text()
    assert re.search(r"^\s*resolver 127\.0\.0\.11 valid=\d+s", text, re.M)  # Docker's DNS
    upstream = re.search(r"upstream mnist_api \{(.*?)\}", text, re.S)[1]
    assert "zone mnist_api" in upstream and "server api:8000 resolve;" in upstream
    # `resolve` in an upstream is in open-source nginx from 1.27.3 on.
    image = compose_config(COMPOSE_FILE)["services"]["proxy"]["image"]
    version = tuple(int(n) for n in image.removeprefix("nginx:").split("."))
    assert version >= (1, 27, 3), image


def test_prometheus_scrapes_every_replica() -> None:
    config = (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text()
    job = config.split("job_name: mnist-api", 1)[1].split("job_name:", 1)[0]
    assert "dns_sd_configs" in job and '["api"]' in job and "port: 8000" in job
