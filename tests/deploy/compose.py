"""Read docker-compose.yml the way `docker compose` would: variables interpolated."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"
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
