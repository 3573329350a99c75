"""The service's settings: one class, from MNIST_* environment variables or CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the models are, which one to serve, and the limits that protect a worker."""

    model_config = SettingsConfigDict(env_prefix="MNIST_", frozen=True)

    store: Path = Field(Path("models"), description="root folder of the model store")
    model: str = Field("mnist", description="model name: the folder inside the store")
    alias: str = Field("production", description="serve the version this alias names")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    poll_interval: float = Field(2.0, gt=0, description="seconds between store polls")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="largest request body")
    max_pixels: int = Field(
        8_388_608, ge=784, description="largest image, width x height (JPEG: as decoded)"
    )
    max_batch: int = Field(64, ge=1, description="most images in one batch request")
    max_in_flight: int = Field(64, ge=1, description="requests per worker before 503")
    request_timeout: float = Field(15.0, gt=0, description="seconds to receive and answer")
    offload_bytes: int = Field(
        64 * 1024, ge=0, description="uploads larger than this are decoded off the event loop"
    )
    metrics_dir: Path | None = Field(
        None,
        description="prometheus-client multiprocess folder (emptied at start; default: new temp)",
    )
    pinned_versions: int = Field(2, ge=0, description="other versions kept loaded for ?version=")
    access_log: bool = Field(True, description="log every request (uvicorn's access log)")
