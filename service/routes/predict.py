"""POST /v1/predict and /v1/predict/batch: the digit in one uploaded image, or in several.

Ordinary FastAPI routes, the framework's own way for a hot path: they take the `Request` and
read its body themselves (a raw image, or a form split by python-multipart in
`service.forms`, in memory: the body is capped), so nothing is spooled to a temporary file;
`openapi_extra` describes the body to OpenAPI and `responses=` every answer; the answer is
JSON serialised once by pydantic. The query parameters are a model read by
`service.routes.query` (FastAPI's per-request parameter solving cost a tenth of a
prediction).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from service.batching import MicroBatcher
from service.inference import classify_batch, predictions, read_upload, run_maybe_offloaded
from service.registry import LoadedModel, ModelRegistry
from service.routes.errors import error_responses
from service.routes.query import openapi_parameters, read_query
from service.schemas import BatchPrediction, Prediction
from service.settings import Settings
from service.uploads import batch_images, single_image

router = APIRouter(prefix="/v1/predict", tags=["predict"])


class PredictQuery(BaseModel):
    """The query parameters of both prediction routes."""

    version: int | None = Field(
        None, ge=1, le=2**31 - 1, description="serve this version instead of the alias's"
    )
    explain: bool = Field(
        False,
        description="also answer the 28x28 sample the model saw and where in the upload the "
        "digit was found (true/false, 1/0, yes/no, on/off)",
    )


NO_QUERY = PredictQuery()
_binary = {"type": "string", "format": "binary"}
SINGLE_BODY = {
    "parameters": openapi_parameters(PredictQuery),
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["file"], "properties": {"file": _binary}}
            },
            "image/png": {"schema": _binary},
            "image/jpeg": {"schema": _binary},
        },
    },
}
BATCH_BODY = {
    "parameters": openapi_parameters(PredictQuery),
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
    },
}
ERRORS = error_responses(400, 404, 409, 415)


def _state(request: Request) -> tuple[ModelRegistry, Settings, MicroBatcher]:
    """The registry, settings and batcher of the app. Read here rather than through three
    `Depends`: FastAPI's dependency solving took a third of a prediction's time (bench/)."""
    state = request.app.state
    return state.registry, state.settings, state.batcher


async def _model(registry: ModelRegistry, version: int | None) -> LoadedModel:
    if version is None:
        return registry.get()
    return await run_in_threadpool(registry.get, version)  # may read and hash files


def _json(answer: Prediction | BatchPrediction) -> Response:
    return Response(answer.model_dump_json(), media_type="application/json")


@router.post("", response_model=Prediction, responses=ERRORS, openapi_extra=SINGLE_BODY)
async def predict(request: Request) -> Response:
    """Classify one image of a digit: multipart field `file`, or the raw image as the body."""
    registry, settings, batcher = _state(request)
    query = read_query(PredictQuery, request, NO_QUERY)
    loaded = await _model(registry, query.version)
    content_type, body = request.headers.get("content-type", ""), await request.body()
    # A body over --offload-bytes is split in a worker thread: python-multipart walks
    # near-miss boundaries byte by byte in Python (an 8 MB body of them took 1.5 s).
    offload = len(body) > settings.offload_bytes
    _, data = await run_maybe_offloaded(offload, single_image, content_type, body)
    reading = await read_upload(
        loaded, data, settings.max_pixels, settings.offload_bytes, batcher, query.explain
    )
    return _json(predictions(loaded, reading.probabilities[None], [reading.explanation])[0])


@router.post("/batch", response_model=BatchPrediction, responses=ERRORS, openapi_extra=BATCH_BODY)
async def predict_batch(request: Request) -> Response:
    """Classify several images (multipart field `files`, repeated) in one forward pass."""
    registry, settings, _ = _state(request)
    query = read_query(PredictQuery, request, NO_QUERY)
    loaded = await _model(registry, query.version)
    content_type, body = request.headers.get("content-type", ""), await request.body()
    offload = len(body) > settings.offload_bytes  # split off the event loop, as in `predict`
    files = await run_maybe_offloaded(offload, batch_images, content_type, body, settings.max_batch)
    items = await classify_batch(
        loaded, files, settings.max_pixels, settings.offload_bytes, query.explain
    )
    return _json(BatchPrediction(model=loaded.name, version=loaded.version, results=items))
