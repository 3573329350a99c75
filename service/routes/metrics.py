"""GET /metrics: the Prometheus text exposition, summed over all workers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from service.metrics import exposition

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus metrics of every worker of this server."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)
