"""What routes need, as `Annotated` dependencies resolved from the app's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.registry import ModelRegistry
from service.settings import Settings


# `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hop
# that cost more than the whole forward pass (seen in a profile of /v1/predict).
async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


async def get_registry(request: Request) -> ModelRegistry:
    """The registry holding the served model."""
    return request.app.state.registry


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
