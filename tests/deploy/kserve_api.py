"""KServe's API, offline: its InferenceService as a strict JSON schema, its constants and
its v2 (Open Inference Protocol) routes.

KServe's CRD is not on any package registry, but its Python SDK (the `kserve` wheel on PyPI)
carries the API types the CRD is generated from: one class per Go struct, each with
`openapi_types` (field -> type) and `attribute_map` (field -> JSON key), beside the model
server's constants and routes. `make install` downloads the wheel without installing it
(.venv/share/kserve/); its files are read with `ast`, never imported. The API classes become
JSON schemas that refuse unknown keys, and the Kubernetes types they embed (containers,
probes, volumes, object metadata) point at kubernetes-validate's strict schemas, so a
misspelt key fails wherever it is.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

KSERVE_WHEELS = Path(sys.prefix) / "share" / "kserve"
K8S_DEFINITIONS = "https://kubernetes.io/api/_definitions.json"  # the $id in kubernetes-validate
PRIMITIVES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "object": {},
    "datetime": {"type": "string"},
}
LIST = re.compile(r"^list\[(.+)\]$")
DICT = re.compile(r"^dict\(str, (.+)\)$")


def kserve_wheel() -> Path | None:
    """The KServe SDK wheel `make install` put beside the venv, if it is there."""
    return max(KSERVE_WHEELS.glob("kserve-*.whl"), default=None)


def api_types(wheel: Path) -> dict[str, dict[str, str]]:
    """KServe's generated API classes: class name -> {JSON key: OpenAPI type}."""
    classes = {}
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith("kserve/models/") and name.endswith(".py"):
                tree = ast.parse(archive.read(name))
                classes |= {node.name: _fields(node) for node in tree.body if _is_model(node)}
    return classes


def _is_model(node: ast.stmt) -> bool:
    return isinstance(node, ast.ClassDef) and "openapi_types" in _assignments(node)


def _assignments(node: ast.ClassDef) -> dict[str, Any]:
    return {
        statement.targets[0].id: ast.literal_eval(statement.value)
        for statement in node.body
        if isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name)
        if statement.targets[0].id in ("openapi_types", "attribute_map")
    }


def _fields(node: ast.ClassDef) -> dict[str, str]:
    values = _assignments(node)
    return {values["attribute_map"][attr]: kind for attr, kind in values["openapi_types"].items()}


def kubernetes_definitions(version: str) -> dict[str, Any]:
    """kubernetes-validate's strict definitions for one Kubernetes version ("1.37.0")."""
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    return json.loads((folder / f"v{version}-local-strict" / "_definitions.json").read_text())


def inference_service_schema(
    classes: dict[str, dict[str, str]], definitions: dict[str, Any]
) -> tuple[dict[str, Any], set[str]]:
    """The schema of a serving.kserve.io/v1beta1 InferenceService, and the type names it
    could not resolve (accepted as anything)."""
    unresolved: set[str] = set()

    def schema(kind: str) -> dict[str, Any]:
        if kind in PRIMITIVES:
            return PRIMITIVES[kind]
        if match := LIST.match(kind):
            return {"type": ["array", "null"], "items": schema(match[1])}
        if match := DICT.match(kind):
            return {"type": ["object", "null"], "additionalProperties": schema(match[1])}
        if kind in classes:
            return {"$ref": f"#/$defs/{kind}"}
        if target := _kubernetes_name(kind, definitions["$defs"]):
            return {"$ref": f"{K8S_DEFINITIONS}#/$defs/{target}"}
        unresolved.add(kind)
        return {}

    defs = {
        name: {
            "type": "object",
            "properties": {key: schema(kind) for key, kind in fields.items()},
            "additionalProperties": False,
        }
        for name, fields in classes.items()
    }
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": defs,
        "allOf": [{"$ref": "#/$defs/V1beta1InferenceService"}],
        "properties": {
            "apiVersion": {"const": "serving.kserve.io/v1beta1"},
            "kind": {"const": "InferenceService"},
        },
        "required": ["apiVersion", "kind", "metadata", "spec"],
    }
    return root, unresolved


def _kubernetes_name(kind: str, definitions: dict[str, Any]) -> str | None:
    """The Kubernetes definition a generated type name stands for: V1Container ->
    io.k8s.api.core.v1.Container, K8sIoApiAppsV1DeploymentStrategy ->
    io.k8s.api.apps.v1.DeploymentStrategy, ResourceQuantity -> ...resource.Quantity."""
    if kind == "ResourceQuantity":
        return "io.k8s.apimachinery.pkg.api.resource.Quantity"
    if match := re.fullmatch(r"K8sIoApi([A-Z][a-z]+)(V\d\w*?)([A-Z]\w+)", kind):
        group, version, name = match.groups()
        target = f"io.k8s.api.{group.lower()}.{version.lower()}.{name}"
        return target if target in definitions else None
    if match := re.fullmatch(r"V1([A-Z]\w+)", kind):
        for prefix in ("io.k8s.api.core.v1.", "io.k8s.apimachinery.pkg.apis.meta.v1."):
            if prefix + match[1] in definitions:
                return prefix + match[1]
    return None


def _module(wheel: Path, path: str) -> ast.Module:
    with zipfile.ZipFile(wheel) as archive:
        return ast.parse(archive.read(path))


def constants(wheel: Path) -> dict[str, Any]:
    """The literals of kserve/constants/constants.py: NAME and Enum.MEMBER -> value."""
    values: dict[str, Any] = {}
    for node in _module(wheel, "kserve/constants/constants.py").body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            values |= {t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)}
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.Assign) and isinstance(member.value, ast.Constant):
                    values[f"{node.name}.{member.targets[0].id}"] = member.value.value
    return values


def v2_routes(wheel: Path) -> set[tuple[str, str]]:
    """(method, path) of every route KServe's own model server registers for the v2
    protocol (kserve/protocol/rest/v2_endpoints.py)."""
    prefix = constants(wheel)["V2_ROUTE_PREFIX"]
    routes = set()
    for node in ast.walk(_module(wheel, "kserve/protocol/rest/v2_endpoints.py")):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_api_route":
            methods = next(k.value for k in node.keywords if k.arg == "methods")
            path = prefix + ast.literal_eval(node.args[0])
            routes |= {(method, path) for method in ast.literal_eval(methods)}
    return routes
