"""deploy/k8s/: every kustomization renders with kubectl's kustomize and passes Kubernetes'
strict schemas (KServe's InferenceService: KServe's own API types), and what the
manifests run is what the service and the trainer really accept: the container commands
go through the service's own settings parser and mnist-train's own argument parser, the
probes are the app's own routes on the port it listens on, and a pod is given the time
its drain and its slowest request need."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from service.settings import Settings
from tests.deploy import kserve_api
from tests.deploy.commands import (
    drain_seconds,
    flag_value,
    service_settings,
    train_args,
)
from tests.deploy.compose import load_compose
from tests.deploy.k8s import (
    KUSTOMIZATIONS,
    OVERLAYS,
    Object,
    command_line,
    container,
    environment,
    one,
    pod_spec,
    port_number,
    render,
)
from tests.tools import require_installed, require_module
from training.cli import EXIT_GATE

# The oldest Kubernetes the manifests are for (preStop's `sleep` action is on by default
# from 1.30), and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", "latest")
STORES = {"overlays/local": "/models", "overlays/s3": "s3://mnist-models/store"}
LIVENESS, READINESS = "/healthz", "/readyz"
KSERVE_LIVENESS, KSERVE_READINESS = "/v2/health/live", "/v2/health/ready"


def app_routes() -> set[tuple[str, str]]:
    """(method, path) of every route of the service's app."""
    app = create_app(Settings(store=Path("unused")))  # routes only: no lifespan runs
    return {(m, r.path) for r in app.routes for m in getattr(r, "methods", None) or ()}


# Every place the serve image runs: (kustomization, workload kind, container name).
SERVING = [("overlays/local", "Deployment", "api"), ("overlays/s3", "Deployment", "api"),
           ("kserve", "InferenceService", "kserve-container")]  # fmt: skip


def kserve_wheel() -> Path:
    return require_installed(kserve_api.kserve_wheel() or kserve_api.KSERVE_WHEELS / "kserve-*.whl")


# -- rendering and schemas ---------------------------------------------------------------


API = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "CronJob"}


@pytest.mark.parametrize(
    ("kustomization", "kinds"),
    [
        ("base", API),
        ("overlays/local", API | {"PersistentVolumeClaim"}),
        ("overlays/s3", API | {"ConfigMap"}),
        ("kserve", {"ServiceAccount", "InferenceService"}),
    ],
)
def test_every_kustomization_renders(kustomization: str, kinds: set[str]) -> None:
    assert {o["kind"] for o in render(kustomization)} == kinds


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_rendered_objects_pass_kubernetes_strict_schemas(kustomization: str, version: str) -> None:
    validate = require_module("kubernetes_validate")
    version = validate.latest_version() if version == "latest" else version
    for obj in render(kustomization):
        if obj["kind"] == "InferenceService":
            continue  # KServe's, checked against KServe's types below
        try:
            validate.validate(obj, version, strict=True)
        except validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']} ({version}): {exc.message}")


def test_strict_schemas_would_catch_a_misspelt_field() -> None:
    validate = require_module("kubernetes_validate")
    deployment = copy.deepcopy(one(render("overlays/s3"), "Deployment"))
    container(deployment, "api")["readinesProbe"] = {"httpGet": {"path": READINESS}}
    with pytest.raises(validate.ValidationError, match="readinesProbe"):
        validate.validate(deployment, validate.latest_version(), strict=True)


