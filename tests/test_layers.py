"""The architecture as tests: pure modules import no web framework and no metrics, the
course's own networks no TensorFlow and nothing of the service, and the service's modules
import each other without a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PURE = [
    "service.errors",
    "service.oip",
    "service.imaging.decode",
    "service.imaging.png",
    "service.imaging.ink",
    "service.imaging.components",
    "service.imaging.mnist",
    "service.runtime",
    "service.store",
    "service.s3store",
    "training.gate",
    "training.realworld.evaluation",
]
EDGE = ("fastapi", "starlette", "prometheus_client", "uvicorn")
# The lecture's networks run without TensorFlow, and share only a format with the service;
# the neurons are NumPy alone (scikit-learn is for the network's data).
LECTURE = {
    "training.lecture": {"tensorflow", "keras", "service", "sklearn"},
    "training.lecture.neurons": {"tensorflow", "keras", "service", "sklearn", "scipy"},
    "training.lecture.network": {"tensorflow", "keras", "service"},
}


def top_level_modules_loaded_by(module: str) -> set[str]:
    code = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return set(ast.literal_eval(done.stdout.strip()))


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_imports_no_web_framework_and_no_metrics(module: str) -> None:
    loaded = top_level_modules_loaded_by(module)
    assert not loaded & set(EDGE), f"{module} pulls in {sorted(loaded & set(EDGE))}"


@pytest.mark.parametrize("module", sorted(LECTURE))
def test_the_lectures_networks_import_no_tensorflow_and_nothing_of_the_service(
    module: str,
) -> None:
    loaded = top_level_modules_loaded_by(module)
    assert not loaded & LECTURE[module], f"{module} pulls in {sorted(loaded & LECTURE[module])}"


def imports_of(path: Path) -> set[str]:
    """The service.* modules a module imports at run time (TYPE_CHECKING blocks aside)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("service"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("service"))
    return found


def test_service_modules_import_each_other_without_a_cycle() -> None:
    modules = {
        ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (REPO / "service").rglob("*.py")
    }
    graph = {name: imports_of(path) & set(modules) for name, path in modules.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycle = trail[trail.index(target) :] + [target]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, [*trail, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert "service.inference" in graph and graph["service.batching"]
