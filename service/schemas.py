"""Response models: what the API returns, as it appears in the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class CropBox(BaseModel):
    """Where the digit was found, in pixels of the upload as viewers show it (EXIF
    orientation applied)."""

    left: int
    top: int
    width: int
    height: int


class Explanation(BaseModel):
    """What the model saw (asked for with `?explain=true`)."""

    sample_png: str = Field(
        description="the 28x28 MNIST sample the model received, white ink on black, as a "
        "base64-encoded greyscale PNG"
    )
    box: CropBox = Field(description="the digit's box in the upload")


class Prediction(BaseModel):
    """The answer for one image."""

    digit: int = Field(ge=0, le=9, description="the most probable digit")
    confidence: float = Field(ge=0, le=1, description="probability of that digit")
    probabilities: list[float] = Field(description="probabilities of the digits 0 to 9")
    model: str = Field(description="model name in the store")
    version: int = Field(description="model version that answered")
    explanation: Explanation | None = Field(
        None,
        description="what the model saw; only with ?explain=true",
        exclude_if=lambda value: value is None,  # absent, not null, when not asked for
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "digit": 7,
                    "confidence": 0.9981,
                    "probabilities": [0.0, 0.0, 0.0011, 0.0002, 0.0, 0.0, 0.0, 0.9981, 0.0, 0.0006],
                    "model": "mnist",
                    "version": 3,
                }
            ]
        }
    }


class BatchItem(BaseModel):
    """One image of a batch: a prediction, or the error it met."""

    filename: str | None = None
    prediction: Prediction | None = None
    error: str | None = Field(None, description="error code, e.g. undecodable_image")
    detail: str | None = None


class BatchPrediction(BaseModel):
    """Answers for a batch, in the order the files were sent."""

    model: str
    version: int
    results: list[BatchItem]


class VersionInfo(BaseModel):
    """A version in the store, with its manifest."""

    version: int
    aliases: list[str]
    served: bool
    manifest: dict[str, Any] | None = Field(description="manifest.json, or null if unreadable")


class ModelsOverview(BaseModel):
    """The store as the service sees it."""

    model: str
    alias: str = Field(description="the alias this service follows")
    served_version: int | None
    versions: list[int]
    aliases: dict[str, int]


class Health(BaseModel):
    """Liveness or readiness."""

    status: str
    model: str | None = None
    version: int | None = None
    detail: str | None = None


class ErrorBody(BaseModel):
    """Every error response."""

    error: str = Field(description="machine-readable code, e.g. image_too_large")
    detail: str = Field(description="what went wrong and what to do about it")


# The Open Inference Protocol (KServe v2): its JSON objects, as `routes/v2.py` answers them.


class OipError(BaseModel):
    """Every error of the Open Inference Protocol's routes."""

    error: str = Field(description="what went wrong and what to do about it")


class ServerMetadata(BaseModel):
    """The server: its name, version and protocol extensions."""

    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    """Liveness."""

    live: bool


class ServerReady(BaseModel):
    """Readiness: a model version is loaded."""

    ready: bool


class ModelReady(BaseModel):
    """A model (or one of its versions) is ready to infer."""

    name: str
    ready: bool


class TensorMetadata(BaseModel):
    """A tensor: its name, datatype and shape (-1: the batch dimension)."""

    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    """A model: its versions, inputs (send exactly one) and outputs."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    properties: dict[str, str] = Field(description="what each input and output holds")


class ResponseOutput(BaseModel):
    """An output tensor: its data in JSON, or its `binary_data_size` in `parameters` when
    its bytes follow the JSON (binary tensor data extension)."""

    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, int] | None = None
    data: list[float] | None = None


class InferenceResponse(BaseModel):
    """The outputs asked for (all by default), with the model version that answered."""

    model_name: str
    model_version: str
    id: str | None = Field(None, description="the request's id, when it had one")
    outputs: list[ResponseOutput]
