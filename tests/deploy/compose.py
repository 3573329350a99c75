"""Read docker-compose.yml the way `docker compose` would: variables interpolated; and the
compose files as the Compose CLI itself merges them (`docker-compose config`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO
from tests.tools import require_installed

COMPOSE_FILE = REPO / "docker-compose.yml"
S3_FILE = REPO / "docker-compose.s3.yml"  # the S3 store and scalable api, over COMPOSE_FILE
COMPOSE_CLI = Path(sys.executable).parent / "docker-compose"  # put there by `make install`
# ${NAME}, ${NAME:-default} (default if unset or empty), ${NAME-default} (if unset)
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Substitute compose variables in every string of a parsed compose document."""
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            name, operator, default = match.groups()
            if operator == ":-":
                return env.get(name) or default
            if operator == "-":
                return env.get(name, default)
            return env.get(name, "")

        return VARIABLE.sub(one, value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def load_compose(env: dict[str, str] | None = None, path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose document with variables substituted from `env` (default: none set)."""
    return interpolate(yaml.safe_load(path.read_text()), env if env is not None else {})


def compose_config(*files: Path) -> dict[str, Any]:
    """The model `docker compose -f FILE... config` builds (files merged, no variable set,
    paths made absolute), as JSON. No Docker engine is needed for it."""
    cli = require_installed(COMPOSE_CLI)
    args = [str(cli), *(arg for f in files for arg in ("-f", str(f))), "config", "--format", "json"]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