def kserve_validator() -> Any:
    """A validator of InferenceServices from KServe's SDK wheel and Kubernetes' schemas."""
    jsonschema = require_module("jsonschema")
    referencing = require_module("referencing")
    validate = require_module("kubernetes_validate")
    wheel = kserve_wheel()
    definitions = kserve_api.kubernetes_definitions(validate.latest_version())
    schema, _unresolved = kserve_api.inference_service_schema(
        kserve_api.api_types(wheel), definitions
    )
    registry = referencing.Registry().with_resource(
        kserve_api.K8S_DEFINITIONS, referencing.Resource.from_contents(definitions)
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def test_inference_service_matches_kserves_own_api_types() -> None:
    isvc = one(render("kserve"), "InferenceService")
    errors = kserve_validator().iter_errors(isvc)
    assert not [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


@pytest.mark.parametrize(
    ("where", "misspelt"),
    [((), "metdata"), (("spec", "predictor"), "minReplica"),
     (("spec", "predictor", "containers", 0), "readinesProbe")],
)  # fmt: skip
def test_kserve_check_would_catch_a_misspelt_field(where: tuple[Any, ...], misspelt: str) -> None:
    isvc = copy.deepcopy(one(render("kserve"), "InferenceService"))
    target = isvc
    for key in where:
        target = target[key]
    target[misspelt] = {}
    assert any(misspelt in e.message for e in kserve_validator().iter_errors(isvc))


# -- the api: command, ports, probes, shutdown ---------------------------------------------


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_api_runs_mnist_serve_with_its_own_flags(kustomization: str, monkeypatch: Any) -> None:
    objects = render(kustomization)
    api = container(one(objects, "Deployment"), "api")
    words = command_line(api, objects)
    settings = service_settings(words, environment(api, objects), monkeypatch)
    assert settings.host == "0.0.0.0" and settings.workers == 1  # replicas, not processes
    assert flag_value(words, "--store") == STORES[kustomization]
    assert settings.store == STORES[kustomization]  # what the service will open
    assert settings.alias == "production"
    assert api["image"] == load_compose()["services"]["api"]["image"]


@pytest.mark.parametrize(("kustomization", "kind", "name"), SERVING)
def test_probes_are_the_apps_routes_on_the_port_it_listens_on(
    kustomization: str, kind: str, name: str, monkeypatch: Any
) -> None:
    objects = render(kustomization)
    serve = container(one(objects, kind), name)
    env = environment(serve, objects)
    settings = service_settings(command_line(serve, objects), env, monkeypatch)
    assert [p["containerPort"] for p in serve["ports"]] == [settings.port]
    routes = app_routes()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = serve[probe]["httpGet"]
        assert port_number(get["port"], serve) == settings.port, probe
        if kustomization != "kserve" or ("GET", KSERVE_LIVENESS) in routes:
            assert ("GET", get["path"]) in routes, f"{probe}: {get['path']} is not a route"
    if kustomization != "kserve":
        assert serve["livenessProbe"]["httpGet"]["path"] == LIVENESS
        assert serve["startupProbe"]["httpGet"]["path"] == LIVENESS
        assert serve["readinessProbe"]["httpGet"]["path"] == READINESS
        (port,) = one(objects, "Service")["spec"]["ports"]
        assert port_number(port["targetPort"], serve) == settings.port


@pytest.mark.parametrize(("kustomization", "kind", "name"), SERVING)
def test_grace_period_outlasts_prestop_drain_and_the_slowest_request(
    kustomization: str, kind: str, name: str, monkeypatch: Any
) -> None:
    objects = render(kustomization)
    workload = one(objects, kind)
    serve = container(workload, name)
    words = command_line(serve, objects)
    settings = service_settings(words, environment(serve, objects), monkeypatch)
    pre_stop = serve["lifecycle"]["preStop"]["sleep"]["seconds"]
    needed = pre_stop + drain_seconds(settings, words) + settings.request_timeout
    assert pod_spec(workload)["terminationGracePeriodSeconds"] > needed


def test_liveness_never_reads_the_store_and_readiness_waits_for_a_model(
    make_client: Any, tiny_store: Any, tmp_path: Path
) -> None:
    serving = make_client(tiny_store)
    shutil.rmtree(tiny_store.root)  # the store is gone: liveness must not care
    assert serving.get(LIVENESS).status_code == 200
    assert serving.get(READINESS).status_code == 200  # the loaded model still serves
    (tmp_path / "empty").mkdir()
    waiting = make_client(tmp_path / "empty")
    assert waiting.get(READINESS).status_code == 503
    assert waiting.get(LIVENESS).status_code == 200


def test_api_has_requests_limits_and_runs_as_the_images_user() -> None:
    deployment = one(render("base"), "Deployment")
    api = container(deployment, "api")
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(api["resources"][kind]), kind
    assert pod_spec(deployment)["securityContext"]["runAsUser"] == 10001  # the Dockerfile's
    assert api["securityContext"]["readOnlyRootFilesystem"] is True
    assert "/tmp" in {m["mountPath"] for m in api["volumeMounts"]}  # metrics, temp files


def test_autoscaler_disruption_budget_and_service_select_the_api() -> None:
    objects = render("base")
    deployment, service = one(objects, "Deployment"), one(objects, "Service")
    hpa, pdb = one(objects, "HorizontalPodAutoscaler"), one(objects, "PodDisruptionBudget")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert "replicas" not in deployment["spec"]  # the autoscaler owns it
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()


# -- retraining ---------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", OVERLAYS)
def test_retraining_job_is_a_valid_mnist_train_run(kustomization: str, monkeypatch: Any) -> None:
    objects = render(kustomization)
    cronjob = one(objects, "CronJob")
    trainer = container(cronjob, "trainer")
    words = command_line(trainer, objects)
    args = train_args(words, environment(trainer, objects), monkeypatch)
    assert (args.recipe, args.promote, args.no_worse_than) == ("best", "production", "production")
    assert args.min_accuracy >= 0.99
    assert flag_value(words, "--store") == STORES[kustomization] == args.store
    assert trainer["image"] == load_compose()["services"]["trainer"]["image"]
    job = cronjob["spec"]["jobTemplate"]["spec"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    (rule,) = job["podFailurePolicy"]["rules"]  # the gate's refusal is not retried
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [EXIT_GATE]


# -- the overlays -------------------------------------------------------------------------


def volume_sources(workload: Object, name: str) -> dict[str, tuple[Object, Object]]:
    """mount path -> (volumeMount, volume) of a container."""
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    mounts = container(workload, name).get("volumeMounts", [])
    return {m["mountPath"]: (m, volumes[m["name"]]) for m in mounts}


def test_local_overlay_shares_a_read_write_many_claim_read_only_with_the_api() -> None:
    objects = render("overlays/local")
    claim = one(objects, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    mount, volume = volume_sources(one(objects, "Deployment"), "api")["/models"]
    assert mount["readOnly"] and volume["persistentVolumeClaim"]["readOnly"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    mount, volume = volume_sources(one(objects, "CronJob"), "trainer")["/models"]
    assert not mount.get("readOnly") and not volume["persistentVolumeClaim"].get("readOnly")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_s3_overlay_reads_the_bucket_with_keys_from_secrets_and_caches_in_an_empty_dir() -> None:
    objects = render("overlays/s3")
    deployment, cronjob = one(objects, "Deployment"), one(objects, "CronJob")
    for workload, name, secret in ((deployment, "api", "mnist-s3-read"),
                                   (cronjob, "trainer", "mnist-s3-write")):  # fmt: skip
        assert not any("persistentVolumeClaim" in v for v in pod_spec(workload).get("volumes", []))
        env = environment(container(workload, name), objects)
        assert env["MNIST_STORE"] == STORES["overlays/s3"]
        assert {"AWS_ENDPOINT_URL", "AWS_REGION"} <= set(env)
        keys = {v["name"]: v["valueFrom"]["secretKeyRef"]["name"]
                for v in container(workload, name)["env"] if "valueFrom" in v}  # fmt: skip
        assert keys == {"AWS_ACCESS_KEY_ID": secret, "AWS_SECRET_ACCESS_KEY": secret}
    env = environment(container(deployment, "api"), objects)
    mount, volume = volume_sources(deployment, "api")[env["MNIST_CACHE_DIR"]]
    assert "emptyDir" in volume


# -- KServe -------------------------------------------------------------------------------


def test_kserve_predictor_is_a_v2_custom_container_over_the_s3_store(monkeypatch: Any) -> None:
    constants = kserve_api.constants(kserve_wheel())
    objects = render("kserve")
    isvc = one(objects, "InferenceService")
    serve = container(isvc, "kserve-container")  # the name KServe looks for
    env = environment(serve, objects)
    words = command_line(serve, objects)
    settings = service_settings(words, env, monkeypatch)
    assert settings.port == constants["DEFAULT_HTTP_PORT"]
    assert env["PROTOCOL"] == constants["PredictorProtocol.REST_V2"]
    assert env["STORAGE_URI"] == STORES["overlays/s3"]  # the bucket the s3 overlay reads
    assert flag_value(words, "--store") == "/mnt/models"  # where KServe downloads it
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    account = one(objects, "ServiceAccount")
    assert isvc["spec"]["predictor"]["serviceAccountName"] == account["metadata"]["name"]
    assert account["secrets"] == [{"name": "mnist-s3-read"}]


def test_kserve_probes_are_the_v2_protocols_health_routes() -> None:
    protocol = kserve_api.v2_routes(kserve_wheel())  # what KServe's own model server serves
    serve = container(one(render("kserve"), "InferenceService"), "kserve-container")
    assert ("GET", serve["livenessProbe"]["httpGet"]["path"]) == ("GET", KSERVE_LIVENESS)
    assert ("GET", serve["readinessProbe"]["httpGet"]["path"]) == ("GET", KSERVE_READINESS)
    assert {("GET", KSERVE_LIVENESS), ("GET", KSERVE_READINESS)} <= protocol
    routes = app_routes()
    if not any(path.startswith("/v2/") for _, path in routes):
        pytest.skip("the service has no /v2 routes yet (being added beside these manifests)")
    assert {("GET", KSERVE_LIVENESS), ("GET", KSERVE_READINESS)} <= routes
    assert any(m == "POST" and re.fullmatch(r"/v2/models/(\{\w+\}|mnist)/infer", p)
               for m, p in routes)  # fmt: skip
