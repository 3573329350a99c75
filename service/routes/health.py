"""GET /healthz (the process is alive) and /readyz (a model is loaded)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.deps import DrainDep, RegistryDep
from service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(registry: RegistryDep) -> Health:
    """Liveness: the worker answers; says which model it serves, if any (never touches the
    store)."""
    current = registry.current
    if current is None:
        return Health(status="ok", detail="no model version loaded yet")
    return Health(status="ok", model=current.name, version=current.version)


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(registry: RegistryDep, drain: DrainDep) -> JSONResponse:
    """Readiness: 200 once a model version is loaded; 503 before, and from SIGTERM on
    (the worker is draining: still answering, about to stop)."""
    current = registry.current
    if drain.draining:
        body = Health(status="draining", detail="stopping: send new requests elsewhere")
        return JSONResponse(body.model_dump(), status_code=503)
    if current is None:
        body = Health(status="not ready", detail="no model version loaded yet")
        return JSONResponse(body.model_dump(), status_code=503)
    body = Health(status="ready", model=current.name, version=current.version)
    return JSONResponse(body.model_dump())


# Load balancers and uptime checkers probe with HEAD; the same answers, without a body.
for _path, _probe in (("/healthz", healthz), ("/readyz", readyz)):
    router.add_api_route(_path, _probe, methods=["HEAD"], include_in_schema=False)
