"""POST /v1/predict and /v1/predict/batch."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from service.deps import registry_of, settings_of
from service.inference import classify, classify_batch, to_sample
from service.registry import LoadedModel, ModelRegistry
from service.schemas import BatchPrediction, ErrorBody, Prediction
from service.uploads import read_batch_images, read_single_image

router = APIRouter(prefix="/v1", tags=["predict"])

VersionQuery = Annotated[
    int | None, Query(ge=1, description="serve this version instead of the alias's")
]

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "undecodable or truncated image",
        404: "no such version",
        413: "too many bytes, pixels or images",
        415: "not an image type we accept",
        422: "missing field or blank image",
        503: "no model loaded yet, or the server is busy",
    }.items()
}

_binary = {"type": "string", "format": "binary"}
SINGLE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["file"], "properties": {"file": _binary}}
            },
            "image/png": {"schema": _binary},
            "image/jpeg": {"schema": _binary},
        },
    }
}
BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {"files": {"type": "array", "items": _binary}},
                }
            }
        },
    }
}


async def _model(registry: ModelRegistry, version: int | None) -> LoadedModel:
    if version is None:
        return registry.get()
    return await run_in_threadpool(registry.get, version)  # may read and hash files


@router.post("/predict", responses=ERRORS, openapi_extra=SINGLE_BODY)
async def predict(request: Request, version: VersionQuery = None) -> Prediction:
    """Classify one image of a digit: multipart field `file`, or the raw image as the body."""
    settings = settings_of(request)
    loaded = await _model(registry_of(request), version)
    _, data = await read_single_image(request)
    sample = await to_sample(data, settings.max_pixels, settings.offload_bytes)
    return classify(loaded, sample[None, :])[0]


@router.post("/predict/batch", responses=ERRORS, openapi_extra=BATCH_BODY)
async def predict_batch(request: Request, version: VersionQuery = None) -> BatchPrediction:
    """Classify several images (multipart field `files`, repeated) in one forward pass."""
    settings = settings_of(request)
    loaded = await _model(registry_of(request), version)
    files = await read_batch_images(request, settings.max_batch)
    items = await classify_batch(loaded, files, settings.max_pixels, settings.offload_bytes)
    return BatchPrediction(model=loaded.name, version=loaded.version, results=items)
