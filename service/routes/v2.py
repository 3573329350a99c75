"""The Open Inference Protocol (KServe v2, Triton's HTTP API) on the served model: health,
server and model metadata, readiness, and inference, with the binary tensor data extension.

Ordinary FastAPI routes in the one route table, behind the same guards as /v1; their errors,
the guards' included, are the protocol's `{"error": <message>}` (`routes/errors.py`). `infer`
reads its body itself, as /v1/predict does: a JSON object, then binary tensor data after
Inference-Header-Content-Length bytes (`service.oip`). Encoded images go the way of
/v1/predict's (one) or /v1/predict/batch's (several) uploads, and MNIST samples straight to
the forward pass: both through a micro-batcher shared with concurrent requests.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from service import oip
from service.batching import MicroBatcher
from service.deps import DrainDep, RegistryDep
from service.errors import ModelNotFound, ModelNotReady, UnsupportedEncoding
from service.imaging.decode import Picture
from service.inference import read_images, run_maybe_offloaded
from service.registry import LoadedModel, ModelRegistry, version_not_found
from service.routes.errors import OIP_PREFIX, oip_error_responses
from service.schemas import (
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from service.settings import Settings
from service.store import StoreUnreadable

router = APIRouter(prefix=OIP_PREFIX, tags=["v2"])

SERVER_NAME = "mnist-serving"
ModelName = Annotated[str, Path(description="the served model's name (`--model`, mnist)")]
Version = Annotated[int, Path(ge=1, le=2**31 - 1, description="a version in the store")]

_parameters = {
    "type": "object",
    "additionalProperties": {"anyOf": [{"type": t} for t in ("string", "number", "boolean")]},
}
_input = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string", "enum": list(oip.INPUTS)},
        "datatype": {"type": "string", "enum": [t.datatype for t in oip.INPUTS.values()]},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "parameters": _parameters,
        "data": {
            "type": "array",
            "description": "numbers (flat or nested), or base64 strings for image_file; "
            "absent when the parameter binary_data_size gives the size of its binary data",
        },
    },
}
_output = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "enum": list(oip.OUTPUTS)},
        "parameters": _parameters,
    },
}
_binary = {"type": "string", "format": "binary"}
_header_length = {
    "type": "integer",
    "minimum": 0,
    "description": "the length of the JSON object, when binary tensor data follows it",
}
INFER_BODY = {
    "parameters": [
        {
            "name": "Inference-Header-Content-Length",
            "in": "header",
            "required": False,
            "schema": _header_length,
        }
    ],
    "requestBody": {
        "required": True,
        "description": "the inference request as JSON, or JSON followed by binary tensor data "
        "(any Content-Type: tritonclient sends none)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": _parameters,
                        "inputs": {"type": "array", "minItems": 1, "maxItems": 1, "items": _input},
                        "outputs": {"type": "array", "items": _output},
                    },
                }
            },
            "application/octet-stream": {"schema": _binary},
        },
    },
}
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the outputs: JSON, or JSON then their binary data when asked for "
        "(parameters binary_data_output, or binary_data on an output)",
        "content": {"application/octet-stream": {"schema": _binary}},
        "headers": {"Inference-Header-Content-Length": {"schema": _header_length}},
    },
    **oip_error_responses(404, 409, 415, 422),
}


def _state(
    request: Request,
) -> tuple[ModelRegistry, Settings, MicroBatcher[Picture], MicroBatcher[np.ndarray]]:
    """The registry, settings and batchers of the app (read here, not through `Depends`:
    see routes/predict.py)."""
    state = request.app.state
    return state.registry, state.settings, state.batcher, state.sample_batcher


def _check_name(registry: ModelRegistry, model_name: str) -> None:
    if model_name != registry.store.name:
        raise ModelNotFound(
            f"unknown model {oip.shown(model_name)}: this server serves {registry.store.name!r}"
        )


async def _model(registry: ModelRegistry, model_name: str, version: int | None) -> LoadedModel:
    """The served model, or the version asked for (loaded on first use, as `?version=`)."""
    _check_name(registry, model_name)
    if version is None:
        return registry.get()
    return await run_in_threadpool(registry.get, version)  # may read and hash files


def _metadata(registry: ModelRegistry, version: int | None) -> ModelMetadata:
    """Every version in the store, or only `version` (404 when it is not there). While the
    store cannot be read, the versions in memory, which are being served (503 if none)."""
    try:
        versions = registry.store.versions()
    except StoreUnreadable:
        versions = registry.loaded_versions()
        if not versions:
            raise
    if version is not None:
        if version not in versions:
            raise version_not_found(registry.store, version)
        versions = [version]
    return ModelMetadata.model_validate(oip.model_metadata(registry.store.name, versions))


# The inference routes first: FastAPI tries routes in the order they are declared.
@router.post(
    "/models/{model_name}/infer",
    response_model=InferenceResponse,
    responses=INFER_RESPONSES,
    openapi_extra=INFER_BODY,
)
async def infer(request: Request, model_name: ModelName) -> Response:
    """Classify images sent as one input: `pixels` (FP32 [N, 784]), `image` (UINT8
    [N, 28, 28]) or `image_file` (BYTES [N], encoded images; base64 in JSON)."""
    return await _infer(request, model_name, None)


@router.post(
    "/models/{model_name}/versions/{version}/infer",
    response_model=InferenceResponse,
    responses=INFER_RESPONSES,
    openapi_extra=INFER_BODY,
)
async def infer_version(request: Request, model_name: ModelName, version: Version) -> Response:
    """`infer` with this version of the model."""
    return await _infer(request, model_name, version)


@router.get("/health/live")
async def live() -> ServerLive:
    """Liveness: the worker answers."""
    return ServerLive(live=True)


@router.get("/health/ready", responses=oip_error_responses())
async def ready(registry: RegistryDep, drain: DrainDep) -> ServerReady:
    """Readiness: 200 once a model version is loaded; 503 before, and from SIGTERM on."""
    if drain.draining:
        raise ModelNotReady("draining: this worker is stopping; send new requests elsewhere")
    registry.get()
    return ServerReady(ready=True)


@router.get("", responses=oip_error_responses())
async def server_metadata(request: Request) -> ServerMetadata:
    """The server's name, version and protocol extensions."""
    extensions = [oip.BINARY_EXTENSION]
    return ServerMetadata(name=SERVER_NAME, version=request.app.version, extensions=extensions)


