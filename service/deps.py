"""What the routes need from the app's state, as `Annotated` dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.batching import MicroBatcher
from service.registry import ModelRegistry
from service.settings import Settings


# `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hop
# that cost more than the whole forward pass (seen in a profile of /v1/predict).
async def get_registry(request: Request) -> ModelRegistry:
    """The registry holding the served model."""
    return request.app.state.registry


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


async def get_batcher(request: Request) -> MicroBatcher:
    """The micro-batcher concurrent predictions share."""
    return request.app.state.batcher


SettingsDep = Annotated[Settings, Depends(get_settings)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
