"""What the routes need from the app's state, as `Annotated` dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.drain import Drain
from service.registry import ModelRegistry


# `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hop
# that cost more than the whole forward pass (seen in a profile of /v1/predict).
async def get_registry(request: Request) -> ModelRegistry:
    """The registry holding the served model."""
    return request.app.state.registry


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]


async def get_drain(request: Request) -> Drain:
    """Whether the worker is draining (SIGTERM received)."""
    return request.app.state.drain


DrainDep = Annotated[Drain, Depends(get_drain)]
