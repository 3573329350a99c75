"""Print the requirements of pyproject.toml's base dependencies plus the given extras.

Used by the Dockerfile to install dependencies in a layer of their own, before the source.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    """Base dependencies followed by those of each extra, in order, without repeats."""
    project = tomllib.loads(pyproject.read_text())["project"]
    found = list(project.get("dependencies", []))
    for extra in extras:
        found += project["optional-dependencies"][extra]
    return list(dict.fromkeys(found))


if __name__ == "__main__":
    print("\n".join(requirements(Path("pyproject.toml"), sys.argv[1:])))
