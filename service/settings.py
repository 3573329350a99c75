"""The service's settings: one class, read from CLI flags (`mnist-serve --help`), MNIST_*
environment variables and defaults, in that order; the only place settings are read."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "MNIST_"


def configure_logging() -> None:
    """The service's own log lines (INFO and up) on stderr, beside uvicorn's; done in each
    worker too, which uvicorn starts with only its own loggers configured."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


class Settings(BaseSettings):
    """Serve the models of a store over HTTP. Every flag is also an environment variable,
    MNIST_ and its name (MNIST_MAX_BODY_BYTES for --max-body-bytes); a flag wins."""

    # `Settings(_cli_parse_args=argv)` reads the flags too (service/cli.py); a plain
    # `Settings()`, as each worker builds, reads the environment the command line set.

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        cli_prog_name="mnist-serve",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_hide_none_type=True,
    )

    store: str = Field(
        "models",
        description="the model store: a folder, or s3://BUCKET/PREFIX (configured by "
        "AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)",
    )
    cache_dir: Path | None = Field(
        None,
        description="where versions of an s3:// store are downloaded; null: "
        "mnist-serve-cache in the temp folder",
    )
    model: str = Field("mnist", description="model name: the folder inside the store")
    alias: str = Field("production", description="serve the version this alias names")
    host: str = Field("127.0.0.1", description="address to listen on (0.0.0.0: every one)")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on")
    workers: int = Field(1, ge=1, le=64, description="worker processes, under uvicorn's supervisor")
    poll_interval: float = Field(2.0, gt=0, description="seconds between store polls")
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="largest request body")
    max_pixels: int = Field(
        8_388_608, ge=784, description="largest image, width x height (JPEG: as decoded)"
    )
    max_batch: int = Field(64, ge=1, description="most images in one batch request")
    max_in_flight: int = Field(64, ge=1, description="requests per worker before 503")
    request_timeout: float = Field(15.0, gt=0, description="seconds to receive and answer")
    drain_seconds: float = Field(
        5.0,
        ge=0,
        description="on SIGTERM, seconds to keep serving with /readyz at 503 before stopping "
        "(so load balancers stop sending first)",
    )
    offload_bytes: int = Field(
        64 * 1024, ge=0, description="uploads larger than this are decoded off the event loop"
    )
    metrics_dir: Path | None = Field(
        None,
        description="prometheus-client multiprocess folder, emptied of its *.db files at start "
        "(refused if it holds anything else); null: a new temp folder, removed at exit",
    )
    pinned_versions: int = Field(2, ge=0, description="other versions kept loaded for ?version=")
    access_log: bool = Field(True, description="log every request (uvicorn's access log)")

    @field_validator("store", mode="before")
    @classmethod
    def _folder_as_text(cls, value: object) -> object:
        return os.fspath(value) if isinstance(value, os.PathLike) else value
