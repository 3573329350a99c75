"""GET /healthz (the process is alive) and /readyz (a model is loaded)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.deps import RegistryDep
from service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    """Liveness: the worker answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(registry: RegistryDep) -> JSONResponse:
    """Readiness: 200 once a model version is loaded, 503 before."""
    current = registry.current
    if current is None:
        body = Health(status="not ready", detail="no model version loaded yet")
        return JSONResponse(body.model_dump(), status_code=503)
    body = Health(status="ready", model=current.name, version=current.version)
    return JSONResponse(body.model_dump())