@router.get("/models/{model_name}", responses=oip_error_responses(404))
async def model_metadata(registry: RegistryDep, model_name: ModelName) -> ModelMetadata:
    """The model's versions, inputs (send exactly one) and outputs."""
    _check_name(registry, model_name)
    return await run_in_threadpool(_metadata, registry, None)


@router.get("/models/{model_name}/versions/{version}", responses=oip_error_responses(404))
async def version_metadata(
    registry: RegistryDep, model_name: ModelName, version: Version
) -> ModelMetadata:
    """One version's inputs and outputs."""
    _check_name(registry, model_name)
    return await run_in_threadpool(_metadata, registry, version)


@router.get("/models/{model_name}/ready", responses=oip_error_responses(404))
async def model_ready(registry: RegistryDep, model_name: ModelName) -> ModelReady:
    """200 once the model is loaded, 503 before."""
    loaded = await _model(registry, model_name, None)
    return ModelReady(name=loaded.name, ready=True)


@router.get(
    "/models/{model_name}/versions/{version}/ready", responses=oip_error_responses(404, 409)
)
async def version_ready(
    registry: RegistryDep, model_name: ModelName, version: Version
) -> ModelReady:
    """200 once the version is loaded (this loads it, as the first inference would)."""
    loaded = await _model(registry, model_name, version)
    return ModelReady(name=loaded.name, ready=True)


async def _infer(request: Request, model_name: str, version: int | None) -> Response:
    registry, settings, batcher, sample_batcher = _state(request)
    loaded = await _model(registry, model_name, version)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise UnsupportedEncoding(
            f"Content-Encoding {oip.shown(encoding)} is not supported: send the body as it is"
        )
    body = await request.body()
    header_length = request.headers.get("inference-header-content-length")
    # A big body is parsed in a worker thread: 8 MB of JSON numbers take a tenth of a second.
    offload = len(body) > settings.offload_bytes
    asked = await run_maybe_offloaded(
        offload, oip.parse_request, body, header_length, settings.max_batch
    )
    if asked.files is not None:
        probabilities = await read_images(
            loaded, asked.files, settings.max_pixels, settings.offload_bytes, batcher
        )
    else:
        probabilities = await sample_batcher.classify_all(loaded, asked.samples)
    tensors = {"probabilities": probabilities, "digit": probabilities.argmax(axis=1)}
    answer, json_size = oip.encode_response(
        loaded.name, loaded.version, asked.id, asked.outputs, tensors
    )
    if json_size is None:
        return Response(answer, media_type="application/json")
    headers = {"Inference-Header-Content-Length": str(json_size)}
    return Response(answer, media_type="application/octet-stream", headers=headers)
