"""What routes need from the app's state: plain accessors, and `Annotated` dependencies.

The predict routes call the accessors directly: FastAPI's dependency solving cost about
a sixth of a whole /v1/predict request (measured in-process, see BENCHMARKS.md). The other
routes, which are not on the hot path, keep the declarative form.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.registry import ModelRegistry
from service.settings import Settings


def settings_of(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


def registry_of(request: Request) -> ModelRegistry:
    """The registry holding the served model."""
    return request.app.state.registry


# `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hop
# that cost more than the whole forward pass (seen in a profile of /v1/predict).
async def get_registry(request: Request) -> ModelRegistry:
    """`registry_of` as a dependency."""
    return registry_of(request)


RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
